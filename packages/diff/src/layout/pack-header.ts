/**
 * `struct walb_diff_pack` (4 KiB): the header of a pack of a sorted wdiff, with up to 127 records
 * whose data follow it contiguously.
 *
 * @module
 */
import { checksum, checksumPartial } from '@walbjs/log-format';
import {
  MAX_N_RECORDS_IN_WALB_DIFF_PACK, WALB_DIFF_PACK_FLAG_END, WALB_DIFF_PACK_HEADER_SIZE,
  WALB_DIFF_PACK_MAX_SIZE, WALB_DIFF_PACK_SIZE, WALB_DIFF_RECORD_SIZE,
} from '../constants.ts';
import { ChecksumError, LayoutError, TruncatedError, ValueOutOfRangeError, type ErrorLocation } from '../errors.ts';
import { decodeDiffRecord, encodeDiffRecord, validateDiffRecord, type DiffRecord } from './diff-record.ts';
import { view } from './view.ts';

/** A pack header with its records. */
export interface DiffPackHeader {
  /** Checksum of the 4 KiB block, salt 0. */
  checksum: number;
  /** Bit 0: END. */
  flags: number;
  /** Reserved. */
  reserved0: number;
  /** Bytes of data following the header. */
  totalSize: number;
  /** Reserved. */
  reserved1: number;
  /** The records. */
  records: DiffRecord[];
}

/** Whether `p` is the END pack. */
export function isEndPack(p: DiffPackHeader): boolean {
  return (p.flags & WALB_DIFF_PACK_FLAG_END) !== 0;
}

/**
 * Whether a record with `dataSize` stored bytes fits in a pack already holding `nRecords` records
 * and `totalSize` bytes (`DiffPackHeader::canAdd`): at most 127 records, and at most 32 MiB of data
 * unless it is the first record.
 */
export function packCanAdd(nRecords: number, totalSize: number, dataSize: number): boolean {
  if (nRecords >= MAX_N_RECORDS_IN_WALB_DIFF_PACK) return false;
  if (nRecords > 0 && totalSize + dataSize > WALB_DIFF_PACK_MAX_SIZE) return false;
  return true;
}

/**
 * Decode and validate the 4 KiB pack header at `buf[off ..]`: checksum, record count, every record
 * valid, data contiguous in record order and adding up to `total_size`.
 *
 * @throws {@link ChecksumError}, {@link TruncatedError}, {@link ValueOutOfRangeError}, {@link LayoutError}
 */
export function decodeDiffPackHeader(buf: Uint8Array, off = 0, loc: ErrorLocation = {}): DiffPackHeader {
  const l = { offset: off, ...loc };
  if (off + WALB_DIFF_PACK_SIZE > buf.byteLength) throw new TruncatedError('wdiff pack header truncated', l);
  const block = buf.subarray(off, off + WALB_DIFF_PACK_SIZE);
  const v = view(block);
  const stored = v.getUint32(0, true);
  if (checksumPartial(block, 0) !== 0) {
    const copy = Uint8Array.from(block);
    view(copy).setUint32(0, 0, true);
    throw new ChecksumError('wdiff pack header checksum', stored, checksum(copy, 0), l);
  }
  const n = v.getUint16(4, true);
  if (n > MAX_N_RECORDS_IN_WALB_DIFF_PACK) throw new ValueOutOfRangeError('n_records', n, `exceeds ${MAX_N_RECORDS_IN_WALB_DIFF_PACK}`, l);
  const p: DiffPackHeader = {
    checksum: stored,
    flags: v.getUint8(6),
    reserved0: v.getUint8(7),
    totalSize: v.getUint32(8, true),
    reserved1: v.getUint32(12, true),
    records: [],
  };
  if (p.flags & ~WALB_DIFF_PACK_FLAG_END) throw new ValueOutOfRangeError('flags', p.flags, 'has undefined bits', l);
  if (isEndPack(p) && (n !== 0 || p.totalSize !== 0)) throw new LayoutError(`END pack with ${n} records and ${p.totalSize} bytes`, l);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const rl = { ...l, offset: off + WALB_DIFF_PACK_HEADER_SIZE + i * WALB_DIFF_RECORD_SIZE };
    const r = decodeDiffRecord(block, WALB_DIFF_PACK_HEADER_SIZE + i * WALB_DIFF_RECORD_SIZE, rl);
    validateDiffRecord(r, rl);
    if (r.dataSize > 0 && r.dataOffset !== pos) throw new LayoutError(`record ${i}: data_offset ${r.dataOffset}, expected ${pos}`, rl);
    pos += r.dataSize;
    p.records.push(r);
  }
  if (pos !== p.totalSize) throw new LayoutError(`total_size ${p.totalSize}, but the records hold ${pos} bytes`, l);
  // Only a pack's first record may take it past 32 MiB (DiffPackHeader::canAdd).
  if (n > 1 && p.totalSize > WALB_DIFF_PACK_MAX_SIZE) throw new LayoutError(`${n} records hold ${p.totalSize} bytes, over the 32 MiB pack limit`, l);
  return p;
}

/** Encode a pack header with its checksum into a fresh 4 KiB block; `p.checksum` is updated. */
export function encodeDiffPackHeader(p: DiffPackHeader): Buffer {
  if (p.records.length > MAX_N_RECORDS_IN_WALB_DIFF_PACK) {
    throw new ValueOutOfRangeError('n_records', p.records.length, `exceeds ${MAX_N_RECORDS_IN_WALB_DIFF_PACK}`);
  }
  const b = Buffer.alloc(WALB_DIFF_PACK_SIZE);
  const v = view(b);
  v.setUint16(4, p.records.length, true);
  v.setUint8(6, p.flags);
  v.setUint8(7, p.reserved0);
  v.setUint32(8, p.totalSize, true);
  v.setUint32(12, p.reserved1, true);
  for (let i = 0; i < p.records.length; i++) encodeDiffRecord(p.records[i], b, WALB_DIFF_PACK_HEADER_SIZE + i * WALB_DIFF_RECORD_SIZE);
  p.checksum = checksum(b, 0);
  v.setUint32(0, p.checksum, true);
  return b;
}

/** The END pack that closes a sorted wdiff. */
export function endPack(): DiffPackHeader {
  return { checksum: 0, flags: WALB_DIFF_PACK_FLAG_END, reserved0: 0, totalSize: 0, reserved1: 0, records: [] };
}
