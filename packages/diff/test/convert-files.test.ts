// The conversion of wlog files (read in place; sorted in two passes over the files) gives the same
// bytes as the streaming conversion of the same logs (indexed: the same diff, without the data later
// IOs overwrite), for every codec, both formats, splits, several consecutive files; and corrupt or
// mismatched logs throw the same typed errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import {
  WALBLOG_HEADER_SIZE, WalbFormatError, decodeLogpackHeader, encodeLogpackHeader, isEndMarker, nextLogpackLsid, writeGeneratedWlog,
} from '@walbjs/log-format';
import {
  IndexedDiffReader, VirtualFullImage, applyWdiffs, convertWlogs, ioBytes, mergeWdiffs, openWdiff, parseCompressOpt, sameStoredImage, wlogIos,
  type IndexedDiffRecord,
} from '../src/index.ts';
import { casesOf, tempDir, vec } from './helpers.ts';

const t = tempDir();
process.on('exit', () => t.cleanup());
const C = suite('convert files');

/**
 * What a diff says, whatever its records: runs of one kind over consecutive LBs (adjacent records
 * joined), each with the sha256 of its bytes.
 */
async function contentOf(path: string): Promise<Array<[number, number, string, string]>> {
  const d = await openWdiff(path);
  const runs: Array<{ addr: number; blocks: number; kind: string; parts: Buffer[] }> = [];
  try {
    for await (const io of d.ios()) {
      const bytes = io.kind === 'normal' ? Buffer.from((await ioBytes(io))!) : undefined;
      const last = runs[runs.length - 1];
      if (last && last.kind === io.kind && last.addr + last.blocks === io.addr) {
        last.blocks += io.blocks;
        if (bytes) last.parts.push(bytes);
      } else {
        runs.push({ addr: io.addr, blocks: io.blocks, kind: io.kind, parts: bytes ? [bytes] : [] });
      }
    }
  } finally {
    await d.close();
  }
  return runs.map((r) => [r.addr, r.blocks, r.kind, createHash('sha256').update(Buffer.concat(r.parts)).digest('hex')]);
}

/**
 * Sorted: the same bytes from files and from streams. Indexed: files are looked at twice, so what
 * later IOs overwrite is left out; the same diff (content, uuid, lsids), never a larger file.
 */
async function both(paths: string[], opts: Parameters<typeof convertWlogs>[2], name: string): Promise<void> {
  const a = join(t.dir, `${name}.file.wdiff`);
  const b = join(t.dir, `${name}.stream.wdiff`);
  const ra = await convertWlogs(paths, a, opts);
  const rb = await convertWlogs(paths.map((p) => readFileSync(p)), b, opts);
  if (opts?.indexed) {
    assert.equal(await contentOf(a), await contentOf(b), `${name}: file and stream conversions describe other diffs`);
    assert.ok(statSync(a).size <= statSync(b).size, `${name}: the file conversion is larger`);
    assert.equal([ra.uuid, ra.beginLsid, ra.endLsid], [rb.uuid, rb.beginLsid, rb.endLsid]);
    assert.is(ra.bytes, statSync(a).size);
    return;
  }
  assert.ok(readFileSync(a).equals(readFileSync(b)), `${name}: file and stream conversions differ`);
  assert.equal({ ...ra }, { ...rb }, `${name}: results differ`);
}

async function rejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try { await fn(); } catch (e) { assert.match((e as Error).message, re); return; }
  assert.unreachable('did not throw');
}

C('generated logs (discards, padding, all-zero IOs, pbs 512 and 4096): every codec, both formats, with splits', async () => {
  for (const pbs of [512, 4096]) {
    const w = join(t.dir, `g${pbs}.wlog`);
    await writeGeneratedWlog(w, { seed: pbs, pbs, totalBytes: 3 << 20, deviceBytes: 8 << 20, maxDiscardBytes: 1 << 20, maxIoBytes: 300 << 10, randomData: pbs === 512 });
    for (const cmpr of ['none', 'snappy', 'gzip', 'lz4', 'zstd']) {
      for (const indexed of [false, true]) {
        for (const maxIoBlocks of [undefined, 16]) {
          await both([w], { indexed, cmpr: parseCompressOpt(cmpr), maxIoBlocks }, `g${pbs}-${cmpr}-${indexed}-${maxIoBlocks}`);
        }
      }
    }
  }
});

C('the reference logs', async () => {
  for (const c of casesOf('wlog')) for (const indexed of [false, true]) await both([vec(c.wlog)], { indexed }, `${c.name}-${indexed}`);
});

C('indexed, from files: what later IOs overwrite is not written (raw records cut to what is visible, wholly hidden IOs left out)', async () => {
  // 4 MiB of random data onto 1 MiB: most of it overwritten.
  const w = join(t.dir, 'over.wlog');
  await writeGeneratedWlog(w, { seed: 31, pbs: 4096, totalBytes: 4 << 20, deviceBytes: 1 << 20, allZero: false, discard: false, randomData: true });
  const written = new Set<number>();
  for await (const io of wlogIos([w])) for (let a = io.addr; a < io.addr + io.blocks; a++) written.add(a);
  const storedBytes = async (path: string): Promise<number> => {
    const r = await IndexedDiffReader.open(path);
    let n = 0;
    let last: IndexedDiffRecord | undefined;
    for (let i = 0; i < r.size; i++) {
      const rec = r.record(i);
      if (!last || !sameStoredImage(last, rec)) n += rec.dataSize;
      last = rec;
    }
    await r.close();
    return n;
  };
  for (const cmpr of ['none', 'snappy']) {
    const a = join(t.dir, `over-${cmpr}.wdiff`), b = join(t.dir, `over-${cmpr}.stream.wdiff`);
    await convertWlogs([w], a, { indexed: true, cmpr: parseCompressOpt(cmpr) });
    await convertWlogs([readFileSync(w)], b, { indexed: true, cmpr: parseCompressOpt(cmpr) });
    // Random data is stored raw: exactly one copy of each LB written, against all the log's data.
    assert.is(await storedBytes(a), written.size * 512, cmpr);
    assert.ok(statSync(b).size > 3 * written.size * 512, `${cmpr}: the stream conversion keeps every IO's data`);
    assert.ok(statSync(a).size < written.size * 512 + (256 << 10), `${cmpr}: the file conversion holds more than its records' data`);
    assert.equal(await contentOf(a), await contentOf(b));
    // Applied, the same image.
    const ia = join(t.dir, `over-${cmpr}.img`), ib = join(t.dir, `over-${cmpr}.stream.img`);
    for (const [img, d] of [[ia, a], [ib, b]]) {
      writeFileSync(img, Buffer.alloc(1 << 20));
      await applyWdiffs(img, [d]);
    }
    assert.ok(readFileSync(ia).equals(readFileSync(ib)), `${cmpr}: applied images differ`);
  }
});

C('indexed, from files: a log that changes between the look at its headers and the pass is refused, not written short', async () => {
  const w = join(t.dir, 'changing.wlog');
  const salt = 17;
  await writeGeneratedWlog(w, { seed: 41, pbs: 4096, salt, totalBytes: 44 << 20, deviceBytes: 8 << 20, minIoBytes: 4096, maxIoBytes: 8192, discard: false, allZero: false, padding: false, randomData: true });
  // The pack headers past 36 MiB with each IO moved by 1 LB: still a valid log (the data and
  // their checksums are as they were), of IOs at other places.
  const fd = openSync(w, 'r+');
  const patched: Array<[number, Buffer]> = [];
  const hb = Buffer.alloc(4096);
  for (let pos = WALBLOG_HEADER_SIZE; ;) {
    readSync(fd, hb, 0, 4096, pos);
    const h = decodeLogpackHeader(hb, 0, 4096, salt);
    if (isEndMarker(h)) break;
    if (pos > 36 << 20) patched.push([pos, encodeLogpackHeader({ ...h, records: h.records.map((r) => ({ ...r, offset: r.offset + 1n })) }, 4096, salt)]);
    pos += Number(nextLogpackLsid(h) - h.logpackLsid) * 4096;
  }
  assert.ok(patched.length > 10);
  const out = join(t.dir, 'changing.wdiff');
  let changed = false;
  let err: (Error & { code?: string }) | undefined;
  try {
    // Changed once 4096 IOs (some 24 MiB) went through the pass, after the look, ahead of its reads.
    await convertWlogs([w], out, { indexed: true, onProgress: () => { if (changed) return; changed = true; for (const [pos, b] of patched) writeSync(fd, b, 0, b.length, pos); } });
  } catch (e) {
    err = e as Error;
  } finally {
    closeSync(fd);
  }
  assert.ok(changed);
  assert.is(err?.code, 'ERR_WALB_LOG_CHANGED', String(err));
  assert.match(err!.message, /changing\.wlog: the log changed while it was read: its IO \d+ is at LB/);
  assert.not.ok(existsSync(out), 'no output');
  // As it is now, the log converts.
  await convertWlogs([w], out, { indexed: true });
  assert.ok(existsSync(out));
});

C('consecutive files convert as one log; a gap or another uuid is refused', async () => {
  const a = join(t.dir, 'c0.wlog'), b = join(t.dir, 'c1.wlog');
  const uuid = new Uint8Array(16).fill(7);
  await writeGeneratedWlog(a, { seed: 5, uuid, salt: 99, totalBytes: 2 << 20, deviceBytes: 4 << 20 });
  const first = await convertWlogs([a], join(t.dir, 'c0.wdiff'));
  await writeGeneratedWlog(b, { seed: 6, uuid, salt: 99, beginLsid: first.endLsid, totalBytes: 2 << 20, deviceBytes: 4 << 20 });
  for (const indexed of [false, true]) await both([a, b], { indexed }, `chain-${indexed}`);
  await rejects(() => convertWlogs([b, a], join(t.dir, 'bad.wdiff')), /lsid/);
  const other = join(t.dir, 'c2.wlog');
  await writeGeneratedWlog(other, { seed: 6, uuid: new Uint8Array(16).fill(8), salt: 99, beginLsid: first.endLsid, totalBytes: 1 << 20 });
  await rejects(() => convertWlogs([a, other], join(t.dir, 'bad.wdiff')), /uuid/);
});

C('wlogs back to back in one file or one stream convert as the separate files do (only the first was read); what follows must be the next wlog', async () => {
  const a = join(t.dir, 'b0.wlog'), b = join(t.dir, 'b1.wlog'), c = join(t.dir, 'b2.wlog');
  const uuid = new Uint8Array(16).fill(9);
  const ra = await writeGeneratedWlog(a, { seed: 15, uuid, salt: 1, totalBytes: 2 << 20, deviceBytes: 4 << 20 });
  const rb = await writeGeneratedWlog(b, { seed: 16, uuid, salt: 2, pbs: 512, beginLsid: ra.endLsid, totalBytes: 1 << 20, deviceBytes: 4 << 20 });
  await writeGeneratedWlog(c, { seed: 17, uuid, salt: 3, beginLsid: rb.endLsid, totalBytes: 1 << 20, deviceBytes: 4 << 20 });
  const joined = join(t.dir, 'b012.wlog');
  writeFileSync(joined, Buffer.concat([a, b, c].map((p) => readFileSync(p))));
  for (const indexed of [false, true]) {
    const ref = join(t.dir, `back-${indexed}.ref.wdiff`);
    const r0 = await convertWlogs([a, b, c], ref, { indexed });
    assert.is(r0.endLsid, (await convertWlogs([c], join(t.dir, 'b2.wdiff'))).endLsid);
    // One file holding the three, and the same bytes as a stream (stdin), and two files of which
    // the second holds two.
    const f = join(t.dir, `back-${indexed}.file.wdiff`), g = join(t.dir, `back-${indexed}.stream.wdiff`), h = join(t.dir, `back-${indexed}.two.wdiff`);
    const bc = join(t.dir, 'b12.wlog');
    writeFileSync(bc, Buffer.concat([b, c].map((p) => readFileSync(p))));
    const rs = [await convertWlogs([joined], f, { indexed }), await convertWlogs([readFileSync(joined)], g, { indexed }), await convertWlogs([a, bc], h, { indexed })];
    for (const r of rs) assert.equal([r.uuid, r.beginLsid, r.endLsid], [r0.uuid, r0.beginLsid, r0.endLsid]);
    for (const out of [f, g, h]) {
      if (indexed) assert.equal(await contentOf(out), await contentOf(ref), `${out}: another diff`);
      else assert.ok(readFileSync(out).equals(readFileSync(ref)), `${out}: other bytes`);
    }
  }
  // What follows an end marker must be a wlog that continues the one before, at its offset.
  const size = statSync(a).size;
  const cases: Array<[Buffer, RegExp]> = [
    [Buffer.concat([readFileSync(a), Buffer.alloc(4096)]), /sector type/],
    [Buffer.concat([readFileSync(a), readFileSync(a)]), /wlog begins at lsid 0, the previous one ended at/],
    [Buffer.concat([readFileSync(a), readFileSync(b).subarray(0, 100)]), /needed 4096 bytes/],
  ];
  for (const [bytes, re] of cases) {
    const bad = join(t.dir, 'back-bad.wlog');
    writeFileSync(bad, bytes);
    for (const src of [bad, bytes]) {
      try {
        await convertWlogs([src], join(t.dir, 'back-bad.wdiff'));
        assert.unreachable('converted');
      } catch (e) {
        assert.match((e as Error).message, re);
        assert.is((e as WalbFormatError).offset, size, `${(e as Error).message}`);
      }
      assert.not.ok(existsSync(join(t.dir, 'back-bad.wdiff')));
    }
  }
});

C('a pipe given by its path is read as a stream, not at offsets: the same bytes as the file', async () => {
  const w = join(t.dir, 'piped.wlog');
  await writeGeneratedWlog(w, { seed: 77, pbs: 4096, totalBytes: 2 << 20, deviceBytes: 8 << 20 });
  for (const indexed of [false, true]) {
    const fifo = join(t.dir, `piped-${indexed}.fifo`);
    execFileSync('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', 'cat "$0" > "$1"', w, fifo], { stdio: 'ignore' });
    const ended = new Promise((res) => writer.on('close', res));
    const a = join(t.dir, `piped-${indexed}.wdiff`), b = join(t.dir, `piped-${indexed}.file.wdiff`);
    const ra = await convertWlogs([fifo], a, { indexed });
    await ended;
    // The stream conversion of the same bytes, for what a pipe must give.
    const c = join(t.dir, `piped-${indexed}.stream.wdiff`);
    const rc = await convertWlogs([readFileSync(w)], c, { indexed });
    assert.ok(readFileSync(a).equals(readFileSync(c)), `indexed ${indexed}: the pipe is not converted as a stream`);
    assert.equal({ ...ra }, { ...rc });
    const rb = await convertWlogs([w], b, { indexed });
    if (indexed) assert.equal(await contentOf(a), await contentOf(b), 'the pipe and the file describe other diffs');
    else assert.ok(readFileSync(a).equals(readFileSync(b)), 'the pipe converts to other bytes than the file');
    assert.equal([ra.uuid, ra.endLsid], [rb.uuid, rb.endLsid]);
  }
});

C('no input is refused before anything is written (convertWlogs, mergeWdiffs)', async () => {
  for (const indexed of [false, true]) {
    const out = join(t.dir, `none-${indexed}.wdiff`);
    await rejects(() => convertWlogs([], out, { indexed }), /no wlog given/);
    assert.not.ok(existsSync(out), 'no output file');
  }
  const out = join(t.dir, 'none-merged.wdiff');
  await rejects(() => mergeWdiffs([], out), /no wdiff given/);
  assert.not.ok(existsSync(out), 'no output file');
});

C('corrupt data and a truncated log throw typed errors, as the stream conversion does', async () => {
  const w = join(t.dir, 'x.wlog');
  await writeGeneratedWlog(w, { seed: 9, pbs: 4096, totalBytes: 2 << 20, deviceBytes: 4 << 20, padding: false, discard: false, allZero: false });
  const src = readFileSync(w);
  const flipped = Buffer.from(src);
  flipped[4096 * 2 + 100] ^= 1; // the first pack's data
  const f = join(t.dir, 'flip.wlog');
  writeFileSync(f, flipped);
  const cut = join(t.dir, 'cut.wlog');
  writeFileSync(cut, src.subarray(0, src.length - 4096 * 3 - 1000));
  for (const bad of [f, cut]) {
    for (const indexed of [false, true]) {
      let e1: unknown, e2: unknown;
      try { await convertWlogs([bad], join(t.dir, 'o1.wdiff'), { indexed }); } catch (e) { e1 = e; }
      try { await convertWlogs([readFileSync(bad)], join(t.dir, 'o2.wdiff'), { indexed }); } catch (e) { e2 = e; }
      assert.instance(e1, WalbFormatError, `${bad} indexed=${indexed}`);
      assert.instance(e2, WalbFormatError);
      assert.is((e1 as WalbFormatError).code, (e2 as WalbFormatError).code);
    }
  }
});

C('a failed write of the output names the file and the byte offset, and keeps the system code', async () => {
  const w = join(t.dir, 'full.wlog');
  await writeGeneratedWlog(w, { seed: 12, pbs: 4096, totalBytes: 3 << 20, deviceBytes: 8 << 20 });
  // /dev/full takes opens and refuses every write with ENOSPC, as a full file system does.
  for (const indexed of [false, true]) {
    let err: NodeJS.ErrnoException | undefined;
    try { await convertWlogs([w], '/dev/full', { indexed }); } catch (e) { err = e as NodeJS.ErrnoException; }
    assert.ok(err, `indexed=${indexed}: no error`);
    assert.is(err!.code, 'ENOSPC');
    assert.is(err!.path, '/dev/full');
    assert.match(err!.message, /^write \/dev\/full at byte \d+: ENOSPC/);
  }
});

C('a directory given as an input fails at open, naming it (wlogs, wdiffs, a base image)', async () => {
  const d = join(t.dir, 'a-dir');
  mkdirSync(d, { recursive: true });
  const w = join(t.dir, 'ok.wlog');
  await writeGeneratedWlog(w, { seed: 13, totalBytes: 1 << 20 });
  const calls: Array<() => Promise<unknown>> = [
    () => convertWlogs([d], join(t.dir, 'o.wdiff')),
    () => convertWlogs([d], join(t.dir, 'o.wdiff'), { indexed: true }),
    () => openWdiff(d),
    () => VirtualFullImage.open(d, []),
  ];
  for (const call of calls) {
    let err: NodeJS.ErrnoException | undefined;
    try { await call(); } catch (e) { err = e as NodeJS.ErrnoException; }
    assert.is(err?.code, 'EISDIR');
    assert.is(err?.path, d);
  }
});

const hasStrace = (() => { try { execFileSync('strace', ['-V'], { stdio: 'ignore' }); return true; } catch { return false; } })();

(hasStrace ? C : C.skip)('sync: the output is synced while it is written and at the end; without it, never', async () => {
  // 160 MiB of random data: many times the bytes between the syncs started along the way.
  const w = join(t.dir, 'sync.wlog');
  await writeGeneratedWlog(w, { seed: 5, pbs: 4096, totalBytes: 160 << 20, deviceBytes: 1 << 30, maxIoBytes: 256 << 10, minIoBytes: 4096, discard: false, padding: false, allZero: false, randomData: true });
  const script = join(t.dir, 'sync-run.mts');
  writeFileSync(script, `import { convertWlogs } from ${JSON.stringify(fileURLToPath(new URL('../src/index.ts', import.meta.url)))};
await convertWlogs([process.argv[2]], process.argv[3], { indexed: process.argv[4] === 'indexed', sync: process.argv[5] === 'sync' });
`);
  for (const [fmt, sync] of [['sorted', 'sync'], ['indexed', 'sync'], ['sorted', 'nosync']]) {
    const out = join(t.dir, `sync-${fmt}-${sync}.wdiff`);
    const trace = join(t.dir, `sync-${fmt}-${sync}.strace`);
    execFileSync('strace', ['-f', '-qq', '-e', 'trace=openat,fdatasync', '-o', trace, process.execPath, '--conditions=walb-source', '--import', 'tsx', script, w, out, fmt, sync], { stdio: ['ignore', 'ignore', 'pipe'] });
    const lines = readFileSync(trace, 'utf8').split('\n');
    // The output is written under a temporary name beside it (renamed at the end).
    const temp = `"${join(t.dir, `.sync-${fmt}-${sync}.wdiff.`)}`;
    const fd = /= (\d+)$/.exec(lines.find((l) => l.includes('openat') && l.includes(temp) && /= \d+$/.test(l))!)![1];
    const syncs = lines.filter((l) => new RegExp(`fdatasync\\(${fd}\\) += 0`).test(l)).length;
    if (sync === 'sync') assert.ok(syncs >= 3, `${fmt}: ${syncs} data syncs of the output (expected some along the way and one at the end)`);
    else assert.is(syncs, 0, `${fmt} without sync: ${syncs} data syncs`);
  }
});

C('large discards and all-zero IOs, cut by later writes: the same split pieces by every path, one entry each in memory', async () => {
  // Discards of up to 4 MiB and IOs up to 300 KiB over 8 MiB, split at 16 LB: a discard is
  // hundreds of pieces, and later writes cut it on both sides.
  for (const seed of [21, 22, 23]) {
    const w = join(t.dir, `bigdiscard${seed}.wlog`);
    await writeGeneratedWlog(w, { seed, totalBytes: 2 << 20, deviceBytes: 8 << 20, maxDiscardBytes: 4 << 20, minDiscardBytes: 256 << 10, maxIoBytes: 300 << 10 });
    const outs: Buffer[] = [];
    for (const [name, src, memoryBytes] of [['file', w, undefined], ['memory', readFileSync(w), undefined], ['intermediate', readFileSync(w), 0]] as const) {
      const out = join(t.dir, `bigdiscard${seed}-${name}.wdiff`);
      await convertWlogs([src], out, { maxIoBlocks: 16, memoryBytes });
      outs.push(readFileSync(out));
    }
    assert.ok(outs[0].equals(outs[1]), `seed ${seed}: file and in-memory conversions differ`);
    assert.ok(outs[0].equals(outs[2]), `seed ${seed}: file conversion and the one through an intermediate file differ`);
    // Every record at most 16 LB, and more of them than discards: the discards were split.
    const d = await openWdiff(join(t.dir, `bigdiscard${seed}-file.wdiff`));
    let n = 0, discards = 0;
    for await (const io of d.ios()) { assert.ok(io.blocks <= 16); n++; if (io.kind === 'discard') discards++; }
    await d.close();
    assert.ok(discards > 100, `seed ${seed}: ${discards} discard pieces of ${n}`);
  }
});

C.run();
