// Hostile input for every decompressor: mutated payloads (bit flips, truncation, overwritten and
// appended bytes, pure garbage) and hand-made bombs. Each call must end, quickly, in a CodecError
// or in exactly the expected number of bytes — never a crash, a hang or an allocation sized by
// the input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { deflateSync } from 'node:zlib';
import {
  CodecError, getCodec, lz4TsCodec, lzmaCodec, snappyJsCodec, zlibCodec, zstdCodec, type Codec,
} from '../src/codec/index.ts';
import { CompressionType } from '../src/compression.ts';

const isCodecError = (e: unknown) => e instanceof CodecError && e.code === 'ERR_WDIFF_CODEC';

function implementations(): Codec[] {
  const list = [1, 2, 3, 4, 5].map((t) => getCodec(t));
  for (const c of [snappyJsCodec, lz4TsCodec]) if (!list.includes(c)) list.push(c);
  return list;
}

/** Decompress and check the outcome; returns what happened. */
function outcome(codec: Codec, stored: Uint8Array, size: number): 'ok' | 'error' {
  try {
    const out = codec.decompressSync!(stored, size);
    assert.ok(Buffer.isBuffer(out), `${codec.impl}: a Buffer`);
    assert.is(out.length, size, `${codec.impl}: exactly the expected size`);
    return 'ok';
  } catch (e) {
    if (!isCodecError(e)) throw new Error(`${codec.impl}: not a CodecError: ${String(e)}`, { cause: e });
    return 'error';
  }
}

async function outcomeAsync(codec: Codec, stored: Uint8Array, size: number): Promise<'ok' | 'error'> {
  try {
    const out = await codec.decompress(stored, size);
    assert.is(out.length, size, `${codec.impl}: exactly the expected size`);
    return 'ok';
  } catch (e) {
    if (!isCodecError(e)) throw new Error(`${codec.impl}: not a CodecError: ${String(e)}`, { cause: e });
    return 'error';
  }
}

function time<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const r = fn();
  return [r, performance.now() - t0];
}

const dataArb = (max: number) =>
  fc.oneof(
    fc.uint8Array({ maxLength: max }),
    fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 32 }), fc.integer({ min: 1, max })).map(([u, n]) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = u[i % u.length];
      return b;
    }),
    fc.integer({ min: 1, max }).map((n) => new Uint8Array(n)),
  );

type Mutation =
  | { kind: 'flip'; bits: Array<[number, number]> }
  | { kind: 'truncate'; at: number }
  | { kind: 'overwrite'; at: number; bytes: Uint8Array }
  | { kind: 'append'; bytes: Uint8Array }
  | { kind: 'garbage'; bytes: Uint8Array }
  | { kind: 'size'; delta: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), bits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('overwrite' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('garbage' as const), bytes: fc.uint8Array({ maxLength: 4096 }) }),
  fc.record({ kind: fc.constant('size' as const), delta: fc.integer({ min: -600, max: 600 }).filter((d) => d !== 0) }),
);

function mutate(stored: Buffer, size: number, m: Mutation): [Buffer, number] {
  switch (m.kind) {
    case 'flip': {
      const b = Buffer.from(stored);
      if (b.length) for (const [p, bit] of m.bits) b[p % b.length] ^= 1 << bit;
      return [b, size];
    }
    case 'truncate':
      return [stored.subarray(0, stored.length ? m.at % stored.length : 0), size];
    case 'overwrite': {
      const b = Buffer.from(stored);
      if (b.length) b.set(m.bytes.subarray(0, b.length - (m.at % b.length)), m.at % b.length);
      return [b, size];
    }
    case 'append':
      return [Buffer.concat([stored, m.bytes]), size];
    case 'garbage':
      return [Buffer.from(m.bytes), size];
    case 'size':
      return [stored, Math.max(0, size + m.delta)];
  }
}

test('mutated payloads: CodecError or the exact size, for every implementation (sync)', () => {
  for (const codec of implementations()) {
    const slow = codec.type === CompressionType.LZMA;
    const seen = { ok: 0, error: 0 };
    fc.assert(
      fc.property(dataArb(slow ? 16 * 1024 : 64 * 1024), fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (data, ms) => {
        let stored = codec.compressSync!(data, slow ? 1 : 0);
        let size = data.length;
        for (const m of ms) [stored, size] = mutate(stored, size, m);
        const [r, ms_] = time(() => outcome(codec, stored, size));
        seen[r]++;
        assert.ok(ms_ < 2000, `${codec.impl}: ${ms_.toFixed(0)} ms for ${stored.length} bytes`);
      }),
      { numRuns: slow ? 150 : 600 },
    );
    assert.ok(seen.error > 0, `${codec.impl}: some mutations were caught (${JSON.stringify(seen)})`);
  }
});

test('mutated payloads: the asynchronous paths too', async () => {
  for (const codec of implementations()) {
    const slow = codec.type === CompressionType.LZMA;
    await fc.assert(
      fc.asyncProperty(dataArb(slow ? 8 * 1024 : 32 * 1024), mutationArb, async (data, m) => {
        const [stored, size] = mutate(await codec.compress(data, 1), data.length, m);
        await outcomeAsync(codec, stored, size);
      }),
      { numRuns: slow ? 60 : 200 },
    );
  }
});

test('pure garbage of every length up to 300 bytes, and every truncation of a real payload', () => {
  const data = Buffer.from('a record of a walb diff; a record of a walb diff; 0123456789 '.repeat(30));
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) >>> 24);
  for (const codec of implementations()) {
    for (let n = 0; n <= 300; n++) {
      const g = Buffer.alloc(n);
      for (let i = 0; i < n; i++) g[i] = rnd();
      outcome(codec, g, data.length);
      outcome(codec, g, 512);
    }
    const stored = codec.compressSync!(data, 1);
    for (let n = 0; n < stored.length; n++) {
      assert.is(outcome(codec, stored.subarray(0, n), data.length), 'error', `${codec.impl}: truncated to ${n} of ${stored.length}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Bombs: small inputs that expand to far more than the record size.

test('zlib bomb: inflation stops at the record size', () => {
  const bomb = deflateSync(Buffer.alloc(256 << 20), { level: 1 });
  assert.ok(bomb.length < 2 << 20);
  const [r, ms] = time(() => outcome(zlibCodec, bomb, 4096));
  assert.is(r, 'error');
  assert.ok(ms < 500, `${ms.toFixed(0)} ms`);
});

/** A zstd frame without a content size: `n` RLE blocks of 128 KiB each (4 input bytes apiece). */
function zstdRleBomb(n: number): Buffer {
  const b = Buffer.alloc(6 + 4 * n);
  b.writeUInt32LE(0xfd2fb528, 0);
  b[4] = 0x00; // no content size, no checksum, not single-segment
  b[5] = (17 - 10) << 3; // window 128 KiB
  for (let i = 0; i < n; i++) {
    const header = (i === n - 1 ? 1 : 0) | (1 << 1) | ((128 * 1024) << 3); // last, RLE, size
    b.writeUIntLE(header, 6 + 4 * i, 3);
    b[6 + 4 * i + 3] = 0x41;
  }
  return b;
}

test('zstd bombs: a frame declaring 64 MiB, and 32 GiB of RLE blocks without a declared size', () => {
  const declared = zstdCodec.compressSync!(Buffer.alloc(64 << 20), 1);
  const [r1, ms1] = time(() => outcome(zstdCodec, declared, 4096));
  assert.is(r1, 'error');
  assert.ok(ms1 < 500, `${ms1.toFixed(0)} ms`);

  const rle = zstdRleBomb(8);
  assert.is(outcome(zstdCodec, rle, 8 * 128 * 1024), 'ok', 'the hand-made frame is valid');
  assert.ok(zstdCodec.decompressSync!(rle, 8 * 128 * 1024).every((x) => x === 0x41));
  const bomb = zstdRleBomb(256 * 1024);
  const [r2, ms2] = time(() => outcome(zstdCodec, bomb, 1 << 20));
  assert.is(r2, 'error');
  assert.ok(ms2 < 500, `${ms2.toFixed(0)} ms`);
  // The instance is still usable afterwards.
  const d = Buffer.from('still fine '.repeat(100));
  assert.ok(zstdCodec.decompressSync!(zstdCodec.compressSync!(d, 3), d.length).equals(d));
});

function crc32(b: Uint8Array): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

test('xz bombs: refused by the container walk before liblzma runs', async () => {
  const big = lzmaCodec.compressSync!(Buffer.alloc(48 << 20), 1);
  assert.ok(big.length < 100_000);
  for (const size of [4096, (48 << 20) - 1]) {
    const [r, ms] = time(() => outcome(lzmaCodec, big, size));
    assert.is(r, 'error');
    assert.ok(ms < 50, `refused without decoding (${ms.toFixed(1)} ms)`);
    assert.is(await outcomeAsync(lzmaCodec, big, size), 'error');
  }
  let msg = '';
  try { lzmaCodec.decompressSync!(big, 4096); } catch (e) { msg = (e as Error).message; }
  assert.match(msg, /its LZMA2 chunks hold 50331648 bytes/);
});

test('xz: a dictionary beyond the memory limit is refused by liblzma', () => {
  const data = Buffer.from('dictionary test '.repeat(64));
  const xz = Buffer.from(lzmaCodec.compressSync!(data, 1));
  // Block header at 12: size byte, flags, [sizes], 0x21, 0x01, dictionary property, padding, CRC32.
  const hsize = (xz[12] + 1) * 4;
  const p = xz.indexOf(Buffer.from([0x21, 0x01]), 13);
  assert.ok(p > 12 && p < 12 + hsize);
  xz[p + 2] = 40; // 4 GiB − 1
  xz.writeUInt32LE(crc32(xz.subarray(12, 12 + hsize - 4)), 12 + hsize - 4);
  let err: unknown;
  try { lzmaCodec.decompressSync!(xz, data.length); } catch (e) { err = e; }
  assert.ok(isCodecError(err), String(err));
});

test('xz: container damage that the walk sees, and data damage that only liblzma sees', () => {
  const data = Buffer.from('0123456789abcdef'.repeat(500));
  const xz = lzmaCodec.compressSync!(data, 0);
  const cases: Array<[string, (b: Buffer) => void]> = [
    ['magic', (b) => { b[0] ^= 1; }],
    ['stream flags', (b) => { b[7] = 0x14; }],
    ['footer magic', (b) => { b[b.length - 1] = 0; }],
    ['backward size', (b) => { b[b.length - 8] ^= 1; }],
    ['index count', (b) => { b[b.length - 12 - 12 + 1] ^= 0x7f; }],
    ['payload', (b) => { b[40] ^= 0x10; }],
    ['check', (b) => { b[b.length - 12 - 12 - 4] ^= 1; }],
  ];
  for (const [what, damage] of cases) {
    const b = Buffer.from(xz);
    damage(b);
    assert.is(outcome(lzmaCodec, b, data.length), 'error', what);
  }
  // Concatenated streams with stream padding are valid .xz input.
  const two = Buffer.concat([xz, Buffer.alloc(4), lzmaCodec.compressSync!(data, 1)]);
  assert.ok(lzmaCodec.decompressSync!(two, 2 * data.length).equals(Buffer.concat([data, data])));
  assert.is(outcome(lzmaCodec, Buffer.concat([xz, Buffer.alloc(3)]), data.length), 'error', 'padding not a multiple of 4');
  assert.is(outcome(lzmaCodec, Buffer.concat([xz, Buffer.from('junk')]), data.length), 'error', 'trailing junk');
});

test('snappy: a size varint that disagrees with the record is refused before decoding', () => {
  for (const codec of [getCodec(CompressionType.SNAPPY), snappyJsCodec]) {
    const huge = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x41]); // claims 4 GiB − 1
    const [r, ms] = time(() => outcome(codec, huge, 4096));
    assert.is(r, 'error');
    assert.ok(ms < 50);
    assert.is(outcome(codec, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), 4096), 'error', 'varint too long');
    // Elements that would write past the size the varint announces.
    const over = Buffer.concat([Buffer.from([0x80, 0x20]), Buffer.from([0x00, 0x41]), Buffer.alloc(200, 0xfe), Buffer.from([0x00, 0x00])]);
    assert.is(outcome(codec, over, 4096), 'error', 'copies past the end');
  }
});

test('lz4: endless length bytes and oversized matches end quickly in a CodecError', () => {
  for (const codec of [getCodec(CompressionType.LZ4), lz4TsCodec]) {
    const lengths = Buffer.alloc(32 << 20, 0xff); // a literal length that never ends
    const [r1, ms1] = time(() => outcome(codec, lengths, 1 << 20));
    assert.is(r1, 'error');
    assert.ok(ms1 < 1000, `${codec.impl}: ${ms1.toFixed(0)} ms`);
    // One literal, then a match of 15 + 255·k bytes repeated: far more output than allowed.
    const parts = [Buffer.from([0x1f, 0x41, 0x01, 0x00]), Buffer.alloc(4000, 0xff), Buffer.from([0x00])];
    for (let i = 0; i < 2000; i++) parts.push(Buffer.from([0x0f, 0x01, 0x00]), Buffer.alloc(200, 0xff), Buffer.from([0x00]));
    parts.push(Buffer.from([0x10, 0x41]));
    const bomb = Buffer.concat(parts);
    const [r2, ms2] = time(() => outcome(codec, bomb, 65536));
    assert.is(r2, 'error');
    assert.ok(ms2 < 200, `${codec.impl}: ${ms2.toFixed(0)} ms`);
    assert.is(outcome(codec, Buffer.from([0x0f, 0x00, 0x00]), 100), 'error', 'offset 0');
    assert.is(outcome(codec, Buffer.from([0x10, 0x41, 0x02, 0x00, 0x10, 0x41]), 100), 'error', 'offset past the start');
  }
});

test('out-of-range sizes are refused before any work', () => {
  const tiny = Buffer.from([1, 2, 3]);
  for (const codec of implementations()) {
    for (const size of [64 * 1024 * 1024 + 1, 2 ** 32, -5, 0.5]) {
      const [r, ms] = time(() => outcome(codec, tiny, size));
      assert.is(r, 'error');
      assert.ok(ms < 50);
    }
  }
});

test.run();
