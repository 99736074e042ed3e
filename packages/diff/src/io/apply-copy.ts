/**
 * Apply by pieces: the headers (or indexes) of the wdiffs are decoded here with the readers'
 * decoders and checks, several of them merged as IOs that only point into their files (the
 * engine's merge never touches bytes), and the records stored raw, and the zeros, go to an
 * external implementation (the native addon's `copyPieces`) as (file, source, length, target,
 * checksum) pieces; it reads them a slice at a time, checks each against its checksum before
 * writing any of its slice, and writes adjacent ones in one write. Records stored compressed are
 * read, checked, decompressed and written here. No byte of the diffs passes through JavaScript
 * memory unless it was compressed.
 *
 * @module
 */
import { closeSync, readSync, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { LOGICAL_BLOCK_SIZE, checksum, locateIoError } from '@walbjs/log-format';
import { WALB_DIFF_TYPE_INDEXED, WALB_DIFF_TYPE_SORTED } from '../constants.ts';
import { decompressStored, decompressStoredSync } from '../codec/index.ts';
import { ChecksumError, TruncatedError } from '../errors.ts';
import { recordKind } from '../layout/diff-record.ts';
import { sameStoredImage, type IndexedDiffRecord } from '../layout/indexed-record.ts';
import type { DiffImage, DiffIo } from '../algo/diff-io.ts';
import { mergeIos } from '../algo/merge.ts';
import type { DiscardMode, ZeroFilter } from './apply.ts';
import { IndexedDiffReader } from './indexed-reader.ts';
import { sortedRecordsOf } from './sorted-records.ts';
import type { SyncPolicy } from './sync-policy.ts';
import { openWdiffFile, type WdiffFile } from './wdiff-file.ts';

/**
 * Check and write `pieces` ((file, source offset or -1 for zeros, length, target offset or -1 to
 * only check, salt-0 checksum or -1) quintuples, `file` an index into `srcs`, the open wdiffs) to
 * the open target `dst`, on another thread; `state[0]` gets the pieces finished, and after a rejection with code
 * `ERR_WALB_SUM`, `state[1]` the sum the failing piece (the next one) has. A failed read rejects
 * with `ERR_WALB_READ` (`errno`), a source that ends inside a piece with `ERR_WALB_SHORT_READ`, a
 * failed write with `ERR_WALB_WRITE` (`errno`).
 */
export type CopyPiecesFn = (srcs: Uint32Array, dst: number, pieces: Float64Array, state: Float64Array) => Promise<void>;

let impl: CopyPiecesFn | undefined;

/**
 * Apply wdiffs with `fn` (for example the native addon's `copyPieces`): their raw records are
 * read, checked and written by it, a slice at a time, instead of passing through this thread; a
 * merge of several diffs is worked out from their headers alone. `undefined` goes back to reading
 * and writing everything from here.
 *
 * @example
 * import { loadNative } from '@walbjs/native-walb';
 * useCopyPieces(loadNative().copyPieces);
 */
export function useCopyPieces(fn: CopyPiecesFn | undefined): void {
  impl = fn;
}

/** Numbers per piece. */
const W = 5;
/** Pieces per call, or this many bytes of them, whichever comes first. */
const BATCH_PIECES = 8192;
const BATCH_BYTES = 16 << 20;

/** Pieces gathered for one call, with what tells a failure's place and kind. */
class Plan {
  readonly q = new Float64Array(W * BATCH_PIECES);
  n = 0;
  bytes = 0;
  /** LB address the last piece written reaches. */
  addr = 0;

  add(file: number, src: number, len: number, dst: number, sum: number): void {
    const k = W * this.n++;
    this.q[k] = file;
    this.q[k + 1] = src;
    this.q[k + 2] = len;
    this.q[k + 3] = dst;
    this.q[k + 4] = sum;
    if (dst >= 0) this.bytes += len;
  }

  get full(): boolean {
    return this.n === BATCH_PIECES || this.bytes >= BATCH_BYTES;
  }
}

/** The calls, one in flight while the next plan fills. */
class Copier {
  private cur = new Plan();
  private spare = new Plan();
  private inflight: Promise<void> | undefined;
  private readonly state = new Float64Array(2);

  constructor(private readonly fn: CopyPiecesFn, private readonly srcs: Uint32Array, private readonly dst: number,
    private readonly inputs: string[], private readonly target: string, private readonly sp: SyncPolicy,
    private readonly onProgress?: (addr: number, phase: 'verify' | 'apply') => void,
    private readonly onBatch?: () => void) {}

  /** Add a piece; hands the plan over when it is full. */
  async add(file: number, src: number, len: number, dst: number, sum: number, addr: number): Promise<void> {
    this.cur.add(file, src, len, dst, sum);
    this.cur.addr = addr;
    if (this.cur.full) await this.flush();
  }

  async flush(): Promise<void> {
    // Told before waiting for the batch in flight: what this one needs can be asked for meanwhile.
    if (this.cur.n > 0) this.onBatch?.();
    await this.settle();
    if (this.cur.n === 0) return;
    const p = this.cur;
    this.cur = this.spare;
    this.spare = p;
    this.cur.n = 0;
    this.cur.bytes = 0;
    this.inflight = this.run(p);
    this.inflight.catch(() => {});
  }

  async settle(): Promise<void> {
    const p = this.inflight;
    this.inflight = undefined;
    await p;
  }

  private async run(p: Plan): Promise<void> {
    try {
      await this.fn(this.srcs, this.dst, p.q.subarray(0, W * p.n), this.state);
    } catch (e) {
      throw this.locate(e, p);
    }
    await this.sp.written(p.bytes);
    this.onProgress?.(p.addr, 'apply');
  }

  /** The typed error of a failed call, placed where the piece that failed lies. */
  private locate(e: unknown, p: Plan): unknown {
    const code = (e as { code?: string }).code;
    const k = W * Math.min(this.state[0], p.n - 1);
    const at = p.q[k + 1] >= 0 ? p.q[k + 1] : undefined;
    const input = this.inputs[p.q[k]];
    if (code === 'ERR_WALB_SUM') return new ChecksumError('wdiff data checksum', p.q[k + 4], this.state[1], { offset: at, source: input });
    if (code === 'ERR_WALB_SHORT_READ') return new TruncatedError('the input ended inside a record\'s data', { offset: at, source: input });
    const errno = (e as { errno?: number }).errno;
    if ((code === 'ERR_WALB_READ' || code === 'ERR_WALB_WRITE') && errno !== undefined) {
      const name = Object.entries(osConstants.errno).find(([, v]) => v === errno)?.[0] ?? 'EIO';
      const write = code === 'ERR_WALB_WRITE';
      const sys = Object.assign(new Error(`${name}: ${(e as Error).message}`), { code: name, errno: -errno, syscall: write ? 'write' : 'read' });
      return write ? locateIoError(sys, this.target, 'write', p.q[k + 3]) : locateIoError(sys, input, 'read', at);
    }
    return e;
  }
}

/** Where compressed records are read: a buffer reused while it is large enough. */
let room: Buffer | undefined;

function readStored(fd: number, off: number, len: number, input: string): Buffer {
  const b = room && room.byteLength >= len ? room.subarray(0, len) : (room = Buffer.allocUnsafe(Math.max(len, 1 << 20))).subarray(0, len);
  let n = 0;
  while (n < len) {
    const got = readSync(fd, b, n, len - n, off + n);
    if (got === 0) throw new TruncatedError('the input ended inside a record\'s data', { offset: off, source: input });
    n += got;
  }
  return b;
}

async function decompress(cmpr: number, stored: Buffer, rawBytes: number): Promise<Buffer> {
  return decompressStoredSync(cmpr, stored, rawBytes) ?? await decompressStored(cmpr, stored, rawBytes);
}

/** Write `b` at byte `pos` of the target from this thread. */
function writeHere(fh: FileHandle, target: string, b: Uint8Array, pos: number): void {
  let done = 0;
  try {
    while (done < b.byteLength) done += writeSync(fh.fd, b, done, b.byteLength - done, pos + done);
  } catch (e) {
    throw locateIoError(e, target, 'write', pos + done);
  }
}

/** @internal */
export interface CopyApplyOptions {
  discard: DiscardMode;
  sp: SyncPolicy;
  /** Gets the byte ranges to punch (discards in punch mode), adjacent ones joined. */
  holes: Array<[number, number]>;
  onProgress?: (addr: number, phase: 'verify' | 'apply') => void;
  /** Called with each IO before it is planned (the target's prefetch reads ahead for it). */
  onIo?: (io: DiffIo) => void;
  /** Called when a batch of pieces is planned, before any of it is written (and before the batch in flight has finished). */
  onBatch?: () => void;
  /** Tells which zero IOs must be written (see `keepHoles`); all of them without one. */
  zeros?: ZeroFilter;
}

/** An image of a wdiff file: where it lies, for the pieces. */
interface FileImage extends DiffImage {
  /** Index of the file among the inputs. */
  readonly file: number;
  /** Byte offset of the stored image in it. */
  readonly offset: number;
  /** Stored bytes. */
  readonly size: number;
}

const NOTHING = Buffer.alloc(0);

/** The IOs of a sorted wdiff from its pack headers, their images pointing into the file. */
async function* sortedIos(f: WdiffFile, file: number, source: string): AsyncGenerator<DiffIo> {
  for (const { record: r, dataOffset } of sortedRecordsOf(f.fd, f.size, source)) {
    const kind = recordKind(r.flags);
    if (kind !== 'normal') { yield { addr: r.ioAddress, blocks: r.ioBlocks, kind }; continue; }
    const image: FileImage = { stored: NOTHING, cmpr: r.compressionType, blocks: r.ioBlocks, checksum: r.checksum, source, offset: dataOffset, file, size: r.dataSize };
    yield { addr: r.ioAddress, blocks: r.ioBlocks, kind, data: { image, offsetLb: 0 } };
  }
}

/** The IOs of an indexed wdiff from its index (checked whole at open), one image object per image. */
async function* indexedIos(r: IndexedDiffReader, file: number, source: string): AsyncGenerator<DiffIo> {
  let last: IndexedDiffRecord | undefined;
  let image: FileImage | undefined;
  for (let i = 0; i < r.size; i++) {
    const rec = r.record(i);
    const kind = recordKind(rec.flags);
    if (kind !== 'normal') { yield { addr: rec.ioAddress, blocks: rec.ioBlocks, kind }; continue; }
    // The records that share an image are consecutive (as the reader reads them).
    if (!image || !last || !sameStoredImage(last, rec)) {
      image = { stored: NOTHING, cmpr: rec.compressionType, blocks: rec.origBlocks, checksum: rec.ioChecksum, source, offset: rec.dataOffset, file, size: rec.dataSize };
    }
    last = rec;
    yield { addr: rec.ioAddress, blocks: rec.ioBlocks, kind, data: { image, offsetLb: rec.ioOffset } };
  }
}

/** Images checked lately (by a check-only piece or here), so a slice does not check it again. */
class Recent<T> {
  private readonly items: T[] = [];
  constructor(private readonly max: number) {}
  has(x: T): boolean { return this.items.includes(x); }
  add(x: T): void {
    this.items.push(x);
    if (this.items.length > this.max) this.items.shift();
  }
}

/**
 * Write the wdiffs `inputs` (oldest first; several are merged, newest wins) to the target open
 * as `fh` by pieces (see the module); false, with nothing written, when that cannot be done (no
 * implementation in use, an input that is not a regular file). The target is left to the caller
 * to sync.
 *
 * @throws the readers' typed errors; the target's located write errors.
 * @internal
 */
export async function applyByPieces(inputs: string[], fh: FileHandle, target: string, opts: CopyApplyOptions): Promise<boolean> {
  const fn = impl;
  if (fn === undefined || inputs.length === 0) return false;
  const files: WdiffFile[] = [];
  const readers: IndexedDiffReader[] = [];
  let c: Copier | undefined;
  try {
    for (const p of inputs) {
      const f = openWdiffFile(p);
      if (f === undefined || (f.header.type !== WALB_DIFF_TYPE_SORTED && f.header.type !== WALB_DIFF_TYPE_INDEXED)) {
        if (f) closeSync(f.fd);
        return false;
      }
      files.push(f);
    }
    const streams: AsyncIterable<DiffIo>[] = [];
    for (const [k, f] of files.entries()) {
      if (f.header.type === WALB_DIFF_TYPE_SORTED) { streams.push(sortedIos(f, k, inputs[k])); continue; }
      const r = await IndexedDiffReader.open(inputs[k]);
      readers.push(r);
      streams.push(indexedIos(r, k, inputs[k]));
    }
    c = new Copier(fn, Uint32Array.from(files, (f) => f.fd), fh.fd, inputs, target, opts.sp, opts.onProgress, opts.onBatch);
    const s = opts.sp.summary;
    const checked = new Recent<FileImage>(16);
    let raw: { image: FileImage; bytes: Buffer } | undefined;
    for await (const io of streams.length === 1 ? streams[0] : mergeIos(streams)) {
      s.ios++;
      opts.onIo?.(io);
      const pos = io.addr * LOGICAL_BLOCK_SIZE, len = io.blocks * LOGICAL_BLOCK_SIZE;
      if (io.kind !== 'normal') {
        if (io.kind === 'discard') {
          s.discardLb += io.blocks;
          if (opts.discard === 'punch') {
            const last = opts.holes[opts.holes.length - 1];
            if (last && last[0] + last[1] === pos) last[1] += len; else opts.holes.push([pos, len]);
          }
          if (opts.discard !== 'zero') continue;
        }
        if (opts.zeros?.needed(io, s) === false) continue;
        await c.add(0, -1, len, pos, -1, io.addr + io.blocks);
        continue;
      }
      const img = io.data!.image as FileImage;
      const from = io.data!.offsetLb * LOGICAL_BLOCK_SIZE;
      if (img.cmpr === 0) {
        const whole = from === 0 && io.blocks === img.blocks;
        // A slice of an image is checked through its whole image, once.
        if (!whole && !checked.has(img)) {
          await c.add(img.file, img.offset, img.size, -1, img.checksum!, io.addr);
          checked.add(img);
        }
        await c.add(img.file, img.offset + from, len, pos, whole ? img.checksum! : -1, io.addr + io.blocks);
        continue;
      }
      if (raw?.image !== img) {
        const stored = readStored(files[img.file].fd, img.offset, img.size, img.source!);
        const got = checksum(stored, 0);
        if (got !== img.checksum) throw new ChecksumError('wdiff data checksum', img.checksum!, got, { offset: img.offset, source: img.source });
        raw = { image: img, bytes: await decompress(img.cmpr, stored, img.blocks * LOGICAL_BLOCK_SIZE) };
      }
      writeHere(fh, target, raw.bytes.subarray(from, from + len), pos);
      await opts.sp.written(len);
    }
    await c.flush();
    await c.settle();
    return true;
  } finally {
    await c?.settle().catch(() => {});
    await Promise.all(readers.map((r) => r.close()));
    for (const f of files) closeSync(f.fd);
  }
}
