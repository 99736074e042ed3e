// The target's prefetch: apply asks for the pages of an image file or block device that its
// writes cover in part (every one the merged writes need, nothing that is not the edge of some
// IO), none for a file without data, none for discards it does not write; the image is the same with or without it;
// a prefetch that fails changes nothing but itself. And the addon's prefetchRanges on real files.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, openSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeGeneratedWlog } from '@walbjs/log-format';
import { loadNative } from '@walbjs/native-walb';
import { applyWdiffs, convertWlogs, mergeIos, openWdiff, parseCompressOpt, useCopyPieces, usePrefetch, type DiffIo, type DiscardMode, type PrefetchRangesFn } from '../src/index.ts';
import { makeImage, sha256File, tempDir } from './helpers.ts';

/** Added to every property's seed: CI runs the fixed cases; `WALB_FUZZ_SEED=n` explores others. */
const SEED = Number(process.env.WALB_FUZZ_SEED ?? 0);
const native = loadNative();
const t = tempDir();
process.on('exit', () => t.cleanup());
const PAGE = 4096;

/** A prefetch that records every page asked for. */
function recording(): { fn: PrefetchRangesFn; pages: Set<number>; calls: number } {
  const r = { pages: new Set<number>(), calls: 0, fn: (async (_fd: number, ranges: Float64Array) => {
    r.calls++;
    for (let i = 0; i < ranges.length; i += 2) {
      assert.ok(ranges[i] % PAGE === 0 && ranges[i + 1] > 0 && ranges[i + 1] % PAGE === 0, `range ${ranges[i]} +${ranges[i + 1]}`);
      for (let p = ranges[i]; p < ranges[i] + ranges[i + 1]; p += PAGE) r.pages.add(p);
    }
  }) as PrefetchRangesFn };
  return r;
}

/** The pages that writes of `ios` cover in part (the model: each IO's two edges). */
function edgePages(ios: Iterable<DiffIo>, discard: DiscardMode, into = new Set<number>()): Set<number> {
  for (const io of ios) {
    if (io.kind === 'discard' && discard !== 'zero') continue;
    for (const b of [io.addr * 512, (io.addr + io.blocks) * 512]) if (b % PAGE) into.add(b - (b % PAGE));
  }
  return into;
}

async function iosOf(paths: string[]): Promise<DiffIo[]> {
  const inputs = await Promise.all(paths.map((p) => openWdiff(p)));
  try {
    const out: DiffIo[] = [];
    for await (const io of inputs.length === 1 ? inputs[0].ios() : mergeIos(inputs.map((i) => i.ios()))) out.push({ addr: io.addr, blocks: io.blocks, kind: io.kind });
    return out;
  } finally {
    await Promise.all(inputs.map((i) => i.close()));
  }
}

async function randomDiffs(specs: Array<[number, boolean, string]>): Promise<string[]> {
  const diffs: string[] = [];
  for (const [i, [seed, indexed, cmpr]] of specs.entries()) {
    const wlog = join(t.dir, `p${i}.wlog`), diff = join(t.dir, `p${i}.wdiff`);
    await writeGeneratedWlog(wlog, { seed, totalBytes: 1 << 20, deviceBytes: 4 << 20, discard: true, allZero: true });
    await convertWlogs([wlog], diff, { indexed, cmpr: parseCompressOpt(cmpr) });
    diffs.push(diff);
  }
  return diffs;
}

const P = suite('target prefetch');
P.after.each(() => { usePrefetch(undefined); useCopyPieces(undefined); });

P('random diffs applied to an image with data: every page the merged writes cover in part is asked for, nothing but IO edges, the same image', async () => {
  // Without the check first (skipVerify), every page comes from the copy's own walk.
  await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 1, max: 1e9 }), fc.boolean(), fc.constantFrom('none', 'snappy')), { minLength: 1, maxLength: 3 }), fc.constantFrom('ignore', 'zero', 'punch'), fc.boolean(), fc.boolean(), async (specs, discard, pieces, skipVerify) => {
    const diffs = await randomDiffs(specs);
    useCopyPieces(pieces ? native.copyPieces : undefined);
    const want = makeImage(t.dir, 'want.img', 4 << 20, 0x55);
    const got = join(t.dir, 'got.img');
    copyFileSync(want, got);
    usePrefetch(undefined);
    await applyWdiffs(want, diffs, { discard });
    const r = recording();
    usePrefetch(r.fn);
    await applyWdiffs(got, diffs, { discard, skipVerify });
    assert.is(sha256File(got), sha256File(want), 'the same image');
    const merged = edgePages(await iosOf(diffs), discard);
    for (const p of merged) assert.ok(r.pages.has(p), `page ${p}, covered in part by a write, was asked for`);
    const anyEdge = edgePages(await iosOf(diffs.slice(0, 1)), discard, new Set(merged));
    for (const d of diffs.slice(1)) edgePages(await iosOf([d]), discard, anyEdge);
    for (const p of r.pages) assert.ok(anyEdge.has(p), `page ${p} asked for is the edge of some IO`);
  }), { numRuns: 16, seed: 4242 + SEED });
});

/**
 * Apply `diffs` to a fresh image by pieces, recording the pages asked for before the first piece
 * is written (the native copy's first call).
 */
async function pagesBeforeFirstWrite(name: string, diffs: string[], opts: Parameters<typeof applyWdiffs>[2]): Promise<Set<number>> {
  let copying = false;
  const before = new Set<number>();
  useCopyPieces(async (...a) => { copying = true; return native.copyPieces(...a); });
  usePrefetch(async (_fd, ranges) => {
    if (copying) return;
    for (let i = 0; i < ranges.length; i += 2) for (let p = ranges[i]; p < ranges[i] + ranges[i + 1]; p += PAGE) before.add(p);
  });
  await applyWdiffs(makeImage(t.dir, name, 4 << 20, 0x55), diffs, opts);
  assert.ok(copying, 'copied by pieces');
  return before;
}

P('while apply checks its inputs (the disk idle), the edge pages of every input are asked for, before the first write', async () => {
  const diffs = await randomDiffs([[31, false, 'none'], [32, true, 'snappy']]);
  const before = await pagesBeforeFirstWrite('early.img', diffs, { discard: 'zero' });
  const edges = edgePages(await iosOf([diffs[0]]), 'zero');
  edgePages(await iosOf([diffs[1]]), 'zero', edges);
  assert.ok(edges.size > 0);
  for (const p of edges) assert.ok(before.has(p), `page ${p} asked for during the check`);
});

P('without the check, the copy asks for the pages of each batch of writes before the batch is written', async () => {
  const diffs = await randomDiffs([[33, false, 'none'], [34, true, 'none']]);
  const before = await pagesBeforeFirstWrite('batch.img', diffs, { skipVerify: true });
  const merged = edgePages(await iosOf(diffs), 'ignore');
  assert.ok(merged.size > 0);
  for (const p of merged) assert.ok(before.has(p), `page ${p} asked for before the first batch was written`);
});

P('a target without data (a new sparse image): nothing is asked for', async () => {
  const diffs = await randomDiffs([[7, false, 'none']]);
  const r = recording();
  usePrefetch(r.fn);
  const sparse = join(t.dir, 'sparse.img');
  writeFileSync(sparse, '');
  truncateSync(sparse, 4 << 20);
  await applyWdiffs(sparse, diffs);
  assert.is(r.calls, 0);
});

function canUseLoop(): boolean {
  if (process.getuid?.() !== 0) return false;
  try { execFileSync('losetup', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

// A block device's page cache works in blocks of up to 4 KiB too (a loop device over a file of
// whole pages: 4096): a 512-byte write inside one makes the kernel read it first.
(canUseLoop() ? P : P.skip)('a block device (a loop device) gets its pages asked for too, and the same bytes as a file', async () => {
  const diffs = await randomDiffs([[41, false, 'none'], [42, true, 'snappy']]);
  const backing = makeImage(t.dir, 'backing.img', 4 << 20, 0x55);
  const file = makeImage(t.dir, 'as-file.img', 4 << 20, 0x55);
  const dev = execFileSync('losetup', ['--find', '--show', backing], { encoding: 'utf8' }).trim();
  try {
    const r = recording();
    usePrefetch(r.fn);
    useCopyPieces(native.copyPieces);
    await applyWdiffs(dev, diffs, { discard: 'zero' });
    usePrefetch(undefined);
    await applyWdiffs(file, diffs, { discard: 'zero' });
    const merged = edgePages(await iosOf(diffs), 'zero');
    assert.ok(merged.size > 0);
    for (const p of merged) assert.ok(r.pages.has(p), `page ${p} of the device asked for`);
    execFileSync('sync');
    assert.ok(readFileSync(dev).equals(readFileSync(file)), 'the device differs from the same apply on a file');
  } finally {
    execFileSync('losetup', ['-d', dev]);
  }
});

P('a prefetch that fails ends itself, never the apply: the same image, no call after the failure', async () => {
  const diffs = await randomDiffs([[11, false, 'none'], [12, true, 'snappy']]);
  const want = makeImage(t.dir, 'want2.img', 4 << 20, 0x55);
  const got = join(t.dir, 'got2.img');
  copyFileSync(want, got);
  await applyWdiffs(want, diffs, { discard: 'zero' });
  let calls = 0;
  usePrefetch(async () => { calls++; throw Object.assign(new Error('EBADF'), { code: 'ERR_WALB_PREFETCH' }); });
  await applyWdiffs(got, diffs, { discard: 'zero' });
  assert.is(sha256File(got), sha256File(want));
  assert.is(calls, 1);
});

P('the addon: pages of a real file asked for, an apply through it gives the same image; bad arguments and descriptors are errors (cached pages left alone: the Rust tests)', async () => {
  const f = makeImage(t.dir, 'real.img', 1 << 20, 0x11);
  const fd = openSync(f, 'r');
  try {
    await native.prefetchRanges(fd, Float64Array.of(0, 4096, 65536, 8192));
    await native.prefetchRanges(fd, new Float64Array(0));
    usePrefetch(native.prefetchRanges);
    useCopyPieces(native.copyPieces);
    const diffs = await randomDiffs([[21, false, 'none']]);
    const want = makeImage(t.dir, 'want3.img', 4 << 20, 0x55);
    const got = join(t.dir, 'got3.img');
    copyFileSync(want, got);
    await applyWdiffs(got, diffs);
    usePrefetch(undefined);
    await applyWdiffs(want, diffs);
    assert.is(sha256File(got), sha256File(want));
    for (const [args, re] of [[[fd, Float64Array.of(0)], /multiple of 2/], [[fd, [0, 4096]], /Float64Array/], [[-1, Float64Array.of(0, 4096)], /fd/], [[fd, Float64Array.of(-4096, 4096)], /offset/], [[fd, Float64Array.of(0, 0.5)], /length/]] as const) {
      assert.throws(() => (native.prefetchRanges as (...a: unknown[]) => unknown)(...args), re);
    }
  } finally {
    closeSync(fd);
  }
  // A descriptor no longer open: a typed rejection with its errno.
  try { await native.prefetchRanges(fd, Float64Array.of(0, 4096)); assert.unreachable(); } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_WALB_PREFETCH');
    assert.is((e as { errno?: number }).errno, 9);
  }
});

P.run();
