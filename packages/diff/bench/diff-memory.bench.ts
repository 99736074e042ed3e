// DiffMemory throughput: adds per second for random small writes over a large volume (the worst
// case: every add lands in a cold part of the index), for sequential writes, for heavily overlapping
// writes, for an age-ordered k-way merge fed in address order, and for draining with takeBelow.
// Size: WALB_BENCH_OPS (default 2,000,000 adds per case).
import { DiffMemory } from '../src/algo/diff-memory.ts';
import type { DiffImage, DiffIo } from '../src/algo/diff-io.ts';

const OPS = Number(process.env.WALB_BENCH_OPS ?? 2_000_000);
const IO_LB = 8; // 4 KiB writes

// One shared 4 KiB image: normal IOs are windows into their own image, which the bench need not
// allocate 2M times.
const image: DiffImage = { stored: Buffer.alloc(IO_LB * 512), cmpr: 0, blocks: IO_LB };

let seed = 0x9e3779b9;
function rnd(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}

/**
 * A workload of `n` 4 KiB IOs (7 in 8 normal, the rest ALLZERO or DISCARD) from `addrOf(i)`, kept
 * as numbers: each IO object is made just before it is added, as a reader would hand it over.
 */
interface Workload {
  addrs: Float64Array;
  kinds: Uint8Array;
  ages: Float64Array;
}

function workload(n: number, addrOf: (i: number) => number): Workload {
  const w: Workload = { addrs: new Float64Array(n), kinds: new Uint8Array(n), ages: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    w.addrs[i] = addrOf(i);
    w.kinds[i] = rnd() & 7;
  }
  return w;
}

function ioOf(w: Workload, i: number): DiffIo {
  const addr = w.addrs[i];
  const k = w.kinds[i];
  if (k === 0) return { addr, blocks: IO_LB, kind: 'allzero' };
  if (k === 1) return { addr, blocks: IO_LB, kind: 'discard' };
  return { addr, blocks: IO_LB, kind: 'normal', data: { image, offsetLb: 0 } };
}

function report(name: string, ops: number, secs: number, note: string): void {
  console.log(`BENCH ${JSON.stringify({ name, value: ops / secs, unit: 'ops/s', note: `${note}; ${ops} ops in ${secs.toFixed(2)} s` })}`);
}

function benchAdds(name: string, w: Workload, note: string): void {
  (globalThis as { gc?: () => void }).gc?.();
  const mem = new DiffMemory({ maxIoBlocks: 2048 });
  const n = w.addrs.length;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) mem.add(ioOf(w, i));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  report(name, n, secs, `${note}, ${mem.size} IOs at the end`);
}

// Warm up the JIT on a small run.
{
  const warm = new DiffMemory({ maxIoBlocks: 2048 });
  const w = workload(200_000, () => rnd() % (1 << 20));
  for (let i = 0; i < w.addrs.length; i++) warm.add(ioOf(w, i));
  warm.takeBelow(1 << 19);
  warm.takeAll();
}

const SPACE = 2 ** 24; // 8 GiB volume
benchAdds('DiffMemory.add random 4 KiB over 8 GiB', workload(OPS, () => rnd() % (SPACE - IO_LB)), 'random addresses');
benchAdds('DiffMemory.add sequential 4 KiB', workload(OPS, (i) => i * IO_LB), 'ascending addresses');
benchAdds('DiffMemory.add random 4 KiB over 512 MiB', workload(OPS, () => rnd() % (2 ** 20 - IO_LB)), 'dense overwrites: most adds trim 1-3 stored IOs');

// A 4-way merge of sorted inputs, fed in address order with their ages, emitting as it goes (the
// emitted IOs are made as objects: that is part of the cost).
{
  const K = 4;
  const per = Math.floor(OPS / K);
  const recs: [number, number][] = [];
  for (let k = 0; k < K; k++) {
    const addrs = Array.from({ length: per }, () => rnd() % (SPACE - IO_LB)).sort((a, b) => a - b);
    let last = -IO_LB;
    for (const a0 of addrs) {
      const a = Math.max(a0, last + IO_LB); // keep each input non-overlapping
      recs.push([a, k + 1]);
      last = a;
    }
  }
  recs.sort((x, y) => x[0] - y[0]);
  const w = workload(recs.length, (i) => recs[i][0]);
  for (let i = 0; i < recs.length; i++) w.ages[i] = recs[i][1];
  (globalThis as { gc?: () => void }).gc?.();
  const mem = new DiffMemory({ maxIoBlocks: 2048 });
  let emitted = 0;
  const n = recs.length;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    mem.addAged(ioOf(w, i), w.ages[i]);
    if ((i & 1023) === 1023) emitted += mem.takeBelow(w.addrs[i]).length;
  }
  emitted += mem.takeAll().length;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  report('DiffMemory.addAged 4-way merge + takeBelow', n, secs, `adds, ${emitted} IOs emitted`);
}

// Draining a large diff in 1024 steps.
{
  const mem = new DiffMemory({ maxIoBlocks: 2048 });
  const w = workload(OPS, () => rnd() % (SPACE - IO_LB));
  for (let i = 0; i < OPS; i++) mem.add(ioOf(w, i));
  const n = mem.size;
  const t0 = process.hrtime.bigint();
  let got = 0;
  for (let s = 1; s <= 1024; s++) got += mem.takeBelow((SPACE / 1024) * s).length;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (got < n) throw new Error(`drained ${got} of ${n}`);
  report('DiffMemory.takeBelow drain', got, secs, 'IOs emitted, in 1024 steps');
}
