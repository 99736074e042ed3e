/**
 * Constants of the wdiff formats (sorted and indexed), named after the original header
 * `walb_diff.h` of walb-tools 1.0.19, with the sizes of its packed structs.
 *
 * @module
 */
import { ValueOutOfRangeError } from './errors.ts';

/** wdiff format version, in `walb_diff_file_header.version`. */
export const WALB_DIFF_VERSION = 2;

/** `walb_diff_file_header.type` of a sorted wdiff (packs of records, data after each pack). */
export const WALB_DIFF_TYPE_SORTED = 0;
/** `walb_diff_file_header.type` of an indexed wdiff (IO images, then an index, then an index super). */
export const WALB_DIFF_TYPE_INDEXED = 1;
/** The two wdiff file types. */
export type WdiffType = typeof WALB_DIFF_TYPE_SORTED | typeof WALB_DIFF_TYPE_INDEXED;

/**
 * Record flag bit 0, EXIST. Defined by the format but never set by walb-tools: readers must accept
 * records with or without it.
 */
export const WALB_DIFF_FLAG_EXIST = 1 << 0;
/** Record flag bit 1, ALLZERO: the blocks are all zero and the record carries no data. */
export const WALB_DIFF_FLAG_ALLZERO = 1 << 1;
/** Record flag bit 2, DISCARD: the blocks were discarded (TRIM) and the record carries no data. */
export const WALB_DIFF_FLAG_DISCARD = 1 << 2;
/** Every record flag bit the format defines. */
export const WALB_DIFF_FLAGS_MASK = WALB_DIFF_FLAG_EXIST | WALB_DIFF_FLAG_ALLZERO | WALB_DIFF_FLAG_DISCARD;

/** `walb_diff_pack.flags` bit 0, END: the last pack of a sorted wdiff (it has no records). */
export const WALB_DIFF_PACK_FLAG_END = 1 << 0;

/** Bytes of one sorted-format pack block (header and record array, zero-filled). */
export const WALB_DIFF_PACK_SIZE = 4096;
/** Bytes of `struct walb_diff_file_header`, at offset 0 of both formats. */
export const WALB_DIFF_FILE_HEADER_SIZE = 32;
/** Bytes of `struct walb_diff_pack` before its record array. */
export const WALB_DIFF_PACK_HEADER_SIZE = 16;
/** Bytes of one `struct walb_diff_record` (sorted format). */
export const WALB_DIFF_RECORD_SIZE = 32;
/** Bytes of one `struct walb_indexed_diff_record` (indexed format). */
export const WALB_INDEXED_DIFF_RECORD_SIZE = 48;
/** Bytes of `struct walb_diff_index_super`, the last bytes of an indexed wdiff. */
export const WALB_DIFF_INDEX_SUPER_SIZE = 24;

/** Most records one pack holds: ⌊(4096 − 16) / 32⌋ = 127 (the last 16 bytes of a full pack are zero). */
export const MAX_N_RECORDS_IN_WALB_DIFF_PACK = Math.floor(
  (WALB_DIFF_PACK_SIZE - WALB_DIFF_PACK_HEADER_SIZE) / WALB_DIFF_RECORD_SIZE,
);
/**
 * Most data bytes one pack carries (`total_size`), 32 MiB. A pack's first record may exceed it on
 * its own; later records go to the next pack instead.
 */
export const WALB_DIFF_PACK_MAX_SIZE = 32 * 1024 * 1024;

/** Default cap, in logical blocks, of one aligned extent of the indexed format's index (1 MiB). */
export const DEFAULT_INDEXED_MAX_IO_BLOCKS = 2048;

/** What a wdiff record describes, as decided by its flags. */
export type DiffRecordKind = 'normal' | 'allzero' | 'discard';

/**
 * Classify record `flags`, rejecting values the format does not allow: bits other than
 * EXIST/ALLZERO/DISCARD, or ALLZERO and DISCARD together (they are exclusive).
 *
 * @param flags - the record's `flags` byte
 * @returns `'normal'` (data follows), `'allzero'` or `'discard'`
 * @throws {@link ValueOutOfRangeError} when the flags are not valid
 *
 * @example
 * diffRecordKind(0)                       // 'normal'
 * diffRecordKind(WALB_DIFF_FLAG_DISCARD)  // 'discard'
 */
export function diffRecordKind(flags: number): DiffRecordKind {
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xff) {
    throw new ValueOutOfRangeError('flags', flags, 'is not a byte');
  }
  if ((flags & ~WALB_DIFF_FLAGS_MASK) !== 0) {
    throw new ValueOutOfRangeError('flags', flags, `has undefined bits (allowed mask 0x${WALB_DIFF_FLAGS_MASK.toString(16)})`);
  }
  const zero = (flags & WALB_DIFF_FLAG_ALLZERO) !== 0;
  const discard = (flags & WALB_DIFF_FLAG_DISCARD) !== 0;
  if (zero && discard) throw new ValueOutOfRangeError('flags', flags, 'sets both ALLZERO and DISCARD');
  return zero ? 'allzero' : discard ? 'discard' : 'normal';
}

/**
 * Whether `type` is one of the two wdiff file types.
 *
 * @param type - the file header's `type` byte
 */
export function isWdiffType(type: number): type is WdiffType {
  return type === WALB_DIFF_TYPE_SORTED || type === WALB_DIFF_TYPE_INDEXED;
}
