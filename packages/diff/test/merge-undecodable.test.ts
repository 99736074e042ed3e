// A merge passes a whole record on as it is stored when it is already in the output's codec. Its
// checksum covers the stored bytes only, so such a record must also decompress to its size before
// it is passed on: a merged file may replace the inputs it came from, and an image no one can
// read would only show at the next apply. For every codec (the vectors' files), sorted and
// indexed inputs, into sorted and indexed outputs, by the streaming merge and by the addon's: a
// located CodecError, no output. A file read back as this process's own (`ownFile`) is trusted.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checksum } from '@walbjs/log-format';
import { loadNative } from '@walbjs/native-walb';
import {
  CodecError, IndexedDiffReader, SortedDiffWriter, WALB_INDEXED_DIFF_RECORD_SIZE, encodeIndexedDiffRecord, mergeWdiffs, parseCompressOpt,
  recordKind, useNativeMerge, useSnappyEncoder, type NativeMergeFns,
} from '../src/index.ts';
import { decodeDiffPackHeader, encodeDiffPackHeader } from '../src/layout/pack-header.ts';
import { tempDir, vec } from './helpers.ts';

const native = loadNative();
const t = tempDir();
process.on('exit', () => t.cleanup());
let runs = 0;
const counted: NativeMergeFns = { ...native, mergeRun: (m, b) => { runs++; return native.mergeRun(m, b); } };

/** File header bytes before the first pack header of a sorted wdiff. */
const FILE_HEADER = 32;
const PACK = 4096;

/**
 * The vectors' sorted file of `codec` with the stored bytes of its first compressed record
 * replaced by `junk` (as long as they were), its checksum made right again: the path and the
 * record's file offset.
 */
function undecodable(codec: string, junk: (data: Buffer, blocks: number) => void): { path: string; at: number } {
  const b = Buffer.from(readFileSync(vec(`w-cmpr-${codec}.wdiff`)));
  const pack = decodeDiffPackHeader(b, FILE_HEADER);
  const r = pack.records.find((x) => x.compressionType !== 0 && x.dataSize > 4);
  assert.ok(r, `a ${codec} record`);
  const at = FILE_HEADER + PACK + r!.dataOffset;
  const data = b.subarray(at, at + r!.dataSize);
  junk(data, r!.ioBlocks);
  r!.checksum = checksum(data, 0);
  encodeDiffPackHeader(pack).copy(b, FILE_HEADER);
  const path = join(t.dir, `undecodable-${codec}.wdiff`);
  writeFileSync(path, b);
  return { path, at };
}

const zeros = (data: Buffer): void => { data.fill(0); };

/** Snappy bytes that state the image's size, then copy from before the start of the output. */
function snappyFromNowhere(data: Buffer, blocks: number): void {
  data.fill(0);
  let v = blocks * 512, k = 0;
  while (v >= 0x80) { data[k++] = (v & 0x7f) | 0x80; v >>>= 7; }
  data[k++] = v;
  for (; k + 1 < data.length; k += 2) { data[k] = 0x01 | (7 << 2); data[k + 1] = 1; }
}

async function refused(input: string, at: number, cmpr: string, indexed: boolean, tag: string): Promise<void> {
  const out = join(t.dir, `out-${tag}.wdiff`);
  writeFileSync(out, 'earlier');
  try {
    await mergeWdiffs([input], out, { cmpr: parseCompressOpt(cmpr), indexed });
    assert.unreachable(`${tag}: merged`);
  } catch (e) {
    assert.instance(e, CodecError, `${tag}: ${String(e)}`);
    assert.is((e as CodecError).source, input, tag);
    assert.is((e as CodecError).offset, at, tag);
  }
  assert.is(readFileSync(out, 'utf8'), 'earlier', `${tag}: the output path keeps what it had`);
  assert.equal(readdirSync(t.dir).filter((x) => x.endsWith('.part')), [], tag);
}

const U = suite('merge: records passed on as stored');
U.before(() => { useSnappyEncoder(native.snappyCompress, 'walbjs native'); });
U.after(() => useNativeMerge(undefined));

U('a record of every codec that sums right but does not decompress stops the streaming merge (sorted and indexed outputs)', async () => {
  useNativeMerge(undefined);
  for (const codec of ['gzip', 'snappy', 'lzma', 'lz4', 'zstd']) {
    const { path, at } = undecodable(codec, zeros);
    for (const indexed of [false, true]) await refused(path, at, codec, indexed, `${codec}-${indexed ? 'indexed' : 'sorted'}`);
  }
  const { path, at } = undecodable('snappy', snappyFromNowhere);
  for (const indexed of [false, true]) await refused(path, at, 'snappy', indexed, `crafted snappy, ${indexed ? 'indexed' : 'sorted'}`);
});

U('the addon\'s merge refuses a snappy record passed on whole that does not decompress', async () => {
  useNativeMerge(counted);
  for (const [name, junk] of [['zeros', zeros], ['crafted', snappyFromNowhere]] as const) {
    const { path, at } = undecodable('snappy', junk);
    runs = 0;
    await refused(path, at, 'snappy', false, `native, ${name}`);
    assert.ok(runs > 0, 'merged natively');
  }
});

/** Bytes after the index records of an indexed wdiff: its index super. */
const INDEX_SUPER = 24;

U('an indexed input\'s image that sums right but does not decompress is refused; a file read back as the process\'s own passes as it is', async () => {
  useNativeMerge(undefined);
  const name = 'w-pbs512-mixed.indexed.wdiff';
  const b = Buffer.from(readFileSync(vec(name)));
  const r0 = await IndexedDiffReader.open(vec(name));
  let at = -1, cmpr = 0;
  try {
    for (let k = 0; k < r0.size; k++) {
      const rec = { ...r0.record(k) };
      if (recordKind(rec.flags) !== 'normal' || rec.compressionType === 0 || rec.ioOffset !== 0 || rec.ioBlocks !== rec.origBlocks) continue;
      // An image of this record alone: passed on whole, never sliced.
      let shared = false;
      for (let j = 0; j < r0.size; j++) if (j !== k && r0.record(j).dataOffset === rec.dataOffset && recordKind(r0.record(j).flags) === 'normal') shared = true;
      if (shared) continue;
      at = rec.dataOffset;
      cmpr = rec.compressionType;
      const data = b.subarray(at, at + rec.dataSize).fill(0);
      rec.ioChecksum = checksum(data, 0);
      encodeIndexedDiffRecord(rec, b, b.length - INDEX_SUPER - (r0.size - k) * WALB_INDEXED_DIFF_RECORD_SIZE);
      break;
    }
  } finally {
    await r0.close();
  }
  assert.ok(at > 0, 'a compressed image');
  const bad = join(t.dir, 'undecodable-indexed.wdiff');
  writeFileSync(bad, b);
  const codec = ['none', 'gzip', 'snappy', 'lzma', 'lz4', 'zstd'][cmpr];
  for (const indexed of [false, true]) await refused(bad, at, codec, indexed, `indexed input, ${indexed ? 'indexed' : 'sorted'} output`);
  // Read back as this process's own file, its images are vouched for: passed on, not decompressed.
  const own = await IndexedDiffReader.open(bad, { ownFile: true });
  const out = join(t.dir, 'own.wdiff');
  const w = await SortedDiffWriter.create(out, { cmpr: parseCompressOpt(codec) });
  try {
    for await (const io of own.ios()) {
      if (io.kind === 'normal') assert.is(io.data!.image.decodes, true);
      await w.write(io);
    }
    await w.close();
  } catch (e) {
    await w.abort();
    throw e;
  } finally {
    await own.close();
  }
  const plain = await IndexedDiffReader.open(bad);
  try {
    for await (const io of plain.ios()) if (io.kind === 'normal') assert.is(io.data!.image.decodes, false);
  } finally {
    await plain.close();
  }
});

U('the vectors\' files of every codec still merge into their own codec', async () => {
  for (const nat of [false, true]) {
    useNativeMerge(nat ? counted : undefined);
    for (const codec of ['gzip', 'snappy', 'lzma', 'lz4', 'zstd', 'none']) {
      const src = vec(`w-cmpr-${codec}.wdiff`), out = join(t.dir, `same-${codec}.wdiff`);
      await mergeWdiffs([src], out, { cmpr: parseCompressOpt(codec) });
      // One input in its own codec: every record passed on as it is, the file the same but its uuid.
      assert.ok(readFileSync(out).subarray(FILE_HEADER).equals(readFileSync(src).subarray(FILE_HEADER)), `${codec}, native ${nat}`);
    }
  }
});

U.run();
