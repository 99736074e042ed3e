/**
 * The controller: what the original's walblib offered, as typed async methods over the protocol
 * (`walbc` is a thin CLI over it). Every call opens one connection, as the original does, so a
 * controller holds no state and any number of them can drive the same daemons.
 *
 * @module
 */
import { open, unlink } from 'node:fs/promises';
import { locateIoError } from '@walbjs/log-format';
import { ProtocolConnection, type ConnectionOptions } from './protocol/connection.ts';
import { checkReply, checkReplyOf, type ApplyReply, type DaemonStatus, type MergeReply, type Restorable, type VolumeStatus } from './protocol/replies.ts';
import { MalformedReplyError, TimeoutError } from './errors.ts';
import type { ArchiveInfo } from './proxy/proxy-daemon.ts';

export type { Restorable } from './protocol/replies.ts';

/** Where a daemon listens: TCP, or a unix socket. */
export type ServerAddress = { host: string; port: number } | { path: string };

/**
 * Parse `host:port`, `[v6]:port`, or a unix socket path (anything with a `/`).
 *
 * @example
 * parseServerAddress('127.0.0.1:10200') // { host: '127.0.0.1', port: 10200 }
 */
export function parseServerAddress(text: string): ServerAddress {
  if (text.includes('/')) return { path: text };
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) > 65535) throw new TypeError(`${JSON.stringify(text)} is not host:port or a socket path`);
  return { host: m[1], port: Number(m[2]) };
}

/** Options of a {@link Controller}. */
export interface ControllerOptions {
  /** Timeout of one request (default 60 s). */
  timeoutMs?: number;
  /** How often waits poll (default 100 ms). */
  pollMs?: number;
  /** Connection limits. */
  connection?: ConnectionOptions;
}

/**
 * Drives storage, proxy and archive daemons.
 *
 * Every reply is checked before it is used or returned (`protocol/replies.ts`): a result that is
 * not what its command answers (a field missing or of the wrong type) fails the call with
 * {@link MalformedReplyError} (a `ProtocolError`, code `ERR_WALB_PROTOCOL`) naming the command and
 * the field.
 *
 * @example
 * const c = new Controller();
 * const sx = { host: '127.0.0.1', port: 10000 }, px = { host: '127.0.0.1', port: 10100 }, ax = { host: '127.0.0.1', port: 10200 };
 * await c.initStorage(sx, 'vol0', '/var/lib/walb/dev0');
 * const g0 = await c.fullBackup(sx, [px], ax, 'vol0');
 * const g1 = await c.snapshot(sx, 'vol0', ax);
 * const path = await c.restore(ax, 'vol0', g1);
 */
export class Controller {
  constructor(readonly opts: ControllerOptions = {}) {}

  /**
   * Send one request on a fresh connection. The result of a command the reply table knows
   * (`status`, `snapshot`, `get state`, `get restorable`, …) is checked; any other comes as it is.
   *
   * @throws {@link MalformedReplyError} when the result is not what the command answers
   */
  async request(server: ServerAddress, method: string, params: Record<string, unknown> = {}, opts: { timeoutMs?: number } = {}): Promise<unknown> {
    return checkReplyOf(method, params, await this.send(server, method, params, opts));
  }

  private async send(server: ServerAddress, method: string, params: Record<string, unknown>, opts: { timeoutMs?: number } = {}): Promise<unknown> {
    const c = await ProtocolConnection.connect(server, this.opts.connection);
    try {
      return await c.request(method, params, { timeoutMs: opts.timeoutMs ?? this.opts.timeoutMs ?? 60_000 });
    } finally {
      c.close();
    }
  }

  /** `get TARGET` with its parameters (checked as {@link Controller.request} checks). */
  get(server: ServerAddress, target: string, params: Record<string, unknown> = {}): Promise<unknown> {
    return this.request(server, 'get', { ...params, target });
  }

  /** `status`: the daemon and its volumes. */
  status(server: ServerAddress): Promise<DaemonStatus>;
  /** `status volId`: the volume's state and what its daemon reports of it. */
  status(server: ServerAddress, volId: string): Promise<VolumeStatus>;
  status(server: ServerAddress, volId?: string): Promise<DaemonStatus | VolumeStatus>;
  async status(server: ServerAddress, volId?: string): Promise<DaemonStatus | VolumeStatus> {
    if (volId === undefined) return checkReply('status', await this.send(server, 'status', {}));
    return checkReply('status volId', await this.send(server, 'status', { volId }));
  }

  /** The daemon's volumes (`get vol`; walb-tools' `list-vol`). */
  async getVolList(server: ServerAddress): Promise<string[]> {
    return checkReply('get vol', await this.send(server, 'get', { target: 'vol' }));
  }

  /** A volume's state word. */
  async getState(server: ServerAddress, volId: string): Promise<string> {
    return checkReply('get state', await this.send(server, 'get', { target: 'state', volId }));
  }

  /** Poll until `f` returns a value other than undefined, or throw {@link TimeoutError}. */
  async waitFor<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await f();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new TimeoutError(`waited ${timeoutMs} ms for ${what}`);
      await new Promise((r) => setTimeout(r, this.opts.pollMs ?? 100));
    }
  }

  /** Wait until the volume is in one of `states`. */
  waitForState(server: ServerAddress, volId: string, states: readonly string[], timeoutMs = 60_000): Promise<string> {
    return this.waitFor(`${volId} to reach ${states.join('|')}`, async () => {
      const s = await this.getState(server, volId);
      return states.includes(s) ? s : undefined;
    }, timeoutMs);
  }

  /** walblib `init_storage`: init-vol, start standby, wait for Standby. */
  async initStorage(sx: ServerAddress, volId: string, wdevPath: string): Promise<void> {
    await this.request(sx, 'init-vol', { volId, wdevPath });
    await this.request(sx, 'start', { volId, mode: 'standby' });
    await this.waitForState(sx, volId, ['Standby']);
  }

  /**
   * walblib `full_backup`: prepare the storage (stop standby, or reset a stopped volume), init the
   * archive volume if needed, register the archive on every proxy and start them, run the dirty
   * full sync, and wait until the archive lists a restorable snapshot; returns its gid.
   */
  async fullBackup(sx: ServerAddress, pxs: readonly ServerAddress[], ax: ServerAddress, volId: string, opts: { archId?: string; archiveAddr?: string; cmpr?: string; timeoutMs?: number } = {}): Promise<bigint> {
    const timeoutMs = opts.timeoutMs ?? 600_000;
    const st = await this.getState(sx, volId);
    if (st === 'Standby') await this.request(sx, 'stop', { volId });
    else if (st === 'Stopped') await this.request(sx, 'reset-vol', { volId });
    else if (st === 'Target') { await this.request(sx, 'stop', { volId }); await this.request(sx, 'reset-vol', { volId }); }
    await this.waitForState(sx, volId, ['SyncReady']);
    const ast = await this.getState(ax, volId);
    if (ast === 'Clear') await this.request(ax, 'init-vol', { volId });
    else if (ast !== 'SyncReady') {
      if (ast === 'Archived') await this.request(ax, 'stop', { volId });
      await this.request(ax, 'reset-vol', { volId });
    }
    const archId = opts.archId ?? 'a0';
    const addr = opts.archiveAddr ?? ('host' in ax ? `${ax.host}:${ax.port}` : undefined);
    if (!addr) throw new TypeError('fullBackup: give archiveAddr (host:port) when the archive is reached over a unix socket');
    for (const px of pxs) {
      const pst = await this.getState(px, volId);
      if (pst === 'Started') await this.request(px, 'stop', { volId });
      const list: ArchiveInfo[] = checkReply('archive-info list', await this.send(px, 'archive-info', { op: 'list', volId }));
      const op = list.some((a) => a.archId === archId) ? 'update' : 'add';
      await this.request(px, 'archive-info', { op, volId, archId, addr, ...(opts.cmpr ? { cmpr: opts.cmpr } : {}) });
      await this.request(px, 'start', { volId });
    }
    // Waits for the whole copy: a failure comes back as the request's error.
    checkReply('full-bkp wait', await this.send(sx, 'full-bkp', { volId, wait: true }, { timeoutMs }));
    await this.waitForState(sx, volId, ['Target'], timeoutMs);
    for (const px of pxs) await this.request(px, 'kick', { volId });
    return this.waitFor(`a restorable snapshot of ${volId}`, async () => {
      const r = await this.getRestorable(ax, volId);
      return r.length ? r[r.length - 1].gid : undefined;
    }, timeoutMs);
  }

  /** walblib `snapshot`: take an explicit snapshot; with an archive, wait until it is restorable there. */
  async snapshot(sx: ServerAddress, volId: string, ax?: ServerAddress, opts: { timeoutMs?: number; proxies?: readonly ServerAddress[] } = {}): Promise<bigint> {
    const { gid } = checkReply('snapshot', await this.send(sx, 'snapshot', { volId }));
    if (ax) await this.waitForRestorable(ax, volId, gid, opts.timeoutMs ?? 600_000, opts.proxies);
    return gid;
  }

  /** The restorable snapshots of a volume on an archive (`get restorable [all]`). */
  async getRestorable(ax: ServerAddress, volId: string, all = false): Promise<Restorable[]> {
    return checkReply('get restorable', await this.send(ax, 'get', { target: 'restorable', volId, all }));
  }

  /** The gids of a volume's restored images on an archive (`get restored`). */
  async getRestored(ax: ServerAddress, volId: string): Promise<bigint[]> {
    return checkReply('get restored', await this.send(ax, 'get', { target: 'restored', volId }));
  }

  /** Wait until `gid` is restorable on the archive (kicking the proxies now and then). */
  waitForRestorable(ax: ServerAddress, volId: string, gid: bigint, timeoutMs = 600_000, proxies: readonly ServerAddress[] = []): Promise<true> {
    let n = 0;
    return this.waitFor(`gid ${gid} of ${volId} to be restorable`, async () => {
      if (++n % 20 === 0) for (const px of proxies) await this.request(px, 'kick', { volId }).catch(() => undefined);
      return (await this.getRestorable(ax, volId, true)).some((r) => r.gid === gid) ? true : undefined;
    }, timeoutMs);
  }

  /** walblib `restore`: restore `gid` on the archive and wait; returns the restored image's path there. */
  async restore(ax: ServerAddress, volId: string, gid: bigint, opts: { timeoutMs?: number } = {}): Promise<string> {
    checkReply('restore', await this.send(ax, 'restore', { volId, gid }));
    await this.waitFor(`gid ${gid} of ${volId} to be restored`, async () => ((await this.getRestored(ax, volId)).includes(gid) ? true : undefined), opts.timeoutMs ?? 600_000);
    return checkReply('get restored-path', await this.send(ax, 'get', { target: 'restored-path', volId, gid }));
  }

  /** Remove a restored image. */
  async delRestored(ax: ServerAddress, volId: string, gid: bigint): Promise<void> {
    checkReply('del-restored', await this.send(ax, 'del-restored', { volId, gid }));
  }

  /** Apply the diffs up to `gid` to the archive's base and wait. */
  async apply(ax: ServerAddress, volId: string, gid: bigint, opts: { timeoutMs?: number } = {}): Promise<ApplyReply> {
    return checkReply('apply wait', await this.send(ax, 'apply', { volId, gid, wait: true }, { timeoutMs: opts.timeoutMs ?? 3_600_000 }));
  }

  /** Merge the mergeable diffs from `gidB` (up to `gidE`, or up to `maxSizeMb`) and wait. */
  async merge(ax: ServerAddress, volId: string, gidB: bigint, bound: { gidE: bigint } | { maxSizeMb: number }, opts: { timeoutMs?: number } = {}): Promise<MergeReply> {
    return checkReply('merge wait', await this.send(ax, 'merge', { volId, gidB, ...bound, wait: true }, { timeoutMs: opts.timeoutMs ?? 3_600_000 }));
  }

  /**
   * Stream the archive's image at `gid` into a file or block device on this machine
   * (`virt-full-scan`); returns the bytes written.
   */
  async virtFullScan(ax: ServerAddress, volId: string, gid: bigint, outPath: string, onProgress?: (bytes: number) => void): Promise<number> {
    const c = await ProtocolConnection.connect(ax, this.opts.connection);
    const fh = await open(outPath, 'w');
    const isFile = (await fh.stat()).isFile();
    let n = 0;
    let ok = false;
    try {
      const { chunks, result } = c.download('virt-full-scan', { volId, gid }, { timeoutMs: this.opts.timeoutMs ?? 60_000 });
      for await (const b of chunks) {
        await fh.write(b, 0, b.byteLength, n).catch((e: unknown) => { throw locateIoError(e, outPath, 'write', n); });
        n += b.byteLength;
        onProgress?.(n);
      }
      const { bytes } = checkReply('virt-full-scan', await result);
      // The reply counts what was sent: another count here means the stream lost or gained bytes.
      if (bytes !== n) throw new MalformedReplyError('virt-full-scan', 'result.bytes', `the archive sent ${bytes} bytes, ${n} arrived`);
      await fh.sync().catch((e: unknown) => { throw locateIoError(e, outPath, 'sync'); });
      ok = true;
      return n;
    } finally {
      await fh.close();
      c.close();
      // No partial image is left behind (a device given as the output stays, of course).
      if (!ok && isFile) await unlink(outPath).catch(() => {});
    }
  }

  /** Ask a daemon to shut down. */
  async shutdown(server: ServerAddress, mode: 'graceful' | 'force' = 'graceful'): Promise<void> {
    checkReply('shutdown', await this.send(server, 'shutdown', { mode }));
  }
}
