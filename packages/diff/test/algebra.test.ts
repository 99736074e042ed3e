// The diff algebra on random diffs with discards and all-zero records, through real files:
// merge is associative and idempotent, and applying d0 then d1 equals applying merge(d0, d1) when
// discards are written as zeros (with discards ignored they legitimately differ).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DiffMemory, IndexedDiffWriter, SortedDiffWriter, applyWdiffs, mergeWdiffs, normalIo, openWdiff, ioBytes,
  parseCompressOpt, type DiffIo,
} from '../src/index.ts';
import { tempDir } from './helpers.ts';

const SPACE = 512; // LB
const t = tempDir();
process.on('exit', () => t.cleanup());
let seq = 0;

type Op = { addr: number; blocks: number; kind: 'normal' | 'allzero' | 'discard'; seed: number };
const opArb = fc.record({
  addr: fc.integer({ min: 0, max: SPACE - 1 }),
  blocks: fc.integer({ min: 1, max: 64 }),
  kind: fc.constantFrom('normal', 'normal', 'allzero', 'discard') as fc.Arbitrary<Op['kind']>,
  seed: fc.integer({ min: 1, max: 255 }),
});
const diffArb = fc.record({ ops: fc.array(opArb, { minLength: 0, maxLength: 12 }), indexed: fc.boolean(), cmpr: fc.constantFrom('none', 'snappy', 'zstd', 'lz4') });

function toIo(o: Op): DiffIo {
  const blocks = Math.min(o.blocks, SPACE - o.addr);
  if (o.kind !== 'normal') return { addr: o.addr, blocks, kind: o.kind };
  const b = Buffer.alloc(blocks * 512);
  for (let i = 0; i < b.length; i++) b[i] = (o.seed + i * 7 + (i >> 9)) & 0xff || 1;
  return normalIo(o.addr, b);
}

async function writeDiff(d: { ops: Op[]; indexed: boolean; cmpr: string }): Promise<string> {
  const p = join(t.dir, `d${seq++}.wdiff`);
  const cmpr = parseCompressOpt(d.cmpr);
  if (d.indexed) {
    const w = await IndexedDiffWriter.create(p, { cmpr });
    for (const o of d.ops) await w.write(toIo(o));
    await w.close();
  } else {
    const mem = new DiffMemory();
    for (const o of d.ops) mem.add(toIo(o));
    const w = await SortedDiffWriter.create(p, { cmpr });
    for (const io of mem) await w.write(io);
    await w.close();
  }
  return p;
}

/** Block-level content of a diff: per LB, its kind and bytes. */
async function blocksOf(path: string): Promise<string[]> {
  const out: string[] = new Array(SPACE).fill('');
  const d = await openWdiff(path);
  for await (const io of d.ios()) {
    const bytes = await ioBytes(io);
    for (let i = 0; i < io.blocks; i++) out[io.addr + i] = io.kind === 'normal' ? 'N' + bytes!.subarray(i * 512, i * 512 + 512).toString('base64') : io.kind;
  }
  await d.close();
  return out;
}

async function merged(...paths: string[]): Promise<string> {
  const p = join(t.dir, `m${seq++}.wdiff`);
  await mergeWdiffs(paths, p, { cmpr: parseCompressOpt(seq % 2 ? 'snappy' : 'none') });
  return p;
}

const A = suite('diff algebra');
A('merge is associative: (a·b)·c = a·(b·c)', async () => {
  await fc.assert(fc.asyncProperty(diffArb, diffArb, diffArb, async (x, y, z) => {
    const [a, b, c] = [await writeDiff(x), await writeDiff(y), await writeDiff(z)];
    const left = await merged(await merged(a, b), c);
    const right = await merged(a, await merged(b, c));
    assert.equal(await blocksOf(left), await blocksOf(right));
    assert.equal(await blocksOf(await merged(a, b, c)), await blocksOf(left), 'k-way = pairwise');
  }), { numRuns: 60, seed: 11 });
});
A('merge is idempotent: a·a = a', async () => {
  await fc.assert(fc.asyncProperty(diffArb, async (x) => {
    const a = await writeDiff(x);
    assert.equal(await blocksOf(await merged(a, a)), await blocksOf(a));
  }), { numRuns: 60, seed: 12 });
});
A('apply d0 then d1 = apply merge(d0, d1), discards written as zeros', async () => {
  await fc.assert(fc.asyncProperty(diffArb, diffArb, fc.integer({ min: 0, max: 255 }), async (x, y, fill) => {
    const [a, b] = [await writeDiff(x), await writeDiff(y)];
    const base = Buffer.alloc(SPACE * 512);
    for (let i = 0; i < base.length; i++) base[i] = (fill + (i >> 9)) & 0xff;
    const i1 = join(t.dir, `i${seq++}.img`), i2 = join(t.dir, `i${seq++}.img`), i3 = join(t.dir, `i${seq++}.img`);
    for (const p of [i1, i2, i3]) writeFileSync(p, base);
    await applyWdiffs(i1, [a], { discard: 'zero' });
    await applyWdiffs(i1, [b], { discard: 'zero' });
    await applyWdiffs(i2, [await merged(a, b)], { discard: 'zero' });
    await applyWdiffs(i3, [a, b], { discard: 'zero' });
    assert.ok(readFileSync(i1).equals(readFileSync(i2)), 'sequential = merged');
    assert.ok(readFileSync(i1).equals(readFileSync(i3)), 'sequential = merged stream');
  }), { numRuns: 60, seed: 13 });
});
A('with discards ignored, sequential and merged apply can legitimately differ', async () => {
  // d0 writes data, d1 discards it: sequential keeps d0's data, merged keeps the base.
  const a = await writeDiff({ ops: [{ addr: 0, blocks: 8, kind: 'normal', seed: 9 }], indexed: false, cmpr: 'none' });
  const b = await writeDiff({ ops: [{ addr: 0, blocks: 8, kind: 'discard', seed: 1 }], indexed: false, cmpr: 'none' });
  const i1 = join(t.dir, 'x1.img'), i2 = join(t.dir, 'x2.img');
  writeFileSync(i1, Buffer.alloc(SPACE * 512)); writeFileSync(i2, Buffer.alloc(SPACE * 512));
  await applyWdiffs(i1, [a]); await applyWdiffs(i1, [b]);
  await applyWdiffs(i2, [await merged(a, b)]);
  assert.not.ok(readFileSync(i1).equals(readFileSync(i2)));
  assert.ok(readFileSync(i2).every((x) => x === 0));
});
A.run();
