/**
 * The archive role (`walb-archive`): per volume a base image and a chain of wdiffs; receives the
 * full sync from a storage and wdiffs from proxies (accepting or refusing them as the original
 * does), restores clean snapshots, applies and merges diffs (restartable after a crash), and
 * streams the virtual full image at any restorable gid.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readdir, rm, stat, rename, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { applyWdiffs, isAllZero, mergeWdiffs, verifyWdiffs, VirtualFullImage, type DiscardMode } from '@walbjs/diff';
import { locateIoError, probeDevice } from '@walbjs/log-format';
import { Daemon, type DaemonOptions } from '../daemon/daemon.ts';
import type { Params } from '../daemon/params.ts';
import { syncDir } from '../daemon/store.ts';
import { BadRequestError, NotFoundError, RefusedError, StateError } from '../errors.ts';
import {
  applyDiff, beginApplying, canMerge, endApplying, formatMetaDiff, formatMetaState, formatMetaSnap, formatUtcTime,
  getRelation, isCleanSnap, mergeDiffs, metaState, type MetaDiff, type MetaSnap, type MetaState,
} from '../meta.ts';
import { getApplicableDiffList } from '../restorable.ts';
import { ArchiveVolume, type ArchiveState, type StoredDiff } from './archive-volume.ts';
import type { ProtocolConnection, RequestContext } from '../protocol/connection.ts';
import { StreamReply } from '../protocol/connection.ts';

/** Options of the archive daemon. */
export interface ArchiveOptions extends DaemonOptions {
  /** DISCARD records on apply: ignore (the original's default), zero, or punch (default zero, so the base equals the virtual image). */
  discard?: DiscardMode;
  /** fsync the base every this many bytes while applying (default 1 GiB). */
  fsyncIntervalBytes?: number;
  /** Grow the base when a sync or wdiff announces a larger volume (else `smaller-lv-size`). */
  autoResize?: boolean;
}

/**
 * Archive actions: the original's (`Merge`, `Apply`, `Restore`, `Resize`), and the readers of the
 * base that walbjs counts as actions too, `VirtFullScan` (`virt-full-scan`) and `BlockHash`
 * (`bhash`), so that nothing rewrites the base under them.
 */
export type ArchiveAction = 'Merge' | 'Apply' | 'Restore' | 'Resize' | 'VirtFullScan' | 'BlockHash';

const ACTIONS: readonly ArchiveAction[] = ['Merge', 'Apply', 'Restore', 'Resize', 'VirtFullScan', 'BlockHash'];

// The original's table (reference §1.6). The scans read the base as a restore does: an apply would
// rewrite it in place under them (the reader gets a mix of two snapshots), and a resize changes
// its size. A merge may run beside any reader, as in the original: readers hold their own links to
// the diffs they read (pinChain).
const FORBIDDEN: Record<ArchiveAction, readonly ArchiveAction[]> = {
  Restore: ['Restore', 'Resize', 'Apply'],
  Apply: ['Merge', 'Apply', 'Restore', 'Resize', 'VirtFullScan', 'BlockHash'],
  Merge: ['Apply', 'Merge', 'Resize'],
  Resize: ['Restore', 'Apply', 'Resize', 'Merge', 'VirtFullScan', 'BlockHash'],
  VirtFullScan: ['Apply', 'Resize'],
  BlockHash: ['Apply', 'Resize'],
};

/** How often a reader lists the chain again when a diff vanished before it was linked. */
const PIN_ATTEMPTS = 10;

interface Running { action: ArchiveAction; detail: string; progressLb: number; promise: Promise<unknown> }

/** A full sync whose image arrived and awaits its commit. */
interface PendingFull {
  uuid: Buffer;
  sizeLb: bigint;
  timestamp: number;
  /** The connection the image came on, the only one its commit may come on (absent for an in-process call). */
  connection?: ProtocolConnection;
  /** Stops watching that connection. */
  unwatch?: () => void;
}

/**
 * The archive daemon.
 *
 * @example
 * const a = await new ArchiveDaemon({ baseDir: '/var/lib/walb-archive', port: 10200 }).start();
 * await a.call('init-vol', { volId: 'vol0' });
 */
export class ArchiveDaemon extends Daemon {
  readonly hostType = 'archive' as const;
  /** Temporary states (FullSync, WdiffRecv) by volume. */
  private readonly temp = new Map<string, string>();
  private readonly running = new Map<string, Running[]>();
  private readonly pendingFull = new Map<string, PendingFull>();
  /** Names the folders of pinned chains apart. */
  private pinSeq = 0;

  constructor(readonly options: ArchiveOptions) {
    super(options);
    const c = this.command.bind(this);
    const g = this.get.bind(this);
    c('init-vol', (p) => {
      const baseDevice = p.optStr('baseDevice', 1024);
      return this.locked(p, async (v, st) => {
        if (st !== 'Clear') throw new StateError(v.volId, st, 'init-vol needs Clear');
        if (baseDevice !== undefined) {
          const info = await probeDevice(baseDevice).catch((e: Error) => { throw new NotFoundError(`init-vol: base device ${baseDevice}: ${e.message}`); });
          if (!info.isBlockDevice) throw new BadRequestError(`init-vol: ${baseDevice} is not a block device`);
          for (const other of await this.volumes()) {
            if ((await this.vol(other).info()).baseDevice === baseDevice) throw new BadRequestError(`init-vol: ${baseDevice} is the base of volume ${other}`);
          }
        }
        await v.init();
        if (baseDevice !== undefined) await v.setInfo({ baseDevice });
        return { state: 'SyncReady', ...(baseDevice ? { baseDevice } : {}) };
      });
    });
    c('clear-vol', (p) => this.locked(p, async (v, st) => {
      this.dropUncommittedFullSync(v.volId);
      this.noTemp(v.volId, st);
      if (st !== 'SyncReady' && st !== 'Stopped') throw new StateError(v.volId, st, 'clear-vol needs SyncReady or Stopped');
      this.noActions(v.volId, st);
      await v.clear();
      return { state: 'Clear' };
    }));
    c('reset-vol', (p) => this.locked(p, async (v, st) => {
      this.dropUncommittedFullSync(v.volId);
      this.noTemp(v.volId, st);
      if (st !== 'SyncReady' && st !== 'Stopped') throw new StateError(v.volId, st, 'reset-vol needs SyncReady or Stopped');
      this.noActions(v.volId, st);
      const { baseDevice } = await v.info();
      await v.clear();
      await v.init();
      if (baseDevice) await v.setInfo({ baseDevice });
      return { state: 'SyncReady' };
    }));
    c('start', (p) => this.locked(p, async (v, st) => {
      if (st !== 'Stopped') throw new StateError(v.volId, st, 'start needs Stopped');
      await v.setState('Archived');
      return { state: 'Archived' };
    }));
    c('stop', (p) => this.locked(p, async (v, st) => {
      if (st !== 'Archived') throw new StateError(v.volId, st, 'stop needs Archived');
      this.noTemp(v.volId, st);
      await v.setState('Stopped');
      return { state: 'Stopped' };
    }));
    c('full-sync', (p, ctx) => this.fullSync(p, ctx));
    c('full-sync-commit', (p, ctx) => this.fullSyncCommit(p, ctx));
    c('wdiff-transfer', (p, ctx) => this.wdiffTransfer(p, ctx));
    c('restore', (p) => this.restoreCmd(p));
    c('del-restored', (p) => this.locked(p, async (v) => {
      const gid = p.u64('gid');
      if (!(await v.restored()).includes(gid)) throw new NotFoundError(`volume ${v.volId} has no restored image of gid ${gid}`);
      await rm(v.restoredPath(gid), { force: true });
      await syncDir(v.restoredDir);
      return { deleted: gid };
    }));
    c('apply', (p) => this.applyCmd(p));
    c('merge', (p) => this.mergeCmd(p));
    c('gc-diff', (p) => this.locked(p, async (v, st) => {
      if (st === 'Clear') throw new StateError(v.volId, st, 'no such volume');
      return { removed: await this.gc(v) };
    }));
    c('resize', (p) => this.resizeCmd(p));
    c('virt-full-scan', (p) => this.virtFullScan(p));
    c('bhash', (p) => this.bhash(p));

    g('restorable', async (p) => (await this.vol(p).restorable(p.bool('all'))).map((r) => ({ gid: r.gid, timestamp: r.timestamp, isExplicit: r.isExplicit, line: `${r.gid} ${formatUtcTime(r.timestamp)} ${r.isExplicit ? 1 : 0}` })));
    g('restored', async (p) => this.vol(p).restored());
    g('restored-path', async (p) => {
      const v = this.vol(p);
      const gid = p.u64('gid');
      if (!(await v.restored()).includes(gid)) throw new NotFoundError(`volume ${v.volId} has no restored image of gid ${gid}`);
      return v.restoredPath(gid);
    });
    g('diff', async (p) => (await this.vol(p).diffs()).filter((d) => (!p.has('gidB') || d.snapB.gidB >= p.u64('gidB')) && (!p.has('gidE') || d.snapE.gidB <= p.u64('gidE')))
      .sort((a, b) => (a.snapB.gidB < b.snapB.gidB ? -1 : a.snapB.gidB > b.snapB.gidB ? 1 : 0)).map(describeDiff));
    g('applicable-diff', async (p) => (await this.vol(p).chain()).filter((d) => !p.has('maxGid') || d.snapE.gidB <= p.u64('maxGid')).map(describeDiff));
    g('num-diff', async (p) => (await this.vol(p).diffs()).length);
    g('total-diff-size', async (p) => (await this.vol(p).diffs()).reduce((s, d) => s + d.dataSize, 0n));
    g('base', async (p) => { const b = await this.vol(p).base(); return b ? { ...b, text: formatMetaState(b) } : null; });
    g('vol-size', async (p) => (await this.vol(p).info()).sizeLb ?? 0n);
    g('uuid', async (p) => hex((await this.vol(p).info()).uuid));
    g('archive-uuid', async (p) => hex((await this.vol(p).info()).archiveUuid));
    g('exists-base-image', async (p) => this.exists((await this.vol(p).baseImage()).path));
    g('base-image', async (p) => this.vol(p).baseImage());
    g('latest-snap', async (p) => { const s = await this.vol(p).latestSnap(); return s ? { ...s, text: formatMetaSnap(s) } : null; });
    g('num-action', (p) => (this.running.get(p.volId()) ?? []).filter((r) => r.action === p.oneOf('action', ACTIONS)).length);
    g('all-actions', (p) => (this.running.get(p.volId()) ?? []).map((r) => ({ action: r.action, detail: r.detail, progressLb: r.progressLb })));
    g('progress', (p) => (this.running.get(p.volId()) ?? []).reduce((s, r) => s + r.progressLb, 0));
  }

  private vol(p: Params | string): ArchiveVolume {
    const volId = typeof p === 'string' ? p : p.volId();
    return new ArchiveVolume(volId, join(this.options.baseDir, volId));
  }

  private async exists(path: string): Promise<boolean> {
    try { await stat(path); return true; } catch { return false; }
  }

  async volumes(): Promise<string[]> {
    const names = await readdir(this.options.baseDir).catch(() => [] as string[]);
    const out: string[] = [];
    for (const n of names) if (/^[0-9A-Za-z-]{1,64}$/.test(n) && (await this.vol(n).exists())) out.push(n);
    return out.sort();
  }

  async volumeState(volId: string): Promise<string> {
    return this.temp.get(volId) ?? (await this.vol(volId).state());
  }

  /** Run `f` under the volume's lock with its steady state. */
  private locked<T>(p: Params, f: (v: ArchiveVolume, st: ArchiveState) => Promise<T>): Promise<T> {
    const v = this.vol(p);
    return this.locks.run(v.volId, async () => f(v, await v.state()));
  }

  private noTemp(volId: string, st: string): void {
    const t = this.temp.get(volId);
    if (t) throw new StateError(volId, t, `busy (${st})`);
  }

  private noActions(volId: string, st: string): void {
    const r = this.running.get(volId) ?? [];
    if (r.length) throw new StateError(volId, st, `actions running: ${r.map((x) => x.action).join(', ')}`);
  }

  /** Refuse `action` while a conflicting one runs on the volume (`st`: its state, for the error). */
  private checkAction(volId: string, action: ArchiveAction, st: string): void {
    const clash = (this.running.get(volId) ?? []).find((r) => FORBIDDEN[action].includes(r.action) || FORBIDDEN[r.action].includes(action));
    if (clash) throw new StateError(volId, st, `${action} cannot run while ${clash.action} runs`);
  }

  /** Count `action` as running on the volume; the check and the entry are one synchronous step. */
  private enterAction(volId: string, action: ArchiveAction, detail: string, st: string): Running {
    this.checkAction(volId, action, st);
    const list = this.running.get(volId) ?? [];
    // A reader's entry keeps a settled promise: it belongs to its connection, which stop() closes,
    // so a graceful stop does not wait for a client that stopped reading.
    const r: Running = { action, detail, progressLb: 0, promise: Promise.resolve() };
    list.push(r);
    this.running.set(volId, list);
    this.log.log('info', 'action-start', { volId, action, detail });
    return r;
  }

  private leaveAction(volId: string, r: Running): void {
    const l = this.running.get(volId) ?? [];
    const i = l.indexOf(r);
    if (i >= 0) l.splice(i, 1);
    if (!l.length) this.running.delete(volId);
  }

  /** Start a background action unless a forbidden one runs; `wait` makes the call wait for it. */
  private startAction(volId: string, st: string, action: ArchiveAction, detail: string, f: (r: Running) => Promise<unknown>, wait: boolean): Promise<unknown> | { accepted: true } {
    const r = this.enterAction(volId, action, detail, st);
    r.promise = (async () => {
      try {
        const res = await f(r);
        this.log.log('info', 'action-done', { volId, action, detail });
        return res;
      } catch (e) {
        this.log.log('error', 'action-failed', { volId, action, detail, error: e });
        throw e;
      } finally {
        this.leaveAction(volId, r);
      }
    })();
    if (wait) return r.promise;
    r.promise.catch(() => undefined);
    return { accepted: true };
  }

  protected async status(volId?: string): Promise<unknown> {
    if (volId === undefined) {
      const vols = await this.volumes();
      return { hostType: this.hostType, nodeId: this.nodeId, volumes: await Promise.all(vols.map(async (v) => ({ volId: v, state: await this.volumeState(v) }))) };
    }
    const v = this.vol(volId);
    const st = await this.volumeState(volId);
    if (st === 'Clear') return { volId, state: st };
    const base = await v.base();
    const diffs = await v.diffs();
    const latest = await v.latestSnap();
    return {
      volId, state: st, base: base ? formatMetaState(base) : null, latestSnap: latest ? formatMetaSnap(latest) : null,
      numDiff: diffs.length, totalDiffSize: diffs.reduce((s, d) => s + d.dataSize, 0n), sizeLb: (await v.info()).sizeLb ?? 0n,
      actions: (this.running.get(volId) ?? []).map((r) => r.action), restored: await v.restored(),
    };
  }

  protected async recover(): Promise<void> {
    for (const volId of await this.volumes()) {
      const v = this.vol(volId);
      // Transfers and restores cut short by a crash leave only temporary files behind.
      for (const n of await readdir(v.tmpDir).catch(() => [] as string[])) await rm(join(v.tmpDir, n), { force: true, recursive: true });
      for (const n of await readdir(v.restoredDir).catch(() => [] as string[])) if (n.endsWith('.tmp')) await rm(join(v.restoredDir, n), { force: true });
      const base = await v.base();
      if (base?.isApplying) {
        this.log.log('warn', 'apply-resume', { volId, base: formatMetaState(base) });
        void this.startAction(volId, await v.state(), 'Apply', `resume to ${base.snapE.gidB}`, (r) => this.applyTo(v, undefined, r), false);
      } else if (base) {
        const removed = await this.gc(v);
        if (removed.length) this.log.log('info', 'gc', { volId, removed });
      }
    }
  }

  protected async halt(mode: 'graceful' | 'force'): Promise<void> {
    if (mode === 'graceful') await Promise.allSettled([...this.running.values()].flat().map((r) => r.promise));
  }

  /**
   * A full sync whose image arrived but whose commit never came is given up, so that reset-vol and
   * clear-vol can take the volume back. One that came over a connection is given up when that
   * closes (cancelFullSync); this is for one given in-process, which has none. One still receiving
   * its image is left alone: its uploader is alive.
   */
  private dropUncommittedFullSync(volId: string): void {
    if (!this.pendingFull.has(volId)) return;
    this.forgetFullSync(volId);
    this.log.log('warn', 'full-sync-dropped', { volId, reason: 'no commit came' });
  }

  /** The volume is no longer in a full sync (committed or given up). */
  private forgetFullSync(volId: string): void {
    this.pendingFull.get(volId)?.unwatch?.();
    this.pendingFull.delete(volId);
    this.temp.delete(volId);
  }

  /**
   * The connection of a full sync whose image arrived closed before its commit: the storage died or
   * the network dropped, and nothing can commit this image any more (the storage starts over with a
   * new log). As walb-tools' state transaction does when its session breaks, the volume goes back to
   * SyncReady at once and its received image is removed, so that the next full-bkp can start
   * without a reset-vol. Under the volume's lock: a commit that got there first has already taken
   * the volume to Archived and dropped `pend`, and is never undone by the close that follows it.
   */
  private async cancelFullSync(volId: string, pend: PendingFull, reason: Error): Promise<void> {
    // A stopping daemon drops its memory anyway, and the next start empties tmp/.
    if (this.stopping) return;
    try {
      await this.locks.run(volId, async () => {
        if (this.pendingFull.get(volId) !== pend) return;
        const v = this.vol(volId);
        try {
          if (!(await v.baseImage()).isDevice) await rm(join(v.tmpDir, 'full.img'), { force: true });
        } finally {
          // A file that could not be removed is truncated by the next full sync: the state goes back regardless.
          this.forgetFullSync(volId);
          this.log.log('warn', 'full-sync-cancelled', { volId, reason: reason.message });
        }
      });
    } catch (e) {
      // Refused by a full lock queue, or the file could not go: reset-vol and clear-vol still drop it.
      this.log.log('error', 'full-sync-cancel-failed', { volId, error: e });
    }
  }

  /** Delete the diffs outside the chain from the base. */
  private async gc(v: ArchiveVolume): Promise<string[]> {
    const base = await v.base();
    if (!base || base.isApplying) return [];
    const keep = new Set((await v.chain()).map((d) => d.name));
    const drop = (await v.diffs()).filter((d) => !keep.has(d.name)).map((d) => d.name);
    await v.removeDiffs(drop);
    return drop;
  }

  // -- full sync ------------------------------------------------------------------------------

  private async fullSync(p: Params, ctx: RequestContext): Promise<unknown> {
    const v = this.vol(p);
    const sizeLb = p.u64('sizeLb');
    if (sizeLb === 0n || sizeLb > 1n << 50n) throw new BadRequestError(`full-sync: sizeLb ${sizeLb} out of range`);
    const uuid = p.uuid('uuid');
    const timestamp = p.int('timestamp', 253_402_300_799);
    if (!ctx.upload) throw new BadRequestError('full-sync: the image must follow as an upload');
    await this.locks.run(v.volId, async () => {
      const st = await v.state();
      // A storage that died between its image and the commit may start over: one that came
      // in-process, or whose connection is not known to be gone yet (a network that drops without
      // a reset gives no sign until the idle timeout).
      if (this.pendingFull.has(v.volId)) this.forgetFullSync(v.volId);
      this.noTemp(v.volId, st);
      if (st !== 'SyncReady') throw new RefusedError(st === 'Clear' ? 'archive-not-found' : 'not-sync-ready', `volume ${v.volId} is ${st}; a full sync needs SyncReady`);
      this.noActions(v.volId, st);
      this.temp.set(v.volId, 'FullSync');
    });
    const target = await v.baseImage();
    // A file is written aside and renamed at the commit; a device is written in place.
    const part = target.isDevice ? target.path : join(v.tmpDir, 'full.img');
    try {
      const total = sizeLb * 512n;
      if (target.isDevice) {
        const size = (await probeDevice(target.path)).sizeBytes;
        if (size < total) throw new RefusedError('smaller-lv-size', `the base device ${target.path} has ${size} bytes, the volume ${total}`);
      } else await rm(v.basePath, { force: true });
      // A device is opened exclusively: the kernel refuses that while it is mounted or claimed.
      const fh = await open(part, target.isDevice ? constants.O_RDWR | constants.O_EXCL : 'w').catch((e: unknown) => {
        if ((e as NodeJS.ErrnoException).code === 'EBUSY') throw new RefusedError('base-in-use', `the base device ${part} is mounted or held by another program`);
        throw e;
      });
      let off = 0n;
      try {
        if (!target.isDevice) await fh.truncate(Number(total));
        for await (const chunk of ctx.upload) {
          if (off + BigInt(chunk.byteLength) > total) throw new BadRequestError(`full-sync: more than ${total} bytes sent`);
          // The image file is sparse: zero regions are not written (a device gets every byte).
          if (target.isDevice || !isAllZero(chunk)) await fh.write(chunk, 0, chunk.byteLength, Number(off)).catch((e: unknown) => { throw locateIoError(e, part, 'write', Number(off)); });
          off += BigInt(chunk.byteLength);
        }
        if (off !== total) throw new BadRequestError(`full-sync: ${off} bytes received, ${total} announced`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      const pend: PendingFull = { uuid, sizeLb, timestamp, connection: ctx.connection };
      this.pendingFull.set(v.volId, pend);
      // Only the storage that sent the image knows the snapshot to commit it with, and it sends the
      // commit on this connection: once that closes, the sync is over. A close that came while the
      // image was being synced is reported at once.
      if (ctx.connection) pend.unwatch = ctx.connection.onClose((reason) => void this.cancelFullSync(v.volId, pend, reason));
      this.log.log('info', 'full-sync-received', { volId: v.volId, bytes: off });
      return { received: off };
    } catch (e) {
      // The temporary state goes last: until it does, no new full sync starts to write the file removed here.
      try {
        if (!target.isDevice) await rm(part, { force: true });
      } finally {
        this.temp.delete(v.volId);
      }
      throw e;
    }
  }

  private async fullSyncCommit(p: Params, ctx: RequestContext): Promise<unknown> {
    const v = this.vol(p);
    const snap = p.snap('snap');
    const timestamp = p.int('timestamp', 253_402_300_799);
    return this.locks.run(v.volId, async () => {
      const pend = this.pendingFull.get(v.volId);
      if (this.temp.get(v.volId) !== 'FullSync' || !pend) throw new StateError(v.volId, await this.volumeState(v.volId), 'no full sync awaits its commit');
      // Another peer's commit would seal an image it did not send with a snapshot of its own log.
      if (pend.connection && pend.connection !== ctx.connection) throw new StateError(v.volId, 'FullSync', 'the full sync awaiting its commit came on another connection');
      if (snap.gidB !== 0n) throw new BadRequestError(`full-sync-commit: the snapshot of a full sync starts at gid 0, not ${snap.gidB}`);
      if (!(await v.baseImage()).isDevice) await rename(join(v.tmpDir, 'full.img'), v.basePath);
      await v.removeDiffs((await v.diffs()).map((d) => d.name));
      await v.setInfo({ uuid: pend.uuid, archiveUuid: randomBytes(16), sizeLb: pend.sizeLb });
      await v.setBase(metaState(snap, timestamp));
      await v.setState('Archived');
      this.forgetFullSync(v.volId);
      this.log.log('info', 'full-sync-done', { volId: v.volId, base: formatMetaSnap(snap) });
      return { state: 'Archived', base: formatMetaSnap(snap) };
    });
  }

  // -- wdiff transfer --------------------------------------------------------------------------

  private async wdiffTransfer(p: Params, ctx: RequestContext): Promise<unknown> {
    const v = this.vol(p);
    const uuid = p.uuid('uuid');
    const sizeLb = p.u64('sizeLb');
    const diff = p.diff('diff');
    if (!ctx.upload) throw new BadRequestError('wdiff-transfer: the wdiff must follow as an upload');
    return this.locks.run(v.volId, async () => {
      const st = await v.state();
      const t = this.temp.get(v.volId);
      if (st === 'Clear') throw new RefusedError('archive-not-found', `no volume ${v.volId}`);
      if (t === 'FullSync' || st === 'SyncReady') throw new RefusedError('syncing', `volume ${v.volId} is ${t ?? st}`);
      if (st !== 'Archived') throw new RefusedError('stopped', `volume ${v.volId} is ${st}`);
      const info = await v.info();
      if (!info.uuid || !Buffer.from(info.uuid).equals(uuid)) throw new RefusedError('different-uuid', `the diff's uuid ${uuid.toString('hex')} is not the volume's ${hex(info.uuid)}`);
      if (sizeLb > (info.sizeLb ?? 0n)) {
        if (!this.options.autoResize || info.baseDevice) throw new RefusedError('smaller-lv-size', `the volume has ${info.sizeLb} LB, the diff ${sizeLb}`);
        await truncate(v.basePath, Number(sizeLb * 512n));
        await v.setInfo({ sizeLb });
      }
      const latest = await v.latestSnap();
      if (!latest) throw new RefusedError('syncing', `volume ${v.volId} is applying`);
      const rel = getRelation(latest, diff);
      if (rel === 'TOO_OLD') throw new RefusedError('too-old-diff', `${formatMetaDiff(diff)} is older than the latest snapshot ${formatMetaSnap(latest)}`);
      if (rel === 'TOO_NEW') throw new RefusedError('too-new-diff', `${formatMetaDiff(diff)} is newer than the latest snapshot ${formatMetaSnap(latest)}`);
      if (rel !== 'APPLICABLE') throw new RefusedError('not-applicable', `${formatMetaDiff(diff)} does not apply to ${formatMetaSnap(latest)}`);
      this.temp.set(v.volId, 'WdiffRecv');
      const tmp = join(v.tmpDir, `recv-${process.pid}-${Date.now()}.wdiff`);
      try {
        const fh = await open(tmp, 'w');
        let n = 0;
        try {
          for await (const chunk of ctx.upload!) { await fh.write(chunk).catch((e: unknown) => { throw locateIoError(e, tmp, 'write', n); }); n += chunk.byteLength; }
          await fh.sync().catch((e: unknown) => { throw locateIoError(e, tmp, 'sync'); });
        } finally { await fh.close(); }
        // Every checksum, and every IO inside the volume, before the diff joins the chain.
        await verifyWdiffs([tmp], Number(info.sizeLb ?? sizeLb));
        const name = await v.addDiff(tmp, { ...diff, dataSize: BigInt(n) });
        this.log.log('info', 'wdiff-received', { volId: v.volId, name, bytes: n });
        return { name };
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      } finally {
        this.temp.delete(v.volId);
      }
    });
  }

  // -- restore, apply, merge, resize -------------------------------------------------------------

  /**
   * The chain prefix that takes the base to the clean snapshot `gid`. A base whose apply was cut
   * short holds blocks of every gid from snapB to snapE: the diffs from snapB laid over it again
   * give snapE and what follows, never what came before (those gids are gone, as `get restorable`
   * says).
   */
  private async pathTo(v: ArchiveVolume, gid: bigint): Promise<{ base: MetaState; diffs: StoredDiff[] }> {
    const base = await v.base();
    if (!base) throw new StateError(v.volId, await v.state(), 'no base image');
    const whole = (s: MetaSnap) => isCleanSnap(s) && s.gidB === gid && (!base.isApplying || s.gidB >= base.snapE.gidB);
    let s: MetaSnap = base.snapB;
    const out: StoredDiff[] = [];
    if (!whole(s)) {
      for (const d of getApplicableDiffList(base.snapB, await v.diffs()) as StoredDiff[]) {
        s = applyDiff(s, d);
        out.push(d);
        if (s.gidB >= gid) break;
      }
    }
    if (!whole(s)) {
      const cut = base.isApplying ? ` (the base is ${formatMetaState(base)}: an apply to gid ${base.snapE.gidB} is in progress or was cut short)` : '';
      throw new NotFoundError(`gid ${gid} of volume ${v.volId} is not restorable${cut} (see get restorable ${v.volId} all)`);
    }
    return { base, diffs: out };
  }

  /**
   * The chain to `gid`, each diff hard-linked into a folder of `tmp/` of its own, for a reader that
   * opens the diffs by path more than once (`VirtualFullImage` checks them at open and opens them
   * again to stream): a merge or a gc that deletes a diff meanwhile removes only its name. A diff
   * gone between the listing and its link was merged or collected in between: the chain is listed
   * again, as the original's `tryOpenDiffs` does.
   */
  private async pinChain(v: ArchiveVolume, gid: bigint): Promise<{ paths: string[]; release: () => Promise<void> }> {
    for (let attempt = 1; ; attempt++) {
      const { diffs } = await this.pathTo(v, gid);
      const dir = join(v.tmpDir, `pin-${++this.pinSeq}`);
      const release = () => rm(dir, { recursive: true, force: true });
      try {
        await mkdir(dir, { recursive: true });
        for (const d of diffs) await link(v.diffPath(d.name), join(dir, d.name));
        return { paths: diffs.map((d) => join(dir, d.name)), release };
      } catch (e) {
        await release();
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EMLINK') {
          // No hard links here: read by name. A merge part way through can then fail the read
          // (the diff is gone), never change what it reads (a merged diff has a name of its own).
          this.log.log('warn', 'chain-not-pinned', { volId: v.volId, gid, error: e });
          return { paths: diffs.map((d) => v.diffPath(d.name)), release: async () => {} };
        }
        if (code !== 'ENOENT' || attempt >= PIN_ATTEMPTS) throw e;
        this.log.log('info', 'chain-changed', { volId: v.volId, gid, attempt });
      }
    }
  }

  /** The virtual full image at `gid` over a pinned chain; `release` closes it and drops the pins. */
  private async openImage(v: ArchiveVolume, gid: bigint): Promise<{ img: VirtualFullImage; release: () => Promise<void> }> {
    const pin = await this.pinChain(v, gid);
    try {
      const info = await v.info();
      const img = await VirtualFullImage.open((await v.baseImage()).path, pin.paths, { sizeBytes: (info.sizeLb ?? 0n) * 512n });
      return { img, release: async () => { try { await img.close(); } finally { await pin.release(); } } };
    } catch (e) {
      await pin.release();
      throw e;
    }
  }

  /**
   * The image at `gid` in chunks, read as action `action`: counted from the first chunk asked for
   * (a reply never consumed holds nothing) until the last is read or the consumer stops (a client
   * that goes away ends the serving loop, which closes this generator).
   */
  private async *readImage(v: ArchiveVolume, gid: bigint, action: 'VirtFullScan' | 'BlockHash', reuseBuffers = false): AsyncGenerator<Buffer> {
    const detail = `gid ${gid}`;
    const r = this.enterAction(v.volId, action, detail, await this.volumeState(v.volId));
    let release: (() => Promise<void>) | undefined;
    let off = 0;
    let outcome = 'action-stopped';
    try {
      const opened = await this.openImage(v, gid);
      release = opened.release;
      for await (const b of opened.img.stream(undefined, { reuseBuffers })) {
        off += b.byteLength;
        r.progressLb = off / 512;
        yield b;
      }
      outcome = 'action-done';
    } catch (e) {
      outcome = 'action-failed';
      this.log.log('error', outcome, { volId: v.volId, action, detail, bytes: off, error: e });
      throw e;
    } finally {
      try { await release?.(); } finally { this.leaveAction(v.volId, r); }
      if (outcome !== 'action-failed') this.log.log('info', outcome, { volId: v.volId, action, detail, bytes: off });
    }
  }

  private async restoreCmd(p: Params): Promise<unknown> {
    const v = this.vol(p);
    const gid = p.u64('gid');
    const st = await this.volumeState(v.volId);
    if (st !== 'Archived' && st !== 'Stopped' && st !== 'WdiffRecv') throw new StateError(v.volId, st, 'restore needs Archived or Stopped');
    if ((await v.restored()).includes(gid)) throw new StateError(v.volId, st, `gid ${gid} is already restored`);
    // Refused here, before it is accepted; the chain it reads is taken once it runs.
    await this.pathTo(v, gid);
    return this.startAction(v.volId, st, 'Restore', `gid ${gid}`, async (r) => {
      const out = `${v.restoredPath(gid)}.tmp`;
      const { img, release } = await this.openImage(v, gid);
      try {
        const fh = await open(out, 'w');
        try {
          let off = 0;
          for await (const b of img.stream(undefined, { reuseBuffers: true })) {
            if (!isAllZero(b)) await fh.write(b, 0, b.byteLength, off).catch((e: unknown) => { throw locateIoError(e, out, 'write', off); });
            off += b.byteLength;
            r.progressLb = off / 512;
          }
          await fh.truncate(off);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(out, v.restoredPath(gid));
      } catch (e) {
        // Only a restart sweeps restored/ otherwise: a partial image would hold its space (on a
        // full disk, all the space the next transfers need) until then.
        await rm(out, { force: true });
        throw e;
      } finally {
        await release();
      }
      await syncDir(v.restoredDir);
      return { restored: gid, path: v.restoredPath(gid) };
    }, p.bool('wait'));
  }

  private async applyCmd(p: Params): Promise<unknown> {
    const v = this.vol(p);
    const gid = p.u64('gid');
    const st = await this.volumeState(v.volId);
    if (st !== 'Archived' && st !== 'Stopped' && st !== 'WdiffRecv') throw new StateError(v.volId, st, 'apply needs Archived or Stopped');
    await this.pathTo(v, gid);
    return this.startAction(v.volId, st, 'Apply', `to gid ${gid}`, (r) => this.applyTo(v, gid, r), p.bool('wait'));
  }

  /**
   * Apply the chain up to `gid` to the base, or (`gid` undefined, at recovery) up to where an apply
   * cut short was going. The base records where it goes before its first byte changes, so an apply
   * that crashed or failed (no space, an IO error) is finished by the next one: the same diffs are
   * laid over the base again, from snapB.
   */
  private async applyTo(v: ArchiveVolume, gid: bigint | undefined, r: Running): Promise<unknown> {
    const base = (await v.base())!;
    let diffs: StoredDiff[];
    if (gid === undefined) {
      // The diffs that lead from snapB to snapE are still there: they are deleted only after.
      diffs = [];
      let s = base.snapB;
      for (const d of getApplicableDiffList(base.snapB, await v.diffs()) as StoredDiff[]) {
        if (s.gidB >= base.snapE.gidB) break;
        s = applyDiff(s, d);
        diffs.push(d);
      }
    } else {
      diffs = (await this.pathTo(v, gid)).diffs;
    }
    if (!diffs.length) return { applied: 0 };
    const applying = beginApplying(base, diffs);
    await v.setBase(applying);
    const sum = await applyWdiffs((await v.baseImage()).path, diffs.map((d) => v.diffPath(d.name)), {
      discard: this.options.discard ?? 'zero', fsyncIntervalBytes: this.options.fsyncIntervalBytes,
      onProgress: (addr, phase) => { if (phase === 'apply') r.progressLb = addr; },
    });
    const done = endApplying(applying, diffs);
    await v.setBase(done);
    await v.removeDiffs((await v.diffs()).filter((d) => d.snapE.gidB <= done.snapB.gidB).map((d) => d.name));
    return { applied: diffs.length, base: formatMetaState(done), bytesWritten: sum.bytesWritten };
  }

  private async mergeCmd(p: Params): Promise<unknown> {
    const v = this.vol(p);
    const gidB = p.u64('gidB');
    const maxBytes = p.has('maxSizeMb') ? p.u64('maxSizeMb') << 20n : undefined;
    const gidE = p.has('gidE') ? p.u64('gidE') : undefined;
    if ((maxBytes === undefined) === (gidE === undefined)) throw new BadRequestError('merge: give exactly one of maxSizeMb and gidE');
    const base = await v.base();
    // As the original (verifyNotApplying): the diffs an apply cut short needs stay as they are until an apply finishes it.
    if (base?.isApplying) throw new StateError(v.volId, await this.volumeState(v.volId), `merge: the base is ${formatMetaState(base)}; an apply is in progress, or was cut short and the next apply finishes it`);
    const chain = await v.chain();
    const i = chain.findIndex((d) => d.snapB.gidB === gidB);
    if (i < 0) throw new NotFoundError(`no diff of volume ${v.volId} starts at gid ${gidB}`);
    const sel: StoredDiff[] = [chain[i]];
    let acc: MetaDiff = chain[i];
    let size = chain[i].dataSize;
    for (let j = i + 1; j < chain.length; j++) {
      const d = chain[j];
      if (!canMerge(acc, d)) break;
      if (gidE !== undefined && d.snapE.gidB > gidE) break;
      if (maxBytes !== undefined && size + d.dataSize > maxBytes) break;
      sel.push(d);
      acc = mergeDiffs([acc, d]);
      size += d.dataSize;
    }
    if (sel.length < 2) throw new BadRequestError(`merge: fewer than 2 mergeable diffs from gid ${gidB}`);
    return this.startAction(v.volId, await this.volumeState(v.volId), 'Merge', `${sel.length} diffs from gid ${gidB}`, async () => {
      const tmp = join(v.tmpDir, `merge-${Date.now()}.wdiff`);
      try {
        await mergeWdiffs(sel.map((d) => v.diffPath(d.name)), tmp);
        const fh = await open(tmp, 'r+');
        try { await fh.sync(); } finally { await fh.close(); }
        const size2 = BigInt((await stat(tmp)).size);
        const name = await v.addDiff(tmp, { ...mergeDiffs(sel), dataSize: size2 });
        await v.removeDiffs(sel.map((d) => d.name));
        return { merged: sel.length, name };
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
    }, p.bool('wait'));
  }

  private async resizeCmd(p: Params): Promise<unknown> {
    const v = this.vol(p);
    const sizeLb = p.u64('sizeLb');
    return this.locked(p, async (vv, st) => {
      if (st !== 'Archived' && st !== 'Stopped') throw new StateError(vv.volId, st, 'resize needs Archived or Stopped');
      const info = await v.info();
      if (sizeLb < (info.sizeLb ?? 0n)) throw new BadRequestError(`resize: ${sizeLb} LB is smaller than the volume's ${info.sizeLb} (grow only)`);
      return this.startAction(v.volId, st, 'Resize', `${sizeLb} LB`, async () => {
        const base = await v.baseImage();
        if (base.isDevice) {
          const size = (await probeDevice(base.path)).sizeBytes;
          if (size < sizeLb * 512n) throw new BadRequestError(`resize: the base device ${base.path} has only ${size} bytes; grow it first`);
        } else await truncate(v.basePath, Number(sizeLb * 512n));
        await v.setInfo({ sizeLb });
        return { sizeLb };
      }, true);
    });
  }

  private async virtFullScan(p: Params): Promise<unknown> {
    const v = this.vol(p);
    const gid = p.u64('gid');
    // Refusals before the reply starts, so they come as the request's error; the chain and the
    // action are taken again when the first chunk is asked for.
    await this.pathTo(v, gid);
    this.checkAction(v.volId, 'VirtFullScan', await this.volumeState(v.volId));
    let n = 0;
    const image = this.readImage(v, gid, 'VirtFullScan');
    async function* chunks() {
      for await (const b of image) { n += b.byteLength; yield b; }
    }
    return new StreamReply(chunks(), () => ({ bytes: n }));
  }

  private async bhash(p: Params): Promise<unknown> {
    const v = this.vol(p);
    const gid = p.u64('gid');
    const h = createHash('sha256');
    let n = 0;
    for await (const b of this.readImage(v, gid, 'BlockHash', true)) { h.update(b); n += b.byteLength; }
    return { sha256: h.digest('hex'), bytes: n };
  }
}

function describeDiff(d: StoredDiff) {
  return { name: d.name, snapB: d.snapB, snapE: d.snapE, isMergeable: d.isMergeable, isCompDiff: d.isCompDiff, timestamp: d.timestamp, dataSize: d.dataSize, line: formatMetaDiff(d) };
}

function hex(b: Uint8Array | undefined): string | null {
  return b ? Buffer.from(b).toString('hex') : null;
}
