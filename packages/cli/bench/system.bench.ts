// End to end under a steady write load: fio writes through the userspace device hosted by
// walb-storage (separate processes: storage, proxy, archive on loopback) while a snapshot is taken
// every half second. Reports the MiB/s of writes captured and made restorable on the archive
// (against fio through `nbdkit file` on the same file system, which logs and ships nothing), the lag
// from a snapshot (every write acknowledged before it) to its being restorable, and each daemon's
// peak RSS. WALB_BENCH_SECONDS sets the load's length (default 8).
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Controller, createUserspaceDevice } from '@walbjs/core';
import { startCluster } from '../src/demo/cluster.ts';

const run = promisify(execFile);
const secs = Number(process.env.WALB_BENCH_SECONDS ?? 8);
const dir = join(process.cwd(), '.bench-tmp', 'system');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const emit = (row: object) => console.log('BENCH ' + JSON.stringify(row));
const SIZE = 1 << 30;
const fioArgs = (uri: string) => ['--name=load', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=256k', '--iodepth=8', `--size=${SIZE}`,
  `--runtime=${secs}`, '--time_based', '--output-format=json'];
const written = (out: string) => (JSON.parse(out.slice(out.indexOf('{'))).jobs[0].write.io_bytes as number);
const hwm = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

// Reference: the same load through nbdkit's file plugin.
const refFile = join(dir, 'ref.img');
writeFileSync(refFile, ''); truncateSync(refFile, SIZE);
const refSock = join(dir, 'nbdkit.sock');
const nbdkit = spawn('nbdkit', ['-f', '-U', refSock, 'file', refFile], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
const refBytes = written((await run('fio', fioArgs(`nbd+unix:///?socket=${refSock}`), { maxBuffer: 1 << 26 })).stdout);
nbdkit.kill();
rmSync(refFile);
const refMibs = refBytes / (1 << 20) / secs;

const devDir = join(dir, 'dev0');
// The log must hold what the load writes while the pipeline catches up: a load faster than the
// pipeline for longer than the log lasts overflows it, which stops the volume until a resync (as
// the kernel driver's). The device takes at most about what nbdkit took, so twice that is room enough
// (a sparse file: only what the load writes takes disk space).
const logBytes = BigInt(Math.max(1 << 30, Math.ceil((2 * refBytes) / (1 << 30)) * (1 << 30)));
await createUserspaceDevice(devDir, { sizeBytes: BigInt(SIZE), logBytes });
const cl = await startCluster({ workDir: dir });
const c = new Controller({ pollMs: 20, timeoutMs: 60_000 });
try {
  const [sx, px, ax] = [cl.storage.address, cl.proxy.address, cl.archive.address];
  await c.initStorage(sx, 'v', devDir);
  await c.fullBackup(sx, [px], ax, 'v', { timeoutMs: 600_000 });
  const uri = `nbd+unix:///?socket=${join(devDir, 'nbd.sock')}`;
  const t0 = Date.now();
  const load = run('fio', fioArgs(uri), { maxBuffer: 1 << 26 });
  let loadDone = false;
  void load.finally(() => { loadDone = true; });
  const snaps: Array<{ gid: bigint; at: number }> = [];
  const lags: number[] = [];
  const restorable = new Set<bigint>();
  const poll = async () => {
    for (const r of await c.getRestorable(ax, 'v', true)) {
      if (restorable.has(r.gid)) continue;
      restorable.add(r.gid);
      const s = snaps.find((x) => x.gid === r.gid);
      if (s) lags.push(Date.now() - s.at);
    }
  };
  while (!loadDone) {
    const at = Date.now();
    snaps.push({ gid: ((await c.request(sx, 'snapshot', { volId: 'v' })) as { gid: bigint }).gid, at });
    await poll();
    await new Promise((r) => setTimeout(r, 500));
  }
  const bytes = written((await load).stdout);
  const last = ((await c.request(sx, 'snapshot', { volId: 'v' })) as { gid: bigint }).gid;
  snaps.push({ gid: last, at: Date.now() });
  while (!restorable.has(last)) { await poll(); await new Promise((r) => setTimeout(r, 20)); }
  const total = (Date.now() - t0) / 1000;
  const mibs = bytes / (1 << 20) / total;
  lags.sort((a, b) => a - b);
  const pct = (p: number) => lags[Math.min(lags.length - 1, Math.floor(p * lags.length))];
  emit({ name: 'system: 256 KiB random writes captured and restorable on the archive', value: mibs, unit: 'MiB/s', reference: 'fio via nbdkit file', refValue: refMibs, ratio: mibs / refMibs, note: `${(bytes / (1 << 20)).toFixed(0)} MiB in ${total.toFixed(1)} s` });
  emit({ name: 'system: lag from snapshot to restorable, p50', value: pct(0.5), unit: 'ms' });
  emit({ name: 'system: lag from snapshot to restorable, p99', value: pct(0.99), unit: 'ms', note: `${lags.length} snapshots` });
  for (const d of [cl.storage, cl.proxy, cl.archive]) emit({ name: `system: walb-${d.kind} peak RSS`, value: hwm(d.child.pid!), unit: 'MiB' });
} finally {
  await cl.stop();
  rmSync(dir, { recursive: true, force: true });
}
