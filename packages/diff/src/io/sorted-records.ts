/**
 * The records of a sorted wdiff file from its pack headers alone: the data between them are
 * skipped, not read, so listing a diff costs one small read per pack whatever its size.
 *
 * @module
 */
import { readSync } from 'node:fs';
import { openInput, probeDevice } from '@walbjs/log-format';
import { WALB_DIFF_FILE_HEADER_SIZE, WALB_DIFF_PACK_SIZE } from '../constants.ts';
import { TruncatedError, WdiffFormatError } from '../errors.ts';
import { endAfter, expectSorted } from './sorted-checks.ts';
import { decodeDiffFileHeader, type DiffFileHeader } from '../layout/file-header.ts';
import { decodeDiffPackHeader, isEndPack, type DiffPackHeader } from '../layout/pack-header.ts';
import type { DiffRecord } from '../layout/diff-record.ts';
import { preadFull } from './pread.ts';

/** A record of a sorted wdiff and where its data lie. */
export interface SortedRecordRef {
  /** The record as stored. */
  record: DiffRecord;
  /** File offset of the record's data. */
  dataOffset: number;
}

/** A sorted wdiff opened for its records (see {@link openSortedRecords}). */
export interface SortedRecords {
  /** The file header. */
  header: DiffFileHeader;
  /** File size in bytes. */
  size: number;
  /**
   * The records in file order. The file is opened again when the iteration starts and closed
   * when it ends, fails or is left; nothing stays open when it is never iterated.
   */
  records: AsyncGenerator<SortedRecordRef>;
}

/**
 * Open a sorted wdiff (a file or block device) to list its records without reading their data.
 * The header and every pack header are checked (checksums, layout), as are the address order and
 * that each pack's data lie within the file, as {@link SortedDiffReader} checks them; the data
 * checksums are not (read the file with `SortedDiffReader` for those).
 *
 * @throws `UnsupportedVersionError` for an indexed wdiff; the typed errors of the header, a
 *   pack or the order, located, from `open` or from the iteration; `ENOTBLK` (as `probeDevice`)
 *   for what is neither a file nor a block device, such as a pipe.
 * @example
 * const { header, records } = await openSortedRecords('a.wdiff');
 * for await (const { record } of records) console.log(record.ioAddress, record.ioBlocks);
 */
export async function openSortedRecords(path: string): Promise<SortedRecords> {
  // A block device's size is not its inode's; a pipe cannot be read at offsets and is refused.
  const size = Number((await probeDevice(path)).sizeBytes);
  const fh = await openInput(path);
  try {
    const hb = Buffer.alloc(WALB_DIFF_FILE_HEADER_SIZE);
    const n = await preadFull(fh, hb, 0, hb.byteLength, 0);
    if (n === 0) throw new TruncatedError('empty input: no wdiff header', { offset: 0, source: path });
    const header = decodeDiffFileHeader(hb.subarray(0, n), 0, { source: path });
    expectSorted(header, path);
    return { header, size, records: packRecords(path, size) };
  } catch (e) {
    if (e instanceof WdiffFormatError) e.locate({ source: path });
    throw e;
  } finally {
    await fh.close();
  }
}

/**
 * The pack whose header is the `n` bytes of `block` read at `pos` of a file of `size` bytes,
 * checked as every reader of the sorted format checks it, with where its data begin; null for
 * the END pack.
 *
 * @throws {@link TruncatedError} when the header or its data pass the end of the file; the
 *   pack header's typed errors.
 */
export function decodePackAt(block: Uint8Array, n: number, pos: number, size: number, source: string): { pack: DiffPackHeader; data: number } | null {
  if (n === 0) throw new TruncatedError('input ended without the END pack', { offset: pos, source });
  if (n < WALB_DIFF_PACK_SIZE) throw new TruncatedError(`wdiff pack header: needed ${WALB_DIFF_PACK_SIZE} bytes, input ended after ${n}`, { offset: pos, source });
  const pack = decodeDiffPackHeader(block, 0, { offset: pos, source });
  if (isEndPack(pack)) return null;
  const data = pos + WALB_DIFF_PACK_SIZE;
  if (data + pack.totalSize > size) {
    throw new TruncatedError(`pack data: needed ${pack.totalSize} bytes, input ended after ${size - data}`, { offset: data, source });
  }
  return { pack, data };
}

/**
 * The records of a sorted wdiff open as `fd` (`size` bytes) from its pack headers, read with
 * synchronous reads (one per pack), checked as {@link openSortedRecords} checks them. The file
 * header is the caller's to check.
 *
 * @throws the typed errors of a pack header or of the address order, located.
 */
export function* sortedRecordsOf(fd: number, size: number, source: string): Generator<SortedRecordRef> {
  const block = Buffer.alloc(WALB_DIFF_PACK_SIZE);
  let pos = WALB_DIFF_FILE_HEADER_SIZE;
  let prevEnd = 0;
  for (;;) {
    let n = 0;
    while (n < block.length) {
      const got = readSync(fd, block, n, block.length - n, pos + n);
      if (got === 0) break;
      n += got;
    }
    const p = decodePackAt(block, n, pos, size, source);
    if (p === null) return;
    prevEnd = yield* packRecordsFrom(p.pack, p.data, prevEnd, source);
    pos = p.data + p.pack.totalSize;
  }
}

/** The records of one pack whose data begin at `data`; returns the LB end of the last one. */
function* packRecordsFrom(pack: DiffPackHeader, data: number, prevEnd: number, source: string): Generator<SortedRecordRef, number> {
  // Data follow in record order (checked at decode): a record without data sits where the next
  // data begin, as the streaming reader reports it.
  let at = data;
  for (const record of pack.records) {
    const dataOffset = at;
    at += record.dataSize;
    prevEnd = endAfter(record, prevEnd, { offset: dataOffset, source });
    yield { record, dataOffset };
  }
  return prevEnd;
}

async function* packRecords(source: string, size: number): AsyncGenerator<SortedRecordRef> {
  const fh = await openInput(source);
  try {
    const block = Buffer.alloc(WALB_DIFF_PACK_SIZE);
    let pos = WALB_DIFF_FILE_HEADER_SIZE;
    let prevEnd = 0;
    for (;;) {
      const n = await preadFull(fh, block, 0, WALB_DIFF_PACK_SIZE, pos);
      const p = decodePackAt(block, n, pos, size, source);
      if (p === null) return;
      prevEnd = yield* packRecordsFrom(p.pack, p.data, prevEnd, source);
      pos = p.data + p.pack.totalSize;
    }
  } finally {
    await fh.close();
  }
}
