// The native log walk (`useLogChunkScan`, as the CLI runs) against the JavaScript scan: every
// conversion writes the same bytes, and every corrupt or cut log fails with the same typed error
// at the same place, or converts to the same bytes. The walk only finds bytes; these are the
// cases where it and the decoder could disagree.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  LOG_RECORD_EXIST, checksum, emptyLogpackHeader, encodeLogpackHeader, encodeWlogHeader, endMarkerHeader, makeWlogHeader, writeGeneratedWlog,
  type LogRecord,
} from '@walbjs/log-format';
import { loadNative } from '@walbjs/native-walb';
import { IndexedDiffReader, convertWlogs, parseCompressOpt, useLogChunkScan, useSnappyEncoder } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const t = tempDir();
process.on('exit', () => t.cleanup());
const W = suite('native log walk');
const native = loadNative();
W.before(() => { assert.ok(useSnappyEncoder(native.snappyCompress, 'walbjs native')); });
W.after(() => { useSnappyEncoder(undefined); useLogChunkScan(undefined); });

type Outcome = { bytes: Buffer } | { error: string };
let n = 0;

/**
 * Convert `paths` once walking and once scanning; returns both outcomes. The walk has each next
 * walk queued behind the running one (as the CLI runs) on every other call, started from here on
 * the others.
 */
async function both(paths: string[], opts: Parameters<typeof convertWlogs>[2]): Promise<[Outcome, Outcome]> {
  const linked = n % 4 < 2;
  const run = async (walk: boolean): Promise<Outcome> => {
    useLogChunkScan(walk ? native.scanLogChunk : undefined, linked ? native.scanLink : undefined);
    const out = join(t.dir, `o${n++}.wdiff`);
    try {
      await convertWlogs(paths, out, opts);
      return { bytes: readFileSync(out) };
    } catch (e) {
      const x = e as Error & { code?: string; offset?: unknown };
      return { error: `${x.constructor.name} ${x.code} ${x.message}` };
    } finally {
      useLogChunkScan(undefined);
    }
  };
  return [await run(true), await run(false)];
}

function same([a, b]: [Outcome, Outcome], what: string): void {
  if ('error' in b) assert.is('error' in a ? a.error : 'converted', b.error, what);
  else assert.ok('bytes' in a && a.bytes.equals(b.bytes), `${what}: ${'error' in a ? a.error : 'bytes differ'}`);
}

W('generated logs: both formats, none and snappy, IOs larger than a walk, several files', async () => {
  const logs: Array<[string, string[]]> = [];
  for (const [i, [pbs, randomData, maxIo]] of ([[512, true, 600 << 10], [4096, false, 600 << 10], [4096, true, 12 << 20]] as const).entries()) {
    const w = join(t.dir, `g${i}.wlog`);
    await writeGeneratedWlog(w, { seed: 90 + i, pbs, totalBytes: maxIo > 1 << 20 ? 40 << 20 : 9 << 20, deviceBytes: 64 << 20, maxIoBytes: maxIo, maxPackBytes: 32 << 20, randomData });
    logs.push([`g${i}`, [w]]);
  }
  const uuid = new Uint8Array(16).fill(7);
  const a = join(t.dir, 'c0.wlog'), b = join(t.dir, 'c1.wlog');
  const first = await writeGeneratedWlog(a, { seed: 21, uuid, salt: 9, totalBytes: 3 << 20, deviceBytes: 4 << 20, randomData: false });
  await writeGeneratedWlog(b, { seed: 22, uuid, salt: 9, beginLsid: first.endLsid, totalBytes: 3 << 20, deviceBytes: 4 << 20 });
  logs.push(['chain', [a, b]]);
  for (const [name, paths] of logs) {
    for (const indexed of [true, false]) {
      for (const cmpr of ['snappy', 'none']) {
        const r = await both(paths, { indexed, cmpr: parseCompressOpt(cmpr) });
        assert.ok('bytes' in r[1], `${name}: ${'error' in r[1] ? r[1].error : ''}`);
        same(r, `${name} ${indexed ? 'indexed' : 'sorted'} ${cmpr}`);
      }
    }
  }
});

W('a log corrupt or cut several stretches in: the same error, a walk queued behind the one that meets it or not', async () => {
  const src = join(t.dir, 'far.wlog');
  await writeGeneratedWlog(src, { seed: 31, pbs: 4096, totalBytes: 40 << 20, deviceBytes: 64 << 20, maxIoBytes: 256 << 10, randomData: false });
  const good = readFileSync(src);
  for (const [name, bytes] of [['a byte changed at 30 MiB', (() => { const b = Buffer.from(good); b[30 << 20] ^= 0x5a; return b; })()], ['cut at 30 MiB', good.subarray(0, 30 << 20)]] as const) {
    const p = join(t.dir, 'far-bad.wlog');
    writeFileSync(p, bytes);
    for (const indexed of [true, false]) {
      // Two calls: one with links, one without (see both).
      for (let k = 0; k < 2; k++) {
        const r = await both([p], { indexed, cmpr: parseCompressOpt('snappy') });
        assert.ok('error' in r[1], `${name}: the scan converted it`);
        same(r, `${name} ${indexed ? 'indexed' : 'sorted'}`);
      }
    }
  }
});

W('corrupt and cut logs: the same error, or the same bytes', async () => {
  const src = join(t.dir, 'm.wlog');
  await writeGeneratedWlog(src, { seed: 5, pbs: 4096, totalBytes: 3 << 20, deviceBytes: 8 << 20, maxIoBytes: 300 << 10, randomData: false });
  const good = readFileSync(src);
  const mutated = join(t.dir, 'mut.wlog');
  await fc.assert(fc.asyncProperty(
    fc.oneof(
      fc.record({ cut: fc.integer({ min: 4096, max: good.length - 1 }) }),
      fc.record({ at: fc.integer({ min: 4096, max: good.length - 1 }), xor: fc.integer({ min: 1, max: 255 }) }),
      // Inside a logpack header's fields and records, where the walk reads.
      fc.record({ hdr: fc.integer({ min: 0, max: 4 * 32 + 24 }), xor: fc.integer({ min: 1, max: 255 }) }),
    ),
    fc.boolean(),
    async (m, indexed) => {
      const b = Buffer.from(good);
      let bytes = b;
      if ('cut' in m) bytes = b.subarray(0, m.cut);
      else if ('at' in m) b[m.at] ^= m.xor;
      else b[4096 + m.hdr] ^= m.xor;
      writeFileSync(mutated, bytes);
      same(await both([mutated], { indexed }), JSON.stringify(m));
    }), { numRuns: 120, seed: 77 });
});

W('an empty pack inside a log: walked past by both, and what later IOs overwrite is left out across it', async () => {
  const pbs = 4096, salt = 3;
  const parts: Uint8Array[] = [encodeWlogHeader(makeWlogHeader({ pbs, salt, uuid: new Uint8Array(16).fill(5), beginLsid: 100n }))];
  // A pack of one IO of 8 LB at lsid `lsid`: its header and its data.
  const pack = (lsid: bigint, addr: number, fill: number): void => {
    const data = Buffer.alloc(8 * 512, fill);
    const rec: LogRecord = { checksum: checksum(data, salt), flags: LOG_RECORD_EXIST, offset: BigInt(addr), ioSize: 8, lsidLocal: 1, reserved1: 0, lsid: lsid + 1n };
    parts.push(encodeLogpackHeader({ ...emptyLogpackHeader(lsid), totalIoSize: 1, nRecords: 1, records: [rec] }, pbs, salt), data);
  };
  pack(100n, 0, 0x11);
  pack(102n, 64, 0x22);
  parts.push(encodeLogpackHeader(emptyLogpackHeader(104n), pbs, salt));
  // An empty pack takes a block and leaves the lsid where it was (as the original reads it).
  pack(104n, 4, 0x33);
  parts.push(encodeLogpackHeader(endMarkerHeader(), pbs, salt));
  const w = join(t.dir, 'empty-pack.wlog');
  writeFileSync(w, Buffer.concat(parts));
  for (const cmpr of ['none', 'snappy']) {
    const [a, b] = await both([w], { indexed: true, cmpr: parseCompressOpt(cmpr) });
    same([a, b], `empty pack, ${cmpr}`);
    // Of the first IO, LB 0-3 only (raw: an image of its own): the last one, past the empty pack,
    // overwrites LB 4-11 (written as two aligned records of its 8 LB image, as the index does).
    const out = join(t.dir, `empty-pack-${cmpr}.wdiff`);
    await convertWlogs([w], out, { indexed: true, cmpr: parseCompressOpt(cmpr) });
    const r = await IndexedDiffReader.open(out);
    const recs = Array.from({ length: r.size }, (_, i) => r.record(i)).map((x) => [x.ioAddress, x.ioBlocks, x.origBlocks]);
    await r.close();
    // Stored compressed (snappy shrinks these fills), the first IO keeps its whole image.
    assert.equal(recs, [[0, 4, cmpr === 'none' ? 4 : 8], [4, 4, 8], [8, 4, 8], [64, 8, 8]], cmpr);
  }
});

W.run();
