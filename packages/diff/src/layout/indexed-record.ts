/**
 * `struct walb_indexed_diff_record` (48 bytes) and `struct walb_diff_index_super` (24 bytes): the
 * index at the tail of an indexed wdiff.
 *
 * @module
 */
import { checksum, checksumVerifies } from '@walbjs/log-format';
import { WALB_DIFF_INDEX_SUPER_SIZE, WALB_INDEXED_DIFF_RECORD_SIZE } from '../constants.ts';
import { ChecksumError, LayoutError, TruncatedError, ValueOutOfRangeError, type ErrorLocation } from '../errors.ts';
import { MAX_NORMAL_IO_BLOCKS, recordKind, validateDiffRecordFields } from './diff-record.ts';
import { view, writeU64 } from './view.ts';

/** An index record, every field of the original. */
export interface IndexedDiffRecord {
  /** First LB. */
  ioAddress: number;
  /** LB count: a power of two, aligned to the address. */
  ioBlocks: number;
  /** ALLZERO 0x2, DISCARD 0x4. */
  flags: number;
  /** Compression type of the image. */
  compressionType: number;
  /** Reserved. */
  reserved1: number;
  /** Absolute file offset of the stored image. */
  dataOffset: number;
  /** Stored bytes of the image. */
  dataSize: number;
  /** LB offset of this extent inside the decompressed image. */
  ioOffset: number;
  /** LB of the decompressed image. */
  origBlocks: number;
  /** Reserved. */
  reserved2: number;
  /** Checksum (salt 0) of the stored image. */
  ioChecksum: number;
  /** Checksum (salt 0) of these 48 bytes. */
  recChecksum: number;
}

/** The index super sector at the end of an indexed wdiff. */
export interface DiffIndexSuper {
  /** File offset of the first index record. */
  indexOffset: number;
  /** Number of index records. */
  nRecords: number;
  /** Number of images written (writeDiff calls). */
  nData: number;
  /** Reserved. */
  reserved1: number;
  /** Checksum (salt 0) of the 24 bytes. */
  checksum: number;
}

/**
 * The fields of the index record at byte `off` of `v`, as they are: no checksum, no rule, and an
 * address beyond 2^53 LB would lose precision. Only for records {@link decodeIndexedDiffRecord}
 * validated already, as an indexed reader's index is at open.
 *
 * @example
 * const v = new DataView(index.buffer, index.byteOffset, index.byteLength);
 * for (let off = 0; off < index.byteLength; off += 48) decodeIndexedDiffRecord(index, off); // once
 * const third = readIndexedDiffRecord(v, 2 * 48);                                            // then
 */
export function readIndexedDiffRecord(v: DataView, off: number): IndexedDiffRecord {
  return {
    ioAddress: v.getUint32(off + 4, true) * 0x1_0000_0000 + v.getUint32(off, true),
    ioBlocks: v.getUint32(off + 8, true),
    flags: v.getUint8(off + 12),
    compressionType: v.getUint8(off + 13),
    reserved1: v.getUint16(off + 14, true),
    dataOffset: v.getUint32(off + 20, true) * 0x1_0000_0000 + v.getUint32(off + 16, true),
    dataSize: v.getUint32(off + 24, true),
    ioOffset: v.getUint32(off + 28, true),
    origBlocks: v.getUint32(off + 32, true),
    reserved2: v.getUint32(off + 36, true),
    ioChecksum: v.getUint32(off + 40, true),
    recChecksum: v.getUint32(off + 44, true),
  };
}

/**
 * `loc`, or where it names no offset, a copy naming byte `off`. A location that names one is passed
 * on as it is: the reader's, moved along the index, costs nothing per record.
 */
function placed(loc: ErrorLocation, off: number): ErrorLocation {
  return loc.offset === undefined ? { ...loc, offset: off } : loc;
}

/**
 * The error of a u64 field at byte `off` of `v` that a number cannot hold exactly (2^53 or more),
 * stating its value in full and in the unit of the field.
 */
function beyondNumbers(field: string, v: DataView, off: number, unit: 'LB' | 'bytes', loc: ErrorLocation): ValueOutOfRangeError {
  const limit = unit === 'LB' ? '2^53 LB (4 EiB)' : '2^53 bytes (8 PiB)';
  return new ValueOutOfRangeError(field, v.getBigUint64(off, true), `is ${limit} or more, beyond what this implementation addresses`, loc);
}

/**
 * Decode and validate the index record at `buf[off .. off+48)`: its own checksum, then the record
 * rules, the extent inside its image.
 *
 * An index holds one record per extent, tens of thousands of them: the fields and the checksum's
 * twelve words are read from one view of `buf`, and nothing else is allocated unless it fails.
 * The checksum error and the range errors of the 64-bit fields name `off` when `loc` names no
 * offset.
 *
 * @throws {@link ChecksumError}, {@link ValueOutOfRangeError}, {@link LayoutError}
 */
export function decodeIndexedDiffRecord(buf: Uint8Array, off: number, loc: ErrorLocation = {}): IndexedDiffRecord {
  if (off < 0 || off + WALB_INDEXED_DIFF_RECORD_SIZE > buf.byteLength) throw new RangeError(`index record at ${off} lies outside a ${buf.byteLength}-byte buffer`);
  const v = view(buf);
  // The checksum before any field: a damaged record is reported as damaged, even when the damage
  // made a field out of range (a flipped high bit of an address).
  let sum = 0;
  for (let k = 0; k < WALB_INDEXED_DIFF_RECORD_SIZE; k += 4) sum = (sum + v.getUint32(off + k, true)) | 0;
  if (sum !== 0) {
    const stored = v.getUint32(off + 44, true);
    throw new ChecksumError('index record checksum', stored, (stored - sum) >>> 0, placed(loc, off));
  }
  const r = readIndexedDiffRecord(v, off);
  // A u64 read as high * 2^32 + low exceeds MAX_SAFE_INTEGER exactly when it is 2^53 or more.
  if (r.ioAddress > Number.MAX_SAFE_INTEGER) throw beyondNumbers('io_address', v, off, 'LB', placed(loc, off));
  if (r.dataOffset > Number.MAX_SAFE_INTEGER) throw beyondNumbers('data_offset', v, off + 16, 'bytes', placed(loc, off));
  if (recordKind(r.flags) === 'normal') {
    validateDiffRecordFields(r.ioAddress, r.origBlocks, r.flags, r.compressionType, r.dataSize, loc);
    if (r.ioBlocks === 0) throw new ValueOutOfRangeError('io_blocks', 0, 'must not be 0', loc);
    if (r.origBlocks > MAX_NORMAL_IO_BLOCKS) throw new ValueOutOfRangeError('orig_blocks', r.origBlocks, 'is too large', loc);
    if (r.ioOffset + r.ioBlocks > r.origBlocks) {
      throw new LayoutError(`extent [${r.ioOffset}, +${r.ioBlocks}) lies outside its ${r.origBlocks}-LB image`, loc);
    }
  } else {
    validateDiffRecordFields(r.ioAddress, r.ioBlocks, r.flags, r.compressionType, 0, loc);
  }
  return r;
}

/**
 * Whether two normal index records point at the same stored image (offset, size, codec, size
 * decompressed and checksum all equal): the records one image was split into.
 */
export function sameStoredImage(a: IndexedDiffRecord, b: IndexedDiffRecord): boolean {
  return a.dataOffset === b.dataOffset && a.dataSize === b.dataSize && a.compressionType === b.compressionType
    && a.origBlocks === b.origBlocks && a.ioChecksum === b.ioChecksum;
}

/** Encode `r` into a fresh 48-byte buffer, computing `rec_checksum` (the field is updated). */
export function encodeIndexedDiffRecord(r: IndexedDiffRecord, out?: Uint8Array, off = 0): Uint8Array {
  const b = out ?? Buffer.alloc(WALB_INDEXED_DIFF_RECORD_SIZE);
  if (off < 0 || off + WALB_INDEXED_DIFF_RECORD_SIZE > b.byteLength) throw new RangeError(`index record at ${off} lies outside a ${b.byteLength}-byte buffer`);
  writeIndexedDiffRecord(view(b), off, r);
  return b;
}

/**
 * Encode `r` at byte `off` of `v` and set its `rec_checksum` (the field is updated): the encoder
 * of a whole index, one view of the output and one record object reused for every record. The
 * checksum is summed from the field values as they are written; nothing is allocated (an index
 * has tens of thousands of records: allocating per record cost about 1.5 µs each).
 *
 * @example
 * const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
 * for (let k = 0; k < n; k++) { fill(r, k); writeIndexedDiffRecord(v, k * 48, r); }
 */
export function writeIndexedDiffRecord(v: DataView, off: number, r: IndexedDiffRecord): void {
  // Each word as setUint32 stores it, so that the sum is that of the bytes written.
  const w0 = r.ioAddress % 0x1_0000_0000 >>> 0, w1 = Math.floor(r.ioAddress / 0x1_0000_0000) >>> 0;
  const w3 = ((r.flags & 0xff) | ((r.compressionType & 0xff) << 8) | ((r.reserved1 & 0xffff) << 16)) >>> 0;
  const w4 = r.dataOffset % 0x1_0000_0000 >>> 0, w5 = Math.floor(r.dataOffset / 0x1_0000_0000) >>> 0;
  const w2 = r.ioBlocks >>> 0, w6 = r.dataSize >>> 0, w7 = r.ioOffset >>> 0, w8 = r.origBlocks >>> 0, w9 = r.reserved2 >>> 0, w10 = r.ioChecksum >>> 0;
  v.setUint32(off, w0, true);
  v.setUint32(off + 4, w1, true);
  v.setUint32(off + 8, w2, true);
  v.setUint32(off + 12, w3, true);
  v.setUint32(off + 16, w4, true);
  v.setUint32(off + 20, w5, true);
  v.setUint32(off + 24, w6, true);
  v.setUint32(off + 28, w7, true);
  v.setUint32(off + 32, w8, true);
  v.setUint32(off + 36, w9, true);
  v.setUint32(off + 40, w10, true);
  // The twelve words of a valid record sum to zero (salt 0).
  r.recChecksum = (0x1_0000_0000 - ((w0 + w1 + w2 + w3 + w4 + w5 + w6 + w7 + w8 + w9 + w10) % 0x1_0000_0000)) % 0x1_0000_0000;
  v.setUint32(off + 44, r.recChecksum, true);
}

/**
 * Decode and validate the index super at `buf[off .. off+24)`: its checksum, then `index_offset`
 * within what a number holds exactly. An error without an offset in `loc` names `off`.
 *
 * @throws {@link TruncatedError}, {@link ChecksumError}, {@link ValueOutOfRangeError}
 */
export function decodeDiffIndexSuper(buf: Uint8Array, off: number, loc: ErrorLocation = {}): DiffIndexSuper {
  const l = placed(loc, off);
  if (off < 0 || off + WALB_DIFF_INDEX_SUPER_SIZE > buf.byteLength) throw new TruncatedError('wdiff index super truncated', l);
  const block = buf.subarray(off, off + WALB_DIFF_INDEX_SUPER_SIZE);
  const v = view(block);
  // The checksum before any field, as for a record: damage is reported as damage.
  if (!checksumVerifies(block, 0)) {
    const copy = Uint8Array.from(block);
    view(copy).setUint32(20, 0, true);
    throw new ChecksumError('index super checksum', v.getUint32(20, true), checksum(copy, 0), l);
  }
  const s: DiffIndexSuper = {
    indexOffset: v.getUint32(4, true) * 0x1_0000_0000 + v.getUint32(0, true),
    nRecords: v.getUint32(8, true),
    nData: v.getUint32(12, true),
    reserved1: v.getUint32(16, true),
    checksum: v.getUint32(20, true),
  };
  if (s.indexOffset > Number.MAX_SAFE_INTEGER) throw beyondNumbers('index_offset', v, 0, 'bytes', l);
  return s;
}

/** Encode the index super with its checksum; `s.checksum` is updated. */
export function encodeDiffIndexSuper(s: DiffIndexSuper): Buffer {
  const b = Buffer.alloc(WALB_DIFF_INDEX_SUPER_SIZE);
  const v = view(b);
  writeU64(v, 0, s.indexOffset);
  v.setUint32(8, s.nRecords, true);
  v.setUint32(12, s.nData, true);
  v.setUint32(16, s.reserved1, true);
  s.checksum = checksum(b, 0);
  v.setUint32(20, s.checksum, true);
  return b;
}

/** Largest power of two dividing `addr` (2^31 for 0 and for anything aligned beyond it). */
export function alignedSize(addr: number): number {
  if (addr === 0) return 0x8000_0000;
  // The lowest set bit, where the address fits in 31 bits (an index has one call per record).
  if (addr > 0 && addr < 0x8000_0000 && Number.isInteger(addr)) return addr & -addr;
  let s = 1;
  while (s < 0x8000_0000 && addr % (s * 2) === 0) s *= 2;
  return s;
}

/** Largest power of two ≤ `n` (0 for 0). */
export function maxAlignedSize(n: number): number {
  if (n <= 0) return 0;
  // The highest set bit, where `n` fits in 32 bits.
  if (n >= 1 && n < 0x1_0000_0000) return 0x8000_0000 >>> Math.clz32(n);
  let s = 1;
  while (s * 2 <= n) s *= 2;
  return s;
}

/**
 * Sizes of the power-of-two aligned extents `[addr, addr+blocks)` splits into, each capped by the
 * largest power of two ≤ `maxBlocks` (0: no cap), as `splitIoToAligned` in the original.
 */
export function splitToAligned(addr: number, blocks: number, maxBlocks = 0): number[] {
  const cap = maxAlignedSize(maxBlocks);
  const out: number[] = [];
  while (blocks > 0) {
    let s = alignedSize(addr);
    if (s > blocks) s = maxAlignedSize(blocks);
    if (cap > 0 && s > cap) s = cap;
    out.push(s);
    addr += s;
    blocks -= s;
  }
  return out;
}
