import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Readable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ChecksumError, LsidSequenceError, TruncatedError, WalbFormatError, WlogReader, WlogWriter,
  generateWlog, readWlog, writeGeneratedWlog, WALBLOG_HEADER_SIZE,
} from '../src/index.ts';
import { REPO, tempDir, vec } from './helpers.ts';

const collect = async (src: Parameters<typeof WlogReader.open>[0], opts = {}) => {
  const r = await WlogReader.open(src, opts);
  const packs = [];
  for await (const p of r) packs.push(p);
  return { r, packs };
};

const Sources = suite('sources');
Sources('a path, a Buffer, a Node stream of odd-sized chunks and an async iterable give the same packs', async () => {
  const f = vec('w-pbs4096-rand.wlog');
  const bytes = readFileSync(f);
  const a = await collect(f);
  const b = await collect(bytes);
  const chunks: Buffer[] = [];
  for (let o = 0; o < bytes.length; o += 1237) chunks.push(bytes.subarray(o, o + 1237));
  const c = await collect(Readable.from(chunks));
  async function* gen() { for (const ch of chunks) yield ch; }
  const d = await collect(gen());
  for (const x of [b, c, d]) {
    assert.is(x.packs.length, a.packs.length);
    assert.equal(x.packs.map((p) => p.header), a.packs.map((p) => p.header));
    assert.ok(Buffer.concat(x.packs.flatMap((p) => p.ios)).equals(Buffer.concat(a.packs.flatMap((p) => p.ios))));
    assert.is(x.r.endLsid, a.r.endLsid);
  }
});
Sources('readWlog iterates packs', async () => {
  let n = 0;
  for await (const p of readWlog(vec('w-chain-0.wlog'))) { n++; assert.ok(p.offset >= WALBLOG_HEADER_SIZE); }
  assert.ok(n > 0);
});
Sources('a directory given as a wlog fails at open, naming it', async () => {
  const t = tempDir();
  try {
    let err: NodeJS.ErrnoException | undefined;
    try { for await (const _ of readWlog(t.dir)) { /* never */ } } catch (e) { err = e as NodeJS.ErrnoException; }
    assert.is(err?.code, 'EISDIR');
    assert.is(err?.path, t.dir);
    assert.ok(err?.message.includes(t.dir), err?.message);
  } finally { t.cleanup(); }
});
Sources('a directory as stdin ("-" or process.stdin) is EISDIR naming <stdin>, not an empty input', async () => {
  const index = join(REPO, 'packages/log-format/src/index.ts');
  // Each way in reads the same stdin: the reader of a path "-", of the stream, and the raw chunk reader.
  const script = `
    const { WlogReader, ChunkReader } = await import(${JSON.stringify(index)});
    const out = [];
    for (const open of [() => WlogReader.open('-'), () => WlogReader.open(process.stdin), () => new ChunkReader('-').read(1)]) {
      try { await open(); out.push('opened'); } catch (e) { out.push({ code: e.code, path: e.path, message: e.message }); }
    }
    console.log(JSON.stringify(out));`;
  const t = tempDir();
  const fd = openSync(t.dir, 'r');
  try {
    const r = spawnSync(process.execPath, ['--conditions=walb-source', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO, stdio: [fd, 'pipe', 'pipe'], encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as Array<{ code: string; path: string; message: string }>;
    assert.is(got.length, 3);
    for (const e of got) {
      assert.is(e.code, 'EISDIR', JSON.stringify(e));
      assert.is(e.path, '<stdin>');
      assert.ok(e.message.includes('<stdin>'), e.message);
    }
  } finally { closeSync(fd); t.cleanup(); }
});
Sources('chained: wlogs back to back in one input, each read by the reader following() gives, at its offset', async () => {
  const a = readFileSync(vec('w-pbs4096-rand.wlog')), b = readFileSync(vec('w-pbs512-mixed.wlog'));
  const chunks: Buffer[] = [];
  const both = Buffer.concat([a, b, a]);
  for (let o = 0; o < both.length; o += 1237) chunks.push(both.subarray(o, o + 1237));
  const seen: Array<[number, bigint, number]> = [];
  let r: WlogReader | null = await WlogReader.open(Readable.from(chunks), { chained: true });
  for (; r; r = await r.following()) {
    let n = 0;
    for await (const _p of r) n++;
    seen.push([r.headerOffset, r.endLsid, n]);
  }
  const [ra, rb] = [await collect(a), await collect(b)];
  assert.equal(seen, [[0, ra.r.endLsid, ra.packs.length], [a.length, rb.r.endLsid, rb.packs.length], [a.length + b.length, ra.r.endLsid, ra.packs.length]]);
  // Without chained the input closes at the end marker; following() is for chained readers only.
  const plain = await collect(both);
  assert.is(plain.packs.length, ra.packs.length);
  try { await plain.r.following(); assert.unreachable(); } catch (e) { assert.match((e as Error).message, /only for a chained reader/); }
  // What follows an end marker must be a wlog header: a typed error at its offset.
  const bad = await WlogReader.open(Buffer.concat([a, Buffer.alloc(4096)]), { chained: true });
  for await (const _p of bad) { /* to the end marker */ }
  try { await bad.following(); assert.unreachable(); } catch (e) {
    assert.instance(e, WalbFormatError);
    assert.is((e as WalbFormatError).offset, a.length);
  }
});

Sources.run();

const Errors = suite('typed errors');
const src = readFileSync(vec('w-pbs512-mixed.wlog'));
Errors('an IO whose data was altered: ChecksumError at the data offset with the record lsid', async () => {
  const { packs } = await collect(src);
  const p = packs[0];
  const c = Buffer.from(src);
  const dataOff = p.offset + 512;
  c[dataOff + 10] ^= 0x40;
  try { await collect(c); assert.unreachable(); } catch (e) {
    assert.instance(e, ChecksumError);
    assert.is((e as ChecksumError).offset, dataOff);
    assert.is((e as ChecksumError).lsid, p.header.records[0].lsid);
    assert.match((e as Error).message, /offset \d+/);
  }
  // Without data verification the same file reads through.
  const ok = await collect(c, { verifyData: false });
  assert.is(ok.packs.length, packs.length);
});
Errors('cut in the middle of a pack: TruncatedError; at a pack boundary without end marker: strict error, lenient stop', async () => {
  const { packs } = await collect(src);
  try { await collect(src.subarray(0, packs[2].offset + 700)); assert.unreachable(); } catch (e) { assert.instance(e, TruncatedError); }
  try { await collect(src.subarray(0, packs[2].offset)); assert.unreachable(); } catch (e) { assert.instance(e, TruncatedError); }
  const lenient = await collect(src.subarray(0, packs[2].offset), { strict: false });
  assert.is(lenient.packs.length, 2);
  assert.not.ok(lenient.r.sawEndMarker);
});
Errors('a pack header with a foreign lsid: LsidSequenceError in strict mode, end of log in lenient mode', async () => {
  const { packs } = await collect(src);
  const c = Buffer.from(src);
  c.set(Buffer.alloc(512), packs[3].offset);
  try { await collect(c); assert.unreachable(); } catch (e) { assert.instance(e, WalbFormatError); }
  const lenient = await collect(c, { strict: false });
  assert.is(lenient.packs.length, 3);
  assert.is(lenient.r.endLsid, packs[3].header.logpackLsid);
});
Errors('errors past the header name the input given by source, for bytes and streams alike', async () => {
  const { packs } = await collect(src);
  const badType = Buffer.from(src);
  badType[packs[1].offset + 4] ^= 1;
  const badData = Buffer.from(src);
  badData[packs[0].offset + 512 + 10] ^= 0x40;
  for (const bytes of [badType, badData, src.subarray(0, packs[2].offset + 700), src.subarray(0, packs[2].offset)]) {
    for (const input of [bytes, Readable.from([bytes])]) {
      let err: WalbFormatError | undefined;
      try { await collect(input, { source: 'my-input.wlog' }); } catch (e) { err = e as WalbFormatError; }
      assert.instance(err, WalbFormatError);
      assert.is(err!.source, 'my-input.wlog', err!.message);
      assert.match(err!.message, /\(at my-input\.wlog, offset \d+, lsid \d+\)$/);
    }
  }
});
Errors('a record\'s data error is located at the record\'s lsid, the one its message names', async () => {
  const { packs } = await collect(src);
  // The first pack with two records that have data: the cut falls in the second one's data.
  const p = packs.find((x) => x.ios.length >= 2)!;
  const withData = p.header.records.filter((r) => (r.flags & 4) === 0);
  const cut = p.offset + 512 + p.ios[0].length + 100;
  try { await collect(Readable.from([src.subarray(0, cut)]), { source: 'cut.wlog' }); assert.unreachable(); } catch (e) {
    assert.instance(e, TruncatedError);
    const t = e as TruncatedError;
    assert.is(t.lsid, withData[1].lsid);
    assert.not.equal(t.lsid, p.header.logpackLsid);
    assert.ok(t.message.startsWith(`data of lsid ${withData[1].lsid}:`), t.message);
    assert.match(t.message, new RegExp(`lsid ${withData[1].lsid}\\)$`));
  }
});
Errors('empty input and a short header are truncations', async () => {
  for (const b of [Buffer.alloc(0), src.subarray(0, 100)]) {
    try { await WlogReader.open(b); assert.unreachable(); } catch (e) { assert.instance(e, TruncatedError); }
  }
});
Errors.run();

const Writer = suite('writer');
Writer('packs must be contiguous; data must match the records', async () => {
  const { header, packs } = generateWlog({ seed: 3, totalBytes: 256 << 10 });
  const list = [...packs];
  const w = await WlogWriter.create(() => {}, header);
  await w.writePack(list[0].header, list[0].ios);
  try { await w.writePack(list[2].header, list[2].ios); assert.unreachable(); } catch (e) { assert.instance(e, LsidSequenceError); }
  try { await w.writePack(list[1].header, list[1].ios.slice(1)); assert.unreachable(); } catch (e) { assert.instance(e, WalbFormatError); }
  await w.writePack(list[1].header, list[1].ios);
  assert.is(w.endLsid, list[2].header.logpackLsid);
  await w.close();
});
Writer('short IO buffers are zero-padded to whole PBs', async () => {
  const { header, packs } = generateWlog({ seed: 8, totalBytes: 64 << 10, pbs: 4096, randomData: true });
  const list = [...packs];
  const out: Buffer[] = [];
  const w = await WlogWriter.create((b) => { out.push(Buffer.from(b)); }, header);
  for (const p of list) {
    const withData = p.header.records.filter((r) => !(r.flags & 4));
    await w.writePack(p.header, p.ios.map((io, i) => (withData[i].flags & 2) ? io : io.subarray(0, withData[i].ioSize * 512)));
  }
  await w.close();
  const back = await collect(Buffer.concat(out));
  assert.is(back.packs.length, list.length);
});
Writer('a generated log written to a file reads back with the same content', async () => {
  const t = tempDir();
  try {
    const p = join(t.dir, 'g.wlog');
    const { endLsid } = await writeGeneratedWlog(p, { seed: 11, totalBytes: 2 << 20, pbs: 4096 });
    const { r, packs } = await collect(p);
    assert.is(r.endLsid, endLsid);
    const again = [...generateWlog({ seed: 11, totalBytes: 2 << 20, pbs: 4096 }).packs];
    assert.is(packs.length, again.length);
    for (let i = 0; i < packs.length; i++) {
      assert.equal(packs[i].header.records, again[i].header.records);
      assert.ok(Buffer.concat(packs[i].ios).equals(Buffer.concat(again[i].ios)));
    }
  } finally { t.cleanup(); }
});
Writer('a failed write to a file sink names the file and keeps the system code', async () => {
  let err: NodeJS.ErrnoException | undefined;
  // /dev/full refuses every write with ENOSPC, as a full file system does.
  try { await writeGeneratedWlog('/dev/full', { seed: 3, totalBytes: 6 << 20, pbs: 4096 }); } catch (e) { err = e as NodeJS.ErrnoException; }
  assert.ok(err, 'no error');
  assert.is(err!.code, 'ENOSPC');
  assert.is(err!.path, '/dev/full');
  assert.match(err!.message, /^write \/dev\/full at byte 0: ENOSPC/);
});
Writer.run();
