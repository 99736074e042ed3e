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
import { DEFAULT_COMPRESS_OPT, codecLevel, type CompressOpt } from '../compression.ts';
import { DiffMemory } from '../algo/diff-memory.ts';
import type { DiffImage, DiffIo } from '../algo/diff-io.ts';
import { encodeDiffFileHeader, makeDiffFileHeader, type DiffFileHeader } from '../layout/file-header.ts';
import { kindFlags } from '../layout/diff-record.ts';
import { alignedSize, encodeDiffIndexSuper, maxAlignedSize, writeIndexedDiffRecord, type DiffIndexSuper, type IndexedDiffRecord } from '../layout/indexed-record.ts';
import { view } from '../layout/view.ts';
import { OrderedCompressor, type StoredData } from './stored-data.ts';
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
   * the in-memory pieces as they are: for a private intermediate file only.
   */
  align?: boolean;
}

/** Where an image was written: what an index entry needs. */
interface FileImage extends DiffImage {
  readonly fileOffset: number;
  readonly size: number;
}

const NO_BYTES = Buffer.alloc(0);

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
    return this.index.size;
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
   * await {@link OutWriter.ready} now and then).
   */
  appendStored(addr: number, blocks: number, kind: DiffIo['kind'], d: { cmpr: number; stored: Uint8Array; checksum: number; blocks: number } | undefined): void {
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

  /** Write pending images, the index and the index super, then close the output. */
  async close(): Promise<WriteSummary> {
    if (this.closed) return this.summary;
    this.closed = true;
    await this.comp.flush();
    const pad = (8 - (this.offset % 8)) % 8;
    if (pad) this.out.push(Buffer.alloc(pad));
    const indexOffset = this.offset + pad;
    let n = 0;
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
    const io = this.index.cursor();
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
    const sup: DiffIndexSuper = { indexOffset, nRecords: n, nData: this.nData, reserved1: 0, checksum: 0 };
    await this.out.write(encodeDiffIndexSuper(sup));
    await this.out.close(this.sync);
    this.summary.records = n;
    this.summary.bytes = indexOffset + n * WALB_INDEXED_DIFF_RECORD_SIZE + 24;
    return this.summary;
  }
}
