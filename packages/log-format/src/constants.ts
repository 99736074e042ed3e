/**
 * Constants of the WalB log format, named as in the original driver headers
 * (`include/linux/walb/walb.h`, `log_record.h`, `log_device.h`).
 *
 * @module
 */

/** Size of a logical block (LB) in bytes. Every `offset` and `io_size` counts LBs. */
export const LOGICAL_BLOCK_SIZE = 512;
/** Log format version written by walb-driver 1.x and walb-tools 1.0.x (IO size widened to u32). */
export const WALB_LOG_VERSION = 2;

/** `sector_type` of a super sector. */
export const SECTOR_TYPE_SUPER = 0x0001;
/** `sector_type` of a (deprecated) snapshot sector. */
export const SECTOR_TYPE_SNAPSHOT = 0x0002;
/** `sector_type` of a logpack header block. */
export const SECTOR_TYPE_LOGPACK = 0x0003;
/** `sector_type` of a wlog file header. */
export const SECTOR_TYPE_WALBLOG_HEADER = 0x0004;

/** The invalid lsid, 2^64−1; also the `logpack_lsid` of the end marker. */
export const INVALID_LSID = 0xffff_ffff_ffff_ffffn;
/** The largest valid lsid, 2^64−2. */
export const MAX_LSID = 0xffff_ffff_ffff_fffen;

/** Largest normal IO, in LB. */
export const WALB_MAX_NORMAL_IO_SECTORS = 65535;
/** Largest discard IO, in LB. */
export const WALB_MAX_DISCARD_IO_SECTORS = 0xffff_ffff;
/** Largest `total_io_size` of one logpack, in PB. */
export const MAX_TOTAL_IO_SIZE_IN_LOGPACK_HEADER = 65535;

/** Bytes of a device uuid. */
export const UUID_SIZE = 16;
/** Bytes of the device name field (NUL included). */
export const DISK_NAME_LEN = 32;
/** Longest walb device name (32 − 4 − 2 − 1). */
export const WALB_DEV_NAME_MAX_LEN = 25;

/** Bytes of the wlog file header block. */
export const WALBLOG_HEADER_SIZE = 4096;
/** The page size the log device layout is built on: the super sector sits at this byte offset. */
export const PAGE_SIZE = 4096;

/** Log record flag bit 0: the record exists. Always set on valid records. */
export const LOG_RECORD_EXIST = 1 << 0;
/** Log record flag bit 1: a padding record (fills up to the ring-buffer end). */
export const LOG_RECORD_PADDING = 1 << 1;
/** Log record flag bit 2: a discard (TRIM) record; it carries no data. */
export const LOG_RECORD_DISCARD = 1 << 2;

/** Bytes of `struct walb_logpack_header` before its records. */
export const LOGPACK_HEADER_SIZE = 24;
/** Bytes of one `struct walb_log_record`. */
export const LOG_RECORD_SIZE = 32;
/** Bytes of `struct walb_super_sector`. */
export const SUPER_SECTOR_SIZE = 104;
/** Bytes of `struct walblog_header` before its zero padding. */
export const WLOG_HEADER_STRUCT_SIZE = 56;

/** Physical block sizes this implementation accepts. */
export const SUPPORTED_PBS: readonly number[] = [512, 4096];

/**
 * Whether `pbs` is a valid physical block size: a power of two that is a multiple of 512 and
 * divides the page size, as `is_valid_pbs()` in the driver.
 */
export function isValidPbs(pbs: number): boolean {
  return Number.isInteger(pbs) && pbs >= LOGICAL_BLOCK_SIZE && pbs <= PAGE_SIZE && (pbs & (pbs - 1)) === 0;
}

/**
 * Records one logpack header block can hold: `(pbs − 24) / 32`, i.e. 15 at 512 and 127 at 4096.
 *
 * @example
 * maxRecordsInPack(4096) // 127
 */
export function maxRecordsInPack(pbs: number): number {
  return Math.floor((pbs - LOGPACK_HEADER_SIZE) / LOG_RECORD_SIZE);
}

/** PBs needed to hold `lb` logical blocks (`capacity_pb` in the driver). */
export function capacityPb(pbs: number, lb: number): number {
  const n = pbs / LOGICAL_BLOCK_SIZE;
  return Math.ceil(lb / n);
}

/** Logical blocks in one physical block. */
export function lbPerPb(pbs: number): number {
  return pbs / LOGICAL_BLOCK_SIZE;
}

/** PB offset of super sector 0 on a log device: the first page is reserved. */
export function superSector0Offset(pbs: number): number {
  return PAGE_SIZE / pbs;
}

/** PB offset of the ring buffer on a log device (super0 + 1 + metadata_size(0) + 1). */
export function ringBufferOffset(pbs: number): number {
  return superSector0Offset(pbs) + 2;
}
