/**
 * What the `walb wdiff` commands share: loading the SDK, value parsers that turn bad values into
 * usage errors, output guards, and the way a summary is reported.
 *
 * `@walbjs/diff` is imported by the handlers when they run, not when the command tree is built, so
 * `walb wlog …` and `--help` never load the codecs.
 *
 * @module
 */
import { open, stat } from 'node:fs/promises';
import type { Argv } from 'yargs';
import type { CompressOpt } from '@walbjs/diff';
import { UsageError } from '../../util/errors.ts';
import type { CliIo } from '../../util/io.ts';
import { writeTo } from '../../util/io.ts';
import { toJson } from '../../util/json.ts';
import { parseSize } from '../../util/parse.ts';
import { armInterrupt } from '../../util/interrupt.ts';
import { openOutput, writeThrough } from '../../util/output.ts';
import { startProgress, type ProgressOptions } from '../../util/progress.ts';
import type { ByteSink } from '@walbjs/log-format';

/** The SDK module, loaded on first use. */
export type DiffSdk = typeof import('@walbjs/diff');

/** Load `@walbjs/diff`. */
export function loadSdk(): Promise<DiffSdk> {
  return import('@walbjs/diff');
}

/** Bytes of a logical block. */
export const LB = 512;

/**
 * Parse a size in bytes (suffixes k, m, g, 1024-based) that must be a whole number of 512-byte
 * logical blocks, and return it in LB.
 *
 * @throws {@link UsageError}
 */
export function parseSizeLb(text: string | number, what: string): number {
  const bytes = parseSize(text, what);
  if (bytes % LB !== 0) throw new UsageError(`invalid ${what} ${JSON.stringify(String(text))}: not a multiple of 512 bytes`);
  return bytes / LB;
}

/**
 * Parse `--cmpr type[:level[:numCpu]]` (`snappy`, `zstd:3`, `gzip:9:4`) with the SDK's parser, a
 * bad value becoming a usage error.
 */
export function parseCmpr(d: DiffSdk, text: string | undefined): CompressOpt | undefined {
  if (text === undefined) return undefined;
  try {
    return d.parseCompressOpt(text);
  } catch (e) {
    if (e instanceof d.WdiffFormatError) throw new UsageError(`invalid --cmpr ${JSON.stringify(text)}: ${e.message}`);
    throw e;
  }
}


export { checkOutputNotInput } from '../../util/output.ts';

/**
 * Refuse `-` (stdin) and pipes given by their path (`<(…)`) among `paths`, which this command reads
 * as files: `why` says why it needs them (random access, or a second pass). A path that does not
 * exist passes, for the reader to report; a directory is refused with `EISDIR`.
 *
 * @throws {@link UsageError}, or an `EISDIR` system error
 */
export async function requireFiles(paths: readonly string[], what: string, why: string, hint = 'save it to a file first'): Promise<void> {
  if (paths.includes('-')) throw new UsageError(`${what} cannot be - (stdin): ${why}; ${hint}`);
  for (const p of paths) {
    const st = await stat(p).catch(() => undefined);
    // The error a reader gives for a directory (as `wlog show DIR` reports it), not "a stream".
    if (st?.isDirectory()) {
      throw Object.assign(new Error(`EISDIR: illegal operation on a directory, open '${p}'`), { code: 'EISDIR', errno: -21, syscall: 'open', path: p });
    }
    if (st && !st.isFile() && !st.isBlockDevice()) throw new UsageError(`${what} cannot be a pipe or other stream (${p}): ${why}; ${hint}`);
  }
}

/**
 * Whether `path` can be read at offsets (a regular file or a block device). A missing path counts
 * as one, for its reader to report.
 */
export async function isFileOrDevice(path: string): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  return !st || st.isFile() || st.isBlockDevice();
}

/** The arguments of the commands that write one wdiff (`from-wlog`, `merge`). */
export interface WdiffOutputArgs {
  /** Output path or `-`. */
  out: string;
  /** Write the indexed format. */
  indexed: boolean;
  /** `type[:level[:numCpu]]`. */
  cmpr?: string;
  /** Largest IO in LB (0: no split). */
  'max-io': number;
  /** Write an output file with direct IO (default true). */
  direct: boolean;
  /** Print a summary on stderr. */
  verbose: boolean;
}

/** What differs between the commands in {@link wdiffOutputOptions}' help. */
export interface WdiffOutputHelp {
  /** Help of `--indexed`. */
  indexed: string;
  /** Help of `--cmpr`. */
  cmpr: string;
  /** Default of `--max-io`, and its help. */
  maxIo: { default: string; describe: string };
}

/** Declare the options of {@link WdiffOutputArgs} on a command's builder. */
export function wdiffOutputOptions<T>(y: Argv<T>, help: WdiffOutputHelp): Argv<T & WdiffOutputArgs> {
  return y
    .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'Output wdiff file, or - for stdout' })
    .option('indexed', { type: 'boolean', default: false, describe: help.indexed })
    .option('cmpr', { type: 'string', describe: help.cmpr })
    .option('max-io', { alias: 'x', type: 'string', default: help.maxIo.default, describe: help.maxIo.describe, coerce: (v: string) => parseSizeLb(v, 'max IO size') })
    .option('direct', { type: 'boolean', default: true, describe: 'Write an output file with direct IO (no page cache filled, no writeback left behind); --no-direct writes through the page cache' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'Print a summary on stderr' }) as unknown as Argv<T & WdiffOutputArgs>;
}

/** What {@link wdiffWriteOptions} gives: options that `convertWlogs` and `mergeWdiffs` both take. */
export interface WdiffWriteSettings {
  indexed: boolean;
  maxIoBlocks: number;
  sync: boolean;
  direct: boolean;
  cmpr?: CompressOpt;
}

/**
 * The SDK's write options from {@link WdiffOutputArgs}. A file output is synced as it is written
 * (the final sync in {@link writeOutput} then finds little).
 *
 * @throws {@link UsageError} on a bad `--cmpr`.
 */
export function wdiffWriteOptions(d: DiffSdk, args: WdiffOutputArgs): WdiffWriteSettings {
  const opts: WdiffWriteSettings = { indexed: args.indexed, maxIoBlocks: args['max-io'], sync: args.out !== '-', direct: args.direct };
  const cmpr = parseCmpr(d, args.cmpr);
  if (cmpr) opts.cmpr = cmpr;
  return opts;
}

/** Format of a written wdiff, for summaries. */
export function formatName(indexed: boolean): 'indexed' | 'sorted' {
  return indexed ? 'indexed' : 'sorted';
}

/**
 * Report the outcome of a command that writes a file: under `--json` the document (on stderr when
 * the data itself went to stdout), else with `--verbose` the text line on stderr, else nothing.
 */
export async function report(io: CliIo, opts: { json: boolean; verbose: boolean; toStdout: boolean }, doc: object, text: string): Promise<void> {
  if (opts.json) await writeTo(opts.toStdout ? io.stderr : io.stdout, toJson(doc) + '\n');
  else if (opts.verbose) await writeTo(io.stderr, text + '\n');
}

/** A count for the progress bar of commands that count IOs. */
export const ioCount = (n: number): string => `${n} IOs`;

/**
 * Write one output (a file, or stdout for `-`) with a progress bar: `run` gets the sink and a
 * progress callback; on failure the partial output file is removed. `final` gives the text left
 * in place of the bar when `run` succeeds. Returns what `run` returned and the bytes written.
 */
export async function writeOutput<T>(
  io: CliIo, out: string, progressOpts: ProgressOptions,
  run: (sink: ByteSink, onProgress: (n: number) => void) => Promise<T>,
  final?: (result: T) => string,
): Promise<{ result: T; bytes: number; isStdout: boolean }> {
  const progress = await startProgress(io, progressOpts);
  if (out !== '-') {
    // A file goes to the SDK by its path: it then writes with large positional writes, several in
    // flight, rather than chunk by chunk through a callback.
    // Nothing here removes `out`: the SDK writes a regular file under a temporary name, renames it
    // over `out` once whole and removes the temporary file when the run fails or the process exits
    // first, so `out` keeps what it had until then (anything else is written in place). Removing
    // `out` after a failure or an interruption lost both files when it came after the rename (an
    // interrupt during the final sync). The handler makes an interrupt exit through
    // `process.exit`, whose exit hooks remove the temporary file.
    const disarm = armInterrupt(() => {});
    try {
      const result = await run(out, (n) => progress.update(n));
      if (final) progress.finish(final(result));
      // Success means the file is on disk, as the original's tools (fdatasync) promise: a user may
      // delete the logs it came from next.
      const st = await stat(out);
      if (st.isFile() || st.isBlockDevice()) {
        const fh = await open(out, 'r');
        try { await fh.datasync(); } finally { await fh.close(); }
      }
      // A pipe or /dev/null keeps no size: what the SDK says it wrote.
      const told = (result as { bytes?: unknown }).bytes;
      return { result, bytes: st.isFile() || typeof told !== 'number' ? st.size : told, isStdout: false };
    } finally {
      disarm();
      progress.stop();
    }
  }
  const o = openOutput(out, io);
  const result = await writeThrough(o, progress, async () => {
    const r = await run(o.sink, (n) => progress.update(n));
    if (final) progress.finish(final(r));
    return r;
  });
  return { result, bytes: o.bytes, isStdout: o.isStdout };
}
