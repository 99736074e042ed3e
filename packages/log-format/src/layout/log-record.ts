/**
 * `struct walb_log_record` (32 bytes): one IO inside a logpack header block.
 *
 * @module
 */
import {
  LOG_RECORD_DISCARD, LOG_RECORD_EXIST, LOG_RECORD_PADDING, LOG_RECORD_SIZE, MAX_LSID,
  WALB_MAX_NORMAL_IO_SECTORS, capacityPb,
} from '../constants.ts';
import { TruncatedError, ValueOutOfRangeError, type ErrorLocation } from '../errors.ts';
import { checkLayoutArgs } from './args.ts';
import { view } from './bytes.ts';

/** One log record, every field of the original. */
export interface LogRecord {
  /** Checksum of the `ioSize·512` data bytes with the device salt; 0 for padding and discard. */
  checksum: number;
  /** `LOG_RECORD_EXIST | LOG_RECORD_PADDING | LOG_RECORD_DISCARD`. */
  flags: number;
  /** Address on the walb device, in LB (0 for padding). */
  offset: bigint;
  /** Size in LB. Normal ≤ 65535, discard ≤ 2^32−1, padding a multiple of the PB in LB. */
  ioSize: number;
  /** Position of the data relative to the pack header: 1 + PBs of the preceding data records. */
  lsidLocal: number;
  /** Reserved, kept for byte-exact rewrites. */
  reserved1: number;
  /** `logpack_lsid + lsidLocal`. */
  lsid: bigint;
}

/** Whether the EXIST flag is set. */
export function isExist(rec: LogRecord): boolean {
  return (rec.flags & LOG_RECORD_EXIST) !== 0;
}
/** Whether this is the padding record. */
export function isPadding(rec: LogRecord): boolean {
  return (rec.flags & LOG_RECORD_PADDING) !== 0;
}
/** Whether this is a discard record (no data). */
export function isDiscard(rec: LogRecord): boolean {
  return (rec.flags & LOG_RECORD_DISCARD) !== 0;
}
/** Whether the record has data blocks in the log (normal and padding records do). */
export function hasData(rec: LogRecord): boolean {
  return (rec.flags & LOG_RECORD_DISCARD) === 0;
}
/** Whether the record's data carries a checksum (normal records only). */
export function hasDataForChecksum(rec: LogRecord): boolean {
  return (rec.flags & (LOG_RECORD_DISCARD | LOG_RECORD_PADDING)) === 0;
}
/** PBs the record's data occupies in the log (0 for discard). */
export function recordDataPb(rec: LogRecord, pbs: number): number {
  return hasData(rec) ? capacityPb(pbs, rec.ioSize) : 0;
}

/**
 * Decode the record at `buf[off .. off+32)`. No validation: see {@link validateLogRecord}.
 *
 * @throws {@link TruncatedError} when `buf` ends before the record; {@link ValueOutOfRangeError}
 *   naming `off` when it is not a byte offset
 */
export function decodeLogRecord(buf: Uint8Array, off: number): LogRecord {
  checkLayoutArgs(off);
  if (off + LOG_RECORD_SIZE > buf.byteLength) {
    throw new TruncatedError(`log record needs ${LOG_RECORD_SIZE} bytes, ${Math.max(0, buf.byteLength - off)} available`, { offset: off });
  }
  const v = view(buf);
  return {
    checksum: v.getUint32(off, true),
    flags: v.getUint32(off + 4, true),
    offset: v.getBigUint64(off + 8, true),
    ioSize: v.getUint32(off + 16, true),
    lsidLocal: v.getUint16(off + 20, true),
    reserved1: v.getUint16(off + 22, true),
    lsid: v.getBigUint64(off + 24, true),
  };
}

/**
 * Encode `rec` into `buf[off .. off+32)`.
 *
 * @throws {@link ValueOutOfRangeError} naming `off` when it is not a byte offset with 32 bytes of
 *   `buf` after it, or the field that does not fit
 */
export function encodeLogRecord(rec: LogRecord, buf: Uint8Array, off: number): void {
  checkLayoutArgs(off);
  if (off + LOG_RECORD_SIZE > buf.byteLength) {
    throw new ValueOutOfRangeError('off', `${off}: a log record needs ${LOG_RECORD_SIZE} bytes, the buffer has ${Math.max(0, buf.byteLength - off)} there`);
  }
  // DataView setters wrap silently; a wrapped lsid_local or size would be a different record.
  if (!Number.isInteger(rec.lsidLocal) || rec.lsidLocal < 0 || rec.lsidLocal > 0xffff) {
    throw new ValueOutOfRangeError('lsid_local', `${rec.lsidLocal} does not fit in 16 bits`, { lsid: rec.lsid });
  }
  if (!Number.isInteger(rec.ioSize) || rec.ioSize < 0 || rec.ioSize > 0xffffffff) {
    throw new ValueOutOfRangeError('io_size', `${rec.ioSize} does not fit in 32 bits`, { lsid: rec.lsid });
  }
  const v = view(buf);
  v.setUint32(off, rec.checksum >>> 0, true);
  v.setUint32(off + 4, rec.flags >>> 0, true);
  v.setBigUint64(off + 8, rec.offset, true);
  v.setUint32(off + 16, rec.ioSize >>> 0, true);
  v.setUint16(off + 20, rec.lsidLocal, true);
  v.setUint16(off + 22, rec.reserved1 ?? 0, true);
  v.setBigUint64(off + 24, rec.lsid, true);
}

/**
 * Check a record as the driver's `is_valid_log_record()` does: EXIST set, non-zero size unless
 * padding, normal size ≤ 65535, `lsid_local > 0`, `lsid ≤ MAX_LSID`.
 *
 * @throws {@link ValueOutOfRangeError}
 */
export function validateLogRecord(rec: LogRecord, loc: ErrorLocation = {}): void {
  if (!isExist(rec)) throw new ValueOutOfRangeError('flags', `EXIST bit not set (flags ${rec.flags})`, loc);
  if (!isPadding(rec) && rec.ioSize === 0) throw new ValueOutOfRangeError('io_size', 'zero-sized IO', loc);
  if (!isDiscard(rec) && rec.ioSize > WALB_MAX_NORMAL_IO_SECTORS) {
    throw new ValueOutOfRangeError('io_size', `${rec.ioSize} LB exceeds ${WALB_MAX_NORMAL_IO_SECTORS}`, loc);
  }
  if (isPadding(rec) && isDiscard(rec)) throw new ValueOutOfRangeError('flags', 'both PADDING and DISCARD set', loc);
  if (rec.lsidLocal === 0) throw new ValueOutOfRangeError('lsid_local', 'must be > 0', loc);
  if (rec.lsid > MAX_LSID) throw new ValueOutOfRangeError('lsid', `${rec.lsid} exceeds MAX_LSID`, loc);
}

export { LOG_RECORD_SIZE };
