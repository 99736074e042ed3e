/**
 * Streaming writer of sorted wdiff files: records in address order are packed 127 to a pack (or
 * up to 32 MiB of data), each normal IO compressed on its own, then the END pack.
 *
 * @module
 */
import type { ByteSink } from '@walbjs/log-format';
import { OutWriter } from './out-writer.ts';
import { WALB_DIFF_PACK_SIZE, WALB_DIFF_TYPE_SORTED } from '../constants.ts';
import { DEFAULT_COMPRESS_OPT, codecLevel, type CompressOpt } from '../compression.ts';
import { LayoutError } from '../errors.ts';
import { sliceIo, type DiffIo } from '../algo/diff-io.ts';
import { encodeDiffFileHeader, makeDiffFileHeader, type DiffFileHeader } from '../layout/file-header.ts';
import { encodeDiffPackHeader, endPack, packCanAdd, type DiffPackHeader } from '../layout/pack-header.ts';
import { kindFlags, type DiffRecord } from '../layout/diff-record.ts';
import { OrderedCompressor, type StoredData } from './stored-data.ts';
import { availableParallelism } from 'node:os';

/** Options both wdiff writers take. */
export interface WdiffWriteOptions {
  /** Device uuid for the header (default zeros). */
  uuid?: Uint8Array;
  /** Compression of each record (default snappy, level 0). */
  cmpr?: CompressOpt;
  /** Compressions in flight (default: 2 × cores). */
  parallel?: number;
  /** `fdatasync` a file before closing it. */
  sync?: boolean;
  /**
   * Write a file output with direct IO (`O_DIRECT`): no page cache filled with the output, no
   * writeback behind it. Needs `useDirectWrites`; a file system without direct IO gets
   * buffered writes. Default false.
   */
  direct?: boolean;
}

/** Options of {@link SortedDiffWriter.create}. */
export interface SortedWriteOptions extends WdiffWriteOptions {
  /** Split IOs larger than this many LB (default 0: no split). */
  maxIoBlocks?: number;
  /** Keep whole images that are stored raw as they are (they were written with this codec already). */
  passRaw?: boolean;
}

/** Counts of what a writer wrote. */
export interface WriteSummary {
  /** Records written. */
  records: number;
  /** Packs written (the END pack excluded). */
  packs: number;
  /** Bytes written, headers included. */
  bytes: number;
}

/**
 * Writes a sorted wdiff.
 *
 * @example
 * const w = await SortedDiffWriter.create('out.wdiff', { uuid, cmpr: parseCompressOpt('zstd:3') });
 * for (const io of ios) await w.write(io);   // ascending, non-overlapping
 * await w.close();
 */
export class SortedDiffWriter {
  private pack: DiffPackHeader = { ...endPack(), flags: 0 };
  private data: Uint8Array[] = [];
  /** Called after each pack is queued for writing (internal: for callers that reuse buffers). */
  onPackQueued: (() => void) | undefined;
  /**
   * Called with an LB address once the writer holds no data of the IOs ending at or below it
   * (internal: for inputs that reuse the memory of IOs released).
   */
  onReleased: ((addr: number) => void) | undefined;
  private prevEnd = 0;
  private closed = false;
  /**
   * The output takes reservations (a direct-IO file): a pack's records are written as they come
   * and its header, which lists them, goes into the place set aside at `headerAt`. Otherwise the
   * records wait in `data` until the pack is complete. A 32 MiB pack no longer holds back the
   * writes (the first write of a 135 MiB log's sorted conversion started 35 ms after the first
   * pass, waiting for a whole pack), nor takes eight fresh 4 MiB stages at once.
   */
  private readonly reserving: boolean;
  private headerAt = 0;
  private readonly comp: OrderedCompressor<undefined>;
  private readonly maxIoBlocks: number;
  /** What was written so far. */
  readonly summary: WriteSummary = { records: 0, packs: 0, bytes: 0 };

  private constructor(private readonly out: OutWriter, readonly header: DiffFileHeader, opts: SortedWriteOptions) {
    const c = opts.cmpr ?? DEFAULT_COMPRESS_OPT;
    const level = c.type === 0 ? 0 : (codecLevel(c.type, c.level) ?? 0);
    const sinkNow = (_t: undefined, io: DiffIo, d: StoredData | undefined) => this.appendStored(io.addr, io.blocks, io.kind, d);
    this.comp = new OrderedCompressor(c.type, level, opts.parallel ?? 8 * availableParallelism(), async (t, io, d) => sinkNow(t, io, d), opts.passRaw ?? false, sinkNow);
    this.maxIoBlocks = opts.maxIoBlocks ?? 0;
    this.sync = opts.sync ?? false;
    this.reserving = out.canReserve;
  }
  private readonly sync: boolean;

  /** Create the file (or stream) and write the header. */
  static async create(sink: ByteSink, opts: SortedWriteOptions = {}): Promise<SortedDiffWriter> {
    const h = makeDiffFileHeader(WALB_DIFF_TYPE_SORTED, opts.uuid);
    const out = await OutWriter.open(sink, { syncAlong: opts.sync, direct: opts.direct });
    out.push(encodeDiffFileHeader(h));
    return new SortedDiffWriter(out, h, opts);
  }

  /**
   * Add an IO. IOs must come in ascending address order without overlap.
   *
   * @throws {@link LayoutError} on an IO out of order.
   */
  async write(io: DiffIo): Promise<void> {
    if (this.closed) throw new Error('SortedDiffWriter is closed');
    if (io.addr < this.prevEnd) throw new LayoutError(`IO at LB ${io.addr} overlaps or precedes the previous one ending at ${this.prevEnd}`);
    this.prevEnd = io.addr + io.blocks;
    const max = this.maxIoBlocks;
    if (max <= 0 || io.blocks <= max) await this.comp.push(undefined, io);
    // Piece by piece: a discard of a whole device is millions of them.
    else {
      for (let a = io.addr, end = io.addr + io.blocks; a < end; a += max) {
        await this.comp.push(undefined, sliceIo(io, a, Math.min(a + max, end))!);
        if (this.out.wouldWait) await this.out.ready();
      }
    }
    await this.out.ready();
  }

  /**
   * {@link write} without a wait, when it needs none: true when `io` is written (queued), false
   * with nothing done (then `await write(io)`). For callers that write many small IOs.
   */
  writeNow(io: DiffIo): boolean {
    if (this.closed || io.addr < this.prevEnd || (this.maxIoBlocks > 0 && io.blocks > this.maxIoBlocks) || this.out.wouldWait) return false;
    if (!this.comp.pushNow(undefined, io)) return false;
    this.prevEnd = io.addr + io.blocks;
    return true;
  }

  /** The output (internal: for callers that hand in views of reused buffers). */
  get output(): OutWriter {
    return this.out;
  }

  /**
   * Add a record whose data is already in its stored form (internal: the caller keeps the order,
   * splits, and checks nothing overlaps). Synchronous; await `this.output.ready()` now and then.
   */
  appendStored(addr: number, blocks: number, kind: DiffIo['kind'], d: { cmpr: number; stored: Uint8Array; checksum: number } | undefined): void {
    const size = d ? d.stored.byteLength : 0;
    if (!packCanAdd(this.pack.records.length, this.pack.totalSize, size)) this.flushPack();
    // A direct-IO file takes each record's bytes at once, its pack header's place set aside.
    if (this.reserving && this.pack.records.length === 0) this.headerAt = this.out.reserve(WALB_DIFF_PACK_SIZE);
    const rec: DiffRecord = {
      ioAddress: addr, ioBlocks: blocks, flags: kindFlags(kind), compressionType: d ? d.cmpr : 0,
      reserved1: 0, dataOffset: this.pack.totalSize, dataSize: size, checksum: d ? d.checksum : 0, reserved2: 0,
    };
    this.pack.records.push(rec);
    this.pack.totalSize += size;
    if (d) {
      if (this.reserving) this.out.push(d.stored);
      else this.data.push(d.stored);
    }
    this.summary.records++;
  }

  private flushPack(): void {
    if (this.pack.records.length === 0) return;
    if (this.reserving) {
      this.out.fill(this.headerAt, encodeDiffPackHeader(this.pack));
    } else {
      this.out.push(encodeDiffPackHeader(this.pack));
      for (const b of this.data) this.out.push(b);
    }
    if (this.onReleased) {
      const last = this.pack.records[this.pack.records.length - 1];
      const end = last.ioAddress + last.ioBlocks, fn = this.onReleased;
      this.out.whenWritten(() => fn(end));
    }
    this.summary.packs++;
    this.pack = { ...endPack(), flags: 0 };
    this.data = [];
    this.onPackQueued?.();
  }

  /**
   * Write what is pending and the END pack, then close the output (a file is put at its path only
   * now). On a failure the output is abandoned as by {@link abort}.
   */
  async close(): Promise<WriteSummary> {
    if (this.closed) return this.summary;
    this.closed = true;
    try {
      await this.comp.flush();
      this.flushPack();
      this.out.push(encodeDiffPackHeader(endPack()));
      await this.out.close(this.sync);
    } catch (e) {
      await this.abort();
      throw e;
    }
    this.summary.bytes = this.out.written;
    return this.summary;
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
}
