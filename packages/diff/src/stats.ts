/**
 * Statistics of wdiffs as the original's `wdiff-show -stat` prints them, and the record lines of
 * `wdiff-show`.
 *
 * @module
 */
import { uuidToHex } from '@walbjs/log-format';
import { compressionTypeName, isCompressionType } from './compression.ts';
import { WALB_DIFF_TYPE_INDEXED } from './constants.ts';
import type { DiffFileHeader } from './layout/file-header.ts';
import { recordKind, type DiffRecord } from './layout/diff-record.ts';
import type { IndexedDiffRecord } from './layout/indexed-record.ts';

/** Totals over wdiffs. */
export interface DiffStat {
  /** Files. */
  wdiffNr: number;
  /** Normal IOs. */
  normalNr: number;
  /** ALLZERO IOs. */
  allZeroNr: number;
  /** DISCARD IOs. */
  discardNr: number;
  /** LB of normal IOs. */
  normalLb: number;
  /** LB of ALLZERO IOs. */
  allZeroLb: number;
  /** LB of DISCARD IOs. */
  discardLb: number;
  /** Stored data bytes (sorted files; the original counts 0 for indexed records). */
  dataSize: number;
}

/** A zeroed {@link DiffStat}. */
export function emptyDiffStat(): DiffStat {
  return { wdiffNr: 0, normalNr: 0, allZeroNr: 0, discardNr: 0, normalLb: 0, allZeroLb: 0, discardLb: 0, dataSize: 0 };
}

/** Count one record into `s` (`DiffStatistics::update`). */
export function addToDiffStat(s: DiffStat, r: { flags: number; ioBlocks: number }, dataSize: number): void {
  const k = recordKind(r.flags);
  if (k === 'normal') { s.normalNr++; s.normalLb += r.ioBlocks; }
  else if (k === 'discard') { s.discardNr++; s.discardLb += r.ioBlocks; }
  else { s.allZeroNr++; s.allZeroLb += r.ioBlocks; }
  s.dataSize += dataSize;
}

/** The eight `wdiff_stat:` lines of `wdiff-show -stat` (no trailing newline). */
export function formatDiffStat(s: DiffStat, prefix = 'wdiff_stat: '): string {
  return [
    `wdiffNr ${s.wdiffNr}`, `normalNr ${s.normalNr}`, `allZeroNr ${s.allZeroNr}`, `discardNr ${s.discardNr}`,
    `normalLb ${s.normalLb}`, `allZeroLb ${s.allZeroLb}`, `discardLb ${s.discardLb}`, `dataSize ${s.dataSize}`,
  ].map((l) => prefix + l).join('\n');
}

const cmprName = (t: number) => (isCompressionType(t) ? compressionTypeName(t) : String(t));
const zd = (flags: number) => (recordKind(flags) === 'allzero' ? 'Z' : '-') + (recordKind(flags) === 'discard' ? 'D' : '-');
const hex = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

/** The header block `wdiff-show` prints (`wdiff_h:` and four indented lines). */
export function formatDiffFileHeader(h: DiffFileHeader): string {
  return [
    'wdiff_h:',
    `  checksum: ${hex(h.checksum)}`,
    `  version: ${h.version}`,
    `  type: ${h.type === WALB_DIFF_TYPE_INDEXED ? 'indexed' : 'sorted'}`,
    `  uuid: ${uuidToHex(h.uuid)}`,
  ].join('\n');
}

/** `wdiff_sorted_rec:\taddr\tblks\tcmpr\toffset\tsize\tcsum\tZD` */
export function formatSortedRecord(r: DiffRecord): string {
  return `wdiff_sorted_rec:\t${r.ioAddress}\t${r.ioBlocks}\t${cmprName(r.compressionType)}\t${r.dataOffset}\t${r.dataSize}\t${hex(r.checksum)}\t${zd(r.flags)}`;
}

/** `wdiff_indexed_rec:\taddr\tblks\tcmpr\toffset\tsize\torig\tio_off\tio_csum\trec_csum\tZD` */
export function formatIndexedRecord(r: IndexedDiffRecord): string {
  return `wdiff_indexed_rec:\t${r.ioAddress}\t${r.ioBlocks}\t${cmprName(r.compressionType)}\t${r.dataOffset}\t${r.dataSize}\t${r.origBlocks}\t${r.ioOffset}\t${hex(r.ioChecksum)}\t${hex(r.recChecksum)}\t${zd(r.flags)}`;
}
