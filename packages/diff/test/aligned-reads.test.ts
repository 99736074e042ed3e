// Read buffers at page-aligned addresses (`useBufferAlignment` with the native addon's function,
// as the CLI runs): they are aligned, a sorted reader still recycles its chunks (views into larger
// allocations), and every operation writes the same bytes as with plain buffers.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allocReadBuffer, useBufferAlignment, writeGeneratedWlog } from '@walbjs/log-format';
import { loadNative } from '@walbjs/native-walb';
import { SortedDiffReader, VirtualFullImage, applyWdiffs, convertWlogs, mergeWdiffs, parseCompressOpt, useBatchStore } from '../src/index.ts';
import { makeImage, sha256File, tempDir } from './helpers.ts';

const t = tempDir();
process.on('exit', () => t.cleanup());
const A = suite('aligned read buffers');
const native = loadNative();
/** Allocations placed by the alignment function since the last reset. */
let placed = 0;
const counting = (b: Uint8Array, align: number): number => { placed++; return native.alignOffset(b, align); };
A.after(async () => { useBufferAlignment(undefined); await useBatchStore(undefined); });

A('buffers start on a page, whatever their size', () => {
  useBufferAlignment(native.alignOffset);
  for (const n of [1, 4096, 70_000, 2 << 20, (2 << 20) + 1]) {
    const b = allocReadBuffer(n);
    assert.is(b.byteLength, n);
    assert.is(native.alignOffset(b, 4096), 0, `${n} bytes`);
  }
});

A('a recycling sorted reader reads into the same few aligned chunks', async () => {
  const wlog = join(t.dir, 'r.wlog'), d = join(t.dir, 'r.wdiff');
  await writeGeneratedWlog(wlog, { seed: 5, pbs: 4096, totalBytes: 6 << 20, deviceBytes: 64 << 20, randomData: true, discard: false });
  await convertWlogs([wlog], d, { cmpr: parseCompressOpt('none') });
  const want: Buffer[] = [];
  useBufferAlignment(undefined);
  for await (const e of await SortedDiffReader.open(d)) want.push(Buffer.from(e.stored));
  useBufferAlignment(counting);
  placed = 0;
  const r = await SortedDiffReader.open(d, { recycle: true, chunkBytes: 64 << 10 });
  let k = 0;
  for (let e = await r.next(); e; e = await r.next()) {
    assert.ok(e.stored.equals(want[k]), `record ${k}`);
    r.releaseBelow(e.io.addr + e.io.blocks);
    k++;
  }
  await r.close();
  assert.is(k, want.length);
  const chunks = Math.ceil(readFileSync(d).byteLength / (64 << 10));
  assert.ok(chunks >= 50, `${chunks} chunks`);
  // Without reuse every chunk would be a fresh allocation.
  assert.ok(placed <= 4, `${placed} chunks allocated for ${chunks} read`);
});

A('conversion, merge, apply and the virtual full image: the same bytes as with plain buffers', async () => {
  const wlogs: string[] = [];
  for (let i = 0; i < 2; i++) {
    const w = join(t.dir, `w${i}.wlog`);
    await writeGeneratedWlog(w, { seed: 70 + i, pbs: 512, totalBytes: 5 << 20, deviceBytes: 8 << 20, maxIoBytes: 600 << 10, randomData: i === 0 });
    wlogs.push(w);
  }
  const run = async (tag: string): Promise<string[]> => {
    const out: string[] = [];
    const diffs: string[] = [];
    for (const [i, w] of wlogs.entries()) {
      for (const indexed of [false, true]) {
        const d = join(t.dir, `${tag}-${i}-${indexed}.wdiff`);
        await convertWlogs([w], d, { indexed });
        diffs.push(d);
      }
    }
    const merged = join(t.dir, `${tag}-m.wdiff`);
    await mergeWdiffs(diffs, merged);
    const img = makeImage(t.dir, `${tag}.img`, 8 << 20, 0x55);
    await applyWdiffs(img, diffs);
    const v = await VirtualFullImage.open(makeImage(t.dir, `${tag}-base.img`, 8 << 20, 0x55), diffs);
    const h = createHash('sha256');
    for await (const c of v.stream(1 << 20)) h.update(c);
    await v.close();
    for (const p of [...diffs, merged, img]) out.push(sha256File(p));
    out.push(h.digest('hex'));
    return out;
  };
  for (const batch of [false, true]) {
    await useBatchStore(batch ? native.storeBatch : undefined);
    useBufferAlignment(undefined);
    const plain = await run(`p${batch}`);
    useBufferAlignment(counting);
    placed = 0;
    const aligned = await run(`a${batch}`);
    assert.ok(placed > 0, 'no buffer was placed');
    assert.equal(aligned, plain, batch ? 'with the batch store' : 'without the batch store');
  }
});

A.run();
