// Diffs made from images: the whole image as a wdiff, and the compared diff of two images, on
// random images larger than one read of the image (4 MiB), so IOs are cut from several reads, and
// of sizes that are not whole IOs (whole LB, as a volume's: other sizes are refused).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, readFileSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadNative } from '@walbjs/native-walb';
import { VirtualFullImage, compareImagesToWdiff, imageToWdiff, ioBytes, openWdiff, parseCompressOpt, TruncatedError, useHoleSeek, ValueOutOfRangeError } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const I = suite('image diffs');
const t = tempDir();
I.after(() => t.cleanup());
let seq = 0;

const LB = 512;
/** Segments an image is made of: zeros, random bytes, or a repeated byte. */
const segArb = fc.record({ kind: fc.constantFrom('zero', 'random', 'fill'), bytes: fc.integer({ min: 1, max: 3 << 20 }), fill: fc.integer({ min: 1, max: 255 }) });

/** An image of the segments, padded with zeros to whole LB. */
function build(segs: Array<{ kind: string; bytes: number; fill: number }>): Buffer {
  const b = Buffer.concat(segs.map((s) => (s.kind === 'zero' ? Buffer.alloc(s.bytes) : s.kind === 'random' ? randomBytes(s.bytes) : Buffer.alloc(s.bytes, s.fill))));
  return Buffer.concat([b, Buffer.alloc(Math.ceil(b.byteLength / LB) * LB - b.byteLength)]);
}

/** The image a wdiff gives over `base` (records laid over a copy; ALLZERO and DISCARD as zeros). */
async function over(path: string, base: Buffer): Promise<{ image: Buffer; ios: Array<{ addr: number; blocks: number }> }> {
  const image = Buffer.alloc(Math.ceil(base.byteLength / LB) * LB);
  base.copy(image);
  const ios: Array<{ addr: number; blocks: number }> = [];
  const d = await openWdiff(path);
  try {
    for await (const io of d.ios()) {
      ios.push({ addr: io.addr, blocks: io.blocks });
      const at = io.addr * LB;
      if (io.kind === 'normal') Buffer.from((await ioBytes(io))!).copy(image, at);
      else image.fill(0, at, at + io.blocks * LB);
    }
  } finally {
    await d.close();
  }
  return { image, ios };
}

const padded = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc(Math.ceil(b.byteLength / LB) * LB - b.byteLength)]);

I('imageToWdiff: over any image it gives the image back, one IO per ioBytes (the last one shorter)', async () => {
  await fc.assert(fc.asyncProperty(
    fc.array(segArb, { minLength: 1, maxLength: 5 }), fc.constantFrom(LB, 3 * LB, 4096, 64 << 10, 5 << 20), fc.boolean(), fc.constantFrom('none', 'snappy'),
    async (segs, io, indexed, cmpr) => {
      const img = build(segs);
      const p = join(t.dir, `full-${seq}.img`), out = join(t.dir, `full-${seq++}.wdiff`);
      writeFileSync(p, img);
      const progress: number[] = [];
      await imageToWdiff(p, out, { ioBytes: io, indexed, cmpr: parseCompressOpt(cmpr), onProgress: (n) => progress.push(n) });
      // Over a base of other bytes, so that a missing IO shows.
      const got = await over(out, Buffer.alloc(img.byteLength, 0xa5));
      assert.ok(got.image.equals(padded(img)));
      if (!indexed) {
        // The sorted format keeps the IOs as cut (the indexed one splits them into aligned extents).
        assert.is(got.ios.length, Math.ceil(img.byteLength / io));
        for (const [k, x] of got.ios.entries()) assert.equal(x, { addr: (k * io) / LB, blocks: Math.min(io, Math.ceil((img.byteLength - k * io) / LB) * LB) / LB });
      }
      assert.is(progress[progress.length - 1], img.byteLength);
      for (let k = 1; k < progress.length; k++) assert.ok(progress[k] > progress[k - 1]);
    }), { numRuns: 12, seed: 311 });
});

I('compareImagesToWdiff: over the older image it gives the newer, with IOs only where they differ', async () => {
  await fc.assert(fc.asyncProperty(
    fc.array(segArb, { minLength: 1, maxLength: 4 }), fc.constantFrom(LB, 4096, 64 << 10, 5 << 20),
    fc.array(fc.record({ at: fc.nat(), len: fc.integer({ min: 1, max: 70000 }), zero: fc.boolean() }), { maxLength: 6 }), fc.boolean(),
    async (segs, io, changes, indexed) => {
      const older = build(segs);
      const newer = Buffer.from(older);
      for (const c of changes) {
        const at = c.at % older.byteLength, end = Math.min(older.byteLength, at + c.len);
        if (c.zero) newer.fill(0, at, end); else randomBytes(end - at).copy(newer, at);
      }
      const a = join(t.dir, `old-${seq}.img`), b = join(t.dir, `new-${seq}.img`), out = join(t.dir, `cmp-${seq++}.wdiff`);
      writeFileSync(a, older);
      writeFileSync(b, newer);
      await compareImagesToWdiff(a, b, out, { ioBytes: io, indexed });
      const got = await over(out, older);
      assert.ok(got.image.equals(padded(newer)));
      if (!indexed) {
        const differing: number[] = [];
        for (let o = 0; o < older.byteLength; o += io) if (!older.subarray(o, o + io).equals(newer.subarray(o, o + io))) differing.push(o / LB);
        assert.equal(got.ios.map((x) => x.addr), differing);
      }
    }), { numRuns: 12, seed: 312 });
});

/** A sparse image of `size` bytes with `runs` of random data at their offsets, the rest holes. */
function sparseImage(path: string, size: number, runs: Array<[number, number]>): Buffer {
  const whole = Buffer.alloc(size);
  const fd = openSync(path, 'w');
  try {
    for (const [at, len] of runs) {
      const b = randomBytes(len);
      writeSync(fd, b, 0, len, at);
      b.copy(whole, at);
    }
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
  return whole;
}

I('sparse images with the hole finder: the same wdiffs as reading every byte, holes not read', async () => {
  const native = loadNative();
  let asked = 0;
  const counting = (fd: number, off: bigint) => { asked++; return native.seekData(fd, off); };
  const size = 40 << 20;
  const older = join(t.dir, 'sparse-old.img'), newer = join(t.dir, 'sparse-new.img');
  // Data straddling chunk edges (4 MiB), inside one chunk, and at the very end; holes between.
  const runsOld: Array<[number, number]> = [[(4 << 20) - 4096, 8192], [9 << 20, 100 << 10], [size - 65536, 65536]];
  sparseImage(older, size, runsOld);
  const want = sparseImage(newer, size, [...runsOld.slice(0, 2), [20 << 20, 3 << 20], [size - 512, 512]]);
  for (const indexed of [false, true]) {
    const plain = [join(t.dir, `sp-full-${indexed}.wdiff`), join(t.dir, `sp-cmp-${indexed}.wdiff`)];
    const seeking = [join(t.dir, `sp-full-${indexed}.seek.wdiff`), join(t.dir, `sp-cmp-${indexed}.seek.wdiff`)];
    useHoleSeek(undefined);
    await imageToWdiff(newer, plain[0], { indexed });
    await compareImagesToWdiff(older, newer, plain[1], { indexed });
    useHoleSeek(counting);
    try {
      await imageToWdiff(newer, seeking[0], { indexed });
      await compareImagesToWdiff(older, newer, seeking[1], { indexed });
    } finally {
      useHoleSeek(undefined);
    }
    for (let k = 0; k < 2; k++) assert.ok(readFileSync(seeking[k]).equals(readFileSync(plain[k])), `${seeking[k]} differs from reading every byte`);
    assert.ok((await over(seeking[0], Buffer.alloc(size, 0x5a))).image.equals(want));
    assert.ok((await over(seeking[1], readFileSync(older))).image.equals(want));
  }
  assert.ok(asked > 0, 'the hole finder was not asked');

  // virt-cat over the sparse older image as base, with the compared diff: the newer image, with the
  // base's holes filled unread or read, chunk sizes that do and do not meet the data's edges.
  const diff = join(t.dir, 'sp-cmp-false.wdiff');
  for (const [chunk, reuseBuffers] of [[4 << 20, true], [3 << 20, false], [1 << 20, true]] as const) {
    for (const seek of [undefined, counting]) {
      useHoleSeek(seek);
      try {
        const v = await VirtualFullImage.open(older, [diff]);
        const parts: Buffer[] = [];
        for await (const b of v.stream(chunk, { reuseBuffers })) parts.push(Buffer.from(b));
        await v.close();
        assert.ok(Buffer.concat(parts).equals(want), `virt-cat, chunks of ${chunk}, hole seek ${seek !== undefined}`);
      } finally {
        useHoleSeek(undefined);
      }
    }
  }
  // A hole finder that says "data" everywhere (a file system that cannot tell) changes nothing.
  useHoleSeek((_fd, off) => off);
  try {
    const p = join(t.dir, 'sp-all-data.wdiff');
    await imageToWdiff(newer, p);
    assert.ok(readFileSync(p).equals(readFileSync(join(t.dir, 'sp-full-false.wdiff'))));
  } finally {
    useHoleSeek(undefined);
  }
});

I('an image that is not a whole number of 512-byte blocks is refused, nothing written (its diff applied to no image of its size)', async () => {
  const p = join(t.dir, 'odd.img'), q = join(t.dir, 'odd2.img'), out = join(t.dir, 'odd.wdiff');
  writeFileSync(p, randomBytes(1000));
  writeFileSync(q, randomBytes(1000));
  for (const run of [() => imageToWdiff(p, out), () => compareImagesToWdiff(p, q, out)]) {
    try {
      await run();
      assert.unreachable('made a diff');
    } catch (e) {
      assert.instance(e, ValueOutOfRangeError);
      assert.match((e as Error).message, /1000 is not a whole number of 512-byte blocks/);
    }
    assert.throws(() => readFileSync(out));
  }
});

I('bad input: a bad IO size, images of different sizes, an image that shrinks while it is read', async () => {
  const p = join(t.dir, 'small.img'), q = join(t.dir, 'other.img');
  writeFileSync(p, randomBytes(8192));
  writeFileSync(q, randomBytes(4096));
  for (const ioBytes of [0, 100, -512, 1.5 * LB, 64 << 20]) {
    try {
      await imageToWdiff(p, join(t.dir, 'never.wdiff'), { ioBytes });
      assert.unreachable(`ioBytes ${ioBytes} was taken`);
    } catch (e) {
      assert.instance(e, ValueOutOfRangeError);
    }
  }
  try {
    await compareImagesToWdiff(p, q, join(t.dir, 'never.wdiff'));
    assert.unreachable('images of different sizes were compared');
  } catch (e) {
    assert.instance(e, ValueOutOfRangeError);
    assert.match((e as Error).message, /8192/);
  }

  // 12 MiB, cut to 9 MiB once the first read's IOs are written: the read of 4–8 MiB is in flight
  // or done by then, the one of 8–12 MiB starts after the cut and comes up short. With the hole
  // finder too: what lies past the new end is no hole.
  const big = join(t.dir, 'shrinks.img');
  for (const seek of [undefined, loadNative().seekData]) {
    writeFileSync(big, randomBytes(12 << 20));
    let cut = false;
    useHoleSeek(seek);
    try {
      await imageToWdiff(big, join(t.dir, 'shrinks.wdiff'), { onProgress: () => { if (!cut) { cut = true; truncateSync(big, 9 << 20); } } });
      assert.unreachable('a shrunk image was read as whole');
    } catch (e) {
      assert.instance(e, TruncatedError);
      assert.match((e as Error).message, /ended at byte 9437184, its size was 12582912/);
      assert.is((e as TruncatedError).source, big);
    } finally {
      useHoleSeek(undefined);
    }
  }
  // Cut inside a trailing hole: data to 5 MiB, a hole to 12 MiB, cut to 6 MiB after the first read.
  const sparse = join(t.dir, 'shrinks-sparse.img');
  sparseImage(sparse, 12 << 20, [[0, 5 << 20]]);
  let cut = false;
  useHoleSeek(loadNative().seekData);
  try {
    await imageToWdiff(sparse, join(t.dir, 'shrinks-sparse.wdiff'), { onProgress: () => { if (!cut) { cut = true; truncateSync(sparse, 6 << 20); } } });
    assert.unreachable('a shrunk sparse image was read as whole');
  } catch (e) {
    assert.instance(e, TruncatedError);
  } finally {
    useHoleSeek(undefined);
  }
});

I.run();
