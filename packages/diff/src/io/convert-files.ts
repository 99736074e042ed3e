/**
 * wlog → wdiff conversion of wlog files (the common case), without intermediate copies:
 *
 * - Indexed: a look at the headers alone, which tells what later IOs overwrite, then one pass. The
 *   log is read in large reads into reused buffers; each IO is checked, compressed (synchronously
 *   when the codec can, on the spot) and what is visible of it queued for writing as a view, no
 *   copy made; a buffer returns to the pool once what was queued from it is written.
 * - Sorted: two passes over the log files. The first reads and checks everything and builds the
 *   in-memory diff (newer wins, new IOs split into `maxIoBlocks` pieces), each piece pointing at
 *   its bytes in the log; the second reads the surviving pieces back in address order, a batch
 *   ahead of the compression, and writes the packs. Memory holds the index only. With a batch
 *   store (`useBatchStore`), a batch's reads, compression and checksums are one job on the thread
 *   pool, run while this thread writes the packs of the batch before: one request per piece cost
 *   this thread more than the work itself.
 *
 * Both give the same bytes as the streaming conversion: every stored record is the codec's output
 * for the record's bytes, or the raw bytes when that does not shrink them.
 *
 * @module
 */
import type { FileHandle } from 'node:fs/promises';
import { LOGICAL_BLOCK_SIZE, allocReadBuffer, checksum, type ByteSink } from '@walbjs/log-format';
import { DEFAULT_COMPRESS_OPT, codecLevel, type CompressOpt } from '../compression.ts';
import { compressOrRaw, compressOrRawSync } from '../codec/index.ts';
import { getCodec } from '../codec/registry.ts';
import { DiffMemory } from '../algo/diff-memory.ts';
import { LivePartsBuilder, type LiveParts } from '../algo/live-parts.ts';
import type { DiffImage, DiffIo, DiffIoKind } from '../algo/diff-io.ts';
import { IndexedDiffWriter } from './indexed-writer.ts';
import { preadFull } from './pread.ts';
import { SortedDiffWriter, type WriteSummary } from './sorted-writer.ts';
import { STORED_IN_SRC, batchStoreFor } from './batch-store.ts';
import { SCAN_ALLZERO, SCAN_DISCARD, closeScanFiles, scanWlogFiles, type ScanIo, type WlogScanInfo } from './wlog-scan.ts';

/** Options the file conversions take. */
export interface FileConvertOptions {
  cmpr?: CompressOpt;
  maxIoBlocks: number;
  onIo?: () => void;
  sync?: boolean;
  direct?: boolean;
}

/** What a file conversion returns. */
export interface FileConvertResult extends WriteSummary {
  uuid: Uint8Array;
  beginLsid: bigint;
  endLsid: bigint;
}

const KINDS: DiffIoKind[] = ['normal', 'allzero', 'discard'];
const NO_BYTES = Buffer.alloc(0);

interface Stored {
  cmpr: number;
  stored: Uint8Array;
  checksum: number;
  blocks: number;
}

/** How records are compressed: synchronously when the codec can, else through promises. */
function compressorOf(opt: CompressOpt | undefined): { type: number; level: number; sync: boolean } {
  const c = opt ?? DEFAULT_COMPRESS_OPT;
  const level = c.type === 0 ? 0 : (codecLevel(c.type, c.level) ?? 0);
  return { type: c.type, level, sync: c.type === 0 || getCodec(c.type).compressSync !== undefined };
}

/** The stored form of `raw` whose salt-0 checksum is `rawCsum` (when known). */
function storeSync(type: number, level: number, raw: Buffer, rawCsum: number | undefined): Stored {
  const blocks = raw.byteLength / LOGICAL_BLOCK_SIZE;
  if (type === 0) return { cmpr: 0, stored: raw, checksum: rawCsum ?? checksum(raw, 0), blocks };
  const r = compressOrRawSync(type, level, raw)!;
  if (r.cmpr === 0) return { cmpr: 0, stored: raw, checksum: rawCsum ?? checksum(raw, 0), blocks };
  return { cmpr: r.cmpr, stored: r.stored, checksum: checksum(r.stored, 0), blocks };
}

async function storeAsync(type: number, level: number, raw: Buffer, rawCsum: number | undefined): Promise<Stored> {
  const blocks = raw.byteLength / LOGICAL_BLOCK_SIZE;
  const r = await compressOrRaw(type, level, raw);
  if (r.cmpr === 0) return { cmpr: 0, stored: raw, checksum: rawCsum ?? checksum(raw, 0), blocks };
  return { cmpr: r.cmpr, stored: r.stored, checksum: checksum(r.stored, 0), blocks };
}

/**
 * The visible parts of every IO of the wlog files (see live-parts.ts), from their headers alone;
 * undefined when the logs have too many IOs. Lenient: where the headers stop making sense, the
 * parts of the IOs before are given as incomplete, and the pass that reads the data throws the
 * typed error at its place.
 */
async function livePartsOf(paths: string[]): Promise<LiveParts | undefined> {
  const b = new LivePartsBuilder();
  let complete = true;
  try {
    const info = await scanWlogFiles(paths, { io: (io) => { b.add(io.addr, io.blocks); }, chunkDone: (release) => release() }, { store: 'headers' });
    await closeScanFiles(info);
  } catch {
    complete = false;
  }
  try {
    return await b.finish(complete);
  } catch {
    return undefined;
  }
}

/**
 * Convert wlog files into an indexed wdiff: a first look at the logs' headers finds what later IOs
 * overwrite, then one pass reads, checks and writes the data, leaving out what nobody will read.
 * An IO wholly overwritten is left out; of one overwritten in part, the visible pieces are written
 * as images of their own when it is stored raw, the whole image when it is stored compressed (its
 * hidden part then costs only its compressed bytes, and a piece would need compressing again).
 */
export async function convertFilesIndexed(paths: string[], out: ByteSink, opts: FileConvertOptions): Promise<FileConvertResult> {
  const { type, level, sync } = compressorOf(opts.cmpr);
  // The look runs while this pass opens the first log and creates the output; the IOs wait for it.
  const looked = livePartsOf(paths);
  let live: LiveParts | undefined;
  let w: IndexedDiffWriter | undefined;
  // IOs of the current read buffer whose compression is still running (asynchronous codecs only).
  let pending: Array<{ addr: number; blocks: number; kind: number; p?: Promise<Stored>; parts: Float64Array | undefined }> = [];
  let info: WlogScanInfo | undefined;
  let viewed = false;
  let seen = 0;
  const append = (addr: number, blocks: number, kind: number, d: Stored | undefined, parts: Float64Array | undefined): void => {
    if (parts === undefined || d === undefined || d.cmpr !== 0) { w!.appendStored(addr, blocks, KINDS[kind], d); return; }
    for (let i = 0; i < parts.length; i += 2) {
      const from = (parts[i] - addr) * LOGICAL_BLOCK_SIZE, piece = d.stored.subarray(from, from + parts[i + 1] * LOGICAL_BLOCK_SIZE);
      w!.appendStored(parts[i], parts[i + 1], 'normal', { cmpr: 0, stored: piece, checksum: checksum(piece, 0), blocks: parts[i + 1] });
    }
  };
  try {
    info = await scanWlogFiles(paths, {
      begin: async (h) => {
        [w, live] = await Promise.all([IndexedDiffWriter.create(out, { uuid: h.uuid, cmpr: opts.cmpr, maxIoBlocks: opts.maxIoBlocks, sync: opts.sync, direct: opts.direct }), looked]);
      },
      io: (io: ScanIo) => {
        opts.onIo?.();
        let parts: Float64Array | undefined;
        try {
          parts = live?.piecesOf(seen, io.addr, io.blocks);
        } catch (e) {
          throw Object.assign(e as Error, { message: `${paths[io.file]}: ${(e as Error).message}`, path: paths[io.file] });
        }
        seen++;
        // Nothing of it is visible: later IOs overwrite all of it.
        if (parts?.length === 0) return;
        if (!sync) {
          pending.push({ addr: io.addr, blocks: io.blocks, kind: io.kind, p: io.data ? storeAsync(type, level, io.data, io.csum0) : undefined, parts });
          return;
        }
        const s = io.stored;
        const d = s ? { cmpr: s.cmpr, stored: s.stored, checksum: s.checksum, blocks: io.blocks } : io.data ? storeSync(type, level, io.data, io.csum0) : undefined;
        // Raw records, and records the walk stored, are views of the scan's memory.
        if (s || (d && d.cmpr === 0)) viewed = true;
        append(io.addr, io.blocks, io.kind, d, parts);
      },
      chunkDone: async (release) => {
        if (pending.length) {
          const list = pending;
          pending = [];
          for (const e of list) {
            const d = e.p ? await e.p : undefined;
            if (d && d.cmpr === 0) viewed = true;
            append(e.addr, e.blocks, e.kind, d, e.parts);
          }
        }
        // The buffer returns once the raw views queued from it are written; at once when none was.
        if (viewed) w!.output.whenWritten(release);
        else release();
        viewed = false;
        await w!.output.ready();
      },
    }, { store: sync ? type : undefined });
    await closeScanFiles(info);
    // What was left out is hidden by IOs this pass must have written.
    try {
      live?.expectSeen(seen);
    } catch (e) {
      throw Object.assign(e as Error, { message: `${paths.join(', ')}: ${(e as Error).message}` });
    }
    const s = await w!.close();
    return { ...s, uuid: info.uuid, beginLsid: info.beginLsid, endLsid: info.endLsid };
  } catch (e) {
    // The look never throws; let it end before the files go.
    await looked;
    for (const x of pending) x.p?.catch(() => {});
    // Abandoned, not closed: a closed writer would leave a complete-looking diff of part of the logs.
    if (w) await w.abort();
    throw e;
  }
}

/** A normal piece's bytes in the log. */
interface LogImage extends DiffImage {
  /** Index of the log file. */
  readonly file: number;
  /** Byte offset of the image in it. */
  readonly pos: number;
}

/** Raw bytes of pieces read back per batch. */
const BATCH = 4 << 20;
/** Batches read ahead of the compression. */
const BATCHES_AHEAD = 2;

interface Piece {
  addr: number;
  blocks: number;
  kind: DiffIoKind;
  /** Normal: the log file, the byte offset and length of the piece's bytes, the checksum when the piece is the whole IO. */
  file: number;
  pos: number;
  len: number;
  csum: number | undefined;
  /** Where the bytes land in the batch buffer. */
  at: number;
}

interface Batch {
  pieces: Piece[];
  buf: Buffer;
  /** Done when the bytes are in `buf` (and, with a batch store, stored). */
  read: Promise<void>;
  /** With a batch store: where compressed records went, and the 4 words per normal piece it gave. */
  dst?: Buffer;
  stored?: Uint32Array;
}

/** Convert wlog files into a sorted wdiff, in two passes over the files. */
export async function convertFilesSorted(paths: string[], out: ByteSink, opts: FileConvertOptions): Promise<FileConvertResult> {
  const { type, level, sync } = compressorOf(opts.cmpr);
  const mem = new DiffMemory({ maxIoBlocks: opts.maxIoBlocks });
  const info = await scanWlogFiles(paths, {
    io: (io: ScanIo) => {
      opts.onIo?.();
      if (io.kind === SCAN_DISCARD) mem.add({ addr: io.addr, blocks: io.blocks, kind: 'discard' });
      else if (io.kind === SCAN_ALLZERO) mem.add({ addr: io.addr, blocks: io.blocks, kind: 'allzero' });
      else {
        const image: LogImage = { stored: NO_BYTES, cmpr: 0, blocks: io.blocks, checksum: io.csum0, file: io.file, pos: io.filePos };
        mem.add({ addr: io.addr, blocks: io.blocks, kind: 'normal', data: { image, offsetLb: 0 } });
      }
    },
    chunkDone: (release) => release(),
  }, { store: 'sums' });
  let w: SortedDiffWriter | undefined;
  const ahead: Batch[] = [];
  try {
    w = await SortedDiffWriter.create(out, { uuid: info.uuid, cmpr: opts.cmpr, sync: opts.sync, direct: opts.direct });
    const writer = w;
    const files = info.files;
    const store = batchStoreFor(type);
    const pool: Buffer[] = [];
    const takeBuf = (n: number): Buffer => (n <= BATCH ? pool.pop() ?? allocReadBuffer(BATCH) : allocReadBuffer(n));
    const giveBuf = (b: Buffer): void => { if (b.byteLength === BATCH) pool.push(b); };
    // Buffers whose pieces are all queued in packs: they go back once those packs are written.
    let done: Buffer[] = [];
    writer.onPackQueued = () => {
      if (!done.length) return;
      const list = done;
      done = [];
      writer.output.whenWritten(() => { for (const b of list) giveBuf(b); });
    };

    const it = mem.values();
    let carry: DiffIo | undefined;
    const nextBatch = (): Batch | undefined => {
      const pieces: Piece[] = [];
      let bytes = 0;
      let normals = 0;
      for (;;) {
        let io = carry;
        carry = undefined;
        if (!io) {
          const r = it.next();
          if (r.done) break;
          io = r.value;
        }
        if (io.kind !== 'normal') {
          pieces.push({ addr: io.addr, blocks: io.blocks, kind: io.kind, file: 0, pos: 0, len: 0, csum: undefined, at: 0 });
        } else {
          const img = io.data!.image as LogImage;
          const len = io.blocks * LOGICAL_BLOCK_SIZE;
          // A batch stays within one pool buffer; only a piece larger than that gets its own.
          if (bytes > 0 && bytes + len > BATCH) { carry = io; break; }
          const whole = io.data!.offsetLb === 0 && io.blocks === img.blocks;
          pieces.push({ addr: io.addr, blocks: io.blocks, kind: 'normal', file: img.file, pos: img.pos + io.data!.offsetLb * LOGICAL_BLOCK_SIZE, len, csum: whole ? img.checksum : undefined, at: bytes });
          bytes += len;
          normals++;
        }
        if (pieces.length >= 4096) break;
      }
      if (pieces.length === 0) return undefined;
      const buf = takeBuf(bytes);
      const reads = planReads(files, pieces);
      if (!store) return { pieces, buf, read: readPlanned(files, reads, buf) };
      // The reads, the compression and the sums on the thread pool, while this thread writes.
      const dst = type === 0 ? NO_BYTES : takeBuf(bytes);
      const where = new Uint32Array(4 * normals);
      let k = 0;
      for (const p of pieces) {
        if (p.kind !== 'normal') continue;
        where[k] = p.at; where[k + 1] = p.len;
        if (p.csum !== undefined) { where[k + 2] = 1; where[k + 3] = p.csum; }
        k += 4;
      }
      const stored = new Uint32Array(4 * normals);
      return { pieces, buf, dst, stored, read: store(reads, buf, where, type, dst, stored).catch(rethrowRead) };
    };

    const fill = () => {
      while (ahead.length < BATCHES_AHEAD) {
        const b = nextBatch();
        if (!b) break;
        b.read.catch(() => {});
        ahead.push(b);
      }
    };
    fill();
    while (ahead.length) {
      const b = ahead.shift()!;
      await b.read;
      fill();
      if (b.stored) {
        const st = b.stored;
        let k = 0;
        for (const p of b.pieces) {
          if (p.kind !== 'normal') { writer.appendStored(p.addr, p.blocks, p.kind, undefined); continue; }
          const cmpr = st[k], off = st[k + 1], size = st[k + 2];
          const bytes = off === STORED_IN_SRC ? b.buf.subarray(p.at, p.at + p.len) : b.dst!.subarray(off, off + size);
          writer.appendStored(p.addr, p.blocks, 'normal', { cmpr, stored: bytes, checksum: st[k + 3] });
          k += 4;
          // Keep what waits to be written to a stage or so: every stage more is fresh memory,
          // whose first touch costs more than the copy into it.
          if (writer.output.wouldWait) await writer.output.ready();
        }
        if (b.dst!.byteLength) done.push(b.dst!);
      } else if (sync) {
        for (const p of b.pieces) {
          if (p.kind !== 'normal') { writer.appendStored(p.addr, p.blocks, p.kind, undefined); continue; }
          writer.appendStored(p.addr, p.blocks, 'normal', storeSync(type, level, b.buf.subarray(p.at, p.at + p.len), p.csum));
        }
      } else {
        const ps = b.pieces.map((p) => (p.kind === 'normal' ? storeAsync(type, level, b.buf.subarray(p.at, p.at + p.len), p.csum) : undefined));
        for (const p of ps) p?.catch(() => {});
        for (let i = 0; i < b.pieces.length; i++) {
          const p = b.pieces[i];
          writer.appendStored(p.addr, p.blocks, p.kind, p.kind === 'normal' ? await ps[i] : undefined);
        }
      }
      done.push(b.buf);
      await writer.output.ready();
    }
    const s = await writer.close();
    return { ...s, uuid: info.uuid, beginLsid: info.beginLsid, endLsid: info.endLsid };
  } catch (e) {
    // Jobs still running write into their buffers: let them end before anything goes.
    await Promise.all(ahead.map((b) => b.read.catch(() => {})));
    if (w) await w.abort();
    throw e;
  } finally {
    await closeScanFiles(info);
  }
}

/**
 * The reads that bring the normal pieces' bytes into their batch buffer, as (fd, pos, len, at)
 * quadruples: runs of pieces adjacent both in a log file and in the buffer are read at once.
 */
function planReads(files: FileHandle[], pieces: Piece[]): Float64Array {
  const plan: number[] = [];
  let i = 0;
  while (i < pieces.length) {
    const p = pieces[i];
    if (p.kind !== 'normal') { i++; continue; }
    let len = p.len;
    let j = i + 1;
    while (j < pieces.length) {
      const q = pieces[j];
      if (q.kind !== 'normal') { j++; continue; }
      if (q.file !== p.file || q.pos !== p.pos + len || q.at !== p.at + len) break;
      len += q.len;
      j++;
    }
    plan.push(files[p.file].fd, p.pos, len, p.at);
    i = j;
  }
  return Float64Array.from(plan);
}

/** Do the reads of {@link planReads} here, through the fs module. */
async function readPlanned(files: FileHandle[], plan: Float64Array, buf: Buffer): Promise<void> {
  const byFd = new Map(files.map((f) => [f.fd, f]));
  const reads: Promise<void>[] = [];
  for (let i = 0; i < plan.length; i += 4) reads.push(readExact(byFd.get(plan[i])!, buf, plan[i + 3], plan[i + 2], plan[i + 1]));
  await Promise.all(reads);
}

function shrank(pos: number): Error {
  return new Error(`wlog file shrank while it was converted (read at ${pos})`);
}

/** The batch store's short read, in the words of the reads done here. */
function rethrowRead(e: unknown): never {
  if ((e as { code?: string })?.code === 'ERR_WALB_SHORT_READ') throw new Error(`wlog file shrank while it was converted (${(e as Error).message})`, { cause: e });
  throw e;
}

async function readExact(fh: FileHandle, buf: Buffer, at: number, len: number, pos: number): Promise<void> {
  const n = await preadFull(fh, buf, at, len, pos);
  if (n < len) throw shrank(pos + n);
}
