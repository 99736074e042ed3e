/**
 * A wdiff file opened for positional reads on other threads (apply's quick check and its copy by
 * pieces).
 *
 * @module
 * @internal
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { WALB_DIFF_FILE_HEADER_SIZE } from '../constants.ts';
import { decodeDiffFileHeader, type DiffFileHeader } from '../layout/file-header.ts';

/** A wdiff file open for positional reads (see {@link openWdiffFile}). */
export interface WdiffFile {
  /** The descriptor; the caller closes it. */
  fd: number;
  /** Its size in bytes. */
  size: number;
  /** Its decoded header. */
  header: DiffFileHeader;
}

/**
 * Open `path` for the paths that read a wdiff by offsets on other threads: only a regular file
 * whose header decodes qualifies. `undefined` (nothing left open) for stdin, what cannot be
 * opened, what is not a regular file, or a file too short for a header.
 *
 * @throws the header's typed errors (nothing left open).
 * @internal
 */
export function openWdiffFile(path: string): WdiffFile | undefined {
  if (path === '-') return undefined;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    const head = Buffer.alloc(WALB_DIFF_FILE_HEADER_SIZE);
    if (!st.isFile() || readSync(fd, head, 0, head.length, 0) < head.length) {
      closeSync(fd);
      return undefined;
    }
    return { fd, size: st.size, header: decodeDiffFileHeader(head, 0, { source: path }) };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}
