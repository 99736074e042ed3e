/**
 * Random-access reader of indexed wdiff files: the index at the tail is read and checked whole at
 * open; images are read on demand, checked, and kept in a small cache because several index
 * extents usually share one image.
 *
 * @module
 */
import type { FileHandle } from 'node:fs/promises';
import { allocReadBuffer, checksum, openInput } from '@walbjs/log-format';
import { readSync } from 'node:fs';
import { preadFull } from './pread.ts';
import {
  WALB_DIFF_FILE_HEADER_SIZE, WALB_DIFF_INDEX_SUPER_SIZE, WALB_DIFF_TYPE_INDEXED, WALB_INDEXED_DIFF_RECORD_SIZE,
} from '../constants.ts';
import { ChecksumError, LayoutError, TruncatedError, UnsupportedVersionError, WdiffFormatError } from '../errors.ts';
import type { DiffImage, DiffIo } from '../algo/diff-io.ts';
import { decodeDiffFileHeader, type DiffFileHeader } from '../layout/file-header.ts';
import { recordKind } from '../layout/diff-record.ts';
import {
  decodeDiffIndexSuper, decodeIndexedDiffRecord, readIndexedDiffRecord, sameStoredImage, type DiffIndexSuper, type IndexedDiffRecord,
} from '../layout/indexed-record.ts';

/**
 * Bytes of the slabs images are cut from (see `IndexedDiffReader.imageRoom`): 1 MiB, recycled or
 * not. Fresh 4 MiB slabs merged 8 diffs about 20% slower here; recycled ones, whose images are
 * then still in the caches when they are copied on, merged them in 0.483 s at 1 MiB against
 * 0.536 s at 2 MiB and 0.555 s at 4 MiB, and virt-cat took 0.335 s against 0.354 s at 4 MiB
 * (medians of 9 and 11, alternating).
 */
const SLAB_BYTES = 1 << 20;

/**
 * Whether the image cached for `r.dataOffset` is the one `r` describes: all of the stored image's
 * fields, its checksum included. A record that shares an offset with another but claims another
 * checksum gets its own read and check (and fails it), not the other's verified bytes.
 */
function cachedIs(img: DiffImage, r: IndexedDiffRecord): boolean {
  return img.stored.byteLength === r.dataSize && img.cmpr === r.compressionType && img.blocks === r.origBlocks && img.checksum === r.ioChecksum;
}

/** A slab images are cut from, and the highest LB end of the IOs handed out with them. */
interface Slab {
  buf: Buffer;
  used: number;
  maxEnd: number;
}

/** Options of {@link IndexedDiffReader.open}. */
export interface IndexedReadOptions {
  /** Bytes of stored images kept in the cache (default 32 MiB, as the original). */
  cacheBytes?: number;
  /**
   * Reuse the memory of images the caller is done with, as it tells with
   * {@link IndexedDiffReader.releaseBelow}: reading into memory already mapped costs less than
   * reading into fresh memory (124–186 against 213–231 ms for 577 MB here), and spares the
   * garbage collector. Only for one iteration of
   * {@link IndexedDiffReader.ios} at a time. Default false.
   */
  recycle?: boolean;
  /**
   * The file was written by this process (an intermediate file read back): its images are marked
   * `decodes`, so a writer passes them on without decompressing each to check it. Their checksums
   * are verified all the same. Default false.
   */
  ownFile?: boolean;
}

/** Reads at least this long go into buffers of their own at aligned addresses (see `allocReadBuffer`). */
const OWN_BUFFER = 64 << 10;
/** Images cut from a slab start at multiples of a cache line, where the kernel copies fastest. */
const SLAB_ALIGN = 64;

async function preadExact(fh: FileHandle, len: number, pos: number, source: string, what: string): Promise<Buffer> {
  const b = len >= OWN_BUFFER ? allocReadBuffer(len) : Buffer.allocUnsafe(len);
  if (await preadFull(fh, b, 0, len, pos) < len) throw new TruncatedError(`${what}: file ended`, { offset: pos, source });
  return b;
}

/**
 * An open indexed wdiff.
 *
 * @example
 * const r = await IndexedDiffReader.open('a.wdiff');
 * for await (const io of r.ios()) console.log(io.addr, io.blocks, io.kind);
 * await r.close();
 */
export class IndexedDiffReader {
  private readonly cache = new Map<number, DiffImage>();
  private readonly loading = new Map<number, Promise<DiffImage>>();
  private cached = 0;
  /** Slabs holding images handed out, oldest first; the last is being filled. */
  private readonly slabs: Slab[] = [];
  /** Slabs released, to be filled again (recycle only). */
  private readonly spare: Slab[] = [];
  /** The slab of the last image read (undefined: memory of its own). */
  private lastSlab: Slab | undefined;

  private constructor(
    private readonly fh: FileHandle,
    /** The file path. */
    readonly path: string,
    /** The file header. */
    readonly header: DiffFileHeader,
    /** The index super. */
    readonly indexSuper: DiffIndexSuper,
    index: Buffer,
    private readonly cacheBytes: number,
    private readonly recycle: boolean,
    private readonly ownFile: boolean,
  ) {
    this.indexView = new DataView(index.buffer, index.byteOffset, index.byteLength);
  }

  private readonly indexView: DataView;

  /**
   * Open an indexed wdiff: read and check its header, index super and every index record (their
   * checksums, address order, and that every image lies between the header and the index).
   *
   * @throws {@link WdiffFormatError}
   */
  static async open(path: string, opts: IndexedReadOptions = {}): Promise<IndexedDiffReader> {
    const fh = await openInput(path);
    try {
      const size = (await fh.stat()).size;
      if (size < WALB_DIFF_FILE_HEADER_SIZE + WALB_DIFF_INDEX_SUPER_SIZE) {
        throw new TruncatedError(`${size} bytes cannot hold a header and an index super`, { offset: 0, source: path });
      }
      const header = decodeDiffFileHeader(await preadExact(fh, WALB_DIFF_FILE_HEADER_SIZE, 0, path, 'wdiff header'), 0, { source: path });
      if (header.type !== WALB_DIFF_TYPE_INDEXED) throw new UnsupportedVersionError('a sorted wdiff where an indexed one was expected', { offset: 6, source: path });
      const superOff = size - WALB_DIFF_INDEX_SUPER_SIZE;
      const superLoc = { offset: superOff, source: path };
      let sup: DiffIndexSuper;
      try {
        sup = decodeDiffIndexSuper(await preadExact(fh, WALB_DIFF_INDEX_SUPER_SIZE, superOff, path, 'index super'), 0, superLoc);
        // The records sit exactly between index_offset and the super: that bounds n_records by the file size.
        if (sup.indexOffset < WALB_DIFF_FILE_HEADER_SIZE || sup.indexOffset + sup.nRecords * WALB_INDEXED_DIFF_RECORD_SIZE !== superOff) {
          throw new LayoutError(`index of ${sup.nRecords} records at offset ${sup.indexOffset} does not end at the index super (offset ${superOff})`, superLoc);
        }
      } catch (e) {
        // Writers pad the images to 8 bytes before the index (walb-tools since its first release
        // with indexed wdiffs, 1.0.4, and this package), so a whole file is a multiple of 8 bytes
        // long, and damage in place keeps it so: a file that is not, whose tail is no super of its
        // index, lost its end. A crafted super (right checksum, value out of range) stays what it is.
        if (size % 8 !== 0 && (e instanceof ChecksumError || e instanceof LayoutError)) {
          throw new TruncatedError(`the file is truncated: no index super at its end, and ${size} bytes is not a multiple of 8 as a whole indexed wdiff is`, superLoc);
        }
        throw e;
      }
      const index = await preadExact(fh, sup.nRecords * WALB_INDEXED_DIFF_RECORD_SIZE, sup.indexOffset, path, 'index');
      let prevEnd = 0;
      // One location, moved along: an error copies what it needs of it.
      const loc = { offset: 0, source: path };
      for (let i = 0; i < sup.nRecords; i++) {
        loc.offset = sup.indexOffset + i * WALB_INDEXED_DIFF_RECORD_SIZE;
        const r = decodeIndexedDiffRecord(index, i * WALB_INDEXED_DIFF_RECORD_SIZE, loc);
        if (r.ioAddress < prevEnd) throw new LayoutError(`index record at LB ${r.ioAddress} overlaps or precedes the previous one ending at ${prevEnd}`, loc);
        prevEnd = r.ioAddress + r.ioBlocks;
        if (recordKind(r.flags) === 'normal' && (r.dataOffset < WALB_DIFF_FILE_HEADER_SIZE || r.dataOffset + r.dataSize > sup.indexOffset)) {
          throw new LayoutError(`image [${r.dataOffset}, +${r.dataSize}) lies outside the data area [32, ${sup.indexOffset})`, loc);
        }
      }
      return new IndexedDiffReader(fh, path, header, sup, index, opts.cacheBytes ?? 32 << 20, opts.recycle ?? false, opts.ownFile ?? false);
    } catch (e) {
      await fh.close();
      if (e instanceof WdiffFormatError) e.locate({ source: path });
      throw e;
    }
  }

  /** Number of index records. */
  get size(): number {
    return this.indexSuper.nRecords;
  }

  /** Index record `i` (validated at open, so read as it is). */
  record(i: number): IndexedDiffRecord {
    if (!(i >= 0 && i < this.size)) throw new RangeError(`index record ${i} of ${this.size}`);
    return readIndexedDiffRecord(this.indexView, i * WALB_INDEXED_DIFF_RECORD_SIZE);
  }

  /** Index of the first record ending after `addr` (binary search). */
  findFirstEndingAfter(addr: number): number {
    let lo = 0, hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const r = this.record(mid);
      if (r.ioAddress + r.ioBlocks <= addr) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /**
   * The stored image a normal record points at, read and checked against `io_checksum`.
   *
   * @throws {@link ChecksumError}
   */
  async image(r: IndexedDiffRecord): Promise<DiffImage> {
    const pending = this.loading.get(r.dataOffset);
    // Another record's load of the same offset serves this one only if it is the same image.
    if (pending) {
      const img = await pending;
      if (cachedIs(img, r)) return img;
    }
    const p = this.loadImage(r);
    this.loading.set(r.dataOffset, p);
    try {
      return await p;
    } finally {
      this.loading.delete(r.dataOffset);
    }
  }

  private async loadImage(r: IndexedDiffRecord): Promise<DiffImage> {
    const hit = this.cache.get(r.dataOffset);
    if (hit && cachedIs(hit, r)) {
      this.cache.delete(r.dataOffset);
      this.cache.set(r.dataOffset, hit);
      return hit;
    }
    const stored = await preadExact(this.fh, r.dataSize, r.dataOffset, this.path, 'image');
    const c = checksum(stored, 0);
    if (c !== r.ioChecksum) throw new ChecksumError('image checksum', r.ioChecksum, c, { offset: r.dataOffset, source: this.path });
    const img: DiffImage = { stored, cmpr: r.compressionType, blocks: r.origBlocks, checksum: c, source: this.path, offset: r.dataOffset, decodes: this.ownFile };
    this.cache.set(r.dataOffset, img);
    this.cached += stored.byteLength;
    while (this.cached > this.cacheBytes && this.cache.size > 1) {
      const [k, v] = this.cache.entries().next().value!;
      this.cache.delete(k);
      this.cached -= v.stored.byteLength;
    }
    return img;
  }

  /** The record as an engine IO, its image read when it is a normal one. */
  async io(r: IndexedDiffRecord): Promise<DiffIo> {
    const kind = recordKind(r.flags);
    if (kind !== 'normal') return { addr: r.ioAddress, blocks: r.ioBlocks, kind };
    return { addr: r.ioAddress, blocks: r.ioBlocks, kind, data: { image: await this.image(r), offsetLb: r.ioOffset } };
  }

  /**
   * The IOs in address order, from record `from` on. Each image is read and checked when its
   * first IO comes (a synchronous read: it blocks the event loop for as long as the read takes).
   * Smaller images are views of shared slabs: a caller that keeps many IOs for long should keep
   * copies. Opened with `recycle`, an IO's data is valid until the caller releases it
   * with {@link releaseBelow}.
   */
  async *ios(from = 0): AsyncGenerator<DiffIo> {
    // Images are read as they come (synchronous reads: a page-cache hit costs less than a trip to
    // the thread pool, whose copies compete with this thread for the cores), bypassing the cache:
    // the records that share an image are consecutive, so remembering the last one is enough.
    let last: DiffImage | undefined;
    let lastRec: IndexedDiffRecord | undefined;
    try {
      for (let i = from; i < this.size; i++) {
        const r = this.record(i);
        const kind = recordKind(r.flags);
        if (kind !== 'normal') { yield { addr: r.ioAddress, blocks: r.ioBlocks, kind }; continue; }
        if (!last || !lastRec || !sameStoredImage(lastRec, r)) {
          const hit = this.cache.get(r.dataOffset);
          this.lastSlab = undefined;
          last = hit && cachedIs(hit, r) ? hit : this.readImage(r);
        }
        lastRec = r;
        // The slab holds this IO's data until the caller releases past its end.
        const slab = this.lastSlab;
        if (slab && slab.maxEnd < r.ioAddress + r.ioBlocks) slab.maxEnd = r.ioAddress + r.ioBlocks;
        yield { addr: r.ioAddress, blocks: r.ioBlocks, kind, data: { image: last, offsetLb: r.ioOffset } };
      }
    } finally {
      this.lastSlab = undefined;
    }
  }

  /** Read and check the image of normal record `r`, into room from {@link imageRoom}. */
  private readImage(r: IndexedDiffRecord): DiffImage {
    const { buf: stored, slab } = this.imageRoom(r.dataSize);
    this.lastSlab = slab;
    if (readSync(this.fh.fd, stored, 0, r.dataSize, r.dataOffset) < r.dataSize) {
      throw new TruncatedError('image: file ended', { offset: r.dataOffset, source: this.path });
    }
    const c = checksum(stored, 0);
    if (c !== r.ioChecksum) throw new ChecksumError('image checksum', r.ioChecksum, c, { offset: r.dataOffset, source: this.path });
    return { stored, cmpr: r.compressionType, blocks: r.origBlocks, checksum: c, source: this.path, offset: r.dataOffset, decodes: this.ownFile };
  }

  /**
   * Room for an image's stored bytes, cut from a shared slab unless large: one allocation per
   * slab instead of one per image, as each allocation counts towards the garbage collector's
   * external memory and a merge reads tens of thousands of images. A slab lives as long as any
   * image cut from it, and the engine holds only the images at its merge front.
   */
  private imageRoom(n: number): { buf: Buffer; slab?: Slab } {
    // Larger images get memory of their own.
    if (n > SLAB_BYTES / (this.recycle ? 4 : 8)) return { buf: allocReadBuffer(n) };
    let cur = this.slabs[this.slabs.length - 1];
    if (!cur || cur.used + n > SLAB_BYTES) {
      if (!this.recycle) this.slabs.length = 0;
      cur = this.spare.pop() ?? { buf: allocReadBuffer(SLAB_BYTES), used: 0, maxEnd: 0 };
      this.slabs.push(cur);
    }
    const buf = cur.buf.subarray(cur.used, cur.used + n);
    cur.used += (n + SLAB_ALIGN - 1) & -SLAB_ALIGN;
    return { buf, slab: cur };
  }

  /**
   * The caller holds no IO (nor any view of its data) ending at or below LB `addr`: the memory of
   * those IOs may be filled again. Only with `recycle`; IOs are handed out in address order, so a
   * slab is reused once every IO handed out with it ends at or below `addr`.
   *
   * @example
   * const r = await IndexedDiffReader.open('a.wdiff', { recycle: true });
   * for await (const io of r.ios()) {
   *   await target.write(io);              // copies or writes the IO's data
   *   r.releaseBelow(io.addr + io.blocks); // its memory may now be filled again
   * }
   */
  releaseBelow(addr: number): void {
    if (!this.recycle) return;
    // The slab being filled stays: it holds the last image read, which the next record may share.
    while (this.slabs.length > 1 && this.slabs[0].maxEnd <= addr) {
      const s = this.slabs.shift()!;
      s.used = 0;
      s.maxEnd = 0;
      this.spare.push(s);
    }
  }

  /** The index records in address order. */
  *records(): Generator<IndexedDiffRecord> {
    for (let i = 0; i < this.size; i++) yield this.record(i);
  }

  /** Close the file. */
  async close(): Promise<void> {
    this.cache.clear();
    await this.fh.close();
  }
}
