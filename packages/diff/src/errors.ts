/**
 * The error vocabulary of `@walbjs/diff`. Every rejection of bad input by this package is one of
 * these classes; each carries a machine-readable {@link WdiffFormatError.code | code} and, where one
 * is known, where the problem was found (a byte offset, a field name, the input text).
 *
 * @module
 */

/** Where an error happened. */
export interface ErrorLocation {
  /** Byte offset in the file or stream, when known. */
  offset?: number | bigint;
  /** Path or name of the input, when known. */
  source?: string;
}

/** Machine-readable codes of {@link WdiffFormatError}. */
export type WdiffFormatErrorCode =
  /** A field or argument holds a value outside what the format allows. */
  | 'ERR_WDIFF_RANGE'
  /** A text argument does not have the required syntax. */
  | 'ERR_WDIFF_PARSE'
  /** A compression type id or name that the format does not define. */
  | 'ERR_WDIFF_COMPRESSION_TYPE'
  /** A stored image does not decompress, or not to its recorded size. */
  | 'ERR_WDIFF_CODEC'
  /** A checksum (header, pack, record data, index record, index super) does not verify. */
  | 'ERR_WDIFF_CHECKSUM'
  /** The input ends inside a structure. */
  | 'ERR_WDIFF_TRUNCATED'
  /** The format version is not 2, or the file type is unknown. */
  | 'ERR_WDIFF_VERSION'
  /** Records are not sorted, overlap, or point outside their data. */
  | 'ERR_WDIFF_LAYOUT';

function where(loc: ErrorLocation): string {
  const parts: string[] = [];
  if (loc.source !== undefined) parts.push(loc.source);
  if (loc.offset !== undefined) parts.push(`offset ${loc.offset}`);
  return parts.length ? ` (at ${parts.join(', ')})` : '';
}

/**
 * Base class of every error this package throws on bad input.
 *
 * @example
 * try { parseCompressOpt('zip:1:1'); }
 * catch (e) { if (e instanceof WdiffFormatError) console.error(e.code, e.message); }
 */
export class WdiffFormatError extends Error {
  /** Machine-readable code. */
  readonly code: WdiffFormatErrorCode;
  /** Byte offset where the problem was found, when known. */
  offset?: number | bigint;
  /** Input path or name, when known. */
  source?: string;
  /** The message without the location suffix. */
  readonly detail: string;

  /**
   * @param code - machine-readable code
   * @param detail - what is wrong, without the location
   * @param loc - where it is wrong, when known
   */
  constructor(code: WdiffFormatErrorCode, detail: string, loc: ErrorLocation = {}) {
    super(detail + where(loc));
    this.name = new.target.name;
    this.code = code;
    this.detail = detail;
    this.offset = loc.offset;
    this.source = loc.source;
  }

  /**
   * Fill in location fields that are not set yet (an outer reader knows the file offset that an
   * inner decoder did not) and rebuild the message. Returns `this`.
   */
  locate(loc: ErrorLocation): this {
    if (this.offset === undefined && loc.offset !== undefined) this.offset = loc.offset;
    if (this.source === undefined && loc.source !== undefined) this.source = loc.source;
    this.message = this.detail + where(this);
    return this;
  }
}

/** A field or argument holds a value outside what the format allows. */
export class ValueOutOfRangeError extends WdiffFormatError {
  /** Name of the field or argument, as in the original struct or option. */
  readonly field: string;
  /** The offending value. */
  readonly value: unknown;
  /**
   * @param field - field or argument name
   * @param value - the offending value
   * @param detail - the rule it breaks
   * @param loc - where, when known
   */
  constructor(field: string, value: unknown, detail: string, loc?: ErrorLocation) {
    super('ERR_WDIFF_RANGE', `${field}: ${describe(value)} ${detail}`, loc);
    this.field = field;
    this.value = value;
  }
}

/** A text argument (for example a `type:level:numCpu` compression option) is malformed. */
export class ParseError extends WdiffFormatError {
  /** The text that failed to parse. */
  readonly input: string;
  /**
   * @param input - the text that failed to parse
   * @param detail - what is wrong with it
   */
  constructor(input: string, detail: string) {
    super('ERR_WDIFF_PARSE', `${detail}: ${JSON.stringify(input)}`);
    this.input = input;
  }
}

/** A compression type id (in a record) or name (in an option) that the format does not define. */
export class UnknownCompressionTypeError extends WdiffFormatError {
  /** The unknown id or name. */
  readonly value: number | string;
  /**
   * @param value - the unknown id or name
   * @param loc - where, when known
   */
  constructor(value: number | string, loc?: ErrorLocation) {
    super(
      'ERR_WDIFF_COMPRESSION_TYPE',
      typeof value === 'number'
        ? `unknown compression type id ${value} (known: 0..5)`
        : `unknown compression type ${JSON.stringify(value)} (known: none, snappy, gzip, lzma, lz4, zstd)`,
      loc,
    );
    this.value = value;
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  // As a number is printed: the `n` suffix is JavaScript syntax, not part of the value.
  if (typeof v === 'bigint') return v.toString();
  return String(v);
}

/** A checksum of a wdiff structure or of stored data does not verify. */
export class ChecksumError extends WdiffFormatError {
  /** The checksum stored in the file. */
  readonly expected: number;
  /** The checksum computed over what was read. */
  readonly actual: number;
  /**
   * @param what - which checksum
   * @param expected - stored value
   * @param actual - computed value
   * @param loc - where
   */
  constructor(what: string, expected: number, actual: number, loc?: ErrorLocation) {
    super('ERR_WDIFF_CHECKSUM', `${what}: stored ${hex(expected)}, computed ${hex(actual)}`, loc);
    this.expected = expected;
    this.actual = actual;
  }
}

/** The input ends inside a structure. */
export class TruncatedError extends WdiffFormatError {
  /**
   * @param detail - what was being read
   * @param loc - where
   */
  constructor(detail: string, loc?: ErrorLocation) {
    super('ERR_WDIFF_TRUNCATED', detail, loc);
  }
}

/** The file is not a version-2 wdiff of a known type. */
export class UnsupportedVersionError extends WdiffFormatError {
  /**
   * @param detail - what was found
   * @param loc - where
   */
  constructor(detail: string, loc?: ErrorLocation) {
    super('ERR_WDIFF_VERSION', detail, loc);
  }
}

/** Records are out of order, overlap, or point outside their pack or file. */
export class LayoutError extends WdiffFormatError {
  /**
   * @param detail - what is wrong
   * @param loc - where
   */
  constructor(detail: string, loc?: ErrorLocation) {
    super('ERR_WDIFF_LAYOUT', detail, loc);
  }
}

function hex(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

/**
 * Apply was asked to punch discards (`discard: 'punch'`) but has no way to: no
 * `usePunchHoles` implementation in use, and the external command for the target is not
 * on `PATH`. Thrown before anything is written.
 */
export class PunchUnavailableError extends Error {
  /** Machine-readable code. */
  readonly code = 'ERR_WDIFF_PUNCH_UNAVAILABLE';
  /** The target apply would have written. */
  readonly source: string;
  /** The external command looked for: `fallocate` for a file, `blkdiscard` for a block device. */
  readonly tool: string;

  /**
   * @param target - the image file or block device
   * @param tool - the command that was not found
   */
  constructor(target: string, tool: string) {
    super(`cannot punch the discards of ${target}: no native punchHoles in use and no ${tool} on PATH; `
      + `nothing was written (install ${tool} from util-linux, build the native addon, or write discards as zeros)`);
    this.name = 'PunchUnavailableError';
    this.source = target;
    this.tool = tool;
  }
}
