import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { checksum, checksumAccelerated, checksumFinish, checksumPartial, checksumVerifies, useChecksumImplementation } from '../src/index.ts';

test('known vectors of reference/walb.md §4.2', () => {
  assert.is(checksum(Uint8Array.of(1, 0, 0, 0, 2, 0, 0, 0), 0), 0xfffffffd);
  assert.is(checksum(new Uint8Array(512), 0x12345678), 0xedcba988);
  assert.is(checksum(new Uint8Array(4096), 0), 0);
});

test('a trailing 1..3 bytes are zero-padded to a word', () => {
  assert.is(checksum(Uint8Array.of(1, 0, 0, 0, 5), 0), checksum(Uint8Array.of(1, 0, 0, 0, 5, 0, 0, 0), 0));
  assert.is(checksum(Uint8Array.of(0xff, 0xff, 0xff), 0), checksum(Uint8Array.of(0xff, 0xff, 0xff, 0), 0));
});

test('every length, aligned: the same as a plain word-by-word sum (the unrolled loop and its tails)', () => {
  const data = new Uint8Array(4096 + 67);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + 17) & 0xff;
  for (const len of [...Array(68).keys(), 4093, 4096, 4099, 4163]) {
    // A copy of exactly `len` bytes: reads past its end give undefined, the zero padding.
    const v = Uint8Array.from(data.subarray(0, len));
    let p = 0x9e3779b9;
    for (let o = 0; o < len; o += 4) p = (p + (v[o] | ((v[o + 1] ?? 0) << 8) | ((v[o + 2] ?? 0) << 16) | ((v[o + 3] ?? 0) << 24))) >>> 0;
    assert.is(checksum(v, 0x9e3779b9), (-p) >>> 0, `length ${len}`);
  }
});

test('unaligned views give the same sum as aligned copies', () => {
  const big = new Uint8Array(1027);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 3) & 0xff;
  for (let off = 0; off < 4; off++) {
    const v = big.subarray(off, off + 1020);
    assert.is(checksum(v, 99), checksum(Uint8Array.from(v), 99));
  }
});

test('property: a block with its checksum stored in a word verifies; sums compose by pieces', () => {
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 8, maxLength: 2048 }).map((a) => a.subarray(0, a.length & ~3)),
    fc.integer({ min: 0, max: 0xffffffff }),
    fc.nat(),
    (data, salt, cut) => {
      const block = Uint8Array.from(data);
      new DataView(block.buffer).setUint32(0, 0, true);
      const c = checksum(block, salt);
      new DataView(block.buffer).setUint32(0, c, true);
      if (!checksumVerifies(block, salt)) return false;
      const k = (cut % (block.length + 1)) & ~3;
      const pieces = checksumFinish(checksumPartial(block.subarray(k), checksumPartial(block.subarray(0, k), salt)));
      return pieces === checksum(block, salt);
    },
  ), { numRuns: 500 });
});

test('an accelerator is checked before use and serves big buffers only; partial sums stay right', () => {
  assert.not.ok(useChecksumImplementation(() => 42), 'a wrong implementation is refused');
  assert.not.ok(checksumAccelerated());
  let calls = 0;
  // A correct stand-in (the TypeScript sum itself) that counts its calls.
  const plain = (b: Uint8Array, salt: number) => { calls++; let s = salt | 0; for (let i = 0; i + 4 <= b.length; i += 4) s = (s + (b[i] | b[i + 1] << 8 | b[i + 2] << 16 | b[i + 3] << 24)) | 0; const r = b.length & 3; if (r) { let w = 0; for (let k = 0; k < r; k++) w |= b[b.length - r + k] << (8 * k); s = (s + w) | 0; } return (-s) >>> 0; };
  assert.ok(useChecksumImplementation(plain));
  try {
    calls = 0;
    const big = new Uint8Array(8192).map((_x, i) => i * 7);
    assert.is(checksum(big, 5), checksumFinish(checksumPartial(big.subarray(4096), checksumPartial(big.subarray(0, 4096), 5))));
    assert.ok(calls >= 3);
    calls = 0;
    checksum(new Uint8Array(100), 1);
    assert.is(calls, 0, 'small buffers stay in TypeScript');
  } finally {
    useChecksumImplementation(undefined);
  }
});

test.run();
