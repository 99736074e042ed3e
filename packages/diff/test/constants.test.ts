// The wdiff constants against reference/walb.md §4.5, and cross-checked against bytes and dumps
// written by walb-tools 1.0.19 (the reference vectors).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_INDEXED_MAX_IO_BLOCKS, MAX_N_RECORDS_IN_WALB_DIFF_PACK, ValueOutOfRangeError,
  WALB_DIFF_FILE_HEADER_SIZE, WALB_DIFF_FLAG_ALLZERO, WALB_DIFF_FLAG_DISCARD, WALB_DIFF_FLAG_EXIST,
  WALB_DIFF_FLAGS_MASK, WALB_DIFF_INDEX_SUPER_SIZE, WALB_DIFF_PACK_FLAG_END, WALB_DIFF_PACK_HEADER_SIZE,
  WALB_DIFF_PACK_MAX_SIZE, WALB_DIFF_PACK_SIZE, WALB_DIFF_RECORD_SIZE, WALB_DIFF_TYPE_INDEXED,
  WALB_DIFF_TYPE_SORTED, WALB_DIFF_VERSION, WALB_INDEXED_DIFF_RECORD_SIZE, WdiffFormatError,
  compressionTypeName, diffRecordKind, isWdiffType,
} from '../src/index.ts';

const VECTORS = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../shared/vectors/walb-tools-1.0.19');

test('values of reference §4.5', () => {
  assert.is(WALB_DIFF_VERSION, 2);
  assert.is(WALB_DIFF_TYPE_SORTED, 0);
  assert.is(WALB_DIFF_TYPE_INDEXED, 1);
  assert.is(WALB_DIFF_FLAG_EXIST, 0x1);
  assert.is(WALB_DIFF_FLAG_ALLZERO, 0x2);
  assert.is(WALB_DIFF_FLAG_DISCARD, 0x4);
  assert.is(WALB_DIFF_FLAGS_MASK, 0x7);
  assert.is(WALB_DIFF_PACK_FLAG_END, 0x1);
  assert.is(WALB_DIFF_PACK_SIZE, 4096);
  assert.is(MAX_N_RECORDS_IN_WALB_DIFF_PACK, 127);
  assert.is(WALB_DIFF_PACK_MAX_SIZE, 32 * 1024 * 1024);
  assert.is(WALB_DIFF_FILE_HEADER_SIZE, 32);
  assert.is(WALB_DIFF_PACK_HEADER_SIZE, 16);
  assert.is(WALB_DIFF_RECORD_SIZE, 32);
  assert.is(WALB_INDEXED_DIFF_RECORD_SIZE, 48);
  assert.is(WALB_DIFF_INDEX_SUPER_SIZE, 24);
  assert.is(DEFAULT_INDEXED_MAX_IO_BLOCKS, 2048);
  // A full pack's records leave 16 zero bytes: one more record would not fit.
  assert.is(WALB_DIFF_PACK_SIZE - (WALB_DIFF_PACK_HEADER_SIZE + MAX_N_RECORDS_IN_WALB_DIFF_PACK * WALB_DIFF_RECORD_SIZE), 16);
});

test('diffRecordKind: the three kinds and every invalid byte', () => {
  assert.is(diffRecordKind(0), 'normal');
  assert.is(diffRecordKind(WALB_DIFF_FLAG_EXIST), 'normal');
  assert.is(diffRecordKind(WALB_DIFF_FLAG_ALLZERO), 'allzero');
  assert.is(diffRecordKind(WALB_DIFF_FLAG_ALLZERO | WALB_DIFF_FLAG_EXIST), 'allzero');
  assert.is(diffRecordKind(WALB_DIFF_FLAG_DISCARD), 'discard');
  assert.is(diffRecordKind(WALB_DIFF_FLAG_DISCARD | WALB_DIFF_FLAG_EXIST), 'discard');
  for (let f = 0; f < 256; f++) {
    const valid = (f & ~7) === 0 && (f & 6) !== 6;
    if (valid) diffRecordKind(f);
    else assert.throws(() => diffRecordKind(f), (e: unknown) => e instanceof ValueOutOfRangeError && e.code === 'ERR_WDIFF_RANGE' && e.field === 'flags');
  }
  for (const bad of [-1, 256, 1.5, Number.NaN]) {
    assert.throws(() => diffRecordKind(bad), (e: unknown) => e instanceof WdiffFormatError);
  }
});

test('isWdiffType', () => {
  assert.ok(isWdiffType(0));
  assert.ok(isWdiffType(1));
  fc.assert(fc.property(fc.integer(), (n) => isWdiffType(n) === (n === 0 || n === 1)));
});

test('file header and type byte of the original\'s sorted and indexed wdiffs', () => {
  for (const [file, type] of [['w-pbs512-mixed.sorted.wdiff', 0], ['w-pbs512-mixed.indexed.wdiff', 1], ['w-chain-merged.wdiff', 0]] as const) {
    const b = readFileSync(join(VECTORS, file));
    assert.is(b.readUInt16LE(4), WALB_DIFF_VERSION, file);
    assert.is(b[6], type, file);
  }
});

// Each codec vector's first pack: the record bytes (compression_type at +13, flags at +12) must map
// through our ids and flags to what the original's wdiff-show printed for the same records.
const CODECS = ['none', 'snappy', 'gzip', 'lzma', 'lz4', 'zstd'] as const;
test('compression ids and record flags agree with wdiff-show of the original', () => {
  for (const codec of CODECS) {
    const b = readFileSync(join(VECTORS, `w-cmpr-${codec}.wdiff`));
    const lines = readFileSync(join(VECTORS, `w-cmpr-${codec}.wdiff.show.txt`), 'utf8')
      .split('\n').filter((l) => l.startsWith('wdiff_sorted_rec:'));
    const pack = WALB_DIFF_FILE_HEADER_SIZE;
    const n = b.readUInt16LE(pack + 4);
    assert.ok(n > 0 && n <= MAX_N_RECORDS_IN_WALB_DIFF_PACK, `${codec}: n_records ${n}`);
    assert.is(b[pack + 6] & WALB_DIFF_PACK_FLAG_END, 0);
    let seenCodec = false;
    for (let i = 0; i < n; i++) {
      const rec = pack + WALB_DIFF_PACK_HEADER_SIZE + i * WALB_DIFF_RECORD_SIZE;
      const cols = lines[i].split('\t');
      assert.is(String(b.readBigUInt64LE(rec)), cols[1], `${codec} rec ${i} address`);
      assert.is(compressionTypeName(b[rec + 13]), cols[3], `${codec} rec ${i} compression`);
      if (cols[3] === codec) seenCodec = true;
      const kind = diffRecordKind(b[rec + 12]);
      const shown = cols[7].trim();
      assert.is(kind, shown === 'Z-' ? 'allzero' : shown === '-D' ? 'discard' : 'normal', `${codec} rec ${i} flags`);
    }
    assert.ok(seenCodec, `${codec}: no record uses the codec`);
  }
});

test.run();
