/**
 * `struct walb_super_sector` (104 bytes in one PB): the log device's super sector 0.
 *
 * @module
 */
import {
  DISK_NAME_LEN, INVALID_LSID, LOGICAL_BLOCK_SIZE, SECTOR_TYPE_SUPER, SUPER_SECTOR_SIZE,
  UUID_SIZE, WALB_LOG_VERSION, isValidPbs, ringBufferOffset,
} from '../constants.ts';
import { checksum, checksumPartial } from '../checksum.ts';
import {
  ChecksumError, SectorTypeError, TruncatedError, UnsupportedVersionError, ValueOutOfRangeError,
  type ErrorLocation,
} from '../errors.ts';
import { checkLayoutArgs } from './args.ts';
import { view } from './bytes.ts';

/** The super sector, every field of the original. */
export interface SuperSector {
  /** `SECTOR_TYPE_SUPER`. */
  sectorType: number;
  /** Format version, 2. */
  version: number;
  /** Checksum over the PB with salt 0. */
  checksum: number;
  /** 512. */
  logicalBs: number;
  /** 512 or 4096. */
  physicalBs: number;
  /** Deprecated, 0. */
  metadataSize: number;
  /** Salt of every logpack and record checksum of this device. */
  logChecksumSalt: number;
  /** Device uuid (16 bytes). */
  uuid: Uint8Array;
  /** Device name (at most 31 bytes). */
  name: string;
  /** Ring buffer size in PB. */
  ringBufferSize: bigint;
  /** Everything below may be overwritten. */
  oldestLsid: bigint;
  /** Checkpointed written lsid: redo starts here. */
  writtenLsid: bigint;
  /** Size of the data device in LB. */
  deviceSize: bigint;
}

/** Options of {@link decodeSuperSector}. */
export interface DecodeSuperOptions {
  /** Verify the checksum (default true). */
  verifyChecksum?: boolean;
  /** The physical block size the device reports; when given, the sector must agree. */
  pbs?: number;
  /** Where the block is, for error messages. */
  loc?: ErrorLocation;
}

/** Byte offset of `physical_bs` in the super sector. */
const PHYSICAL_BS_FIELD = 12;

/**
 * The block size a super sector claims to fill: its `physical_bs`, unchecked. A device reader
 * knows the size of the sector only from the sector: it reads the smallest one (512 bytes), then,
 * when this is a valid larger size ({@link isValidPbs}), this many bytes, for
 * {@link decodeSuperSector} to check.
 *
 * @throws {@link TruncatedError} when `buf` ends before the field; {@link ValueOutOfRangeError}
 *   naming `off` when it is not a byte offset
 * @example
 * const head = Buffer.alloc(512); // read at byte 4096 of the device
 * const pbs = superSectorPbs(head);
 */
export function superSectorPbs(buf: Uint8Array, off = 0): number {
  checkLayoutArgs(off);
  if (off + PHYSICAL_BS_FIELD + 4 > buf.byteLength) throw new TruncatedError('super sector truncated');
  return view(buf).getUint32(off + PHYSICAL_BS_FIELD, true);
}

/**
 * Decode and validate a super sector (`is_valid_super_sector_raw()` plus the checksum). The PB size
 * is taken from the sector's own `physical_bs`, so `buf` must hold at least that many bytes from
 * `off`.
 *
 * @throws {@link SectorTypeError}, {@link UnsupportedVersionError}, {@link ChecksumError},
 *   {@link ValueOutOfRangeError}, {@link TruncatedError}; {@link ValueOutOfRangeError} naming `off`
 *   or `pbs` when `off` is not a byte offset or `opts.pbs` not a physical block size
 */
export function decodeSuperSector(buf: Uint8Array, off = 0, opts: DecodeSuperOptions = {}): SuperSector {
  const loc = opts.loc ?? {};
  checkLayoutArgs(off, opts.pbs);
  if (off + SUPER_SECTOR_SIZE > buf.byteLength) throw new TruncatedError('super sector truncated', loc);
  const v = view(buf);
  const s: SuperSector = {
    sectorType: v.getUint16(off, true),
    version: v.getUint16(off + 2, true),
    checksum: v.getUint32(off + 4, true),
    logicalBs: v.getUint32(off + 8, true),
    physicalBs: v.getUint32(off + PHYSICAL_BS_FIELD, true),
    metadataSize: v.getUint32(off + 16, true),
    logChecksumSalt: v.getUint32(off + 20, true),
    uuid: buf.slice(off + 24, off + 24 + UUID_SIZE),
    name: '',
    ringBufferSize: v.getBigUint64(off + 72, true),
    oldestLsid: v.getBigUint64(off + 80, true),
    writtenLsid: v.getBigUint64(off + 88, true),
    deviceSize: v.getBigUint64(off + 96, true),
  };
  if (s.sectorType !== SECTOR_TYPE_SUPER) throw new SectorTypeError(s.sectorType, SECTOR_TYPE_SUPER, loc);
  if (s.version !== WALB_LOG_VERSION) throw new UnsupportedVersionError(s.version, loc);
  const pbs = s.physicalBs;
  if (!isValidPbs(pbs)) throw new ValueOutOfRangeError('physical_bs', `${pbs} is not a valid block size`, loc);
  if (opts.pbs !== undefined && opts.pbs !== pbs) {
    throw new ValueOutOfRangeError('physical_bs', `${pbs}, but the device's block size is ${opts.pbs}`, loc);
  }
  if (s.logicalBs !== LOGICAL_BLOCK_SIZE) throw new ValueOutOfRangeError('logical_bs', `${s.logicalBs}, expected 512`, loc);
  if (off + pbs > buf.byteLength) throw new TruncatedError(`super sector needs ${pbs} bytes`, loc);
  if (opts.verifyChecksum ?? true) {
    const block = buf.subarray(off, off + pbs);
    if (checksumPartial(block, 0) !== 0) {
      const copy = Uint8Array.from(block);
      view(copy).setUint32(4, 0, true);
      throw new ChecksumError('super sector checksum', s.checksum, checksum(copy, 0), loc);
    }
  }
  const nameBytes = buf.subarray(off + 40, off + 40 + DISK_NAME_LEN);
  const nul = nameBytes.indexOf(0);
  if (nul < 0) throw new ValueOutOfRangeError('name', 'not NUL-terminated within 32 bytes', loc);
  s.name = Buffer.from(nameBytes.subarray(0, nul)).toString('utf8');
  if (s.oldestLsid === INVALID_LSID) throw new ValueOutOfRangeError('oldest_lsid', 'is INVALID_LSID', loc);
  if (s.writtenLsid === INVALID_LSID) throw new ValueOutOfRangeError('written_lsid', 'is INVALID_LSID', loc);
  if (s.oldestLsid > s.writtenLsid) {
    throw new ValueOutOfRangeError('oldest_lsid', `${s.oldestLsid} > written_lsid ${s.writtenLsid}`, loc);
  }
  if (s.ringBufferSize === 0n) throw new ValueOutOfRangeError('ring_buffer_size', 'is 0', loc);
  return s;
}

/**
 * Encode `s` into a fresh PB-sized block with its checksum (salt 0); `s.checksum` is updated.
 * The name is truncated to 31 bytes, as `snprintf` in the original.
 */
export function encodeSuperSector(s: SuperSector): Buffer {
  const pbs = s.physicalBs;
  if (!isValidPbs(pbs)) throw new ValueOutOfRangeError('physical_bs', `${pbs} is not a valid block size`);
  if (s.uuid.byteLength !== UUID_SIZE) throw new ValueOutOfRangeError('uuid', `${s.uuid.byteLength} bytes, expected 16`);
  const buf = Buffer.alloc(pbs);
  const v = view(buf);
  v.setUint16(0, s.sectorType, true);
  v.setUint16(2, s.version, true);
  v.setUint32(8, s.logicalBs, true);
  v.setUint32(12, pbs, true);
  v.setUint32(16, s.metadataSize, true);
  v.setUint32(20, s.logChecksumSalt >>> 0, true);
  buf.set(s.uuid, 24);
  const name = truncateName(s.name);
  buf.set(name, 40);
  v.setBigUint64(72, s.ringBufferSize, true);
  v.setBigUint64(80, s.oldestLsid, true);
  v.setBigUint64(88, s.writtenLsid, true);
  v.setBigUint64(96, s.deviceSize, true);
  s.checksum = checksum(buf, 0);
  v.setUint32(4, s.checksum, true);
  return buf;
}

/** Name bytes as `snprintf(name, 32, "%s")` stores them: at most 31 bytes, then NUL. */
function truncateName(name: string): Buffer {
  return Buffer.from(name, 'utf8').subarray(0, DISK_NAME_LEN - 1);
}

/** Parameters of {@link makeSuperSector}. */
export interface MakeSuperParams {
  /** Physical block size: 512 or 4096. */
  pbs: number;
  /** Size of the log device in LB. */
  ldevLb: bigint;
  /** Size of the data device in LB. */
  ddevLb: bigint;
  /** Device name (optional). */
  name?: string;
  /** Salt; random by default. */
  salt?: number;
  /** Uuid; random by default. */
  uuid?: Uint8Array;
}

/**
 * The smallest ring buffer {@link makeSuperSector} makes, in PB, so that every log device formatted
 * can log a write. A logpack takes its header block and at least one block of data; the capture
 * device of `@walbjs/native-walb` logs a write in pieces of up to (ring − 1) / 2 PB, so that a
 * pack with a padding run to the ring end always fits, and refuses a ring below 3 PB. (The format
 * itself, and the readers, take any ring from 1 PB.)
 */
export const MIN_RING_BUFFER_PB = 3n;

/**
 * A freshly formatted super sector, as `wdevc format-ldev` makes it:
 * `ring_buffer_size = floor(ldevLb / (pbs/512)) − ring buffer offset`, random uuid and salt,
 * `oldest = written = 0`.
 *
 * @throws {@link ValueOutOfRangeError} when the log device is too small for a ring of
 *   {@link MIN_RING_BUFFER_PB} blocks: `(ringBufferOffset(pbs) + 3) · pbs` bytes, 6656 at pbs 512
 *   and 24576 at pbs 4096.
 */
export function makeSuperSector(p: MakeSuperParams, random: (n: number) => Uint8Array): SuperSector {
  if (!isValidPbs(p.pbs)) throw new ValueOutOfRangeError('physical_bs', `${p.pbs} is not a valid block size`);
  const rbOff = BigInt(ringBufferOffset(p.pbs));
  const ldevPb = p.ldevLb / BigInt(p.pbs / LOGICAL_BLOCK_SIZE);
  if (ldevPb < rbOff + MIN_RING_BUFFER_PB) {
    const ring = ldevPb > rbOff ? `a ring buffer of ${ldevPb - rbOff} PB` : 'no ring buffer';
    const need = (rbOff + MIN_RING_BUFFER_PB) * BigInt(p.pbs);
    throw new ValueOutOfRangeError('ring_buffer_size', `a log device of ${p.ldevLb * BigInt(LOGICAL_BLOCK_SIZE)} bytes leaves ${ring} at ${p.pbs}-byte blocks; `
      + `it needs at least ${need} bytes, for the smallest ring that logs a write (${MIN_RING_BUFFER_PB} PB)`);
  }
  const saltBytes = random(4);
  return {
    sectorType: SECTOR_TYPE_SUPER,
    version: WALB_LOG_VERSION,
    checksum: 0,
    logicalBs: LOGICAL_BLOCK_SIZE,
    physicalBs: p.pbs,
    metadataSize: 0,
    logChecksumSalt: p.salt ?? view(saltBytes).getUint32(0, true),
    uuid: p.uuid ?? random(UUID_SIZE),
    name: p.name ?? '',
    ringBufferSize: ldevPb - rbOff,
    oldestLsid: 0n,
    writtenLsid: 0n,
    deviceSize: p.ddevLb,
  };
}
