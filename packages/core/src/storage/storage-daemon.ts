/**
 * The storage role (`walb-storage`): volumes bound to walb devices (kernel, or userspace capture
 * devices it hosts and serves over NBD), gid snapshots, the dirty full backup, and the extraction
 * loop that follows the permanent lsid, ships logs to the first proxy that accepts them, and
 * frees log space only after that proxy has made them durable.
 *
 * Folder: `<base>/<volId>/` holds `vol` (the device path), `state`, and `progress` (the `done`
 * point and the queue of snapshots not yet shipped, one file so they change together).
 *
 * @module
 */
import { open, readdir, rm } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import { allocReadBuffer, extractLogpacks, LogDevice, WlogWriter, decodeLogpackHeader, nextLogpackLsid, uuidToHex } from '@walbjs/log-format';
import { Daemon, type DaemonOptions } from '../daemon/daemon.ts';
import type { Params } from '../daemon/params.ts';
import { makeDirDurable, readJson, writeJsonAtomic } from '../daemon/store.ts';
import { BadRequestError, NotFoundError, RefusedError, RemoteError, StateError, StoreError } from '../errors.ts';
import { formatMetaSnap, metaSnap, type MetaDiff } from '../meta.ts';
import { ProtocolConnection } from '../protocol/connection.ts';
import { checkReply } from '../protocol/replies.ts';
import { openWalbDevice, type WalbDevice } from './wdev.ts';

/** A network address. */
export interface HostPort { host: string; port: number }

/** Options of the storage daemon. */
export interface StorageOptions extends DaemonOptions {
  /** The archive that receives full backups. */
  archive?: HostPort;
  /** Proxies, tried in order for every transfer. */
  proxies?: HostPort[];
  /** Largest log transfer in MiB (default 128, as `-wl`). */
  maxWlogSendMb?: number;
  /** Take an implicit snapshot when the newest is older than this (default 10 s, as `-snapintvl`). */
  implicitSnapshotSec?: number;
  /** First retry delay in ms (default 1000, as `-delay`), doubling to {@link maxRetryDelayMs}. */
  retryDelayMs?: number;
  /** Longest retry delay in ms (default 300 000, as `-maxdelay`). */
  maxRetryDelayMs?: number;
  /** Bytes read per full-backup bulk (default 1 MiB). */
  fullSyncBulkBytes?: number;
}

/** Steady states of a storage volume. */
export type StorageState = 'Clear' | 'SyncReady' | 'Stopped' | 'Target' | 'Standby';

/** A snapshot marker on the storage: the gid given to the log up to `lsid`. */
export interface MetaLsidGid {
  lsid: bigint;
  gid: bigint;
  /** Unix seconds. */
  timestamp: number;
  /** False for an explicit snapshot: the diff that starts at it must not be merged into the one before. */
  isMergeable: boolean;
}

interface Progress { done: MetaLsidGid; queue: MetaLsidGid[] }

interface Runtime {
  dev: WalbDevice;
  /** Physical block size of the log: lsids count these. */
  pbs: number;
  loop?: Promise<void>;
  stop: boolean;
  wake?: () => void;
  lastError?: string;
  fullSyncBytes?: number;
  /** What the extraction loop is doing (shown by status, for diagnosis). */
  phase?: string;
}

const now = () => Math.floor(Date.now() / 1000);

/**
 * The storage daemon.
 *
 * @example
 * const s = await new StorageDaemon({ baseDir: '/var/lib/walb-storage', port: 10000,
 *   archive: { host: '127.0.0.1', port: 10200 }, proxies: [{ host: '127.0.0.1', port: 10100 }] }).start();
 * await s.call('init-vol', { volId: 'vol0', wdevPath: '/var/lib/walb/dev0' });
 */
export class StorageDaemon extends Daemon {
  readonly hostType = 'storage' as const;
  private readonly rt = new Map<string, Runtime>();
  private readonly temp = new Map<string, string>();

  constructor(readonly options: StorageOptions) {
    super(options);
    const c = this.command.bind(this);
    const g = this.get.bind(this);
    c('init-vol', (p) => this.initVol(p));
    c('clear-vol', (p) => this.locked(p, async (volId, st) => {
      if (st !== 'SyncReady') throw new StateError(volId, st, 'clear-vol needs SyncReady');
      await this.rt.get(volId)?.dev.close();
      this.rt.delete(volId);
      await rm(this.dir(volId), { recursive: true, force: true });
      return { state: 'Clear' };
    }));
    c('reset-vol', (p) => this.locked(p, async (volId, st) => {
      if (st !== 'Stopped' && st !== 'SyncReady') throw new StateError(volId, st, 'reset-vol needs Stopped');
      const gid = p.u64('gid', 0n);
      await this.resetWlog(volId, gid);
      await this.setState(volId, 'SyncReady');
      return { state: 'SyncReady' };
    }));
    c('start', (p) => this.locked(p, async (volId, st) => {
      const mode = p.oneOf('mode', ['target', 'standby'] as const);
      const rt = this.runtime(volId);
      if (mode === 'target') {
        if (st !== 'Stopped') throw new StateError(volId, st, 'start target needs Stopped');
        if ((await rt.dev.lsids()).overflow) throw new StateError(volId, st, 'the log has overflowed: its logs since the last snapshot are gone. A new full backup recovers it: reset-vol here, stop and reset-vol the volume on the archive (hash backup is not implemented, so its snapshots are dropped), then full-bkp');
        await this.setState(volId, 'Target');
      } else {
        if (st !== 'SyncReady') throw new StateError(volId, st, 'start standby needs SyncReady');
        if ((await rt.dev.lsids()).overflow) await this.resetWlog(volId, 0n);
        await this.setState(volId, 'Standby');
      }
      this.startLoop(volId);
      return { state: mode === 'target' ? 'Target' : 'Standby' };
    }));
    c('stop', (p) => this.locked(p, async (volId, st) => {
      if (st !== 'Target' && st !== 'Standby') throw new StateError(volId, st, 'stop needs Target or Standby');
      await this.stopLoop(volId, p.oneOf('mode', ['graceful', 'force'] as const, 'graceful'));
      const to = st === 'Target' ? 'Stopped' : 'SyncReady';
      await this.setState(volId, to);
      return { state: to };
    }));
    c('snapshot', (p) => this.locked(p, async (volId, st) => {
      if (st !== 'Target' && st !== 'Stopped') throw new StateError(volId, st, 'snapshot needs Target or Stopped');
      const l = await this.runtime(volId).dev.lsids();
      if (l.overflow) throw new StateError(volId, st, 'the log has overflowed');
      const rec = await this.takeSnapshot(volId, l.latest, false);
      this.kickVol(volId);
      return { gid: rec.gid, lsid: rec.lsid };
    }));
    c('full-bkp', (p) => this.fullBackup(p));
    c('kick', async (p) => {
      for (const v of p.has('volId') ? [p.volId()] : [...this.rt.keys()]) this.kickVol(v);
      return { kicked: true };
    });
    c('resize', (p) => {
      const sizeLb = p.u64('sizeLb', 0n);
      return this.locked(p, async (volId, st) => {
        if (!['SyncReady', 'Stopped', 'Target', 'Standby'].includes(st)) throw new StateError(volId, st, 'resize needs SyncReady, Stopped, Target or Standby');
        const rt = this.runtime(volId);
        const running = Boolean(rt.loop);
        await this.stopLoop(volId, 'graceful');
        try {
          const got = await rt.dev.resize(sizeLb);
          this.log.log('info', 'resized', { volId, sizeLb: got });
          return { sizeLb: got };
        } finally {
          if (running) this.startLoop(volId);
        }
      });
    });
    g('log-usage', async (p) => { const l = await this.runtime(p.volId()).dev.lsids(); return l.latest - l.oldest; });
    g('log-capacity', async (p) => (await this.runtime(p.volId()).dev.lsids()).ringBufferSize);
    g('is-overflow', async (p) => (await this.runtime(p.volId()).dev.lsids()).overflow);
    g('uuid', async (p) => Buffer.from((await this.runtime(p.volId()).dev.readSuper()).uuid).toString('hex'));
    g('lsids', async (p) => this.runtime(p.volId()).dev.lsids());
    g('latest-snap', async (p) => { const pr = await this.progress(p.volId()); const r = pr.queue.at(-1) ?? pr.done; return { ...r, text: formatMetaSnap(metaSnap(r.gid)) }; });
    g('progress', async (p) => this.progress(p.volId()));
    g('export', (p) => this.runtime(p.volId()).dev.exportUri);
    g('wdev-path', async (p) => (await this.volConf(p.volId())).wdevPath);
  }

  private dir(volId: string): string { return join(this.options.baseDir, volId); }
  /** The transfer limit in PB (lsids count physical blocks). */
  private maxPb(volId: string): bigint {
    const pbs = BigInt(this.runtime(volId).pbs);
    const pb = (BigInt(this.options.maxWlogSendMb ?? 128) << 20n) / pbs;
    return pb > 0n ? pb : 1n;
  }

  private runtime(volId: string): Runtime {
    const r = this.rt.get(volId);
    if (!r) throw new NotFoundError(`no volume ${volId}`);
    return r;
  }

  async volumes(): Promise<string[]> {
    const names = await readdir(this.options.baseDir).catch(() => [] as string[]);
    return names.filter((n) => /^[0-9A-Za-z-]{1,64}$/.test(n)).sort();
  }

  private async state(volId: string): Promise<StorageState> {
    return (await readJson<{ state: StorageState }>(join(this.dir(volId), 'state')))?.state ?? 'Clear';
  }

  async volumeState(volId: string): Promise<string> {
    return this.temp.get(volId) ?? (await this.state(volId));
  }

  private async setState(volId: string, state: StorageState): Promise<void> {
    await writeJsonAtomic(join(this.dir(volId), 'state'), { state });
  }

  private async volConf(volId: string): Promise<{ wdevPath: string }> {
    const v = await readJson<{ wdevPath: string }>(join(this.dir(volId), 'vol'));
    if (!v) throw new NotFoundError(`no volume ${volId}`);
    return v;
  }

  private async progress(volId: string): Promise<Progress> {
    const p = await readJson<Progress>(join(this.dir(volId), 'progress'));
    if (!p) throw new StoreError(`volume ${volId} has no progress file`);
    return p;
  }

  private async setProgress(volId: string, p: Progress): Promise<void> {
    await writeJsonAtomic(join(this.dir(volId), 'progress'), p);
  }

  private locked<T>(p: Params, f: (volId: string, st: StorageState) => Promise<T>): Promise<T> {
    const volId = p.volId();
    return this.locks.run(volId, async () => {
      const t = this.temp.get(volId);
      if (t) throw new StateError(volId, t, 'busy');
      return f(volId, await this.state(volId));
    });
  }

  protected async status(volId?: string): Promise<unknown> {
    if (volId === undefined) {
      const vols = await this.volumes();
      return { hostType: this.hostType, nodeId: this.nodeId, volumes: await Promise.all(vols.map(async (v) => ({ volId: v, state: await this.volumeState(v) }))) };
    }
    const rt = this.runtime(volId);
    const l = await rt.dev.lsids();
    const pr = await this.progress(volId);
    return {
      volId, state: await this.volumeState(volId), wdevPath: (await this.volConf(volId)).wdevPath, export: rt.dev.exportUri,
      lsids: l, logUsage: l.latest - l.oldest, done: pr.done, queue: pr.queue, lastError: rt.lastError ?? null, phase: rt.phase ?? null, fullSyncBytes: rt.fullSyncBytes ?? null,
    };
  }

  protected async recover(): Promise<void> {
    for (const volId of await this.volumes()) {
      const conf = await readJson<{ wdevPath: string }>(join(this.dir(volId), 'vol'));
      if (!conf) continue;
      try {
        const dev = await openWalbDevice(conf.wdevPath);
        this.rt.set(volId, { dev, pbs: (await dev.readSuper()).physicalBs, stop: false });
      } catch (e) {
        this.log.log('error', 'device-open-failed', { volId, wdevPath: conf.wdevPath, error: e });
        continue;
      }
      const st = await this.state(volId);
      if (st === 'Target' || st === 'Standby') this.startLoop(volId);
      this.log.log('info', 'volume-recovered', { volId, state: st, done: (await this.progress(volId)).done });
    }
  }

  protected async halt(mode: 'graceful' | 'force'): Promise<void> {
    for (const volId of this.rt.keys()) await this.stopLoop(volId, mode);
    for (const r of this.rt.values()) await r.dev.close().catch(() => undefined);
  }

  private async initVol(p: Params): Promise<unknown> {
    const wdevPath = p.str('wdevPath', 1024);
    return this.locked(p, async (volId, st) => {
      if (st !== 'Clear') throw new StateError(volId, st, 'init-vol needs Clear');
      for (const v of await this.volumes()) {
        if ((await readJson<{ wdevPath: string }>(join(this.dir(v), 'vol')))?.wdevPath === wdevPath) throw new BadRequestError(`init-vol: ${wdevPath} is already used by volume ${v}`);
      }
      const dev = await openWalbDevice(wdevPath);
      try {
        await makeDirDurable(this.dir(volId));
        await writeJsonAtomic(join(this.dir(volId), 'vol'), { wdevPath });
        await this.setProgress(volId, { done: { lsid: 0n, gid: 0n, timestamp: now(), isMergeable: true }, queue: [] });
        await this.setState(volId, 'SyncReady');
      } catch (e) {
        await dev.close();
        await rm(this.dir(volId), { recursive: true, force: true });
        throw e;
      }
      this.rt.set(volId, { dev, pbs: (await dev.readSuper()).physicalBs, stop: false });
      return { state: 'SyncReady', export: dev.exportUri };
    });
  }

  /** Clear the device's log and restart the gid sequence at `gid` (`resetWlog`). */
  private async resetWlog(volId: string, gid: bigint): Promise<void> {
    const rt = this.runtime(volId);
    await rt.dev.clearLog();
    await this.setProgress(volId, { done: { lsid: 0n, gid, timestamp: now(), isMergeable: true }, queue: [] });
    this.log.log('info', 'log-cleared', { volId, gid, uuid: uuidToHex((await rt.dev.readSuper()).uuid) });
  }

  /**
   * Queue a snapshot at `lsid`; gids are reserved so a range can later be split (§3.4). Callers
   * hold the volume's lock: the progress file is read, changed and written as one step.
   */
  private async takeSnapshot(volId: string, lsid: bigint, isMergeable: boolean): Promise<MetaLsidGid> {
    const pr = await this.progress(volId);
    const prev = pr.queue.at(-1) ?? pr.done;
    const gid = prev.gid + 1n + (lsid > prev.lsid ? (lsid - prev.lsid) / this.maxPb(volId) : 0n);
    const rec: MetaLsidGid = { lsid: lsid < prev.lsid ? prev.lsid : lsid, gid, timestamp: now(), isMergeable };
    pr.queue.push(rec);
    await this.setProgress(volId, pr);
    return rec;
  }

  // -- the extraction loop ---------------------------------------------------------------------

  private kickVol(volId: string): void {
    this.rt.get(volId)?.wake?.();
  }

  private startLoop(volId: string): void {
    const rt = this.runtime(volId);
    if (rt.loop) return;
    rt.stop = false;
    rt.loop = this.loop(volId, rt).finally(() => { rt.loop = undefined; });
  }

  private async stopLoop(volId: string, _mode: 'graceful' | 'force'): Promise<void> {
    const rt = this.rt.get(volId);
    if (!rt?.loop) return;
    rt.stop = true;
    rt.wake?.();
    await rt.loop;
  }

  private sleep(rt: Runtime, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() { clearTimeout(t); rt.wake = undefined; resolve(); }
      rt.wake = done;
    });
  }

  private async loop(volId: string, rt: Runtime): Promise<void> {
    let delay = this.options.retryDelayMs ?? 1000;
    while (!rt.stop && !this.stopping) {
      try {
        const r = await this.step(volId, rt);
        rt.lastError = undefined;
        delay = this.options.retryDelayMs ?? 1000;
        if (r === 'stop') return;
        rt.phase = `sleep (${r})`;
        if (r === 'idle') await this.sleep(rt, 200);
        else if (r === 'wait') await this.sleep(rt, 50);
      } catch (e) {
        rt.lastError = (e as Error).message;
        this.log.log('warn', 'extract-retry', { volId, inMs: delay, error: e });
        await this.sleep(rt, delay);
        delay = Math.min(delay * 2, this.options.maxRetryDelayMs ?? 300_000);
      }
    }
  }

  /** One round of the worker: 'more' to go on at once, 'idle' or 'wait' to sleep, 'stop' to end. */
  private async step(volId: string, rt: Runtime): Promise<'more' | 'idle' | 'wait' | 'stop'> {
    rt.phase = 'state';
    const st = await this.volumeState(volId);
    rt.phase = 'lsids';
    const l = await rt.dev.lsids();
    if (l.overflow) {
      this.log.log('error', 'log-overflow', { volId, state: st, lsids: l });
      if (st === 'Target') await this.setState(volId, 'Stopped');
      return 'stop';
    }
    if (st === 'Standby') {
      // Nobody wants these logs yet: free them as soon as the super sector allows.
      if (l.oldest < l.permanent) {
        await rt.dev.checkpoint();
        const w = (await rt.dev.lsids()).prevWritten;
        if (w > l.oldest) await rt.dev.setOldestLsid(w);
      }
      return 'idle';
    }
    if (st !== 'Target' && st !== 'FullSync') return 'stop';
    rt.phase = 'progress';
    const pr = await this.progress(volId);
    rt.phase = 'free';
    await this.deleteGarbage(rt, pr.done.lsid);
    rt.phase = 'plan';
    pr.queue = pr.queue.filter((r) => r.gid > pr.done.gid);
    if (pr.done.lsid >= l.permanent && pr.queue.length === 0) return 'idle';
    const newest = pr.queue.at(-1);
    if ((!newest || now() - newest.timestamp >= (this.options.implicitSnapshotSec ?? 10)) && l.permanent > (newest?.lsid ?? pr.done.lsid)) {
      await this.locks.run(volId, () => this.takeSnapshot(volId, l.permanent, true));
      return 'more';
    }
    // The range: up to the oldest queued snapshot, extended over mergeable ones within the limit.
    const limit = pr.done.lsid + this.maxPb(volId);
    let recE = pr.queue[0];
    for (const r of pr.queue.slice(1)) {
      // Going past recE merges it away: only an implicit snapshot may go.
      if (!recE.isMergeable || r.lsid > limit || r.lsid > l.permanent) break;
      recE = r;
    }
    // A split piece ends at gid done+1, which must stay below recE's gid: packs end where they end,
    // so a range can take more pieces than the gids reserved for it; then it goes whole.
    const lsidLimit = recE.lsid <= limit || pr.done.gid + 1n >= recE.gid ? recE.lsid : limit;
    if (l.permanent < lsidLimit) return 'wait';
    await this.transfer(volId, rt, pr, recE, lsidLimit);
    return 'more';
  }

  private async deleteGarbage(rt: Runtime, doneLsid: bigint): Promise<void> {
    let l = await rt.dev.lsids();
    if (l.oldest >= doneLsid) return;
    // The super sector must keep pointing at valid logs: never free past the checkpointed written lsid.
    if (l.prevWritten < doneLsid) { await rt.dev.checkpoint(); l = await rt.dev.lsids(); }
    const target = doneLsid < l.prevWritten ? doneLsid : l.prevWritten;
    if (target > l.oldest) await rt.dev.setOldestLsid(target);
  }

  /** Ship the logs from `done` to (at most) `lsidLimit` to a proxy; then advance `done`. */
  private async transfer(volId: string, rt: Runtime, pr: Progress, recE: MetaLsidGid, lsidLimit: bigint): Promise<void> {
    rt.phase = 'open-ldev';
    const ldev = await LogDevice.open(rt.dev.ldevPath);
    try {
      rt.phase = 'walk';
      const sup = ldev.superSector;
      const pbs = ldev.pbs;
      // A range that ends at a snapshot ends on a pack boundary; a split one is found by walking
      // the headers first, so the end of the range is known before anything is sent.
      let lsidE = lsidLimit === recE.lsid ? lsidLimit : pr.done.lsid;
      while (lsidE < lsidLimit) {
        const block = await ldev.readLsids(lsidE, 1);
        const h = decodeLogpackHeader(block, 0, pbs, sup.logChecksumSalt, { expectedLsid: lsidE, loc: { lsid: lsidE, source: rt.dev.ldevPath } });
        const next = nextLogpackLsid(h);
        if (next > lsidLimit && lsidE > pr.done.lsid) break;
        lsidE = next;
      }
      const whole = lsidE >= recE.lsid;
      const end: MetaLsidGid = whole ? recE : { lsid: lsidE, gid: pr.done.gid + 1n, timestamp: now(), isMergeable: true };
      const diff: MetaDiff = {
        snapB: metaSnap(pr.done.gid), snapE: metaSnap(end.gid), isMergeable: pr.done.isMergeable, isCompDiff: false,
        timestamp: end.timestamp, dataSize: 0n,
      };
      const params = { volId, uuid: Buffer.from(sup.uuid), pbs, salt: sup.logChecksumSalt, sizeLb: await rt.dev.sizeLb(), lsidB: pr.done.lsid, lsidE, diff };
      const wlog = (): AsyncIterable<Uint8Array> => {
        // Object mode: each written piece (a pack header, an IO's data) comes out as it went in.
        // A byte stream read through its async iterator joins everything buffered into one new
        // buffer per read, a copy of the whole log (a tenth of the storage's CPU in the system
        // benchmark).
        const pipe = new PassThrough({ objectMode: true, highWaterMark: 32 });
        void (async () => {
          try {
            const w = await WlogWriter.create(pipe, { pbs, salt: sup.logChecksumSalt, uuid: sup.uuid, beginLsid: pr.done.lsid });
            const it = extractLogpacks(ldev, { beginLsid: pr.done.lsid, endLsid: lsidE, force: true });
            for (;;) {
              const r = await it.next();
              if (r.done) {
                if (r.value.endLsid !== lsidE) throw r.value.invalid ?? new StoreError(`extraction stopped at lsid ${r.value.endLsid} (${r.value.stoppedBy}), expected ${lsidE}`);
                break;
              }
              await w.writePack(r.value.header, r.value.ios);
            }
            await w.close();
            pipe.end(); // the writer leaves a stream sink open
          } catch (e) {
            pipe.destroy(e as Error);
          }
        })();
        return pipe;
      };
      rt.phase = `send ${params.lsidB}..${lsidE}`;
      await this.sendToProxy(params, wlog);
      rt.phase = 'done';
      // Snapshots may have been queued meanwhile: update what is on disk now, under the lock.
      await this.locks.run(volId, async () => {
        const cur = await this.progress(volId);
        cur.done = end;
        cur.queue = cur.queue.filter((r) => r.gid > end.gid);
        await this.setProgress(volId, cur);
      });
      this.log.log('info', 'wlog-sent', { volId, lsidB: params.lsidB, lsidE, snapE: formatMetaSnap(diff.snapE) });
      await this.deleteGarbage(rt, lsidE);
    } finally {
      await ldev.close();
    }
  }

  private async sendToProxy(params: Record<string, unknown>, wlog: () => AsyncIterable<Uint8Array>): Promise<void> {
    const proxies = this.options.proxies ?? [];
    if (!proxies.length) throw new BadRequestError('no proxy is configured');
    const errors: string[] = [];
    for (const px of proxies) {
      let conn: ProtocolConnection;
      try { conn = await ProtocolConnection.connect(px, this.options.connection); } catch (e) { errors.push(`${px.host}:${px.port}: ${(e as Error).message}`); continue; }
      try {
        await conn.upload('wlog-transfer', params, wlog(), { timeoutMs: 600_000 });
        return;
      } catch (e) {
        errors.push(`${px.host}:${px.port}: ${(e as Error).message}`);
        if (!(e instanceof RemoteError)) continue;
      } finally {
        conn.close();
      }
    }
    throw new RefusedError('no-proxy', `no proxy took the logs: ${errors.join('; ')}`);
  }

  // -- full backup ---------------------------------------------------------------------------------

  private async fullBackup(p: Params): Promise<unknown> {
    const volId = p.volId();
    const archive = this.options.archive;
    if (!archive) throw new BadRequestError('full-bkp: no archive is configured (--archive host:port)');
    await this.locks.run(volId, async () => {
      const st = await this.state(volId);
      if (this.temp.get(volId)) throw new StateError(volId, this.temp.get(volId)!, 'busy');
      if (st !== 'SyncReady') throw new StateError(volId, st, 'full-bkp needs SyncReady');
      this.temp.set(volId, 'FullSync');
    });
    const run = this.runFullBackup(volId, archive).catch(async (e) => {
      this.log.log('error', 'full-backup-failed', { volId, error: e });
      await this.stopLoop(volId, 'force');
      throw e;
    }).finally(() => this.temp.delete(volId));
    if (p.bool('wait')) return run;
    run.catch(() => undefined);
    return { accepted: true };
  }

  private async runFullBackup(volId: string, archive: HostPort): Promise<unknown> {
    const rt = this.runtime(volId);
    const conn = await ProtocolConnection.connect(archive, this.options.connection);
    try {
      const ast = checkReply('get state', await conn.request('get', { target: 'state', volId }));
      if (ast !== 'SyncReady') throw new RefusedError('archive-not-ready', `the archive's volume ${volId} is ${ast}, not SyncReady`);
      await this.resetWlog(volId, 0n);
      const sup = await rt.dev.readSuper();
      const sizeLb = await rt.dev.sizeLb();
      const ts = now();
      // Logs flow while the image is copied: the copy is dirty, the logs make it clean.
      this.startLoop(volId);
      const bulk = this.options.fullSyncBulkBytes ?? 1 << 20;
      const dataPath = rt.dev.dataPath;
      rt.fullSyncBytes = 0;
      async function* image(): AsyncGenerator<Buffer> {
        const fh = await open(dataPath, 'r');
        try {
          const total = Number(sizeLb * 512n);
          for (let off = 0; off < total; off += bulk) {
            const n = Math.min(bulk, total - off);
            const b = allocReadBuffer(n);
            let got = 0;
            while (got < n) {
              const { bytesRead } = await fh.read(b, got, n - got, off + got);
              if (!bytesRead) throw new StoreError(`${dataPath} ended at byte ${off + got}, expected ${total}`);
              got += bytesRead;
            }
            rt.fullSyncBytes = off + n;
            yield b;
          }
        } finally { await fh.close(); }
      }
      await conn.upload('full-sync', { volId, sizeLb, timestamp: ts, uuid: Buffer.from(sup.uuid) }, image(), { timeoutMs: 600_000 });
      const l = await rt.dev.lsids();
      // Logs written during the copy were overwritten before they were extracted: the copy cannot
      // be made clean, and a snapshot committed now would never become restorable.
      if (l.overflow) throw new StateError(volId, 'FullSync', 'the log overflowed during the full backup: reset-vol (here and on the archive) and run it again, with a larger log device or fewer writes meanwhile');
      const rec = await this.locks.run(volId, () => this.takeSnapshot(volId, l.latest, true));
      await conn.request('full-sync-commit', { volId, snap: metaSnap(0n, rec.gid), timestamp: ts });
      await this.locks.run(volId, async () => {
        await this.setState(volId, 'Stopped');
        await this.setState(volId, 'Target');
      });
      this.log.log('info', 'full-backup-done', { volId, gidE: rec.gid, bytes: sizeLb * 512n });
      return { state: 'Target', snap: formatMetaSnap(metaSnap(0n, rec.gid)) };
    } finally {
      conn.close();
    }
  }
}
