/**
 * The holes of sparse files, found with the native addon's `seekData` when it is given (see
 * {@link useHoleSeek}): a range of an image that lies in a hole reads as zeros without being read.
 *
 * @module
 */
import { fstatSync } from 'node:fs';

/** Where a file holds data at or after an offset: the native addon's `seekData`. */
export type SeekDataFn = (fd: number, offset: bigint) => bigint | null;

let seekDataOf: SeekDataFn | undefined;

/**
 * Let image reads skip the holes of sparse files, given the native addon's `seekData` (`lseek`
 * with `SEEK_DATA`; JavaScript has no way to ask): `imageToWdiff` writes a chunk in a hole as
 * ALLZERO IOs without reading it, `compareImagesToWdiff` passes over chunks that are holes in both
 * images, and a `VirtualFullImage` stream fills the base under a chunk in a hole with zeros
 * instead of reading it. Without it every byte is read, with the same result.
 *
 * @example
 * useHoleSeek(loadNative().seekData);
 */
export function useHoleSeek(fn: SeekDataFn | undefined): void {
  seekDataOf = fn;
}

/**
 * Tells whether ranges of one open file lie in a hole, asking the file system once per data run.
 * The ranges must be asked in ascending order (a hole found from one offset says nothing of what
 * lies before it). Only for a regular file (a block device has no holes to find).
 */
export class HoleFinder {
  /** Bytes below this offset are known to be a hole. */
  private holeEnd = 0;

  private constructor(private readonly fd: number, private readonly size: number, private readonly seek: SeekDataFn) {}

  /** A finder for `fd` (a regular file of `size` bytes), or undefined when no hole seek is set. */
  static for(fd: number, size: number): HoleFinder | undefined {
    return seekDataOf ? new HoleFinder(fd, size, seekDataOf) : undefined;
  }

  /** Whether `[pos, pos + len)` lies wholly in a hole (false when unsure: the caller reads). */
  inHole(pos: number, len: number): boolean {
    if (pos + len <= this.holeEnd) return true;
    if (pos < this.holeEnd) return false;
    const at = this.seek(this.fd, BigInt(pos));
    // No data up to the end: a hole to the end only while the file still has the size it had, or
    // a file cut short would read as zeros rather than fail as truncated.
    if (at === null && fstatSync(this.fd).size < this.size) return false;
    const data = at === null ? this.size : Number(at);
    if (!Number.isSafeInteger(data) || data < pos) return false;
    this.holeEnd = data;
    return pos + len <= data;
  }
}
