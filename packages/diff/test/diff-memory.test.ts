// DiffMemory (reference §4.7, walb-tools DiffMemory::add): overlap trimming, maxIoBlocks splitting,
// age-ordered adds for the merge, takeBelow, and the ordered index under it, against brute-force
// models.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { DiffMemory } from '../src/algo/diff-memory.ts';
import { type DiffImage, type DiffIo, type DiffIoKind, ioEnd, rawImage, sliceIo } from '../src/algo/diff-io.ts';
import { ValueOutOfRangeError } from '../src/errors.ts';

const LB = 512;
const KINDS: DiffIoKind[] = ['normal', 'allzero', 'discard'];

/** A raw image of `blocks` LB whose block b holds (src, b) in its first 8 bytes. */
function image(src: number, blocks: number): DiffImage {
  const buf = Buffer.alloc(blocks * LB);
  for (let b = 0; b < blocks; b++) {
    buf.writeUInt32LE(src, b * LB);
    buf.writeUInt32LE(b, b * LB + 4);
  }
  return rawImage(buf);
}

/** An IO of source `src`; a normal one gets its own image. */
function mk(src: number, addr: number, blocks: number, kind: DiffIoKind = 'normal'): DiffIo {
  if (kind !== 'normal') return { addr, blocks, kind };
  return { addr, blocks, kind, data: { image: image(src, blocks), offsetLb: 0 } };
}

/** (src, block) stored in block `b` of the window of a normal IO. */
function readBlock(io: DiffIo, b: number): [number, number] {
  const off = (io.data!.offsetLb + (b - io.addr)) * LB;
  return [io.data!.image.stored.readUInt32LE(off), io.data!.image.stored.readUInt32LE(off + 4)];
}

/** Compact view of an IO: [addr, blocks, kind, src, offsetLb] (src and offset of normal data, else -1). */
function view(io: DiffIo): [number, number, string, number, number] {
  if (io.kind !== 'normal') return [io.addr, io.blocks, io.kind, -1, -1];
  return [io.addr, io.blocks, io.kind, io.data!.image.stored.readUInt32LE(0), io.data!.offsetLb];
}

/** Block-level expansion of a set of IOs: per LB, 'kind' or 'normal:src:off'; undefined when absent. */
function expand(ios: Iterable<DiffIo>, space: number): (string | undefined)[] {
  const out: (string | undefined)[] = new Array(space).fill(undefined);
  for (const io of ios) {
    for (let b = io.addr; b < ioEnd(io); b++) {
      assert.is(out[b], undefined, `block ${b} covered twice`);
      if (io.kind === 'normal') {
        const [s, o] = readBlock(io, b);
        out[b] = `normal:${s}:${o}`;
      } else out[b] = io.kind;
    }
  }
  return out;
}

/** Sorted, non-overlapping, and consistent counters. */
function checkShape(mem: DiffMemory, maxIoBlocks: number): void {
  mem.checkInvariants();
  let prevEnd = -1;
  let n = 0;
  let blocks = 0;
  let normal = 0;
  for (const io of mem) {
    assert.ok(io.addr >= prevEnd, `sorted and non-overlapping at ${io.addr}`);
    assert.ok(io.blocks > 0);
    if (maxIoBlocks > 0) assert.ok(io.blocks <= maxIoBlocks, `io of ${io.blocks} LB > ${maxIoBlocks}`);
    if (io.kind === 'normal') {
      assert.ok(io.data !== undefined);
      assert.ok(io.data!.offsetLb + io.blocks <= io.data!.image.blocks);
      normal += io.blocks;
    } else assert.is(io.data, undefined);
    prevEnd = ioEnd(io);
    n++;
    blocks += io.blocks;
  }
  assert.is(mem.size, n);
  assert.is(mem.totalBlocks, blocks);
  assert.is(mem.normalBytes, normal * LB);
  assert.is(mem.isEmpty, n === 0);
}

/** walb-tools DiffMemory::add done naively on a list: old minus new, then new split from its start. */
function naiveAdd(list: DiffIo[], io: DiffIo, maxIoBlocks: number): DiffIo[] {
  const out: DiffIo[] = [];
  for (const o of list) {
    if (ioEnd(o) <= io.addr || o.addr >= ioEnd(io)) out.push(o);
    else {
      const l = sliceIo(o, o.addr, io.addr);
      const r = sliceIo(o, ioEnd(io), ioEnd(o));
      if (l) out.push(l);
      if (r) out.push(r);
    }
  }
  if (maxIoBlocks > 0) for (let a = io.addr; a < ioEnd(io); a += maxIoBlocks) out.push(sliceIo(io, a, Math.min(a + maxIoBlocks, ioEnd(io)))!);
  else out.push(io);
  return out.sort((x, y) => x.addr - y.addr);
}

/** Per-block model of adds in order: the last writer's (kind, src, offset in src). */
function blockModel(ops: { addr: number; blocks: number; kind: DiffIoKind; src: number }[], space: number): (string | undefined)[] {
  const m: (string | undefined)[] = new Array(space).fill(undefined);
  for (const op of ops) for (let b = op.addr; b < op.addr + op.blocks; b++) m[b] = op.kind === 'normal' ? `normal:${op.src}:${b - op.addr}` : op.kind;
  return m;
}

const SPACE = 330;
const arbOp = fc.record({ addr: fc.integer({ min: 0, max: 256 }), blocks: fc.integer({ min: 1, max: 64 }), kind: fc.constantFrom(...KINDS) });
const arbMax = fc.constantFrom(0, 1, 3, 8, 16);
const arbChunk = fc.constantFrom(4, 5, 8, 512);

// ---------------------------------------------------------------------------------------------
// The four overlap patterns

test('pattern 1: an old IO fully covered is removed', () => {
  const mem = new DiffMemory();
  mem.add(mk(1, 10, 4));
  mem.add(mk(2, 8, 12, 'allzero'));
  assert.equal([...mem].map(view), [[8, 12, 'allzero', -1, -1]]);
  checkShape(mem, 0);
  // Exactly the same range too.
  mem.add(mk(3, 8, 12));
  assert.equal([...mem].map(view), [[8, 12, 'normal', 3, 0]]);
});

test('pattern 2: a new IO in the middle splits the old one, data windows kept', () => {
  const mem = new DiffMemory();
  const old = mk(1, 0, 16);
  mem.add(old);
  mem.add(mk(2, 4, 4, 'discard'));
  assert.equal([...mem].map(view), [[0, 4, 'normal', 1, 0], [4, 4, 'discard', -1, -1], [8, 8, 'normal', 1, 8]]);
  const [l, , r] = [...mem];
  assert.ok(l.data!.image === old.data!.image && r.data!.image === old.data!.image, 'no copy');
  assert.equal(readBlock(r, 8), [1, 8]);
  assert.equal(readBlock(r, 15), [1, 15]);
  checkShape(mem, 0);
});

test('pattern 3: new over the right end of the old one truncates it', () => {
  const mem = new DiffMemory();
  mem.add(mk(1, 0, 8));
  mem.add(mk(2, 4, 8));
  assert.equal([...mem].map(view), [[0, 4, 'normal', 1, 0], [4, 8, 'normal', 2, 0]]);
  checkShape(mem, 0);
});

test('pattern 4: new over the left end of the old one truncates it', () => {
  const mem = new DiffMemory();
  mem.add(mk(1, 4, 8));
  mem.add(mk(2, 0, 8));
  assert.equal([...mem].map(view), [[0, 8, 'normal', 2, 0], [8, 4, 'normal', 1, 4]]);
  checkShape(mem, 0);
});

test('adjacent IOs are not touched', () => {
  const mem = new DiffMemory();
  mem.add(mk(1, 0, 4));
  mem.add(mk(2, 8, 4));
  mem.add(mk(3, 4, 4));
  assert.equal([...mem].map(view), [[0, 4, 'normal', 1, 0], [4, 4, 'normal', 3, 0], [8, 4, 'normal', 2, 0]]);
});

test('non-normal pieces keep their kind', () => {
  const mem = new DiffMemory();
  mem.add(mk(1, 0, 16, 'allzero'));
  mem.add(mk(2, 20, 10, 'discard'));
  mem.add(mk(3, 4, 4));
  mem.add(mk(4, 14, 10));
  assert.equal([...mem].map(view), [
    [0, 4, 'allzero', -1, -1], [4, 4, 'normal', 3, 0], [8, 6, 'allzero', -1, -1], [14, 10, 'normal', 4, 0], [24, 6, 'discard', -1, -1],
  ]);
  checkShape(mem, 0);
});

test('a new IO over several old ones', () => {
  const mem = new DiffMemory();
  for (let i = 0; i < 10; i++) mem.add(mk(i, i * 10, 5, KINDS[i % 3]));
  mem.add(mk(99, 12, 60, 'discard'));
  assert.equal([...mem].map(view), [
    [0, 5, 'normal', 0, 0], [10, 2, 'allzero', -1, -1], [12, 60, 'discard', -1, -1], [72, 3, 'allzero', -1, -1], [80, 5, 'discard', -1, -1], [90, 5, 'normal', 9, 0],
  ]);
  checkShape(mem, 0);
});

// ---------------------------------------------------------------------------------------------
// maxIoBlocks

test('maxIoBlocks: the new IO is split from its start; trimmed old pieces are not re-split', () => {
  const mem = new DiffMemory({ maxIoBlocks: 4 });
  mem.add(mk(1, 0, 10));
  assert.equal([...mem].map(view), [[0, 4, 'normal', 1, 0], [4, 4, 'normal', 1, 4], [8, 2, 'normal', 1, 8]]);
  mem.add(mk(2, 1, 1));
  assert.equal([...mem].map(view), [[0, 1, 'normal', 1, 0], [1, 1, 'normal', 2, 0], [2, 2, 'normal', 1, 2], [4, 4, 'normal', 1, 4], [8, 2, 'normal', 1, 8]]);
  mem.add(mk(3, 3, 9, 'allzero'));
  assert.equal([...mem].map(view), [
    [0, 1, 'normal', 1, 0], [1, 1, 'normal', 2, 0], [2, 1, 'normal', 1, 2], [3, 4, 'allzero', -1, -1], [7, 4, 'allzero', -1, -1], [11, 1, 'allzero', -1, -1],
  ]);
  checkShape(mem, 4);
});

test('maxIoBlocks 0 never splits; IOs read back equal what was added', () => {
  const mem = new DiffMemory();
  const io = mk(1, 100, 100000, 'allzero');
  mem.add(io);
  assert.equal(mem.first(), io);
  assert.is(mem.size, 1);
  const n = mk(2, 200000, 5);
  mem.add(n);
  assert.equal(mem.last(), n);
  assert.is(mem.last()!.data!.image, n.data!.image, 'the image is shared, not copied');
});

test('a large IO split into many pieces, then cut across many index chunks', () => {
  const mem = new DiffMemory({ maxIoBlocks: 1 });
  mem.add(mk(1, 0, 20000, 'allzero'));
  assert.is(mem.size, 20000);
  checkShape(mem, 1);
  const m2 = new DiffMemory({ maxIoBlocks: 0 });
  for (let i = 0; i < 20000; i++) m2.add(mk(0, i * 2, 1, 'discard'));
  m2.add(mk(1, 101, 30000, 'allzero'));
  assert.is(m2.size, 51 + 1 + 4949);
  checkShape(m2, 0);
  assert.equal(m2.overlapping(99, 30103).map(view), [[100, 1, 'discard', -1, -1], [101, 30000, 'allzero', -1, -1], [30102, 1, 'discard', -1, -1]]);
});

// ---------------------------------------------------------------------------------------------
// Queries

test('lookup, overlapping, first, last, entries, clear', () => {
  const mem = new DiffMemory();
  assert.is(mem.first(), undefined);
  assert.is(mem.lookup(0), undefined);
  assert.equal(mem.overlapping(0, 100), []);
  mem.add(mk(1, 10, 5));
  mem.add(mk(2, 20, 5, 'discard'));
  assert.is(mem.lookup(9), undefined);
  assert.equal(view(mem.lookup(10)!), [10, 5, 'normal', 1, 0]);
  assert.equal(view(mem.lookup(14)!), [10, 5, 'normal', 1, 0]);
  assert.is(mem.lookup(15), undefined);
  assert.equal(view(mem.lookup(24)!), [20, 5, 'discard', -1, -1]);
  assert.equal(mem.overlapping(14, 20).map(view), [[10, 5, 'normal', 1, 0]]);
  assert.equal(mem.overlapping(14, 21).length, 2);
  assert.equal(mem.overlapping(15, 20), []);
  assert.equal(mem.overlapping(20, 20), []);
  assert.equal(view(mem.first()!), [10, 5, 'normal', 1, 0]);
  assert.equal(view(mem.last()!), [20, 5, 'discard', -1, -1]);
  assert.equal([...mem.entries()].map(([a, io]) => [a, io.addr]), [[10, 10], [20, 20]]);
  assert.is(mem.totalBlocks, 10);
  assert.is(mem.normalBytes, 5 * LB);
  mem.clear();
  assert.ok(mem.isEmpty);
  assert.is(mem.size, 0);
  assert.is(mem.totalBlocks, 0);
  assert.is(mem.normalBytes, 0);
  mem.add(mk(3, 0, 1));
  assert.is(mem.size, 1);
});

test('validation: ValueOutOfRangeError', () => {
  const mem = new DiffMemory();
  const bad: unknown[] = [
    { addr: -1, blocks: 1, kind: 'allzero' },
    { addr: 1.5, blocks: 1, kind: 'allzero' },
    { addr: 2 ** 53, blocks: 1, kind: 'allzero' },
    { addr: NaN, blocks: 1, kind: 'allzero' },
    { addr: 0, blocks: 0, kind: 'allzero' },
    { addr: 0, blocks: -3, kind: 'allzero' },
    { addr: 0, blocks: 0.5, kind: 'allzero' },
    { addr: Number.MAX_SAFE_INTEGER - 1, blocks: 2, kind: 'allzero' },
    { addr: 0, blocks: 1, kind: 'bogus' },
    { addr: 0, blocks: 1, kind: 'normal' },
    { addr: 0, blocks: 2, kind: 'normal', data: { image: image(0, 1), offsetLb: 0 } },
    { addr: 0, blocks: 1, kind: 'normal', data: { image: image(0, 1), offsetLb: -1 } },
  ];
  for (const io of bad) {
    assert.throws(() => mem.add(io as DiffIo), (e: unknown) => e instanceof ValueOutOfRangeError, JSON.stringify(io));
    assert.throws(() => mem.addAged(io as DiffIo, 1), (e: unknown) => e instanceof ValueOutOfRangeError);
  }
  assert.ok(mem.isEmpty);
  for (const age of [NaN, Infinity, -Infinity]) assert.throws(() => mem.addAged(mk(0, 0, 1), age), (e: unknown) => e instanceof ValueOutOfRangeError);
  for (const a of [-1, 0.5, 2 ** 53]) {
    assert.throws(() => mem.lookup(a), (e: unknown) => e instanceof ValueOutOfRangeError);
    assert.throws(() => mem.takeBelow(a), (e: unknown) => e instanceof ValueOutOfRangeError);
    assert.throws(() => mem.overlapping(a, 10), (e: unknown) => e instanceof ValueOutOfRangeError);
  }
  assert.throws(() => new DiffMemory({ maxIoBlocks: -1 }), (e: unknown) => e instanceof ValueOutOfRangeError);
  assert.throws(() => new DiffMemory({ maxIoBlocks: 1.5 }), (e: unknown) => e instanceof ValueOutOfRangeError);
  // The largest addresses work.
  mem.add({ addr: Number.MAX_SAFE_INTEGER - 2, blocks: 2, kind: 'discard' });
  assert.is(mem.lookup(Number.MAX_SAFE_INTEGER - 1)!.blocks, 2);
});

// ---------------------------------------------------------------------------------------------
// Properties of add

test('property: add matches the per-block model and the naive walb-tools list', () => {
  fc.assert(
    fc.property(fc.array(arbOp, { minLength: 1, maxLength: 40 }), arbMax, arbChunk, (ops, maxIoBlocks, chunk) => {
      const mem = new DiffMemory({ maxIoBlocks, indexChunkSize: chunk });
      let naive: DiffIo[] = [];
      const srcOps = ops.map((op, i) => ({ ...op, src: i + 1 }));
      for (const op of srcOps) {
        const io = mk(op.src, op.addr, op.blocks, op.kind);
        mem.add(io);
        naive = naiveAdd(naive, io, maxIoBlocks);
      }
      checkShape(mem, maxIoBlocks);
      assert.equal(expand(mem, SPACE), blockModel(srcOps, SPACE));
      // The exact IO boundaries and data windows of walb-tools (split new IO from its start, old
      // trimmed pieces left as they are).
      assert.equal([...mem].map(view), naive.map(view));
      // lookup and overlapping agree with the list.
      const list = [...mem];
      for (let b = 0; b < SPACE; b += 7) {
        const hit = list.find((io) => io.addr <= b && b < ioEnd(io));
        const got = mem.lookup(b);
        assert.equal(got && view(got), hit && view(hit));
        const to = b + (b % 23);
        assert.equal(mem.overlapping(b, to).map(view), list.filter((io) => io.addr < to && ioEnd(io) > b && b < to).map(view));
      }
    }),
    { numRuns: 400 },
  );
});

// ---------------------------------------------------------------------------------------------
// addAged

test('addAged: higher age wins whatever the order; equal ages: later insert wins; ages kept', () => {
  const m = new DiffMemory();
  m.addAged(mk(1, 0, 8), 2);
  m.addAged(mk(2, 4, 8), 1);
  assert.equal([...m].map(view), [[0, 8, 'normal', 1, 0], [8, 4, 'normal', 2, 4]]);
  assert.is(m.ageAt(0), 2);
  assert.is(m.ageAt(9), 1);
  m.addAged(mk(3, 10, 4, 'discard'), 1);
  assert.equal([...m].map(view), [[0, 8, 'normal', 1, 0], [8, 2, 'normal', 2, 4], [10, 4, 'discard', -1, -1]]);
  // A newer stored IO in the middle of an older incoming one splits the incoming one.
  const n = new DiffMemory({ maxIoBlocks: 3 });
  n.addAged(mk(1, 4, 2), 5);
  n.addAged(mk(2, 12, 1, 'allzero'), 5);
  n.addAged(mk(3, 0, 14), 4);
  assert.equal([...n].map(view), [
    [0, 3, 'normal', 3, 0], [3, 1, 'normal', 3, 3], [4, 2, 'normal', 1, 0], [6, 3, 'normal', 3, 6], [9, 3, 'normal', 3, 9], [12, 1, 'allzero', -1, -1], [13, 1, 'normal', 3, 13],
  ]);
  assert.equal([0, 4, 6, 12, 13].map((a) => n.ageAt(a)), [4, 5, 4, 5, 4]);
  // Entirely covered by newer stored IOs: nothing of it stays.
  n.addAged(mk(4, 4, 2), 1);
  assert.equal(view(n.lookup(4)!), [4, 2, 'normal', 1, 0]);
  // Equal ages: the later insert wins.
  const e = new DiffMemory();
  e.addAged(mk(1, 0, 8), 3);
  e.addAged(mk(2, 4, 8), 3);
  assert.equal([...e].map(view), [[0, 4, 'normal', 1, 0], [4, 8, 'normal', 2, 0]]);
  // add() after addAged wins over everything, with the highest age seen.
  e.addAged(mk(3, 20, 4), 7);
  e.add(mk(4, 0, 30, 'discard'));
  assert.equal([...e].map(view), [[0, 30, 'discard', -1, -1]]);
  assert.is(e.ageAt(0), 7);
  checkShape(e, 0);
});

/** k inputs of sorted non-overlapping IOs, input i of age i + 1. */
const arbInputs = fc.array(
  fc.array(fc.record({ gap: fc.integer({ min: 0, max: 24 }), blocks: fc.integer({ min: 1, max: 40 }), kind: fc.constantFrom(...KINDS) }), { maxLength: 12 }),
  { minLength: 1, maxLength: 6 },
);

function shuffle<T>(arr: T[], seed: number): T[] {
  let s = seed >>> 0 || 1;
  const a = arr.slice();
  for (let i = a.length - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = (s >>> 0) % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

test('property: addAged in any order (and in address order) equals add in age order', () => {
  fc.assert(
    fc.property(arbInputs, fc.integer(), arbMax, arbChunk, fc.boolean(), (inputs, seed, maxIoBlocks, chunk, byAddr) => {
      const items: { io: DiffIo; age: number; src: number; kind: DiffIoKind; addr: number; blocks: number }[] = [];
      let src = 1;
      inputs.forEach((recs, i) => {
        let addr = 0;
        for (const r of recs) {
          addr += r.gap;
          items.push({ io: mk(src, addr, r.blocks, r.kind), age: i + 1, src, kind: r.kind, addr, blocks: r.blocks });
          src++;
          addr += r.blocks;
        }
      });
      const ref = new DiffMemory({ maxIoBlocks });
      for (const it of items) ref.add(it.io); // items are in age order
      let order = shuffle(items, seed);
      if (byAddr) order = order.sort((x, y) => x.addr - y.addr); // as a k-way merge reads them
      const mem = new DiffMemory({ maxIoBlocks, indexChunkSize: chunk });
      for (const it of order) mem.addAged(it.io, it.age);
      checkShape(mem, maxIoBlocks);
      const space = 24 * 12 + 40 * 12 + 1;
      const want = blockModel(items, space);
      assert.equal(expand(mem, space), want);
      assert.equal(expand(ref, space), want);
      // Every block's age is that of its winner.
      const ages: (number | undefined)[] = new Array(space).fill(undefined);
      for (const it of items) for (let b = it.addr; b < it.addr + it.blocks; b++) ages[b] = it.age;
      for (let b = 0; b < space; b++) assert.is(mem.ageAt(b), ages[b], `age at ${b}`);
    }),
    { numRuns: 400 },
  );
});

// ---------------------------------------------------------------------------------------------
// takeBelow

test('takeBelow: the straddling IO is cut at the address, the rest stays with its age', () => {
  const mem = new DiffMemory();
  mem.addAged(mk(1, 0, 4), 3);
  mem.addAged(mk(2, 6, 10), 2);
  mem.addAged(mk(3, 20, 4, 'allzero'), 1);
  assert.equal(mem.takeBelow(0), []);
  assert.equal(mem.takeBelow(10).map(view), [[0, 4, 'normal', 1, 0], [6, 4, 'normal', 2, 0]]);
  assert.equal(view(mem.first()!), [10, 6, 'normal', 2, 4]);
  assert.is(mem.ageAt(10), 2);
  assert.is(mem.totalBlocks, 10);
  assert.is(mem.normalBytes, 6 * LB);
  assert.equal(mem.takeBelow(16).map(view), [[10, 6, 'normal', 2, 4]]);
  assert.equal(mem.takeBelow(21).map(view), [[20, 1, 'allzero', -1, -1]]);
  assert.equal(mem.takeAll().map(view), [[21, 3, 'allzero', -1, -1]]);
  assert.ok(mem.isEmpty);
  assert.equal(mem.takeBelow(100), []);
  checkShape(mem, 0);
});

test('property: takeBelow(a1), takeBelow(a2), ..., takeAll() is the content split at the cuts', () => {
  fc.assert(
    fc.property(
      fc.array(arbOp, { minLength: 1, maxLength: 40 }),
      fc.uniqueArray(fc.integer({ min: 0, max: SPACE }), { maxLength: 12 }),
      arbMax,
      arbChunk,
      (ops, cuts, maxIoBlocks, chunk) => {
        const mem = new DiffMemory({ maxIoBlocks, indexChunkSize: chunk });
        ops.forEach((op, i) => mem.add(mk(i + 1, op.addr, op.blocks, op.kind)));
        const snapshot = [...mem];
        const sorted = cuts.slice().sort((a, b) => a - b);
        const want: DiffIo[] = [];
        for (const io of snapshot) {
          let a = io.addr;
          for (const c of sorted) {
            if (c > a && c < ioEnd(io)) {
              want.push(sliceIo(io, a, c)!);
              a = c;
            }
          }
          want.push(sliceIo(io, a, ioEnd(io))!);
        }
        const got: DiffIo[] = [];
        for (const c of sorted) {
          const part = mem.takeBelow(c);
          for (const io of part) assert.ok(ioEnd(io) <= c);
          const f = mem.first();
          if (f) assert.ok(f.addr >= c);
          checkShape(mem, 0);
          got.push(...part);
        }
        got.push(...mem.takeAll());
        assert.ok(mem.isEmpty);
        assert.equal(got.map(view), want.map(view));
      },
    ),
    { numRuns: 400 },
  );
});

test('property: a streaming mix of addAged and takeBelow keeps the block content', () => {
  // As the merger does: add records with addr ≥ the last cut, emit prefixes as they are final.
  fc.assert(
    fc.property(arbInputs, fc.integer({ min: 1, max: 60 }), arbMax, arbChunk, (inputs, step, maxIoBlocks, chunk) => {
      const items: { io: DiffIo; age: number; src: number; kind: DiffIoKind; addr: number; blocks: number }[] = [];
      let src = 1;
      inputs.forEach((recs, i) => {
        let addr = 0;
        for (const r of recs) {
          addr += r.gap;
          items.push({ io: mk(src, addr, r.blocks, r.kind), age: i + 1, src, kind: r.kind, addr, blocks: r.blocks });
          src++;
          addr += r.blocks;
        }
      });
      const byAddr = items.slice().sort((x, y) => x.addr - y.addr);
      const mem = new DiffMemory({ maxIoBlocks, indexChunkSize: chunk });
      const out: DiffIo[] = [];
      let k = 0;
      for (let done = step; k < byAddr.length; done += step) {
        // Everything that starts below `done`; what ends at or below the next record's start is final
        // once all records starting below it are in — here: below the smallest start still unread.
        while (k < byAddr.length && byAddr[k].addr < done) {
          mem.addAged(byAddr[k].io, byAddr[k].age);
          k++;
        }
        const front = k < byAddr.length ? byAddr[k].addr : Infinity;
        if (front !== Infinity) out.push(...mem.takeBelow(front));
      }
      out.push(...mem.takeAll());
      const space = 24 * 12 + 40 * 12 + 1;
      assert.equal(expand(out, space), blockModel(items, space));
      for (let i = 1; i < out.length; i++) assert.ok(out[i].addr >= ioEnd(out[i - 1]));
    }),
    { numRuns: 300 },
  );
});

// ---------------------------------------------------------------------------------------------
// Scale

test('scale: 1,000,000 random 8-LB adds over 2^24 LB', () => {
  const SPACE_LB = 2 ** 24;
  const N = 1_000_000;
  const mem = new DiffMemory({ maxIoBlocks: 2048 });
  const last = new Int32Array(SPACE_LB).fill(-1);
  const srcAddr = new Float64Array(N);
  const srcKind = new Uint8Array(N);
  const stored = Buffer.alloc(8 * LB);
  let s = 12345;
  const rnd = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  const t0 = Date.now();
  for (let i = 0; i < N; i++) {
    const addr = rnd() % (SPACE_LB - 8);
    const k = rnd() % 8 === 0 ? 1 + (rnd() % 2) : 0;
    srcAddr[i] = addr;
    srcKind[i] = k;
    // The image's checksum field carries the source id (the test only reads it back).
    const io: DiffIo = k === 0 ? { addr, blocks: 8, kind: 'normal', data: { image: { stored, cmpr: 0, blocks: 8, checksum: i }, offsetLb: 0 } } : { addr, blocks: 8, kind: KINDS[k] };
    mem.add(io);
    last.fill(i, addr, addr + 8);
  }
  const ms = Date.now() - t0;
  console.log(`  1M random adds: ${ms} ms, ${mem.size} IOs, ${mem.totalBlocks} LB`);
  mem.checkInvariants();
  let covered = 0;
  for (let b = 0; b < SPACE_LB; b++) if (last[b] >= 0) covered++;
  assert.is(mem.totalBlocks, covered);
  for (let j = 0; j < 20000; j++) {
    const b = rnd() % SPACE_LB;
    const io = mem.lookup(b);
    const w = last[b];
    if (w < 0) {
      assert.is(io, undefined);
      continue;
    }
    assert.ok(io, `block ${b}`);
    assert.is(io!.kind, KINDS[srcKind[w]]);
    if (io!.kind === 'normal') {
      assert.is(io!.data!.image.checksum, w);
      assert.is(io!.data!.offsetLb + (b - io!.addr), b - srcAddr[w]);
    }
  }
  // Drain it in 16 steps.
  let prevEnd = 0;
  let n = 0;
  for (let c = 1; c <= 16; c++) {
    for (const io of mem.takeBelow((SPACE_LB / 16) * c)) {
      assert.ok(io.addr >= prevEnd);
      prevEnd = ioEnd(io);
      n++;
    }
  }
  assert.ok(mem.isEmpty);
  assert.ok(n > 0);
});


test('a huge ALLZERO or DISCARD IO is one entry in memory, read back in its maxIoBlocks pieces', () => {
  // 40 discards of 2^32 - 1 LB (a whole 2 TiB device each): 2,097,152 pieces apiece.
  const mem = new DiffMemory({ maxIoBlocks: 2048 });
  const big = 2 ** 32 - 1;
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  for (let i = 0; i < 40; i++) mem.add({ addr: i * 2 ** 33, blocks: big, kind: i % 2 ? 'allzero' : 'discard' });
  // A newer IO in the middle of the first: the cut pieces keep the first's grid.
  mem.add(mk(1, 5000, 3));
  const grown = process.memoryUsage().heapUsed - heap0;
  assert.ok(grown < 8 << 20, `${grown} bytes of heap for 40 huge discards`);
  const first = mem.overlapping(0, 8192).map(view);
  assert.equal(first, [[0, 2048, 'discard', -1, -1], [2048, 2048, 'discard', -1, -1], [4096, 904, 'discard', -1, -1], [5000, 3, 'normal', 1, 0], [5003, 1141, 'discard', -1, -1], [6144, 2048, 'discard', -1, -1]]);
  assert.equal(view(mem.lookup(2 ** 33 + 4097)!), [2 ** 33 + 4096, 2048, 'allzero', -1, -1]);
  assert.equal(view(mem.last()!), [39 * 2 ** 33 + big - (big % 2048), big % 2048, 'allzero', -1, -1]);
  assert.is(mem.size, 40 * Math.ceil(big / 2048) + 2);
  // Iterated lazily: the first pieces come without making the rest.
  let n = 0;
  for (const io of mem) { assert.ok(io.blocks <= 2048); if (++n === 5000) break; }
  const c = mem.cursor();
  let blocks = 0;
  for (let k = 0; k < 3 && c.next(); k++) blocks += c.blocks;
  assert.is(blocks, 2048 + 2048 + 904);
});

test.run();
