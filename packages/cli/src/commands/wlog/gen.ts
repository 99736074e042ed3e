/**
 * `walb wlog gen -o OUT`: write a random valid wlog (as `wlog-gen`, but reproducible from a seed).
 *
 * @module
 */
import { randomInt } from 'node:crypto';
import type { Argv, CommandModule } from 'yargs';
import { SUPPORTED_PBS, WALB_MAX_DISCARD_IO_SECTORS, WALB_MAX_NORMAL_IO_SECTORS, formatWlogHeader, writeGeneratedWlog, type WlogGenOptions } from '@walbjs/log-format';
import type { GlobalArgs } from '../../app.ts';
import { UsageError } from '../../util/errors.ts';
import { ioOf, writeTo } from '../../util/io.ts';
import { toJson } from '../../util/json.ts';
import { openOutput, writeThrough } from '../../util/output.ts';
import { parseLsid, parseSize, parseUint } from '../../util/parse.ts';
import { startProgress } from '../../util/progress.ts';
import { wlogHeaderView } from '../../util/views.ts';

/** Arguments of `wlog gen` (the handler also sees them camel-cased). */
export interface WlogGenArgs extends GlobalArgs {
  /** Output path or `-`. */
  out: string;
  /** Seed; random when absent (and then reported with --verbose/--json). */
  seed?: number;
  /** Physical block size. */
  pbs: number;
  /** Device size, bytes. */
  size: number;
  /** Log size, bytes. */
  total: number;
  /** Smallest normal IO, bytes. */
  'min-io-size': number;
  /** Largest normal IO, bytes. */
  'max-io-size': number;
  /** Smallest discard, bytes. */
  'min-discard-size': number;
  /** Largest discard, bytes. */
  'max-discard-size': number;
  /** Largest pack data, bytes. */
  'max-pack-size': number;
  /** First lsid. */
  lsid: bigint;
  /** Padding records. */
  padding: boolean;
  /** Discard records. */
  discard: boolean;
  /** All-zero IOs. */
  'all-zero': boolean;
  /** Random data (else lsid-pattern data). */
  rand: boolean;
  /** Print the header and end lsid on stderr. */
  verbose: boolean;
}

const size = (name: string) => (v: string) => parseSize(v, name);

/** `walb wlog gen`. */
export const wlogGenCommand: CommandModule<GlobalArgs, WlogGenArgs> = {
  command: 'gen',
  describe: 'Generate a random valid wlog (as wlog-gen; reproducible with --seed)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'Output wlog file, or - for stdout' })
      .option('seed', { type: 'string', describe: 'Seed, 0 to 4294967295 (default: random, reported with -v or --json)', coerce: (v: string) => parseUint(v, 'seed', 0xffff_ffff) })
      .option('pbs', { alias: 'b', type: 'number', default: 512, choices: [...SUPPORTED_PBS], describe: 'Physical block size' })
      .option('size', { alias: 's', type: 'string', default: '16M', describe: 'Size of the device the IOs address', coerce: size('device size') })
      .option('total', { alias: 'z', type: 'string', default: '1M', describe: 'Total log size to generate', coerce: size('total log size') })
      .option('min-io-size', { type: 'string', default: '512', describe: 'Smallest normal IO', coerce: size('min IO size') })
      .option('max-io-size', { type: 'string', default: '32K', describe: 'Largest normal IO', coerce: size('max IO size') })
      .option('min-discard-size', { type: 'string', default: '512', describe: 'Smallest discard', coerce: size('min discard size') })
      .option('max-discard-size', { type: 'string', default: '64K', describe: 'Largest discard', coerce: size('max discard size') })
      .option('max-pack-size', { type: 'string', default: '16M', describe: 'Largest data of one logpack', coerce: size('max pack size') })
      .option('lsid', { type: 'string', default: '0', describe: 'lsid of the first logpack', coerce: (v: string) => parseLsid(v, 'begin lsid') })
      .option('padding', { type: 'boolean', default: true, describe: 'Include padding records (--no-padding to leave them out)' })
      .option('discard', { type: 'boolean', default: true, describe: 'Include discard records (--no-discard)' })
      .option('all-zero', { type: 'boolean', default: true, describe: 'Make about one IO in ten all zero (--no-all-zero)' })
      .option('rand', { type: 'boolean', default: true, describe: 'Random IO data (--no-rand writes each block\'s lsid in its first 8 bytes)' })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'Print the header and the end lsid on stderr' })
      .example('$0 wlog gen --seed 7 -z 64M -o a.wlog', '64 MiB of log, reproducible')
      .example('$0 wlog gen -b 4096 --no-discard -o - | $0 wlog verify -', 'generate to stdout and verify')
      .epilogue('Sizes take 1024-based suffixes k, m, g (64M = 67108864). Prints nothing unless -v or --json; '
        + 'with --json: {type:"wlog-gen", seed, output, bytes, header, endLsid} (on stderr when -o -).'),
  handler: async (args) => {
    const io = ioOf(args);
    checkGenSizes(args);
    const seed = args.seed ?? randomInt(0, 0xffff_ffff);
    const opts: WlogGenOptions = {
      seed,
      pbs: args.pbs,
      deviceBytes: args.size,
      totalBytes: args.total,
      minIoBytes: args.minIoSize,
      maxIoBytes: args.maxIoSize,
      minDiscardBytes: args.minDiscardSize,
      maxDiscardBytes: args.maxDiscardSize,
      maxPackBytes: args.maxPackSize,
      beginLsid: args.lsid,
      padding: args.padding,
      discard: args.discard,
      allZero: args.allZero,
      randomData: args.rand,
    };
    const progress = await startProgress(io, { label: 'generating', total: args.total, json: args.json });
    const out = openOutput(args.out, io, (n) => progress.update(n));
    const result = await writeThrough(out, progress, () => writeGeneratedWlog(out.sink, opts));
    // With -o - the log owns stdout, so notes go to stderr.
    const notes = out.isStdout ? io.stderr : io.stdout;
    if (args.json) {
      // The header returned by the generator does not carry the checksum that was written.
      const { checksum: _unset, ...header } = wlogHeaderView(result.header);
      await writeTo(notes, toJson({
        type: 'wlog-gen', seed, output: args.out, bytes: out.bytes, header, endLsid: result.endLsid,
      }) + '\n');
    } else if (args.verbose) {
      await writeTo(io.stderr, `seed ${seed}\n${formatWlogHeader(result.header)}\nendLsid ${result.endLsid}\nbytes ${out.bytes}\n`);
    }
  },
};

/**
 * The generator's rules on sizes that relate two options, checked here so that a bad pair is a
 * usage error naming the options (the SDK names its own fields, `minIoBytes`).
 */
function checkGenSizes(args: WlogGenArgs): void {
  const lb = (n: number) => Math.ceil(n / 512);
  // The SDK takes a smallest size of 0 as one block.
  const least = (n: number) => Math.max(1, lb(n));
  if (lb(args['max-io-size']) > WALB_MAX_NORMAL_IO_SECTORS) {
    throw new UsageError(`invalid --max-io-size ${args['max-io-size']}: at most ${WALB_MAX_NORMAL_IO_SECTORS * 512} bytes`);
  }
  if (least(args['min-io-size']) > lb(args['max-io-size'])) {
    throw new UsageError(`--min-io-size ${args['min-io-size']} is larger than --max-io-size ${args['max-io-size']}`);
  }
  if (lb(args['max-discard-size']) > WALB_MAX_DISCARD_IO_SECTORS) {
    throw new UsageError(`invalid --max-discard-size ${args['max-discard-size']}: at most ${WALB_MAX_DISCARD_IO_SECTORS * 512} bytes`);
  }
  if (least(args['min-discard-size']) > lb(args['max-discard-size'])) {
    throw new UsageError(`--min-discard-size ${args['min-discard-size']} is larger than --max-discard-size ${args['max-discard-size']}`);
  }
  if (lb(args.size) < least(args['min-io-size'])) {
    throw new UsageError(`--size (-s) ${args.size} is smaller than the smallest IO (--min-io-size ${args['min-io-size']})`);
  }
  if (args['max-pack-size'] === 0) throw new UsageError('invalid --max-pack-size 0: a logpack holds at least one block');
}
