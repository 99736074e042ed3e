/**
 * Streaming reader of sorted wdiff files: the header, then packs of records with their data,
 * every checksum verified and the address order checked as they go.
 *
 * @module
 */
import { ChunkReader, WalbFormatError, checksum, type ByteSource, type ChunkPool } from '@walbjs/log-format';
import { WALB_DIFF_FILE_HEADER_SIZE, WALB_DIFF_PACK_SIZE } from '../constants.ts';
import { ChecksumError, TruncatedError, WdiffFormatError } from '../errors.ts';
import { endAfter, expectSorted } from './sorted-checks.ts';
import type { DiffIo } from '../algo/diff-io.ts';
import { decodeDiffFileHeader, type DiffFileHeader } from '../layout/file-header.ts';
import { decodeDiffPackHeader, isEndPack } from '../layout/pack-header.ts';
import { recordKind, type DiffRecord } from '../layout/diff-record.ts';

const EMPTY = Buffer.alloc(0);

/** One record of a sorted wdiff with its stored data. */
export interface SortedDiffEntry {
  /** The record as stored. */
  record: DiffRecord;
  /** The stored data (empty for ALLZERO and DISCARD). */
  stored: Buffer;
  /** The record as an engine IO (its data a window over `stored`). */
  io: DiffIo;
  /** File offset of the record's data. */
  dataOffset: number;
}

/** Options of {@link SortedDiffReader.open}. */
export interface SortedReadOptions {
  /** Verify each record's data checksum (default true). */
  verifyData?: boolean;
  /** Name of the input for error messages. */
  source?: string;
  /**
   * Read a file into a few reused buffers: an entry's `stored` bytes (and its IO's data) are then
   * valid only until one more chunk of the file has been read, so take this only when every
   * entry is used up (copied, written, checked) before reading on. Default false.
   */
  reuseBuffers?: boolean;
  /** Bytes per read of a file (as log-format's chunk reader takes them; default 2 MiB). */
  chunkBytes?: number;
  /**
   * The caller tells with {@link SortedDiffReader.releaseBelow} which IOs it is done with, and a
   * file's chunks are read again into once every IO read from them is released: no fresh chunk
   * per read, which a merge of 8 sorted diffs paid with a fifth of its time in garbage collection
   * and 460 MB of memory. Not with `reuseBuffers`. Default false.
   */
  recycle?: boolean;
}

/** A file's chunk buffers, given back once every IO read from them is released. */
class ChunkRecycler implements ChunkPool {
  /**
   * Chunks holding the data of IOs handed out, by their memory, with the highest LB end of those
   * IOs. A chunk can be a view into a larger allocation (an aligned read buffer).
   */
  private readonly held = new Map<ArrayBufferLike, { chunk: Uint8Array; end: number }>();
  private readonly spare: Uint8Array[] = [];

  take(bytes: number): Buffer | undefined {
    const c = this.spare.pop();
    return c && c.byteLength === bytes ? Buffer.from(c.buffer, c.byteOffset, c.byteLength) : undefined;
  }

  hold(chunk: Uint8Array, end: number): void {
    const e = this.held.get(chunk.buffer);
    if (e === undefined) this.held.set(chunk.buffer, { chunk, end });
    else if (e.end < end) e.end = end;
  }

  /** Give back the chunks whose IOs all end at or below `addr`, except the one being read. */
  release(addr: number, current: ArrayBufferLike): void {
    for (const [mem, e] of this.held) {
      if (e.end <= addr && mem !== current) {
        this.held.delete(mem);
        this.spare.push(e.chunk);
      }
    }
  }
}

/**
 * Reads a sorted wdiff from a path, bytes, a stream or chunks.
 *
 * @example
 * const r = await SortedDiffReader.open('a.wdiff');
 * for await (const { record } of r) console.log(record.ioAddress, record.ioBlocks);
 */
export class SortedDiffReader implements AsyncIterable<SortedDiffEntry> {
  private pending: { recs: DiffRecord[]; i: number } | undefined;
  private prevEnd = 0;
  private done = false;
  private readonly verifyData: boolean;
  /** Number of packs read so far. */
  packs = 0;

  private constructor(private readonly r: ChunkReader, readonly header: DiffFileHeader, opts: SortedReadOptions, private readonly recycler?: ChunkRecycler) {
    this.verifyData = opts.verifyData ?? true;
  }

  /**
   * Open a sorted wdiff and read its header.
   *
   * @throws {@link WdiffFormatError} when the header is invalid or the file is indexed.
   */
  static async open(src: ByteSource, opts: SortedReadOptions = {}): Promise<SortedDiffReader> {
    // Only a file's chunks are the reader's own to reuse.
    const recycler = opts.recycle && !opts.reuseBuffers && typeof src === 'string' && src !== '-' ? new ChunkRecycler() : undefined;
    // The reader carries the name, so that errors past the header (read through it) name a stream.
    const r = new ChunkReader(src, { reuseBuffers: opts.reuseBuffers, chunkBytes: opts.chunkBytes, pool: recycler, source: opts.source });
    const source = r.source;
    try {
      const b = await r.read(WALB_DIFF_FILE_HEADER_SIZE, 'wdiff header');
      if (b === null) throw new TruncatedError('empty input: no wdiff header', { offset: 0, source });
      const h = decodeDiffFileHeader(b, 0, { source });
      expectSorted(h, source);
      return new SortedDiffReader(r, h, opts, recycler);
    } catch (e) {
      await r.close();
      const w = asWdiffError(e);
      if (w instanceof WdiffFormatError) w.locate({ source });
      throw w;
    }
  }

  /** The next record, or `null` after the END pack. */
  async next(): Promise<SortedDiffEntry | null> {
    const source = this.r.source;
    try {
      while (!this.pending || this.pending.i >= this.pending.recs.length) {
        if (this.done) return null;
        const offset = this.r.offset;
        const block = this.r.readNow(WALB_DIFF_PACK_SIZE) ?? await this.r.read(WALB_DIFF_PACK_SIZE, 'wdiff pack header');
        if (block === null) throw new TruncatedError('input ended without the END pack', { offset, source });
        const p = decodeDiffPackHeader(block, 0, { offset, source });
        if (isEndPack(p)) {
          this.done = true;
          await this.r.close();
          return null;
        }
        this.pending = { recs: p.records, i: 0 };
        this.packs++;
      }
      const pk = this.pending;
      const record = pk.recs[pk.i++];
      // Data follow their pack header contiguously in record order (checked at decode), so each
      // record's bytes are read on their own: no pack-sized buffer, no copy unless a read crosses
      // the reader's chunks.
      const dataOffset = this.r.offset;
      const loc = { offset: dataOffset, source };
      this.prevEnd = endAfter(record, this.prevEnd, loc);
      const kind = recordKind(record.flags);
      if (kind !== 'normal') return { record, stored: EMPTY, io: { addr: record.ioAddress, blocks: record.ioBlocks, kind }, dataOffset };
      const stored = this.r.readNow(record.dataSize) ?? await this.r.readExact(record.dataSize, `data of the record at LB ${record.ioAddress}`);
      // A view of the chunk being read (a read across chunks is a copy of its own).
      if (this.recycler && stored.buffer === this.r.currentBuffer) this.recycler.hold(this.r.currentChunk, record.ioAddress + record.ioBlocks);
      if (this.verifyData) {
        const c = checksum(stored, 0);
        if (c !== record.checksum) throw new ChecksumError('wdiff record data checksum', record.checksum, c, loc);
      }
      const io: DiffIo = {
        addr: record.ioAddress, blocks: record.ioBlocks, kind,
        data: { image: { stored, cmpr: record.compressionType, blocks: record.ioBlocks, checksum: record.checksum, source, offset: dataOffset }, offsetLb: 0 },
      };
      return { record, stored, io, dataOffset };
    } catch (e) {
      this.done = true;
      await this.r.close();
      throw asWdiffError(e);
    }
  }

  /**
   * The caller holds no IO (nor any view of its data) ending at or below LB `addr`: the chunks
   * those IOs were read from may be filled again. Only with `recycle`.
   */
  releaseBelow(addr: number): void {
    this.recycler?.release(addr, this.r.currentBuffer);
  }

  /** Stop reading and release the input. */
  async close(): Promise<void> {
    this.done = true;
    this.pending = undefined;
    await this.r.close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SortedDiffEntry> {
    try {
      for (;;) {
        const e = await this.next();
        if (e === null) return;
        yield e;
      }
    } finally {
      await this.close();
    }
  }
}

/** The byte reader is shared with the log format and speaks its errors; this package speaks its own. */
function asWdiffError(e: unknown): unknown {
  if (e instanceof WalbFormatError && e.code === 'ERR_WALB_TRUNCATED') return new TruncatedError(e.detail, { offset: e.offset, source: e.source });
  return e;
}
