/**
 * Byte sinks for the writers: a path (`'-'` is stdout), a Node writable stream, or a function.
 * Small writes are gathered into large ones.
 *
 * @module
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';

/** Where a writer puts bytes. */
export type ByteSink = string | NodeJS.WritableStream | ((chunk: Uint8Array) => Promise<void> | void);

const GATHER = 4 << 20;

/** A buffered, awaitable byte writer over a {@link ByteSink}. */
export class SinkWriter {
  private parts: Uint8Array[] = [];
  private size = 0;
  /** Bytes written so far (buffered ones included). */
  written = 0;

  private constructor(
    private readonly put: (b: Uint8Array) => Promise<void>,
    private readonly end: (sync: boolean) => Promise<void>,
  ) {}

  /** Open a sink: a path is created or truncated (mode 0644). */
  static async open(sink: ByteSink): Promise<SinkWriter> {
    if (typeof sink === 'string' && sink !== '-') {
      const fh: FileHandle = await open(sink, 'w', 0o644);
      return new SinkWriter(
        async (b) => { let o = 0; while (o < b.byteLength) o += (await fh.write(b, o)).bytesWritten; },
        async (sync) => { try { if (sync) await fh.datasync(); } finally { await fh.close(); } },
      );
    }
    if (typeof sink === 'function') return new SinkWriter(async (b) => { await sink(b); }, async () => {});
    const w = (sink === '-' ? process.stdout : sink) as Writable;
    return new SinkWriter(
      (b) => new Promise<void>((resolve, reject) => {
        const onErr = (e: Error) => reject(e);
        w.once('error', onErr);
        const ok = w.write(b, (e) => { w.off('error', onErr); if (e) reject(e); });
        if (ok) { w.off('error', onErr); resolve(); } else w.once('drain', () => { w.off('error', onErr); resolve(); });
      }),
      async () => {},
    );
  }

  /** Queue `b`; it is written once enough has gathered. The caller must not modify `b` afterwards. */
  async write(b: Uint8Array): Promise<void> {
    if (b.byteLength === 0) return;
    this.parts.push(b);
    this.size += b.byteLength;
    this.written += b.byteLength;
    if (this.size >= GATHER) await this.flush();
  }

  /** Write out everything queued. */
  async flush(): Promise<void> {
    if (this.size === 0) return;
    const all = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    await this.put(all);
  }

  /** Flush and close (a file is closed, after `fdatasync` when `sync`). */
  async close(sync = false): Promise<void> {
    await this.flush();
    await this.end(sync);
  }
}
