/**
 * Compression of wdiff records: the type ids stored in `compression_type`, their names, and the
 * `type:level:numCpu` option that walb-tools commands accept (`-cmpr`, `-sync-cmpr`,
 * `archive-info add`, `replicate`).
 *
 * The codecs themselves live elsewhere; this module only names and validates the choice.
 *
 * @module
 */
import { ParseError, UnknownCompressionTypeError, ValueOutOfRangeError } from './errors.ts';

/**
 * Compression type ids, as stored in a record's `compression_type` byte.
 *
 * Note that the id order (none, gzip, snappy, …) differs from the name order of
 * {@link COMPRESSION_NAMES} (none, snappy, gzip, …): both are the original's.
 */
export const CompressionType = {
  /** Raw bytes. */
  NONE: 0,
  /** A zlib stream (RFC 1950), despite the name. */
  GZIP: 1,
  /** A raw snappy block. */
  SNAPPY: 2,
  /** An .xz stream. */
  LZMA: 3,
  /** An LZ4 block without a frame. */
  LZ4: 4,
  /** A zstd frame. */
  ZSTD: 5,
} as const;

/** A compression type id: 0 (none) to 5 (zstd). */
export type CompressionType = (typeof CompressionType)[keyof typeof CompressionType];

/** A compression type name as written in options and printed by the tools. */
export type CompressionName = 'none' | 'snappy' | 'gzip' | 'lzma' | 'lz4' | 'zstd';

/** Every compression type name, in the order of the original's table. */
export const COMPRESSION_NAMES: readonly CompressionName[] = Object.freeze([
  'none', 'snappy', 'gzip', 'lzma', 'lz4', 'zstd',
] as const);

/** Number of compression types (`WALB_DIFF_CMPR_MAX`). */
export const COMPRESSION_TYPE_COUNT = 6;

const NAME_OF: Readonly<Record<CompressionType, CompressionName>> = Object.freeze({
  0: 'none', 1: 'gzip', 2: 'snappy', 3: 'lzma', 4: 'lz4', 5: 'zstd',
});

const TYPE_OF: ReadonlyMap<string, CompressionType> = new Map(
  (Object.entries(NAME_OF) as Array<[string, CompressionName]>).map(([id, name]) => [name, Number(id) as CompressionType]),
);

/**
 * Whether `n` is a defined compression type id.
 *
 * @param n - a `compression_type` byte, or any number
 */
export function isCompressionType(n: number): n is CompressionType {
  return Number.isInteger(n) && n >= 0 && n < COMPRESSION_TYPE_COUNT;
}

/**
 * The name of compression type `type`.
 *
 * @param type - a compression type id
 * @throws {@link UnknownCompressionTypeError} when `type` is not 0..5
 *
 * @example
 * compressionTypeName(CompressionType.GZIP) // 'gzip'
 */
export function compressionTypeName(type: number): CompressionName {
  if (!isCompressionType(type)) throw new UnknownCompressionTypeError(type);
  return NAME_OF[type];
}

/**
 * The id of compression type `name` (exact, lower-case, as the original compares).
 *
 * @param name - one of {@link COMPRESSION_NAMES}
 * @throws {@link UnknownCompressionTypeError} for any other string
 *
 * @example
 * parseCompressionType('zstd') // 5
 */
export function parseCompressionType(name: string): CompressionType {
  const t = TYPE_OF.get(name);
  if (t === undefined) throw new UnknownCompressionTypeError(name);
  return t;
}

/** How wdiff data is compressed, and by how many threads (`CompressOpt` of the original). */
export interface CompressOpt {
  /** The codec. */
  readonly type: CompressionType;
  /** The codec level, 0..9; 0 means the codec's default (see {@link codecLevel}). */
  readonly level: number;
  /** Number of compression threads, 1..255. */
  readonly numCpu: number;
}

/** Largest {@link CompressOpt.level} (the original's `CompressOpt::verify`). */
export const COMPRESS_OPT_MAX_LEVEL = 9;
/** Largest {@link CompressOpt.numCpu}: the field is a `uint8_t` on the wire. */
export const COMPRESS_OPT_MAX_NUM_CPU = 255;

/**
 * The default option of writers, merges and syncs: snappy, codec-default level, one thread
 * (`snappy:0:1`).
 */
export const DEFAULT_COMPRESS_OPT: CompressOpt = Object.freeze({ type: CompressionType.SNAPPY, level: 0, numCpu: 1 });

/**
 * Check every field of a compression option.
 *
 * @param opt - the option to check
 * @returns `opt`
 * @throws {@link UnknownCompressionTypeError} for a type that is not 0..5;
 *   {@link ValueOutOfRangeError} for a level outside 0..9 or a numCpu outside 1..255
 */
export function validateCompressOpt(opt: CompressOpt): CompressOpt {
  if (!isCompressionType(opt.type)) throw new UnknownCompressionTypeError(opt.type);
  if (!Number.isInteger(opt.level) || opt.level < 0 || opt.level > COMPRESS_OPT_MAX_LEVEL) {
    throw new ValueOutOfRangeError('level', opt.level, `is not an integer in 0..${COMPRESS_OPT_MAX_LEVEL}`);
  }
  if (!Number.isInteger(opt.numCpu) || opt.numCpu < 1 || opt.numCpu > COMPRESS_OPT_MAX_NUM_CPU) {
    throw new ValueOutOfRangeError('numCpu', opt.numCpu, `is not an integer in 1..${COMPRESS_OPT_MAX_NUM_CPU}`);
  }
  return opt;
}

/**
 * Build a validated, frozen compression option; omitted fields take the defaults of
 * {@link DEFAULT_COMPRESS_OPT}.
 *
 * @param opt - the fields to set
 * @throws the errors of {@link validateCompressOpt}
 *
 * @example
 * makeCompressOpt({ type: CompressionType.ZSTD, level: 3 }) // { type: 5, level: 3, numCpu: 1 }
 */
export function makeCompressOpt(opt: Partial<CompressOpt> = {}): CompressOpt {
  return Object.freeze(validateCompressOpt({ ...DEFAULT_COMPRESS_OPT, ...opt }));
}

const DECIMAL = /^[0-9]{1,3}$/;

function parseField(text: string, field: 'level' | 'numCpu', input: string): number {
  if (!DECIMAL.test(text)) {
    throw new ParseError(input, `${field} must be a decimal number of at most 3 digits, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/**
 * Parse the command-line form `type[:level[:numCpu]]`, for example `snappy`, `zstd:3` or
 * `gzip:9:4`. Omitted fields default to level 0 (the codec's default) and one thread. The
 * original accepts only the full three-field form; every such string parses here to the same
 * value.
 *
 * The input is taken exactly: no surrounding spaces, lower-case names, plain decimal digits.
 *
 * @param text - the option text
 * @returns a frozen, validated option
 * @throws {@link ParseError} for a malformed string (empty field, too many fields, non-digits);
 *   {@link UnknownCompressionTypeError} for an unknown name; {@link ValueOutOfRangeError} for a
 *   level outside 0..9 or a numCpu outside 1..255
 *
 * @example
 * parseCompressOpt('zstd:3')     // { type: 5, level: 3, numCpu: 1 }
 * parseCompressOpt('snappy:0:1') // DEFAULT_COMPRESS_OPT's value
 */
export function parseCompressOpt(text: string): CompressOpt {
  if (typeof text !== 'string') throw new ParseError(String(text), 'compression option must be a string');
  const parts = text.split(':');
  if (parts.length > 3) throw new ParseError(text, 'compression option has more than 3 fields (type:level:numCpu)');
  const [name, levelText, cpuText] = parts;
  if (name === '') throw new ParseError(text, 'compression type is empty');
  const type = parseCompressionType(name);
  const level = levelText === undefined ? 0 : parseField(levelText, 'level', text);
  const numCpu = cpuText === undefined ? 1 : parseField(cpuText, 'numCpu', text);
  return makeCompressOpt({ type, level, numCpu });
}

/**
 * Format an option as `type:level:numCpu`, the form the original prints and accepts.
 *
 * @param opt - the option
 * @throws the errors of {@link validateCompressOpt}
 *
 * @example
 * formatCompressOpt(DEFAULT_COMPRESS_OPT) // 'snappy:0:1'
 */
export function formatCompressOpt(opt: CompressOpt): string {
  validateCompressOpt(opt);
  return `${compressionTypeName(opt.type)}:${opt.level}:${opt.numCpu}`;
}

/** The levels a codec accepts, and what level 0 stands for. */
export interface CodecLevelRange {
  /** Smallest level. Always 0, which selects the codec default. */
  readonly min: 0;
  /** Largest level the codec accepts. */
  readonly max: number;
  /** The level the codec actually uses when asked for 0, or `undefined` if it has no levels. */
  readonly defaultLevel: number | undefined;
}

const CODEC_LEVELS: Readonly<Record<CompressionType, CodecLevelRange>> = Object.freeze({
  // Codecs without levels ignore the value; the option still limits it to 0..9.
  [CompressionType.NONE]: { min: 0, max: COMPRESS_OPT_MAX_LEVEL, defaultLevel: undefined },
  [CompressionType.SNAPPY]: { min: 0, max: COMPRESS_OPT_MAX_LEVEL, defaultLevel: undefined },
  [CompressionType.LZ4]: { min: 0, max: COMPRESS_OPT_MAX_LEVEL, defaultLevel: undefined },
  // zlib: 1..9, 0 means Z_DEFAULT_COMPRESSION, which zlib runs as level 6.
  [CompressionType.GZIP]: { min: 0, max: 9, defaultLevel: 6 },
  // xz presets 0..9; the original passes "level or 6", so 0 means preset 6.
  [CompressionType.LZMA]: { min: 0, max: 9, defaultLevel: 6 },
  // zstd: the original passes "level or 1" and requires level < 20.
  [CompressionType.ZSTD]: { min: 0, max: 19, defaultLevel: 1 },
});

/**
 * The level range of codec `type` (wider than {@link CompressOpt} allows for zstd, whose codec
 * accepts up to 19).
 *
 * @param type - a compression type id
 * @throws {@link UnknownCompressionTypeError} when `type` is not 0..5
 */
export function codecLevelRange(type: number): CodecLevelRange {
  if (!isCompressionType(type)) throw new UnknownCompressionTypeError(type);
  return CODEC_LEVELS[type];
}

/**
 * The level to hand to codec `type` for a requested `level`, resolving 0 to the codec's default as
 * the original does: gzip 0 → 6 (`Z_DEFAULT_COMPRESSION`), lzma 0 → preset 6, zstd 0 → 1. Returns
 * `undefined` for codecs without levels (none, snappy, lz4), which ignore it.
 *
 * @param type - a compression type id
 * @param level - the requested level
 * @throws {@link UnknownCompressionTypeError} for an unknown type; {@link ValueOutOfRangeError}
 *   for a level outside the codec's range (gzip and lzma 0..9, zstd 0..19, others 0..9)
 *
 * @example
 * codecLevel(CompressionType.ZSTD, 0)  // 1
 * codecLevel(CompressionType.ZSTD, 20) // throws ValueOutOfRangeError
 */
export function codecLevel(type: number, level: number): number | undefined {
  const r = codecLevelRange(type);
  if (!Number.isInteger(level) || level < r.min || level > r.max) {
    throw new ValueOutOfRangeError('level', level, `is not an integer in ${r.min}..${r.max} for ${NAME_OF[type as CompressionType]}`);
  }
  if (r.defaultLevel === undefined) return undefined;
  return level === 0 ? r.defaultLevel : level;
}
