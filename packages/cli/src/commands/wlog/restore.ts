/**
 * `walb wlog restore LDEV WLOG|-`: write a wlog into a log device's ring buffer (as `wlog-restore`).
 *
 * @module
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { MAX_LSID, WlogReader, restoreWlog, type RestoreOptions, type RestoreResult } from '@walbjs/log-format';
import type { GlobalArgs } from '../../app.ts';
import { UsageError } from '../../util/errors.ts';
import { armInterrupt } from '../../util/interrupt.ts';
import { ioOf, writeTo } from '../../util/io.ts';
import { openInput } from '../../util/input.ts';
import { toJson } from '../../util/json.ts';
import { checkLsidRange, parseLsid, parseSigned64 } from '../../util/parse.ts';
import { refuseIfCaptured } from '../../util/in-use.ts';
import { checkOutputNotInput } from '../../util/output.ts';

/** Arguments of `wlog restore` (the handler also sees them camel-cased). */
export interface WlogRestoreArgs extends GlobalArgs {
  /** Log device path. */
  ldev: string;
  /** wlog path or `-`. */
  wlog: string;
  /** lsid shift. */
  'lsid-diff'?: bigint;
  /** Skip packs below this lsid. */
  begin?: bigint;
  /** Stop at this lsid. */
  end?: bigint;
  /** Also invalidate this lsid. */
  'invalid-lsid'?: bigint;
  /** Data device size in LB (0: no clipping, as the original). */
  'ddev-lb'?: bigint;
  /** Read back and compare every header written. */
  verify: boolean;
  /** Folder for the copy of a wlog read from stdin (default: the system's temporary folder). */
  'tmp-dir'?: string;
}

const lsid = (what: string) => (v: string) => parseLsid(v, what);

/** `walb wlog restore`. */
export const wlogRestoreCommand: CommandModule<GlobalArgs, WlogRestoreArgs> = {
  command: 'restore <ldev> <wlog>',
  describe: 'Write a wlog into the ring buffer of a log device (as wlog-restore)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('ldev', { type: 'string', demandOption: true, describe: 'Formatted log device (block device or image file)' })
      .positional('wlog', { type: 'string', demandOption: true, describe: 'wlog file, or - for stdin' })
      // A lone `-` (stdin) is kept as the value only when the positional takes exactly one argument.
      .nargs('wlog', 1)
      .option('lsid-diff', { alias: 'd', type: 'string', describe: 'Add this (signed) amount to every lsid', coerce: (v: string) => parseSigned64(v, 'lsid diff') })
      .option('begin', { alias: 'b', type: 'string', describe: 'Skip logpacks of the wlog below this lsid', coerce: lsid('begin lsid') })
      .option('end', { alias: 'e', type: 'string', describe: 'Stop at this lsid of the wlog (default: its end)', coerce: lsid('end lsid') })
      .option('invalid-lsid', { alias: 'i', type: 'string', describe: 'Also invalidate the block at this (shifted) lsid', coerce: lsid('--invalid-lsid (-i)') })
      .option('ddev-lb', { alias: 's', type: 'string', describe: 'Data device size in LB: IOs that do not end within it are taken out of their logpacks, their blocks left as padding (0: no clipping)', coerce: lsid('data device size') })
      .option('verify', { type: 'boolean', default: false, describe: 'Read every written logpack header back and compare' })
      .option('tmp-dir', { type: 'string', describe: 'Folder for the copy of a wlog given as - (stdin); default: the system\'s temporary folder' })
      .example('$0 wlog restore ldev.img a.wlog -d 14000 --verify', 'restore, shifted to lsid 14000')
      .example('$0 wlog cat ldev0.img -o - | $0 wlog restore ldev1.img -', 'a wlog from stdin (copied to a temporary file first)')
      .epilogue('The whole wlog is read and checked, and the restore laid out, before anything is written: a corrupt '
        + 'wlog, or one that does not fit the ring, leaves the log device unchanged. A wlog given as - is therefore '
        + 'first copied from stdin into a temporary file (as large as the wlog; removed at the end). '
        + 'Prints "restored lsid BEGIN to END" (and the padding packs inserted at the ring end). '
        + 'With --json: {type:"wlog-restore", beginLsid, endLsid, lsidDiff, paddingPacks}.'),
  handler: async (args) => {
    const io = ioOf(args);
    await checkOutputNotInput(args.ldev, [args.wlog], 'the log device');
    await refuseIfCaptured(args.ldev);
    const opts: RestoreOptions = { verify: args.verify };
    if (args.lsidDiff !== undefined) opts.lsidDiff = args.lsidDiff;
    if (args.begin !== undefined) opts.beginLsid = args.begin;
    if (args.end !== undefined) opts.endLsid = args.end;
    checkLsidRange(args.begin, args.end);
    if (args.invalidLsid !== undefined) opts.invalidLsid = args.invalidLsid;
    // The original's -s 0 is its default: no clipping (a data device of no blocks means nothing).
    if (args.ddevLb !== undefined && args.ddevLb !== 0n) opts.ddevLb = args.ddevLb;
    const input = await openInput(args.wlog, io);
    if (opts.lsidDiff !== undefined && opts.lsidDiff < 0n) await checkShift(args.wlog, input.source, opts.lsidDiff);
    let r: RestoreResult;
    if (args.wlog === '-') {
      // The SDK removes its copy of stdin whether the restore succeeds or fails; a signal would end
      // the process first, so the copy goes in a folder of our own that an interrupt removes.
      const folder = await mkdtemp(join(args['tmp-dir'] ?? tmpdir(), 'walbjs-restore-'));
      const disarm = armInterrupt(() => rmSync(folder, { recursive: true, force: true }));
      try {
        r = await restoreWlog(args.ldev, input.src, { ...opts, tmpDir: folder });
      } finally {
        disarm();
        await rm(folder, { recursive: true, force: true });
      }
    } else {
      r = await restoreWlog(args.ldev, input.src, opts);
    }
    if (args.json) {
      await writeTo(io.stdout, toJson({ type: 'wlog-restore', ...r }) + '\n');
      return;
    }
    const pad = r.paddingPacks ? ` (${r.paddingPacks} padding pack${r.paddingPacks > 1 ? 's' : ''} at the ring end, lsid diff now ${r.lsidDiff})` : '';
    await writeTo(io.stdout, `restored lsid ${r.beginLsid} to ${r.endLsid}${pad}\n`);
  },
};

/**
 * A negative shift must not move the log below lsid 0 (the ring position of a negative lsid lies
 * in front of the ring buffer, on the super sector). The wlog header says where the log begins;
 * stdin cannot be read twice, so a negative shift needs a file.
 */
async function checkShift(wlog: string, source: string, diff: bigint): Promise<void> {
  if (wlog === '-') throw new UsageError('a negative --lsid-diff needs the wlog as a file, not stdin');
  const r = await WlogReader.open(wlog, { source });
  const begin = r.header.beginLsid;
  await r.close();
  const shifted = begin + diff;
  if (shifted < 0n || shifted > MAX_LSID) {
    throw new UsageError(`--lsid-diff ${diff} moves the begin lsid ${begin} of ${source} out of range (to ${shifted})`);
  }
}
