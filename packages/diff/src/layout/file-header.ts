/**
 * `struct walb_diff_file_header` (32 bytes): the header of every wdiff file, sorted or indexed.
 *
 * @module
 */
import { checksum, checksumVerifies } from '@walbjs/log-format';
import { WALB_DIFF_FILE_HEADER_SIZE, WALB_DIFF_TYPE_INDEXED, WALB_DIFF_TYPE_SORTED, WALB_DIFF_VERSION, type WdiffType } from '../constants.ts';
import { ChecksumError, TruncatedError, UnsupportedVersionError, type ErrorLocation } from '../errors.ts';
import { view } from './view.ts';

/** The wdiff file header, every field of the original. */
export interface DiffFileHeader {
  /** Checksum of the 32 bytes, salt 0. */
  checksum: number;
  /** 2. */
  version: number;
  /** 0 sorted, 1 indexed. */
  type: WdiffType;
  /** Reserved, kept for byte-exact rewrites. */
  reserved1: number;
  /** Reserved. */
  reserved2: number;
  /** Reserved. */
  reserved3: number;
  /** Uuid of the walb device the diff comes from. */
  uuid: Uint8Array;
}

/** A header for a new file. */
export function makeDiffFileHeader(type: WdiffType, uuid: Uint8Array = new Uint8Array(16)): DiffFileHeader {
  return { checksum: 0, version: WALB_DIFF_VERSION, type, reserved1: 0, reserved2: 0, reserved3: 0, uuid: Uint8Array.from(uuid) };
}

/**
 * Decode and validate the header at `buf[off .. off+32)`.
 *
 * @throws {@link TruncatedError}, {@link ChecksumError}, {@link UnsupportedVersionError}
 */
export function decodeDiffFileHeader(buf: Uint8Array, off = 0, loc: ErrorLocation = {}): DiffFileHeader {
  const l = { offset: off, ...loc };
  if (off + WALB_DIFF_FILE_HEADER_SIZE > buf.byteLength) throw new TruncatedError('wdiff file header truncated', l);
  const block = buf.subarray(off, off + WALB_DIFF_FILE_HEADER_SIZE);
  const v = view(block);
  const h: DiffFileHeader = {
    checksum: v.getUint32(0, true),
    version: v.getUint16(4, true),
    type: v.getUint8(6) as WdiffType,
    reserved1: v.getUint8(7),
    reserved2: v.getUint32(8, true),
    reserved3: v.getUint32(12, true),
    uuid: block.slice(16, 32),
  };
  if (!checksumVerifies(block, 0)) {
    const copy = Uint8Array.from(block);
    view(copy).setUint32(0, 0, true);
    throw new ChecksumError('wdiff file header checksum', h.checksum, checksum(copy, 0), l);
  }
  if (h.version !== WALB_DIFF_VERSION) throw new UnsupportedVersionError(`wdiff version ${h.version} (supported: 2)`, l);
  if (h.type !== WALB_DIFF_TYPE_SORTED && h.type !== WALB_DIFF_TYPE_INDEXED) throw new UnsupportedVersionError(`wdiff type ${h.type} (0 sorted, 1 indexed)`, l);
  return h;
}

/** Encode `h` with its checksum into a fresh 32-byte buffer; `h.checksum` is updated. */
export function encodeDiffFileHeader(h: DiffFileHeader): Buffer {
  const b = Buffer.alloc(WALB_DIFF_FILE_HEADER_SIZE);
  const v = view(b);
  v.setUint16(4, h.version, true);
  v.setUint8(6, h.type);
  v.setUint8(7, h.reserved1);
  v.setUint32(8, h.reserved2, true);
  v.setUint32(12, h.reserved3, true);
  b.set(h.uuid.subarray(0, 16), 16);
  h.checksum = checksum(b, 0);
  v.setUint32(0, h.checksum, true);
  return b;
}
