/**
 * `walb wdiff from-wlog [--indexed] [--cmpr C] [--max-io SIZE] WLOG... -o OUT`: convert
 * consecutive wlogs into one wdiff (as `wlog-to-wdiff`).
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import type { ConvertOptions } from '@walbjs/diff';
import type { GlobalArgs } from '../../app.ts';
import { ioOf } from '../../util/io.ts';
import { writeOutput, checkOutputNotInput, formatName, ioCount, loadSdk, parseCmpr, parseSizeLb, report } from './common.ts';

/** Arguments of `wdiff from-wlog` (the handler also sees them camel-cased). */
export interface WdiffFromWlogArgs extends GlobalArgs {
  /** wlog paths, in lsid order. */
  wlogs: string[];
  /** Output path or `-`. */
  out: string;
  /** Write the indexed format. */
  indexed: boolean;
  /** `type[:level[:numCpu]]`. */
  cmpr?: string;
  /** Largest IO, in LB. */
  'max-io': number;
  /** Write an output file with direct IO (default true). */
  direct: boolean;
  /** Print a summary on stderr. */
  verbose: boolean;
}

/** `walb wdiff from-wlog`. */
export const wdiffFromWlogCommand: CommandModule<GlobalArgs, WdiffFromWlogArgs> = {
  command: 'from-wlog <wlogs..>',
  describe: 'Convert consecutive wlogs into one wdiff (as wlog-to-wdiff)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('wlogs', { type: 'string', array: true, demandOption: true, describe: 'wlog files, oldest first; each must begin where the previous one ended' })
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'Output wdiff file, or - for stdout' })
      .option('indexed', { type: 'boolean', default: false, describe: 'Write the indexed format (as proxies do) instead of the sorted one' })
      .option('cmpr', { type: 'string', describe: 'Compression of each record: type[:level[:numCpu]], type none|snappy|gzip|lzma|lz4|zstd (default snappy)' })
      .option('max-io', { alias: 'x', type: 'string', default: '1M', describe: 'Split IOs larger than this (bytes, suffixes k, m; a multiple of 512)', coerce: (v: string) => parseSizeLb(v, 'max IO size') })
      .option('direct', { type: 'boolean', default: true, describe: 'Write an output file with direct IO (no page cache filled, no writeback left behind); --no-direct writes through the page cache' })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'Print a summary on stderr' })
      .example('$0 wdiff from-wlog a.wlog b.wlog -o ab.wdiff', 'two consecutive logs, sorted, snappy')
      .example('$0 wdiff from-wlog --indexed --cmpr zstd:3 a.wlog -o a.wdiff', 'indexed, zstd level 3')
      .epilogue('With --json: {type:"wdiff-from-wlog", output, format, bytes, records, packs, uuid, beginLsid, endLsid} '
        + '(on stderr when -o -); lsids are decimal strings.'),
  handler: async (args) => {
    const io = ioOf(args);
    const d = await loadSdk();
    // A file output is synced as it is written (the final sync in writeOutput then finds little).
    const opts: ConvertOptions = { indexed: args.indexed, maxIoBlocks: args.maxIo, sync: args.out !== '-', direct: args.direct };
    const cmpr = parseCmpr(d, args.cmpr);
    if (cmpr) opts.cmpr = cmpr;
    await checkOutputNotInput(args.out, args.wlogs);
    const { result: r, bytes, isStdout } = await writeOutput(io, args.out, { label: 'converting', json: args.json, unit: ioCount }, (sink, onProgress) => d.convertWlogs(args.wlogs, sink, { ...opts, onProgress }));
    const format = formatName(args.indexed);
    await report(io, { json: args.json, verbose: args.verbose, toStdout: isStdout }, {
      type: 'wdiff-from-wlog', output: args.out, format, bytes, records: r.records, packs: r.packs,
      uuid: r.uuid, beginLsid: r.beginLsid, endLsid: r.endLsid,
    }, `${args.out}: ${format} wdiff, ${r.records} records, ${bytes} bytes, lsid ${r.beginLsid} to ${r.endLsid}`);
  },
};
