// The 48-byte index record: decoding at any offset of any buffer gives back what was encoded, the
// unchecked read agrees with it, and a record with any byte changed is refused with a typed error
// (never a plain exception), its checksum error naming the sum the record would need.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { checksum } from '@walbjs/log-format';
import {
  ChecksumError, WALB_DIFF_FLAG_ALLZERO, WALB_DIFF_FLAG_DISCARD, WALB_INDEXED_DIFF_RECORD_SIZE, WdiffFormatError,
  alignedSize, decodeIndexedDiffRecord, encodeIndexedDiffRecord, maxAlignedSize, readIndexedDiffRecord, splitToAligned, writeIndexedDiffRecord,
  type IndexedDiffRecord,
} from '../src/index.ts';

const SIZE = WALB_INDEXED_DIFF_RECORD_SIZE;

/** Valid records: normal ones (raw or snappy) with an extent inside their image, ALLZERO and DISCARD. */
const record = fc.oneof(
  fc.record({
    ioAddress: fc.integer({ min: 0, max: 2 ** 52 }), origBlocks: fc.integer({ min: 1, max: 2048 }), compressed: fc.boolean(),
    dataOffset: fc.integer({ min: 32, max: 2 ** 50 }), ioChecksum: fc.nat({ max: 0xffffffff }), cut: fc.nat(), len: fc.nat(),
  }).map(({ ioAddress, origBlocks, compressed, dataOffset, ioChecksum, cut, len }): IndexedDiffRecord => {
    const ioOffset = cut % origBlocks;
    const ioBlocks = 1 + (len % (origBlocks - ioOffset));
    return {
      ioAddress, ioBlocks, flags: 0, compressionType: compressed ? 2 : 0, reserved1: 0, dataOffset,
      dataSize: compressed ? 1 + (cut % (origBlocks * 512)) : origBlocks * 512, ioOffset, origBlocks, reserved2: 0, ioChecksum, recChecksum: 0,
    };
  }),
  fc.record({ ioAddress: fc.integer({ min: 0, max: 2 ** 52 }), ioBlocks: fc.integer({ min: 1, max: 1 << 20 }), discard: fc.boolean() })
    .map(({ ioAddress, ioBlocks, discard }): IndexedDiffRecord => ({
      ioAddress, ioBlocks, flags: discard ? WALB_DIFF_FLAG_DISCARD : WALB_DIFF_FLAG_ALLZERO, compressionType: 0, reserved1: 0,
      dataOffset: 0, dataSize: 0, ioOffset: 0, origBlocks: 0, reserved2: 0, ioChecksum: 0, recChecksum: 0,
    })),
);

/** `r` encoded at byte `at` of a larger buffer that is itself a view at an odd offset. */
function placed(r: IndexedDiffRecord, at: number): Buffer {
  const whole = Buffer.alloc(at + SIZE + 16 + 3);
  const buf = whole.subarray(3);
  encodeIndexedDiffRecord(r, buf, at);
  return buf;
}

test('decode and the unchecked read give back the encoded record, at any offset', () => {
  fc.assert(fc.property(record, fc.nat({ max: 100 }), (r, at) => {
    const buf = placed(r, at);
    const d = decodeIndexedDiffRecord(buf, at);
    assert.equal(d, r);
    assert.equal(readIndexedDiffRecord(new DataView(buf.buffer, buf.byteOffset, buf.byteLength), at), r);
  }));
});

test('a record with a byte changed is refused with a typed error; a checksum error names the needed sum', () => {
  fc.assert(fc.property(record, fc.nat({ max: 40 }), fc.nat({ max: SIZE - 1 }), fc.integer({ min: 1, max: 255 }), (r, at, i, x) => {
    const buf = placed(r, at);
    buf[at + i] ^= x;
    try {
      decodeIndexedDiffRecord(buf, at, { source: 'idx', offset: 1000 });
    } catch (e) {
      assert.instance(e, WdiffFormatError);
      assert.is((e as WdiffFormatError).source, 'idx');
      if (e instanceof ChecksumError) {
        const copy = Buffer.from(buf.subarray(at, at + SIZE));
        copy.writeUInt32LE(0, 44);
        assert.is(e.actual, checksum(copy, 0));
        assert.is(e.expected, buf.readUInt32LE(at + 44));
      }
      return;
    }
    assert.unreachable('a changed record was taken');
  }));
});

test('a record that does not lie inside the buffer is a RangeError, not a read past it', () => {
  const buf = placed({ ioAddress: 8, ioBlocks: 1, flags: WALB_DIFF_FLAG_ALLZERO, compressionType: 0, reserved1: 0, dataOffset: 0, dataSize: 0, ioOffset: 0, origBlocks: 0, reserved2: 0, ioChecksum: 0, recChecksum: 0 }, 0);
  assert.throws(() => decodeIndexedDiffRecord(buf, buf.byteLength - SIZE + 1), RangeError);
  assert.throws(() => decodeIndexedDiffRecord(buf, -1), RangeError);
});

test('records written in a run through one view and one reused object carry the checksum of their bytes', () => {
  fc.assert(fc.property(fc.array(record, { minLength: 1, maxLength: 20 }), (rs) => {
    const whole = Buffer.alloc(rs.length * SIZE + 5);
    const buf = whole.subarray(5);
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const scratch = { ...rs[0] };
    rs.forEach((r, k) => {
      Object.assign(scratch, r);
      writeIndexedDiffRecord(v, k * SIZE, scratch);
      const bytes = Buffer.from(buf.subarray(k * SIZE, (k + 1) * SIZE));
      assert.is(scratch.recChecksum, bytes.readUInt32LE(44));
      bytes.writeUInt32LE(0, 44);
      assert.is(scratch.recChecksum, checksum(bytes, 0));
      assert.equal(decodeIndexedDiffRecord(buf, k * SIZE), { ...r, recChecksum: scratch.recChecksum });
    });
  }));
});

test('an encoder asked to write past its buffer refuses with a RangeError', () => {
  const r: IndexedDiffRecord = { ioAddress: 8, ioBlocks: 1, flags: WALB_DIFF_FLAG_ALLZERO, compressionType: 0, reserved1: 0, dataOffset: 0, dataSize: 0, ioOffset: 0, origBlocks: 0, reserved2: 0, ioChecksum: 0, recChecksum: 0 };
  assert.throws(() => encodeIndexedDiffRecord(r, Buffer.alloc(SIZE + 3), 4), RangeError);
  assert.throws(() => encodeIndexedDiffRecord(r, Buffer.alloc(SIZE), -1), RangeError);
});

test('alignment sizes: the largest power of two dividing an address, and the largest one not above a count', () => {
  // The definitions, by doubling.
  const divides = (a: number) => { if (a === 0) return 2 ** 31; let s = 1; while (s < 2 ** 31 && a % (s * 2) === 0) s *= 2; return s; };
  const below = (n: number) => { if (n <= 0) return 0; let s = 1; while (s * 2 <= n) s *= 2; return s; };
  const num = fc.oneof(fc.nat(), fc.integer({ min: 0, max: 2 ** 53 - 1 }), fc.constantFrom(0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40), fc.double({ min: 0, max: 2 ** 33, noNaN: true }));
  fc.assert(fc.property(num, (x) => {
    assert.is(alignedSize(x), divides(x));
    assert.is(maxAlignedSize(x), below(x));
  }));
  fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 1 << 22 }), fc.nat({ max: 1 << 16 }), (addr, blocks, cap) => {
    const parts = splitToAligned(addr, blocks, cap);
    assert.is(parts.reduce((a, b) => a + b, 0), blocks);
    let at = addr;
    for (const p of parts) { assert.ok(at % p === 0 && (cap === 0 || p <= below(cap))); at += p; }
  }));
});

test.run();
