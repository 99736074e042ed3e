/**
 * Streaming writer of indexed wdiff files: each IO's image is appended (compressed on its own) in
 * write order; the index keeps only what is still visible — a later IO trims the index entries of
 * the earlier ones it overlaps, their image bytes staying in the file as garbage — and is written
 * at close as power-of-two aligned extents, followed by the index super.
 *
 * Memory: the index only (no image data is kept), so a log of any size converts in bounded memory.
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import type { ByteSink } from '@walbjs/log-format';
import { OutWriter } from './out-writer.ts';
import { DEFAULT_INDEXED_MAX_IO_BLOCKS, WALB_DIFF_TYPE_INDEXED, WALB_INDEXED_DIFF_RECORD_SIZE } from '../constants.ts';
import { DEFAULT_COMPRESS_OPT, codecLevel } from '../compression.ts';
import { DiffMemory } from '../algo/diff-memory.ts';
import type { DiffImage, DiffIo } from '../algo/diff-io.ts';
import { encodeDiffFileHeader, makeDiffFileHeader, type DiffFileHeader } from '../layout/file-header.ts';
import { kindFlags } from '../layout/diff-record.ts';
import { alignedSize, encodeDiffIndexSuper, maxAlignedSize, writeIndexedDiffRecord, type DiffIndexSuper, type IndexedDiffRecord } from '../layout/indexed-record.ts';
import { view } from '../layout/view.ts';
import { OrderedCompressor, type StoredData } from './stored-data.ts';
import { IO_NUMBERS, KIND_NUMBER, nativeIndexFns, type NativeIndexFns } from './native-index.ts';
import { checkIo } from '../algo/diff-memory.ts';
import type { WdiffWriteOptions, WriteSummary } from './sorted-writer.ts';

/** Options of {@link IndexedDiffWriter.create} (`cmpr` applies to each image). */
export interface IndexedWriteOptions extends WdiffWriteOptions {
  /** Largest index extent in LB (default 2048 = 1 MiB, rounded down to a power of two). */
  maxIoBlocks?: number;
  /**
   * Split each IO into pieces of at most this many LB as it is added, before later IOs trim it
   * (as the sorted format's in-memory diff does); default 0.
   */
  splitOnAdd?: number;
  /**
   * Write the index as power-of-two aligned extents (default true, the format's rule). False keeps
   * the in-memory pieces as they are, except that an ALLZERO or DISCARD IO split by `splitOnAdd`
   * is written as the piece up to its first grid line and the rest whole (a sorted writer with
   * the same `maxIoBlocks` cuts them into the same pieces): for a private intermediate file only.
   */
  align?: boolean;
}

/** Where an image was written: what an index entry needs. */
interface FileImage extends DiffImage {
  readonly fileOffset: number;
  readonly size: number;
}

const NO_BYTES = Buffer.alloc(0);
/** IOs handed to an external index at a time. */
const NATIVE_BATCH = 4096;
/** Index records taken from an external index at a time. */
const RECORD_RUN = 16384;

/** The index kept by an external implementation (see `useNativeIndex`), and the IOs not yet handed to it. */
interface ExternalIndex {
  fns: NativeIndexFns;
  handle: object;
  batch: Float64Array;
  n: number;
  size: number;
}

/**
 * Writes an indexed wdiff. IOs may come in any order and overlap: the later one wins.
 *
 * @example
 * const w = await IndexedDiffWriter.create('out.wdiff', { uuid });
 * for (const io of iosInWriteOrder) await w.write(io);
 * await w.close();
 */
export class IndexedDiffWriter {
  private readonly index: DiffMemory;
  /** Set when an external implementation keeps the index (then {@link index} stays empty). */
  private readonly ext: ExternalIndex | undefined;
  private readonly align: boolean;
  private offset: number;
  private nData = 0;
  private closed = false;
  private readonly comp: OrderedCompressor<undefined>;
  private readonly maxIoBlocks: number;
  private readonly sync: boolean;
  /** What was written so far. */
  readonly summary: WriteSummary = { records: 0, packs: 0, bytes: 0 };

  private constructor(private readonly out: OutWriter, readonly header: DiffFileHeader, opts: IndexedWriteOptions) {
    const c = opts.cmpr ?? DEFAULT_COMPRESS_OPT;
    const level = c.type === 0 ? 0 : (codecLevel(c.type, c.level) ?? 0);
    this.comp = new OrderedCompressor(c.type, level, opts.parallel ?? 8 * availableParallelism(), (_t, io, d) => this.append(io, d), false,
      (_t, io, d) => this.appendStored(io.addr, io.blocks, io.kind, d));
    this.maxIoBlocks = opts.maxIoBlocks ?? DEFAULT_INDEXED_MAX_IO_BLOCKS;
    this.offset = out.written;
    this.sync = opts.sync ?? false;
    this.index = new DiffMemory({ maxIoBlocks: opts.splitOnAdd ?? 0 });
    this.align = opts.align ?? true;
    const fns = nativeIndexFns();
    // The external index splits and aligns as the format does; the writer's own handles the rest.
    this.ext = fns && this.align && !opts.splitOnAdd ? { fns, handle: fns.indexNew(), batch: new Float64Array(NATIVE_BATCH * IO_NUMBERS), n: 0, size: 0 } : undefined;
  }

  /** Create the file (or stream) and write the header. */
  static async create(sink: ByteSink, opts: IndexedWriteOptions = {}): Promise<IndexedDiffWriter> {
    const h = makeDiffFileHeader(WALB_DIFF_TYPE_INDEXED, opts.uuid);
    const out = await OutWriter.open(sink, { syncAlong: opts.sync, direct: opts.direct });
    out.push(encodeDiffFileHeader(h));
    return new IndexedDiffWriter(out, h, opts);
  }

  /** Number of IOs in the index now. */
  get indexSize(): number {
    if (!this.ext) return this.index.size;
    this.handOver(this.ext);
    return this.ext.size;
  }

  /** Give the external index the IOs batched for it. */
  private handOver(x: ExternalIndex): void {
    if (x.n === 0) return;
    x.size = x.fns.indexAdd(x.handle, x.batch, x.n);
    x.n = 0;
  }

  /** Add an IO (any order; a later IO overrides what it overlaps). */
  async write(io: DiffIo): Promise<void> {
    if (this.closed) throw new Error('IndexedDiffWriter is closed');
    await this.comp.push(undefined, io);
    await this.out.ready();
  }

  /**
   * {@link write} without a wait, when it needs none: true when `io` is written (queued), false
   * with nothing done (then `await write(io)`).
   */
  writeNow(io: DiffIo): boolean {
    if (this.closed || this.out.wouldWait) return false;
    return this.comp.pushNow(undefined, io);
  }

  private async append(io: DiffIo, d: StoredData | undefined): Promise<void> {
    this.appendStored(io.addr, io.blocks, io.kind, d);
  }

  /** The output (internal: for callers that hand in views of reused buffers). */
  get output(): OutWriter {
    return this.out;
  }

  /**
   * Add an IO whose data is already in its stored form, `d.blocks` LB (internal: synchronous;
   * await `this.output.ready()` now and then).
   */
  appendStored(addr: number, blocks: number, kind: DiffIo['kind'], d: { cmpr: number; stored: Uint8Array; checksum: number; blocks: number } | undefined): void {
    const x = this.ext;
    if (x) {
      // The checks DiffMemory.add makes, so that a bad IO is refused here, as without it.
      if (!(addr >= 0 && blocks > 0 && Number.isSafeInteger(addr + blocks) && Number.isInteger(addr) && Number.isInteger(blocks) && (d ? blocks <= d.blocks : kind === 'allzero' || kind === 'discard'))) {
        checkIo(d ? { addr, blocks, kind: 'normal', data: { image: { stored: NO_BYTES, cmpr: d.cmpr, blocks: d.blocks }, offsetLb: 0 } } : { addr, blocks, kind });
      }
      this.nData++;
      if (x.n === NATIVE_BATCH) this.handOver(x);
      const b = x.batch;
      const i = x.n++ * IO_NUMBERS;
      b[i] = addr;
      b[i + 1] = blocks;
      if (d) {
        b[i + 2] = 0; b[i + 3] = d.cmpr; b[i + 4] = this.offset; b[i + 5] = d.stored.byteLength; b[i + 6] = d.blocks; b[i + 7] = d.checksum >>> 0;
        this.out.push(d.stored);
        this.offset += d.stored.byteLength;
      } else {
        b[i + 2] = KIND_NUMBER[kind]; b[i + 3] = 0; b[i + 4] = 0; b[i + 5] = 0; b[i + 6] = 0; b[i + 7] = 0;
      }
      return;
    }
    this.nData++;
    if (!d) {
      this.index.add({ addr, blocks, kind });
      return;
    }
    const image: FileImage = { stored: NO_BYTES, cmpr: d.cmpr, blocks: d.blocks, checksum: d.checksum, fileOffset: this.offset, size: d.stored.byteLength };
    this.out.push(d.stored);
    this.offset += d.stored.byteLength;
    this.index.add({ addr, blocks, kind: 'normal', data: { image, offsetLb: 0 } });
  }

  /**
   * Write pending images, the index and the index super, then close the output (a file is put at
   * its path only now). On a failure the output is abandoned as by {@link abort}.
   */
  async close(): Promise<WriteSummary> {
    if (this.closed) return this.summary;
    try {
      return await this.closeNow();
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /**
   * Abandon the file (after a failure, instead of {@link close}): nothing more is written, and a
   * file output, written under a temporary name until its close, is removed, so its path keeps
   * what it had before. Safe after a failed close, and more than once.
   *
   * @example
   * try { for (const io of ios) await w.write(io); await w.close(); } catch (e) { await w.abort(); throw e; }
   */
  async abort(): Promise<void> {
    this.closed = true;
    await this.out.abort();
    // Compressions still running end into the abandoned output (their errors are this failure's).
    await this.comp.flush().catch(() => {});
  }

  private async closeNow(): Promise<WriteSummary> {
    this.closed = true;
    await this.comp.flush();
    const pad = (8 - (this.offset % 8)) % 8;
    if (pad) this.out.push(Buffer.alloc(pad));
    const indexOffset = this.offset + pad;
    let n = 0;
    if (this.ext) {
      const x = this.ext;
      this.handOver(x);
      const cap = Math.min(maxAlignedSize(this.maxIoBlocks), 0x8000_0000);
      // A run of records at a time: the memory of a run, whatever the size of the index.
      for (let recs = x.fns.indexEncode(x.handle, cap, RECORD_RUN); recs.byteLength > 0; recs = x.fns.indexEncode(x.handle, cap, RECORD_RUN)) {
        n += recs.byteLength / WALB_INDEXED_DIFF_RECORD_SIZE;
        await this.out.write(recs);
      }
      return this.finish(indexOffset, n);
    }
    // Records are encoded in place, a run of them per buffer, through one view and one record
    // object: an index has tens of thousands of records (28,000 for a 525 MiB random log), and
    // allocating per record cost more than the encoding (about 1.5 µs a record).
    const RUN = 4096;
    let buf = Buffer.allocUnsafe(RUN * WALB_INDEXED_DIFF_RECORD_SIZE);
    let v = view(buf);
    let k = 0;
    const rec: IndexedDiffRecord = {
      ioAddress: 0, ioBlocks: 0, flags: 0, compressionType: 0, reserved1: 0, dataOffset: 0, dataSize: 0,
      ioOffset: 0, origBlocks: 0, reserved2: 0, ioChecksum: 0, recChecksum: 0,
    };
    const cap = this.align ? maxAlignedSize(this.maxIoBlocks) : 0;
    const io = this.index.cursor({ gridRuns: !this.align });
    while (io.next()) {
      const img = io.image as FileImage | undefined;
      rec.flags = kindFlags(io.kind);
      rec.compressionType = img ? img.cmpr : 0;
      rec.dataOffset = img ? img.fileOffset : 0;
      rec.dataSize = img ? img.size : 0;
      rec.origBlocks = img ? img.blocks : 0;
      rec.ioChecksum = img ? img.checksum! : 0;
      let addr = io.addr;
      let off = io.offsetLb;
      let left = io.blocks;
      while (left > 0) {
        // As splitToAligned: the largest aligned power of two that fits, capped.
        let s = left;
        if (this.align) {
          s = alignedSize(addr);
          if (s > left) s = maxAlignedSize(left);
          if (cap > 0 && s > cap) s = cap;
        }
        rec.ioAddress = addr;
        rec.ioBlocks = s;
        rec.ioOffset = img ? off : 0;
        writeIndexedDiffRecord(v, k * WALB_INDEXED_DIFF_RECORD_SIZE, rec);
        addr += s;
        off += s;
        left -= s;
        n++;
        if (++k === RUN) {
          // The writer keeps the buffer until it is written: the next run gets a new one.
          await this.out.write(buf);
          buf = Buffer.allocUnsafe(RUN * WALB_INDEXED_DIFF_RECORD_SIZE);
          v = view(buf);
          k = 0;
        }
      }
    }
    if (k) await this.out.write(buf.subarray(0, k * WALB_INDEXED_DIFF_RECORD_SIZE));
    return this.finish(indexOffset, n);
  }

  /** Write the index super of `n` records at `indexOffset`, and close the output. */
  private async finish(indexOffset: number, n: number): Promise<WriteSummary> {
    const sup: DiffIndexSuper = { indexOffset, nRecords: n, nData: this.nData, reserved1: 0, checksum: 0 };
    await this.out.write(encodeDiffIndexSuper(sup));
    await this.out.close(this.sync);
    this.summary.records = n;
    this.summary.bytes = indexOffset + n * WALB_INDEXED_DIFF_RECORD_SIZE + 24;
    return this.summary;
  }
}
