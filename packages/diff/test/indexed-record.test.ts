// The 48-byte index record: decoding at any offset of any buffer gives back what was encoded, the
// unchecked read agrees with it, and a record with any byte changed is refused as a checksum error
// naming where and the sum the record would need; out-of-range values are only blamed on a record
// (or index super) whose checksum is right.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { checksum } from '@walbjs/log-format';
import {
  ChecksumError, TruncatedError, ValueOutOfRangeError, WALB_DIFF_FLAG_ALLZERO, WALB_DIFF_FLAG_DISCARD, WALB_INDEXED_DIFF_RECORD_SIZE,
  alignedSize, decodeDiffIndexSuper, decodeIndexedDiffRecord, encodeDiffIndexSuper, encodeIndexedDiffRecord, maxAlignedSize,
  readIndexedDiffRecord, splitToAligned, writeIndexedDiffRecord, type IndexedDiffRecord,
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

test('a record with a byte changed is a checksum error, whatever the byte, naming where and the needed sum', () => {
  // One changed byte always changes the sum; the checksum comes before the fields, so a high byte
  // of an address made huge is not mistaken for a crafted value out of range.
  fc.assert(fc.property(record, fc.nat({ max: 40 }), fc.nat({ max: SIZE - 1 }), fc.integer({ min: 1, max: 255 }), fc.boolean(), (r, at, i, x, located) => {
    const buf = placed(r, at);
    buf[at + i] ^= x;
    try {
      decodeIndexedDiffRecord(buf, at, located ? { source: 'idx', offset: 1000 } : { source: 'idx' });
    } catch (e) {
      assert.instance(e, ChecksumError);
      const c = e as ChecksumError;
      assert.is(c.source, 'idx');
      assert.is(c.offset, located ? 1000 : at);
      assert.match(c.message, `offset ${located ? 1000 : at}`);
      const copy = Buffer.from(buf.subarray(at, at + SIZE));
      copy.writeUInt32LE(0, 44);
      assert.is(c.actual, checksum(copy, 0));
      assert.is(c.expected, buf.readUInt32LE(at + 44));
      return;
    }
    assert.unreachable('a changed record was taken');
  }));
});

test('a record whose checksum is right but an address or offset is 2^53 or more is a range error in plain numbers', () => {
  const base: IndexedDiffRecord = {
    ioAddress: 64, ioBlocks: 8, flags: 0, compressionType: 0, reserved1: 0, dataOffset: 4096,
    dataSize: 8 * 512, ioOffset: 0, origBlocks: 8, reserved2: 0, ioChecksum: 7, recChecksum: 0,
  };
  for (const [field, at, unit, other] of [['io_address', 0, /\bLB\b/, /\bbytes\b/], ['data_offset', 16, /\bbytes\b/, /\bLB\b/]] as const) {
    const buf = placed(base, 8);
    buf[8 + at + 7] ^= 0x40;
    buf.writeUInt32LE(0, 8 + 44);
    buf.writeUInt32LE(checksum(buf.subarray(8, 8 + SIZE), 0), 8 + 44);
    const value = buf.readBigUInt64LE(8 + at);
    try {
      decodeIndexedDiffRecord(buf, 8);
      assert.unreachable(`${field} ${value} was taken`);
    } catch (e) {
      assert.instance(e, ValueOutOfRangeError);
      const v = e as ValueOutOfRangeError;
      assert.is(v.field, field);
      assert.is(v.value, value);
      assert.is(v.offset, 8);
      assert.match(v.message, `${field}: ${value} `);
      assert.not.match(v.message, /\d+n\b/);
      assert.match(v.message, unit);
      assert.not.match(v.message, other);
    }
  }
});

test('an index super with a bit flipped is a checksum error at its offset; a crafted one out of range a range error in bytes', () => {
  const good = encodeDiffIndexSuper({ indexOffset: 4096, nRecords: 3, nData: 2, reserved1: 0, checksum: 0 });
  const buf = Buffer.concat([Buffer.alloc(40), good]);
  assert.equal(decodeDiffIndexSuper(buf, 40).indexOffset, 4096);
  for (const bit of [0, 5, 6, 7]) {
    const b = Buffer.from(buf);
    b[40 + 7] ^= 1 << bit;
    assert.throws(() => decodeDiffIndexSuper(b, 40, { source: 'f' }), (e: unknown) => e instanceof ChecksumError && e.offset === 40 && e.message.includes('offset 40'));
    b.writeUInt32LE(0, 40 + 20);
    b.writeUInt32LE(checksum(b.subarray(40, 64), 0), 40 + 20);
    const value = b.readBigUInt64LE(40);
    assert.throws(() => decodeDiffIndexSuper(b, 40, { source: 'f', offset: 9000 }), (e: unknown) => e instanceof ValueOutOfRangeError
      && e.field === 'index_offset' && e.value === value && e.offset === 9000
      && e.message.includes(`index_offset: ${value} `) && !/\d+n\b/.test(e.message) && /\bbytes\b/.test(e.message) && !/\bLB\b/.test(e.message));
  }
  assert.throws(() => decodeDiffIndexSuper(buf, 41), (e: unknown) => e instanceof TruncatedError && e.offset === 41);
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
