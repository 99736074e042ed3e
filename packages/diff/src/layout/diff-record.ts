/**
 * `struct walb_diff_record` (32 bytes): one IO of a sorted wdiff pack.
 *
 * @module
 */
import { WALB_DIFF_FLAG_ALLZERO, WALB_DIFF_FLAG_DISCARD, WALB_DIFF_FLAGS_MASK } from '../constants.ts';
import { isCompressionType } from '../compression.ts';
import { UnknownCompressionTypeError, ValueOutOfRangeError, type ErrorLocation } from '../errors.ts';
import type { DiffIoKind } from '../algo/diff-io.ts';
import { readAddress, view, writeU64 } from './view.ts';

/**
 * Largest normal IO this implementation reads, in LB (64 MiB): twice the largest IO a log can hold,
 * so every file of the original fits, while a hostile size field cannot drive a huge allocation.
 */
export const MAX_NORMAL_IO_BLOCKS = 131072;

/** A sorted-format record, every field of the original. */
export interface DiffRecord {
  /** First LB. */
  ioAddress: number;
  /** LB count. */
  ioBlocks: number;
  /** ALLZERO 0x2, DISCARD 0x4 (EXIST is never set by the tools). */
  flags: number;
  /** Compression type of the stored data. */
  compressionType: number;
  /** Reserved. */
  reserved1: number;
  /** Byte offset of the data from the end of the 4 KiB pack header. */
  dataOffset: number;
  /** Stored bytes (0 for ALLZERO and DISCARD). */
  dataSize: number;
  /** Checksum (salt 0) of the stored bytes; 0 for non-normal records. */
  checksum: number;
  /** Reserved. */
  reserved2: number;
}

/** The kind a record's flags give. */
export function recordKind(flags: number): DiffIoKind {
  if (flags & WALB_DIFF_FLAG_DISCARD) return 'discard';
  if (flags & WALB_DIFF_FLAG_ALLZERO) return 'allzero';
  return 'normal';
}

/** The flags of a kind. */
export function kindFlags(kind: DiffIoKind): number {
  return kind === 'discard' ? WALB_DIFF_FLAG_DISCARD : kind === 'allzero' ? WALB_DIFF_FLAG_ALLZERO : 0;
}

/** Decode the record at `buf[off .. off+32)` without validation. */
export function decodeDiffRecord(buf: Uint8Array, off: number, loc: ErrorLocation = {}): DiffRecord {
  const v = view(buf);
  return {
    ioAddress: readAddress(v, off, 'io_address', loc),
    ioBlocks: v.getUint32(off + 8, true),
    flags: v.getUint8(off + 12),
    compressionType: v.getUint8(off + 13),
    reserved1: v.getUint16(off + 14, true),
    dataOffset: v.getUint32(off + 16, true),
    dataSize: v.getUint32(off + 20, true),
    checksum: v.getUint32(off + 24, true),
    reserved2: v.getUint32(off + 28, true),
  };
}

/** Encode `r` into `buf[off .. off+32)`. */
export function encodeDiffRecord(r: DiffRecord, buf: Uint8Array, off: number): void {
  const v = view(buf);
  writeU64(v, off, r.ioAddress);
  v.setUint32(off + 8, r.ioBlocks, true);
  v.setUint8(off + 12, r.flags);
  v.setUint8(off + 13, r.compressionType);
  v.setUint16(off + 14, r.reserved1, true);
  v.setUint32(off + 16, r.dataOffset, true);
  v.setUint32(off + 20, r.dataSize, true);
  v.setUint32(off + 24, r.checksum >>> 0, true);
  v.setUint32(off + 28, r.reserved2, true);
}

/**
 * Check a record as `DiffRecord::verify()` plus the bounds the original leaves implicit: known
 * flags and compression type, ALLZERO and DISCARD exclusive, non-zero size, no data on non-normal
 * records, the end address within 2^53 LB.
 *
 * @throws {@link ValueOutOfRangeError}, {@link UnknownCompressionTypeError}
 */
export function validateDiffRecord(r: { ioAddress: number; ioBlocks: number; flags: number; compressionType: number; dataSize: number }, loc: ErrorLocation = {}): void {
  validateDiffRecordFields(r.ioAddress, r.ioBlocks, r.flags, r.compressionType, r.dataSize, loc);
}

/** @internal {@link validateDiffRecord} on the fields themselves (no object per record). */
export function validateDiffRecordFields(ioAddress: number, ioBlocks: number, flags: number, compressionType: number, dataSize: number, loc: ErrorLocation): void {
  if (flags & ~WALB_DIFF_FLAGS_MASK) throw new ValueOutOfRangeError('flags', flags, 'has undefined bits', loc);
  if ((flags & WALB_DIFF_FLAG_ALLZERO) && (flags & WALB_DIFF_FLAG_DISCARD)) throw new ValueOutOfRangeError('flags', flags, 'sets both ALLZERO and DISCARD', loc);
  if (ioBlocks === 0) throw new ValueOutOfRangeError('io_blocks', 0, 'must not be 0', loc);
  if (ioAddress + ioBlocks > Number.MAX_SAFE_INTEGER) throw new ValueOutOfRangeError('io_address', ioAddress, 'ends beyond 2^53 LB', loc);
  if (recordKind(flags) === 'normal') {
    if (!isCompressionType(compressionType)) throw new UnknownCompressionTypeError(compressionType, loc);
    if (ioBlocks > MAX_NORMAL_IO_BLOCKS) throw new ValueOutOfRangeError('io_blocks', ioBlocks, `exceeds ${MAX_NORMAL_IO_BLOCKS} LB for a normal record`, loc);
    if (dataSize === 0) throw new ValueOutOfRangeError('data_size', 0, 'is 0 for a normal record', loc);
    const raw = ioBlocks * 512;
    if (compressionType === 0 ? dataSize !== raw : dataSize > raw) {
      throw new ValueOutOfRangeError('data_size', dataSize, `does not fit ${ioBlocks} LB stored ${compressionType === 0 ? 'raw' : 'compressed'}`, loc);
    }
  } else if (dataSize !== 0) {
    throw new ValueOutOfRangeError('data_size', dataSize, 'must be 0 for an ALLZERO or DISCARD record', loc);
  }
}
