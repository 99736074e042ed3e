// The capture path: fio 4 KiB random writes at queue depth 16 and 1 MiB sequential writes through
// the userspace capture device and through `nbdkit file` on identical fresh files of the same file
// system, side by side; and the file system's raw sequential write bandwidth. IOPS, MiB/s, p50/p99
// completion latency, ratios. WALB_BENCH_SECONDS sets each run's length (default 8).
//
// Page cache and writeback state sway these numbers a lot (a run that follows another inherits its
// dirty pages being written back), so every run starts from the same state: its files are new,
// the previous run's files are deleted and synced, and the page cache is dropped when this
// process may (root). The two sides run in the order A B B A and each reports its mean.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatLdev } from '@walbjs/log-format';
import { CaptureDevice } from '../src/index.ts';

const secs = Number(process.env.WALB_BENCH_SECONDS ?? 8);
const dir = join(process.cwd(), '.bench-tmp', 'capture');
mkdirSync(dir, { recursive: true });
const emit = (row: object) => console.log('BENCH ' + JSON.stringify(row));
const SIZE = 1 << 30;

function file(name: string, bytes: number): string {
  const p = join(dir, name);
  writeFileSync(p, '');
  truncateSync(p, bytes);
  return p;
}

/** Delete the previous run's files, write back what is dirty, drop clean pages when allowed. */
function settle(): void {
  for (const f of readdirSync(dir)) rmSync(join(dir, f), { force: true });
  execFileSync('sync');
  try { writeFileSync('/proc/sys/vm/drop_caches', '3'); } catch { /* not root: synced is the best we can do */ }
}

interface Result { iops: number; mibs: number; p50: number; p99: number }

function mean(rs: Result[]): Result {
  const m = (k: keyof Result) => rs.reduce((a, r) => a + r[k], 0) / rs.length;
  return { iops: m('iops'), mibs: m('mibs'), p50: m('p50'), p99: m('p99') };
}
function fio(target: string[], rw: string, bs: string, depth: number): Result {
  const out = execFileSync('fio', ['--name=b', ...target, `--rw=${rw}`, `--bs=${bs}`, `--iodepth=${depth}`, `--size=${SIZE}`,
    `--runtime=${secs}`, '--time_based', '--output-format=json', '--group_reporting'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const w = JSON.parse(out.slice(out.indexOf('{'))).jobs[0].write;
  const pct = w.clat_ns.percentile ?? {};
  return { iops: w.iops, mibs: w.bw_bytes / (1 << 20), p50: (pct['50.000000'] ?? 0) / 1000, p99: (pct['99.000000'] ?? 0) / 1000 };
}

async function viaCapture(rw: string, bs: string, depth: number): Promise<Result> {
  const l = file('ldev', 2 * 2 ** 30), d = file('ddev', SIZE);
  await formatLdev(l, d);
  const dev = await CaptureDevice.open(l, d);
  const sock = join(dir, `walb-${rw}.sock`);
  dev.serve({ unix: sock });
  // fio runs in a child process; the device serves on native threads while this one waits.
  const r = await new Promise<Result>((res, rej) => setImmediate(() => { try { res(fio(['--ioengine=nbd', `--uri=nbd+unix:///?socket=${sock}`], rw, bs, depth)); } catch (e) { rej(e); } }));
  // Let the log keep up: free it as a storage daemon would.
  await dev.close();
  return r;
}

async function viaNbdkit(rw: string, bs: string, depth: number): Promise<Result> {
  const d = file('nbdkit.img', SIZE);
  const sock = join(dir, `nbdkit-${rw}.sock`);
  rmSync(sock, { force: true });
  const p = spawn('nbdkit', ['--exit-with-parent', '-f', '-U', sock, 'file', `file=${d}`], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) { try { execFileSync('nbdinfo', ['--size', `nbd+unix:///?socket=${sock}`]); break; } catch { await new Promise((r) => setTimeout(r, 50)); } }
  try {
    return fio(['--ioengine=nbd', `--uri=nbd+unix:///?socket=${sock}`], rw, bs, depth);
  } finally {
    p.kill('SIGTERM');
  }
}

try {
  for (const [rw, bs, depth, label] of [['randwrite', '4k', 16, '4 KiB random writes, QD16'], ['write', '1M', 4, '1 MiB sequential writes']] as const) {
    const refs: Result[] = [], ourRuns: Result[] = [];
    for (const side of ['ref', 'ours', 'ours', 'ref']) {
      settle();
      if (side === 'ref') refs.push(await viaNbdkit(rw, bs, depth));
      else ourRuns.push(await viaCapture(rw, bs, depth));
    }
    const ref = mean(refs), ours = mean(ourRuns);
    const iopsGoal = rw === 'randwrite' ? '≥ 1× IOPS' : '';
    emit({ name: `capture: ${label}: IOPS`, value: ours.iops, unit: 'IOPS', reference: 'nbdkit file', refValue: ref.iops, ratio: ours.iops / ref.iops, goal: iopsGoal });
    emit({ name: `capture: ${label}: MiB/s`, value: ours.mibs, unit: 'MiB/s', reference: 'nbdkit file', refValue: ref.mibs, ratio: ours.mibs / ref.mibs });
    emit({ name: `capture: ${label}: p50 latency`, value: ours.p50, unit: 'µs', reference: 'nbdkit file', refValue: ref.p50, ratio: ours.p50 / ref.p50 });
    emit({ name: `capture: ${label}: p99 latency`, value: ours.p99, unit: 'µs', reference: 'nbdkit file', refValue: ref.p99, ratio: ours.p99 / ref.p99, goal: rw === 'randwrite' ? '≤ 1.5×' : '' });
    if (rw === 'write') {
      // The file system's raw write bandwidth, two ways: what reaches the storage (direct IO, 1 MiB
      // at queue depth 4, as the device's log writes) — the device writes every byte there at least
      // once (its log), so this is the bound the goal is against; and buffered writes ending with
      // one fsync, which over a run this long mostly measures page-cache copies.
      settle();
      const direct = fio(['--ioengine=libaio', '--direct=1', `--filename=${file('raw.img', SIZE)}`], 'write', '1M', 4);
      emit({ name: 'capture: 1 MiB sequential writes vs the file system\'s raw bandwidth', value: ours.mibs, unit: 'MiB/s', reference: 'fio direct IO on a file', refValue: direct.mibs, ratio: ours.mibs / direct.mibs, goal: '≥ 0.45×' });
      settle();
      const buffered = fio(['--ioengine=psync', `--filename=${file('raw.img', SIZE)}`, '--end_fsync=1'], 'write', '1M', 1);
      emit({ name: 'capture: 1 MiB sequential writes vs buffered writes on a file', value: ours.mibs, unit: 'MiB/s', reference: 'fio psync + end fsync', refValue: buffered.mibs, ratio: ours.mibs / buffered.mibs });
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
