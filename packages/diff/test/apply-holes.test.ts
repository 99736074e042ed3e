// Apply onto a sparse image file: zeros (ALLZERO records, discards written as zeros) that fall
// wholly in a hole of the target are left unwritten, since the hole reads as zeros already. The
// image must end byte for byte as when every zero is written, the holes under such zeros must stay
// holes, and zeros over data (or partly over it) must still be written; by pieces and from here.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { closeSync, openSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadNative } from '@walbjs/native-walb';
import { IndexedDiffWriter, SortedDiffWriter, applyWdiffs, normalIo, useCopyPieces, useHoleSeek, type DiffIo } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const SEED = Number(process.env.WALB_FUZZ_SEED ?? 0);
const native = loadNative();
const t = tempDir();
process.on('exit', () => t.cleanup());
const H = suite('apply leaves holes under zeros');
H.before(() => useHoleSeek(native.seekData));
H.after(() => { useHoleSeek(undefined); useCopyPieces(undefined); });

const LB = 512;
const KiB = 1024, MiB = 1 << 20;
/** Both apply paths: by pieces (the native copy) and from this thread. */
const PATHS = [['by pieces', native.copyPieces], ['from here', undefined]] as const;

/** A sparse file of `bytes` with `data` written at the given byte offsets. */
function sparseImage(name: string, bytes: number, data: Array<[number, Buffer]>): string {
  const p = join(t.dir, name);
  writeFileSync(p, '');
  truncateSync(p, bytes);
  const fd = openSync(p, 'r+');
  for (const [at, b] of data) writeSync(fd, b, 0, b.length, at);
  closeSync(fd);
  return p;
}

/** Whether `[pos, pos + len)` of the file holds no data (lseek SEEK_DATA finds none before its end). */
function isHole(path: string, pos: number, len: number): boolean {
  const fd = openSync(path, 'r');
  try {
    const at = native.seekData(fd, BigInt(pos));
    return at === null || Number(at) >= pos + len;
  } finally {
    closeSync(fd);
  }
}

async function sortedDiff(name: string, ios: DiffIo[]): Promise<string> {
  const p = join(t.dir, name);
  const w = await SortedDiffWriter.create(p);
  for (const io of ios) await w.write(io);
  await w.close();
  return p;
}

H('zeros wholly in a hole are not written and the hole stays; zeros over data, or partly over it, are', async () => {
  // 8 MiB, data (0x77) in [1 MiB, 2 MiB) only.
  const data: Array<[number, Buffer]> = [[MiB, Buffer.alloc(MiB, 0x77)]];
  const ios: DiffIo[] = [
    { addr: 0, blocks: (64 * KiB) / LB, kind: 'allzero' },
    normalIo((512 * KiB) / LB, Buffer.alloc(4 * KiB, 0x11)),
    { addr: (MiB - 4 * KiB) / LB, blocks: (8 * KiB) / LB, kind: 'allzero' },
    { addr: (MiB + 512 * KiB) / LB, blocks: (64 * KiB) / LB, kind: 'allzero' },
    { addr: (2 * MiB - 4 * KiB) / LB, blocks: (8 * KiB) / LB, kind: 'allzero' },
    { addr: (4 * MiB) / LB, blocks: MiB / LB, kind: 'discard' },
    { addr: (6 * MiB) / LB, blocks: 3, kind: 'allzero' },
  ];
  const diff = await sortedDiff('holes.wdiff', ios);
  const want = Buffer.alloc(8 * MiB);
  want.fill(0x77, MiB, 2 * MiB);
  want.fill(0x11, 512 * KiB, 516 * KiB);
  want.fill(0, MiB, MiB + 4 * KiB);
  want.fill(0, MiB + 512 * KiB, MiB + 576 * KiB);
  want.fill(0, 2 * MiB - 4 * KiB, 2 * MiB + 4 * KiB);
  for (const [name, fn] of PATHS) {
    useCopyPieces(fn);
    const img = sparseImage('h.img', 8 * MiB, data);
    const s = await applyWdiffs(img, [diff], { discard: 'zero' });
    assert.ok(readFileSync(img).equals(want), name);
    // The first ALLZERO, the discard and the small ALLZERO lie in holes; the others touch data
    // (two of them lie partly in a hole, starting or ending there).
    assert.is(s.zeroBytesInHoles, 64 * KiB + MiB + 3 * LB, name);
    assert.is(s.bytesWritten, 4 * KiB + 8 * KiB + 64 * KiB + 8 * KiB, name);
    assert.ok(isHole(img, 0, 64 * KiB) && isHole(img, 4 * MiB, MiB) && isHole(img, 6 * MiB, 4 * KiB), `${name}: the holes under the zeros stay holes`);
    assert.ok(!isHole(img, MiB - 4 * KiB, 4 * KiB) && !isHole(img, 2 * MiB, 4 * KiB), `${name}: zeros partly over data are written, the hole part too`);

    // keepHoles false writes every zero, as the original does: the same bytes, the holes filled.
    const full = sparseImage('f.img', 8 * MiB, data);
    const f = await applyWdiffs(full, [diff], { discard: 'zero', keepHoles: false });
    assert.ok(readFileSync(full).equals(want), `${name}, keepHoles false`);
    assert.is(f.zeroBytesInHoles, 0);
    assert.is(f.bytesWritten, s.bytesWritten + s.zeroBytesInHoles);
    assert.ok(!isHole(full, 0, 4 * KiB) && !isHole(full, 4 * MiB, 4 * KiB), `${name}: keepHoles false allocates`);
    assert.ok(statSync(full).blocks > statSync(img).blocks);
  }
});

H('without a hole seek in use every zero is written', async () => {
  useHoleSeek(undefined);
  try {
    const diff = await sortedDiff('nohs.wdiff', [{ addr: 0, blocks: 128, kind: 'allzero' }]);
    for (const [name, fn] of PATHS) {
      useCopyPieces(fn);
      const img = sparseImage('n.img', MiB, []);
      const s = await applyWdiffs(img, [diff]);
      assert.is(s.zeroBytesInHoles, 0, name);
      assert.is(s.bytesWritten, 128 * LB, name);
    }
  } finally {
    useHoleSeek(native.seekData);
  }
});

const SIZE = 4 * MiB;
const ioSpec = fc.record({
  at: fc.integer({ min: 0, max: SIZE / LB - 1 }),
  blocks: fc.integer({ min: 1, max: 300 }),
  kind: fc.constantFrom<DiffIo['kind']>('normal', 'allzero', 'allzero', 'discard'),
  fill: fc.integer({ min: 1, max: 255 }),
});

/** Non-overlapping IOs in address order from random specs (later specs give way). */
function iosOf(specs: Array<{ at: number; blocks: number; kind: DiffIo['kind']; fill: number }>): DiffIo[] {
  const taken: Array<[number, number]> = [];
  const out: DiffIo[] = [];
  for (const s of specs) {
    const end = Math.min(s.at + s.blocks, SIZE / LB);
    if (taken.some(([a, b]) => s.at < b && a < end)) continue;
    taken.push([s.at, end]);
    out.push(s.kind === 'normal' ? normalIo(s.at, Buffer.alloc((end - s.at) * LB, s.fill)) : { addr: s.at, blocks: end - s.at, kind: s.kind });
  }
  return out.sort((a, b) => a.addr - b.addr);
}

H('random diffs (sorted and indexed, one or two) on random sparse images: the same bytes as writing every zero, never more allocated', async () => {
  await fc.assert(fc.asyncProperty(
    fc.array(fc.record({ at: fc.integer({ min: 0, max: SIZE / 4096 - 1 }), pages: fc.integer({ min: 1, max: 64 }), off: fc.integer({ min: 0, max: 7 }) }), { maxLength: 6 }),
    fc.array(fc.array(ioSpec, { maxLength: 16 }), { minLength: 1, maxLength: 2 }),
    fc.boolean(), fc.constantFrom('ignore', 'zero') as fc.Arbitrary<'ignore' | 'zero'>, fc.boolean(),
    async (extents, diffs, indexed, discard, byPieces) => {
      useCopyPieces(byPieces ? native.copyPieces : undefined);
      // Data at page-aligned places, and some starting inside a page (512 B steps).
      const data = extents.map((e, k): [number, Buffer] => [Math.min(e.at * 4096 + e.off * LB, SIZE - LB), Buffer.alloc(Math.min(e.pages * 4096, SIZE - Math.min(e.at * 4096 + e.off * LB, SIZE - LB)), 0x40 + k)]);
      const paths: string[] = [];
      for (const [k, specs] of diffs.entries()) {
        const p = join(t.dir, `r${k}.wdiff`);
        const w = indexed ? await IndexedDiffWriter.create(p) : await SortedDiffWriter.create(p);
        for (const io of iosOf(specs)) await w.write(io);
        await w.close();
        paths.push(p);
      }
      const kept = sparseImage('rk.img', SIZE, data);
      const filled = sparseImage('rf.img', SIZE, data);
      const s = await applyWdiffs(kept, paths, { discard });
      const f = await applyWdiffs(filled, paths, { discard, keepHoles: false });
      assert.ok(readFileSync(kept).equals(readFileSync(filled)), 'the same image');
      assert.is(s.bytesWritten + s.zeroBytesInHoles, f.bytesWritten);
      assert.ok(statSync(kept).blocks <= statSync(filled).blocks, 'no more allocated');
    },
  ), { numRuns: 60, seed: 1801 + SEED });
});

H.run();
