import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  ChecksumError, INVALID_LSID, LOG_RECORD_DISCARD, LOG_RECORD_EXIST, LOG_RECORD_PADDING,
  LsidSequenceError, MIN_RING_BUFFER_PB, SectorTypeError, TruncatedError, UnsupportedVersionError, ValueOutOfRangeError,
  decodeLogRecord, decodeLogpackHeader, decodeSuperSector, decodeWlogHeader, emptyLogpackHeader, encodeLogRecord, encodeLogpackHeader, encodeSuperSector,
  encodeWlogHeader, endMarkerHeader, isEndMarker, makeSuperSector, makeWlogHeader, maxRecordsInPack,
  nextLogpackLsid, ringBufferOffset, superSector0Offset, superSectorPbs, capacityPb, type LogRecord, type LogpackHeader,
} from '../src/index.ts';

test('constants and offsets of reference/walb.md §4.1, §4.3', () => {
  assert.is(maxRecordsInPack(512), 15);
  assert.is(maxRecordsInPack(4096), 127);
  assert.is(superSector0Offset(512), 8);
  assert.is(superSector0Offset(4096), 1);
  assert.is(ringBufferOffset(512), 10);
  assert.is(ringBufferOffset(4096), 3);
  assert.is(capacityPb(4096, 9), 2);
  assert.is(capacityPb(512, 9), 9);
});

test('super sector field offsets (104-byte packed struct)', () => {
  const s = makeSuperSector({ pbs: 512, ldevLb: 16384n, ddevLb: 32768n, name: 'wdev', salt: 0x11223344, uuid: new Uint8Array(16).fill(0xab) }, (n) => new Uint8Array(n));
  const b = encodeSuperSector(s);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  assert.is(b.length, 512);
  assert.is(v.getUint16(0, true), 1);
  assert.is(v.getUint16(2, true), 2);
  assert.is(v.getUint32(8, true), 512);
  assert.is(v.getUint32(12, true), 512);
  assert.is(v.getUint32(20, true), 0x11223344);
  assert.is(b[24], 0xab);
  assert.is(b.subarray(40, 44).toString(), 'wdev');
  assert.is(v.getBigUint64(72, true), 16374n);
  assert.is(v.getBigUint64(96, true), 32768n);
  assert.equal(b.subarray(104).every((x) => x === 0), true);
  const d = decodeSuperSector(b);
  assert.is(d.name, 'wdev');
  assert.is(d.ringBufferSize, 16374n);
});

test('super sector: bad type, version, checksum are typed errors', () => {
  const s = makeSuperSector({ pbs: 4096, ldevLb: 1n << 20n, ddevLb: 100n }, (n) => new Uint8Array(n).fill(7));
  const b = encodeSuperSector(s);
  const bad = (mut: (x: Buffer) => void) => { const c = Buffer.from(b); mut(c); return c; };
  assert.throws(() => decodeSuperSector(bad((c) => c.writeUInt16LE(3, 0))), (e: unknown) => e instanceof SectorTypeError);
  assert.throws(() => decodeSuperSector(bad((c) => c.writeUInt16LE(1, 2))), (e: unknown) => e instanceof UnsupportedVersionError);
  assert.throws(() => decodeSuperSector(bad((c) => { c[300] ^= 1; })), (e: unknown) => e instanceof ChecksumError);
  assert.throws(() => decodeSuperSector(bad((c) => c.writeUInt32LE(1000, 12))), (e: unknown) => e instanceof ValueOutOfRangeError);
  assert.throws(() => makeSuperSector({ pbs: 512, ldevLb: 10n, ddevLb: 1n }, (n) => new Uint8Array(n)), (e: unknown) => e instanceof ValueOutOfRangeError);
});

test('wlog header layout and validation', () => {
  const h = makeWlogHeader({ pbs: 4096, salt: 5, uuid: new Uint8Array(16).fill(1), beginLsid: 7n });
  const b = encodeWlogHeader(h);
  assert.is(b.length, 4096);
  assert.is(b.readUInt16LE(0), 4);
  assert.is(b.readUInt16LE(4), 4096);
  assert.is(b.readBigUInt64LE(40), 7n);
  assert.is(b.readBigUInt64LE(48), INVALID_LSID);
  const d = decodeWlogHeader(b);
  assert.is(d.beginLsid, 7n);
  assert.is(d.physicalBs, 4096);
  const c = Buffer.from(b); c.writeBigUInt64LE(7n, 48); c.writeUInt32LE(0, 8);
  c.writeUInt32LE(0, 8);
  assert.throws(() => decodeWlogHeader(c), (e: unknown) => e instanceof ChecksumError);
  assert.throws(() => encodeWlogHeader({ ...h, endLsid: 7n }), (e: unknown) => e instanceof ValueOutOfRangeError);
});

const recordArb = (pbs: number) => fc.oneof(
  fc.record({ kind: fc.constant('normal' as const), offset: fc.bigInt({ min: 0n, max: (1n << 40n) }), size: fc.integer({ min: 1, max: 65535 }) }),
  fc.record({ kind: fc.constant('discard' as const), offset: fc.bigInt({ min: 0n, max: (1n << 40n) }), size: fc.integer({ min: 1, max: 0xffffffff }) }),
  fc.record({ kind: fc.constant('padding' as const), offset: fc.constant(0n), size: fc.integer({ min: 0, max: 65535 / (pbs / 512) | 0 }).map((pb) => pb * (pbs / 512)) }),
);

function buildPack(lsid: bigint, pbs: number, recs: Array<{ kind: string; offset: bigint; size: number }>): LogpackHeader {
  const records: LogRecord[] = [];
  let total = 0, nPad = 0;
  for (const r of recs) {
    if (r.kind === 'padding' && nPad) continue;
    const pb = r.kind === 'discard' ? 0 : capacityPb(pbs, r.size);
    if (total >= 65535 || total + pb > 65535) continue;
    const flags = LOG_RECORD_EXIST | (r.kind === 'discard' ? LOG_RECORD_DISCARD : 0) | (r.kind === 'padding' ? LOG_RECORD_PADDING : 0);
    records.push({ checksum: r.kind === 'normal' ? 0x1234 : 0, flags, offset: r.offset, ioSize: r.size, lsidLocal: total + 1, reserved1: 0, lsid: lsid + BigInt(total + 1) });
    total += pb;
    if (r.kind === 'padding') nPad++;
  }
  return { checksum: 0, sectorType: 3, totalIoSize: total, logpackLsid: lsid, nRecords: records.length, nPadding: nPad, reserved1: 0, records };
}

test('property: logpack headers round-trip through encode/decode (pbs 512 and 4096)', () => {
  for (const pbs of [512, 4096]) {
    fc.assert(fc.property(
      fc.bigInt({ min: 0n, max: 1n << 62n }),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.array(recordArb(pbs), { minLength: 1, maxLength: maxRecordsInPack(pbs) }),
      (lsid, salt, recs) => {
        const h = buildPack(lsid, pbs, recs);
        const b = encodeLogpackHeader(h, pbs, salt);
        const d = decodeLogpackHeader(b, 0, pbs, salt, { expectedLsid: lsid });
        assert.equal(d, h);
        assert.is(nextLogpackLsid(d), lsid + 1n + BigInt(h.totalIoSize));
        return encodeLogpackHeader(d, pbs, salt).equals(b);
      },
    ), { numRuns: 300 });
  }
});

test('logpack: wrong salt, wrong lsid, bad lsid_local, too many records are typed errors', () => {
  const h = buildPack(100n, 512, [{ kind: 'normal', offset: 5n, size: 8 }, { kind: 'discard', offset: 9n, size: 3 }]);
  const b = encodeLogpackHeader(h, 512, 77);
  assert.throws(() => decodeLogpackHeader(b, 0, 512, 78), (e: unknown) => e instanceof ChecksumError);
  assert.throws(() => decodeLogpackHeader(b, 0, 512, 77, { expectedLsid: 101n }), (e: unknown) => e instanceof LsidSequenceError);
  const bad = encodeLogpackHeader({ ...h, records: [{ ...h.records[0], lsidLocal: 2, lsid: 102n }, h.records[1]] }, 512, 77);
  assert.throws(() => decodeLogpackHeader(bad, 0, 512, 77), (e: unknown) => e instanceof LsidSequenceError);
  const many = Buffer.from(b); many.writeUInt16LE(16, 16); many.writeUInt32LE(0, 0);
  many.writeUInt32LE((-(many.reduce((s, _x, i) => (i % 4 ? s : (s + many.readUInt32LE(i)) | 0), 77))) >>> 0, 0);
  assert.throws(() => decodeLogpackHeader(many, 0, 512, 77), (e: unknown) => e instanceof ValueOutOfRangeError);
  assert.throws(() => decodeLogpackHeader(b.subarray(0, 100), 0, 512, 77), (e: unknown) => (e as Error).name === 'TruncatedError');
});

test('end marker: lsid 2^64−1 with no records, checksum computed with the salt', () => {
  const b = encodeLogpackHeader(endMarkerHeader(), 512, 9);
  const d = decodeLogpackHeader(b, 0, 512, 9);
  assert.ok(isEndMarker(d));
  assert.is(b.readBigUInt64LE(8), INVALID_LSID);
  assert.is(nextLogpackLsid(d), INVALID_LSID);
});

test('decoders and encoders refuse a bad off or pbs argument with a ValueOutOfRangeError naming it', () => {
  const block = encodeLogpackHeader(emptyLogpackHeader(0n), 512, 7);
  const page = Buffer.alloc(8192);
  const refused = (field: string, fn: () => unknown, what: string) => {
    let err: unknown;
    try { fn(); } catch (e) { err = e; }
    assert.instance(err, ValueOutOfRangeError, `${what}: ${String(err)}`);
    assert.is((err as ValueOutOfRangeError).field, field, what);
    assert.ok((err as Error).message.startsWith(`${field}: `), (err as Error).message);
  };
  for (const pbs of [0, 4, 16, 20, 30, 56, 511, 513, 1000, 8192, -512, 1.5, NaN]) {
    refused('pbs', () => decodeLogpackHeader(Buffer.concat([block, page]), 0, pbs, 7), `logpack pbs ${pbs}`);
    refused('pbs', () => decodeSuperSector(page, 0, { pbs }), `super pbs ${pbs}`);
  }
  for (const off of [-8, -1, 1.5, NaN, Infinity, 2 ** 53]) {
    refused('off', () => decodeLogpackHeader(page, off, 512, 7), `logpack off ${off}`);
    refused('off', () => decodeSuperSector(page, off), `super off ${off}`);
    refused('off', () => decodeWlogHeader(page, off), `wlog header off ${off}`);
    refused('off', () => decodeLogRecord(page, off), `record off ${off}`);
    refused('off', () => superSectorPbs(page, off), `super pbs field off ${off}`);
  }
  // The encoders likewise: a raw RangeError, or a block of no size of the format, before.
  for (const pbs of [0, 20, 511, 8192, NaN]) refused('pbs', () => encodeLogpackHeader(emptyLogpackHeader(0n), pbs, 7), `encode pbs ${pbs}`);
  const rec: LogRecord = { checksum: 0, flags: LOG_RECORD_EXIST, offset: 0n, ioSize: 8, lsidLocal: 1, reserved1: 0, lsid: 1n };
  for (const off of [-8, 1.5, NaN, 500, 481]) refused('off', () => encodeLogRecord(rec, Buffer.alloc(512), off), `encode record off ${off}`);
  encodeLogRecord(rec, Buffer.alloc(512), 480);
  // Valid arguments decode as before; 1024 and 2048 are block sizes of the format too.
  assert.is(decodeLogpackHeader(block, 0, 512, 7).nRecords, 0);
  assert.is(decodeLogpackHeader(Buffer.concat([page, block]), 8192, 512, 7).nRecords, 0);
  for (const pbs of [1024, 2048]) assert.is(decodeLogpackHeader(Buffer.concat([block, page]), 0, pbs, 7, { verifyChecksum: false }).nRecords, 0);
  // A record past the end of its buffer is a truncation, not a RangeError.
  assert.throws(() => decodeLogRecord(Buffer.alloc(40), 10), (e: unknown) => e instanceof TruncatedError);
});

test('makeSuperSector refuses a log device without room for a ring of 3 PB, saying how many bytes it needs', () => {
  const make = (pbs: number, bytes: number) => makeSuperSector({ pbs, ldevLb: BigInt(bytes / 512), ddevLb: 1n }, (n) => new Uint8Array(n));
  for (const [pbs, tooSmall, enough] of [[512, [5120, 5632, 6144], 6656], [4096, [12288, 16384, 20480, 24064], 24576]] as const) {
    for (const bytes of tooSmall) {
      let err: unknown;
      try { make(pbs, bytes); } catch (e) { err = e; }
      assert.instance(err, ValueOutOfRangeError, `${pbs} ${bytes}`);
      assert.is((err as ValueOutOfRangeError).field, 'ring_buffer_size');
      assert.ok((err as Error).message.includes(`needs at least ${enough} bytes`), (err as Error).message);
    }
    assert.is(make(pbs, enough).ringBufferSize, MIN_RING_BUFFER_PB);
  }
});

test.run();
