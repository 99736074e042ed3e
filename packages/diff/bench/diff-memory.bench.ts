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

/** `n` IOs of 4 KiB (7 in 8 normal, the rest ALLZERO or DISCARD) from `addrOf(i)`. */
function makeIos(n: number, addrOf: (i: number) => number): DiffIo[] {
  const out: DiffIo[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const addr = addrOf(i);
    const k = rnd() & 7;
    out[i] = k === 0 ? { addr, blocks: IO_LB, kind: 'allzero' } : k === 1 ? { addr, blocks: IO_LB, kind: 'discard' } : { addr, blocks: IO_LB, kind: 'normal', data: { image, offsetLb: 0 } };
  }
  return out;
}

function bench(name: string, ios: DiffIo[], run: (mem: DiffMemory, ios: DiffIo[]) => void, note: string): DiffMemory {
  (globalThis as { gc?: () => void }).gc?.();
  const mem = new DiffMemory({ maxIoBlocks: 2048 });
  const t0 = process.hrtime.bigint();
  run(mem, ios);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const value = ios.length / secs;
  console.log(`BENCH ${JSON.stringify({ name, value, unit: 'ops/s', note: `${note}; ${ios.length} adds in ${secs.toFixed(2)} s, ${mem.size} IOs left` })}`);
  return mem;
}

const addAll = (mem: DiffMemory, ios: DiffIo[]) => {
  for (let i = 0; i < ios.length; i++) mem.add(ios[i]);
};

// Warm up the JIT on a small run.
{
  const warm = new DiffMemory({ maxIoBlocks: 2048 });
  for (const io of makeIos(200_000, () => rnd() % (1 << 20))) warm.add(io);
}

const SPACE = 2 ** 24; // 8 GiB volume
bench('DiffMemory.add random 4 KiB over 8 GiB', makeIos(OPS, () => rnd() % (SPACE - IO_LB)), addAll, 'random addresses, index grows to ~1.7M IOs');
bench('DiffMemory.add sequential 4 KiB', makeIos(OPS, (i) => i * IO_LB), addAll, 'ascending addresses');
bench('DiffMemory.add random 4 KiB over 512 MiB', makeIos(OPS, () => rnd() % (2 ** 20 - IO_LB)), addAll, 'dense overwrites: most adds trim 1-3 stored IOs');

// A 4-way merge of sorted inputs, fed in address order with their ages, draining as it goes.
{
  const K = 4;
  const per = Math.floor(OPS / K);
  const items: { io: DiffIo; age: number }[] = [];
  for (let k = 0; k < K; k++) {
    const addrs = Array.from({ length: per }, () => rnd() % (SPACE - IO_LB)).sort((a, b) => a - b);
    let last = -IO_LB;
    for (const a0 of addrs) {
      const a = Math.max(a0, last + IO_LB); // keep each input non-overlapping
      items.push({ io: { addr: a, blocks: IO_LB, kind: 'normal', data: { image, offsetLb: 0 } }, age: k + 1 });
      last = a;
    }
  }
  items.sort((x, y) => x.io.addr - y.io.addr);
  (globalThis as { gc?: () => void }).gc?.();
  const mem = new DiffMemory({ maxIoBlocks: 2048 });
  let emitted = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < items.length; i++) {
    mem.addAged(items[i].io, items[i].age);
    if ((i & 1023) === 1023) emitted += mem.takeBelow(items[i].io.addr).length;
  }
  emitted += mem.takeAll().length;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`BENCH ${JSON.stringify({ name: 'DiffMemory.addAged 4-way merge + takeBelow', value: items.length / secs, unit: 'ops/s', note: `${items.length} adds, ${emitted} IOs emitted in ${secs.toFixed(2)} s` })}`);
}

// Draining a large diff in 1024 steps.
{
  const mem = new DiffMemory({ maxIoBlocks: 2048 });
  for (const io of makeIos(OPS, () => rnd() % (SPACE - IO_LB))) mem.add(io);
  const n = mem.size;
  const t0 = process.hrtime.bigint();
  let got = 0;
  for (let s = 1; s <= 1024; s++) got += mem.takeBelow((SPACE / 1024) * s).length;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (got < n) throw new Error(`drained ${got} of ${n}`);
  console.log(`BENCH ${JSON.stringify({ name: 'DiffMemory.takeBelow drain', value: got / secs, unit: 'ops/s', note: `${got} IOs in 1024 steps, ${secs.toFixed(2)} s` })}`);
}
