/**
 * What both readers of the sorted format check beyond the layout of each structure: the file's
 * type, and that records come in address order without overlap. The streaming reader and the
 * listing by pack headers share them, so they refuse the same files with the same errors.
 *
 * @module
 */
import { WALB_DIFF_TYPE_SORTED } from '../constants.ts';
import { LayoutError, UnsupportedVersionError, type ErrorLocation } from '../errors.ts';
import type { DiffFileHeader } from '../layout/file-header.ts';
import type { DiffRecord } from '../layout/diff-record.ts';

/** Refuse a header that is not of the sorted format. */
export function expectSorted(h: DiffFileHeader, source: string | undefined): void {
  if (h.type !== WALB_DIFF_TYPE_SORTED) throw new UnsupportedVersionError('an indexed wdiff where a sorted one was expected', { offset: 6, source });
}

/** The LB end of `record`, once it is checked to start at or after `prevEnd`, the end of the one before. */
export function endAfter(record: DiffRecord, prevEnd: number, loc: ErrorLocation): number {
  if (record.ioAddress < prevEnd) {
    throw new LayoutError(`record at LB ${record.ioAddress} overlaps or precedes the previous one ending at ${prevEnd}`, loc);
  }
  return record.ioAddress + record.ioBlocks;
}
