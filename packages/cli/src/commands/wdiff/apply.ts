/**
 * `walb wdiff apply [--discard ignore|zero|punch] [--fsync-interval SIZE] WDIFF... IMAGE`: apply
 * wdiffs to an image file or block device (as `wdiff-redo`).
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import type { ApplyOptions, ApplySummary, DiscardMode } from '@walbjs/diff';
import { probeDevice } from '@walbjs/log-format';
import type { GlobalArgs } from '../../app.ts';
import { UsageError } from '../../util/errors.ts';
import { armInterrupt } from '../../util/interrupt.ts';
import { ioOf } from '../../util/io.ts';
import { toJson } from '../../util/json.ts';
import { parseSize } from '../../util/parse.ts';
import { startProgress } from '../../util/progress.ts';
import { LB, checkOutputNotInput, loadSdk, report, requireFiles } from './common.ts';

/** What `--discard` accepts. */
export const DISCARD_MODES: readonly DiscardMode[] = ['ignore', 'zero', 'punch'];

/** Arguments of `wdiff apply` (the handler also sees them camel-cased). */
export interface WdiffApplyArgs extends GlobalArgs {
  /** The wdiffs, oldest first, then the image. */
  files: string[];
  /** What to do with DISCARD records: one of {@link DISCARD_MODES} (yargs checks the choice). */
  discard: string;
  /** Bytes between fsyncs (0: only at the end). */
  'fsync-interval'?: number;
  /** Print a summary on stderr. */
  verbose: boolean;
}

/** `walb wdiff apply`. */
export const wdiffApplyCommand: CommandModule<GlobalArgs, WdiffApplyArgs> = {
  command: 'apply <files..>',
  describe: 'Apply wdiffs (oldest first) to the image given last (as wdiff-redo)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .usage('$0 wdiff apply [options] WDIFF... IMAGE')
      .positional('files', { type: 'string', array: true, demandOption: true, describe: 'WDIFF... IMAGE: the wdiffs, oldest first, then the image file or block device' })
      .option('discard', { type: 'string', default: 'ignore', choices: [...DISCARD_MODES], describe: 'DISCARD records: leave the old data, write zeros, or punch holes (blkdiscard on a block device)' })
      .option('fsync-interval', { type: 'string', describe: 'fsync after every this many bytes written (suffixes k, m, g; default 1G; 0: only at the end)', coerce: (v: string) => parseSize(v, 'fsync interval') })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'Print a summary on stderr' })
      .example('$0 wdiff apply d0.wdiff d1.wdiff disk.img', 'two diffs, merged, onto disk.img')
      .example('$0 wdiff apply --discard zero a.wdiff /dev/vg/vol', 'discards written as zeros')
      .epilogue('Every wdiff is read through and checked first (checksums, decompression, addresses within the '
        + 'image), so a bad one leaves the image unchanged. With --json: {type:"wdiff-apply", image, wdiffs, '
        + 'discard, ios, bytesWritten, discardLb, syncs}.'),
  handler: async (args) => {
    const io = ioOf(args);
    if (args.files.length < 2) throw new UsageError('apply needs at least one wdiff and then the image');
    const wdiffs = args.files.slice(0, -1);
    const image = args.files[args.files.length - 1];
    requireFiles(wdiffs, 'a wdiff to apply', 'each is read twice, checked whole before the first write');
    requireFiles([image], 'the image', 'it is written in place');
    await checkOutputNotInput(image, wdiffs, 'the image');
    const d = await loadSdk();
    const total = Number((await probeDevice(image)).sizeBytes);
    const progress = await startProgress(io, { label: 'verifying', total, json: args.json });
    let phase: 'verify' | 'apply' = 'verify';
    const opts: ApplyOptions = {
      discard: args.discard as DiscardMode,
      onProgress: (addr, p) => {
        if (p !== phase) {
          phase = p;
          progress.phase('applying');
        }
        progress.update(addr * LB);
      },
    };
    if (args.fsyncInterval !== undefined) opts.fsyncIntervalBytes = args.fsyncInterval;
    let r: ApplySummary;
    // Interrupted while writing, the image holds part of the diffs: say so, and how to finish.
    // (Applying is idempotent: every record sets bytes, so the same apply again completes it.)
    const disarm = armInterrupt(() => {
      if (phase !== 'apply') return;
      const message = `interrupted: ${image} is partly applied; run the same apply again to complete it`;
      io.stderr.write(args.json ? toJson({ type: 'error', code: 'ERR_INTERRUPTED', message, source: image }) + '\n' : `\nwalb: ${message}\n`);
    });
    try {
      r = await d.applyWdiffs(image, wdiffs, opts);
    } finally {
      disarm();
      progress.stop();
    }
    await report(io, { json: args.json, verbose: args.verbose, toStdout: false }, {
      type: 'wdiff-apply', image, wdiffs, discard: args.discard, ios: r.ios, bytesWritten: r.bytesWritten,
      discardLb: r.discardLb, syncs: r.syncs,
    }, `${image}: applied ${wdiffs.length} wdiff${wdiffs.length > 1 ? 's' : ''}, ${r.ios} IOs, ${r.bytesWritten} bytes written, ${r.discardLb} LB discarded (${args.discard})`);
  },
};
