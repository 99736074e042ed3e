/**
 * `struct walblog_header` (56 bytes, zero-padded to 4096): the header of a wlog file.
 *
 * @module
 */
import {
  INVALID_LSID, LOGICAL_BLOCK_SIZE, SECTOR_TYPE_WALBLOG_HEADER, UUID_SIZE, WALBLOG_HEADER_SIZE,
  WALB_LOG_VERSION, isValidPbs,
} from '../constants.ts';
import { checksum, checksumPartial } from '../checksum.ts';
import {
  ChecksumError, SectorTypeError, TruncatedError, UnsupportedVersionError, ValueOutOfRangeError,
  type ErrorLocation,
} from '../errors.ts';
import { checkLayoutArgs } from './args.ts';
import { view } from './bytes.ts';

/** The wlog file header, every field of the original. */
export interface WlogHeader {
  /** `SECTOR_TYPE_WALBLOG_HEADER`. */
  sectorType: number;
  /** 2. */
  version: number;
  /** 4096. */
  headerSize: number;
  /** Reserved, kept for byte-exact rewrites. */
  reserved1: number;
  /** Checksum over the 4096-byte block with salt 0. */
  checksum: number;
  /** Salt of the log's checksums (the device's). */
  logChecksumSalt: number;
  /** 512. */
  logicalBs: number;
  /** 512 or 4096. */
  physicalBs: number;
  /** Device uuid (16 bytes). */
  uuid: Uint8Array;
  /** lsid of the first pack. */
  beginLsid: bigint;
  /** End lsid; may exceed the real end (2^64−1 when unknown). */
  endLsid: bigint;
}

/** What a writer needs to make a header. */
export interface WlogHeaderInit {
  /** 512 or 4096. */
  pbs: number;
  /** The log checksum salt. */
  salt: number;
  /** Device uuid (16 bytes). */
  uuid: Uint8Array;
  /** lsid of the first pack. */
  beginLsid: bigint;
  /** End lsid (default 2^64−1, as the original tools write). */
  endLsid?: bigint;
}

/** A complete header from its essentials, as `WlogFileHeader::init()`. */
export function makeWlogHeader(init: WlogHeaderInit): WlogHeader {
  return {
    sectorType: SECTOR_TYPE_WALBLOG_HEADER,
    version: WALB_LOG_VERSION,
    headerSize: WALBLOG_HEADER_SIZE,
    reserved1: 0,
    checksum: 0,
    logChecksumSalt: init.salt >>> 0,
    logicalBs: LOGICAL_BLOCK_SIZE,
    physicalBs: init.pbs,
    uuid: init.uuid,
    beginLsid: init.beginLsid,
    endLsid: init.endLsid ?? INVALID_LSID,
  };
}

/**
 * Decode and validate a wlog header from `buf[off .. off+4096)`.
 *
 * @throws {@link SectorTypeError}, {@link UnsupportedVersionError}, {@link ChecksumError},
 *   {@link ValueOutOfRangeError}, {@link TruncatedError}; {@link ValueOutOfRangeError} naming `off`
 *   when it is not a byte offset
 */
export function decodeWlogHeader(buf: Uint8Array, off = 0, loc: ErrorLocation = {}): WlogHeader {
  checkLayoutArgs(off);
  if (off + WALBLOG_HEADER_SIZE > buf.byteLength) {
    throw new TruncatedError(`wlog header needs ${WALBLOG_HEADER_SIZE} bytes, ${Math.max(0, buf.byteLength - off)} available`, { offset: off, ...loc });
  }
  const v = view(buf);
  const h: WlogHeader = {
    sectorType: v.getUint16(off, true),
    version: v.getUint16(off + 2, true),
    headerSize: v.getUint16(off + 4, true),
    reserved1: v.getUint16(off + 6, true),
    checksum: v.getUint32(off + 8, true),
    logChecksumSalt: v.getUint32(off + 12, true),
    logicalBs: v.getUint32(off + 16, true),
    physicalBs: v.getUint32(off + 20, true),
    uuid: buf.slice(off + 24, off + 24 + UUID_SIZE),
    beginLsid: v.getBigUint64(off + 40, true),
    endLsid: v.getBigUint64(off + 48, true),
  };
  const l = { offset: off, ...loc };
  if (h.sectorType !== SECTOR_TYPE_WALBLOG_HEADER) throw new SectorTypeError(h.sectorType, SECTOR_TYPE_WALBLOG_HEADER, l);
  if (h.version !== WALB_LOG_VERSION) throw new UnsupportedVersionError(h.version, l);
  const block = buf.subarray(off, off + WALBLOG_HEADER_SIZE);
  if (checksumPartial(block, 0) !== 0) {
    const copy = Uint8Array.from(block);
    view(copy).setUint32(8, 0, true);
    throw new ChecksumError('wlog header checksum', h.checksum, checksum(copy, 0), l);
  }
  if (!isValidPbs(h.physicalBs)) throw new ValueOutOfRangeError('physical_bs', `${h.physicalBs} is not a valid block size`, l);
  if (h.logicalBs !== LOGICAL_BLOCK_SIZE) throw new ValueOutOfRangeError('logical_bs', `${h.logicalBs}, expected 512`, l);
  if (h.beginLsid >= h.endLsid) throw new ValueOutOfRangeError('begin_lsid', `${h.beginLsid} is not below end_lsid ${h.endLsid}`, l);
  return h;
}

/** Encode `h` into a fresh 4096-byte block with its checksum; `h.checksum` is updated. */
export function encodeWlogHeader(h: WlogHeader): Buffer {
  if (h.uuid.byteLength !== UUID_SIZE) throw new ValueOutOfRangeError('uuid', `${h.uuid.byteLength} bytes, expected 16`);
  if (!isValidPbs(h.physicalBs)) throw new ValueOutOfRangeError('physical_bs', `${h.physicalBs} is not a valid block size`);
  if (h.beginLsid >= h.endLsid) throw new ValueOutOfRangeError('begin_lsid', `${h.beginLsid} is not below end_lsid ${h.endLsid}`);
  const buf = Buffer.alloc(WALBLOG_HEADER_SIZE);
  const v = view(buf);
  v.setUint16(0, h.sectorType, true);
  v.setUint16(2, h.version, true);
  v.setUint16(4, h.headerSize, true);
  v.setUint16(6, h.reserved1, true);
  v.setUint32(12, h.logChecksumSalt >>> 0, true);
  v.setUint32(16, h.logicalBs, true);
  v.setUint32(20, h.physicalBs, true);
  buf.set(h.uuid, 24);
  v.setBigUint64(40, h.beginLsid, true);
  v.setBigUint64(48, h.endLsid, true);
  h.checksum = checksum(buf, 0);
  v.setUint32(8, h.checksum, true);
  return buf;
}
