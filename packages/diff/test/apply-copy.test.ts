// Apply by pieces (the native addon's copyPieces moves and checks the raw records' bytes,
// compressed ones are written from JavaScript, several diffs are merged from their headers):
// every vector applies to its recorded image in every discard mode, alone and as the merged
// chain, random diffs of both formats (one or several) give the bytes the JavaScript path gives,
// and a record changed after the check stops the copy with the reader's typed error at its place.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeGeneratedWlog } from '@walbjs/log-format';
import { loadNative } from '@walbjs/native-walb';
import { ChecksumError, SortedDiffWriter, applyWdiffs, convertWlogs, normalIo, parseCompressOpt, useCopyPieces, type CopyPiecesFn } from '../src/index.ts';
import { casesOf, makeImage, sha256File, tempDir, vec } from './helpers.ts';

/** Added to every property's seed: CI runs the fixed cases; `WALB_FUZZ_SEED=n` explores others. */
const SEED = Number(process.env.WALB_FUZZ_SEED ?? 0);
const native = loadNative();
const t = tempDir();
process.on('exit', () => t.cleanup());
let calls = 0;
/** The native copy, counted: a test must show it ran. */
const counted: CopyPiecesFn = (...a) => { calls++; return native.copyPieces(...a); };

const C = suite('apply by pieces');
C.before(() => useCopyPieces(counted));
C.after(() => useCopyPieces(undefined));

for (const c of casesOf('wlog')) {
  C(`${c.name}: the original's sorted and indexed files apply to the recorded images, discards ignored and as zeros`, async () => {
    for (const f of [c.sortedWdiff, c.indexedWdiff]) {
      calls = 0;
      const img = makeImage(t.dir, 'w.img', c.deviceBytes);
      await applyWdiffs(img, [vec(f)]);
      assert.is(sha256File(img), f === c.sortedWdiff ? c.imageSha256AfterSortedRedo : c.imageSha256AfterIndexedRedo, f);
      const img55 = makeImage(t.dir, 'w55.img', c.deviceBytes, 0x55);
      await applyWdiffs(img55, [vec(f)], { discard: 'zero' });
      assert.is(sha256File(img55), c.imageSha256AfterSortedRedoDiscardAsZeroOn0x55, `${f} discard as zero`);
      assert.ok(calls > 0, 'copied by pieces');
    }
  });
}

C('every codec file applies to its recorded image (compressed records written from here)', async () => {
  for (const c of casesOf('codec')) {
    const img = makeImage(t.dir, 'c.img', c.deviceBytes);
    await applyWdiffs(img, [vec(c.wdiff)]);
    assert.is(sha256File(img), c.imageSha256AfterRedo, c.codec);
  }
});

C('the chain applied one diff at a time gives the recorded sequential images; punched discards read as zeros', async () => {
  const chain = casesOf('chain')[0];
  for (const [discard, sum] of [['ignore', chain.imageSha256AfterSequentialRedo], ['zero', chain.imageSha256AfterSequentialRedoDiscardAsZero], ['punch', chain.imageSha256AfterSequentialRedoDiscardAsZero]] as const) {
    const img = makeImage(t.dir, 'chain.img', chain.deviceBytes);
    for (const f of chain.wdiffs) await applyWdiffs(img, [vec(f)], { discard });
    assert.is(sha256File(img), sum, discard);
  }
});

C('the chain applied together (merged from its headers) gives the recorded merged images', async () => {
  const chain = casesOf('chain')[0];
  for (const [discard, sum] of [['ignore', chain.imageSha256AfterMergedRedo], ['zero', chain.imageSha256AfterMergedRedoDiscardAsZero]] as const) {
    calls = 0;
    const img = makeImage(t.dir, 'chain-m.img', chain.deviceBytes);
    await applyWdiffs(img, chain.wdiffs.map(vec), { discard });
    assert.is(sha256File(img), sum, discard);
    assert.ok(calls > 0, 'copied by pieces');
  }
});

C('several random diffs, sorted and indexed mixed, raw and compressed: the same image as the path without pieces', async () => {
  await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 1, max: 1e9 }), fc.boolean(), fc.constantFrom('none', 'snappy', 'lz4'), fc.constantFrom(0, 8)), { minLength: 2, maxLength: 4 }), fc.constantFrom('ignore', 'zero', 'punch'), async (specs, discard) => {
    const diffs: string[] = [];
    for (const [i, [seed, indexed, cmpr, maxIo]] of specs.entries()) {
      const wlog = join(t.dir, `m${i}.wlog`), diff = join(t.dir, `m${i}.wdiff`);
      await writeGeneratedWlog(wlog, { seed, totalBytes: 1 << 20, deviceBytes: 4 << 20, discard: true, allZero: true });
      await convertWlogs([wlog], diff, { indexed, cmpr: parseCompressOpt(cmpr), maxIoBlocks: maxIo || undefined });
      diffs.push(diff);
    }
    const a = makeImage(t.dir, 'ma.img', 4 << 20, 0x55), b = makeImage(t.dir, 'mb.img', 4 << 20, 0x55);
    calls = 0;
    const sa = await applyWdiffs(a, diffs, { discard });
    assert.ok(calls > 0);
    useCopyPieces(undefined);
    const sb = await applyWdiffs(b, diffs, { discard });
    useCopyPieces(counted);
    assert.ok(readFileSync(a).equals(readFileSync(b)));
    assert.equal({ ...sa, syncs: 0 }, { ...sb, syncs: 0 });
  }), { numRuns: 10, seed: SEED + 8 });
});

C('random logs, sorted and indexed, raw and snappy: the same image as the path without pieces', async () => {
  await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 1e9 }), fc.boolean(), fc.constantFrom('none', 'snappy', 'zstd'), fc.constantFrom(0, 8, 64), async (seed, indexed, cmpr, maxIo) => {
    const wlog = join(t.dir, 'r.wlog'), diff = join(t.dir, 'r.wdiff');
    await writeGeneratedWlog(wlog, { seed, totalBytes: 3 << 20, deviceBytes: 8 << 20, discard: true, allZero: true });
    await convertWlogs([wlog], diff, { indexed, cmpr: parseCompressOpt(cmpr), maxIoBlocks: maxIo || undefined });
    const a = makeImage(t.dir, 'a.img', 8 << 20, 0x55), b = makeImage(t.dir, 'b.img', 8 << 20, 0x55);
    calls = 0;
    const sa = await applyWdiffs(a, [diff], { discard: 'zero' });
    assert.ok(calls > 0);
    useCopyPieces(undefined);
    const sb = await applyWdiffs(b, [diff], { discard: 'zero' });
    useCopyPieces(counted);
    assert.ok(readFileSync(a).equals(readFileSync(b)));
    assert.equal({ ...sa, syncs: 0 }, { ...sb, syncs: 0 });
  }), { numRuns: 12, seed: SEED + 7 });
});

C('a record changed after the check stops the copy with a located ChecksumError', async () => {
  const c = casesOf('wlog')[0];
  const src = readFileSync(vec(c.sortedWdiff));
  const path = join(t.dir, 'changed.wdiff');
  // The first record's data lie right after the file header (32 bytes) and its pack header.
  const b = Buffer.from(src);
  const at = 32 + 4096 + 100;
  b[at] ^= 0xff;
  writeFileSync(path, b);
  const img = makeImage(t.dir, 'x.img', c.deviceBytes);
  try { await applyWdiffs(img, [path], { skipVerify: true }); assert.unreachable(); } catch (e) {
    assert.instance(e, ChecksumError);
    assert.is((e as ChecksumError).source, path);
    assert.ok((e as ChecksumError).offset! <= at, `offset ${(e as ChecksumError).offset}`);
  }
});
C('an indexed image whose slices are written is checked whole: a byte changed inside one stops the copy', async () => {
  // In this vector, the image at 1619488 (15872 bytes, raw) is shared by sliced records.
  const c = casesOf('wlog').find((x) => x.name === 'w-pbs4096-rand')!;
  const b = Buffer.from(readFileSync(vec(c.indexedWdiff)));
  const at = 1619488 + 4 * 512 + 10;
  b[at] ^= 0x40;
  const path = join(t.dir, 'sliced.wdiff');
  writeFileSync(path, b);
  const img = makeImage(t.dir, 's.img', c.deviceBytes);
  try { await applyWdiffs(img, [path], { skipVerify: true }); assert.unreachable(); } catch (e) {
    assert.instance(e, ChecksumError);
    assert.is((e as ChecksumError).offset, 1619488);
  }
});
C('large records without data (a discard written as zeros, ALLZERO) are written a buffer at a time, by pieces and from here alike', async () => {
  const path = join(t.dir, 'big-zeros.wdiff');
  const w = await SortedDiffWriter.create(path);
  // 40 MiB of discard and 9 MiB + 512 B of ALLZERO, with normal data around them.
  await w.write(normalIo(0, Buffer.alloc(4096, 0x11)));
  await w.write({ addr: 8, blocks: (40 << 20) / 512, kind: 'discard' });
  await w.write({ addr: 8 + (40 << 20) / 512, blocks: (9 << 20) / 512 + 1, kind: 'allzero' });
  await w.write(normalIo(8 + (49 << 20) / 512 + 1, Buffer.alloc(512, 0x22)));
  await w.close();
  const want = Buffer.alloc(56 << 20, 0x55);
  want.fill(0x11, 0, 4096);
  want.fill(0, 4096, 4096 + (49 << 20) + 512);
  want.fill(0x22, 4096 + (49 << 20) + 512, 4096 + (49 << 20) + 1024);
  // The largest buffer asked for while applying: never one the size of such a record.
  let largest = 0;
  const B = Buffer as unknown as Record<'alloc' | 'allocUnsafe' | 'allocUnsafeSlow', (n: number, ...a: unknown[]) => Buffer>;
  const saved = { alloc: B.alloc, allocUnsafe: B.allocUnsafe, allocUnsafeSlow: B.allocUnsafeSlow };
  for (const name of ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const) B[name] = (n, ...a) => { largest = Math.max(largest, n); return saved[name].call(Buffer, n, ...a); };
  try {
    for (const fn of [counted, undefined]) {
      useCopyPieces(fn);
      const img = makeImage(t.dir, 'z.img', 56 << 20, 0x55);
      largest = 0;
      const s = await applyWdiffs(img, [path], { discard: 'zero' });
      assert.ok(largest <= 8 << 20, `a buffer of ${largest} bytes`);
      assert.ok(readFileSync(img).equals(want), fn ? 'by pieces' : 'from here');
      assert.is(s.bytesWritten, 4096 + (49 << 20) + 1024);
    }
  } finally {
    Object.assign(B, saved);
    useCopyPieces(counted);
  }
});
C.run();
