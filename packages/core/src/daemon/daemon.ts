/**
 * What the three daemons share: the command table (with the commands every server answers:
 * `status`, `get`, `version`, `shutdown`), parameter checking, per-volume serialization of state
 * changes, and the listening socket.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { lockBaseDir } from './base-dir-lock.ts';
import { serveProtocol, type ConnectionOptions, type RequestContext } from '../protocol/connection.ts';
import { RefusedError, UnknownCommandError, WalbCoreError } from '../errors.ts';
import { Params } from './params.ts';
import { jsonLogger, type Logger } from './logger.ts';

/** Version of the walbjs daemons and protocol. */
export const DAEMON_VERSION = '0.1.0';

/** Where a daemon listens and keeps its state. */
export interface DaemonOptions {
  /** Folder of the daemon's state (one sub-folder per volume). */
  baseDir: string;
  /** TCP host (default 127.0.0.1). */
  host?: string;
  /** TCP port (0: any free one; see {@link Daemon.address}). Ignored when `unix` is given. */
  port?: number;
  /** Listen on a unix socket instead of TCP. */
  unix?: string;
  /** Node id, shown by `status` and in logs (default `<hostType>-<pid>`). */
  nodeId?: string;
  /** Structured logger (default JSON lines on stderr). */
  logger?: Logger;
  /** Limits and timeouts of every connection. */
  connection?: ConnectionOptions;
  /**
   * Most commands that may wait for one volume's lock (default 256; 0: no limit); one more is
   * refused with {@link RefusedError} `busy`, so that a crowd of clients queued behind a long
   * operation cannot grow the daemon's memory without bound.
   */
  maxLockWaiters?: number;
}

/** A command: checked params in, a JSON-able result out. */
export type CommandHandler = (p: Params, ctx: RequestContext) => Promise<unknown> | unknown;

/** Serializes the state changes of each volume: one at a time per volume, volumes in parallel. */
export class VolumeLocks {
  private readonly tails = new Map<string, Promise<unknown>>();
  /** Calls per volume that have not started yet. */
  private readonly waiting = new Map<string, number>();

  /**
   * @param maxWaiters - most calls that may wait for one volume (0: no limit)
   */
  constructor(private readonly maxWaiters = 256) {}

  /**
   * Run `f` once every earlier call for `volId` has finished.
   *
   * @throws {@link RefusedError} `busy` (as a rejection) when `maxWaiters` calls already wait for `volId`
   */
  run<T>(volId: string, f: () => Promise<T> | T): Promise<T> {
    const n = this.waiting.get(volId) ?? 0;
    if (this.maxWaiters > 0 && n >= this.maxWaiters) {
      return Promise.reject(new RefusedError('busy', `volume ${volId}: ${n} commands already wait for its lock`));
    }
    this.waiting.set(volId, n + 1);
    const start = () => {
      const left = this.waiting.get(volId)! - 1;
      if (left > 0) this.waiting.set(volId, left);
      else this.waiting.delete(volId);
      return f();
    };
    const prev = this.tails.get(volId) ?? Promise.resolve();
    const next = prev.then(start, start);
    const tail = next.catch(() => undefined);
    this.tails.set(volId, tail);
    void tail.then(() => { if (this.tails.get(volId) === tail) this.tails.delete(volId); });
    return next;
  }
}

/**
 * The base of the storage, proxy and archive daemons.
 *
 * Emits `shutdown` (`'graceful' | 'force'`) when a peer asks for it; {@link Daemon.stop} is the
 * embedder's to call.
 */
export abstract class Daemon extends EventEmitter {
  /** `storage`, `proxy` or `archive`. */
  abstract readonly hostType: 'storage' | 'proxy' | 'archive';
  protected readonly log: Logger;
  protected readonly locks: VolumeLocks;
  private readonly commands = new Map<string, CommandHandler>();
  private readonly gets = new Map<string, CommandHandler>();
  private server: Awaited<ReturnType<typeof serveProtocol>> | undefined;
  /** Where the daemon listens, once started (`host:port` or the socket path). */
  address = '';
  /** Set once {@link stop} began. */
  protected stopping = false;

  constructor(readonly opts: DaemonOptions) {
    super();
    this.locks = new VolumeLocks(opts.maxLockWaiters);
    this.log = opts.logger ?? jsonLogger(`walb-${this.constructor.name.replace(/Daemon$/, '').toLowerCase()}`);
    this.command('version', () => ({ version: DAEMON_VERSION, hostType: this.hostType, nodeId: this.nodeId, protocol: 1 }));
    this.command('status', (p) => this.status(p.has('volId') ? p.volId() : undefined));
    this.command('get', (p, ctx) => {
      const target = p.str('target', 64);
      const h = this.gets.get(target);
      if (!h) throw new UnknownCommandError(`get ${target}`, [...this.gets.keys()].map((k) => `get ${k}`));
      return h(p, ctx);
    });
    this.command('shutdown', (p) => {
      const mode = p.oneOf('mode', ['graceful', 'force'] as const, 'graceful');
      setImmediate(() => this.emit('shutdown', mode));
      return { accepted: true };
    });
    this.get('host-type', () => this.hostType);
    this.get('pid', () => process.pid);
    this.get('vol', () => this.volumes());
    this.get('state', async (p) => this.volumeState(p.volId()));
  }

  /** The node id. */
  get nodeId(): string {
    return this.opts.nodeId ?? `${this.hostType}-${process.pid}`;
  }

  /** Register a command. */
  protected command(name: string, h: CommandHandler): void {
    this.commands.set(name, h);
  }

  /** Register a `get` target. */
  protected get(target: string, h: CommandHandler): void {
    this.gets.set(target, h);
  }

  /** Names of the known commands. */
  get commandNames(): string[] {
    return [...this.commands.keys()];
  }

  /** The volumes this daemon knows. */
  abstract volumes(): Promise<string[]>;
  /** A volume's state word. */
  abstract volumeState(volId: string): Promise<string>;
  /** Status lines of one volume or of the daemon. */
  protected abstract status(volId?: string): Promise<unknown>;
  /** Load state from disk and resume work (called by {@link start} before listening). */
  protected abstract recover(): Promise<void>;
  /** Stop background work (called by {@link stop}). */
  protected abstract halt(mode: 'graceful' | 'force'): Promise<void>;

  /** Call a command in-process, exactly as a peer's request would (for embedding). */
  async call(method: string, params?: unknown, ctx: { upload?: AsyncIterable<Buffer> } = {}): Promise<unknown> {
    const h = this.commands.get(method);
    if (!h) throw new UnknownCommandError(method, this.commandNames);
    try {
      return await h(new Params(method, params), ctx as RequestContext);
    } finally {
      // A refused or half-read upload given as a stream (a file, say) is released here.
      const u = ctx.upload as { destroy?: () => void; readableEnded?: boolean } | undefined;
      if (u && typeof u.destroy === 'function' && !u.readableEnded) u.destroy();
    }
  }

  private opened = false;
  private unlockBaseDir: () => Promise<void> = async () => {};

  /**
   * Load the state on disk and resume work (an apply cut short, transfers, extraction), without
   * listening: enough for an embedder that drives the daemon with {@link call}.
   */
  async open(): Promise<this> {
    if (this.opened) return this;
    await mkdir(this.opts.baseDir, { recursive: true });
    this.unlockBaseDir = await lockBaseDir(this.opts.baseDir, this.hostType, this.nodeId);
    try {
      await this.recover();
    } catch (e) {
      await this.unlockBaseDir();
      throw e;
    }
    this.opened = true;
    return this;
  }

  /**
   * {@link open}, then listen on the configured socket. When listening fails (the port is taken),
   * a daemon this call opened is stopped again, its base folder let go, before the error is
   * rethrown: the folder's lock outlived it, so a retry was refused as in use.
   */
  async start(): Promise<this> {
    const wasOpen = this.opened;
    await this.open();
    const at = this.opts.unix ? { path: this.opts.unix } : { host: this.opts.host ?? '127.0.0.1', port: this.opts.port ?? 0 };
    try {
      this.server = await serveProtocol(at, async (method, params, ctx) => {
        try {
          return await this.call(method, params, ctx);
        } catch (e) {
          if (!(e instanceof WalbCoreError)) this.log.log('error', 'command-failed', { method, error: e });
          else this.log.log('info', 'command-refused', { method, code: e.code, message: e.message });
          throw e;
        }
      }, this.opts.connection);
    } catch (e) {
      if (!wasOpen) await this.stop('force').catch(() => {});
      throw e;
    }
    this.address = this.server.address;
    this.log.log('info', 'listening', { address: this.address, baseDir: this.opts.baseDir, nodeId: this.nodeId });
    return this;
  }

  /** Stop listening and stop background work. */
  async stop(mode: 'graceful' | 'force' = 'graceful'): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.server?.close();
    await this.halt(mode);
    await this.unlockBaseDir();
    this.log.log('info', 'stopped', { mode });
  }
}
