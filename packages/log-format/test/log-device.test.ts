import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, readFileSync, readdirSync, symlinkSync, writeSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  ChecksumError, LogDevice, SectorTypeError, TruncatedError, ValueOutOfRangeError, WalbFormatError, WlogReader,
  encodeSuperSector, makeSuperSector,
  FILE_LOG_PBS, catLdev, extractLogpacks, formatLdev, openPlace, restoreWlog, writeGeneratedWlog, probeDevice,
  LOG_RECORD_EXIST, LOG_RECORD_PADDING, WlogWriter, checksum, emptyLogpackHeader, encodeLogpackHeader, nextLogpackLsid, type LogRecord,
} from '../src/index.ts';
import { tempDir } from './helpers.ts';

function makeFile(path: string, bytes: number): void {
  writeFileSync(path, '');
  truncateSync(path, bytes);
}

async function packsOf(path: string) {
  const r = await WlogReader.open(path);
  const packs = [];
  for await (const p of r) packs.push(p);
  return { r, packs };
}

/** Normal-record data of a log, in order, keyed by address and size (lsid-independent). */
function normalIos(packs: Awaited<ReturnType<typeof packsOf>>['packs']) {
  const out: string[] = [];
  for (const p of packs) {
    let i = 0;
    for (const rec of p.header.records) {
      if (rec.flags & 4) continue;
      const io = p.ios[i++];
      if (rec.flags & LOG_RECORD_PADDING) continue;
      out.push(`${rec.offset}:${rec.ioSize}:${rec.checksum}:${io.subarray(0, rec.ioSize * 512).toString('base64').slice(0, 64)}`);
    }
  }
  return out;
}

const Format = suite('format-ldev');
Format('formats a file as wdevc format-ldev: super at byte 4096, ring after super 1, size from the ddev', async () => {
  const t = tempDir();
  try {
    const l = join(t.dir, 'ldev'); const d = join(t.dir, 'ddev');
    makeFile(l, 8 << 20); makeFile(d, 32 << 20);
    // A log in a file gets 4 KiB blocks by default (a page: no page shared by two log writes).
    const s0 = await formatLdev(l, d, { name: 'vol0' });
    assert.is(s0.physicalBs, FILE_LOG_PBS);
    assert.is(s0.ringBufferSize, 2048n - 3n);
    const s = await formatLdev(l, d, { name: 'vol0', pbs: 512 });
    assert.is(s.ringBufferSize, 16374n);
    assert.is(s.deviceSize, 65536n);
    const raw = readFileSync(l);
    assert.is(raw.readUInt16LE(4096), 1);
    assert.is(raw.subarray(0, 4096).every((b) => b === 0), true);
    const dev = await LogDevice.open(l);
    assert.is(dev.superSector.name, 'vol0');
    assert.is(dev.superSector.oldestLsid, 0n);
    assert.is(dev.pbOfLsid(16374n), 10n);
    await dev.close();
    const s2 = await formatLdev(l, d, { name: 'vol0', pbs: 512 });
    assert.not.equal(s2.uuid, s.uuid, 'a new random uuid each time');
    const s4 = await formatLdev(l, 1000n, { pbs: 4096 });
    assert.is(s4.ringBufferSize, 2048n - 3n);
    assert.is(s4.deviceSize, 1000n);
  } finally { t.cleanup(); }
});
Format('refuses a too-long name and a log device without room for a ring', async () => {
  const t = tempDir();
  try {
    const l = join(t.dir, 'ldev');
    makeFile(l, 4096 + 512);
    try { await formatLdev(l, 100n); assert.unreachable(); } catch (e) { assert.instance(e, ValueOutOfRangeError); }
    makeFile(l, 1 << 20);
    try { await formatLdev(l, 100n, { name: 'x'.repeat(32) }); assert.unreachable(); } catch (e) { assert.instance(e, ValueOutOfRangeError); }
  } finally { t.cleanup(); }
});
Format('a device of 512-byte blocks that ends before byte 8192 opens: the super sector is read as one PB, not a page', async () => {
  const t = tempDir();
  try {
    const l = join(t.dir, 'ldev'); const out = join(t.dir, 'out.wlog');
    for (const bytes of [6656, 7000, 8191]) {
      makeFile(l, bytes);
      const s = await formatLdev(l, 1n << 20n, { pbs: 512, salt: 5 });
      assert.is(s.ringBufferSize, BigInt(Math.floor(bytes / 512) - 10));
      const dev = await LogDevice.open(l);
      assert.equal(dev.superSector, s);
      await dev.close();
      const r = await catLdev(l, out);
      assert.equal([r.beginLsid, r.endLsid, r.stoppedBy], [0n, 0n, 'invalid-pack']);
    }
    // Rings of 1 and 2 PB, which formatLdev does not make but the format allows: readable too.
    for (const ring of [1n, 2n]) {
      const small = { ...makeSuperSector({ pbs: 512, ldevLb: 16n, ddevLb: 1n }, (n) => new Uint8Array(n)), ringBufferSize: ring };
      writeFileSync(l, Buffer.concat([Buffer.alloc(4096), encodeSuperSector(small), Buffer.alloc(512 + Number(ring) * 512)]));
      const dev = await LogDevice.open(l);
      assert.is(dev.superSector.ringBufferSize, ring);
      await dev.close();
    }
    // A super sector of 4096-byte blocks cut short says so, where and for which input.
    makeFile(l, 1 << 20);
    await formatLdev(l, 1n << 20n, { pbs: 4096 });
    truncateSync(l, 4096 + 2048);
    try { await LogDevice.open(l); assert.unreachable(); } catch (e) {
      assert.instance(e, TruncatedError);
      assert.is((e as TruncatedError).offset, 4096);
      assert.is((e as TruncatedError).source, l);
      assert.match((e as Error).message, /^super sector of 4096-byte blocks: needed 4096 bytes, device ended after 2048/);
    }
  } finally { t.cleanup(); }
});
Format('refuses a log device too small for a ring of 3 PB, naming it and the size it needs', async () => {
  const t = tempDir();
  try {
    const l = join(t.dir, 'ldev');
    for (const [pbs, bytes, need] of [[512, 6144, 6656], [512, 5632, 6656], [512, 5120, 6656], [4096, 20480, 24576], [4096, 16384, 24576]]) {
      makeFile(l, bytes);
      let err: unknown;
      try { await formatLdev(l, 1n << 20n, { pbs }); } catch (e) { err = e; }
      assert.instance(err, ValueOutOfRangeError, `${pbs} ${bytes}`);
      assert.is((err as ValueOutOfRangeError).source, l);
      assert.ok((err as Error).message.includes(`needs at least ${need} bytes`), (err as Error).message);
      assert.ok(readFileSync(l).equals(Buffer.alloc(bytes)), 'the device was written');
    }
  } finally { t.cleanup(); }
});
Format('catLdev: an empty range names the device, and says when the begin was raised to the oldest lsid', async () => {
  const t = tempDir();
  try {
    const l = join(t.dir, 'ldev'); const out = join(t.dir, 'out.wlog');
    makeFile(l, 1 << 20);
    await formatLdev(l, 1n << 20n, { pbs: 512 });
    const dev = await LogDevice.open(l, { writable: true });
    await dev.writeSuper({ ...dev.superSector, oldestLsid: 20n, writtenLsid: 20n });
    await dev.close();
    for (const [opts, re] of [
      [{ beginLsid: 5n, endLsid: 5n, force: true }, /^lsid: begin lsid 5 must be below end lsid 5 \(at /],
      [{ beginLsid: 5n, endLsid: 10n }, /^lsid: begin lsid 20 \(raised to the device's oldest lsid from 5, as force is not set\) must be below end lsid 10 \(at /],
    ] as const) {
      let err: unknown;
      try { await catLdev(l, out, opts); } catch (e) { err = e; }
      assert.instance(err, ValueOutOfRangeError);
      assert.is((err as ValueOutOfRangeError).source, l);
      assert.match((err as Error).message, re);
    }
  } finally { t.cleanup(); }
});
Format('a corrupted super sector is a typed error at open', async () => {
  const t = tempDir();
  try {
    const l = join(t.dir, 'ldev');
    makeFile(l, 1 << 20);
    await formatLdev(l, 100n);
    const fd = openSync(l, 'r+'); writeSync(fd, Buffer.from([0xff]), 0, 1, 4096 + 300); closeSync(fd);
    try { await LogDevice.open(l); assert.unreachable(); } catch (e) {
      assert.instance(e, ChecksumError);
      assert.is((e as WalbFormatError).offset, 4096);
    }
    makeFile(l, 1 << 20);
    try { await LogDevice.open(l); assert.unreachable(); } catch (e) { assert.instance(e, SectorTypeError); }
  } finally { t.cleanup(); }
});
Format('refuses the data device itself as the log device (a path or a link to it), writing nothing', async () => {
  const t = tempDir();
  try {
    const d = join(t.dir, 'disk.img');
    makeFile(d, 32 << 20);
    const link = join(t.dir, 'link.img');
    symlinkSync(d, link);
    for (const l of [d, link]) {
      let err: unknown;
      try { await formatLdev(l, d); } catch (e) { err = e; }
      assert.instance(err, ValueOutOfRangeError);
      assert.match((err as Error).message, /same file/);
    }
    assert.ok(readFileSync(d).equals(Buffer.alloc(32 << 20)), 'the data device was written');
  } finally { t.cleanup(); }
});

Format.run();

const Ring = suite('ring buffer');
Ring('restore a log across the ring end, then extract it: same IOs, a padding pack at the end, lsids shifted', async () => {
  const t = tempDir();
  try {
    for (const pbs of [512, 4096]) {
      const l = join(t.dir, `ldev${pbs}`); const w = join(t.dir, `src${pbs}.wlog`); const out = join(t.dir, `out${pbs}.wlog`);
      makeFile(l, 8 << 20);
      const s = await formatLdev(l, 1n << 20n, { pbs });
      await writeGeneratedWlog(w, { seed: pbs, pbs, totalBytes: 3 << 20, maxIoBytes: 64 << 10, deviceBytes: 256 << 20 });
      const start = s.ringBufferSize - 100n;
      const res = await restoreWlog(l, w, { lsidDiff: start, verify: true });
      assert.is(res.beginLsid, start);
      assert.is(res.paddingPacks, 1);
      const cat = await catLdev(l, out);
      assert.is(cat.beginLsid, start);
      assert.is(cat.endLsid, res.endLsid);
      const src = await packsOf(w); const got = await packsOf(out);
      assert.is(got.packs.length, src.packs.length + 1);
      assert.equal(normalIos(got.packs), normalIos(src.packs));
      const pad = got.packs.find((p) => p.header.records.length === 1 && (p.header.records[0].flags & LOG_RECORD_PADDING));
      assert.ok(pad, 'padding pack present');
      assert.is((pad!.header.logpackLsid + 1n + BigInt(pad!.header.totalIoSize)) % s.ringBufferSize, 0n, 'padding ends at the ring end');
    }
  } finally { t.cleanup(); }
});
Ring('oldest lsid is honoured unless forced; -e stops early; a bad IO shrinks its pack and ends the log', async () => {
  const t = tempDir();
  try {
    const l = join(t.dir, 'ldev'); const w = join(t.dir, 'src.wlog');
    makeFile(l, 8 << 20);
    await formatLdev(l, 1n << 20n, { pbs: 512 });
    await writeGeneratedWlog(w, { seed: 5, totalBytes: 1 << 20, discard: false, padding: false, allZero: false });
    await restoreWlog(l, w);
    const src = await packsOf(w);
    const dev = await LogDevice.open(l, { writable: true });
    const third = src.packs[3].header.logpackLsid;
    await dev.writeSuper({ ...dev.superSector, oldestLsid: third, writtenLsid: third });
    const fromOldest = [];
    for await (const p of extractLogpacks(dev)) fromOldest.push(p);
    assert.is(fromOldest[0].header.logpackLsid, third);
    const forced = [];
    for await (const p of extractLogpacks(dev, { force: true })) forced.push(p);
    assert.is(forced.length, src.packs.length);
    const limited = [];
    const it = extractLogpacks(dev, { force: true, endLsid: src.packs[2].header.logpackLsid });
    let r;
    while (!(r = await it.next()).done) limited.push(r.value);
    assert.is(limited.length, 2);
    assert.is(r.value.stoppedBy, 'end-lsid');
    // Corrupt the data of the second record of pack 5.
    const p5 = src.packs[5].header;
    assert.ok(p5.records.length >= 2);
    const rec = p5.records[1];
    const buf = await dev.readLsids(rec.lsid, 1);
    buf[0] ^= 1;
    await dev.writeLsids(rec.lsid, buf);
    const shr = [];
    const it2 = extractLogpacks(dev, { force: true });
    while (!(r = await it2.next()).done) shr.push(r.value);
    assert.is(r.value.stoppedBy, 'shrunk-pack');
    assert.is(shr.length, 6);
    assert.is(shr[5].header.records.length, 1);
    assert.is(r.value.endLsid, p5.logpackLsid + 1n + BigInt(shr[5].header.totalIoSize));
    const noShrink = [];
    for await (const p of extractLogpacks(dev, { force: true, noShrink: true })) noShrink.push(p);
    assert.is(noShrink.length, src.packs.length);
    await dev.close();
  } finally { t.cleanup(); }
});
Ring('a corrupt wlog restores nothing: the log device is unchanged', async () => {
  const t = tempDir();
  try {
    const l = join(t.dir, 'ldev'); const w = join(t.dir, 'src.wlog');
    makeFile(l, 2 << 20);
    await formatLdev(l, 1n << 20n);
    await writeGeneratedWlog(w, { seed: 9, totalBytes: 512 << 10 });
    const b = readFileSync(w); b[b.length - 1024] ^= 0xff; writeFileSync(w, b);
    const before = readFileSync(l);
    try { await restoreWlog(l, w); assert.unreachable(); } catch (e) { assert.instance(e, WalbFormatError); }
    assert.ok(readFileSync(l).equals(before));
  } finally { t.cleanup(); }
});
Ring('a restore that does not fit, or leaves the lsids, is refused before anything is written; a ring just one block larger takes it', async () => {
  const t = tempDir();
  try {
    const w = join(t.dir, 'src.wlog');
    await writeGeneratedWlog(w, { seed: 21, pbs: 512, totalBytes: 64 << 10, padding: false });
    const { r, packs } = await packsOf(w);
    const pb = Number(r.endLsid - r.header.beginLsid);
    assert.ok(packs.length > 1);
    // The ring starts 10 blocks in at 512 bytes a block (super sectors and the gap before them).
    const ldevOf = async (name: string, ring: number) => {
      const l = join(t.dir, name);
      makeFile(l, (10 + ring) * 512);
      await formatLdev(l, 1n << 20n, { pbs: 512 });
      assert.is((await LogDevice.open(l).then(async (d) => { const n = d.superSector.ringBufferSize; await d.close(); return n; })), BigInt(ring));
      return l;
    };
    const refused = async (l: string, opts: Parameters<typeof restoreWlog>[2], re: RegExp) => {
      const before = readFileSync(l);
      try { await restoreWlog(l, w, opts); assert.unreachable('restored'); } catch (e) {
        assert.instance(e, ValueOutOfRangeError);
        assert.match((e as Error).message, re);
      }
      assert.ok(readFileSync(l).equals(before), 'the log device changed');
    };
    // The logs fill the ring exactly: the block that ends them would overwrite the first pack.
    await refused(await ldevOf('exact', pb), {}, /do not fit a ring/);
    // Shifted so that a pack crosses the ring end: its padding pack makes the log too large.
    await refused(await ldevOf('padded', pb + 3), { lsidDiff: BigInt(pb) - 2n }, /padding included/);
    // Past the last valid lsid, and an invalid lsid to invalidate.
    await refused(await ldevOf('high', 4 * pb), { lsidDiff: 0xffff_ffff_ffff_ff00n }, /outside 0 to/);
    await refused(await ldevOf('invalid', 4 * pb), { invalidLsid: 0xffff_ffff_ffff_ffffn }, /not a valid lsid/);
    const l = await ldevOf('fits', pb + 1);
    await restoreWlog(l, w);
    const d = await LogDevice.open(l);
    let n = 0;
    for await (const _p of extractLogpacks(d)) n++;
    await d.close();
    assert.is(n, packs.length);
  } finally { t.cleanup(); }
});

Ring('a ring larger than its device, an empty logpack, a pack larger than the ring: typed errors, no hang, nothing large read', async () => {
  const t = tempDir();
  try {
    const l = join(t.dir, 'ldev');
    makeFile(l, 1 << 20);
    await formatLdev(l, 1n << 20n, { pbs: 4096 });
    const dev = await LogDevice.open(l, { writable: true });
    const salt = dev.superSector.logChecksumSalt;
    // An empty pack (a flush alone) at the oldest lsid: the next lsid is its own.
    await dev.writeLsids(0n, encodeLogpackHeader(emptyLogpackHeader(0n), 4096, salt));
    const seen = [];
    const it = extractLogpacks(dev);
    let end;
    for (;;) { const x = await it.next(); if (x.done) { end = x.value; break; } seen.push(x.value); }
    assert.is(seen.length, 0);
    assert.is(end.stoppedBy, 'invalid-pack');
    assert.match(String(end.invalid), /empty logpack at lsid 0/);
    // A pack whose data would span more than the ring (255 blocks here).
    const big = emptyLogpackHeader(0n);
    // Eight records of 8125 blocks (65000 LB each, under the 65535 a record may hold).
    for (let i = 0; i < 8; i++) big.records.push({ checksum: 0, flags: LOG_RECORD_EXIST, offset: BigInt(i) * 65000n, ioSize: 65000, lsidLocal: 1 + i * 8125, reserved1: 0, lsid: BigInt(1 + i * 8125) });
    big.totalIoSize = 65000; big.nRecords = 8;
    await dev.writeLsids(0n, encodeLogpackHeader(big, 4096, salt));
    const it2 = extractLogpacks(dev);
    let end2;
    for (;;) { const x = await it2.next(); if (x.done) { end2 = x.value; break; } }
    assert.is(end2.stoppedBy, 'invalid-pack');
    assert.match(String(end2.invalid), /total_io_size: 65000 PB/, String(end2.invalid));
    // A super sector whose ring does not fit the device.
    await dev.writeSuper({ ...dev.superSector, ringBufferSize: 100_000_000n });
    await dev.close();
    try { await LogDevice.open(l); assert.unreachable(); } catch (e) {
      assert.instance(e, ValueOutOfRangeError);
      assert.match((e as Error).message, /past the device's 1048576 bytes/);
    }
  } finally { t.cleanup(); }
});

Ring('restore from -b: the log on the device begins at the first pack restored; nothing in range changes nothing', async () => {
  const t = tempDir();
  try {
    const l = join(t.dir, 'ldev'); const w = join(t.dir, 'src.wlog'); const out = join(t.dir, 'out.wlog');
    makeFile(l, 8 << 20);
    await formatLdev(l, 1n << 20n, { pbs: 512 });
    await writeGeneratedWlog(w, { seed: 11, totalBytes: 1 << 20, beginLsid: 14000n });
    const src = await packsOf(w);
    const fourth = src.packs[4].header.logpackLsid;
    // A -b inside pack 3 restores from pack 4, the first that starts at or above it.
    for (const [diff, stream] of [[0n, false], [1000n, true]] as const) {
      const res = await restoreWlog(l, stream ? readFileSync(w).subarray(0) : w, { beginLsid: fourth - 1n, lsidDiff: diff });
      assert.is(res.beginLsid, fourth + diff);
      const cat = await catLdev(l, out);
      assert.is(cat.beginLsid, fourth + diff);
      assert.is(cat.endLsid, res.endLsid);
      const got = await packsOf(out);
      assert.is(got.packs.length, src.packs.length - 4 + res.paddingPacks);
      assert.equal(normalIos(got.packs), normalIos(src.packs.slice(4)));
    }
    const before = readFileSync(l);
    for (const opts of [{ beginLsid: src.r.header.endLsid }, { beginLsid: fourth, endLsid: fourth }, { beginLsid: fourth + 1n, endLsid: fourth }, { endLsid: src.r.header.beginLsid }]) {
      for (const source of [w, readFileSync(w)]) {
        try { await restoreWlog(l, source, opts); assert.unreachable('restored'); } catch (e) {
          assert.instance(e, ValueOutOfRangeError);
          assert.match((e as Error).message, /beginLsid/);
        }
        assert.ok(readFileSync(l).equals(before), `${JSON.stringify(opts, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}: the log device changed`);
      }
    }
  } finally { t.cleanup(); }
});
Ring.run();

/** The files left in `dir`. */
const leftIn = (dir: string) => readdirSync(dir);

const Stream = suite('restore from a stream');
Stream('a corrupt wlog from a stream leaves the log device unchanged, and its copy is removed', async () => {
  const t = tempDir();
  try {
    const l = join(t.dir, 'ldev'); const w = join(t.dir, 'src.wlog'); const spool = join(t.dir, 'spool');
    mkdirSync(spool);
    makeFile(l, 4 << 20);
    await formatLdev(l, 1n << 20n, { pbs: 512 });
    await writeGeneratedWlog(w, { seed: 9, pbs: 512, totalBytes: 1 << 20 });
    const b = readFileSync(w);
    // The data of one of the last packs: every pack before it is valid.
    b[b.length - 2048] ^= 0xff;
    const before = readFileSync(l);
    const sources = [
      () => Readable.from([b.subarray(0, 5000), b.subarray(5000)]),
      async function* chunks() { for (let o = 0; o < b.length; o += 65536) yield b.subarray(o, o + 65536); },
      // Cut inside a pack instead.
      () => Readable.from([readFileSync(w).subarray(0, b.length - 3000)]),
    ];
    for (const src of sources) {
      try { await restoreWlog(l, src(), { tmpDir: spool }); assert.unreachable('restored'); } catch (e) {
        assert.instance(e, WalbFormatError);
        assert.ok(!(e as Error).message.includes(spool), `the error names the temporary copy: ${(e as Error).message}`);
      }
      assert.ok(readFileSync(l).equals(before), 'the log device changed');
      assert.equal(leftIn(spool), [], 'the temporary copy is left behind');
    }
  } finally { t.cleanup(); }
});
Stream('a valid stream restores exactly as its file does; one that does not fit is refused with nothing written', async () => {
  const t = tempDir();
  try {
    const spool = join(t.dir, 'spool');
    mkdirSync(spool);
    const w = join(t.dir, 'src.wlog');
    await writeGeneratedWlog(w, { seed: 31, pbs: 512, totalBytes: 512 << 10 });
    const { r } = await packsOf(w);
    const pb = r.endLsid - r.header.beginLsid;
    const a = join(t.dir, 'a'); const b = join(t.dir, 'b');
    makeFile(a, 4 << 20);
    const s = await formatLdev(a, 1n << 20n, { pbs: 512 });
    writeFileSync(b, readFileSync(a));
    const opts = { lsidDiff: s.ringBufferSize - pb / 2n, verify: true };
    const fromFile = await restoreWlog(a, w, opts);
    const fromStream = await restoreWlog(b, Readable.from([readFileSync(w)]), { ...opts, tmpDir: spool });
    assert.equal(fromStream, fromFile);
    assert.is(fromStream.paddingPacks, 1);
    assert.ok(readFileSync(a).equals(readFileSync(b)), 'the two restores differ');
    assert.equal(leftIn(spool), []);
    // A ring smaller than the log: the stream is read whole before anything is written.
    const small = join(t.dir, 'small');
    makeFile(small, 10 * 512 + Number(pb / 2n) * 512);
    await formatLdev(small, 1n << 20n, { pbs: 512 });
    const before = readFileSync(small);
    try { await restoreWlog(small, Readable.from([readFileSync(w)]), { tmpDir: spool }); assert.unreachable('restored'); } catch (e) {
      assert.instance(e, ValueOutOfRangeError);
      assert.match((e as Error).message, /do not fit a ring/);
    }
    assert.ok(readFileSync(small).equals(before), 'the log device changed');
    assert.equal(leftIn(spool), []);
  } finally { t.cleanup(); }
});
Stream.run();

/** The normal IOs of `packs` that lie within `ddevLb`, as {@link normalIos} prints them. */
function normalIosWithin(packs: Awaited<ReturnType<typeof packsOf>>['packs'], ddevLb: bigint) {
  return normalIos(packs.map((p) => {
    const ios: Buffer[] = [];
    const records = [];
    let i = 0;
    for (const rec of p.header.records) {
      if (rec.flags & 4) continue;
      const io = p.ios[i++];
      if (rec.flags & LOG_RECORD_PADDING || rec.offset + BigInt(rec.ioSize) > ddevLb) continue;
      records.push(rec); ios.push(io);
    }
    return { ...p, header: { ...p.header, records }, ios };
  }));
}

/** Every pack of a log device from its oldest lsid, and why the extraction stopped. */
async function extractAll(l: string) {
  const dev = await LogDevice.open(l);
  try {
    const packs = [];
    const it = extractLogpacks(dev);
    for (;;) {
      const x = await it.next();
      if (x.done) return { packs, end: x.value };
      packs.push(x.value);
    }
  } finally { await dev.close(); }
}

const Clip = suite('restore clipped to a data device');
Clip('IOs beyond the device leave one padding record per pack: every pack reads back, the IOs within are intact', async () => {
  const t = tempDir();
  try {
    for (const pbs of [512, 4096]) {
      const l = join(t.dir, `ldev${pbs}`); const w = join(t.dir, `src${pbs}.wlog`);
      makeFile(l, 16 << 20);
      const s = await formatLdev(l, 1n << 20n, { pbs });
      await writeGeneratedWlog(w, { seed: 40 + pbs, pbs, totalBytes: 4 << 20, maxIoBytes: 16 << 10, deviceBytes: 8 << 20 });
      const src = await packsOf(w);
      const ddevLb = BigInt((4 << 20) / 512);
      const beyond = (p: (typeof src.packs)[number]) => p.header.records.filter((r) => !(r.flags & (LOG_RECORD_PADDING | 4)) && r.offset + BigInt(r.ioSize) > ddevLb).length;
      assert.ok(src.packs.filter((p) => beyond(p) >= 2).length > 5, 'too few packs with several IOs beyond the device to test');
      const start = s.ringBufferSize - 300n;
      const res = await restoreWlog(l, w, { ddevLb, lsidDiff: start, verify: true });
      assert.is(res.beginLsid, start);
      const got = await extractAll(l);
      assert.is(got.end.endLsid, res.endLsid, `extraction stopped at ${got.end.endLsid} (${got.end.invalid?.message}), the log ends at ${res.endLsid}`);
      assert.is(got.packs.length, src.packs.length + res.paddingPacks);
      for (const p of got.packs) {
        assert.ok(p.header.nPadding <= 1);
        for (const r of p.header.records) if (!(r.flags & LOG_RECORD_PADDING)) assert.ok(r.offset + BigInt(r.ioSize) <= ddevLb, 'an IO beyond the device');
      }
      assert.equal(normalIos(got.packs), normalIosWithin(src.packs, ddevLb));
      const discards = (ps: typeof got.packs) => ps.flatMap((p) => p.header.records.filter((r) => r.flags & 4 && r.offset + BigInt(r.ioSize) <= ddevLb).map((r) => `${r.offset}:${r.ioSize}`));
      assert.equal(discards(got.packs), discards(src.packs));
      // Every pack keeps its place, as the original's clipping does: the log ends where the source
      // does, shifted (by the padding pack at the ring end too).
      assert.is(res.endLsid, src.r.endLsid + res.lsidDiff);
    }
  } finally { t.cleanup(); }
});
/** One IO of a pack written by {@link writeWlogOf}: address and size in LB, a data byte, or a discard. */
type IoSpec = { offset: bigint; lb: number; fill?: number; discard?: true };

/**
 * Write a wlog of `pbs` from `begin`, pack by pack, each given as its IOs: lsids, sizes and
 * checksums follow. Returns the data written for each IO with data, pack by pack.
 */
async function writeWlogOf(path: string, pbs: number, begin: bigint, packs: IoSpec[][]): Promise<Buffer[][]> {
  const salt = 0x1234_5678;
  const w = await WlogWriter.create(path, { pbs, salt, uuid: new Uint8Array(16).fill(7), beginLsid: begin });
  const out: Buffer[][] = [];
  let lsid = begin;
  for (const ios of packs) {
    const h = emptyLogpackHeader(lsid);
    const data: Buffer[] = [];
    for (const io of ios) {
      const lsidLocal = h.totalIoSize + 1;
      const r: LogRecord = { checksum: 0, flags: LOG_RECORD_EXIST | (io.discard ? 4 : 0), offset: io.offset, ioSize: io.lb, lsidLocal, reserved1: 0, lsid: lsid + BigInt(lsidLocal) };
      if (!io.discard) {
        const b = Buffer.alloc(Math.ceil(io.lb * 512 / pbs) * pbs, io.fill ?? 0);
        r.checksum = checksum(b.subarray(0, io.lb * 512), salt);
        data.push(b);
        h.totalIoSize += b.length / pbs;
      }
      h.records.push(r);
    }
    h.nRecords = h.records.length;
    await w.writePack(h, data);
    out.push(data);
    lsid = nextLogpackLsid(h);
  }
  await w.close();
  return out;
}

Clip('more beyond the device than one padding record holds: the pack is shortened and the next packs follow it', async () => {
  const t = tempDir();
  try {
    const pbs = 4096;
    const w = join(t.dir, 'big.wlog'); const l = join(t.dir, 'ldev');
    const ddevLb = 1n << 16n;
    const [ios1, , ios3] = await writeWlogOf(w, pbs, 100n, [
      // An IO within, the largest IO beyond (8192 PB), a discard beyond, one more IO beyond (2 PB,
      // across the device end), an IO within.
      [{ offset: 0n, lb: 8, fill: 1 }, { offset: ddevLb, lb: 65535, fill: 2 }, { offset: ddevLb * 2n, lb: 100, discard: true },
        { offset: ddevLb - 8n, lb: 16, fill: 3 }, { offset: 64n, lb: 24, fill: 4 }],
      // A discard beyond, alone.
      [{ offset: ddevLb, lb: 8, discard: true }],
      // An IO within.
      [{ offset: 8n, lb: 8, fill: 5 }],
    ]);
    const l2 = 100n + 1n + 1n + 8192n + 2n + 3n;
    makeFile(l, 64 << 20);
    await formatLdev(l, ddevLb, { pbs });
    const res = await restoreWlog(l, w, { ddevLb, verify: true });
    const got = await extractAll(l);
    assert.is(got.end.endLsid, res.endLsid, String(got.end.invalid));
    assert.is(got.packs.length, 3);
    const [g1, g2, g3] = got.packs;
    // Pack 1 keeps its two IOs within, then one padding record as large as a record may be (8192 PB).
    assert.equal(g1.header.records.map((r) => [r.offset, r.ioSize, r.lsidLocal, r.flags]), [[0n, 8, 1, LOG_RECORD_EXIST], [64n, 24, 2, LOG_RECORD_EXIST], [0n, 65535, 5, LOG_RECORD_EXIST | LOG_RECORD_PADDING]]);
    assert.is(g1.header.totalIoSize, 1 + 3 + 8192);
    assert.ok(g1.ios[0].equals(ios1[0]) && g1.ios[1].equals(ios1[3]));
    // Pack 2, a discard beyond the device alone, stays as an empty padding pack.
    assert.is(g2.header.logpackLsid, 100n + 1n + BigInt(g1.header.totalIoSize));
    assert.equal(g2.header.records.map((r) => [r.ioSize, r.flags]), [[0, LOG_RECORD_EXIST | LOG_RECORD_PADDING]]);
    assert.ok(g3.ios[0].equals(ios3[0]));
    // Two blocks of pack 1 did not fit its padding record: what follows moved down by two.
    assert.is(res.lsidDiff, -2n);
    assert.is(res.endLsid, l2 + 3n - 2n);
  } finally { t.cleanup(); }
});
Clip('more room left at the ring end than one padding record holds: as many padding packs as it takes', async () => {
  const t = tempDir();
  try {
    const pbs = 4096;
    const w = join(t.dir, 'big.wlog'); const l = join(t.dir, 'ldev');
    const [ios] = await writeWlogOf(w, pbs, 0n, [[{ offset: 0n, lb: 65535, fill: 1 }, { offset: 1n << 16n, lb: 16, fill: 2 }]]);
    makeFile(l, 72 << 20);
    const s = await formatLdev(l, 1n << 20n, { pbs });
    // The pack (8195 PB with its header) starts 8194 PB before the ring end: one padding pack
    // would need a record of 8193 PB, over 65535 LB.
    const res = await restoreWlog(l, w, { lsidDiff: s.ringBufferSize - 8194n, verify: true });
    assert.is(res.paddingPacks, 2);
    assert.is(res.lsidDiff, s.ringBufferSize);
    const got = await extractAll(l);
    assert.is(got.end.endLsid, res.endLsid, String(got.end.invalid));
    assert.equal(got.packs.map((p) => [p.header.records.length, p.header.totalIoSize, p.header.records[0].ioSize]), [[1, 8192, 65535], [1, 0, 0], [2, 8194, 65535]]);
    assert.ok(got.packs[2].ios[0].equals(ios[0]) && got.packs[2].ios[1].equals(ios[1]));
  } finally { t.cleanup(); }
});
Clip.run();

function haveLoop(): boolean {
  try { return process.getuid?.() === 0 && execFileSync('losetup', ['--version']).length > 0; } catch { return false; }
}

const Block = suite('real block device');
Block('format, restore and extract through a loop device', async () => {
  if (!haveLoop()) { console.log('  (losetup unavailable: skipped the loop-device check)'); return; }
  const t = tempDir();
  let loop = '';
  try {
    const img = join(t.dir, 'ldev.img'); const d = join(t.dir, 'ddev.img'); const w = join(t.dir, 'src.wlog'); const out = join(t.dir, 'out.wlog');
    makeFile(img, 8 << 20); makeFile(d, 16 << 20);
    loop = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
    const info = await probeDevice(loop);
    assert.ok(info.isBlockDevice);
    assert.is(info.sizeBytes, BigInt(8 << 20));
    const s = await formatLdev(loop, d, { name: 'loopdev' });
    assert.is(s.deviceSize, BigInt((16 << 20) / 512));
    await writeGeneratedWlog(w, { seed: 21, totalBytes: 2 << 20, deviceBytes: 16 << 20 });
    await restoreWlog(loop, w, { lsidDiff: s.ringBufferSize - 50n });
    await catLdev(loop, out);
    assert.equal(normalIos((await packsOf(out)).packs), normalIos((await packsOf(w)).packs));
  } finally {
    if (loop) execFileSync('losetup', ['-d', loop]);
    t.cleanup();
  }
});
Block('a block device in use (mounted, or claimed as here) is never written: format, restore and the outputs refuse it', async () => {
  if (!haveLoop()) { console.log('  (losetup unavailable: skipped the loop-device check)'); return; }
  const t = tempDir();
  let loop = '';
  try {
    const img = join(t.dir, 'held.img'); const d = join(t.dir, 'held-d.img'); const w = join(t.dir, 'held.wlog');
    makeFile(img, 8 << 20); makeFile(d, 16 << 20);
    loop = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
    await formatLdev(loop, d);
    await writeGeneratedWlog(w, { seed: 5, totalBytes: 1 << 20, deviceBytes: 16 << 20 });
    const before = readFileSync(img);
    // Another holder, as a mounted file system is (it formatted and restored into mounted ext4).
    const held = openSync(loop, constants.O_RDONLY | constants.O_EXCL);
    try {
      const codes: Array<string | undefined> = [];
      for (const f of [() => formatLdev(loop, d), () => restoreWlog(loop, w), () => LogDevice.open(loop, { writable: true }), () => openPlace({ path: loop, writePath: loop, finalPath: undefined, mode: 0o644 })]) {
        codes.push(await f().then(() => undefined, (e: NodeJS.ErrnoException) => `${e.code}: ${e.message.includes(loop)}`));
      }
      assert.equal(codes, ['EBUSY: true', 'EBUSY: true', 'EBUSY: true', 'EBUSY: true']);
      // Reading it is fine.
      await (await LogDevice.open(loop)).close();
    } finally {
      closeSync(held);
    }
    execFileSync('sync');
    assert.ok(readFileSync(img).equals(before), 'the device in use was written');
    await restoreWlog(loop, w);
  } finally {
    if (loop) execFileSync('losetup', ['-d', loop]);
    t.cleanup();
  }
});
Block.run();
