// Apply's quick check of its inputs (headers here, the data's sums from the native addon's
// sumExtents): it passes every vector, it never passes a file the reading check refuses (bit
// flips, truncations, a compressed record that sums right but does not decompress), and with it
// a corrupt input still changes nothing and throws the reading check's own typed error (also with
// the copy by pieces after it).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { closeSync, copyFileSync, openSync, readFileSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { join } from 'node:path';
import { checksum } from '@walbjs/log-format';
import { loadNative } from '@walbjs/native-walb';
import { CodecError, TruncatedError, WdiffFormatError, applyWdiffs, imageToWdiff, parseCompressOpt, useCopyPieces, useExtentSums, verifyWdiffs } from '../src/index.ts';
import { checkWdiffQuickly } from '../src/io/extent-check.ts';
import { makeImage, manifest, sha256File, tempDir, vec } from './helpers.ts';

const RUNS = Number(process.env.WALB_FUZZ_RUNS ?? 300);
const SEED = Number(process.env.WALB_FUZZ_SEED ?? 0);
const native = loadNative();
const t = tempDir();
process.on('exit', () => t.cleanup());

/** Whether the reading check (no quick check in use) passes `path`; throws what is not typed. */
async function readingPasses(path: string, sizeLb?: number): Promise<boolean> {
  useExtentSums(undefined);
  try {
    await verifyWdiffs([path], sizeLb);
    return true;
  } catch (e) {
    if (!(e instanceof WdiffFormatError)) throw e;
    return false;
  } finally {
    useExtentSums(native.sumExtents);
  }
}

const FILES = ['w-pbs512-mixed.sorted.wdiff', 'w-pbs512-mixed.indexed.wdiff', 'w-cmpr-none.wdiff', 'w-cmpr-snappy.wdiff', 'w-cmpr-gzip.wdiff', 'w-cmpr-lzma.wdiff', 'w-cmpr-lz4.wdiff', 'w-cmpr-zstd.wdiff', 'w-chain-merged.wdiff', 'w-pbs4096-rand.indexed.wdiff', 'w-pbs512-zeroish-big-io.sorted.wdiff'];

const Q = suite('quick check');
Q.before(() => useExtentSums(native.sumExtents));
Q.after(() => useExtentSums(undefined));

Q('passes every vector, and refuses a target too small for it', async () => {
  for (const f of FILES) {
    assert.ok(await checkWdiffQuickly(vec(f), undefined), f);
    assert.not.ok(await checkWdiffQuickly(vec(f), 8), `${f}: 8 LB target`);
  }
  // Without an implementation in use there is nothing quick to do.
  useExtentSums(undefined);
  assert.not.ok(await checkWdiffQuickly(vec(FILES[0]), undefined));
  useExtentSums(native.sumExtents);
});

for (const f of FILES) {
  const src = readFileSync(vec(f));
  const path = join(t.dir, `q-${f}`);
  Q(`${f}: never passes what the reading check refuses (bit flips, truncations)`, async () => {
    let refused = 0, passed = 0;
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 3 }), fc.option(fc.nat({ max: src.length }), { freq: 4 }), async (flips, cut) => {
      const b = Buffer.from(cut === null ? src : src.subarray(0, cut));
      for (const [n, bit] of flips) if (b.length) b[n % b.length] ^= 1 << bit;
      writeFileSync(path, b);
      const quick = await checkWdiffQuickly(path, undefined);
      const reading = await readingPasses(path);
      if (quick) assert.ok(reading, 'the quick check passed a file the reading check refuses');
      if (reading) passed++; else refused++;
    }), { numRuns: Math.ceil(RUNS / 6), seed: SEED + 11 });
    assert.ok(refused > 0, `refused: ${refused}, passed: ${passed}`);
  });
}

/**
 * `w-cmpr-snappy.wdiff` with the first snappy record's bytes replaced by ones that do not
 * decompress to its size, its record checksum and the pack's checksum made right again.
 */
function undecodableSnappy(): Buffer {
  const b = Buffer.from(readFileSync(vec('w-cmpr-snappy.wdiff')));
  const p = 32;
  for (let i = 0; i < b.readUInt16LE(p + 4); i++) {
    const r = p + 16 + 32 * i;
    const size = b.readUInt32LE(r + 20);
    if (b[r + 13] !== 2 || size < 16) continue;
    const at = p + 4096 + b.readUInt32LE(r + 16);
    // A preamble promising 1 byte where the record holds blocks·512.
    b.fill(0, at, at + size);
    b[at] = 1;
    b.writeUInt32LE(checksum(b.subarray(at, at + size), 0), r + 24);
    b.writeUInt32LE(0, p);
    b.writeUInt32LE(checksum(b.subarray(p, p + 4096), 0), p);
    return b;
  }
  throw new Error('no snappy record in the vector');
}

Q('a compressed record that sums right but does not decompress: refused, and apply writes nothing', async () => {
  const path = join(t.dir, 'undecodable.wdiff');
  writeFileSync(path, undecodableSnappy());
  assert.not.ok(await checkWdiffQuickly(path, undefined));
  const img = makeImage(t.dir, 'u.img', 32 << 20, 0x5a);
  const before = readFileSync(img);
  try { await applyWdiffs(img, [path]); assert.unreachable(); } catch (e) {
    assert.instance(e, CodecError);
  }
  assert.ok(readFileSync(img).equals(before));
});

Q('apply with the quick check and the copy by pieces: a corrupt input changes nothing and throws the reading check\'s own error; a good one gives the same image', async () => {
  const img = makeImage(t.dir, 'c.img', 32 << 20, 0x33);
  const before = readFileSync(img);
  const path = join(t.dir, 'corrupt.wdiff');
  let threw = 0, applied = 0;
  await fc.assert(fc.asyncProperty(fc.constantFrom('w-cmpr-none.wdiff', 'w-cmpr-snappy.wdiff', 'w-pbs512-mixed.indexed.wdiff'), fc.nat(), fc.integer({ min: 0, max: 7 }), fc.boolean(), async (f, n, bit, flip) => {
    const b = Buffer.from(readFileSync(vec(f)));
    // Late in the file, so a streaming apply would already have written earlier records.
    if (flip) b[Math.floor(b.length * 0.6) + (n % Math.floor(b.length * 0.4))] ^= 1 << bit;
    writeFileSync(path, b);
    useExtentSums(undefined);
    useCopyPieces(undefined);
    let expected: unknown;
    try { await applyWdiffs(img, [path], { discard: 'zero' }); } catch (e) { expected = e; }
    const want = readFileSync(img);
    writeFileSync(img, before);
    useExtentSums(native.sumExtents);
    useCopyPieces(native.copyPieces);
    try {
      await applyWdiffs(img, [path], { discard: 'zero' });
      assert.is(expected, undefined, 'applied with the quick check where the reading check refused');
      assert.ok(readFileSync(img).equals(want), 'a different image than the reading path\'s');
      applied++;
    } catch (e) {
      if (!(e instanceof WdiffFormatError)) throw e;
      threw++;
      assert.instance(expected, (e as object).constructor as new () => unknown);
      assert.is((e as Error).message, (expected as Error).message);
      assert.ok(readFileSync(img).equals(before), 'image unchanged');
    } finally {
      useCopyPieces(undefined);
      writeFileSync(img, before);
    }
  }), { numRuns: 40, seed: SEED + 12 });
  assert.ok(threw > 10 && applied > 10, `rejections: ${threw}, applied: ${applied}`);
});

Q('with the native sums, and with an implementation that sums wrong or fails (which only costs time), the vectors apply to their recorded images', async () => {
  const chain = manifest.cases.find((x) => x.kind === 'chain')!;
  const codecs = manifest.cases.filter((x) => x.kind === 'codec');
  for (const fn of [native.sumExtents, async (_fd: number, _e: Float64Array, s: Uint32Array) => { s.fill(0); }, async () => { throw new Error('no'); }]) {
    useExtentSums(fn);
    assert.is(await checkWdiffQuickly(vec(chain.wdiffs[0]), undefined), fn === native.sumExtents);
    const img = makeImage(t.dir, 'chain.img', chain.deviceBytes);
    await applyWdiffs(img, chain.wdiffs.map(vec), { discard: 'zero' });
    assert.is(sha256File(img), chain.imageSha256AfterMergedRedoDiscardAsZero);
    for (const c of codecs) {
      const one = makeImage(t.dir, 'codec.img', c.deviceBytes);
      await applyWdiffs(one, [vec(c.wdiff)]);
      assert.is(sha256File(one), c.imageSha256AfterRedo, c.codec);
    }
  }
  useExtentSums(native.sumExtents);
});

Q('a diff cut while apply sums it (the addon reads it through mappings, where a page past the new end faults): the typed truncation error, no signal, the image unchanged', async () => {
  // 160 MiB of random data in 64 KiB records, stored raw: its sums take a few dozen ms, and the
  // cut lands while they run (the timer fires when this thread waits for a batch's sums).
  const size = 160 << 20;
  const src = join(t.dir, 'cut-src.img');
  const fd = openSync(src, 'w');
  const b = Buffer.allocUnsafe(8 << 20);
  for (let at = 0; at < size; at += b.length) writeSync(fd, randomFillSync(b));
  closeSync(fd);
  const master = join(t.dir, 'cut-master.wdiff');
  await imageToWdiff(src, master, { cmpr: parseCompressOpt('none') });
  const img = makeImage(t.dir, 'cut.img', size, 0x6b);
  const before = sha256File(img);
  useCopyPieces(native.copyPieces);
  try {
    for (const delayMs of [0, 1, 2, 4]) {
      const path = join(t.dir, `cut-${delayMs}.wdiff`);
      copyFileSync(master, path);
      const done = applyWdiffs(img, [path]);
      setTimeout(() => truncateSync(path, (3 << 20) + 512), delayMs);
      try {
        await done;
        assert.unreachable(`applied a diff cut ${delayMs} ms in`);
      } catch (e) {
        assert.instance(e, TruncatedError, String(e));
        assert.match((e as Error).message, path);
      }
      assert.is(sha256File(img), before, `image changed by a diff cut ${delayMs} ms in`);
    }
  } finally {
    useCopyPieces(undefined);
  }
});

Q.run();
