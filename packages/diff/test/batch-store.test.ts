// With the native batch store (the reads, compression and checksums of a batch of records on the
// thread pool; the sorted conversion's second pass uses it) conversions write the same bytes as
// without it, for both formats, codecs none and snappy, IOs that straddle reads or outgrow a
// batch, several files; a log that shrinks between the two passes fails the same way; a batch
// store that gets anything wrong is refused.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeGeneratedWlog } from '@walbjs/log-format';
import { loadNative } from '@walbjs/native-walb';
import { STORED_IN_SRC, convertWlogs, parseCompressOpt, useBatchStore, useDirectWrites, useSnappyEncoder, type StoreBatchFn } from '../src/index.ts';
import { convertFilesSorted } from '../src/io/convert-files.ts';
import { tempDir } from './helpers.ts';

const t = tempDir();
process.on('exit', () => t.cleanup());
const B = suite('batch store');
const native = loadNative();

B.before(() => { assert.ok(useSnappyEncoder(native.snappyCompress, 'walbjs native')); });
B.after(async () => { useSnappyEncoder(undefined); await useBatchStore(undefined); });

/** Convert with and without the batch store; the outputs must be the same bytes. */
async function same(paths: string[], opts: Parameters<typeof convertWlogs>[2], name: string): Promise<void> {
  const a = join(t.dir, `${name}.batch.wdiff`), b = join(t.dir, `${name}.plain.wdiff`);
  assert.ok(await useBatchStore(native.storeBatch));
  const ra = await convertWlogs(paths, a, opts);
  await useBatchStore(undefined);
  const rb = await convertWlogs(paths, b, opts);
  assert.ok(readFileSync(a).equals(readFileSync(b)), `${name}: the batch store changed the bytes`);
  assert.equal({ ...ra }, { ...rb }, `${name}: results differ`);
}

B('generated logs: both formats, none and snappy, with splits, random and repetitive data', async () => {
  let n = 0;
  for (const [pbs, randomData] of [[512, true], [4096, false], [512, false]] as const) {
    const w = join(t.dir, `g${n++}.wlog`);
    // IOs up to 600 KiB over 3 MiB reads: many straddle two reads of the scan.
    await writeGeneratedWlog(w, { seed: pbs + n, pbs, totalBytes: 9 << 20, deviceBytes: 16 << 20, maxDiscardBytes: 1 << 20, maxIoBytes: 600 << 10, randomData });
    for (const cmpr of ['none', 'snappy']) {
      for (const indexed of [false, true]) {
        for (const maxIoBlocks of [undefined, 16]) await same([w], { indexed, cmpr: parseCompressOpt(cmpr), maxIoBlocks }, `g${n}-${cmpr}-${indexed}-${maxIoBlocks}`);
      }
    }
  }
});

B('IOs larger than a batch, and consecutive files', async () => {
  const big = join(t.dir, 'big.wlog');
  await writeGeneratedWlog(big, { seed: 3, pbs: 4096, totalBytes: 24 << 20, deviceBytes: 64 << 20, minIoBytes: 3 << 20, maxIoBytes: 6 << 20, maxPackBytes: 8 << 20, discard: false, randomData: false });
  for (const indexed of [false, true]) await same([big], { indexed, maxIoBlocks: 65535 }, `big-${indexed}`);
  const a = join(t.dir, 'c0.wlog'), b = join(t.dir, 'c1.wlog');
  const uuid = new Uint8Array(16).fill(3);
  const first = await writeGeneratedWlog(a, { seed: 11, uuid, salt: 5, totalBytes: 3 << 20, deviceBytes: 4 << 20, randomData: false });
  await writeGeneratedWlog(b, { seed: 12, uuid, salt: 5, beginLsid: first.endLsid, totalBytes: 3 << 20, deviceBytes: 4 << 20 });
  for (const indexed of [false, true]) await same([a, b], { indexed }, `chain-${indexed}`);
  // Written with direct IO and synced as it goes, as the CLI writes.
  useDirectWrites(native.alignOffset);
  try {
    await same([big], { direct: true, sync: true, maxIoBlocks: 65535 }, 'big-direct');
  } finally {
    useDirectWrites(undefined);
  }
});

B('a log that shrinks between the passes of a sorted conversion fails as without the batch store', async () => {
  const w = join(t.dir, 'shrink.wlog');
  await writeGeneratedWlog(w, { seed: 21, pbs: 4096, totalBytes: 3 << 20, deviceBytes: 8 << 20, discard: false, allZero: false, padding: false });
  let ios = 0;
  await convertFilesSorted([w], join(t.dir, 'count.wdiff'), { maxIoBlocks: 65535, onIo: () => { ios++; } });
  assert.ok(ios > 3);
  const bytes = readFileSync(w);
  for (const batch of [true, false]) {
    assert.ok(await useBatchStore(batch ? native.storeBatch : undefined));
    let seen = 0;
    // The last IO of the first pass: everything is read and checked; then the file loses its tail.
    const onIo = () => { if (++seen === ios) truncateSync(w, 1 << 20); };
    try {
      await convertFilesSorted([w], join(t.dir, 'shrink.wdiff'), { onIo, maxIoBlocks: 65535 });
      assert.unreachable('a shrunk log converted');
    } catch (e) {
      assert.match((e as Error).message, /wlog file shrank while it was converted/, `batch ${batch}`);
    }
    writeFileSync(w, bytes);
  }
});

B('a batch store that gets anything wrong is refused', async () => {
  const wrong: Array<[string, StoreBatchFn]> = [
    ['throws', async () => { throw new Error('no'); }],
    ['does nothing', async () => {}],
    ['a wrong checksum', async (r, s, p, c, d, o) => { await native.storeBatch(r, s, p, c, d, o); o[7] ^= 1; }],
    ['takes a given sum for compressed bytes', async (r, s, p, c, d, o) => { await native.storeBatch(r, s, p, c, d, o); o[7] = p[7]; }],
    ['a corrupt block', async (r, s, p, c, d, o) => { await native.storeBatch(r, s, p, c, d, o); d[o[5] + 5] ^= 0x40; }],
    ['stores a compressible record raw', async (r, s, p, _c, d, o) => { await native.storeBatch(r, s, p, 0, d, o); }],
  ];
  for (const [name, fn] of wrong) assert.not.ok(await useBatchStore(fn), name);
  assert.ok(await useBatchStore(native.storeBatch));
  assert.ok(await useBatchStore(undefined));
  assert.is(STORED_IN_SRC, 0xffffffff);
});

B.run();
