/**
 * A protocol connection: requests with ids, responses and typed error replies, keepalive and
 * timeouts, over any duplex byte stream (TCP, a unix socket, or TLS around either).
 *
 * @module
 */
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ConnectionClosedError, ProtocolError, RemoteError, TimeoutError, WalbCoreError } from '../errors.ts';
import { DEFAULT_MAX_PAYLOAD, FrameDecoder, FrameType, encodeFrame, initFrames, type Frame } from './frame.ts';
import { decodeMessage, encodeMessage } from './message.ts';

/** Options of a connection. */
export interface ConnectionOptions {
  /** Largest payload accepted from the peer (default 16 MiB). */
  maxPayload?: number;
  /** A request with no answer after this many ms fails with {@link TimeoutError} (default 30 s). */
  requestTimeoutMs?: number;
  /** Send a ping after this many ms without traffic (default 10 s; 0: never). */
  keepaliveMs?: number;
  /** Close the connection after this many ms without hearing from the peer (default 3 × keepalive). */
  idleTimeoutMs?: number;
}

/** Serves the requests of a peer: returns the result, or throws (a {@link WalbCoreError}'s code is sent along). */
export type RequestHandler = (method: string, params: unknown) => Promise<unknown> | unknown;

interface Pending { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }

/**
 * One end of a protocol connection.
 *
 * @example
 * const c = await ProtocolConnection.connect({ host: '127.0.0.1', port: 7000 });
 * const st = await c.request('status', { volId: 'vol0' });
 * c.close();
 */
export class ProtocolConnection {
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private lastHeard = Date.now();
  private lastSent = Date.now();
  private readonly ticker: NodeJS.Timeout | undefined;
  private readonly opts: Required<ConnectionOptions>;
  /** Why the connection closed, once it has. */
  closeReason?: Error;

  constructor(private readonly stream: Duplex, private readonly handler?: RequestHandler, opts: ConnectionOptions = {}) {
    const keepaliveMs = opts.keepaliveMs ?? 10_000;
    this.opts = {
      maxPayload: opts.maxPayload ?? DEFAULT_MAX_PAYLOAD,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
      keepaliveMs,
      idleTimeoutMs: opts.idleTimeoutMs ?? (keepaliveMs > 0 ? 3 * keepaliveMs : 0),
    };
    this.decoder = new FrameDecoder(this.opts.maxPayload);
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (e) => this.shutdown(new ConnectionClosedError(`connection error: ${e.message}`)));
    stream.on('close', () => this.shutdown(new ConnectionClosedError('the connection closed')));
    const tick = Math.min(...[this.opts.keepaliveMs, this.opts.idleTimeoutMs].filter((x) => x > 0), 1000);
    if (this.opts.keepaliveMs > 0 || this.opts.idleTimeoutMs > 0) {
      this.ticker = setInterval(() => this.onTick(), tick);
      this.ticker.unref();
    }
  }

  /** Connect to a daemon over TCP (`{ host, port }`) or a unix socket (`{ path }`). */
  static async connect(to: { host: string; port: number } | { path: string }, opts: ConnectionOptions = {}, handler?: RequestHandler): Promise<ProtocolConnection> {
    await initFrames();
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = 'path' in to ? netConnect(to.path) : netConnect(to.port, to.host);
      s.once('connect', () => { s.off('error', reject); resolve(s); });
      s.once('error', reject);
    });
    sock.setNoDelay(true);
    return new ProtocolConnection(sock, handler, opts);
  }

  /** Whether the connection is closed. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Send a request and wait for its result.
   *
   * @throws {@link RemoteError} (the peer's code), {@link TimeoutError}, {@link ConnectionClosedError}
   */
  request(method: string, params?: unknown, opts: { timeoutMs?: number } = {}): Promise<unknown> {
    if (this.closed) return Promise.reject(this.closeReason ?? new ConnectionClosedError('the connection is closed'));
    const id = this.nextId;
    this.nextId = (this.nextId % 0xffff_fffe) + 1;
    return new Promise((resolve, reject) => {
      const ms = opts.timeoutMs ?? this.opts.requestTimeoutMs;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(`no answer to ${method} (request ${id}) in ${ms} ms`));
      }, ms);
      this.pending.set(id, { resolve, reject, timer });
      this.send(FrameType.REQUEST, id, encodeMessage({ method, params }));
    });
  }

  /** Close the connection; outstanding requests fail with {@link ConnectionClosedError}. */
  close(): void {
    this.shutdown(new ConnectionClosedError('closed by this side'));
    this.stream.end();
  }

  private send(type: FrameType, id: number, payload?: Uint8Array): void {
    if (this.closed) return;
    const [h, p] = encodeFrame(type, id, payload);
    this.stream.write(p.byteLength ? Buffer.concat([h, p]) : h);
    this.lastSent = Date.now();
  }

  private onData(chunk: Buffer): void {
    this.lastHeard = Date.now();
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      // After a malformed frame nothing on this stream can be trusted.
      this.shutdown(e as Error);
      this.stream.destroy();
      return;
    }
    for (const f of frames) this.onFrame(f);
  }

  private onFrame(f: Frame): void {
    switch (f.type) {
      case FrameType.PING: this.send(FrameType.PONG, f.requestId); return;
      case FrameType.PONG: return;
      case FrameType.REQUEST: void this.serve(f); return;
      case FrameType.RESPONSE:
      case FrameType.ERROR: {
        const p = this.pending.get(f.requestId);
        if (!p) return; // a late answer to a request that timed out
        this.pending.delete(f.requestId);
        clearTimeout(p.timer);
        let body: { result?: unknown; code?: unknown; message?: unknown };
        try { body = decodeMessage(f.payload) as typeof body; } catch (e) { p.reject(e as Error); return; }
        if (f.type === FrameType.RESPONSE) p.resolve(body?.result);
        else p.reject(new RemoteError(String(body?.code ?? 'ERR_UNKNOWN'), String(body?.message ?? '')));
        return;
      }
      default:
        this.shutdown(new ProtocolError(`unexpected frame type ${f.type}`));
        this.stream.destroy();
    }
  }

  private async serve(f: Frame): Promise<void> {
    let method = '?';
    try {
      if (!this.handler) throw new ProtocolError('this end serves no requests');
      const body = decodeMessage(f.payload) as { method?: unknown; params?: unknown };
      if (!body || typeof body !== 'object' || typeof body.method !== 'string' || body.method.length > 256) throw new ProtocolError('a request needs a method name (a string of at most 256 characters)');
      method = body.method;
      const result = await this.handler(method, body.params);
      this.send(FrameType.RESPONSE, f.requestId, encodeMessage({ result }));
    } catch (e) {
      const code = e instanceof WalbCoreError || (e as { code?: unknown })?.code ? String((e as { code: unknown }).code) : 'ERR_INTERNAL';
      this.send(FrameType.ERROR, f.requestId, encodeMessage({ code, message: (e as Error)?.message ?? String(e), method }));
    }
  }

  private onTick(): void {
    const now = Date.now();
    if (this.opts.idleTimeoutMs > 0 && now - this.lastHeard > this.opts.idleTimeoutMs) {
      this.shutdown(new TimeoutError(`nothing heard from the peer for ${now - this.lastHeard} ms`));
      this.stream.destroy();
      return;
    }
    if (this.opts.keepaliveMs > 0 && now - this.lastSent >= this.opts.keepaliveMs) this.send(FrameType.PING, 0);
  }

  private shutdown(reason: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    if (this.ticker) clearInterval(this.ticker);
    for (const [, p] of this.pending) { clearTimeout(p.timer); p.reject(reason); }
    this.pending.clear();
  }
}

/**
 * Serve the protocol on a TCP port (`{ host, port }`, loopback by default) or a unix socket
 * (`{ path }`): every connection's requests go to `handler`.
 *
 * @example
 * const srv = await serveProtocol({ host: '127.0.0.1', port: 0 }, async (method, params) => {
 *   if (method === 'version') return { version: '0.1.0' };
 *   throw new ProtocolError(`unknown command ${method}`);
 * });
 */
export async function serveProtocol(at: { host?: string; port: number } | { path: string }, handler: RequestHandler, opts: ConnectionOptions = {}): Promise<{ server: Server; address: string; connections: Set<ProtocolConnection>; close: () => Promise<void> }> {
  await initFrames();
  const connections = new Set<ProtocolConnection>();
  const server = createServer((sock) => {
    sock.setNoDelay(true);
    const c = new ProtocolConnection(sock, handler, opts);
    connections.add(c);
    sock.on('close', () => connections.delete(c));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if ('path' in at) server.listen(at.path, resolve);
    else server.listen(at.port, at.host ?? '127.0.0.1', resolve);
  });
  const a = server.address();
  const address = typeof a === 'string' ? a : `${a!.address}:${a!.port}`;
  return {
    server, address, connections,
    close: () => new Promise<void>((r) => { for (const c of connections) c.close(); server.close(() => r()); }),
  };
}
