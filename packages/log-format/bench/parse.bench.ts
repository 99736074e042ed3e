// Parse and verify every checksum of a generated 512 MiB wlog, against a plain read of the same
// file with the same I/O (8 MiB reads, warm page cache). Each phase runs in a child process of its
// own, so its peak RSS is its own. Size: WALB_BENCH_MIB (default 512).
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WlogReader, checksum, writeGeneratedWlog } from '../src/index.ts';

const self = fileURLToPath(import.meta.url);
const [phase, file] = process.argv.slice(2);

async function plainRead(path: string): Promise<number> {
  const fh = await open(path, 'r');
  let n = 0;
  try {
    for (;;) {
      const buf = Buffer.allocUnsafeSlow(8 << 20);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (!bytesRead) break;
      n += bytesRead;
    }
  } finally { await fh.close(); }
  return n;
}

async function parse(path: string): Promise<number> {
  const r = await WlogReader.open(path);
  let n = 0;
  for await (const p of r) n += p.header.records.length;
  return n;
}

if (phase) {
  const t0 = process.hrtime.bigint();
  if (phase === 'read') await plainRead(file);
  else if (phase === 'parse') await parse(file);
  else if (phase === 'checksum') {
    const b = Buffer.alloc(256 << 20, 7);
    for (let o = 0; o < 64 << 20; o += 1 << 20) checksum(b.subarray(o, o + (1 << 20)), 1); // warm up the JIT
    const t1 = process.hrtime.bigint();
    checksum(b, 1);
    const secs = Number(process.hrtime.bigint() - t1) / 1e9;
    const dst = Buffer.alloc(b.length, 1);
    const t2 = process.hrtime.bigint();
    b.copy(dst);
    const copy = Number(process.hrtime.bigint() - t2) / 1e9;
    console.log(JSON.stringify({ secs, copy, rss: process.resourceUsage().maxRSS * 1024 }));
    process.exit(0);
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ secs, rss: process.resourceUsage().maxRSS * 1024 }));
  process.exit(0);
}

function run(ph: string, f = ''): { secs: number; rss: number; copy?: number } {
  const r = spawnSync(process.execPath, ['--conditions=walb-source', '--import', 'tsx', self, ph, f], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${ph} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

const mib = Number(process.env.WALB_BENCH_MIB ?? 512);
const dir = join(process.cwd(), '.bench-tmp');
mkdirSync(dir, { recursive: true });
const emit = (row: object) => console.log('BENCH ' + JSON.stringify(row));
try {
  for (const pbs of [4096, 512]) {
    const path = join(dir, `gen-${pbs}.wlog`);
    process.stderr.write(`  generating ${mib} MiB wlog (pbs ${pbs}) …\n`);
    await writeGeneratedWlog(path, { seed: 1, pbs, totalBytes: mib << 20, deviceBytes: 4 * 2 ** 30, maxIoBytes: 256 << 10 });
    const size = statSync(path).size / (1 << 20);
    run('read', path); // warm the page cache
    let read = Infinity, parsed = Infinity, rss = 0;
    for (let i = 0; i < 3; i++) {
      read = Math.min(read, run('read', path).secs);
      const p = run('parse', path);
      parsed = Math.min(parsed, p.secs);
      rss = Math.max(rss, p.rss);
    }
    emit({ name: `log-format: plain read, ${size.toFixed(0)} MiB (pbs ${pbs})`, value: size / read, unit: 'MiB/s' });
    emit({ name: `log-format: parse + verify all checksums (pbs ${pbs})`, value: size / parsed, unit: 'MiB/s', reference: 'plain read', refValue: size / read, ratio: parsed / read, goal: 'ratio ≤ 2 (time)' });
    emit({ name: `log-format: parse peak RSS (pbs ${pbs})`, value: rss / (1 << 20), unit: 'MiB' });
    rmSync(path);
  }
  const c = run('checksum');
  emit({ name: 'log-format: checksum in memory (256 MiB)', value: 256 / c.secs, unit: 'MiB/s', reference: 'memcpy', refValue: 256 / c.copy!, ratio: c.secs / c.copy!, goal: 'ratio ≤ 2 (time)' });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
