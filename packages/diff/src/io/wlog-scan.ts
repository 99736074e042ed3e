/**
 * A fast sequential reader of wlog files for the conversion: large reads into a small pool of
 * reused buffers (fresh memory costs a page fault per 4 KiB), two reads ahead of the parser, every
 * header and data checksum verified as log-format's `WlogReader` does, each IO classified
 * (discard, all-zero, normal) as it passes.
 *
 * A normal IO's data is handed out as a view of a pool buffer: valid until the buffer is given
 * back, which the consumer decides ({@link WlogScanHooks.chunkDone}). An IO that straddles two
 * reads is copied into a buffer of its own.
 *
 * @module
 */
import type { FileHandle } from 'node:fs/promises';
import {
  ChecksumError as LogChecksumError, LOGICAL_BLOCK_SIZE, allocReadBuffer, LsidSequenceError, TruncatedError as LogTruncatedError,
  WALBLOG_HEADER_SIZE, WalbFormatError, capacityPb, checksum, decodeWlogHeader, isEndMarker,
  nextLogpackLsid, openInput, uuidToHex, type WlogHeader,
} from '@walbjs/log-format';
import { ValueOutOfRangeError } from '../errors.ts';
import { isAllZero } from './zero.ts';
import { preadFull } from './pread.ts';
import { SCAN_ALLZERO, SCAN_NORMAL, decodePackAt, ioAddress, setDiscard, type ScanIo, type WlogScanHooks, type WlogScanInfo, type WlogWalkEnd } from './scan-io.ts';
import { WALK_HEADERS_ONLY, WALK_SUMS_ONLY, logChunkScanFor, walkWlogFile, walkWlogHeaders } from './wlog-walk.ts';

/** Bytes per read. */
const CHUNK = 2 << 20;
/** Reads in flight ahead of the parser. */
const AHEAD = 2;

export { SCAN_NORMAL, SCAN_ALLZERO, SCAN_DISCARD, type ScanIo, type ScanStored, type WlogScanHooks, type WlogScanInfo } from './scan-io.ts';

/** Close the files of a scan. */
export async function closeScanFiles(info: Pick<WlogScanInfo, 'files'>): Promise<void> {
  await Promise.all(info.files.map((f) => f.close().catch(() => {})));
  info.files.length = 0;
}

class Pool {
  private readonly free: Buffer[] = [];
  take(): Buffer {
    return this.free.pop() ?? allocReadBuffer(CHUNK);
  }
  give(b: Buffer): void {
    this.free.push(b);
  }
}

interface Pending {
  buf: Buffer;
  p: Promise<number>;
}

/** Sequential reads of one file with reads ahead. */
class FileChunks {
  private readonly q: Pending[] = [];
  private next = 0;
  private eof = false;
  constructor(private readonly fh: FileHandle, private readonly pool: Pool, start: number) {
    this.next = start;
  }

  private fill(): void {
    while (!this.eof && this.q.length < AHEAD) {
      const buf = this.pool.take();
      const pos = this.next;
      this.next += CHUNK;
      const p = readFull(this.fh, buf, pos);
      p.catch(() => {});
      this.q.push({ buf, p });
      // A short read marks the end; until it is known, keep reading ahead.
      void p.then((n) => { if (n < CHUNK) this.eof = true; }, () => {});
    }
  }

  /** The next chunk and its length (0 at the end). */
  async take(): Promise<{ buf: Buffer; len: number }> {
    this.fill();
    const e = this.q.shift();
    if (!e) return { buf: Buffer.alloc(0), len: 0 };
    const len = await e.p;
    if (len < CHUNK) {
      this.eof = true;
      for (const x of this.q.splice(0)) { await x.p.catch(() => 0); this.pool.give(x.buf); }
    } else {
      this.fill();
    }
    return { buf: e.buf, len };
  }

  async close(): Promise<void> {
    this.eof = true;
    for (const x of this.q.splice(0)) { await x.p.catch(() => 0); this.pool.give(x.buf); }
  }
}

function readFull(fh: FileHandle, buf: Buffer, pos: number): Promise<number> {
  return preadFull(fh, buf, 0, buf.byteLength, pos);
}

/** Options of {@link scanWlogFiles}. */
export interface WlogScanOptions {
  /**
   * Hand out each normal IO's stored form with this codec (`ScanIo.stored`) where a native walk
   * is registered for it (`useLogChunkScan`): the reads, sums and compression then run on the
   * thread pool. Otherwise `stored` stays undefined and the consumer stores IOs itself.
   * `'sums'`: a consumer that needs each IO's place and sum only; a native walk then keeps no
   * data (`data` and `stored` undefined), the JavaScript scan hands out `data` as usual.
   * `'headers'`: a consumer that needs each IO's place only (a first look): no data is summed or
   * tested for zeros, every IO with data is handed out as normal with neither `data` nor `stored`,
   * and `csum0` is 0. The data's checksums are not verified; with a native walk neither are the
   * headers' (see `walkWlogHeaders`), so what a corrupt log gives here is only worth what the pass
   * that reads it confirms.
   */
  store?: number | 'sums' | 'headers';
}

/**
 * Read consecutive wlog files, each holding one wlog or several back to back (every wlog must have
 * the first one's uuid and begin where the previous one ended), handing each IO to `hooks.io`.
 * Padding is skipped. The files stay open in the result for a second pass.
 *
 * @throws log-format's typed errors on corrupt or truncated logs, `LsidSequenceError` when a wlog
 *   does not continue the previous one; {@link ValueOutOfRangeError} on a uuid change or an
 *   address beyond 2^53 LB.
 */
export async function scanWlogFiles(paths: string[], hooks: WlogScanHooks, opts: WlogScanOptions = {}): Promise<WlogScanInfo> {
  const pool = new Pool();
  const info: WlogScanInfo = { uuid: new Uint8Array(16), beginLsid: 0n, endLsid: 0n, files: [], ios: 0 };
  const io: ScanIo = { addr: 0, blocks: 0, kind: 0, data: undefined, csum0: 0, file: 0, filePos: 0, stored: undefined };
  const codec = opts.store === 'sums' ? WALK_SUMS_ONLY : opts.store === 'headers' ? WALK_HEADERS_ONLY : opts.store;
  const walk = codec === undefined ? undefined : logChunkScanFor(codec);
  /** Each regular file's size when it was opened, to tell a log cut meanwhile from a short one. */
  const sizes: number[] = [];
  try {
    for (let fi = 0; fi < paths.length; fi++) {
      const path = paths[fi];
      const fh = await openInput(path);
      info.files.push(fh);
      // A file may hold several wlogs back to back (`cat a.wlog b.wlog > ab.wlog`), as the
      // original's wlog-to-wdiff reads them: each one after the first must continue the one before.
      // A block device holds one: what follows its end marker is whatever the device held before.
      const st = await fh.stat();
      const single = st.isBlockDevice();
      sizes[fi] = st.isFile() ? st.size : -1;
      for (let at = 0; ;) {
        const hb = Buffer.alloc(WALBLOG_HEADER_SIZE);
        const hn = await readFull(fh, hb, at);
        if (hn === 0 && at > 0) break;
        if (hn === 0) throw new LogTruncatedError('empty input: no wlog header', { offset: 0, source: path });
        if (hn < WALBLOG_HEADER_SIZE) throw new LogTruncatedError(`wlog header: needed ${WALBLOG_HEADER_SIZE} bytes, input ended after ${hn}`, { offset: at, source: path });
        let h: WlogHeader;
        try {
          h = decodeWlogHeader(hb, 0, { source: path, offset: at });
        } catch (e) {
          if (e instanceof WalbFormatError) e.locate({ source: path });
          throw e;
        }
        if (fi === 0 && at === 0) {
          info.uuid = h.uuid;
          info.beginLsid = h.beginLsid;
          info.endLsid = h.beginLsid;
          await hooks.begin?.(h);
        } else {
          if (uuidToHex(h.uuid) !== uuidToHex(info.uuid)) {
            throw new ValueOutOfRangeError('uuid', uuidToHex(h.uuid), `differs from the first wlog's ${uuidToHex(info.uuid)}`, { source: path, offset: at });
          }
          if (h.beginLsid !== info.endLsid) {
            throw new LsidSequenceError(`wlog begins at lsid ${h.beginLsid}, the previous one ended at ${info.endLsid}`, { source: path, offset: at });
          }
        }
        const ended = walk
          ? (codec === WALK_HEADERS_ONLY ? await walkWlogHeaders(walk, fh, fi, path, h, io, hooks, info, at) : await walkWlogFile(walk, codec!, fh, fi, path, h, io, hooks, info, at, sizes[fi]))
          : await scanOne(fh, fi, path, h, pool, io, hooks, info, opts.store === 'headers', at);
        info.endLsid = ended.lsid;
        at = ended.end;
        if (single) break;
      }
    }
  } catch (e) {
    const cut = await shrankError(e, paths, info.files, sizes);
    await closeScanFiles(info);
    throw cut ?? e;
  }
  return info;
}

/**
 * The truncation error `e` restated when its file is now shorter than it was when opened: it was
 * cut while it was read (by another program), which "input ended" alone would not tell.
 */
async function shrankError(e: unknown, paths: string[], files: FileHandle[], sizes: number[]): Promise<LogTruncatedError | undefined> {
  if (!(e instanceof LogTruncatedError)) return undefined;
  const fi = paths.indexOf(e.source ?? '');
  if (fi < 0 || !files[fi] || sizes[fi] < 0) return undefined;
  const now = await files[fi].stat().then((s) => s.size, () => undefined);
  if (now === undefined || now >= sizes[fi]) return undefined;
  const r = new LogTruncatedError(`the file shrank from ${sizes[fi]} to ${now} bytes while it was read: ${e.detail}`, { offset: e.offset, lsid: e.lsid, source: e.source });
  r.cause = e;
  return r;
}

async function scanOne(fh: FileHandle, fi: number, path: string, h: WlogHeader, pool: Pool, io: ScanIo, hooks: WlogScanHooks, info: WlogScanInfo, headersOnly: boolean, from: number): Promise<WlogWalkEnd> {
  const pbs = h.physicalBs;
  const salt = h.logChecksumSalt;
  const chunks = new FileChunks(fh, pool, from + WALBLOG_HEADER_SIZE);
  let buf: Buffer = Buffer.alloc(0);
  let len = 0;
  let pos = 0;
  /** File offset of buf[0]. */
  let base = from + WALBLOG_HEADER_SIZE;
  /** Offset just past the end marker. */
  let end = 0;
  let ended = false;
  let lsid = h.beginLsid;

  const advance = async (): Promise<boolean> => {
    if (ended) return false;
    if (len > 0) {
      const b = buf;
      await hooks.chunkDone(() => pool.give(b));
    }
    base += len;
    const c = await chunks.take();
    buf = c.buf;
    len = c.len;
    pos = 0;
    if (len === 0) {
      pool.give(buf);
      ended = true;
      return false;
    }
    return true;
  };

  /** `n` contiguous bytes at the read position: a view, or a copy when they straddle reads; null at the end of the input (before the first byte). */
  const take = async (n: number, what: string): Promise<Buffer | null> => {
    if (pos + n <= len) {
      const v = buf.subarray(pos, pos + n);
      pos += n;
      return v;
    }
    const start = base + pos;
    if (pos >= len) {
      if (!(await advance())) return null;
      if (pos + n <= len) {
        const v = buf.subarray(pos, pos + n);
        pos += n;
        return v;
      }
    }
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      if (pos >= len && !(await advance())) {
        throw new LogTruncatedError(`${what}: needed ${n} bytes, input ended after ${got}`, { offset: start, source: path });
      }
      const k = Math.min(n - got, len - pos);
      buf.copy(out, got, pos, pos + k);
      pos += k;
      got += k;
    }
    return out;
  };

  try {
    for (;;) {
      const offset = base + pos;
      const loc = { offset, source: path, lsid };
      const block = await take(pbs, 'logpack header');
      if (block === null) throw new LogTruncatedError('input ended without the end marker', loc);
      const header = decodePackAt(block, 0, pbs, salt, lsid, offset, path);
      if (isEndMarker(header)) { end = offset + pbs; break; }
      for (const rec of header.records) {
        const flags = rec.flags;
        if ((flags & 4) !== 0) {
          // Discard: no data in the log.
          setDiscard(io, rec, fi, path);
          info.ios++;
          hooks.io(io);
          continue;
        }
        const dataOffset = base + pos;
        const bytes = capacityPb(pbs, rec.ioSize) * pbs;
        const d = await take(bytes, `data of lsid ${rec.lsid}`);
        if (d === null) throw new LogTruncatedError(`data of lsid ${rec.lsid}: needed ${bytes} bytes, input ended`, { offset: dataOffset, source: path, lsid });
        if ((flags & 2) !== 0) continue; // padding
        if (headersOnly) {
          io.addr = ioAddress(rec, path); io.blocks = rec.ioSize; io.file = fi; io.filePos = dataOffset;
          io.kind = SCAN_NORMAL; io.data = undefined; io.csum0 = 0; io.stored = undefined;
          info.ios++;
          hooks.io(io);
          continue;
        }
        const data = d.subarray(0, rec.ioSize * LOGICAL_BLOCK_SIZE);
        const c = checksum(data, salt);
        if (c !== rec.checksum) {
          throw new LogChecksumError('log record data checksum', rec.checksum, c, { offset: dataOffset, lsid: rec.lsid, source: path });
        }
        io.addr = ioAddress(rec, path); io.blocks = rec.ioSize; io.file = fi; io.filePos = dataOffset; io.stored = undefined;
        if (isAllZero(data)) {
          io.kind = SCAN_ALLZERO; io.data = undefined; io.csum0 = 0;
        } else {
          io.kind = SCAN_NORMAL; io.data = data; io.csum0 = (c + salt) >>> 0;
        }
        info.ios++;
        hooks.io(io);
      }
      lsid = nextLogpackLsid(header);
    }
  } finally {
    await chunks.close();
    if (len > 0 && !ended) {
      const b = buf;
      await hooks.chunkDone(() => pool.give(b));
    }
  }
  return { lsid, end };
}
