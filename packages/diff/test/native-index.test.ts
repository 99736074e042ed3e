// The indexed writer's index kept by the native addon (useNativeIndex): on random diffs with
// overlaps, all-zero and discard IOs, at any address and any maxIoBlocks, the files are byte for
// byte those of the writer's own index; a bad IO is refused with the same typed error; an
// implementation that gives other bytes is refused when set.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadNative } from '@walbjs/native-walb';
import { IndexedDiffWriter, ValueOutOfRangeError, normalIo, openWdiff, parseCompressOpt, useNativeIndex, type DiffIo, type NativeIndexFns } from '../src/index.ts';
import { tempDir } from './helpers.ts';

/** Added to every property's seed: CI runs the fixed cases; `WALB_FUZZ_SEED=n` explores others. */
const SEED = Number(process.env.WALB_FUZZ_SEED ?? 0);
const native = loadNative();
const t = tempDir();
process.on('exit', () => t.cleanup());
let adds = 0;
/** The addon's index, its handovers counted: a test must show it ran. */
const counted: NativeIndexFns = { indexNew: () => native.indexNew(), indexAdd: (...a) => { adds++; return native.indexAdd(...a); }, indexEncode: (...a) => native.indexEncode(...a) };

const X = suite('native index');
X.after(() => { useNativeIndex(undefined); });

type Spec = { addr: number; blocks: number; kind: DiffIo['kind']; fill: number };

function ioOf(s: Spec): DiffIo {
  if (s.kind !== 'normal') return { addr: s.addr, blocks: s.blocks, kind: s.kind };
  const b = Buffer.alloc(s.blocks * 512);
  for (let k = 0; k < b.length; k += 64) b[k] = (s.fill + k / 64) & 0xff;
  return normalIo(s.addr, b);
}

/** The file written from `specs`, with the addon's index or the writer's own; and its index size before the close. */
async function write(name: string, specs: Spec[], withNative: boolean, maxIoBlocks?: number, cmpr = 'none'): Promise<{ bytes: Buffer; size: number }> {
  assert.ok(useNativeIndex(withNative ? counted : undefined));
  const p = join(t.dir, name);
  const w = await IndexedDiffWriter.create(p, { maxIoBlocks, cmpr: parseCompressOpt(cmpr) });
  for (const s of specs) await w.write(ioOf(s));
  const size = w.indexSize;
  await w.close();
  return { bytes: readFileSync(p), size };
}

const specArb = (base: number) => fc.record({
  addr: fc.nat(3000).map((a) => base + a),
  blocks: fc.integer({ min: 1, max: 400 }),
  kind: fc.constantFrom<DiffIo['kind']>('normal', 'normal', 'normal', 'allzero', 'discard'),
  fill: fc.nat(255),
});

X('random diffs: the same file as with the writer\'s own index, at any address and cap (property)', async () => {
  adds = 0;
  await fc.assert(fc.asyncProperty(
    fc.constantFrom(0, 2 ** 32 - 1500, 2 ** 45 + 7).chain((base) => fc.array(specArb(base), { maxLength: 50 })),
    fc.constantFrom(undefined, 0, 1, 8, 100, 2048, 2 ** 40),
    async (specs, cap) => {
      const a = await write('own.wdiff', specs, false, cap), b = await write('native.wdiff', specs, true, cap);
      assert.is(b.size, a.size);
      assert.ok(b.bytes.equals(a.bytes), 'the files differ');
    },
  ), { numRuns: 60, seed: 4242 + SEED });
  assert.ok(adds > 0, 'the addon kept the index');
});

X('more IOs than one handover, compressed images: the same file, which reads back', async () => {
  const specs: Spec[] = [];
  let x = 12345;
  const rnd = (n: number) => { x = (x * 1103515245 + 12345) % 2 ** 31; return x % n; };
  for (let i = 0; i < 10_000; i++) specs.push({ addr: rnd(200_000), blocks: 1 + rnd(64), kind: rnd(10) === 0 ? 'allzero' : rnd(10) === 0 ? 'discard' : 'normal', fill: i });
  adds = 0;
  const a = await write('own-big.wdiff', specs, false, undefined, 'snappy'), b = await write('native-big.wdiff', specs, true, undefined, 'snappy');
  assert.ok(adds >= 3, `${adds} handovers`);
  assert.is(b.size, a.size);
  assert.ok(b.bytes.equals(a.bytes), 'the files differ');
  const r = await openWdiff(join(t.dir, 'native-big.wdiff'));
  let n = 0;
  for await (const _io of r.ios()) n++;
  await r.close();
  assert.ok(n >= a.size, `${n} records read back`);
});

X('a bad IO is refused with the error the writer\'s own index gives, and the index is unchanged', async () => {
  for (const withNative of [false, true]) {
    useNativeIndex(withNative ? counted : undefined);
    const w = await IndexedDiffWriter.create(join(t.dir, `bad-${withNative}.wdiff`));
    await w.write(normalIo(8, Buffer.alloc(1024, 1)));
    const errs: string[] = [];
    for (const io of [{ addr: -1, blocks: 2, kind: 'allzero' }, { addr: 0, blocks: 0, kind: 'discard' }, { addr: 2 ** 53 - 2, blocks: 4, kind: 'allzero' }, { addr: 0, blocks: 1, kind: 'normal' }] as DiffIo[]) {
      try { w.appendStored(io.addr, io.blocks, io.kind, undefined); assert.unreachable('accepted'); } catch (e) { assert.instance(e, ValueOutOfRangeError); errs.push((e as Error).message); }
    }
    try { w.appendStored(0, 9, 'normal', { cmpr: 0, stored: Buffer.alloc(4096), checksum: 0, blocks: 8 }); assert.unreachable('accepted'); } catch (e) { assert.instance(e, ValueOutOfRangeError); errs.push((e as Error).message); }
    assert.is(w.indexSize, 1);
    await w.close();
    assert.is(errs.length, 5);
  }
});

X('an implementation that gives other bytes, or throws, is refused; the writer then keeps its own index', async () => {
  assert.ok(useNativeIndex(native));
  const flipped: NativeIndexFns = { ...counted, indexEncode: (ix, cap, max) => { const b = Buffer.from(native.indexEncode(ix, cap, max)); if (b.length) b[b.length - 1] ^= 1; return b; } };
  assert.not.ok(useNativeIndex(flipped));
  assert.not.ok(useNativeIndex({ ...counted, indexAdd: () => { throw new Error('no'); } }));
  assert.not.ok(useNativeIndex({ ...counted, indexAdd: (ix, ios, n) => native.indexAdd(ix, ios, n) + 1 }));
  adds = 0;
  const specs: Spec[] = [{ addr: 0, blocks: 16, kind: 'normal', fill: 1 }, { addr: 4, blocks: 4, kind: 'discard', fill: 0 }];
  const w = await IndexedDiffWriter.create(join(t.dir, 'refused.wdiff'), { cmpr: parseCompressOpt('none') });
  for (const s of specs) await w.write(ioOf(s));
  await w.close();
  assert.is(adds, 0, 'a refused implementation was used');
  useNativeIndex(undefined);
  assert.ok(readFileSync(join(t.dir, 'refused.wdiff')).equals((await write('own-small.wdiff', specs, false)).bytes));
});

X.run();
