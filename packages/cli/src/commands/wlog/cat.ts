/**
 * `walb wlog cat LDEV -o OUT`: extract the logs of a log device into a wlog (as `wlog-cat`).
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import { catLdev, formatLogStat, type ExtractOptions } from '@walbjs/log-format';
import type { GlobalArgs } from '../../app.ts';
import { ioOf, writeTo } from '../../util/io.ts';
import { toJson } from '../../util/json.ts';
import { checkOutputNotInput, openOutput, writeThrough } from '../../util/output.ts';
import { checkLsidRange, parseLsid } from '../../util/parse.ts';
import { startProgress } from '../../util/progress.ts';
import { logStatView } from '../../util/views.ts';

/** Arguments of `wlog cat`. */
export interface WlogCatArgs extends GlobalArgs {
  /** Log device path. */
  ldev: string;
  /** Output path or `-`. */
  out: string;
  /** First lsid wanted. */
  begin?: bigint;
  /** End lsid (exclusive). */
  end?: bigint;
  /** Ignore the oldest lsid of the super sector. */
  force: boolean;
  /** Shrink a pack at its first IO with a bad checksum (default). */
  shrink: boolean;
  /** Print statistics on stderr. */
  verbose: boolean;
}

const lsid = (what: string) => (v: string) => parseLsid(v, what);

/** `walb wlog cat`. */
export const wlogCatCommand: CommandModule<GlobalArgs, WlogCatArgs> = {
  command: 'cat <ldev>',
  describe: 'Extract logs from a log device into a wlog (as wlog-cat)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('ldev', { type: 'string', demandOption: true, describe: 'Log device (block device or image file)' })
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'Output wlog file, or - for stdout' })
      .option('begin', { alias: 'b', type: 'string', describe: 'Begin lsid (default: the oldest lsid of the device)', coerce: lsid('begin lsid') })
      .option('end', { alias: 'e', type: 'string', describe: 'End lsid, exclusive (default: up to the first invalid logpack)', coerce: lsid('end lsid') })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'Ignore the oldest lsid: allow a begin lsid below it' })
      .option('shrink', { type: 'boolean', default: true, describe: 'Cut a logpack at its first IO with a bad checksum (--no-shrink keeps it whole)' })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'Print the statistics of what was extracted on stderr' })
      .example('$0 wlog cat /dev/loop0 -o out.wlog -v', 'everything from the oldest lsid on')
      .example('$0 wlog cat ldev.img -b 1000 -e 2000 -o - | $0 wlog show --stat -', 'an lsid range, to stdout')
      .epilogue('With --json: {type:"wlog-cat", output, bytes, beginLsid, endLsid, stoppedBy, invalid?, stat} '
        + '(on stderr when -o -). stoppedBy is end-lsid, invalid-pack or shrunk-pack.'),
  handler: async (args) => {
    const io = ioOf(args);
    const opts: ExtractOptions = { force: args.force, noShrink: !args.shrink };
    if (args.begin !== undefined) opts.beginLsid = args.begin;
    if (args.end !== undefined) opts.endLsid = args.end;
    checkLsidRange(args.begin, args.end);
    await checkOutputNotInput(args.out, [args.ldev]);
    const progress = await startProgress(io, { label: 'extracting', json: args.json });
    const out = openOutput(args.out, io, (n) => progress.update(n));
    const r = await writeThrough(out, progress, () => catLdev(args.ldev, out.sink, opts));
    if (args.json) {
      await writeTo(out.isStdout ? io.stderr : io.stdout, toJson({
        type: 'wlog-cat', output: args.out, bytes: out.bytes, beginLsid: r.beginLsid, endLsid: r.endLsid,
        stoppedBy: r.stoppedBy, ...(r.invalid ? { invalid: r.invalid.message } : {}), stat: logStatView(r.stat),
      }) + '\n');
    } else if (args.verbose) {
      await writeTo(io.stderr, formatLogStat(r.stat) + '\n');
    }
  },
};
