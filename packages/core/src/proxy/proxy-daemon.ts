/**
 * The proxy role (`walb-proxy`): receives wlogs from storages (every checksum verified on the
 * way), turns them into indexed wdiffs that are durable before the storage hears "ok", keeps one
 * send queue per archive (hard links of one file), merges small diffs before sending, and sends
 * with retry and backoff, reacting to each refusal as the original does.
 *
 * Folder: `<base>/<volId>/` holds `state`, `info` (uuid, size), `archives/<archId>.json`,
 * `sendto/<archId>/*.wdiff` and `tmp/`.
 *
 * @module
 */
import { link, mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { convertWlogs, mergeWdiffs, openWdiff, parseCompressOpt, type CompressOpt } from '@walbjs/diff';
import { uuidToHex } from '@walbjs/log-format';
import { Daemon, type DaemonOptions } from '../daemon/daemon.ts';
import type { Params } from '../daemon/params.ts';
import { makeDirDurable, readJson, syncDir, writeJsonAtomic } from '../daemon/store.ts';
import { BadRequestError, NotFoundError, RefusedError, RemoteError, StateError } from '../errors.ts';
import { createDiffFileName, isDiffFileName, parseDiffFileName } from '../diff-file-name.ts';
import { canMerge, formatMetaDiff, mergeDiffs, type MetaDiff } from '../meta.ts';
import { ProtocolConnection, type RequestContext } from '../protocol/connection.ts';
import { Semaphore } from '../daemon/semaphore.ts';

/** Options of the proxy daemon. */
export interface ProxyOptions extends DaemonOptions {
  /** Largest merged diff sent at once, in MiB (default 128, as `-wd`). */
  maxWdiffSendMb?: number;
  /** Most diffs merged into one send (default 1000, as `-wn`). */
  maxWdiffSendNr?: number;
  /** Give up on an archive that keeps failing after this many seconds (default 1800, as `-rto`); `too-new-diff` and `syncing` are retried for ever. */
  retryTimeoutSec?: number;
  /** First retry delay in ms (default 1000), doubling up to {@link maxRetryDelayMs}. */
  retryDelayMs?: number;
  /** Longest retry delay in ms (default 300 000). */
  maxRetryDelayMs?: number;
  /** wlog conversions at once, across all volumes (default 2); the rest wait their turn in arrival order. */
  maxConversions?: number;
  /** Memory a conversion may use (default 64 MiB). */
  conversionMemoryBytes?: number;
}

/** A destination archive of a volume. */
export interface ArchiveInfo {
  archId: string;
  host: string;
  port: number;
  /** Codec of the diffs sent (default snappy). */
  cmpr: string;
  /** Wait this many seconds after a diff arrives before sending it (default 0). */
  delaySec: number;
}

type ProxyState = 'Clear' | 'Stopped' | 'Started';

interface Sender {
  timer?: NodeJS.Timeout;
  running?: Promise<void>;
  delayMs: number;
  firstFailure?: number;
  error?: string;
  again?: boolean;
}

/**
 * The proxy daemon.
 *
 * @example
 * const p = await new ProxyDaemon({ baseDir: '/var/lib/walb-proxy', port: 10100 }).start();
 * await p.call('archive-info', { op: 'add', volId: 'vol0', archId: 'a0', addr: '127.0.0.1:10200' });
 * await p.call('start', { volId: 'vol0' });
 */
export class ProxyDaemon extends Daemon {
  readonly hostType = 'proxy' as const;
  private readonly senders = new Map<string, Sender>();
  private readonly conversions: Semaphore;
  /** The volumes a `stop empty` is draining (temporary state WaitForEmpty), by volume id. */
  private readonly emptying = new Map<string, EmptyWait>();

  constructor(readonly options: ProxyOptions) {
    super(options);
    this.conversions = new Semaphore(options.maxConversions ?? 2);
    const c = this.command.bind(this);
    const g = this.get.bind(this);
    c('archive-info', (p) => this.archiveInfo(p));
    c('start', (p) => this.locked(p, async (volId, st) => {
      if (st !== 'Stopped') throw new StateError(volId, st, 'start needs Stopped');
      await this.setState(volId, 'Started');
      for (const a of await this.archives(volId)) this.schedule(volId, a.archId, 0);
      return { state: 'Started' };
    }));
    c('stop', (p) => this.stopCmd(p));
    c('clear-vol', (p) => this.locked(p, async (volId, st) => {
      if (st !== 'Stopped') throw new StateError(volId, st, 'clear-vol needs Stopped');
      await rm(this.dir(volId), { recursive: true, force: true });
      return { state: 'Clear' };
    }));
    c('resize', (p) => this.locked(p, async (volId, st) => {
      if (st === 'Clear') throw new StateError(volId, st, 'no such volume');
      const sizeLb = p.u64('sizeLb');
      await writeJsonAtomic(join(this.dir(volId), 'info'), { ...(await this.info(volId)), sizeLb });
      return { sizeLb };
    }));
    c('kick', async (p) => {
      const vols = p.has('volId') ? [p.volId()] : await this.volumes();
      for (const v of vols) {
        if ((await this.state(v)) !== 'Started') continue;
        for (const a of await this.archives(v)) if (!p.has('archId') || a.archId === p.archiveId()) this.schedule(v, a.archId, 0, true);
      }
      return { kicked: vols };
    });
    c('wlog-transfer', (p, ctx) => this.wlogTransfer(p, ctx));
    g('is-wdiff-send-error', (p) => Boolean(this.senders.get(key(p.volId(), p.archiveId()))?.error));
    g('wdiff-send-error', (p) => this.senders.get(key(p.volId(), p.archiveId()))?.error ?? null);
    g('proxy-diff', async (p) => {
      const volId = p.volId();
      const archs = p.has('archId') ? [p.archiveId()] : (await this.archives(volId)).map((a) => a.archId);
      const out: Record<string, unknown[]> = {};
      for (const a of archs) out[a] = (await this.queue(volId, a)).map((d) => ({ name: d.name, line: formatMetaDiff(d), dataSize: d.dataSize }));
      return out;
    });
    g('archive-info', async (p) => this.archives(p.volId()));
  }

  private dir(volId: string): string { return join(this.options.baseDir, volId); }
  private sendDir(volId: string, archId: string): string { return join(this.dir(volId), 'sendto', archId); }

  async volumes(): Promise<string[]> {
    const names = await readdir(this.options.baseDir).catch(() => [] as string[]);
    return names.filter((n) => /^[0-9A-Za-z-]{1,64}$/.test(n)).sort();
  }

  private async state(volId: string): Promise<ProxyState> {
    const s = await readJson<{ state: ProxyState }>(join(this.dir(volId), 'state'));
    return s?.state ?? 'Clear';
  }

  async volumeState(volId: string): Promise<string> {
    return this.emptying.has(volId) ? 'WaitForEmpty' : await this.state(volId);
  }

  private async setState(volId: string, state: ProxyState): Promise<void> {
    await writeJsonAtomic(join(this.dir(volId), 'state'), { state });
  }

  private async info(volId: string): Promise<{ uuid?: Buffer; sizeLb?: bigint }> {
    return (await readJson(join(this.dir(volId), 'info'))) ?? {};
  }

  /** Run `f` under the volume's lock with the state it reports (WaitForEmpty while draining, so a refusal names it). */
  private locked<T>(p: Params, f: (volId: string, st: ProxyState | 'WaitForEmpty') => Promise<T>): Promise<T> {
    const volId = p.volId();
    return this.locks.run(volId, async () => f(volId, this.emptying.has(volId) ? 'WaitForEmpty' : await this.state(volId)));
  }

  /** The archives of a volume. */
  async archives(volId: string): Promise<ArchiveInfo[]> {
    const d = join(this.dir(volId), 'archives');
    const out: ArchiveInfo[] = [];
    for (const n of (await readdir(d).catch(() => [] as string[])).sort()) {
      if (!n.endsWith('.json')) continue;
      const a = await readJson<ArchiveInfo>(join(d, n));
      if (a) out.push(a);
    }
    return out;
  }

  /** The diffs waiting for an archive, oldest first. */
  private async queue(volId: string, archId: string): Promise<Array<MetaDiff & { name: string }>> {
    const d = this.sendDir(volId, archId);
    const out: Array<MetaDiff & { name: string }> = [];
    for (const n of await readdir(d).catch(() => [] as string[])) {
      if (!isDiffFileName(n)) continue;
      // A name listed a moment ago may be gone now (sent, dropped, or replaced by a resend).
      const st = await stat(join(d, n)).catch((e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return undefined; throw e; });
      if (st) out.push({ ...parseDiffFileName(n, BigInt(st.size)), name: n });
    }
    return out.sort((a, b) => (a.snapB.gidB < b.snapB.gidB ? -1 : a.snapB.gidB > b.snapB.gidB ? 1 : a.snapE.gidB < b.snapE.gidB ? -1 : 1));
  }

  protected async status(volId?: string): Promise<unknown> {
    if (volId === undefined) {
      const vols = await this.volumes();
      return { hostType: this.hostType, nodeId: this.nodeId, volumes: await Promise.all(vols.map(async (v) => ({ volId: v, state: await this.volumeState(v) }))) };
    }
    const archives = await this.archives(volId);
    return {
      volId, state: await this.volumeState(volId), sizeLb: (await this.info(volId)).sizeLb ?? 0n,
      archives: await Promise.all(archives.map(async (a) => ({ ...a, queued: (await this.queue(volId, a.archId)).length, error: this.senders.get(key(volId, a.archId))?.error ?? null }))),
    };
  }

  protected async recover(): Promise<void> {
    for (const volId of await this.volumes()) {
      await rm(join(this.dir(volId), 'tmp'), { recursive: true, force: true });
      await mkdir(join(this.dir(volId), 'tmp'), { recursive: true });
      if ((await this.state(volId)) === 'Started') for (const a of await this.archives(volId)) this.schedule(volId, a.archId, 0);
    }
  }

  protected async halt(mode: 'graceful' | 'force'): Promise<void> {
    for (const w of this.emptying.values()) w.cancel('was cancelled: the daemon is stopping');
    for (const s of this.senders.values()) clearTimeout(s.timer);
    if (mode === 'graceful') await Promise.allSettled([...this.senders.values()].map((s) => s.running));
  }

  private async archiveInfo(p: Params): Promise<unknown> {
    const op = p.oneOf('op', ['add', 'update', 'delete', 'list', 'get'] as const);
    const volId = p.volId();
    if (op === 'list') return this.archives(volId);
    const archId = p.archiveId();
    const file = join(this.dir(volId), 'archives', `${archId}.json`);
    if (op === 'get') {
      const a = await readJson<ArchiveInfo>(file);
      if (!a) throw new NotFoundError(`volume ${volId} has no archive ${archId}`);
      return a;
    }
    return this.locks.run(volId, async () => {
      const st = await this.volumeState(volId);
      if (op === 'delete') {
        if (st !== 'Stopped') throw new StateError(volId, st, 'archive-info delete needs Stopped');
        await rm(file, { force: true });
        await rm(this.sendDir(volId, archId), { recursive: true, force: true });
        this.senders.delete(key(volId, archId));
        if (!(await this.archives(volId)).length) { await rm(this.dir(volId), { recursive: true, force: true }); return { state: 'Clear' }; }
        return { state: 'Stopped' };
      }
      if (st !== 'Clear' && st !== 'Stopped') throw new StateError(volId, st, `archive-info ${op} needs Clear or Stopped`);
      const exists = (await readJson(file)) !== undefined;
      if (op === 'add' && exists) throw new StateError(volId, st, `archive ${archId} is already there (use update)`);
      if (op === 'update' && !exists) throw new NotFoundError(`volume ${volId} has no archive ${archId}`);
      const addr = p.str('addr', 300);
      const m = /^(.+):(\d{1,5})$/.exec(addr);
      if (!m || Number(m[2]) > 65535) throw new BadRequestError(`archive-info: addr ${JSON.stringify(addr)} is not host:port`);
      const cmpr = p.optStr('cmpr', 40) ?? 'snappy:0';
      try { parseCompressOpt(cmpr); } catch (e) { throw new BadRequestError(`archive-info: cmpr: ${(e as Error).message}`); }
      const a: ArchiveInfo = { archId, host: m[1], port: Number(m[2]), cmpr, delaySec: p.int('delaySec', 86400 * 365, 0) };
      if (st === 'Clear') {
        await makeDirDurable(this.dir(volId));
        await mkdir(join(this.dir(volId), 'tmp'), { recursive: true });
        await this.setState(volId, 'Stopped');
      }
      await mkdir(join(this.dir(volId), 'archives'), { recursive: true });
      await mkdir(this.sendDir(volId, archId), { recursive: true });
      await writeJsonAtomic(file, a);
      return { state: 'Stopped', archive: a };
    });
  }

  private async stopCmd(p: Params): Promise<unknown> {
    const volId = p.volId();
    const mode = p.oneOf('mode', ['graceful', 'force', 'empty'] as const, 'graceful');
    if (mode === 'empty') return this.stopEmpty(volId);
    return this.locks.run(volId, async () => {
      const w = this.emptying.get(volId);
      if (w) {
        // As the original, a second stop does not pile onto a draining one; but force must be able
        // to end a drain that cannot finish (an archive that is down), or the volume stays stuck.
        if (mode !== 'force') throw new StateError(volId, 'WaitForEmpty', 'a stop empty is draining the queues; stop force cancels it');
        w.cancel('was cancelled by stop force');
      }
      const st = await this.state(volId);
      if (st !== 'Started') throw new StateError(volId, st, 'stop needs Started');
      return this.stopNow(volId, mode);
    });
  }

  /** Started → Stopped; the caller holds the volume lock. */
  private async stopNow(volId: string, mode: 'graceful' | 'force' | 'empty'): Promise<{ state: 'Stopped' }> {
    await this.setState(volId, 'Stopped');
    for (const a of await this.archives(volId)) {
      const s = this.senders.get(key(volId, a.archId));
      if (s) { clearTimeout(s.timer); s.timer = undefined; if (mode !== 'force') await s.running; }
    }
    return { state: 'Stopped' };
  }

  /**
   * `stop empty`: Started -[WaitForEmpty]-> Stopped once every send queue is empty. The volume stays
   * Started on disk meanwhile (a restart resumes sending); wlogs are refused. It fails, back to
   * Started, when a sender gives up; `stop force` or the daemon stopping cancels it.
   */
  private async stopEmpty(volId: string): Promise<unknown> {
    const w = await this.locks.run(volId, async () => {
      if (this.emptying.has(volId)) throw new StateError(volId, 'WaitForEmpty', 'a stop empty is already draining the queues');
      const st = await this.state(volId);
      if (st !== 'Started') throw new StateError(volId, st, 'stop needs Started');
      const wait = new EmptyWait(() => { if (this.emptying.get(volId) === wait) this.emptying.delete(volId); });
      this.emptying.set(volId, wait);
      return wait;
    });
    try {
      for (const a of await this.archives(volId)) this.schedule(volId, a.archId, 0, true);
      for (;;) {
        if (!(await this.drainStep(volId, w))) {
          // Checked again under the lock, where no command can change the volume in between.
          const done = await this.locks.run(volId, async () => {
            if (await this.drainStep(volId, w)) return undefined;
            w.end();
            return this.stopNow(volId, 'empty');
          });
          if (done) return done;
        }
        await w.sleep(100);
      }
    } catch (e) {
      w.end();
      throw e;
    }
  }

  /**
   * One look at the queues of a draining volume: true while diffs are left. Restarts a sender that
   * is idle with diffs queued; one waiting out its backoff is left alone.
   *
   * @throws {@link StateError} when the drain was cancelled or a sender with diffs left gave up
   */
  private async drainStep(volId: string, w: EmptyWait): Promise<boolean> {
    if (w.cancelled !== undefined) throw new StateError(volId, await this.volumeState(volId), `stop empty ${w.cancelled} before the queues drained`);
    let left = 0;
    for (const a of await this.archives(volId)) {
      const q = await this.queue(volId, a.archId);
      if (!q.length) continue;
      left += q.length;
      const s = this.senders.get(key(volId, a.archId));
      if (s?.error) throw new StateError(volId, 'WaitForEmpty', `archive ${a.archId} cannot be sent to: ${s.error}`);
      if (!s || (!s.running && !s.timer)) this.schedule(volId, a.archId, 0);
    }
    return left > 0;
  }

  // -- receiving wlogs ---------------------------------------------------------------------------

  private async wlogTransfer(p: Params, ctx: RequestContext): Promise<unknown> {
    const volId = p.volId();
    const uuid = p.uuid('uuid');
    const sizeLb = p.u64('sizeLb');
    const lsidB = p.u64('lsidB');
    const lsidE = p.u64('lsidE');
    const diff = p.diff('diff');
    if (!ctx.upload) throw new BadRequestError('wlog-transfer: the wlog must follow as an upload');
    if (lsidE < lsidB) throw new BadRequestError(`wlog-transfer: lsidE ${lsidE} < lsidB ${lsidB}`);
    const st = await this.volumeState(volId);
    if (st !== 'Started') throw new RefusedError('not-started', `volume ${volId} is ${st}`);
    const archives = await this.archives(volId);
    const release = await this.conversions.acquire();
    const tmp = join(this.dir(volId), 'tmp', `recv-${lsidB}-${Date.now()}.wdiff`);
    try {
      const r = await convertWlogs([ctx.upload], tmp, { indexed: true, memoryBytes: this.options.conversionMemoryBytes ?? 64 << 20, tmpDir: join(this.dir(volId), 'tmp') });
      if (!Buffer.from(r.uuid).equals(uuid)) throw new BadRequestError(`wlog-transfer: the wlog's uuid ${uuidToHex(r.uuid)} is not the announced ${uuid.toString('hex')}`);
      if (r.beginLsid !== lsidB || r.endLsid !== lsidE) throw new BadRequestError(`wlog-transfer: the wlog covers lsids ${r.beginLsid}..${r.endLsid}, announced ${lsidB}..${lsidE}`);
      const fh = await open(tmp, 'r+');
      try { await fh.sync(); } finally { await fh.close(); }
      const size = BigInt((await stat(tmp)).size);
      const name = createDiffFileName({ ...diff, dataSize: size });
      await this.locks.run(volId, async () => {
        // A stop empty that began while this wlog was converted must not get a diff after it drained.
        if (this.emptying.has(volId)) throw new RefusedError('not-started', `volume ${volId} is WaitForEmpty`);
        const info = await this.info(volId);
        if (!info.uuid || !Buffer.from(info.uuid).equals(uuid) || info.sizeLb !== sizeLb) await writeJsonAtomic(join(this.dir(volId), 'info'), { uuid, sizeLb });
        for (const a of archives) {
          const dst = join(this.sendDir(volId, a.archId), name);
          await rm(dst, { force: true }); // a storage resending after a lost "ok": same range, same bytes
          await link(tmp, dst);
          await syncDir(this.sendDir(volId, a.archId));
        }
      });
      this.log.log('info', 'wlog-received', { volId, lsidB, lsidE, name, bytes: Number(size) });
      for (const a of archives) this.schedule(volId, a.archId, a.delaySec * 1000);
      return { name };
    } finally {
      release();
      await rm(tmp, { force: true });
    }
  }

  // -- sending wdiffs --------------------------------------------------------------------------

  private schedule(volId: string, archId: string, delayMs: number, resetBackoff = false): void {
    const k = key(volId, archId);
    let s = this.senders.get(k);
    if (!s) { s = { delayMs: this.options.retryDelayMs ?? 1000 }; this.senders.set(k, s); }
    if (resetBackoff) { s.delayMs = this.options.retryDelayMs ?? 1000; s.error = undefined; s.firstFailure = undefined; }
    if (this.stopping) return;
    if (s.running) { s.again = true; return; }
    clearTimeout(s.timer);
    const sender = s;
    s.timer = setTimeout(() => {
      sender.timer = undefined;
      // Nothing awaits a background send: every failure must end here, or Node ends the process.
      sender.running = this.sendOnce(volId, archId, sender).catch((e: unknown) => this.sendFailed(volId, archId, sender, e)).finally(() => {
        sender.running = undefined;
        if (sender.again) { sender.again = false; this.schedule(volId, archId, 0); }
      });
    }, delayMs);
    s.timer.unref?.();
  }

  private async sendOnce(volId: string, archId: string, s: Sender): Promise<void> {
    // A draining volume (WaitForEmpty) is still Started on disk.
    if ((await this.state(volId)) !== 'Started') return;
    const a = (await this.archives(volId)).find((x) => x.archId === archId);
    if (!a) return;
    const q = await this.queue(volId, archId);
    if (!q.length) return;
    const dir = this.sendDir(volId, archId);
    // The first run of mergeable diffs of one uuid, within the size and count limits.
    const first = await openWdiff(join(dir, q[0].name));
    const uuid = Buffer.from(first.header.uuid);
    await first.close();
    const sel = [q[0]];
    let merged: MetaDiff = q[0];
    let size = q[0].dataSize;
    const maxBytes = BigInt(this.options.maxWdiffSendMb ?? 128) << 20n;
    for (let i = 1; i < q.length && sel.length < (this.options.maxWdiffSendNr ?? 1000); i++) {
      const d = q[i];
      if (!canMerge(merged, d) || size + d.dataSize > maxBytes) break;
      const h = await openWdiff(join(dir, d.name));
      const same = Buffer.from(h.header.uuid).equals(uuid);
      await h.close();
      if (!same) break;
      sel.push(d);
      merged = mergeDiffs([merged, d]);
      size += d.dataSize;
    }
    const meta = merged;
    let file = join(dir, sel[0].name);
    let tmp: string | undefined;
    try {
      if (sel.length > 1) {
        tmp = join(this.dir(volId), 'tmp', `send-${archId}-${Date.now()}.wdiff`);
        const cmpr: CompressOpt = parseCompressOpt(a.cmpr);
        await mergeWdiffs(sel.map((d) => join(dir, d.name)), tmp, { cmpr });
        file = tmp;
      }
      const info = await this.info(volId);
      const conn = await ProtocolConnection.connect({ host: a.host, port: a.port }, this.options.connection);
      try {
        await conn.upload('wdiff-transfer', { volId, uuid, sizeLb: info.sizeLb ?? 0n, diff: meta, hostType: 'proxy' }, createReadStream(file, { highWaterMark: 1 << 20 }), { timeoutMs: 600_000 });
      } finally {
        conn.close();
      }
      await this.dropSent(dir, sel);
      this.log.log('info', 'wdiff-sent', { volId, archId, diff: formatMetaDiff(meta), files: sel.length, bytes: size });
      s.delayMs = this.options.retryDelayMs ?? 1000;
      s.firstFailure = undefined;
      s.error = undefined;
      this.schedule(volId, archId, 0);
    } catch (e) {
      const reason = refusal(e);
      if (reason === 'different-uuid' || reason === 'too-old-diff') {
        this.log.log('warn', 'wdiff-dropped', { volId, archId, reason, diff: formatMetaDiff(meta) });
        await this.dropSent(dir, sel);
        this.schedule(volId, archId, 0);
        return;
      }
      if (reason === 'smaller-lv-size' || reason === 'archive-not-found') {
        s.error = (e as Error).message;
        this.log.log('error', 'wdiff-send-stopped', { volId, archId, error: e });
        return;
      }
      throw e;
    } finally {
      if (tmp) await rm(tmp, { force: true }).catch((e: unknown) => this.log.log('warn', 'tmp-not-removed', { volId, path: tmp, error: e }));
    }
  }

  /**
   * A send that failed, at any step: given up after `retryTimeoutSec` (except the refusals that are
   * retried for ever), else tried again after the backoff delay, which doubles.
   */
  private sendFailed(volId: string, archId: string, s: Sender, e: unknown): void {
    const reason = refusal(e);
    const now = Date.now();
    s.firstFailure ??= now;
    const forever = reason === 'too-new-diff' || reason === 'syncing';
    if (!forever && now - s.firstFailure > (this.options.retryTimeoutSec ?? 1800) * 1000) {
      s.error = e instanceof Error ? e.message : String(e);
      this.log.log('error', 'wdiff-send-gave-up', { volId, archId, error: e });
      return;
    }
    this.log.log('warn', 'wdiff-send-retry', { volId, archId, inMs: s.delayMs, error: e });
    const d = s.delayMs;
    s.delayMs = Math.min(s.delayMs * 2, this.options.maxRetryDelayMs ?? 300_000);
    setImmediate(() => this.schedule(volId, archId, d));
  }

  private async dropSent(dir: string, sel: Array<{ name: string }>): Promise<void> {
    for (const d of sel) await rm(join(dir, d.name), { force: true });
    await syncDir(dir);
  }
}

function key(volId: string, archId: string): string {
  return `${volId}/${archId}`;
}

/** The reason word of an archive's refusal (`too-new-diff`, …), if the failure is one. */
function refusal(e: unknown): string | undefined {
  return e instanceof RemoteError && e.remoteCode === 'ERR_WALB_REFUSED' ? e.message.replace(/^ERR_WALB_REFUSED: /, '').split(':')[0] : undefined;
}

/** A `stop empty` in progress: ended by the drain itself, or cancelled from outside. */
class EmptyWait {
  /** Why it was cancelled (a phrase after "stop empty"), once it was. */
  cancelled?: string;
  private wake?: () => void;

  /** @param onEnd - removes it from the daemon's table (called once or more) */
  constructor(private readonly onEnd: () => void) {}

  /** Stop waiting at once; the drain loop fails with `reason`. */
  cancel(reason: string): void {
    this.cancelled ??= reason;
    this.onEnd();
    this.wake?.();
  }

  /** The volume is no longer WaitForEmpty. */
  end(): void {
    this.onEnd();
  }

  /** Sleep `ms`, less if cancelled meanwhile. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(t); this.wake = undefined; resolve(); };
      const t = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
