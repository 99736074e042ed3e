/**
 * `walb wdiff merge [--cmpr C] [--max-io SIZE] [--indexed] IN... -o OUT`: merge wdiffs into one
 * (as `wdiff-merge`).
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import type { MergeFilesOptions } from '@walbjs/diff';
import type { GlobalArgs } from '../../app.ts';
import { ioOf } from '../../util/io.ts';
import { writeOutput, checkOutputNotInput, formatName, ioCount, loadSdk, report, requireFiles, wdiffOutputOptions, wdiffWriteOptions, type WdiffOutputArgs } from './common.ts';

/** Arguments of `wdiff merge` (the handler also sees them camel-cased). */
export interface WdiffMergeArgs extends GlobalArgs, WdiffOutputArgs {
  /** wdiff paths, oldest first. */
  inputs: string[];
}

/** `walb wdiff merge`. */
export const wdiffMergeCommand: CommandModule<GlobalArgs, WdiffMergeArgs> = {
  command: 'merge <inputs..>',
  describe: 'Merge wdiffs (oldest first, newer wins) into one (as wdiff-merge)',
  builder: (y: Argv<GlobalArgs>) =>
    wdiffOutputOptions(
      y.positional('inputs', { type: 'string', array: true, demandOption: true, describe: 'wdiff files (sorted or indexed), oldest first' }),
      {
        indexed: 'Write the indexed format instead of the sorted one',
        cmpr: 'Compression of each record: type[:level[:numCpu]] (default snappy); records already in it are copied as stored, once seen to decompress',
        maxIo: { default: '0', describe: 'Split output IOs larger than this (bytes, suffixes k, m; 0: no split)' },
      },
    )
    .example('$0 wdiff merge d0.wdiff d1.wdiff d2.wdiff -o merged.wdiff', 'three diffs into one')
    .example('$0 wdiff merge --cmpr zstd a.wdiff -o a.zstd.wdiff', 're-encode one diff')
    .epilogue('The output\'s uuid is the last input\'s. With --json: {type:"wdiff-merge", output, format, inputs, '
      + 'bytes, records, packs} (on stderr when -o -).'),
  handler: async (args) => {
    const io = ioOf(args);
    await requireFiles(args.inputs, 'a merge input', 'the inputs are read side by side, an indexed one at random');
    const d = await loadSdk();
    const opts: MergeFilesOptions = wdiffWriteOptions(d, args);
    await checkOutputNotInput(args.out, args.inputs);
    const { result: r, bytes, isStdout } = await writeOutput(io, args.out, { label: 'merging', json: args.json, unit: ioCount }, (sink, onProgress) => d.mergeWdiffs(args.inputs, sink, { ...opts, onProgress }), (m) => `merged: ${ioCount(m.records)}`);
    const format = formatName(args.indexed);
    await report(io, { json: args.json, verbose: args.verbose, toStdout: isStdout }, {
      type: 'wdiff-merge', output: args.out, format, inputs: args.inputs.length, bytes, records: r.records, packs: r.packs,
    }, `${args.out}: ${format} wdiff of ${args.inputs.length} inputs, ${r.records} records, ${bytes} bytes`);
  },
};
