// Readers opened with `recycle` (indexed: image slabs; sorted: file chunks) read into memory they
// reuse once the caller releases the IOs: data handed out must stay intact until released, and be
// reused after.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeGeneratedWlog } from '@walbjs/log-format';
import { IndexedDiffReader, SortedDiffReader, SortedDiffWriter, VirtualFullImage, applyWdiffs, convertWlogs, ioBytes, mergeWdiffs, normalIo, parseCompressOpt, type DiffIo } from '../src/index.ts';
import { makeImage, tempDir } from './helpers.ts';

const R = suite('readers: recycled memory');
const t = tempDir();
const inputs: string[] = [];

R.before(async () => {
  for (let i = 0; i < 3; i++) {
    const wlog = join(t.dir, `w${i}.wlog`);
    await writeGeneratedWlog(wlog, { seed: 40 + i, pbs: 4096, totalBytes: 24 << 20, deviceBytes: 32 << 20, randomData: true, discard: false, allZero: false });
    const d = join(t.dir, `d${i}.wdiff`);
    await convertWlogs([wlog], d, { indexed: true });
    inputs.push(d);
  }
});
R.after(() => t.cleanup());

/** Every IO of `path` with a copy of its bytes, read without recycling. */
async function expected(path: string): Promise<Array<{ io: DiffIo; bytes?: Buffer }>> {
  const r = await IndexedDiffReader.open(path);
  const out: Array<{ io: DiffIo; bytes?: Buffer }> = [];
  for await (const io of r.ios()) out.push({ io, bytes: io.kind === 'normal' ? Buffer.from((await ioBytes(io))!) : undefined });
  await r.close();
  return out;
}

/**
 * Read `items` as a caller that holds each IO and releases it `lag` IOs later, or (`batch`) every
 * `batch` IOs releases everything read so far at once (`release` gets the last IO let go); `check`
 * runs on each IO just before its release and on those still held at the end. Returns the number
 * of IOs read.
 */
async function readReleasing<T>(items: AsyncIterable<T>, lag: number | 'batch', batch: number,
  check: (x: T, i: number) => unknown, release: (last: T) => void): Promise<number> {
  const held: Array<{ x: T; i: number }> = [];
  let i = 0;
  for await (const x of items) {
    held.push({ x, i: i++ });
    const n = lag === 'batch' ? (held.length === batch ? batch : 0) : held.length - lag;
    if (n <= 0) continue;
    const out = held.splice(0, n);
    for (const h of out) await check(h.x, h.i);
    release(out[out.length - 1].x);
  }
  for (const h of held) await check(h.x, h.i);
  return i;
}

/**
 * Merge `parts` (recycling their memory) and apply the result to a zero image of `bytes`; apply
 * them one by one to another, and all at once to a third: the three must be equal.
 */
async function assertMergeMatchesApplies(tag: string, parts: string[], bytes: number, opts: Parameters<typeof mergeWdiffs>[2] = {}): Promise<void> {
  const merged = join(t.dir, `${tag}-merged.wdiff`);
  await mergeWdiffs(parts, merged, opts);
  const one = makeImage(t.dir, `${tag}-one.img`, bytes), each = makeImage(t.dir, `${tag}-each.img`, bytes), all = makeImage(t.dir, `${tag}-all.img`, bytes);
  await applyWdiffs(one, [merged]);
  for (const d of parts) await applyWdiffs(each, [d]);
  assert.ok(readFileSync(one).equals(readFileSync(each)), `${tag}: the merge applied differs from the inputs applied one by one`);
  // Several inputs applied at once: their merge recycles memory as it writes.
  await applyWdiffs(all, parts);
  assert.ok(readFileSync(all).equals(readFileSync(each)), `${tag}: the multi-input apply differs`);
}

R('indexed reader: IOs not released keep their data while it reads on; released slabs are read into again', async () => {
  const want = await expected(inputs[0]);
  assert.ok(want.length > 100, `${want.length} IOs`);
  // Released 2,000 IOs late (several MiB of images, more than a slab); or in batches of 500 IOs,
  // everything read so far released at once (while the next record may still share an image).
  for (const lag of [2000, 'batch'] as const) {
    const r = await IndexedDiffReader.open(inputs[0], { recycle: true });
    const memories = new Set<ArrayBufferLike>();
    let checked = 0;
    const i = await readReleasing(r.ios(), lag, 500, async (io, k) => {
      assert.is(io.addr, want[k].io.addr);
      if (io.kind !== 'normal') return;
      memories.add(io.data!.image.stored.buffer);
      assert.ok((await ioBytes(io))!.equals(want[k].bytes!), `lag ${lag}: IO ${k} at LB ${io.addr} changed before its release`);
      checked++;
    }, (io) => r.releaseBelow(io.addr + io.blocks));
    await r.close();
    assert.is(i, want.length);
    assert.ok(checked > 1000, `lag ${lag}: ${checked} IOs checked`);
    // 24 MiB of images read through a few 4 MiB slabs (and no more than a few of their own).
    assert.ok(memories.size < 12, `lag ${lag}: ${memories.size} distinct memories for 24 MiB of images`);
  }
});

R('without releases nothing is reused: every IO held to the end is intact', async () => {
  const want = await expected(inputs[1]);
  const r = await IndexedDiffReader.open(inputs[1], { recycle: true });
  const got: DiffIo[] = [];
  for await (const io of r.ios()) got.push(io);
  await r.close();
  assert.is(got.length, want.length);
  for (let i = 0; i < got.length; i++) if (got[i].kind === 'normal') assert.ok((await ioBytes(got[i]))!.equals(want[i].bytes!), `IO ${i}`);
});

R('a merge of indexed inputs (recycling their memory), applied, equals the inputs applied one by one', async () => {
  await assertMergeMatchesApplies('indexed', inputs, 32 << 20);
});

R('compressed indexed inputs merged with IOs split (pieces of one image written apart), applied, equal them applied one by one', async () => {
  const parts: string[] = [];
  for (let i = 0; i < 3; i++) {
    const wlog = join(t.dir, `c${i}.wlog`);
    await writeGeneratedWlog(wlog, { seed: 60 + i, pbs: 4096, totalBytes: 12 << 20, deviceBytes: 16 << 20, maxIoBytes: 512 << 10, randomData: false, discard: false, allZero: false });
    const d = join(t.dir, `c${i}.wdiff`);
    await convertWlogs([wlog], d, { indexed: true, cmpr: parseCompressOpt('zstd') });
    parts.push(d);
  }
  await assertMergeMatchesApplies('compressed', parts, 16 << 20, { maxIoBlocks: 8, cmpr: parseCompressOpt('snappy') });
});

R('sorted reader: IOs not released keep their data while it reads on; released chunks are read into again', async () => {
  const wlog = join(t.dir, 'small-ios.wlog');
  await writeGeneratedWlog(wlog, { seed: 70, pbs: 4096, totalBytes: 24 << 20, deviceBytes: 32 << 20, maxIoBytes: 32 << 10, randomData: true, discard: false, allZero: false });
  const sorted = join(t.dir, 'small-ios.wdiff');
  await convertWlogs([wlog], sorted);
  const want: Buffer[] = [];
  for await (const e of await SortedDiffReader.open(sorted)) want.push(Buffer.from(e.stored));
  // 1 MiB chunks: released 300 IOs late (several chunks); or in batches of 80 IOs, everything
  // read so far released at once (while the chunk being read has more IOs to come).
  for (const lag of [300, 'batch'] as const) {
    const r = await SortedDiffReader.open(sorted, { recycle: true, chunkBytes: 1 << 20 });
    const memories = new Set<ArrayBufferLike>();
    let checked = 0;
    const i = await readReleasing(r, lag, 80, (e, k) => {
      memories.add(e.stored.buffer);
      assert.ok(e.stored.equals(want[k]), `lag ${lag}: record ${k} at LB ${e.io.addr} changed before its release`);
      checked++;
    }, (e) => r.releaseBelow(e.io.addr + e.io.blocks));
    assert.is(i, want.length);
    assert.is(checked, want.length);
    // 24 chunks of 1 MiB read through a few buffers (records across chunks are copies of their own).
    const chunks = [...memories].filter((m) => m.byteLength === 1 << 20).length;
    assert.ok(chunks < 14, `lag ${lag}: ${chunks} distinct chunk buffers for ${want.length} records`);
  }
});

R('sorted inputs merged (recycling their chunks), applied, equal them applied one by one', async () => {
  const sorted: string[] = [];
  for (let k = 0; k < inputs.length; k++) {
    const d = join(t.dir, `s${k}.wdiff`);
    await mergeWdiffs([inputs[k]], d);
    sorted.push(d);
  }
  await assertMergeMatchesApplies('sorted', sorted, 32 << 20);
});

R('one sorted diff of records larger than two read chunks applies whole (apply reads it into a ring of chunks)', async () => {
  // Raw 5 MiB records span three 2 MiB chunks: the ring reads into a chunk's buffer again while
  // such a record's first part is still to be gathered.
  const d = join(t.dir, 'big-records.wdiff');
  const w = await SortedDiffWriter.create(d, { cmpr: parseCompressOpt('none') });
  const want = Buffer.alloc(64 << 20);
  for (let k = 0; k < 10; k++) {
    const bytes = randomBytes((5 << 20) + 512 * k);
    const addr = k * 12_000 + 7;
    bytes.copy(want, addr * 512);
    await w.write(normalIo(addr, bytes));
  }
  await w.close();
  for (let round = 0; round < 3; round++) {
    const img = makeImage(t.dir, `big-${round}.img`, want.length);
    await applyWdiffs(img, [d]);
    assert.ok(readFileSync(img).equals(want), `round ${round}`);
  }
});

R('a virtual full image streamed over indexed diffs (recycling their memory) equals them applied', async () => {
  const base = makeImage(t.dir, 'base.img', 32 << 20, 0x5a), applied = makeImage(t.dir, 'applied.img', 32 << 20, 0x5a);
  for (const d of inputs) await applyWdiffs(applied, [d]);
  const v = await VirtualFullImage.open(base, inputs);
  const parts: Buffer[] = [];
  // Small chunks: many releases, each IO placed across chunk ends.
  for await (const b of v.stream(192 << 10)) parts.push(b);
  await v.close();
  assert.ok(Buffer.concat(parts).equals(readFileSync(applied)), 'the streamed image differs');
});

R.run();
