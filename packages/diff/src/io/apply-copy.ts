/**
 * Apply of one wdiff by pieces: the headers (or the index) are decoded here with the readers'
 * decoders and checks, and the records stored raw, and the zeros, go to an external
 * implementation (the native addon's `copyPieces`) as (source, length, target, checksum) pieces;
 * it reads them a slice at a time, checks each against its checksum before writing any of its
 * slice, and writes adjacent ones in one write. Records stored compressed are read, checked,
 * decompressed and written here. No byte of the diff passes through JavaScript memory unless it
 * was compressed.
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
import type { IndexedDiffRecord } from '../layout/indexed-record.ts';
import type { DiscardMode } from './apply.ts';
import { IndexedDiffReader } from './indexed-reader.ts';
import { sortedRecordsOf } from './sorted-records.ts';
import type { SyncPolicy } from './sync-policy.ts';
import { openWdiffFile } from './wdiff-input.ts';

/**
 * Check and write `pieces` ((source offset or -1 for zeros, length, target offset or -1 to only
 * check, salt-0 checksum or -1) quadruples) from the open wdiff `src` to the open target `dst`, on
 * another thread; `state[0]` gets the pieces finished, and after a rejection with code
 * `ERR_WALB_SUM`, `state[1]` the sum the failing piece (the next one) has. A failed read rejects
 * with `ERR_WALB_READ` (`errno`), a source that ends inside a piece with `ERR_WALB_SHORT_READ`, a
 * failed write with `ERR_WALB_WRITE` (`errno`).
 */
export type CopyPiecesFn = (src: number, dst: number, pieces: Float64Array, state: Float64Array) => Promise<void>;

let impl: CopyPiecesFn | undefined;

/**
 * Apply single wdiffs with `fn` (for example the native addon's `copyPieces`): their raw records
 * are read, checked and written by it, a slice at a time, instead of passing through this thread.
 * Applies of several diffs at once (a merge) are not affected. `undefined` goes back to writing
 * everything from here.
 *
 * @example
 * import { loadNative } from '@walbjs/native-walb';
 * useCopyPieces(loadNative().copyPieces);
 */
export function useCopyPieces(fn: CopyPiecesFn | undefined): void {
  impl = fn;
}

/** Pieces per call, or this many bytes of them, whichever comes first. */
const BATCH_PIECES = 8192;
const BATCH_BYTES = 16 << 20;

/** Pieces gathered for one call, with what tells a failure's place and kind. */
class Plan {
  readonly q = new Float64Array(4 * BATCH_PIECES);
  n = 0;
  bytes = 0;
  /** LB address the last piece written reaches. */
  addr = 0;

  add(src: number, len: number, dst: number, sum: number): void {
    const k = 4 * this.n++;
    this.q[k] = src;
    this.q[k + 1] = len;
    this.q[k + 2] = dst;
    this.q[k + 3] = sum;
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

  constructor(private readonly fn: CopyPiecesFn, private readonly src: number, private readonly dst: number,
    private readonly input: string, private readonly target: string, private readonly sp: SyncPolicy,
    private readonly onProgress?: (addr: number, phase: 'verify' | 'apply') => void) {}

  /** Add a piece; hands the plan over when it is full. */
  async add(src: number, len: number, dst: number, sum: number, addr: number): Promise<void> {
    this.cur.add(src, len, dst, sum);
    this.cur.addr = addr;
    if (this.cur.full) await this.flush();
  }

  async flush(): Promise<void> {
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
      await this.fn(this.src, this.dst, p.q.subarray(0, 4 * p.n), this.state);
    } catch (e) {
      throw this.locate(e, p);
    }
    await this.sp.written(p.bytes);
    this.onProgress?.(p.addr, 'apply');
  }

  /** The typed error of a failed call, placed where the piece that failed lies. */
  private locate(e: unknown, p: Plan): unknown {
    const code = (e as { code?: string }).code;
    const k = 4 * Math.min(this.state[0], p.n - 1);
    const at = p.q[k] >= 0 ? p.q[k] : undefined;
    if (code === 'ERR_WALB_SUM') return new ChecksumError('wdiff data checksum', p.q[k + 3], this.state[1], { offset: at, source: this.input });
    if (code === 'ERR_WALB_SHORT_READ') return new TruncatedError('the input ended inside a record\'s data', { offset: at, source: this.input });
    const errno = (e as { errno?: number }).errno;
    if ((code === 'ERR_WALB_READ' || code === 'ERR_WALB_WRITE') && errno !== undefined) {
      const name = Object.entries(osConstants.errno).find(([, v]) => v === errno)?.[0] ?? 'EIO';
      const write = code === 'ERR_WALB_WRITE';
      const sys = Object.assign(new Error(`${name}: ${(e as Error).message}`), { code: name, errno: -errno, syscall: write ? 'write' : 'read' });
      return write ? locateIoError(sys, this.target, 'write', p.q[k + 2]) : locateIoError(sys, this.input, 'read', at);
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
}

/**
 * Write the single wdiff `input` to the target open as `fh` by pieces (see the module); false,
 * with nothing written, when that cannot be done (no implementation in use, an input that is
 * not a regular file). The target is left to the caller to sync.
 *
 * @throws the readers' typed errors; the target's located write errors.
 * @internal
 */
export async function applyByPieces(input: string, fh: FileHandle, target: string, opts: CopyApplyOptions): Promise<boolean> {
  const fn = impl;
  if (fn === undefined) return false;
  const f = openWdiffFile(input);
  if (f === undefined) return false;
  const { fd, size, header: h } = f;
  let c: Copier | undefined;
  try {
    if (h.type !== WALB_DIFF_TYPE_SORTED && h.type !== WALB_DIFF_TYPE_INDEXED) return false;
    c = new Copier(fn, fd, fh.fd, input, target, opts.sp, opts.onProgress);
    const s = opts.sp.summary;
    /** A record without data: zeros, a hole, or nothing, as the discard mode says. */
    const noData = async (kind: 'allzero' | 'discard', addr: number, blocks: number): Promise<void> => {
      const pos = addr * LOGICAL_BLOCK_SIZE, len = blocks * LOGICAL_BLOCK_SIZE;
      if (kind === 'discard') {
        s.discardLb += blocks;
        if (opts.discard === 'punch') {
          const last = opts.holes[opts.holes.length - 1];
          if (last && last[0] + last[1] === pos) last[1] += len; else opts.holes.push([pos, len]);
        }
        if (opts.discard !== 'zero') return;
      }
      await c!.add(-1, len, pos, -1, addr + blocks);
    };
    if (h.type === WALB_DIFF_TYPE_SORTED) {
      for (const { record: r, dataOffset } of sortedRecordsOf(fd, size, input)) {
        s.ios++;
        const kind = recordKind(r.flags);
        if (kind !== 'normal') { await noData(kind, r.ioAddress, r.ioBlocks); continue; }
        const pos = r.ioAddress * LOGICAL_BLOCK_SIZE;
        if (r.compressionType === 0) { await c.add(dataOffset, r.dataSize, pos, r.checksum, r.ioAddress + r.ioBlocks); continue; }
        const stored = readStored(fd, dataOffset, r.dataSize, input);
        const got = checksum(stored, 0);
        if (got !== r.checksum) throw new ChecksumError('wdiff record data checksum', r.checksum, got, { offset: dataOffset, source: input });
        const raw = await decompress(r.compressionType, stored, r.ioBlocks * LOGICAL_BLOCK_SIZE);
        writeHere(fh, target, raw, pos);
        await opts.sp.written(raw.byteLength);
      }
    } else {
      const r = await IndexedDiffReader.open(input);
      try {
        let last: IndexedDiffRecord | undefined;
        let lastRaw: Buffer | undefined;
        for (let i = 0; i < r.size; i++) {
          const rec = r.record(i);
          s.ios++;
          const kind = recordKind(rec.flags);
          if (kind !== 'normal') { await noData(kind, rec.ioAddress, rec.ioBlocks); continue; }
          const pos = rec.ioAddress * LOGICAL_BLOCK_SIZE, len = rec.ioBlocks * LOGICAL_BLOCK_SIZE;
          // The records that share an image are consecutive (as the reader reads them).
          const same = last !== undefined && last.dataOffset === rec.dataOffset && last.dataSize === rec.dataSize
            && last.compressionType === rec.compressionType && last.origBlocks === rec.origBlocks;
          if (rec.compressionType === 0) {
            const whole = rec.ioOffset === 0 && rec.ioBlocks === rec.origBlocks;
            // A slice of an image is checked through its image, once.
            if (!whole && !same) await c.add(rec.dataOffset, rec.dataSize, -1, rec.ioChecksum, rec.ioAddress);
            await c.add(rec.dataOffset + rec.ioOffset * LOGICAL_BLOCK_SIZE, len, pos, whole ? rec.ioChecksum : -1, rec.ioAddress + rec.ioBlocks);
            last = rec;
            continue;
          }
          if (!same || lastRaw === undefined) {
            const stored = readStored(fd, rec.dataOffset, rec.dataSize, input);
            const got = checksum(stored, 0);
            if (got !== rec.ioChecksum) throw new ChecksumError('image checksum', rec.ioChecksum, got, { offset: rec.dataOffset, source: input });
            lastRaw = await decompress(rec.compressionType, stored, rec.origBlocks * LOGICAL_BLOCK_SIZE);
          }
          last = rec;
          writeHere(fh, target, lastRaw.subarray(rec.ioOffset * LOGICAL_BLOCK_SIZE, rec.ioOffset * LOGICAL_BLOCK_SIZE + len), pos);
          await opts.sp.written(len);
        }
      } finally {
        await r.close();
      }
    }
    await c.flush();
    await c.settle();
    return true;
  } finally {
    await c?.settle().catch(() => {});
    closeSync(fd);
  }
}
