/**
 * `@walbjs/diff`: the WalB wdiff formats, byte-compatible with walb-tools 1.0.19.
 *
 * This first slice holds the format vocabulary; the codecs, readers, writers and the
 * convert / merge / apply engine come next (see the package README).
 *
 * - Format constants: {@link WALB_DIFF_VERSION}, the file types, record and pack flags, pack limits
 *   and struct sizes; {@link diffRecordKind} classifies record flags.
 * - Compression: {@link CompressionType} ids and {@link COMPRESSION_NAMES}, the
 *   `type:level:numCpu` option ({@link parseCompressOpt}, {@link formatCompressOpt},
 *   {@link DEFAULT_COMPRESS_OPT}) and per-codec levels ({@link codecLevel}).
 * - Errors: {@link WdiffFormatError} and its subclasses.
 *
 * @example
 * import { parseCompressOpt, formatCompressOpt, codecLevel } from '@walbjs/diff';
 * const opt = parseCompressOpt('zstd');  // { type: 5, level: 0, numCpu: 1 }
 * formatCompressOpt(opt);                // 'zstd:0:1'
 * codecLevel(opt.type, opt.level);       // 1, the level zstd is run at
 *
 * @packageDocumentation
 */
export * from './constants.ts';
export * from './compression.ts';
export * from './errors.ts';
