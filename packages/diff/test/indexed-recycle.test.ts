// An indexed reader opened with `recycle` reads images into memory it reuses once the caller
// releases the IOs: data handed out must stay intact until released, and be reused after.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeGeneratedWlog } from '@walbjs/log-format';
import { IndexedDiffReader, VirtualFullImage, applyWdiffs, convertWlogs, ioBytes, mergeWdiffs, parseCompressOpt, type DiffIo } from '../src/index.ts';
import { makeImage, tempDir } from './helpers.ts';

const R = suite('indexed reader: recycled image memory');
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

R('IOs not released keep their data while the reader reads on; released ones let their memory be reused', async () => {
  const want = await expected(inputs[0]);
  assert.ok(want.length > 100, `${want.length} IOs`);
  const r = await IndexedDiffReader.open(inputs[0], { recycle: true });
  // The caller releases with a lag of 2,000 IOs (several MiB of images, more than a slab): each
  // IO is checked just before its release, after 2,000 more were read.
  const held: Array<{ io: DiffIo; i: number }> = [];
  const memories = new Set<ArrayBufferLike>();
  let i = 0, checked = 0;
  for await (const io of r.ios()) {
    const w = want[i];
    assert.is(io.addr, w.io.addr);
    if (io.kind === 'normal') memories.add(io.data!.image.stored.buffer);
    held.push({ io, i: i++ });
    if (held.length > 2000) {
      const h = held.shift()!;
      if (h.io.kind === 'normal') { assert.ok((await ioBytes(h.io))!.equals(want[h.i].bytes!), `IO ${h.i} at LB ${h.io.addr} changed before its release`); checked++; }
      r.releaseBelow(h.io.addr + h.io.blocks);
    }
  }
  await r.close();
  assert.ok(checked > 50, `${checked} IOs checked`);
  // 24 MiB of images read through a few 4 MiB slabs (and no more than a few of their own).
  assert.ok(memories.size < 12, `${memories.size} distinct memories for 24 MiB of images`);
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
