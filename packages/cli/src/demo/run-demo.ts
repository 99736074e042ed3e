/**
 * The demo: block-level differential backup end to end, on this machine, with the daemons as
 * separate processes on loopback. A userspace walb device; storage, proxy and archive; init,
 * full backup, data, snapshot, more data, second snapshot; both snapshots restored and checked
 * byte for byte against what the device held, and (where root, FUSE and loop devices allow) as
 * an ext4 file system whose files are compared.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Controller, createUserspaceDevice } from '@walbjs/core';
import type { CliIo } from '../util/io.ts';
import { writeTo } from '../util/io.ts';
import { formatBytes } from '../util/parse.ts';
import { startProgress } from '../util/progress.ts';
import { startCluster, type Cluster } from './cluster.ts';
import {
  attachNbdDisk, changeFileSet, compareTrees, filesystemSupport, hashTree, makeExt4, mountFs, mountImageReadOnly,
  readImageNbd, unmountFs, writeBlocksNbd, writeFileSet, type AttachedDisk,
} from './fs-workload.ts';

const run = promisify(execFile);

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Data device size in bytes (default 256 MiB). */
  sizeBytes?: number;
  /** Log device size in bytes (default 128 MiB). */
  logBytes?: number;
  /** `filesystem` (ext4 through nbdfuse and a loop device), `block` (writes through an NBD client), or `auto` (default). */
  mode?: 'auto' | 'filesystem' | 'block';
  /** Keep the work folder (default: removed). */
  keep?: boolean;
  /** Work folder (default: a new temporary one). */
  workDir?: string;
  /** Seed of the data written (default 1). */
  seed?: number;
}

/** One checked fact of the demo. */
export interface DemoCheck { name: string; ok: boolean; detail: string }

/** What the demo did and found. */
export interface DemoResult {
  ok: boolean;
  mode: 'filesystem' | 'block';
  why?: string;
  snapshots: Array<{ gid: string; sha256: string; files?: number }>;
  checks: DemoCheck[];
  seconds: number;
  workDir: string;
}

async function fileSha(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const b of createReadStream(path, { highWaterMark: 4 << 20 })) h.update(b as Buffer);
  return h.digest('hex');
}

/**
 * Run the demo; narrates on `io.stderr` (steps) and returns the result. Never throws for a failed
 * check: the result says what failed; an error in a step is reported as a failed check.
 *
 * @example
 * const r = await runDemo(io, { mode: 'block' });
 * if (!r.ok) process.exitCode = 1;
 */
export async function runDemo(io: CliIo, opts: DemoOptions = {}, json = false): Promise<DemoResult> {
  const t0 = Date.now();
  const sizeBytes = opts.sizeBytes ?? 256 << 20;
  const logBytes = opts.logBytes ?? 128 << 20;
  const seed = opts.seed ?? 1;
  const work = opts.workDir ?? (await mkdtemp(join(tmpdir(), 'walbjs-demo-')));
  await mkdir(work, { recursive: true });
  const checks: DemoCheck[] = [];
  const snapshots: DemoResult['snapshots'] = [];
  let step = 0;
  const TOTAL = 9;
  const say = async (text: string) => { if (!json) await writeTo(io.stderr, text + '\n'); };
  const stepSay = (text: string) => say(`[${++step}/${TOTAL}] ${text}`);
  const check = async (name: string, ok: boolean, detail: string) => { checks.push({ name, ok, detail }); await say(`      ${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`); };

  let mode: 'filesystem' | 'block' = opts.mode === 'block' ? 'block' : 'filesystem';
  let why: string | undefined;
  if (opts.mode !== 'block') {
    const sup = await filesystemSupport();
    if (!sup.ok) {
      if (opts.mode === 'filesystem') throw new Error(`filesystem mode is not possible here: ${sup.why}`);
      mode = 'block';
      why = sup.why;
    }
  }
  const devDir = join(work, 'dev0');
  const sock = join(devDir, 'nbd.sock');
  const mnt = join(work, 'mnt');
  let cluster: Cluster | undefined;
  let disk: AttachedDisk | undefined;
  let mounted = false;
  const c = new Controller({ pollMs: 100, timeoutMs: 60_000 });
  const volId = 'vol0';
  try {
    await stepSay(`create a userspace walb device in ${devDir}: data ${formatBytes(sizeBytes)}, log ${formatBytes(logBytes)}`);
    await createUserspaceDevice(devDir, { sizeBytes: BigInt(sizeBytes), logBytes: BigInt(logBytes), name: 'demo' });

    await stepSay('start walb-storage, walb-proxy and walb-archive as separate processes on 127.0.0.1');
    cluster = await startCluster({ workDir: work });
    const at = (d: { address: { host: string; port: number } }) => `${d.address.host}:${d.address.port}`;
    await say(`      storage ${at(cluster.storage)} (pid ${cluster.storage.child.pid}), proxy ${at(cluster.proxy)} (pid ${cluster.proxy.child.pid}), archive ${at(cluster.archive)} (pid ${cluster.archive.child.pid}); logs in ${work}/*.log`);
    const sx = cluster.storage.address, px = cluster.proxy.address, ax = cluster.archive.address;

    await stepSay(`init-storage ${volId}: the storage hosts the device and serves it over NBD (nbd+unix:///?socket=${sock})`);
    await c.initStorage(sx, volId, devDir);

    if (mode === 'filesystem') {
      await say(`      mode: ext4 on the device through nbdfuse and a loop device`);
      disk = await attachNbdDisk(sock, work);
      await makeExt4(disk.device, { label: 'walbdemo' });
      await mkdir(mnt, { recursive: true });
      await mountFs(disk.device, mnt);
      mounted = true;
      await writeFileSet(mnt, seed, { files: 30, maxBytes: 1 << 20 });
    } else {
      await say(`      mode: block data through an NBD client (qemu-io)${why ? ` — no file system here: ${why}` : ''}`);
      await writeBlocksNbd(sock, seed, sizeBytes, { writes: 48 });
    }

    await stepSay('full backup: a dirty full copy of the device to the archive while the log keeps recording');
    const fullT = Date.now();
    const bar = json ? undefined : await startProgress(io, { label: '      copying', total: sizeBytes, json });
    const ticker = bar && setInterval(() => {
      void c.status(sx, volId).then((st) => bar.update(Number((st as { fullSyncBytes?: number | null }).fullSyncBytes ?? 0)), () => undefined);
    }, 200);
    let g0: bigint;
    try {
      g0 = await c.fullBackup(sx, [px], ax, volId, { timeoutMs: 600_000 });
    } finally {
      if (ticker) clearInterval(ticker);
      bar?.stop();
    }
    await check('full backup', true, `base restorable at gid ${g0} (${formatBytes(sizeBytes)} in ${((Date.now() - fullT) / 1000).toFixed(1)} s)`);

    /** Make the device consistent, snapshot it, and record what it held. */
    const takeSnapshot = async (label: string) => {
      let files: Map<string, string> | undefined;
      if (mode === 'filesystem') {
        await run('sync', ['-f', mnt]);
        await run('fsfreeze', ['-f', mnt]);
      }
      try {
        if (mode === 'filesystem') files = await hashTree(mnt);
        const { gid } = (await c.request(sx, 'snapshot', { volId })) as { gid: bigint };
        const img = join(work, `device-at-${gid}.img`);
        await readImageNbd(sock, img);
        const sha = await fileSha(img);
        await rm(img, { force: true });
        snapshots.push({ gid: gid.toString(), sha256: sha, files: files?.size });
        await say(`      snapshot ${label}: gid ${gid}, device sha256 ${sha.slice(0, 16)}…${files ? `, ${files.size} files` : ''}`);
        return { gid, sha, files };
      } finally {
        if (mode === 'filesystem') await run('fsfreeze', ['-u', mnt]);
      }
    };

    await stepSay('put data on the device and take snapshot 1');
    if (mode === 'filesystem') await changeFileSet(mnt, seed + 1, { maxBytes: 1 << 20 });
    else await writeBlocksNbd(sock, seed + 1, sizeBytes, { writes: 48 });
    const s1 = await takeSnapshot('1');
    await c.waitForRestorable(ax, volId, s1.gid, 600_000, [px]);
    await check('snapshot 1 reaches the archive', true, `gid ${s1.gid} is restorable`);

    await stepSay('change the data and take snapshot 2');
    if (mode === 'filesystem') await changeFileSet(mnt, seed + 2, { maxBytes: 1 << 20 });
    else await writeBlocksNbd(sock, seed + 2, sizeBytes, { writes: 48 });
    const s2 = await takeSnapshot('2');
    await c.waitForRestorable(ax, volId, s2.gid, 600_000, [px]);
    await check('snapshot 2 reaches the archive', true, `gid ${s2.gid} is restorable`);
    const restorable = await c.getRestorable(ax, volId);
    await say(`      restorable: ${restorable.map((r) => r.line).join(' | ')}`);

    await stepSay('restore both snapshots on the archive and compare them with the device, byte for byte');
    for (const s of [s1, s2]) {
      const path = await c.restore(ax, volId, s.gid, { timeoutMs: 600_000 });
      const sha = await fileSha(path);
      await check(`restore gid ${s.gid} equals the device at that snapshot`, sha === s.sha, `sha256 ${sha.slice(0, 16)}… ${sha === s.sha ? '=' : '≠'} ${s.sha.slice(0, 16)}…`);
      if (s.files) {
        const m = join(work, `restored-${s.gid}`);
        await mkdir(m, { recursive: true });
        const img = await mountImageReadOnly(path, m);
        try {
          const diff = compareTrees(s.files, await hashTree(m));
          await check(`files of restored gid ${s.gid}`, diff.length === 0, diff.length ? diff.slice(0, 5).join(', ') : `all ${s.files.size} files identical (ext4 mounted read-only)`);
        } finally {
          await img.unmount();
        }
      }
    }
    await check('the two snapshots differ', s1.sha !== s2.sha, 'each restore is its own point in time');

    await stepSay('apply snapshot 1 to the archive\'s base and restore snapshot 2 again from the new base');
    await c.apply(ax, volId, s1.gid);
    await c.delRestored(ax, volId, s2.gid);
    const again = await fileSha(await c.restore(ax, volId, s2.gid, { timeoutMs: 600_000 }));
    await check(`restore gid ${s2.gid} after apply`, again === s2.sha, `sha256 ${again.slice(0, 16)}…`);
  } catch (e) {
    await check('demo step', false, `${(e as Error).message}`);
  } finally {
    await stepSay('clean up');
    if (mounted) await unmountFs(mnt).catch((e) => check('unmount', false, (e as Error).message));
    if (disk) await disk.detach().catch((e) => check('detach', false, (e as Error).message));
    if (cluster) await cluster.stop().catch((e) => check('stop daemons', false, (e as Error).message));
    if (!opts.keep) await rm(work, { recursive: true, force: true });
    else await say(`      kept ${work}`);
  }
  const ok = checks.length > 0 && checks.every((x) => x.ok);
  const seconds = (Date.now() - t0) / 1000;
  await say(`\n${ok ? 'PASS' : 'FAIL'}: ${checks.filter((x) => x.ok).length} of ${checks.length} checks passed in ${seconds.toFixed(1)} s (${mode} mode)`);
  return { ok, mode, why, snapshots, checks, seconds, workDir: work };
}
