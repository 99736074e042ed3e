/**
 * The error vocabulary of `@walbjs/log-format`. Every parser failure is one of these; each carries
 * where it happened (a byte offset in the file or device, and the lsid when one is known).
 *
 * @module
 */
import { hex32 } from './layout/bytes.ts';

/** Where an error happened. */
export interface ErrorLocation {
  /** Byte offset in the file or device, when known. */
  offset?: number | bigint;
  /** The lsid of the pack or record concerned, when known. */
  lsid?: bigint;
  /** Path or name of the input, when known. */
  source?: string;
}

/** Machine-readable codes of {@link WalbFormatError}. */
export type WalbFormatErrorCode =
  | 'ERR_WALB_CHECKSUM'
  | 'ERR_WALB_SECTOR_TYPE'
  | 'ERR_WALB_LSID_SEQUENCE'
  | 'ERR_WALB_TRUNCATED'
  | 'ERR_WALB_VERSION'
  | 'ERR_WALB_RANGE';

function where(loc: ErrorLocation): string {
  const parts: string[] = [];
  if (loc.source !== undefined) parts.push(loc.source);
  if (loc.offset !== undefined) parts.push(`offset ${loc.offset}`);
  if (loc.lsid !== undefined) parts.push(`lsid ${loc.lsid}`);
  return parts.length ? ` (at ${parts.join(', ')})` : '';
}

/**
 * Base class of every error this package throws on bad input.
 *
 * @example
 * try { await readWlogFile('x.wlog'); }
 * catch (e) { if (e instanceof WalbFormatError) console.error(e.code, e.offset, e.lsid); }
 */
export class WalbFormatError extends Error {
  /** Machine-readable code. */
  readonly code: WalbFormatErrorCode;
  /** Byte offset where the problem was found, when known. */
  offset?: number | bigint;
  /** lsid of the pack or record concerned, when known. */
  lsid?: bigint;
  /** Input path or name, when known. */
  source?: string;
  /** The message without the location suffix. */
  readonly detail: string;

  constructor(code: WalbFormatErrorCode, detail: string, loc: ErrorLocation = {}) {
    super(detail + where(loc));
    this.name = new.target.name;
    this.code = code;
    this.detail = detail;
    this.offset = loc.offset;
    this.lsid = loc.lsid;
    this.source = loc.source;
  }

  /**
   * Fill in location fields that are not set yet (an outer reader knows the file offset that an
   * inner decoder did not) and rebuild the message. Returns `this`.
   */
  locate(loc: ErrorLocation): this {
    if (this.offset === undefined && loc.offset !== undefined) this.offset = loc.offset;
    if (this.lsid === undefined && loc.lsid !== undefined) this.lsid = loc.lsid;
    if (this.source === undefined && loc.source !== undefined) this.source = loc.source;
    this.message = this.detail + where(this);
    return this;
  }
}

/** A checksum does not verify (header block, record data, super sector or file header). */
export class ChecksumError extends WalbFormatError {
  /** The checksum stored in the input. */
  readonly expected: number;
  /** The checksum computed over the bytes read. */
  readonly actual: number;
  constructor(detail: string, expected: number, actual: number, loc?: ErrorLocation) {
    super('ERR_WALB_CHECKSUM', `${detail}: stored ${hex32(expected)}, computed ${hex32(actual)}`, loc);
    this.expected = expected;
    this.actual = actual;
  }
}

/** A block does not have the `sector_type` its position requires. */
export class SectorTypeError extends WalbFormatError {
  /** The sector type found. */
  readonly found: number;
  /** The sector type required. */
  readonly required: number;
  constructor(found: number, required: number, loc?: ErrorLocation) {
    super('ERR_WALB_SECTOR_TYPE', `sector type ${hex16(found)}, expected ${hex16(required)}`, loc);
    this.found = found;
    this.required = required;
  }
}

/** A pack or record lsid does not follow its predecessor (or its own pack). */
export class LsidSequenceError extends WalbFormatError {
  constructor(detail: string, loc?: ErrorLocation) {
    super('ERR_WALB_LSID_SEQUENCE', detail, loc);
  }
}

/** The input ended inside a structure. */
export class TruncatedError extends WalbFormatError {
  constructor(detail: string, loc?: ErrorLocation) {
    super('ERR_WALB_TRUNCATED', detail, loc);
  }
}

/** The format version is not 2. */
export class UnsupportedVersionError extends WalbFormatError {
  /** The version found. */
  readonly version: number;
  constructor(version: number, loc?: ErrorLocation) {
    super('ERR_WALB_VERSION', `unsupported format version ${version} (supported: 2)`, loc);
    this.version = version;
  }
}

/** A field holds a value outside what the format allows. */
export class ValueOutOfRangeError extends WalbFormatError {
  /** Name of the field, as in the original struct. */
  readonly field: string;
  constructor(field: string, detail: string, loc?: ErrorLocation) {
    super('ERR_WALB_RANGE', `${field}: ${detail}`, loc);
    this.field = field;
  }
}

function hex16(n: number): string {
  return '0x' + n.toString(16).padStart(4, '0');
}
