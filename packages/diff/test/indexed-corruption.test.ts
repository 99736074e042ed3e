// An indexed wdiff damaged where its index holds 64-bit offsets: a flipped bit is a checksum error
// at the offset of the damaged structure, whatever the field; the same value under a correct
// checksum (a crafted file) is a range error stating the number and its unit; a file cut short is
// said to be truncated where its size shows it, and is never taken for a range error.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checksum } from '@walbjs/log-format';
import {
  ChecksumError, IndexedDiffReader, IndexedDiffWriter, TruncatedError, ValueOutOfRangeError, WALB_DIFF_INDEX_SUPER_SIZE,
  WALB_INDEXED_DIFF_RECORD_SIZE, WdiffFormatError, normalIo,
} from '../src/index.ts';
import { tempDir } from './helpers.ts';

const t = tempDir();
process.on('exit', () => t.cleanup());

/** A valid indexed wdiff: a few normal IOs (one of 3 LB, so the data needs padding) and an ALLZERO one. */
async function validFile(): Promise<Buffer> {
  const p = join(t.dir, 'valid.wdiff');
  const w = await IndexedDiffWriter.create(p);
  await w.write(normalIo(0, Buffer.alloc(8 * 512, 0x5a)));
  await w.write(normalIo(16, Buffer.alloc(3 * 512, 0xa5)));
  await w.write({ addr: 32, blocks: 8, kind: 'allzero' });
  await w.close();
  return readFileSync(p);
}

const src = await validFile();
const superOff = src.length - WALB_DIFF_INDEX_SUPER_SIZE;
const indexOff = Number(src.readBigUInt64LE(superOff));
let seq = 0;

/** Open `bytes` as a file and return what the reader throws (nothing: a failure of the test). */
async function openError(bytes: Buffer): Promise<WdiffFormatError> {
  const p = join(t.dir, `m${seq++}.wdiff`);
  writeFileSync(p, bytes);
  try {
    const r = await IndexedDiffReader.open(p);
    await r.close();
  } catch (e) {
    assert.instance(e, WdiffFormatError, String(e));
    return e as WdiffFormatError;
  }
  return assert.unreachable('the damaged file was taken') as never;
}

/** `bytes` with the checksum at `sumAt` of the `size`-byte structure at `at` made right again. */
function resummed(bytes: Buffer, at: number, size: number, sumAt: number): Buffer {
  bytes.writeUInt32LE(0, at + sumAt);
  bytes.writeUInt32LE(checksum(bytes.subarray(at, at + size), 0), at + sumAt);
  return bytes;
}

/** The 64-bit fields, where their structure is and how a range error must state their unit. */
const FIELDS = [
  { field: 'io_address', struct: indexOff, size: WALB_INDEXED_DIFF_RECORD_SIZE, sumAt: 44, at: 0, unit: 'LB' },
  { field: 'data_offset', struct: indexOff, size: WALB_INDEXED_DIFF_RECORD_SIZE, sumAt: 44, at: 16, unit: 'bytes' },
  { field: 'index_offset', struct: superOff, size: WALB_DIFF_INDEX_SUPER_SIZE, sumAt: 20, at: 0, unit: 'bytes' },
];

const S = suite('indexed wdiff with a damaged 64-bit field');

S('the file made for these tests opens', async () => {
  assert.ok(src.length % 8 === 0 && indexOff % 8 === 0, 'padded to 8 bytes');
  const r = await IndexedDiffReader.open(join(t.dir, 'valid.wdiff'));
  assert.ok(r.size >= 3);
  await r.close();
});

for (const f of FIELDS) {
  for (const bit of [0, 6, 7]) {
    S(`${f.field}: bit ${bit} of its high byte flipped is a checksum error at the structure's offset`, async () => {
      const b = Buffer.from(src);
      b[f.struct + f.at + 7] ^= 1 << bit;
      const e = await openError(b);
      assert.instance(e, ChecksumError, e.message);
      assert.is(e.code, 'ERR_WDIFF_CHECKSUM');
      assert.is(e.offset, f.struct);
      assert.match(e.message, `offset ${f.struct}`);
    });
  }

  S(`${f.field}: the same value under a correct checksum is a range error in plain decimal ${f.unit}`, async () => {
    const b = Buffer.from(src);
    b[f.struct + f.at + 7] ^= 0x40;
    const value = b.readBigUInt64LE(f.struct + f.at);
    const e = await openError(resummed(b, f.struct, f.size, f.sumAt));
    assert.instance(e, ValueOutOfRangeError, e.message);
    assert.is(e.code, 'ERR_WDIFF_RANGE');
    assert.is((e as ValueOutOfRangeError).field, f.field);
    assert.is((e as ValueOutOfRangeError).value, value);
    assert.match(e.message, `${f.field}: ${value} `);
    assert.not.match(e.message, /\d+n\b/);
    assert.match(e.message, new RegExp(`\\b${f.unit}\\b`));
    assert.not.match(e.message, f.unit === 'LB' ? /\bbytes\b/ : /\bLB\b/);
    assert.is(e.offset, f.struct);
  });
}

S('a file cut to a length no writer leaves is said to be truncated', async () => {
  // Cuts inside the super, the index records, the padding and the images.
  for (const cut of [1, 3, 13, 23, 25, 29, 24 + 48 + 5, src.length - indexOff + 1, src.length - 40]) {
    const n = src.length - cut;
    if (n % 8 === 0) continue;
    const e = await openError(src.subarray(0, n));
    assert.instance(e, TruncatedError, `${cut} bytes cut: ${e.message}`);
    assert.is(e.code, 'ERR_WDIFF_TRUNCATED');
    assert.match(e.message, /truncated/);
    assert.match(e.message, /index/);
  }
});

S('a file cut to a multiple of 8 bytes is refused as damaged, never as out of range', async () => {
  for (let cut = 8; cut < src.length - 64; cut += 8) {
    const e = await openError(src.subarray(0, src.length - cut));
    assert.is.not(e.code, 'ERR_WDIFF_RANGE', `${cut} bytes cut: ${e.message}`);
    assert.not.match(e.message, /\d+n\b/);
  }
});

S.run();
