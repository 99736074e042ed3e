import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  LogStatistics, ValueOutOfRangeError, WlogReader, WlogWriter, generateWlog, maxRecordsInPack,
} from '../src/index.ts';

async function roundTrip(opts: Parameters<typeof generateWlog>[0]) {
  const { header, packs } = generateWlog(opts);
  const out: Buffer[] = [];
  const w = await WlogWriter.create((b) => { out.push(Buffer.from(b)); }, header);
  for (const p of packs) await w.writePack(p.header, p.ios);
  await w.close();
  const bytes = Buffer.concat(out);
  const r = await WlogReader.open(bytes);
  const st = new LogStatistics(r.header.beginLsid, r.header.endLsid, r.pbs);
  const records = [];
  for await (const p of r) { st.update(p.header); records.push(...p.header.records); }
  return { bytes, stat: st.value, records, r };
}

test('same seed, same bytes; another seed, other bytes', async () => {
  const a = await roundTrip({ seed: 42, totalBytes: 512 << 10 });
  const b = await roundTrip({ seed: 42, totalBytes: 512 << 10 });
  const c = await roundTrip({ seed: 43, totalBytes: 512 << 10 });
  assert.ok(a.bytes.equals(b.bytes));
  assert.not.ok(a.bytes.equals(c.bytes));
});

test('the default mix has normal, discard, padding and all-zero IOs, all valid', async () => {
  const { stat, records, bytes } = await roundTrip({ seed: 1, totalBytes: 4 << 20 });
  assert.ok(stat.normalLb > 0n);
  assert.ok(stat.discardLb > 0n);
  assert.ok(records.some((r) => r.flags & 2), 'padding records');
  assert.ok(records.some((r) => (r.flags & 2) && r.ioSize === 0), 'zero-sized padding');
  // An all-zero IO has the checksum of zeros: -salt.
  const salt = bytes.readUInt32LE(12);
  assert.ok(records.some((r) => r.flags === 1 && r.checksum === ((-salt) >>> 0)), 'all-zero IOs');
});

test('knobs: pbs 4096, start lsid, no discard, no padding, no all-zero, IO size bounds', async () => {
  const { stat, records, r } = await roundTrip({
    seed: 2, pbs: 4096, beginLsid: 1n << 40n, discard: false, padding: false, allZero: false,
    minIoBytes: 4096, maxIoBytes: 8192, totalBytes: 1 << 20,
  });
  assert.is(r.pbs, 4096);
  assert.is(r.header.beginLsid, 1n << 40n);
  assert.is(stat.discardLb, 0n);
  assert.is(stat.paddingPb, 0n);
  for (const rec of records) { assert.ok(rec.ioSize >= 8 && rec.ioSize <= 16); assert.ok(rec.lsid > 1n << 40n); }
  const salt = r.header.logChecksumSalt;
  assert.not.ok(records.some((x) => x.checksum === ((-salt) >>> 0)));
});

test('big IOs respect the pack limits (records per block, 65535 PB, max pack size)', async () => {
  for (const pbs of [512, 4096]) {
    const { header, packs } = generateWlog({ seed: 3, pbs, minIoBytes: 1 << 20, maxIoBytes: 65535 * 512, totalBytes: 64 << 20, maxPackBytes: 4 << 20, deviceBytes: 1 << 30 });
    assert.is(header.physicalBs, pbs);
    for (const p of packs) {
      assert.ok(p.header.records.length <= maxRecordsInPack(pbs));
      assert.ok(p.header.totalIoSize <= 65535);
    }
  }
});

test('invalid knobs are typed errors', () => {
  assert.throws(() => generateWlog({ pbs: 1000 }), (e: unknown) => e instanceof ValueOutOfRangeError);
  assert.throws(() => generateWlog({ minIoBytes: 8192, maxIoBytes: 4096 }), (e: unknown) => e instanceof ValueOutOfRangeError);
  assert.throws(() => generateWlog({ maxIoBytes: 64 << 20 }), (e: unknown) => e instanceof ValueOutOfRangeError);
  assert.throws(() => generateWlog({ beginLsid: -1n }), (e: unknown) => e instanceof ValueOutOfRangeError && /beginLsid/.test(e.message));
});

test('a log that could pass the largest lsid is refused before any of it is made; one that fits near it verifies', async () => {
  const top = 0xffff_ffff_ffff_ffffn;
  assert.throws(() => generateWlog({ beginLsid: top - 1000n, totalBytes: 1 << 20 }), (e: unknown) => e instanceof ValueOutOfRangeError && /beginLsid/.test(e.message));
  // The bound counts a whole pack more than totalBytes (the last pack may pass it).
  const begin = top - 2n - BigInt(2048 + 32768);
  const g = generateWlog({ beginLsid: begin, totalBytes: 1 << 20, maxPackBytes: 16 << 20 });
  let end = begin;
  for (const p of g.packs) end = p.header.logpackLsid + 1n + BigInt(p.header.totalIoSize);
  assert.ok(end < top, `${end}`);
});

test.run();
