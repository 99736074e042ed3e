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
import { writeOutput, checkOutputNotInput, formatName, ioCount, loadSdk, report, wdiffOutputOptions, wdiffWriteOptions, type WdiffOutputArgs } from './common.ts';

/** Arguments of `wdiff from-wlog` (the handler also sees them camel-cased). */
export interface WdiffFromWlogArgs extends GlobalArgs, WdiffOutputArgs {
  /** wlog paths, in lsid order. */
  wlogs: string[];
}

/** `walb wdiff from-wlog`. */
export const wdiffFromWlogCommand: CommandModule<GlobalArgs, WdiffFromWlogArgs> = {
  command: 'from-wlog <wlogs..>',
  describe: 'Convert consecutive wlogs into one wdiff (as wlog-to-wdiff)',
  builder: (y: Argv<GlobalArgs>) =>
    wdiffOutputOptions(
      y.positional('wlogs', { type: 'string', array: true, demandOption: true, describe: 'wlog files, oldest first; each must begin where the previous one ended' }),
      {
        indexed: 'Write the indexed format (as proxies do) instead of the sorted one',
        cmpr: 'Compression of each record: type[:level[:numCpu]], type none|snappy|gzip|lzma|lz4|zstd (default snappy)',
        maxIo: { default: '1M', describe: 'Split IOs larger than this (bytes, suffixes k, m; a multiple of 512)' },
      },
    )
    .example('$0 wdiff from-wlog a.wlog b.wlog -o ab.wdiff', 'two consecutive logs, sorted, snappy')
    .example('$0 wdiff from-wlog --indexed --cmpr zstd:3 a.wlog -o a.wdiff', 'indexed, zstd level 3')
    .epilogue('With --json: {type:"wdiff-from-wlog", output, format, bytes, records, packs, uuid, beginLsid, endLsid} '
      + '(on stderr when -o -); lsids are decimal strings.'),
  handler: async (args) => {
    const io = ioOf(args);
    const d = await loadSdk();
    const opts: ConvertOptions = wdiffWriteOptions(d, args);
    await checkOutputNotInput(args.out, args.wlogs);
    const { result: r, bytes, isStdout } = await writeOutput(io, args.out, { label: 'converting', json: args.json, unit: ioCount }, (sink, onProgress) => d.convertWlogs(args.wlogs, sink, { ...opts, onProgress }), (c) => `converted: ${ioCount(c.records)}`);
    const format = formatName(args.indexed);
    await report(io, { json: args.json, verbose: args.verbose, toStdout: isStdout }, {
      type: 'wdiff-from-wlog', output: args.out, format, bytes, records: r.records, packs: r.packs,
      uuid: r.uuid, beginLsid: r.beginLsid, endLsid: r.endLsid,
    }, `${args.out}: ${format} wdiff, ${r.records} records, ${bytes} bytes, lsid ${r.beginLsid} to ${r.endLsid}`);
  },
};
