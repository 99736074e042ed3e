/**
 * The writers' byte output: parts are queued without copying and written in large gathered
 * `pwritev`s, two of them in flight, so producing and writing overlap. A caller that hands in views
 * of buffers it wants to reuse asks {@link OutWriter.whenWritten} to be told once they are on their
 * way to the file.
 *
 * Paths are written with positional writes; any other sink (stdout, a stream, a function) goes
 * through log-format's `SinkWriter`, views being copied first since a stream may keep them.
 *
 * @module
 */
import { open, type FileHandle } from 'node:fs/promises';
import { SinkWriter, locateIoError, type ByteSink } from '@walbjs/log-format';
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

  private constructor(private readonly fh: FileHandle | undefined, private readonly sink: SinkWriter | undefined, private readonly path = '', private readonly syncAlong = false) {}

  /**
   * Open a sink: a path is created or truncated (mode 0644). With `syncAlong` (for an output that
   * is synced at its close), a file is also synced now and then while it is written, one sync at a
   * time, without waiting for them.
   */
  static async open(sink: ByteSink, opts: { syncAlong?: boolean } = {}): Promise<OutWriter> {
    if (typeof sink === 'string' && sink !== '-') return new OutWriter(await open(sink, 'w', 0o644), undefined, sink, opts.syncAlong ?? false);
    return new OutWriter(undefined, await SinkWriter.open(sink));
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
    if (n === 0) return;
    this.parts.push(this.fh ? b : Buffer.from(b));
    this.size += n;
    this.written += n;
    if (this.size >= GATHER && this.inflight.length < MAX_INFLIGHT) this.start();
  }

  /** Queue `b` and wait when too much is pending. */
  async write(b: Uint8Array): Promise<void> {
    this.push(b);
    if (this.size >= GATHER) await this.ready();
  }

  /** Wait until what is queued is below the gather size, or a write slot is free. */
  async ready(): Promise<void> {
    while (this.size >= GATHER) {
      if (this.inflight.length < MAX_INFLIGHT) this.start();
      else await this.inflight[0];
    }
    this.check();
  }

  /** Call `fn` once every byte queued so far is written (at once when it is). */
  whenWritten(fn: () => void): void {
    if (this.done >= this.written) fn();
    else this.waiters.push({ at: this.written, fn });
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Start writing everything queued. */
  private start(): void {
    if (this.size === 0) return;
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
    const chained = (async () => {
      try {
        await w;
      } catch (e) {
        if (this.failure === undefined) this.failure = this.fh ? locateIoError(e, this.path, 'write', pos) : e;
      }
      await prev;
      this.inflight.shift();
      if (this.failure !== undefined) return;
      this.done = pos + size;
      if (this.syncAlong) this.maybeSync(size);
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
    this.start();
    while (this.inflight.length) await this.inflight[this.inflight.length - 1];
    this.check();
  }

  /** Write everything, then close (a file after `fdatasync` when `sync`). */
  async close(sync = false): Promise<void> {
    try {
      await this.drain();
      await this.syncing;
      this.check();
      if (this.sink) await this.sink.close(sync);
      else if (sync) await this.fh!.datasync().catch((e: unknown) => { throw locateIoError(e, this.path, 'sync'); });
    } finally {
      if (this.fh) await this.fh.close();
    }
  }
}
