// Readers opened with `recycle` (indexed: image slabs; sorted: file chunks) read into memory they
// reuse once the caller releases the IOs: data handed out must stay intact until released, and be
// reused after.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeGeneratedWlog } from '@walbjs/log-format';
import { IndexedDiffReader, SortedDiffReader, VirtualFullImage, applyWdiffs, convertWlogs, ioBytes, mergeWdiffs, parseCompressOpt, type DiffIo } from '../src/index.ts';
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

R('indexed reader: IOs not released keep their data while it reads on; released slabs are read into again', async () => {
  const want = await expected(inputs[0]);
  assert.ok(want.length > 100, `${want.length} IOs`);
  // Released 2,000 IOs late (several MiB of images, more than a slab); or in batches of 500 IOs,
  // everything read so far released at once (while the next record may still share an image).
  for (const lag of [2000, 'batch'] as const) {
    const r = await IndexedDiffReader.open(inputs[0], { recycle: true });
    const held: Array<{ io: DiffIo; i: number }> = [];
    const memories = new Set<ArrayBufferLike>();
    let i = 0, checked = 0;
    const check = async (h: { io: DiffIo; i: number }) => {
      if (h.io.kind !== 'normal') return;
      assert.ok((await ioBytes(h.io))!.equals(want[h.i].bytes!), `lag ${lag}: IO ${h.i} at LB ${h.io.addr} changed before its release`);
      checked++;
    };
    for await (const io of r.ios()) {
      assert.is(io.addr, want[i].io.addr);
      if (io.kind === 'normal') memories.add(io.data!.image.stored.buffer);
      held.push({ io, i: i++ });
      if (lag === 'batch') {
        if (held.length === 500) {
          const batch = held.splice(0, 500);
          for (const h of batch) await check(h);
          const last = batch[batch.length - 1].io;
          r.releaseBelow(last.addr + last.blocks);
        }
      } else if (held.length > lag) {
        const h = held.shift()!;
        await check(h);
        r.releaseBelow(h.io.addr + h.io.blocks);
      }
    }
    for (const h of held) await check(h);
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
  const merged = join(t.dir, 'merged.wdiff');
  await mergeWdiffs(inputs, merged);
  const one = makeImage(t.dir, 'one.img', 32 << 20), each = makeImage(t.dir, 'each.img', 32 << 20);
  await applyWdiffs(one, [merged]);
  for (const d of inputs) await applyWdiffs(each, [d]);
  assert.ok(readFileSync(one).equals(readFileSync(each)), 'the images differ');
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
  const merged = join(t.dir, 'c-merged.wdiff');
  await mergeWdiffs(parts, merged, { maxIoBlocks: 8, cmpr: parseCompressOpt('snappy') });
  const one = makeImage(t.dir, 'c-one.img', 16 << 20), each = makeImage(t.dir, 'c-each.img', 16 << 20);
  await applyWdiffs(one, [merged]);
  for (const d of parts) await applyWdiffs(each, [d]);
  assert.ok(readFileSync(one).equals(readFileSync(each)), 'the images differ');
  // And several compressed inputs applied at once (their merge recycling memory as it writes).
  const all = makeImage(t.dir, 'c-all.img', 16 << 20);
  await applyWdiffs(all, parts);
  assert.ok(readFileSync(all).equals(readFileSync(each)), 'the multi-input apply differs');
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
    const held: Array<{ io: DiffIo; stored: Buffer; i: number }> = [];
    const memories = new Set<ArrayBufferLike>();
    let i = 0, checked = 0;
    const check = (h: { io: DiffIo; stored: Buffer; i: number }) => {
      assert.ok(h.stored.equals(want[h.i]), `lag ${lag}: record ${h.i} at LB ${h.io.addr} changed before its release`);
      checked++;
    };
    for await (const e of r) {
      memories.add(e.stored.buffer);
      held.push({ io: e.io, stored: e.stored, i: i++ });
      if (lag === 'batch') {
        if (held.length === 80) {
          const batch = held.splice(0, 80);
          batch.forEach(check);
          const last = batch[batch.length - 1].io;
          r.releaseBelow(last.addr + last.blocks);
        }
      } else if (held.length > lag) {
        const h = held.shift()!;
        check(h);
        r.releaseBelow(h.io.addr + h.io.blocks);
      }
    }
    for (const h of held) check(h);
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
  const merged = join(t.dir, 's-merged.wdiff');
  await mergeWdiffs(sorted, merged);
  const one = makeImage(t.dir, 's-one.img', 32 << 20), each = makeImage(t.dir, 's-each.img', 32 << 20);
  await applyWdiffs(one, [merged]);
  for (const d of sorted) await applyWdiffs(each, [d]);
  assert.ok(readFileSync(one).equals(readFileSync(each)), 'the images differ');
  const all = makeImage(t.dir, 's-all.img', 32 << 20);
  await applyWdiffs(all, sorted);
  assert.ok(readFileSync(all).equals(readFileSync(each)), 'the multi-input apply differs');
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
