// Mutation fuzz of every parser over the reference vectors: bit flips, truncations and hostile
// length fields (with checksums fixed up so the parsers look past them). Every case must parse or
// throw the package's typed error; anything else (a crash, a RangeError from a buffer, a hang)
// fails the test.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  LogDevice, WalbFormatError, WlogReader, checksum, decodeLogpackHeader, decodeSuperSector,
  decodeWlogHeader, extractLogpacks,
} from '../src/index.ts';
import { tempDir, vecBytes } from './helpers.ts';

const FILES = ['w-pbs512-mixed.wlog', 'w-pbs4096-rand.wlog', 'w-pbs512-zeroish-big-io.wlog', 'w-chain-0.wlog', 'w-ldev-extracted.wlog', 'w-pbs512-rand-nodiscard.wlog'];
const RUNS = Number(process.env.WALB_FUZZ_RUNS ?? 400);

let outcomes = { ok: 0, typed: 0 };

async function parseAll(bytes: Uint8Array, strict: boolean): Promise<void> {
  try {
    const r = await WlogReader.open(bytes, { strict });
    for await (const _p of r) { /* consume */ }
    outcomes.ok++;
  } catch (e) {
    if (!(e instanceof WalbFormatError)) throw e;
    assert.ok(e.message.length > 0);
    outcomes.typed++;
  }
}

/** Header-block offsets of a wlog (the file header and every pack header), found by a clean parse. */
async function headerOffsets(bytes: Buffer): Promise<{ pbs: number; salt: number; offsets: number[] }> {
  const r = await WlogReader.open(bytes);
  const offsets = [0];
  for await (const p of r) offsets.push(p.offset);
  return { pbs: r.pbs, salt: r.header.logChecksumSalt, offsets };
}

/** Recompute a logpack header block's checksum so the parser trusts the mutated fields. */
function fixPackChecksum(b: Buffer, off: number, pbs: number, salt: number): void {
  b.writeUInt32LE(0, off);
  b.writeUInt32LE(checksum(b.subarray(off, off + pbs), salt), off);
}

const Wlog = suite('wlog reader');
for (const f of FILES) {
  const src = vecBytes(f);
  Wlog(`${f}: random bit flips, strict and lenient`, async () => {
    const { offsets, pbs } = await headerOffsets(src);
    await fc.assert(fc.asyncProperty(
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 }), fc.boolean()), { minLength: 1, maxLength: 4 }),
      fc.boolean(),
      async (flips, strict) => {
        const b = Buffer.from(src);
        for (const [n, bit, inHeader] of flips) {
          // Half of the flips land in header blocks, where the parsing decisions are made.
          const pos = inHeader ? offsets[n % offsets.length] + (n % (offsets[n % offsets.length] === 0 ? 64 : pbs)) : n % b.length;
          b[pos] ^= 1 << bit;
        }
        await parseAll(b, strict);
      },
    ), { numRuns: RUNS, seed: 0x5eed });
  });
  Wlog(`${f}: truncation at any length`, async () => {
    await fc.assert(fc.asyncProperty(fc.nat({ max: src.length }), fc.boolean(), async (n, strict) => {
      await parseAll(src.subarray(0, n), strict);
    }), { numRuns: Math.ceil(RUNS / 2), seed: 0x7a11 });
  });
  Wlog(`${f}: hostile length fields with valid checksums`, async () => {
    const { offsets, pbs, salt } = await headerOffsets(src);
    const packOffs = offsets.slice(1);
    await fc.assert(fc.asyncProperty(
      fc.nat(), fc.constantFrom('n_records', 'total_io_size', 'io_size', 'lsid_local', 'n_padding', 'flags', 'header_pbs'),
      fc.oneof(fc.constant(0xffffffff), fc.constant(0xffff), fc.constant(0), fc.nat({ max: 0xffffffff })),
      async (k, field, value) => {
        const b = Buffer.from(src);
        const off = packOffs[k % packOffs.length];
        const rec = off + 24 + 32 * (k % 3);
        switch (field) {
          case 'n_records': b.writeUInt16LE(value & 0xffff, off + 16); break;
          case 'total_io_size': b.writeUInt16LE(value & 0xffff, off + 6); break;
          case 'n_padding': b.writeUInt16LE(value & 0xffff, off + 18); break;
          case 'io_size': b.writeUInt32LE(value >>> 0, rec + 16); break;
          case 'lsid_local': b.writeUInt16LE(value & 0xffff, rec + 20); break;
          case 'flags': b.writeUInt32LE(value >>> 0, rec + 4); break;
          case 'header_pbs': b.writeUInt32LE(value >>> 0, 20); b.writeUInt32LE(0, 8); b.writeUInt32LE(checksum(b.subarray(0, 4096), 0), 8); break;
        }
        if (field !== 'header_pbs') fixPackChecksum(b, off, pbs, salt);
        await parseAll(b, true);
      },
    ), { numRuns: RUNS, seed: 0xbad });
  });
}
Wlog('outcomes were mixed: some mutations parse, most are rejected with typed errors', () => {
  assert.ok(outcomes.typed > 1000, `typed errors: ${outcomes.typed}`);
  assert.ok(outcomes.ok > 10, `clean parses: ${outcomes.ok}`);
});
Wlog.run();

const Blocks = suite('block decoders');
Blocks('decoders on arbitrary bytes: typed errors only', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 4200 }), fc.constantFrom(512, 4096), fc.nat(), (bytes, pbs, salt) => {
    for (const fn of [
      () => decodeLogpackHeader(bytes, 0, pbs, salt, { verifyChecksum: false }),
      () => decodeSuperSector(bytes, 0, { verifyChecksum: false }),
      () => decodeWlogHeader(bytes),
    ]) {
      try { fn(); } catch (e) { if (!(e instanceof WalbFormatError)) throw e; }
    }
  }), { numRuns: RUNS * 5, seed: 42 });
});
Blocks.run();

const Ldev = suite('log device');
Ldev('w-ldev.img with flipped bits in the super sector and the ring: open and extract give typed errors or valid packs', async () => {
  const t = tempDir();
  const base = vecBytes('w-ldev.img.gz');
  const path = join(t.dir, 'ldev.img');
  try {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 }), fc.boolean()), { minLength: 1, maxLength: 3 }),
      async (flips) => {
        const b = Buffer.from(base);
        // The log of this device sits at PB 10 + (14000..20272 mod 16374) of the image.
        for (const [n, bit, inSuper] of flips) b[inSuper ? 4096 + (n % 512) : 5120 + (n % (3300 << 10))] ^= 1 << bit;
        writeFileSync(path, b);
        let dev: LogDevice | undefined;
        try {
          dev = await LogDevice.open(path);
          const it = extractLogpacks(dev);
          let n = 0;
          while (!(await it.next()).done) n++;
          assert.ok(n >= 0);
        } catch (e) {
          if (!(e instanceof WalbFormatError)) throw e;
        } finally {
          await dev?.close();
        }
      },
    ), { numRuns: Math.ceil(RUNS / 2), seed: 7 });
  } finally { t.cleanup(); }
});
Ldev.run();
