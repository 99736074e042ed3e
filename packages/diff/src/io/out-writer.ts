/**
 * The writers' byte output: parts are queued without copying and written in large gathered
 * `pwritev`s, two of them in flight, so producing and writing overlap. A caller that hands in views
 * of buffers it wants to reuse asks {@link OutWriter.whenWritten} to be told once they are on their
 * way to the file.
 *
 * Paths are written with positional writes; any other sink (stdout, a stream, a function) goes
 * through log-format's `SinkWriter`, views being copied first since a stream may keep them.
 *
 * A file opened `direct` (once {@link useDirectWrites} is set) is written with direct IO: bytes are
 * copied into aligned 4 MiB stages written whole, the last block's tail buffered. The output then
 * fills no page cache and leaves no writeback behind. On the development machine, converting a
 * 525 MiB random log to an indexed diff (with the final sync) took 0.50–0.60 s that way against
 * 0.74–1.36 s buffered, where the kernel's copies into fresh page-cache pages took 2–3× their usual
 * time after another program's large output was deleted (a sorted one: 0.75 s against 1.4–1.6 s).
 * Such a file also takes reservations ({@link OutWriter.reserve}): bytes set aside and filled
 * later, while what follows them is written (a sorted diff's pack headers).
 *
 * @module
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import {
  SinkWriter, alignedBuffer as alignedAlloc, commitOutput, discardOutput, isStreamPath, locateIoError, openPlace, placeOutput,
  type ByteSink, type OutputPlace,
} from '@walbjs/log-format';
import { pwritev } from './pread.ts';

/**
 * Bytes gathered before a write starts. 1 MiB converted a 525 MiB log to an indexed diff in
 * about 510 ms, steadily, where 4 MiB took 530–940 ms (five runs each on the development
 * machine); sorted output and merges showed no difference.
 */
const GATHER = 1 << 20;
/** Writes in flight at most. */
const MAX_INFLIGHT = 2;
/**
 * With `syncAlong`, bytes written between the data syncs started while writing. The disk then
 * writes back alongside the producer instead of all at the final sync, whose wait for a 550 MiB
 * indexed diff took about 0.3 s here. Converting a 525 MiB random log to it took 0.85 s with no
 * sync along the way, 0.74–0.77 s with one every 256 MiB, 0.65 s every 64 MiB, 0.54–0.65 s every
 * 4 to 16 MiB (two runs each, alternating).
 */
const SYNC_ALONG_BYTES = 16 << 20;

/** Bytes of a direct-IO stage: the unit of a direct write. */
const STAGE = 4 << 20;
/** Alignment of direct IO buffers, offsets and lengths (a page: at least any block size). */
const DIO_ALIGN = 4096;

let alignOffsetOf: ((b: Uint8Array, align: number) => number) | undefined;

/**
 * Let outputs opened with `direct` be written with direct IO (`O_DIRECT`), given a function that
 * tells how far into a buffer the first address aligned to `align` lies (the native addon's
 * `alignOffset`): JavaScript cannot see buffer addresses, and direct IO needs aligned buffers.
 *
 * @example
 * useDirectWrites(loadNative().alignOffset);
 */
export function useDirectWrites(alignOffset: ((b: Uint8Array, align: number) => number) | undefined): void {
  alignOffsetOf = alignOffset;
}

function alignedBuffer(n: number): Buffer {
  try {
    return alignedAlloc(n, DIO_ALIGN, alignOffsetOf!);
  } catch (e) {
    if (e instanceof RangeError) e.message = `useDirectWrites: ${e.message}`;
    throw e;
  }
}

/** Direct-IO state of a file output: bytes are copied into aligned stages written whole. */
interface Direct {
  /** The file opened with O_DIRECT. */
  fh: FileHandle;
  /** The stage being filled (taken when the first byte comes), and its bytes used. */
  stage: Buffer | undefined;
  used: number;
  /** Stages written, for reuse. */
  spare: Buffer[];
  /** A direct write was refused (EINVAL): the rest goes buffered. */
  refused: boolean;
  /** File position of the stage being filled (every byte goes through the stages). */
  stageAt: number;
  /** Stages holding reserved bytes not filled yet, by file position: written once filled. */
  held: Map<number, HeldStage>;
}

/** A stage with reserved bytes: `pending` reservations unfilled; `full` once no byte more goes in. */
interface HeldStage {
  buf: Buffer;
  pending: number;
  full: boolean;
}

/** A buffered, awaitable writer of bytes to a path or any sink. */
export class OutWriter {
  private parts: Uint8Array[] = [];
  private size = 0;
  /** File position of the first queued part. */
  private pos = 0;
  private readonly inflight: Promise<void>[] = [];
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown;
  /** Bytes completely written. */
  private done = 0;
  private waiters: Array<{ at: number; fn: () => void }> = [];
  /** Bytes queued so far: the offset the next byte will have. */
  written = 0;
  /** Bytes written since the last data sync started (`syncAlong` only). */
  private unsynced = 0;
  private syncing: Promise<void> | undefined;
  private readonly gather: number;

  /** Abandoned by {@link abort}: nothing more is written. */
  private aborted = false;
  private handlesClosed = false;

  private constructor(private readonly fh: FileHandle | undefined, private readonly sink: SinkWriter | undefined, private readonly path = '', private readonly syncAlong = false, private readonly direct?: Direct, private readonly place?: OutputPlace) {
    this.gather = direct ? STAGE : GATHER;
  }

  /**
   * Open a sink. A path to a regular file, or to nothing, is written under a temporary name beside
   * it (mode 0644, or the existing file's) and renamed over it by {@link close}; {@link abort}
   * removes it, leaving the path as it was. Anything else at the path (a device) is written in
   * place. With `syncAlong` (for an output that is synced at its close), a file is also synced now
   * and then while it is written, one sync at a time, without waiting for them.
   */
  static async open(sink: ByteSink, opts: { syncAlong?: boolean; direct?: boolean } = {}): Promise<OutWriter> {
    if (typeof sink !== 'string' || sink === '-' || (await isStreamPath(sink))) return new OutWriter(undefined, await SinkWriter.open(sink));
    const { fh, place } = await openPlace(await placeOutput(sink));
    let direct: Direct | undefined;
    try {
      if (opts.direct && alignOffsetOf && (await fh.stat()).isFile()) {
        // A file system without direct IO (tmpfs) refuses the flag: the output is then buffered.
        const dfh = await open(place.writePath, constants.O_WRONLY | constants.O_DIRECT).catch(() => undefined);
        if (dfh) direct = { fh: dfh, stage: undefined, used: 0, spare: [], refused: false, stageAt: 0, held: new Map() };
      }
    } catch (e) {
      await fh.close().catch(() => {});
      await discardOutput(place);
      throw e;
    }
    return new OutWriter(fh, undefined, sink, opts.syncAlong ?? false, direct, place);
  }

  /** Whether the file is written with direct IO. */
  get isDirect(): boolean {
    return this.direct !== undefined;
  }

  /** Whether parts are written in place (views of reused buffers are safe once {@link whenWritten} fires). */
  get isFile(): boolean {
    return this.fh !== undefined;
  }

  /**
   * Queue `b` (not copied for a file: keep it unchanged until {@link whenWritten}). Starts a write
   * when enough has gathered and fewer than two are in flight; never waits.
   */
  push(b: Uint8Array): void {
    const n = b.byteLength;
    if (n === 0 || this.aborted) return;
    this.written += n;
    if (this.direct) {
      this.copyIn(this.direct, b);
    } else {
      this.parts.push(this.fh ? b : Buffer.from(b));
      this.size += n;
    }
    if (this.size >= this.gather && this.inflight.length < MAX_INFLIGHT) this.start();
  }

  /** Copy `b` into stages; each full stage is queued as one part. */
  private copyIn(d: Direct, b: Uint8Array): void {
    let o = 0;
    while (o < b.byteLength) {
      d.stage ??= d.spare.pop() ?? alignedBuffer(STAGE);
      const k = Math.min(b.byteLength - o, STAGE - d.used);
      d.stage.set(b.subarray(o, o + k), d.used);
      d.used += k;
      o += k;
      if (d.used === STAGE) this.stageFull(d);
    }
  }

  /** The stage being filled is full: queue it, or keep it while it holds unfilled reserved bytes. */
  private stageFull(d: Direct): void {
    const h = d.held.get(d.stageAt);
    if (h) {
      // Write what is queued before it now; what follows it is written at its own position.
      h.full = true;
      this.start();
      this.pos = d.stageAt + STAGE;
    } else {
      this.parts.push(d.stage!);
      this.size += STAGE;
    }
    d.stage = undefined;
    d.used = 0;
    d.stageAt += STAGE;
  }

  /**
   * Whether {@link reserve} is available: a file written with direct IO, where the bytes after a
   * reserved range can be written before it.
   */
  get canReserve(): boolean {
    return this.direct !== undefined;
  }

  /**
   * Set aside the next `n` bytes, to be written later with {@link fill}, and return their file
   * offset. The bytes queued after them are written meanwhile (a sorted diff's pack header, which
   * depends on its records, goes before them: the records need not wait in memory for it). Only
   * where {@link canReserve}; every reservation must be filled before {@link close}.
   */
  reserve(n: number): number {
    const d = this.direct;
    if (!d) throw new Error('OutWriter.reserve: only a file written with direct IO takes reservations');
    const at = this.written;
    this.written += n;
    let left = n;
    while (left > 0) {
      d.stage ??= d.spare.pop() ?? alignedBuffer(STAGE);
      const h = d.held.get(d.stageAt);
      if (h) h.pending++;
      else d.held.set(d.stageAt, { buf: d.stage, pending: 1, full: false });
      const k = Math.min(left, STAGE - d.used);
      d.used += k;
      left -= k;
      if (d.used === STAGE) this.stageFull(d);
    }
    return at;
  }

  /** Write `b` into the range {@link reserve} returned at `at` (exactly as long as reserved). */
  fill(at: number, b: Uint8Array): void {
    const d = this.direct!;
    let o = 0;
    while (o < b.byteLength) {
      const stageAt = Math.floor((at + o) / STAGE) * STAGE;
      const h = d.held.get(stageAt);
      if (!h) throw new Error(`OutWriter.fill: no reservation at byte ${at + o}`);
      const k = Math.min(b.byteLength - o, stageAt + STAGE - (at + o));
      h.buf.set(b.subarray(o, o + k), at + o - stageAt);
      o += k;
      if (--h.pending > 0) continue;
      d.held.delete(stageAt);
      if (!h.full) continue;
      if (this.pos === stageAt + STAGE) {
        // Nothing after it started yet: it goes back at the head of the queue.
        this.parts.unshift(h.buf);
        this.pos = stageAt;
        this.size += STAGE;
      } else {
        this.writeHeld(h.buf, stageAt);
      }
    }
  }

  /** Write a held stage, filled at last, at its position. */
  private writeHeld(buf: Buffer, pos: number): void {
    if (this.aborted) return;
    const w = this.put([buf], STAGE, pos);
    const p: Promise<void> = w.then(
      () => { this.direct!.spare.push(buf); },
      (e: unknown) => { if (this.failure === undefined) this.failure = locateIoError(e, this.path, 'write', pos); },
    ).finally(() => this.forget(p));
    this.inflight.push(p);
  }

  /** Take a finished write off the list of those in flight. */
  private forget(p: Promise<void>): void {
    const i = this.inflight.indexOf(p);
    if (i >= 0) this.inflight.splice(i, 1);
  }

  /** Queue `b` and wait when too much is pending. */
  async write(b: Uint8Array): Promise<void> {
    this.push(b);
    if (this.size >= this.gather) await this.ready();
  }

  /** Whether {@link ready} would wait (or throw a failed write's error): a caller that does not wait must not queue more. */
  get wouldWait(): boolean {
    return this.size >= this.gather || this.inflight.length > MAX_INFLIGHT || this.failure !== undefined;
  }

  /**
   * Wait until what is queued is below the gather size, or a write slot is free, and no more
   * writes than usual are in flight (held stages are written beside the others).
   */
  async ready(): Promise<void> {
    while (this.size >= this.gather || this.inflight.length > MAX_INFLIGHT) {
      if (this.size >= this.gather && this.inflight.length < MAX_INFLIGHT) this.start();
      else await this.inflight[0];
    }
    this.check();
  }

  /** Call `fn` once every byte queued so far is written (at once when it is). */
  whenWritten(fn: () => void): void {
    // Direct IO copies what is queued: the caller's buffers are free at once.
    if (this.direct || this.done >= this.written) fn();
    else this.waiters.push({ at: this.written, fn });
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Start writing everything queued. */
  private start(): void {
    if (this.size === 0 || this.aborted) return;
    const parts = this.parts;
    const size = this.size;
    const pos = this.pos;
    this.parts = [];
    this.size = 0;
    this.pos += size;
    const prev = this.tail;
    // A file takes positional writes at once; a stream's must follow the previous one.
    const w = this.fh ? this.put(parts, size, pos) : prev.then(() => this.put(parts, size, pos));
    w.catch(() => {});
    // Completion is reported in order, whatever order the writes finish in.
    // Removed from `inflight` by identity: a held stage's write may finish in any order.
    let chained: Promise<void> | undefined = undefined;
    chained = (async () => {
      try {
        await w;
      } catch (e) {
        if (this.failure === undefined) this.failure = this.fh ? locateIoError(e, this.path, 'write', pos) : e;
      }
      await prev;
      this.forget(chained!);
      if (this.failure !== undefined) return;
      this.done = pos + size;
      if (this.direct) for (const p of parts) if (p.byteLength === STAGE) this.direct.spare.push(p as Buffer);
      if (this.syncAlong && !this.direct) this.maybeSync(size);
      if (this.waiters.length) {
        let k = 0;
        while (k < this.waiters.length && this.waiters[k].at <= this.done) k++;
        for (const x of this.waiters.splice(0, k)) x.fn();
      }
    })();
    this.tail = chained;
    this.inflight.push(chained);
  }

  /** Count `n` more bytes written; start a data sync once enough are (see `SYNC_ALONG_BYTES`). */
  private maybeSync(n: number): void {
    this.unsynced += n;
    if (this.unsynced < SYNC_ALONG_BYTES || this.syncing) return;
    this.unsynced = 0;
    this.syncing = this.fh!.datasync().then(
      () => { this.syncing = undefined; },
      (e: unknown) => { this.syncing = undefined; this.failure ??= locateIoError(e, this.path, 'sync'); },
    );
  }

  private async put(parts: Uint8Array[], size: number, pos: number): Promise<void> {
    if (!this.fh) {
      for (const b of parts) await this.sink!.write(b);
      return;
    }
    const d = this.direct;
    if (d && !d.refused && size % DIO_ALIGN === 0) {
      try {
        if (await pwritev(d.fh, parts, pos) === size) return;
      } catch (e) {
        // Refused (EINVAL: the file system takes no direct IO after all): buffered from here on.
        if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
        d.refused = true;
      }
      // A short or refused direct write is written again, whole, below.
    }
    const fh = this.fh;
    let done = await pwritev(fh, parts, pos);
    if (done === size) return;
    // A short write (rare on files): finish piece by piece.
    let at = pos;
    for (const b of parts) {
      if (done >= b.byteLength) { done -= b.byteLength; at += b.byteLength; continue; }
      let o = done;
      done = 0;
      while (o < b.byteLength) o += (await fh.write(b, o, b.byteLength - o, at + o)).bytesWritten;
      at += b.byteLength;
    }
  }

  /** Wait for every queued byte to be written. */
  async drain(): Promise<void> {
    const d = this.direct;
    if (d && d.held.size > 0) throw new Error(`OutWriter: ${d.held.size} stage(s) hold reserved bytes never filled`);
    if (d?.stage && d.used > 0) {
      // The full stages queued, then the aligned part of the last one, direct; the rest (less
      // than a block, in a page of its own) buffered.
      this.start();
      const whole = d.used - (d.used % DIO_ALIGN);
      for (const part of [d.stage.subarray(0, whole), Buffer.from(d.stage.subarray(whole, d.used))]) {
        if (part.byteLength === 0) continue;
        this.parts.push(part);
        this.size += part.byteLength;
        this.start();
      }
      d.stage = undefined;
      d.used = 0;
    }
    this.start();
    while (this.inflight.length) await this.inflight[this.inflight.length - 1];
    this.check();
  }

  /**
   * Write everything, then close (a file after `fdatasync` when `sync`) and put it at its path.
   * On a failure the output is abandoned as by {@link abort}.
   */
  async close(sync = false): Promise<void> {
    if (this.aborted) throw new Error('OutWriter: the output was abandoned');
    try {
      await this.drain();
      await this.syncing;
      this.check();
      if (this.sink) await this.sink.close(sync);
      else if (sync) await this.fh!.datasync().catch((e: unknown) => { throw locateIoError(e, this.path, 'sync'); });
      await this.closeHandles();
      if (this.place) await commitOutput(this.place, sync);
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  private async closeHandles(): Promise<void> {
    if (this.handlesClosed) return;
    this.handlesClosed = true;
    if (this.fh) await this.fh.close().catch((e: unknown) => { throw locateIoError(e, this.path, 'close'); });
    if (this.direct) await this.direct.fh.close();
  }

  /**
   * Abandon the output: wait for the writes in flight (their errors ignored), close the file and
   * remove it when it was written under a temporary name, so the path keeps what it had before.
   * An output written in place (a device) keeps what was written. Safe to call more than once and
   * after a failed {@link close}.
   */
  async abort(): Promise<void> {
    if (this.aborted) return;
    this.aborted = true;
    this.parts = [];
    this.size = 0;
    await Promise.allSettled([...this.inflight, this.syncing]);
    await this.closeHandles().catch(() => {});
    if (this.place) await discardOutput(this.place);
  }
}
