/**
 * A protocol connection: requests with ids, responses and typed error replies, keepalive and
 * timeouts, over any duplex byte stream (TCP, a unix socket, or TLS around either).
 *
 * @module
 */
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ConnectionClosedError, ProtocolError, RefusedError, RemoteError, TimeoutError, WalbCoreError } from '../errors.ts';
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
  /**
   * Most of the peer's requests served at once on this connection (default 64); one more is
   * refused at once with {@link RefusedError} `busy`, unread, so a peer that pipelines cannot make
   * this side hold more than this many. 0: no limit.
   */
  maxInFlight?: number;
  /**
   * Most bytes of request payload (params) held by the requests served at once (default 32 MiB);
   * a request that would go beyond it is refused as `busy`, except when none is in flight. 0: no limit.
   */
  maxInFlightBytes?: number;
  /**
   * An upload whose handler waits this many ms for the next chunk fails with {@link TimeoutError}
   * (default 5 min; 0: never), so that a peer that stops sending cannot hold what the handler holds
   * (a volume's lock, a partial file). Pings do not count as progress.
   */
  uploadStallMs?: number;
}

/** What a handler knows of the request besides its method and params. */
export interface RequestContext {
  /** The bytes the peer streams after the request (an upload), when it sends any. */
  upload?: AsyncIterable<Buffer>;
  /** The connection the request came on (absent for an in-process `Daemon.call`). */
  connection?: ProtocolConnection;
}

/**
 * Serves the requests of a peer: returns the result (or a {@link StreamReply} to stream bytes
 * back before it), or throws (a {@link WalbCoreError}'s code is sent along).
 */
export type RequestHandler = (method: string, params: unknown, ctx: RequestContext) => Promise<unknown> | unknown;

/**
 * A handler's answer that streams bytes to the requester (as chunk frames) before the result.
 *
 * @example
 * return new StreamReply(readChunks(file), () => ({ bytes: n }));
 */
export class StreamReply {
  /**
   * @param chunks - the bytes to send
   * @param result - called after the last chunk went out; its value is the request's result
   */
  constructor(readonly chunks: AsyncIterable<Uint8Array>, readonly result: () => unknown = () => null) {}
}

/** Frame flag of a request: an upload of chunk frames follows, ended by an end frame. */
export const FLAG_UPLOAD = 1;
/** Largest chunk payload this side sends (1 MiB). */
export const CHUNK_BYTES = 1 << 20;
/** Bytes of received chunks held, over all the streams of a connection, before its socket is paused. */
const INBOUND_HIGH_WATER = 16 << 20;
/**
 * Uploads answered before their end frame whose late chunks are still recognized (and dropped); an
 * uploader told early sends no end frame, so without a bound these would pile up on a long connection.
 */
const MAX_DROPPED_UPLOADS = 256;
/** Longest error code taken from a peer. */
const MAX_CODE_LENGTH = 256;

/** The connection's account of received chunks not yet read, which pauses and resumes its socket. */
interface InboundFlow {
  hold(bytes: number): void;
  release(bytes: number): void;
}

/** Chunks arriving for one request, handed out as an async iterable. */
class Inbound implements AsyncIterable<Buffer> {
  private readonly queue: Buffer[] = [];
  private bytes = 0;
  /** The end frame arrived. */
  ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  /** The consumer gave up: chunks are dropped until the end frame. */
  discarding = false;

  /**
   * @param flow - where held bytes are counted
   * @param stallMs - how long the consumer may wait for a chunk before the stream fails (0: forever)
   */
  constructor(private readonly flow: InboundFlow, private readonly stallMs = 0) {}

  push(b: Buffer): void {
    if (this.discarding) return;
    this.queue.push(b);
    this.bytes += b.byteLength;
    this.flow.hold(b.byteLength);
    this.wake?.();
  }

  end(): void { this.ended = true; this.wake?.(); }

  fail(e: Error): void {
    // The first cause is the one worth reporting (a stall, before the close it may lead to).
    this.failure ??= e;
    this.wake?.();
  }

  discard(): void {
    this.discarding = true;
    this.queue.length = 0;
    this.flow.release(this.bytes);
    this.bytes = 0;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      const b = this.queue.shift();
      if (b) {
        this.bytes -= b.byteLength;
        this.flow.release(b.byteLength);
        yield b;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.ended) return;
      await this.next();
    }
  }

  /** Wait for a chunk, the end or a failure; only this wait counts towards a stall. */
  private next(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.stallMs > 0
        ? setTimeout(() => this.fail(new TimeoutError(`upload stalled: no data from the peer for ${this.stallMs} ms`)), this.stallMs)
        : undefined;
      timer?.unref();
      this.wake = () => { clearTimeout(timer); this.wake = undefined; resolve(); };
    });
  }
}

/** Whether a decoded message is a JSON object (the only shape a reply may have). */
function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/** A description of a thrown value that cannot itself throw, whatever the value is. */
function describe(e: unknown): string {
  try {
    const m = (e as { message?: unknown } | null)?.message;
    if (typeof m === 'string') return m;
    return String(e);
  } catch {
    return 'an error that cannot be described';
  }
}

/** The code sent in an ERROR frame for a thrown value: its own code when it is a usable one. */
function errorCode(e: unknown): string {
  try {
    const c = (e as { code?: unknown } | null)?.code;
    if (typeof c === 'string' && c.length > 0 && c.length <= MAX_CODE_LENGTH) return c;
    if (typeof c === 'number' && Number.isFinite(c)) return String(c);
  } catch { /* a throwing getter: no usable code */ }
  return 'ERR_INTERNAL';
}

interface Pending { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout | undefined; settled?: boolean; download?: Inbound }

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
  /** The peer's uploads whose handler runs. */
  private readonly uploads = new Map<number, Inbound>();
  /** The peer's uploads answered before their end frame (oldest first): their chunks are dropped. */
  private readonly dropped = new Set<number>();
  /** Ids of the peer's requests being served. */
  private readonly serving = new Set<number>();
  private servingBytes = 0;
  private unread = 0;
  private paused = false;
  private readonly flow: InboundFlow = {
    hold: (n) => {
      this.unread += n;
      if (this.unread > INBOUND_HIGH_WATER && !this.paused) { this.paused = true; this.stream.pause(); }
    },
    release: (n) => {
      this.unread -= n;
      if (this.paused && this.unread <= INBOUND_HIGH_WATER / 2) {
        this.paused = false;
        // The silence while paused was this side's doing.
        this.lastHeard = Date.now();
        this.stream.resume();
      }
    },
  };
  private nextId = 1;
  private closed = false;
  private lastHeard = Date.now();
  private lastSent = Date.now();
  private readonly ticker: NodeJS.Timeout | undefined;
  private readonly opts: Required<ConnectionOptions>;
  /** Why the connection closed, once it has. */
  closeReason?: Error;
  private readonly closeListeners = new Set<(reason: Error) => void>();

  constructor(private readonly stream: Duplex, private readonly handler?: RequestHandler, opts: ConnectionOptions = {}) {
    const keepaliveMs = opts.keepaliveMs ?? 10_000;
    this.opts = {
      maxPayload: opts.maxPayload ?? DEFAULT_MAX_PAYLOAD,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
      keepaliveMs,
      idleTimeoutMs: opts.idleTimeoutMs ?? (keepaliveMs > 0 ? 3 * keepaliveMs : 0),
      maxInFlight: opts.maxInFlight ?? 64,
      maxInFlightBytes: opts.maxInFlightBytes ?? 32 << 20,
      uploadStallMs: opts.uploadStallMs ?? 300_000,
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
    const [id, p] = this.begin(method, opts.timeoutMs);
    this.send(FrameType.REQUEST, id, encodeMessage({ method, params }));
    return p;
  }

  /**
   * Send a request followed by a stream of bytes (chunk frames, each with its own xxHash64), and
   * wait for the result. The request timeout counts from the end of the stream. When the peer
   * answers before the stream is over (a refusal), sending stops and the answer is returned.
   *
   * @example
   * await c.upload('wdiff-transfer', { volId, diff }, createReadStream(path));
   */
  async upload(method: string, params: unknown, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: { timeoutMs?: number } = {}): Promise<unknown> {
    if (this.closed) throw this.closeReason ?? new ConnectionClosedError('the connection is closed');
    const [id, p] = this.begin(method, opts.timeoutMs, true);
    p.catch(() => undefined); // observed below; avoid an unhandled rejection while streaming
    this.send(FrameType.REQUEST, id, encodeMessage({ method, params }), FLAG_UPLOAD);
    const pend = this.pending.get(id);
    try {
      for await (const c of chunks) {
        for (let o = 0; o < c.byteLength; o += CHUNK_BYTES) {
          if (this.closed || !pend || pend.settled) break;
          const ok = this.send(FrameType.CHUNK, id, c.subarray(o, Math.min(c.byteLength, o + CHUNK_BYTES)));
          if (!ok) await this.drained();
        }
        if (this.closed || !pend || pend.settled) break;
      }
    } catch (e) {
      // The source failed: tell the peer the stream is over, and fail the request.
      this.send(FrameType.ERROR, id, encodeMessage({ code: 'ERR_WALB_UPLOAD_SOURCE', message: describe(e) }));
      if (pend && !pend.settled) { this.settle(id); pend.reject(e as Error); }
      return p;
    }
    if (pend && !pend.settled) {
      this.send(FrameType.END, id);
      this.armTimer(id, method, opts.timeoutMs ?? this.opts.requestTimeoutMs);
    }
    return p;
  }

  /**
   * Send a request whose answer streams bytes (chunk frames) before its result.
   *
   * @example
   * const { chunks, result } = c.download('virt-full-scan', { volId, gid });
   * for await (const b of chunks) out.write(b);
   * console.log(await result);
   */
  download(method: string, params?: unknown, opts: { timeoutMs?: number } = {}): { chunks: AsyncIterable<Buffer>; result: Promise<unknown> } {
    if (this.closed) {
      const e = this.closeReason ?? new ConnectionClosedError('the connection is closed');
      return { chunks: (async function* () { throw e; })(), result: Promise.reject(e) };
    }
    const [id, p] = this.begin(method, opts.timeoutMs);
    const inbound = new Inbound(this.flow);
    this.pending.get(id)!.download = inbound;
    p.then(() => inbound.end(), (e: Error) => inbound.fail(e));
    this.send(FrameType.REQUEST, id, encodeMessage({ method, params }));
    return { chunks: inbound, result: p };
  }

  private begin(method: string, timeoutMs: number | undefined, noTimerYet = false): [number, Promise<unknown>] {
    const id = this.nextId;
    this.nextId = (this.nextId % 0xffff_fffe) + 1;
    const p = new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, timer: undefined });
    });
    if (!noTimerYet) this.armTimer(id, method, timeoutMs ?? this.opts.requestTimeoutMs);
    return [id, p];
  }

  private armTimer(id: number, method: string, ms: number): void {
    const pend = this.pending.get(id);
    if (!pend) return;
    const restart = () => {
      pend.timer = setTimeout(() => {
        // A download that keeps streaming is alive: its timeout counts from the last chunk.
        if (pend.download && Date.now() - this.lastHeard < ms) { restart(); return; }
        this.settle(id);
        pend.reject(new TimeoutError(`no answer to ${method} (request ${id}) in ${ms} ms`));
      }, ms);
    };
    restart();
  }

  private settle(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    p.settled = true;
    if (p.timer) clearTimeout(p.timer);
    this.pending.delete(id);
  }

  /** One wait shared by every sender, so that many streams on a connection add two listeners, not two each. */
  private drainWait: Promise<void> | undefined;

  private drained(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.drainWait ??= new Promise((resolve) => {
      const done = () => { this.stream.off('drain', done); this.stream.off('close', done); this.drainWait = undefined; resolve(); };
      this.stream.once('drain', done);
      this.stream.once('close', done);
    });
    return this.drainWait;
  }

  /**
   * Call `listener` once when the connection closes, for whatever reason (closed by either side,
   * a broken socket, a malformed frame, an idle timeout), with the reason. When it is already
   * closed, `listener` is called on a later microtask: a handler that finishes after its peer went
   * away still learns of it.
   *
   * @returns a function that removes the listener (nothing is called after it)
   * @example
   * const off = ctx.connection?.onClose(() => abandon(job));
   * // ...the job completed: the close that follows means nothing for it
   * off?.();
   */
  onClose(listener: (reason: Error) => void): () => void {
    if (this.closed) {
      let live = true;
      const reason = this.closeReason ?? new ConnectionClosedError('the connection is closed');
      queueMicrotask(() => { if (live) listener(reason); });
      return () => { live = false; };
    }
    // A wrapper of its own, so that the same function registered twice is called twice.
    const l = (reason: Error) => listener(reason);
    this.closeListeners.add(l);
    return () => { this.closeListeners.delete(l); };
  }

  /** Close the connection; outstanding requests fail with {@link ConnectionClosedError}. */
  close(): void {
    this.shutdown(new ConnectionClosedError('closed by this side'));
    this.stream.end();
  }

  private send(type: FrameType, id: number, payload?: Uint8Array, flags = 0): boolean {
    if (this.closed) return true;
    const [h, p] = encodeFrame(type, id, payload, flags);
    const ok = p.byteLength > 4096 ? (this.stream.write(h), this.stream.write(p)) : this.stream.write(p.byteLength ? Buffer.concat([h, p]) : h);
    this.lastSent = Date.now();
    return ok;
  }

  private onData(chunk: Buffer): void {
    this.lastHeard = Date.now();
    try {
      for (const f of this.decoder.push(chunk)) {
        if (this.closed) return;
        this.onFrame(f);
      }
    } catch (e) {
      // A malformed frame, or one this side could not handle: nothing after it can be trusted, and
      // an exception must not escape a socket's event handler (it would end the process).
      this.fail(e instanceof WalbCoreError ? e : new ProtocolError(`a frame could not be handled: ${describe(e)}`, this.decoder.offset));
    }
  }

  /** Close at once for a fault of the peer's: what is pending fails with `reason`. */
  private fail(reason: Error): void {
    this.shutdown(reason);
    this.stream.destroy();
  }

  private onFrame(f: Frame): void {
    switch (f.type) {
      case FrameType.PING: this.send(FrameType.PONG, f.requestId); return;
      case FrameType.PONG: return;
      case FrameType.REQUEST: this.admit(f); return;
      case FrameType.CHUNK: {
        const up = this.uploads.get(f.requestId);
        if (up) { up.push(f.payload); return; }
        if (this.dropped.has(f.requestId)) return;
        this.pending.get(f.requestId)?.download?.push(f.payload);
        return; // chunks of a request already answered are dropped
      }
      case FrameType.END: {
        this.uploads.get(f.requestId)?.end();
        this.dropped.delete(f.requestId);
        return;
      }
      case FrameType.RESPONSE:
      case FrameType.ERROR: {
        if (f.type === FrameType.ERROR) {
          const up = this.uploads.get(f.requestId);
          if (up) {
            // The uploader's source failed: the stream is over.
            up.fail(new ProtocolError('the peer aborted its upload', undefined, 'ERR_WALB_UPLOAD_ABORTED'));
            this.uploads.delete(f.requestId);
            return;
          }
          if (this.dropped.delete(f.requestId)) return;
        }
        const p = this.pending.get(f.requestId);
        if (!p) return; // a late answer to a request that timed out
        this.settle(f.requestId);
        const kind = f.type === FrameType.RESPONSE ? 'response' : 'error reply';
        let body: unknown;
        try { body = decodeMessage(f.payload); } catch (e) { p.reject(e as Error); return; }
        // The peer's bytes are checked before any use: a conversion of a hostile value can throw.
        if (!isRecord(body)) { p.reject(new ProtocolError(`malformed ${kind} to request ${f.requestId}: not a JSON object`)); return; }
        if (f.type === FrameType.RESPONSE) { p.resolve(body.result); return; }
        const { code, message } = body;
        if (code != null && (typeof code !== 'string' || code.length === 0 || code.length > MAX_CODE_LENGTH)) {
          p.reject(new ProtocolError(`malformed ${kind} to request ${f.requestId}: its code is not a string of 1 to ${MAX_CODE_LENGTH} characters`));
          return;
        }
        if (message != null && typeof message !== 'string') {
          p.reject(new ProtocolError(`malformed ${kind} to request ${f.requestId}: its message is not a string`));
          return;
        }
        p.reject(new RemoteError(code ?? 'ERR_UNKNOWN', message ?? ''));
        return;
      }
      default:
        this.fail(new ProtocolError(`unexpected frame type ${f.type}`));
    }
  }

  /** Serve a request, or refuse it unread when this connection already serves its fill. */
  private admit(f: Frame): void {
    const id = f.requestId;
    if (this.serving.has(id)) {
      // Two answers under one id would be misread by the peer; it has lost track of its own ids.
      this.fail(new ProtocolError(`request id ${id} reused while that request is still served`, this.decoder.offset));
      return;
    }
    // A leftover of an earlier upload under this id (ids cycle) no longer applies.
    this.dropped.delete(id);
    const { maxInFlight, maxInFlightBytes } = this.opts;
    const size = f.payload.byteLength;
    if ((maxInFlight > 0 && this.serving.size >= maxInFlight)
      || (maxInFlightBytes > 0 && this.servingBytes > 0 && this.servingBytes + size > maxInFlightBytes)) {
      if (f.flags & FLAG_UPLOAD) this.drop(id);
      const e = new RefusedError('busy', `this connection already serves ${this.serving.size} requests (${this.servingBytes} bytes of params); retry when they are answered`);
      this.send(FrameType.ERROR, id, encodeMessage({ code: e.code, message: e.message, method: '?' }));
      return;
    }
    this.serving.add(id);
    this.servingBytes += size;
    this.serve(f).catch((e: unknown) => {
      // serve() answers every failure itself; reaching this means the connection is unusable.
      this.fail(new ProtocolError(`serving request ${id} failed: ${describe(e)}`));
    }).finally(() => {
      this.serving.delete(id);
      this.servingBytes -= size;
    });
  }

  /** Drop the rest of the peer's upload `id` (up to a bound on how many are remembered). */
  private drop(id: number): void {
    this.dropped.add(id);
    if (this.dropped.size > MAX_DROPPED_UPLOADS) this.dropped.delete(this.dropped.values().next().value!);
  }

  private async serve(f: Frame): Promise<void> {
    let method = '?';
    let upload: Inbound | undefined;
    if (f.flags & FLAG_UPLOAD) {
      upload = new Inbound(this.flow, this.opts.uploadStallMs);
      this.uploads.set(f.requestId, upload);
    }
    try {
      if (!this.handler) throw new ProtocolError('this end serves no requests');
      const body = decodeMessage(f.payload) as { method?: unknown; params?: unknown };
      if (!isRecord(body) || typeof body.method !== 'string' || body.method.length > 256) throw new ProtocolError('a request needs a method name (a string of at most 256 characters)');
      method = body.method;
      let result = await this.handler(method, body.params, { upload, connection: this });
      if (result instanceof StreamReply) {
        for await (const c of result.chunks) {
          for (let o = 0; o < c.byteLength; o += CHUNK_BYTES) {
            if (this.closed) return;
            if (!this.send(FrameType.CHUNK, f.requestId, c.subarray(o, Math.min(c.byteLength, o + CHUNK_BYTES)))) await this.drained();
          }
        }
        result = await result.result();
      }
      this.send(FrameType.RESPONSE, f.requestId, encodeMessage({ result }));
    } catch (e) {
      this.send(FrameType.ERROR, f.requestId, encodeMessage({ code: errorCode(e), message: describe(e), method }));
    } finally {
      if (upload) {
        // Whatever the handler left unread is dropped, and so is what still comes before the end frame.
        upload.discard();
        if (this.uploads.get(f.requestId) === upload) {
          this.uploads.delete(f.requestId);
          if (!upload.ended) this.drop(f.requestId);
        }
      }
    }
  }

  private onTick(): void {
    const now = Date.now();
    if (this.opts.idleTimeoutMs > 0 && now - this.lastHeard > this.opts.idleTimeoutMs) {
      this.fail(new TimeoutError(`nothing heard from the peer for ${now - this.lastHeard} ms`));
      return;
    }
    if (this.opts.keepaliveMs > 0 && now - this.lastSent >= this.opts.keepaliveMs) this.send(FrameType.PING, 0);
  }

  private shutdown(reason: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    if (this.ticker) clearInterval(this.ticker);
    for (const [, p] of this.pending) { if (p.timer) clearTimeout(p.timer); p.settled = true; p.reject(reason); }
    this.pending.clear();
    for (const [, u] of this.uploads) u.fail(reason);
    this.uploads.clear();
    this.dropped.clear();
    const listeners = [...this.closeListeners];
    this.closeListeners.clear();
    for (const l of listeners) {
      // A listener runs inside a socket's event handler: what it throws must not end the process.
      try { l(reason); } catch { /* the listener's own failure; the connection is closed anyway */ }
    }
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
