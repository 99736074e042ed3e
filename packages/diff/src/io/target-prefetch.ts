/**
 * Reads of the target that apply's writes will need, asked for ahead of them.
 *
 * A write that covers only part of a page of a file (an IO starting or ending inside a 4 KiB
 * page, as 512-byte IOs do) makes the kernel read that page first when it is not in the page
 * cache, and the write waits for that read: applying scattered small IOs to an image file that is
 * not cached then spends most of its time in one small read at a time. Here those pages are asked
 * of the kernel (`posix_fadvise(POSIX_FADV_WILLNEED)` through the native addon, a batch per call),
 * which reads them many at once: the first 16,384 (64 MiB) while apply checks its inputs and
 * the disk has nothing else to do (from the check's own walk of the headers), then each IO's as
 * the copy plans it, a batch of writes before they are made.
 *
 * Advisory only: a page asked for and not read yet is read by the write as before, and a failure
 * here ends the prefetch, never the apply. A block device gets it too (its page cache works in
 * blocks of up to 4 KiB: a loop device over a file of whole pages has 4096); a file without data
 * at all (a new sparse image: nothing to read) gets none.
 *
 * @module
 */
import { fstatSync } from 'node:fs';
import { LOGICAL_BLOCK_SIZE } from '@walbjs/log-format';
import type { DiffIoKind } from '../algo/diff-io.ts';
import type { DiscardMode } from './apply.ts';

/**
 * Ask the kernel to read the (offset, length) pairs of `ranges` of the open file `fd` into the
 * page cache, without waiting for the reads (the promise settles once they are asked for).
 */
export type PrefetchRangesFn = (fd: number, ranges: Float64Array) => Promise<void>;

let impl: PrefetchRangesFn | undefined;

/**
 * Let apply read ahead the pages of an image file that its writes cover in part, with `fn` (for
 * example the native addon's `prefetchRanges`); `undefined` turns that off.
 *
 * @example
 * import { loadNative } from '@walbjs/native-walb';
 * usePrefetch(loadNative().prefetchRanges);
 */
export function usePrefetch(fn: PrefetchRangesFn | undefined): void {
  impl = fn;
}

/** Bytes of a page: the unit in which the page cache reads what a write covers in part. */
const PAGE = 4096;
/** Pages asked for during the check of the inputs at most (64 MiB of page cache). */
const CHECK_PAGES = 16384;
/** Ranges per call. */
const SEND_RANGES = 256;

/** The prefetch of one apply's target. @internal */
export class TargetPrefetch {
  private q = new Float64Array(2 * SEND_RANGES);
  private n = 0;
  private lastPage = -1;
  /** Calls made one after the other; the first failure ends the prefetch. */
  private tail: Promise<void> = Promise.resolve();
  private failed = false;
  /** Pages asked for during the check. */
  private checkPages = 0;

  private constructor(private readonly fn: PrefetchRangesFn, private readonly fd: number, private readonly discard: DiscardMode) {}

  /**
   * The prefetch for the target open as `fd` (a file with data, or a block device, whose page
   * cache reads a block of up to a page before a write covers part of it); `undefined` when there
   * is nothing to do (no implementation in use, a file without data, anything else).
   */
  static forTarget(fd: number, discard: DiscardMode): TargetPrefetch | undefined {
    const fn = impl;
    if (fn === undefined) return undefined;
    try {
      const st = fstatSync(fd);
      return (st.isFile() && st.blocks > 0) || st.isBlockDevice() ? new TargetPrefetch(fn, fd, discard) : undefined;
    } catch {
      return undefined;
    }
  }

  /** An IO seen by the check of the inputs: its pages are asked for while the budget lasts. */
  checked(addr: number, blocks: number, kind: DiffIoKind): void {
    if (this.checkPages >= CHECK_PAGES) return;
    this.checkPages += this.add(addr, blocks, kind);
  }

  /** The check has ended: ask for what it gathered, and start afresh for the copy. */
  checkDone(): void {
    this.send();
    this.lastPage = -1;
  }

  /** An IO the copy is about to write (a batch ahead of the writes). */
  planned(addr: number, blocks: number, kind: DiffIoKind): void {
    this.add(addr, blocks, kind);
  }

  /** Ask for what is gathered now (the copy hands a batch of writes over). */
  flush(): void {
    this.send();
  }

  /** Wait for the calls made (their failures ignored). */
  async close(): Promise<void> {
    this.send();
    await this.tail;
  }

  /**
   * Gather the pages that writing an IO covers in part (where it starts or ends inside a page);
   * how many. IOs that follow on from one another may still be separate writes (their bytes lie
   * apart in the inputs): each edge counts.
   */
  private add(addr: number, blocks: number, kind: DiffIoKind): number {
    if (this.failed || (kind === 'discard' && this.discard !== 'zero')) return 0;
    const start = addr * LOGICAL_BLOCK_SIZE, end = start + blocks * LOGICAL_BLOCK_SIZE;
    let k = 0;
    if (start % PAGE !== 0) k += this.page(start - (start % PAGE));
    if (end % PAGE !== 0) k += this.page(end - (end % PAGE));
    return k;
  }

  /** Gather page `p` unless it was the last one; 1 when gathered. */
  private page(p: number): number {
    if (p === this.lastPage) return 0;
    this.lastPage = p;
    const k = 2 * this.n;
    // Adjacent pages go as one range.
    if (this.n > 0 && this.q[k - 2] + this.q[k - 1] === p) {
      this.q[k - 1] += PAGE;
      return 1;
    }
    this.q[k] = p;
    this.q[k + 1] = PAGE;
    // Sent in small batches, so the disk starts on them early.
    if (++this.n === SEND_RANGES) this.send();
    return 1;
  }

  /** Hand the gathered ranges over (after the calls before them). */
  private send(): void {
    if (this.n === 0 || this.failed) return;
    const batch = this.q.subarray(0, 2 * this.n);
    this.q = new Float64Array(2 * SEND_RANGES);
    this.n = 0;
    this.tail = this.tail.then(() => this.failed ? undefined : this.fn(this.fd, batch)).catch(() => { this.failed = true; });
  }
}
