// Mutation fuzz of both readers, of apply and of the codecs' inputs (through real files): every
// case reads cleanly or throws the package's typed error, and an apply that throws leaves the
// target exactly as it was.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checksum } from '@walbjs/log-format';
import { UnsupportedVersionError, WdiffFormatError, applyWdiffs, ioBytes, openSortedRecords, openWdiff, recordKind } from '../src/index.ts';
import { makeImage, tempDir, vec } from './helpers.ts';

const RUNS = Number(process.env.WALB_FUZZ_RUNS ?? 300);
/** Added to every property's seed: CI runs the fixed cases; `WALB_FUZZ_SEED=n` explores others. */
const SEED = Number(process.env.WALB_FUZZ_SEED ?? 0);
const t = tempDir();
process.on('exit', () => t.cleanup());
const stats = { ok: 0, typed: 0 };

/**
 * Read `path` whole; a sorted one also by its pack headers alone (`openSortedRecords`), which must
 * list the same records when the whole read passes, and fail only where the whole read fails too
 * (it checks the same structures, but not the data).
 */
async function readAll(path: string): Promise<void> {
  let full: Array<[number, number, string]> | undefined;
  try {
    const d = await openWdiff(path);
    const got: Array<[number, number, string]> = [];
    try { for await (const io of d.ios()) { got.push([io.addr, io.blocks, io.kind]); await ioBytes(io); } } finally { await d.close(); }
    full = got;
    stats.ok++;
  } catch (e) {
    if (!(e instanceof WdiffFormatError)) throw e;
    stats.typed++;
  }
  try {
    const { records } = await openSortedRecords(path);
    const listed: Array<[number, number, string]> = [];
    for await (const { record } of records) listed.push([record.ioAddress, record.ioBlocks, recordKind(record.flags)]);
    if (full) assert.equal(listed, full);
  } catch (e) {
    if (!(e instanceof WdiffFormatError)) throw e;
    if (full && !(e instanceof UnsupportedVersionError)) assert.unreachable(`listing failed where the whole read passed: ${e.message}`);
  }
}

const FILES = ['w-pbs512-mixed.sorted.wdiff', 'w-pbs512-mixed.indexed.wdiff', 'w-cmpr-gzip.wdiff', 'w-cmpr-lzma.wdiff', 'w-cmpr-lz4.wdiff', 'w-cmpr-zstd.wdiff', 'w-chain-merged.wdiff', 'w-pbs4096-rand.indexed.wdiff'];
const F = suite('readers');
for (const f of FILES) {
  const src = readFileSync(vec(f));
  const path = join(t.dir, `m-${f}`);
  F(`${f}: bit flips anywhere and in the structures`, async () => {
    const indexed = src[6] === 1;
    const indexOff = indexed ? Number(src.readBigUInt64LE(src.length - 24)) : 0;
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 }), fc.nat({ max: 2 })), { minLength: 1, maxLength: 3 }), async (flips) => {
      const b = Buffer.from(src);
      for (const [n, bit, where] of flips) {
        // 0: anywhere; 1: the file header or first pack header / the index; 2: record fields.
        const pos = where === 0 ? n % b.length : where === 1 ? (indexed ? indexOff + (n % (b.length - indexOff)) : n % (32 + 4096)) : (indexed ? indexOff + (n % (b.length - indexOff)) : 32 + 16 + (n % (32 * 20)));
        b[pos] ^= 1 << bit;
      }
      writeFileSync(path, b);
      await readAll(path);
    }), { numRuns: RUNS, seed: SEED + 1 });
  });
  F(`${f}: truncations`, async () => {
    await fc.assert(fc.asyncProperty(fc.nat({ max: src.length }), async (n) => {
      writeFileSync(path, src.subarray(0, n));
      await readAll(path);
    }), { numRuns: Math.ceil(RUNS / 3), seed: SEED + 2 });
  });
  F(`${f}: hostile length fields with valid checksums`, async () => {
    const indexed = src[6] === 1;
    await fc.assert(fc.asyncProperty(fc.nat(), fc.constantFrom(0, 1, 2, 3, 4), fc.oneof(fc.constant(0xffffffff), fc.constant(0), fc.nat({ max: 0xffffffff })), async (k, field, value) => {
      const b = Buffer.from(src);
      if (indexed) {
        const superOff = b.length - 24;
        const indexOff = Number(b.readBigUInt64LE(superOff));
        const n = b.readUInt32LE(superOff + 8);
        if (field === 4) {
          b.writeUInt32LE(value, superOff + 8);
          b.writeUInt32LE(0, superOff + 20);
          b.writeUInt32LE(checksum(b.subarray(superOff, superOff + 24), 0), superOff + 20);
        } else {
          const r = indexOff + 48 * (k % Math.max(1, n));
          const at = [8, 24, 28, 32][field];
          b.writeUInt32LE(value, r + at);
          b.writeUInt32LE(0, r + 44);
          b.writeUInt32LE(checksum(b.subarray(r, r + 48), 0), r + 44);
        }
      } else {
        const p = 32;
        const r = p + 16 + 32 * (k % 8);
        const at = [p + 4, p + 8, r + 8, r + 20, r + 16][field];
        if (field === 0) b.writeUInt16LE(value & 0xffff, at); else b.writeUInt32LE(value, at);
        b.writeUInt32LE(0, p);
        b.writeUInt32LE(checksum(b.subarray(p, p + 4096), 0), p);
      }
      writeFileSync(path, b);
      await readAll(path);
    }), { numRuns: RUNS, seed: SEED + 3 });
  });
}
F('outcomes were mixed', () => {
  assert.ok(stats.typed > 500, `typed: ${stats.typed}`);
  assert.ok(stats.ok > 5, `ok: ${stats.ok}`);
});
F.run();

const Apply = suite('apply');
Apply('a corrupt input changes nothing: apply throws and the image is untouched', async () => {
  const src = readFileSync(vec('w-cmpr-snappy.wdiff'));
  const img = makeImage(t.dir, 'target.img', 32 << 20, 0x33);
  const before = readFileSync(img);
  const path = join(t.dir, 'bad.wdiff');
  let threw = 0;
  await fc.assert(fc.asyncProperty(fc.nat(), fc.integer({ min: 0, max: 7 }), async (n, bit) => {
    const b = Buffer.from(src);
    // Late in the file, so a streaming apply would already have written earlier records.
    b[Math.floor(b.length * 0.6) + (n % Math.floor(b.length * 0.4))] ^= 1 << bit;
    writeFileSync(path, b);
    try {
      await applyWdiffs(img, [vec('w-cmpr-none.wdiff'), path]);
      writeFileSync(img, before);
    } catch (e) {
      if (!(e instanceof WdiffFormatError)) throw e;
      threw++;
      assert.ok(readFileSync(img).equals(before), 'image unchanged');
    }
  }), { numRuns: 60, seed: SEED + 4 });
  assert.ok(threw > 20, `rejections: ${threw}`);
});
Apply('an IO beyond the image end is refused before anything is written', async () => {
  const img = makeImage(t.dir, 'small.img', 1 << 20, 0x11);
  const before = readFileSync(img);
  try { await applyWdiffs(img, [vec('w-cmpr-none.wdiff')]); assert.unreachable(); } catch (e) {
    assert.instance(e, WdiffFormatError);
    assert.match((e as Error).message, /beyond/);
  }
  assert.ok(readFileSync(img).equals(before));
});
Apply.run();
