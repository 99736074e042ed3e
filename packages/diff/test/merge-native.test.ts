// The merge into a sorted wdiff done by the native addon (useNativeMerge): the vectors' chain
// merged gives the recorded images; random diffs of both formats, raw and snappy, random and
// compressible data, with discards and all-zero IOs, merged with and without a maximum IO size,
// give the same blocks as the streaming merge (applied both ways, discards ignored and as zeros)
// and read back whole; a record stored with another codec sends the merge to the streaming path;
// a corrupt image is a typed error at its place, the output path keeping what it had.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeGeneratedWlog } from '@walbjs/log-format';
import { loadNative } from '@walbjs/native-walb';
import {
  ChecksumError, CodecError, SortedDiffReader, applyWdiffs, convertWlogs, mergeWdiffs, parseCompressOpt, useNativeMerge, useSnappyEncoder, verifyWdiffs,
  type NativeMergeFns,
} from '../src/index.ts';
import { casesOf, makeImage, sha256File, tempDir, vec } from './helpers.ts';

/** Added to every property's seed: CI runs the fixed cases; `WALB_FUZZ_SEED=n` explores others. */
const SEED = Number(process.env.WALB_FUZZ_SEED ?? 0);
const native = loadNative();
const t = tempDir();
process.on('exit', () => t.cleanup());
let runs = 0;
/** The native merge, its runs counted: a test must show it ran (or did not). */
const counted: NativeMergeFns = { ...native, mergeRun: (m, b) => { runs++; return native.mergeRun(m, b); } };

const M = suite('native merge');
M.before(() => {
  // The bytes snappy gives must be the addon's on both paths for the record lists to match.
  useSnappyEncoder(native.snappyCompress, 'walbjs native');
  useNativeMerge(counted);
});
M.after(() => useNativeMerge(undefined));

/** Apply `diffs` to a 0x55 image of `bytes`, discards as zeros and ignored: the two images. */
async function applied(diffs: string[], bytes: number, tag: string): Promise<[Buffer, Buffer]> {
  const z = makeImage(t.dir, `${tag}-z.img`, bytes, 0x55), i = makeImage(t.dir, `${tag}-i.img`, bytes, 0x55);
  await applyWdiffs(z, diffs, { discard: 'zero' });
  await applyWdiffs(i, diffs, { discard: 'ignore' });
  return [readFileSync(z), readFileSync(i)];
}

M('the chain merged gives the recorded merged images, into snappy and into none', async () => {
  const chain = casesOf('chain')[0];
  for (const cmpr of ['snappy', 'none']) {
    runs = 0;
    const out = join(t.dir, `chain-${cmpr}.wdiff`);
    await mergeWdiffs(chain.wdiffs.map(vec), out, { cmpr: parseCompressOpt(cmpr) });
    assert.ok(runs > 0, 'merged natively');
    await verifyWdiffs([out]);
    for (const [discard, sum] of [['ignore', chain.imageSha256AfterMergedRedo], ['zero', chain.imageSha256AfterMergedRedoDiscardAsZero]] as const) {
      const img = makeImage(t.dir, 'chain.img', chain.deviceBytes);
      await applyWdiffs(img, [out], { discard });
      assert.is(sha256File(img), sum, `${cmpr}, discards ${discard}`);
    }
  }
});

M('random diffs, sorted and indexed, raw and snappy, random and compressible: the blocks of the streaming merge', async () => {
  const dev = 4 << 20;
  await fc.assert(fc.asyncProperty(
    fc.array(fc.tuple(fc.integer({ min: 1, max: 1e9 }), fc.boolean(), fc.constantFrom('none', 'snappy'), fc.constantFrom(0, 8), fc.boolean()), { minLength: 1, maxLength: 4 }),
    fc.constantFrom('snappy', 'none'), fc.constantFrom(0, 5, 64),
    async (specs, cmpr, maxIo) => {
      const diffs: string[] = [];
      for (const [i, [seed, indexed, c, inMax, randomData]] of specs.entries()) {
        const wlog = join(t.dir, `p${i}.wlog`), diff = join(t.dir, `p${i}.wdiff`);
        await writeGeneratedWlog(wlog, { seed, totalBytes: 768 << 10, deviceBytes: dev, discard: true, allZero: true, randomData });
        await convertWlogs([wlog], diff, { indexed, cmpr: parseCompressOpt(c), maxIoBlocks: inMax || undefined });
        diffs.push(diff);
      }
      const a = join(t.dir, 'native.wdiff'), b = join(t.dir, 'stream.wdiff');
      runs = 0;
      const sa = await mergeWdiffs(diffs, a, { cmpr: parseCompressOpt(cmpr), maxIoBlocks: maxIo || undefined });
      assert.ok(runs > 0, 'merged natively');
      useNativeMerge(undefined);
      await mergeWdiffs(diffs, b, { cmpr: parseCompressOpt(cmpr), maxIoBlocks: maxIo || undefined });
      useNativeMerge(counted);
      // Every record and stored image checks out; IOs within the maximum, ascending.
      await verifyWdiffs([a]);
      const r = await SortedDiffReader.open(a);
      let end = 0, n = 0;
      for await (const { io } of r) {
        assert.ok(io.addr >= end, 'ascending, without overlap');
        if (maxIo) assert.ok(io.blocks <= maxIo, `${io.blocks} LB over ${maxIo}`);
        end = io.addr + io.blocks;
        n++;
      }
      await r.close();
      assert.is(sa.records, n);
      const [az, ai] = await applied([a], dev, 'a'), [bz, bi] = await applied([b], dev, 'b');
      assert.ok(az.equals(bz), 'discards as zeros: the same image');
      assert.ok(ai.equals(bi), 'discards ignored: the same image');
    }), { numRuns: 14, seed: SEED + 11 });
});

M('sixty-four inputs, sorted and indexed: the blocks of the streaming merge', async () => {
  const dev = 2 << 20;
  const diffs: string[] = [];
  for (let i = 0; i < 64; i++) {
    const wlog = join(t.dir, `x${i}.wlog`), diff = join(t.dir, `x${i}.wdiff`);
    await writeGeneratedWlog(wlog, { seed: 700 + i, totalBytes: 96 << 10, deviceBytes: dev, discard: true, allZero: true, randomData: i % 3 !== 0 });
    await convertWlogs([wlog], diff, { indexed: i % 2 === 0 });
    diffs.push(diff);
  }
  const a = join(t.dir, 'x-native.wdiff'), b = join(t.dir, 'x-stream.wdiff');
  runs = 0;
  await mergeWdiffs(diffs, a);
  assert.ok(runs > 0, 'merged natively');
  useNativeMerge(undefined);
  await mergeWdiffs(diffs, b);
  useNativeMerge(counted);
  await verifyWdiffs([a]);
  const [az, ai] = await applied([a], dev, 'xa'), [bz, bi] = await applied([b], dev, 'xb');
  assert.ok(az.equals(bz) && ai.equals(bi));
});

M('an input with records of another codec is merged by the streaming path', async () => {
  const wlog = join(t.dir, 'z.wlog'), z = join(t.dir, 'z.wdiff'), s = join(t.dir, 's.wdiff');
  await writeGeneratedWlog(wlog, { seed: 5, totalBytes: 512 << 10, deviceBytes: 2 << 20, randomData: false });
  await convertWlogs([wlog], z, { cmpr: parseCompressOpt('zstd') });
  await convertWlogs([wlog], s, { cmpr: parseCompressOpt('snappy') });
  const out = join(t.dir, 'zm.wdiff'), ref = join(t.dir, 'zm-ref.wdiff');
  runs = 0;
  await mergeWdiffs([s, z], out);
  assert.is(runs, 0, 'not merged natively');
  useNativeMerge(undefined);
  await mergeWdiffs([s, z], ref);
  useNativeMerge(counted);
  assert.ok(readFileSync(out).equals(readFileSync(ref)));
});

M('a corrupt image stops the merge with a located ChecksumError; the output path keeps what it had', async () => {
  const c = casesOf('wlog').find((x) => x.name === 'w-pbs4096-rand')!;
  for (const f of [c.sortedWdiff, c.indexedWdiff]) {
    const b = Buffer.from(readFileSync(vec(f)));
    // Sorted: inside the first record's data (after the file header and the first pack header);
    // indexed: inside the image at 1619488, whose slices are written.
    const at = f === c.sortedWdiff ? 32 + 4096 + 100 : 1619488 + 4 * 512 + 10;
    b[at] ^= 0x40;
    const bad = join(t.dir, 'bad.wdiff');
    writeFileSync(bad, b);
    const out = join(t.dir, 'kept.wdiff');
    writeFileSync(out, 'earlier');
    runs = 0;
    try { await mergeWdiffs([vec(c.sortedWdiff), bad], out); assert.unreachable(); } catch (e) {
      assert.instance(e, ChecksumError, String(e));
      assert.is((e as ChecksumError).source, bad);
      assert.ok((e as ChecksumError).offset! <= at && (e as ChecksumError).offset! > at - (64 << 10), `offset ${(e as ChecksumError).offset}`);
    }
    assert.ok(runs > 0, 'merged natively');
    assert.is(readFileSync(out, 'utf8'), 'earlier');
    assert.equal(readdirSync(t.dir).filter((x) => x.endsWith('.part')), []);
  }
});

M('a corrupt image that a newer input hides whole is refused, as the streaming merge refuses it', async () => {
  const c = casesOf('wlog').find((x) => x.name === 'w-pbs4096-rand')!;
  const b = Buffer.from(readFileSync(vec(c.sortedWdiff)));
  const { decodeDiffPackHeader } = await import('../src/layout/pack-header.ts');
  const r = decodeDiffPackHeader(b, 32).records[0];
  b[32 + 4096 + r.dataOffset + 7] ^= 0x10;
  const bad = join(t.dir, 'hidden-bad.wdiff');
  writeFileSync(bad, b);
  // A newer diff that writes every block of that record.
  const newer = join(t.dir, 'hider.wdiff');
  const { SortedDiffWriter, normalIo } = await import('../src/index.ts');
  const w = await SortedDiffWriter.create(newer, { cmpr: parseCompressOpt('none') });
  await w.write(normalIo(r.ioAddress, Buffer.alloc(r.ioBlocks * 512, 3)));
  await w.close();
  for (const native of [true, false]) {
    useNativeMerge(native ? counted : undefined);
    try { await mergeWdiffs([bad, newer], join(t.dir, 'h.wdiff')); assert.unreachable(`${native}`); } catch (e) {
      assert.instance(e, ChecksumError, String(e));
      assert.is((e as ChecksumError).source, bad, `${native}`);
    }
  }
  useNativeMerge(counted);
});

M('a pack header found corrupt while the merge runs (past the first chunk of records) is the reader\'s typed error', async () => {
  // Over 16,384 records, so that the bad pack is decoded while a run is in flight.
  const wlog = join(t.dir, 'many.wlog'), d = join(t.dir, 'many.wdiff');
  await writeGeneratedWlog(wlog, { seed: 21, totalBytes: 24 << 20, deviceBytes: 64 << 20, minIoBytes: 512, maxIoBytes: 1024, discard: false, allZero: false });
  await convertWlogs([wlog], d, { cmpr: parseCompressOpt('none') });
  const b = Buffer.from(readFileSync(d));
  const { decodeDiffPackHeader } = await import('../src/layout/pack-header.ts');
  // Walk to the pack holding record 20,000 and break its checksum.
  let at = 32, seen = 0;
  for (;;) {
    const p = decodeDiffPackHeader(b, at);
    if (seen + p.records.length > 20000) break;
    seen += p.records.length;
    at += 4096 + p.totalSize;
  }
  b[at + 2] ^= 0xff;
  const bad = join(t.dir, 'late.wdiff');
  writeFileSync(bad, b);
  const out = join(t.dir, 'late-out.wdiff');
  writeFileSync(out, 'earlier');
  runs = 0;
  try { await mergeWdiffs([bad], out); assert.unreachable(); } catch (e) {
    assert.instance(e, ChecksumError, String(e));
    assert.is((e as ChecksumError).source, bad);
    assert.is((e as ChecksumError).offset, at);
  }
  assert.ok(runs > 0, 'merged natively');
  assert.is(readFileSync(out, 'utf8'), 'earlier');
  assert.equal(readdirSync(t.dir).filter((x) => x.endsWith('.part')), []);
});

M('a snappy image that sums right but does not decompress, when sliced, is a located CodecError', async () => {
  // A sorted snappy diff of compressible data, its first record's stored bytes replaced by a
  // block that claims its size but copies from before its start, the sums made right again.
  const wlog = join(t.dir, 'k.wlog'), d = join(t.dir, 'k.wdiff');
  await writeGeneratedWlog(wlog, { seed: 9, totalBytes: 256 << 10, deviceBytes: 1 << 20, randomData: false, discard: false, allZero: false });
  await convertWlogs([wlog], d, { cmpr: parseCompressOpt('snappy') });
  const b = Buffer.from(readFileSync(d));
  const { decodeDiffPackHeader, encodeDiffPackHeader } = await import('../src/layout/pack-header.ts');
  const { checksum } = await import('@walbjs/log-format');
  const pack = decodeDiffPackHeader(b, 32);
  const r = pack.records[0];
  assert.is(r.compressionType, 2, 'the first record is stored with snappy');
  assert.ok(r.ioBlocks >= 3, 'a record a write can slice');
  const data = b.subarray(32 + 4096 + r.dataOffset, 32 + 4096 + r.dataOffset + r.dataSize);
  data.fill(0);
  // Preamble: the image's size; then copies of offset 1 from an empty output.
  let v = r.ioBlocks * 512, k = 0;
  while (v >= 0x80) { data[k++] = (v & 0x7f) | 0x80; v >>>= 7; }
  data[k++] = v;
  for (; k + 1 < data.length; k += 2) { data[k] = 0x01 | (7 << 2); data[k + 1] = 1; }
  r.checksum = checksum(data, 0);
  encodeDiffPackHeader(pack).copy(b, 32);
  const bad = join(t.dir, 'undecodable.wdiff');
  writeFileSync(bad, b);
  // A newer one-block write in the middle of that record slices it.
  const newer = join(t.dir, 'slicer.wdiff');
  const { SortedDiffWriter, normalIo } = await import('../src/index.ts');
  const w = await SortedDiffWriter.create(newer, { cmpr: parseCompressOpt('none') });
  await w.write(normalIo(r.ioAddress + 1, Buffer.alloc(512, 7)));
  await w.close();
  try { await mergeWdiffs([bad, newer], join(t.dir, 'u.wdiff')); assert.unreachable(); } catch (e) {
    assert.instance(e, CodecError, String(e));
    assert.is((e as CodecError).source, bad);
    assert.is((e as CodecError).offset, 32 + 4096 + r.dataOffset);
  }
});

M.run();
