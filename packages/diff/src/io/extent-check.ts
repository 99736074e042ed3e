/**
 * A quick check of a wdiff file before apply writes anything: its headers (and index) decoded
 * here with the same decoders and checks as the readers, the sums of its stored data taken by an
 * external implementation (the native addon's `sumExtents`) that reads the file a slice at a time
 * on both cores, and the records stored compressed decompressed here to their size.
 *
 * This check only ever says "all good" or "look again": any doubt (a mismatch, a short file, a
 * read error, a header that does not decode) sends the caller to the reading check, which finds
 * the problem again and throws its typed error with its place. An implementation that sums wrong
 * can only make apply slower, never let a corrupt input through: the expected sums stay here.
 *
 * @module
 */
import { closeSync, readSync } from 'node:fs';
import { LOGICAL_BLOCK_SIZE } from '@walbjs/log-format';
import { WALB_DIFF_TYPE_INDEXED, WALB_DIFF_TYPE_SORTED } from '../constants.ts';
import { decompressStored, decompressStoredSync } from '../codec/index.ts';
import type { DiffIoKind } from '../algo/diff-io.ts';
import { recordKind } from '../layout/diff-record.ts';
import { sameStoredImage, type IndexedDiffRecord } from '../layout/indexed-record.ts';
import { sortedRecordsOf } from './sorted-records.ts';
import { openWdiffFile, type WdiffFile } from './wdiff-file.ts';
import { IndexedDiffReader } from './indexed-reader.ts';

/**
 * Put the salt-0 WalB checksum of each extent of the open file `fd` (`ext`: (offset, length)
 * pairs) in `sums`, on another thread; `sums` stays untouched by the caller until the promise
 * settles. Rejects when a read fails or the file ends inside an extent.
 */
export type ExtentSumsFn = (fd: number, ext: Float64Array, sums: Uint32Array) => Promise<void>;

let impl: ExtentSumsFn | undefined;

/**
 * Check apply's inputs with `fn` (for example the native addon's `sumExtents`): the sums of the
 * stored data are taken there, on both cores, instead of reading every byte on this thread.
 * Nothing needs to be trusted: a wrong sum sends apply to its reading check, which reports what
 * it finds. `undefined` goes back to that reading check alone.
 *
 * @example
 * import { loadNative } from '@walbjs/native-walb';
 * useExtentSums(loadNative().sumExtents);
 */
export function useExtentSums(fn: ExtentSumsFn | undefined): void {
  impl = fn;
}

/** Told of each IO the check walks: its LB address, LB and kind. */
export type IoSeen = (addr: number, blocks: number, kind: DiffIoKind) => void;

/** Extents per call: 16 Ki extents or this many bytes of them, whichever comes first. */
const BATCH_EXTENTS = 16384;
const BATCH_BYTES = 64 << 20;
/** Bytes of consecutive compressed records read at once for their decompression. */
const SPAN_BYTES = 2 << 20;

/** Stored data to check: where, how long, its expected sum, and how it decompresses. */
class Batch {
  readonly ext = new Float64Array(2 * BATCH_EXTENTS);
  readonly want = new Uint32Array(BATCH_EXTENTS);
  readonly sums = new Uint32Array(BATCH_EXTENTS);
  /** Compressed entries: index into this batch, compression type, decompressed bytes. */
  packed: Array<{ i: number; cmpr: number; rawBytes: number }> = [];
  n = 0;
  bytes = 0;

  add(off: number, len: number, sum: number, cmpr: number, rawBytes: number): void {
    const i = this.n++;
    this.ext[2 * i] = off;
    this.ext[2 * i + 1] = len;
    this.want[i] = sum;
    this.bytes += len;
    if (cmpr !== 0) this.packed.push({ i, cmpr, rawBytes });
  }

  get full(): boolean {
    return this.n === BATCH_EXTENTS || this.bytes >= BATCH_BYTES;
  }

  reset(): void {
    this.n = 0;
    this.bytes = 0;
    this.packed = [];
  }
}

/** A check in progress: one batch summed on the pool while the next is gathered. */
class Checker {
  private cur = new Batch();
  private spare = new Batch();
  private inflight: Promise<boolean> | undefined;
  private span: Buffer | undefined;

  constructor(private readonly fd: number, private readonly sum: ExtentSumsFn) {}

  add(off: number, len: number, sum: number, cmpr: number, rawBytes: number): Promise<boolean> | undefined {
    this.cur.add(off, len, sum, cmpr, rawBytes);
    return this.cur.full ? this.flush() : undefined;
  }

  /** Hand the gathered batch over; false when the one before it did not check out. */
  async flush(): Promise<boolean> {
    const prev = this.inflight;
    this.inflight = undefined;
    if (prev && !(await prev)) return false;
    if (this.cur.n === 0) return true;
    const b = this.cur;
    this.cur = this.spare;
    this.spare = b;
    this.cur.reset();
    this.inflight = this.check(b);
    return true;
  }

  /** Flush and wait for the last batch. */
  async finish(): Promise<boolean> {
    if (!(await this.flush())) return false;
    const last = this.inflight;
    this.inflight = undefined;
    return last === undefined || await last;
  }

  private async check(b: Batch): Promise<boolean> {
    await this.sum(this.fd, b.ext.subarray(0, 2 * b.n), b.sums.subarray(0, b.n));
    for (let i = 0; i < b.n; i++) if (b.sums[i] !== b.want[i]) return false;
    // The compressed records must decompress to their size: read a run of them at once.
    const pk = b.packed;
    for (let k = 0; k < pk.length;) {
      const from = b.ext[2 * pk[k].i];
      let m = k + 1;
      while (m < pk.length && b.ext[2 * pk[m].i] >= from && b.ext[2 * pk[m].i] + b.ext[2 * pk[m].i + 1] - from <= SPAN_BYTES) m++;
      let to = 0;
      for (let q = k; q < m; q++) to = Math.max(to, b.ext[2 * pk[q].i] + b.ext[2 * pk[q].i + 1]);
      const len = to - from;
      const buf = len <= SPAN_BYTES ? (this.span ??= Buffer.allocUnsafe(SPAN_BYTES)) : Buffer.allocUnsafe(len);
      if (readSync(this.fd, buf, 0, len, from) < len) return false;
      for (let q = k; q < m; q++) {
        const { i, cmpr, rawBytes } = pk[q];
        const off = b.ext[2 * i] - from;
        const stored = buf.subarray(off, off + b.ext[2 * i + 1]);
        if (decompressStoredSync(cmpr, stored, rawBytes) === undefined) await decompressStored(cmpr, stored, rawBytes);
      }
      k = m;
    }
    return true;
  }

  /** Wait for what is in flight (its outcome no longer matters). */
  async abandon(): Promise<void> {
    await this.inflight?.catch(() => false);
  }
}

/**
 * Check `path` quickly (see the module's description); true when every check passed, false when
 * the caller must check by reading (no implementation in use, not a regular file, or any doubt).
 * `sizeLb`: the target's size; an IO ending beyond it fails the check.
 * @internal
 */
export async function checkWdiffQuickly(path: string, sizeLb: number | undefined, onProgress?: (addr: number) => void, onIo?: IoSeen): Promise<boolean> {
  const sum = impl;
  if (sum === undefined) return false;
  let f: WdiffFile | undefined;
  try {
    f = openWdiffFile(path);
  } catch {
    return false;
  }
  if (f === undefined) return false;
  const { fd, size, header: h } = f;
  const c = new Checker(fd, sum);
  try {
    const ok = h.type === WALB_DIFF_TYPE_SORTED ? await gatherSorted(fd, size, path, c, sizeLb, onProgress, onIo)
      : h.type === WALB_DIFF_TYPE_INDEXED ? await gatherIndexed(path, c, sizeLb, onProgress, onIo)
      : false;
    return ok && await c.finish();
  } catch {
    return false;
  } finally {
    await c.abandon();
    closeSync(fd);
  }
}

/** The pack headers of a sorted file, one read each, as the streaming reader checks them. */
async function gatherSorted(fd: number, size: number, source: string, c: Checker, sizeLb: number | undefined, onProgress?: (addr: number) => void, onIo?: IoSeen): Promise<boolean> {
  let n = 0;
  for (const { record: r, dataOffset } of sortedRecordsOf(fd, size, source)) {
    if (sizeLb !== undefined && r.ioAddress + r.ioBlocks > sizeLb) return false;
    if ((++n & 4095) === 0) onProgress?.(r.ioAddress);
    const kind = recordKind(r.flags);
    onIo?.(r.ioAddress, r.ioBlocks, kind);
    if (kind !== 'normal') continue;
    const f = c.add(dataOffset, r.dataSize, r.checksum, r.compressionType, r.ioBlocks * LOGICAL_BLOCK_SIZE);
    if (f && !(await f)) return false;
  }
  return true;
}

/** The index of an indexed file (checked whole at open), each image once. */
async function gatherIndexed(path: string, c: Checker, sizeLb: number | undefined, onProgress?: (addr: number) => void, onIo?: IoSeen): Promise<boolean> {
  const r = await IndexedDiffReader.open(path);
  try {
    let last: IndexedDiffRecord | undefined;
    for (let i = 0; i < r.size; i++) {
      const rec = r.record(i);
      if (sizeLb !== undefined && rec.ioAddress + rec.ioBlocks > sizeLb) return false;
      const kind = recordKind(rec.flags);
      onIo?.(rec.ioAddress, rec.ioBlocks, kind);
      if (kind !== 'normal') continue;
      // The records that share an image are consecutive (the reader reads it once for them).
      if (last && sameStoredImage(last, rec)) continue;
      last = rec;
      const f = c.add(rec.dataOffset, rec.dataSize, rec.ioChecksum, rec.compressionType, rec.origBlocks * LOGICAL_BLOCK_SIZE);
      if (f && !(await f)) return false;
      if ((i & 4095) === 0) onProgress?.(rec.ioAddress);
    }
    return true;
  } finally {
    await r.close();
  }
}
