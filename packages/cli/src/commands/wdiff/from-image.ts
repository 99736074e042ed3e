/**
 * `walb wdiff from-image IMAGE -o OUT [--compare OLDER]`: a whole image as a wdiff (as
 * `wdiff-full`), or the diff that turns an older image into this one.
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import type { ImageDiffOptions } from '@walbjs/diff';
import { probeDevice } from '@walbjs/log-format';
import type { GlobalArgs } from '../../app.ts';
import { UsageError } from '../../util/errors.ts';
import { ioOf } from '../../util/io.ts';
import { parseSize } from '../../util/parse.ts';
import { LB, writeOutput, checkOutputNotInput, formatName, loadSdk, parseCmpr, report, requireFiles } from './common.ts';

/** Largest `--io-size` the SDK accepts. */
const MAX_IO_BYTES = 32 << 20;

/** Arguments of `wdiff from-image` (the handler also sees them camel-cased). */
export interface WdiffFromImageArgs extends GlobalArgs {
  /** The image (the newer one with `--compare`). */
  image: string;
  /** Output path or `-`. */
  out: string;
  /** Older image: write only what differs from it. */
  compare?: string;
  /** Write the indexed format. */
  indexed: boolean;
  /** `type[:level[:numCpu]]`. */
  cmpr?: string;
  /** Bytes per IO. */
  'io-size': number;
  /** Print a summary on stderr. */
  verbose: boolean;
}

function ioSize(v: string): number {
  const n = parseSize(v, 'IO size');
  if (n === 0 || n % LB !== 0 || n > MAX_IO_BYTES) {
    throw new UsageError(`invalid IO size ${JSON.stringify(v)}: must be a positive multiple of 512 up to 32M`);
  }
  return n;
}

/** `walb wdiff from-image`. */
export const wdiffFromImageCommand: CommandModule<GlobalArgs, WdiffFromImageArgs> = {
  command: 'from-image <image>',
  describe: 'An image as a wdiff (as wdiff-full), or with --compare the diff from an older one',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('image', { type: 'string', demandOption: true, describe: 'Image file or block device' })
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'Output wdiff file, or - for stdout' })
      .option('compare', { alias: 'c', type: 'string', describe: 'Older image of the same size: write only the IOs where IMAGE differs from it' })
      .option('indexed', { type: 'boolean', default: false, describe: 'Write the indexed format instead of the sorted one' })
      .option('cmpr', { type: 'string', describe: 'Compression of each record: type[:level[:numCpu]] (default snappy)' })
      .option('io-size', { type: 'string', default: '64K', describe: 'Bytes per IO (a multiple of 512, up to 32M)', coerce: ioSize })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'Print a summary on stderr' })
      .example('$0 wdiff from-image disk.img -o full.wdiff', 'applying full.wdiff to any image of that size reproduces disk.img')
      .example('$0 wdiff from-image new.img --compare old.img -o d.wdiff', 'applying d.wdiff to old.img gives new.img')
      .epilogue('All-zero IOs become ALLZERO records. With --json: {type:"wdiff-from-image", image, older?, output, '
        + 'format, bytes, records, packs} (on stderr when -o -).'),
  handler: async (args) => {
    const io = ioOf(args);
    await requireFiles(args.compare === undefined ? [args.image] : [args.image, args.compare], 'an image', 'its size is read first, and a compared one side by side');
    const d = await loadSdk();
    const opts: ImageDiffOptions = { indexed: args.indexed, ioBytes: args.ioSize };
    const cmpr = parseCmpr(d, args.cmpr);
    if (cmpr) opts.cmpr = cmpr;
    await checkOutputNotInput(args.out, args.compare === undefined ? [args.image] : [args.image, args.compare]);
    const total = Number((await probeDevice(args.image)).sizeBytes);
    const { result: r, bytes, isStdout } = await writeOutput(io, args.out, { label: args.compare === undefined ? 'reading' : 'comparing', total, json: args.json }, (sink, onProgress) => args.compare === undefined
      ? d.imageToWdiff(args.image, sink, { ...opts, onProgress })
      : d.compareImagesToWdiff(args.compare, args.image, sink, { ...opts, onProgress }));
    const format = formatName(args.indexed);
    await report(io, { json: args.json, verbose: args.verbose, toStdout: isStdout }, {
      type: 'wdiff-from-image', image: args.image, ...(args.compare !== undefined ? { older: args.compare } : {}),
      output: args.out, format, bytes, records: r.records, packs: r.packs,
    }, `${args.out}: ${format} wdiff of ${args.compare !== undefined ? `${args.compare} -> ` : ''}${args.image}, ${r.records} records, ${bytes} bytes`);
  },
};
