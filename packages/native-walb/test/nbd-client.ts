// Test helpers for the capture device: fresh log and data device files, and a minimal NBD client
// that sends raw requests (what qemu-io and nbdcopy never send: zero lengths, odd flags).
import { connect } from 'node:net';
import { join } from 'node:path';
import { truncateSync, writeFileSync } from 'node:fs';
import { formatLdev } from '@walbjs/log-format';

/** Files for a device in `dir`; `pbs` undefined takes formatLdev's default for a file (4 KiB). */
export async function freshDevice(dir: string, name: string, ldevBytes = 64 << 20, ddevBytes = 32 << 20, pbs?: number) {
  const l = join(dir, `${name}.ldev`), d = join(dir, `${name}.ddev`);
  writeFileSync(l, ''); truncateSync(l, ldevBytes);
  writeFileSync(d, ''); truncateSync(d, ddevBytes);
  await formatLdev(l, d, { pbs });
  return { l, d, sock: join(dir, `${name}.sock`) };
}

/** NBD request types and the FUA flag. */
export const NBD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, WRITE_ZEROES: 6, FUA: 1 } as const;

/** An NBD request header, followed by `payload` (a write's data) when given. */
export function nbdRequest(type: number, handle: number, offset: number, length: number, flags = 0, payload?: Buffer): Buffer {
  const r = Buffer.alloc(28);
  r.writeUInt32BE(0x25609513, 0);
  r.writeUInt16BE(flags, 4);
  r.writeUInt16BE(type, 6);
  r.writeBigUInt64BE(BigInt(handle), 8);
  r.writeBigUInt64BE(BigInt(offset), 16);
  r.writeUInt32BE(length, 24);
  return payload ? Buffer.concat([r, payload]) : r;
}

/** Options of [`nbdSession`]. */
export interface SessionOptions {
  /** Read nothing for this long after sending the requests. */
  pauseMs?: number;
  /** Bytes of replies to resolve with (by default a simple reply header). */
  keep?: number;
  /** Ask for structured replies before the export. */
  structured?: boolean;
}

/**
 * A minimal NBD client: handshake (fixed newstyle, no zeroes; STRUCTURED_REPLY when asked, then
 * EXPORT_NAME ""), send `requests` at once, read until `expect` bytes of replies came. Resolves to
 * the first `keep` bytes of them.
 */
export function nbdSession(sock: string, requests: Buffer, expect: number, opts: SessionOptions = {}): Promise<Buffer> {
  const { pauseMs = 0, keep = 16, structured = false } = opts;
  const option = (opt: number) => {
    const o = Buffer.alloc(16);
    o.write('IHAVEOPT', 0, 'latin1');
    o.writeUInt32BE(opt, 8);
    return o;
  };
  return new Promise((resolve, reject) => {
    const c = connect(sock);
    let head = Buffer.alloc(0);
    // 0: server hello; 1: the STRUCTURED_REPLY answer (20 bytes); 2: the export (10 bytes); 3: replies.
    let stage = 0;
    let got = 0;
    let first = Buffer.alloc(0);
    c.on('error', reject);
    c.on('close', () => reject(new Error(`the server closed the connection after ${got} bytes of replies`)));
    c.on('data', (d: Buffer) => {
      if (stage < 3) {
        head = Buffer.concat([head, d]);
        if (stage === 0 && head.length >= 18) {
          head = head.subarray(18);
          const flags = Buffer.alloc(4);
          flags.writeUInt32BE(3, 0);
          c.write(Buffer.concat(structured ? [flags, option(8), option(1)] : [flags, option(1)]));
          stage = structured ? 1 : 2;
        }
        if (stage === 1 && head.length >= 20) {
          if (head.readUInt32BE(12) !== 1) { reject(new Error('STRUCTURED_REPLY refused')); c.destroy(); return; }
          head = head.subarray(20);
          stage = 2;
        }
        if (stage === 2 && head.length >= 10) {
          d = head.subarray(10);
          stage = 3;
          c.write(requests);
          if (pauseMs > 0) { c.pause(); setTimeout(() => c.resume(), pauseMs); }
        } else return;
      }
      if (first.length < keep) first = Buffer.concat([first, d.subarray(0, keep - first.length)]);
      got += d.length;
      if (got >= expect) { c.removeAllListeners('close'); c.end(); resolve(first); }
    });
  });
}

/** Send `requests` (headers and payloads) on a new connection; resolves to the first `n` simple replies. */
export async function nbdReplies(sock: string, requests: Buffer, n: number): Promise<Array<{ error: number; handle: number }>> {
  const all = await nbdSession(sock, requests, 16 * n, { keep: 16 * n });
  return Array.from({ length: n }, (_, i) => ({ error: all.readUInt32BE(16 * i + 4), handle: Number(all.readBigUInt64BE(16 * i + 8)) }));
}
