/**
 * `struct walb_logpack_header` (24 bytes + 32-byte records, one PB): the header block of a logpack.
 *
 * @module
 */
import {
  INVALID_LSID, LOGPACK_HEADER_SIZE, LOG_RECORD_SIZE, MAX_TOTAL_IO_SIZE_IN_LOGPACK_HEADER,
  SECTOR_TYPE_LOGPACK, maxRecordsInPack,
} from '../constants.ts';
import { checksum, checksumPartial } from '../checksum.ts';
import {
  ChecksumError, LsidSequenceError, SectorTypeError, TruncatedError, ValueOutOfRangeError,
  type ErrorLocation,
} from '../errors.ts';
import { checkLayoutArgs } from './args.ts';
import { view } from './bytes.ts';
import {
  decodeLogRecord, encodeLogRecord, isPadding, recordDataPb, validateLogRecord, type LogRecord,
} from './log-record.ts';

/** A logpack header with its records. */
export interface LogpackHeader {
  /** Checksum of the whole header block with the device salt (its two's complement). */
  checksum: number;
  /** Always `SECTOR_TYPE_LOGPACK`. */
  sectorType: number;
  /** PBs of data that follow the header, padding included, discards excluded. */
  totalIoSize: number;
  /** lsid of this header block. */
  logpackLsid: bigint;
  /** Number of records (the padding record included). */
  nRecords: number;
  /** Number of padding records: 0 or 1. */
  nPadding: number;
  /** Reserved, kept for byte-exact rewrites. */
  reserved1: number;
  /** The records, `nRecords` of them. */
  records: LogRecord[];
}

/** Options of {@link decodeLogpackHeader}. */
export interface DecodeLogpackOptions {
  /** Verify the header checksum (default true). */
  verifyChecksum?: boolean;
  /** The lsid this block must carry; a mismatch throws {@link LsidSequenceError}. */
  expectedLsid?: bigint;
  /** Where the block is, for error messages. */
  loc?: ErrorLocation;
}

/** Whether `h` is the end marker of a wlog file (`logpack_lsid = 2^64−1`, no records). */
export function isEndMarker(h: LogpackHeader): boolean {
  return h.nRecords === 0 && h.logpackLsid === INVALID_LSID;
}

/**
 * lsid of the pack that follows `h`: `logpack_lsid + 1 + total_io_size`, or `logpack_lsid` itself
 * for a pack without records (a zero-size flush).
 */
export function nextLogpackLsid(h: LogpackHeader): bigint {
  if (h.nRecords === 0 && h.totalIoSize === 0) return h.logpackLsid;
  return h.logpackLsid + 1n + BigInt(h.totalIoSize);
}

/** A new, empty logpack header at `lsid`. */
export function emptyLogpackHeader(lsid: bigint): LogpackHeader {
  return {
    checksum: 0, sectorType: SECTOR_TYPE_LOGPACK, totalIoSize: 0, logpackLsid: lsid,
    nRecords: 0, nPadding: 0, reserved1: 0, records: [],
  };
}

/** The end-marker header written at the end of every wlog file. */
export function endMarkerHeader(): LogpackHeader {
  return emptyLogpackHeader(INVALID_LSID);
}

/**
 * Decode and validate the header block at `buf[off .. off+pbs)`, as the driver's
 * `is_valid_logpack_header_and_records_with_checksum()`, plus bounds the driver leaves implicit:
 * `n_records` fits in the block, and the records' PBs add up to `total_io_size` at the positions
 * their `lsid_local` claim.
 *
 * @throws {@link SectorTypeError}, {@link ChecksumError}, {@link ValueOutOfRangeError},
 *   {@link LsidSequenceError}, {@link TruncatedError}; {@link ValueOutOfRangeError} naming `off` or
 *   `pbs` when `off` is not a byte offset or `pbs` not a physical block size (512 to 4096)
 *
 * @example
 * const h = decodeLogpackHeader(block, 0, 512, salt, { expectedLsid: 0n });
 * for (const r of h.records) console.log(r.offset, r.ioSize);
 */
export function decodeLogpackHeader(
  buf: Uint8Array, off: number, pbs: number, salt: number, opts: DecodeLogpackOptions = {},
): LogpackHeader {
  const loc = opts.loc ?? {};
  checkLayoutArgs(off, pbs);
  if (off + pbs > buf.byteLength) {
    throw new TruncatedError(`logpack header needs ${pbs} bytes, ${Math.max(0, buf.byteLength - off)} available`, loc);
  }
  const v = view(buf);
  const sectorType = v.getUint16(off + 4, true);
  if (sectorType !== SECTOR_TYPE_LOGPACK) throw new SectorTypeError(sectorType, SECTOR_TYPE_LOGPACK, loc);
  const h: LogpackHeader = {
    checksum: v.getUint32(off, true),
    sectorType,
    totalIoSize: v.getUint16(off + 6, true),
    logpackLsid: v.getBigUint64(off + 8, true),
    nRecords: v.getUint16(off + 16, true),
    nPadding: v.getUint16(off + 18, true),
    reserved1: v.getUint32(off + 20, true),
    records: [],
  };
  const hloc: ErrorLocation = { ...loc, lsid: loc.lsid ?? h.logpackLsid };
  if (h.nRecords > 0 && (opts.verifyChecksum ?? true)) {
    const block = buf.subarray(off, off + pbs);
    if (checksumPartial(block, salt >>> 0) !== 0) {
      const copy = Uint8Array.from(block);
      view(copy).setUint32(0, 0, true);
      throw new ChecksumError('logpack header checksum', h.checksum, checksum(copy, salt), hloc);
    }
  }
  if (opts.expectedLsid !== undefined && h.logpackLsid !== opts.expectedLsid && !isEndMarker(h)) {
    throw new LsidSequenceError(`logpack lsid ${h.logpackLsid}, expected ${opts.expectedLsid}`, hloc);
  }
  const maxRec = maxRecordsInPack(pbs);
  if (h.nRecords > maxRec) {
    throw new ValueOutOfRangeError('n_records', `${h.nRecords} exceeds ${maxRec} records per ${pbs}-byte block`, hloc);
  }
  if (h.nRecords === 0) {
    if (h.totalIoSize !== 0) throw new ValueOutOfRangeError('total_io_size', `${h.totalIoSize} in a pack without records`, hloc);
    if (h.nPadding !== 0) throw new ValueOutOfRangeError('n_padding', `${h.nPadding} in a pack without records`, hloc);
    return h;
  }
  if (h.nPadding > 1) throw new ValueOutOfRangeError('n_padding', `${h.nPadding} (at most 1)`, hloc);
  if (h.logpackLsid + 1n + BigInt(h.totalIoSize) > INVALID_LSID) {
    throw new ValueOutOfRangeError('logpack_lsid', `${h.logpackLsid} + ${h.totalIoSize} overflows`, hloc);
  }
  let pos = 1;
  let nPad = 0;
  for (let i = 0; i < h.nRecords; i++) {
    const rec = decodeLogRecord(buf, off + LOGPACK_HEADER_SIZE + i * LOG_RECORD_SIZE);
    const rloc: ErrorLocation = { ...loc, lsid: rec.lsid };
    validateLogRecord(rec, rloc);
    if (rec.lsid - BigInt(rec.lsidLocal) !== h.logpackLsid) {
      throw new LsidSequenceError(`record ${i}: lsid ${rec.lsid} − lsid_local ${rec.lsidLocal} ≠ logpack lsid ${h.logpackLsid}`, rloc);
    }
    if (rec.lsidLocal !== pos) {
      throw new LsidSequenceError(`record ${i}: lsid_local ${rec.lsidLocal}, expected ${pos}`, rloc);
    }
    if (isPadding(rec)) nPad++;
    pos += recordDataPb(rec, pbs);
    h.records.push(rec);
  }
  if (nPad !== h.nPadding) throw new ValueOutOfRangeError('n_padding', `${h.nPadding}, but ${nPad} padding records`, hloc);
  if (pos - 1 !== h.totalIoSize) {
    throw new ValueOutOfRangeError('total_io_size', `${h.totalIoSize} PB, but the records hold ${pos - 1} PB`, hloc);
  }
  return h;
}

/**
 * Encode `h` into a fresh `pbs`-byte block, computing the checksum with `salt` (the `checksum`
 * field of `h` is updated too).
 *
 * @throws {@link ValueOutOfRangeError} when `pbs` is not a block size of the format, or the
 *   records do not fit the block.
 */
export function encodeLogpackHeader(h: LogpackHeader, pbs: number, salt: number): Buffer {
  checkLayoutArgs(0, pbs);
  const maxRec = maxRecordsInPack(pbs);
  if (h.records.length > maxRec) {
    throw new ValueOutOfRangeError('n_records', `${h.records.length} exceeds ${maxRec} records per ${pbs}-byte block`, { lsid: h.logpackLsid });
  }
  if (h.totalIoSize > MAX_TOTAL_IO_SIZE_IN_LOGPACK_HEADER) {
    throw new ValueOutOfRangeError('total_io_size', `${h.totalIoSize} exceeds ${MAX_TOTAL_IO_SIZE_IN_LOGPACK_HEADER}`, { lsid: h.logpackLsid });
  }
  const buf = Buffer.alloc(pbs);
  const v = view(buf);
  v.setUint16(4, h.sectorType, true);
  v.setUint16(6, h.totalIoSize, true);
  v.setBigUint64(8, h.logpackLsid, true);
  v.setUint16(16, h.records.length, true);
  v.setUint16(18, h.nPadding, true);
  v.setUint32(20, h.reserved1 >>> 0, true);
  for (let i = 0; i < h.records.length; i++) encodeLogRecord(h.records[i], buf, LOGPACK_HEADER_SIZE + i * LOG_RECORD_SIZE);
  h.checksum = checksum(buf, salt);
  h.nRecords = h.records.length;
  v.setUint32(0, h.checksum, true);
  return buf;
}
