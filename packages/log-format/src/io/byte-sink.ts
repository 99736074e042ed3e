/**
 * Byte sinks for the writers: a path (`'-'` is stdout), a Node writable stream, or a function.
 * Small writes are gathered into large ones.
 *
 * @module
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { locateIoError } from './io-error.ts';

/** Where a writer puts bytes. */
export type ByteSink = string | NodeJS.WritableStream | ((chunk: Uint8Array) => Promise<void> | void);

const GATHER = 4 << 20;

/**
 * A buffered, awaitable byte writer over a {@link ByteSink}. Small writes are gathered; one
 * gathered write is in flight while the next gathers, so producing and writing overlap.
 */
export class SinkWriter {
  private parts: Uint8Array[] = [];
  private size = 0;
  private inflight: Promise<void> | undefined;
  /** Bytes written so far (buffered ones included). */
  written = 0;

  private constructor(
    private readonly put: (parts: Uint8Array[]) => Promise<void>,
    private readonly end: (sync: boolean) => Promise<void>,
  ) {}

  /** Open a sink: a path is created or truncated (mode 0644). */
  static async open(sink: ByteSink): Promise<SinkWriter> {
    if (typeof sink === 'string' && sink !== '-') {
      const fh: FileHandle = await open(sink, 'w', 0o644);
      /** Bytes written to the file so far: where a failed write was. */
      let at = 0;
      return new SinkWriter(
        async (parts) => {
          // One writev per gathered batch; a short write (rare on files) finishes piece by piece.
          const total = parts.reduce((n, p) => n + p.byteLength, 0);
          const start = at;
          at += total;
          try {
            let done = (await fh.writev(parts)).bytesWritten;
            if (done === total) return;
            for (const p of parts) {
              if (done >= p.byteLength) { done -= p.byteLength; continue; }
              let o = done;
              done = 0;
              while (o < p.byteLength) o += (await fh.write(p, o)).bytesWritten;
            }
          } catch (e) {
            throw locateIoError(e, sink, 'write', start);
          }
        },
        async (sync) => {
          try {
            // A pipe or a character device (`/dev/null`) has nothing to sync, and says EINVAL.
            const syncable = sync && (await fh.stat().then((st) => st.isFile() || st.isBlockDevice(), () => true));
            if (syncable) await fh.datasync().catch((e: unknown) => { throw locateIoError(e, sink, 'sync'); });
          } finally {
            await fh.close();
          }
        },
      );
    }
    if (typeof sink === 'function') return new SinkWriter(async (parts) => { for (const b of parts) await sink(b); }, async () => {});
    const w = (sink === '-' ? process.stdout : sink) as Writable;
    const putOne = (b: Uint8Array) => new Promise<void>((resolve, reject) => {
        const onErr = (e: Error) => reject(e);
        w.once('error', onErr);
        const ok = w.write(b, (e) => { w.off('error', onErr); if (e) reject(e); });
        if (ok) { w.off('error', onErr); resolve(); } else w.once('drain', () => { w.off('error', onErr); resolve(); });
      });
    return new SinkWriter(async (parts) => { for (const b of parts) await putOne(b); }, async () => {});
  }

  /** Queue `b`; it is written once enough has gathered. The caller must not modify `b` afterwards. */
  async write(b: Uint8Array): Promise<void> {
    if (b.byteLength === 0) return;
    this.parts.push(b);
    this.size += b.byteLength;
    this.written += b.byteLength;
    if (this.size >= GATHER) await this.flush();
  }

  /** Start writing everything queued (after the write in flight, if any, has finished). */
  async flush(): Promise<void> {
    if (this.size === 0) return;
    const parts = this.parts;
    this.parts = [];
    this.size = 0;
    await this.settle();
    this.inflight = this.put(parts);
    // Its failure is reported by the next flush or close, not as an unhandled rejection.
    this.inflight.catch(() => {});
  }

  private async settle(): Promise<void> {
    const p = this.inflight;
    this.inflight = undefined;
    await p;
  }

  /** Flush, wait for every write, and close (a file is closed, after `fdatasync` when `sync`). */
  async close(sync = false): Promise<void> {
    await this.flush();
    try {
      await this.settle();
    } finally {
      await this.end(sync);
    }
  }
}
