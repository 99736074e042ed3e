// The walb-tools 1.0.19 vectors: what our conversion, merge, apply and virtual full image produce
// equals what the original produced, image hash for image hash.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  IndexedDiffReader, SortedDiffReader, VirtualFullImage, applyWdiffs, convertWlogs, formatDiffFileHeader,
  formatIndexedRecord, formatSortedRecord, mergeWdiffs, openWdiff, ValueOutOfRangeError, verifyWdiffs, WdiffFormatError,
} from '../src/index.ts';
import { casesOf, gunzipVec, makeImage, sha256File, tempDir, vec } from './helpers.ts';

const t = tempDir();
process.on('exit', () => t.cleanup());

const Wlog = suite('wlog cases');
for (const c of casesOf('wlog')) {
  Wlog(`${c.name}: our sorted and indexed conversions apply to the recorded images`, async () => {
    for (const indexed of [false, true]) {
      const out = join(t.dir, `${c.name}.${indexed}.wdiff`);
      await convertWlogs([vec(c.wlog)], out, { indexed });
      const img = makeImage(t.dir, `${c.name}.img`, c.deviceBytes);
      await applyWdiffs(img, [out]);
      assert.is(sha256File(img), indexed ? c.imageSha256AfterIndexedRedo : c.imageSha256AfterSortedRedo, `indexed=${indexed}`);
      const img55 = makeImage(t.dir, `${c.name}.55.img`, c.deviceBytes, 0x55);
      await applyWdiffs(img55, [out], { discard: 'zero' });
      assert.is(sha256File(img55), c.imageSha256AfterSortedRedoDiscardAsZeroOn0x55, `discard-as-zero indexed=${indexed}`);
    }
  });
  Wlog(`${c.name}: the original's sorted and indexed files apply to the recorded images`, async () => {
    for (const [f, sum] of [[c.sortedWdiff, c.imageSha256AfterSortedRedo], [c.indexedWdiff, c.imageSha256AfterIndexedRedo]]) {
      const img = makeImage(t.dir, `${c.name}.orig.img`, c.deviceBytes);
      await applyWdiffs(img, [vec(f)]);
      assert.is(sha256File(img), sum, f);
    }
  });
  Wlog(`${c.name}: the record lines equal the original's wdiff-show`, async () => {
    for (const f of [c.sortedWdiff, c.indexedWdiff]) assert.fixture(await showText(vec(f)), readFileSync(vec(`${f}.show.txt`), 'utf8'));
  });
}
Wlog('sorted conversion in memory and through the intermediate file give the same bytes', async () => {
  for (const c of casesOf('wlog')) {
    const a = join(t.dir, `${c.name}.mem.wdiff`), b = join(t.dir, `${c.name}.file.wdiff`);
    await convertWlogs([vec(c.wlog)], a);
    await convertWlogs([vec(c.wlog)], b, { memoryBytes: 0 });
    assert.ok(readFileSync(a).equals(readFileSync(b)), c.name);
  }
});
Wlog.run();

async function showText(path: string): Promise<string> {
  const d = await openWdiff(path);
  const lines = [formatDiffFileHeader(d.header)];
  await d.close();
  if (d.header.type === 1) {
    const r = await IndexedDiffReader.open(path);
    for (const rec of r.records()) lines.push(formatIndexedRecord(rec));
    await r.close();
  } else {
    for await (const e of await SortedDiffReader.open(path)) lines.push(formatSortedRecord(e.record));
  }
  return lines.join('\n') + '\n';
}

const Codec = suite('codec cases');
for (const c of casesOf('codec')) {
  Codec(`${c.codec}: ${c.wdiff} decodes and applies to the recorded image; show lines match`, async () => {
    const img = makeImage(t.dir, `codec-${c.codec}.img`, c.deviceBytes);
    await applyWdiffs(img, [vec(c.wdiff)]);
    assert.is(sha256File(img), c.imageSha256AfterRedo);
    assert.fixture(await showText(vec(c.wdiff)), readFileSync(vec(c.show), 'utf8'));
  });
}
Codec.run();

const Chain = suite('chain and virtual full');
const chain = casesOf('chain')[0];
Chain('merged by us and applied equals the recorded merged image; sequential apply equals the recorded ones', async () => {
  const merged = join(t.dir, 'merged.wdiff');
  await mergeWdiffs(chain.wdiffs.map(vec), merged);
  for (const [discard, sum] of [['zero', chain.imageSha256AfterMergedRedoDiscardAsZero], ['ignore', chain.imageSha256AfterMergedRedo]] as const) {
    const img = makeImage(t.dir, 'chain-m.img', chain.deviceBytes);
    await applyWdiffs(img, [merged], { discard });
    assert.is(sha256File(img), sum, `merged, discard ${discard}`);
  }
  const seqZero = makeImage(t.dir, 'chain-sz.img', chain.deviceBytes);
  const seq = makeImage(t.dir, 'chain-s.img', chain.deviceBytes);
  for (const f of chain.wdiffs) {
    await applyWdiffs(seqZero, [vec(f)], { discard: 'zero' });
    await applyWdiffs(seq, [vec(f)]);
  }
  assert.is(sha256File(seqZero), chain.imageSha256AfterSequentialRedoDiscardAsZero);
  assert.is(sha256File(seq), chain.imageSha256AfterSequentialRedo);
  const all = makeImage(t.dir, 'chain-all.img', chain.deviceBytes);
  await applyWdiffs(all, chain.wdiffs.map(vec), { discard: 'zero' });
  assert.is(sha256File(all), chain.imageSha256AfterMergedRedoDiscardAsZero, 'apply of the merged stream of three');
  const orig = makeImage(t.dir, 'chain-o.img', chain.deviceBytes);
  await applyWdiffs(orig, [vec(chain.merged)], { discard: 'zero' });
  assert.is(sha256File(orig), chain.imageSha256AfterMergedRedoDiscardAsZero, "the original's merged file");
});
Chain('our conversion of the chain logs, merged, gives the same image', async () => {
  const ours = [];
  for (const [i, w] of chain.wlogs.entries()) { const p = join(t.dir, `c${i}.wdiff`); await convertWlogs([vec(w)], p, { indexed: i % 2 === 1 }); ours.push(p); }
  const img = makeImage(t.dir, 'chain-ours.img', chain.deviceBytes);
  await applyWdiffs(img, ours, { discard: 'zero' });
  assert.is(sha256File(img), chain.imageSha256AfterMergedRedoDiscardAsZero);
  // wlog-gen gave each chain log its own uuid, so they cannot be converted as one stream.
  try { await convertWlogs(chain.wlogs.map(vec), join(t.dir, 'c-all.wdiff')); assert.unreachable(); } catch (e) {
    assert.instance(e, WdiffFormatError);
    assert.match((e as Error).message, /uuid/);
  }
});
const vf = casesOf('virt-full')[0];
Chain('virt-cat over the base and the chain gives virtFullSha256, streamed and by random access', async () => {
  const base = join(t.dir, 'base.img');
  writeFileSync(base, gunzipVec(vf.baseGz));
  const v = await VirtualFullImage.open(base, vf.wdiffs.map(vec));
  const parts: Buffer[] = [];
  for await (const b of v.stream(1 << 20)) parts.push(b);
  const whole = Buffer.concat(parts);
  const { createHash } = await import('node:crypto');
  assert.is(createHash('sha256').update(whole).digest('hex'), vf.virtFullSha256);
  for (const [off, len] of [[0, 4096], [512, 512 * 37], [3 << 20, 1 << 20], [whole.length - 8192, 8192]]) {
    assert.ok((await v.read(off, len)).equals(whole.subarray(off, off + len)), `read ${off}+${len}`);
  }
  const rnd = [];
  for (let i = 0; i < 50; i++) { const off = Math.floor(Math.random() * (whole.length / 512 - 64)) * 512; rnd.push([off, 512 * (1 + Math.floor(Math.random() * 63))]); }
  for (const [off, len] of rnd) assert.ok((await v.read(off, len)).equals(whole.subarray(off, off + len)), `random read ${off}+${len}`);
  // Reused buffers: the same bytes when each chunk is used before the next is asked for (odd
  // chunk size: the last chunk is shorter), and only two buffers go round.
  const copies: Buffer[] = [];
  const seen = new Set<ArrayBufferLike>();
  for await (const b of v.stream(3 << 19, { reuseBuffers: true })) { copies.push(Buffer.from(b)); seen.add(b.buffer); }
  assert.ok(Buffer.concat(copies).equals(whole));
  assert.ok(copies.length > 2 && seen.size === 2, `${copies.length} chunks in ${seen.size} buffers`);
  // A consumer that stops early leaves nothing running.
  for await (const _b of v.stream(1 << 20, { reuseBuffers: true })) break;
  await v.close();
});
Chain('a base smaller than the device the diffs describe is an error, not an image with their writes dropped', async () => {
  const full = gunzipVec(vf.baseGz);
  const base = join(t.dir, 'small-base.img');
  writeFileSync(base, full.subarray(0, 1 << 20));
  const v = await VirtualFullImage.open(base, vf.wdiffs.map(vec));
  let bytes = 0;
  try {
    for await (const b of v.stream(1 << 20)) bytes += b.length;
    assert.unreachable('streamed without an error');
  } catch (e) {
    assert.instance(e, ValueOutOfRangeError);
    assert.match((e as Error).message, /beyond the image's 2048 LB/);
  } finally {
    await v.close();
  }
  assert.is(bytes, 1 << 20);
  // The check before the stream finds it too.
  try { await verifyWdiffs(vf.wdiffs.map(vec), (1 << 20) / 512); assert.unreachable('verified'); } catch (e) { assert.instance(e, ValueOutOfRangeError); }
  // As large a virtual image as the device: no error.
  const big = await VirtualFullImage.open(base, vf.wdiffs.map(vec), { sizeBytes: BigInt(full.length) });
  for await (const _b of big.stream(1 << 20)) { /* drained */ }
  await big.close();
});
Chain.run();
