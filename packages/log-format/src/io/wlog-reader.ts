/**
 * Streaming wlog reader: the file header, then packs with their IO data, checked as they go.
 *
 * @module
 */
import { WALBLOG_HEADER_SIZE, capacityPb, LOGICAL_BLOCK_SIZE } from '../constants.ts';
import { checksum } from '../checksum.ts';
import { ChecksumError, TruncatedError, WalbFormatError } from '../errors.ts';
import {
  decodeLogpackHeader, isEndMarker, nextLogpackLsid, type LogpackHeader,
} from '../layout/logpack-header.ts';
import { hasData, hasDataForChecksum } from '../layout/log-record.ts';
import { decodeWlogHeader, type WlogHeader } from '../layout/wlog-header.ts';
import { ChunkReader, type ByteSource } from './byte-source.ts';

/** One logpack and its data. */
export interface WlogPack {
  /** The decoded header. */
  header: LogpackHeader;
  /**
   * One buffer per record that has data (normal and padding, in record order), each the full
   * PB-padded extent as stored in the log.
   */
  ios: Buffer[];
  /** Byte offset of the header block in the input. */
  offset: number;
}

/** Options of {@link WlogReader}. */
export interface ReadWlogOptions {
  /** Verify every record's data checksum (default true). */
  verifyData?: boolean;
  /**
   * Strict (default): an invalid pack header or a missing end marker is an error. Lenient: stop quietly at the first invalid pack header, as the original tools do.
   */
  strict?: boolean;
  /** Name of the input for error messages (a path, and stdin, are named automatically). */
  source?: string;
  /**
   * Wlogs back to back in one input, as the original's `wlog-to-wdiff` reads them: the input stays
   * open after the end marker, for {@link WlogReader.following} (default false: it is closed there).
   */
  chained?: boolean;
}

/**
 * Reads a wlog from a path, bytes, a Node stream or an async iterable of chunks.
 *
 * @example
 * const r = await WlogReader.open('a.wlog');
 * console.log(r.header.beginLsid);
 * for await (const pack of r) {
 *   for (const rec of pack.header.records) console.log(rec.lsid, rec.offset, rec.ioSize);
 * }
 * console.log('ends at', r.endLsid);
 */
export class WlogReader implements AsyncIterable<WlogPack> {
  /** The file header. */
  readonly header: WlogHeader;
  /** Byte offset of the header in the input (0 but for the later wlogs of a chained input). */
  readonly headerOffset: number;
  /** lsid of the next pack: after the last pack read, the log's real end. */
  endLsid: bigint;
  /** Whether the end marker was reached (false until then, or when the input just stopped). */
  sawEndMarker = false;
  private finished = false;
  /** The input went on to the reader of the next wlog ({@link WlogReader.following}). */
  private handedOn = false;
  private readonly verifyData: boolean;
  private readonly strict: boolean;

  private constructor(private readonly r: ChunkReader, header: WlogHeader, private readonly opts: ReadWlogOptions, headerOffset = 0) {
    this.header = header;
    this.headerOffset = headerOffset;
    this.endLsid = header.beginLsid;
    this.verifyData = opts.verifyData ?? true;
    this.strict = opts.strict ?? true;
  }

  /**
   * Open a wlog and read its header.
   *
   * @throws {@link WalbFormatError} when the header is missing or invalid.
   */
  static async open(src: ByteSource, opts: ReadWlogOptions = {}): Promise<WlogReader> {
    const r = new ChunkReader(src, { source: opts.source });
    const source = r.source;
    try {
      const block = await r.read(WALBLOG_HEADER_SIZE, 'wlog header');
      if (block === null) throw new TruncatedError('empty input: no wlog header', { offset: 0, source });
      return new WlogReader(r, decodeWlogHeader(block, 0, { source }), { ...opts, source });
    } catch (e) {
      await r.close();
      if (e instanceof WalbFormatError) e.locate({ source });
      throw e;
    }
  }

  /** Physical block size of the log. */
  get pbs(): number {
    return this.header.physicalBs;
  }

  /**
   * Read the next pack, or `null` at the end of the log.
   *
   * @throws {@link WalbFormatError} on corrupt or truncated input (in strict mode; in lenient
   *   mode an invalid pack header ends the log instead).
   */
  async next(): Promise<WlogPack | null> {
    if (this.finished) return null;
    const pbs = this.pbs;
    const salt = this.header.logChecksumSalt;
    const offset = this.r.offset;
    // The input's name as `open` settled it (the caller's, else a path's or stdin's), which the
    // reader's own truncation errors carry too.
    const source = this.r.source;
    const loc = { offset, source, lsid: this.endLsid };
    // What an error names: the pack, then the record whose data is being read, as the messages do.
    let lsid = this.endLsid;
    try {
      const block = await this.r.read(pbs, 'logpack header');
      if (block === null) {
        if (this.strict) throw new TruncatedError('input ended without the end marker', loc);
        return this.finish();
      }
      let header: LogpackHeader;
      try {
        header = decodeLogpackHeader(block, 0, pbs, salt, { expectedLsid: this.endLsid, loc });
      } catch (e) {
        if (!this.strict && e instanceof WalbFormatError) return this.finish();
        throw e;
      }
      if (isEndMarker(header)) {
        this.sawEndMarker = true;
        return this.finish();
      }
      const ios: Buffer[] = [];
      for (const rec of header.records) {
        if (!hasData(rec)) continue;
        lsid = rec.lsid;
        const dataOffset = this.r.offset;
        const io = await this.r.readExact(capacityPb(pbs, rec.ioSize) * pbs, `data of lsid ${rec.lsid}`);
        if (this.verifyData && hasDataForChecksum(rec)) {
          const c = checksum(io.subarray(0, rec.ioSize * LOGICAL_BLOCK_SIZE), salt);
          if (c !== rec.checksum) {
            throw new ChecksumError('log record data checksum', rec.checksum, c, { offset: dataOffset, lsid: rec.lsid, source });
          }
        }
        ios.push(io);
      }
      this.endLsid = nextLogpackLsid(header);
      return { header, ios, offset };
    } catch (e) {
      await this.finish();
      if (e instanceof WalbFormatError) e.locate({ ...loc, lsid });
      throw e;
    }
  }

  private async finish(): Promise<null> {
    this.finished = true;
    // A chained input stays open after the end marker: what follows is the next wlog's.
    if (!(this.opts.chained && this.sawEndMarker)) await this.r.close();
    return null;
  }

  /** Stop reading and release the input (unless it went on to the next wlog's reader). */
  async close(): Promise<void> {
    this.finished = true;
    if (!this.handedOn) await this.r.close();
  }

  /**
   * The wlog that follows this one in the same input, or `null` where the input ends after this
   * one's end marker. Only for a reader opened with `chained`, once its packs are read to the end
   * marker; the input goes on to the returned reader (close that one, or this one on `null`).
   *
   * @example
   * for (let r: WlogReader | null = await WlogReader.open(process.stdin, { chained: true }); r; r = await r.following()) {
   *   for await (const p of r) console.log(p.header.logpackLsid);
   * }
   * @throws {@link WalbFormatError} when what follows is not a wlog header; an `Error` when called
   *   before the end marker or without `chained`.
   */
  async following(): Promise<WlogReader | null> {
    if (!this.opts.chained || !this.sawEndMarker || this.handedOn) throw new Error('following(): only for a chained reader at its end marker, once');
    this.handedOn = true;
    const offset = this.r.offset;
    const source = this.r.source;
    try {
      const block = await this.r.read(WALBLOG_HEADER_SIZE, 'wlog header');
      if (block === null) {
        await this.r.close();
        return null;
      }
      return new WlogReader(this.r, decodeWlogHeader(block, 0, { source, offset }), this.opts, offset);
    } catch (e) {
      await this.r.close();
      if (e instanceof WalbFormatError) e.locate({ offset, source });
      throw e;
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WlogPack> {
    try {
      for (;;) {
        const p = await this.next();
        if (p === null) return;
        yield p;
      }
    } finally {
      await this.finish();
    }
  }
}

/**
 * Iterate the packs of a wlog (the header is checked but not returned; use {@link WlogReader}
 * when you need it).
 *
 * @example
 * for await (const { header, ios } of readWlog('a.wlog')) console.log(header.logpackLsid, ios.length);
 */
export async function* readWlog(src: ByteSource, opts: ReadWlogOptions = {}): AsyncGenerator<WlogPack> {
  const r = await WlogReader.open(src, opts);
  yield* r;
}
