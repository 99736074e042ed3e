// Listing a sorted wdiff by its pack headers alone (`openSortedRecords`) gives what the streaming
// reader gives, record for record and offset for offset, and refuses what it refuses.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { checksum } from '@walbjs/log-format';
import { ChecksumError, LayoutError, SortedDiffReader, TruncatedError, UnsupportedVersionError, openSortedRecords } from '../src/index.ts';
import { manifest, tempDir, vec } from './helpers.ts';

const S = suite('sorted records by pack headers');
const t = tempDir();
S.after(() => t.cleanup());

const sortedVectors = Object.keys(manifest.files).filter((f) => f.endsWith('.wdiff') && readFileSync(vec(f))[6] === 0);

async function streamed(path: string): Promise<Array<{ record: unknown; dataOffset: number }>> {
  const out: Array<{ record: unknown; dataOffset: number }> = [];
  for await (const e of await SortedDiffReader.open(path)) out.push({ record: e.record, dataOffset: e.dataOffset });
  return out;
}

async function listed(path: string): Promise<Array<{ record: unknown; dataOffset: number }>> {
  const out: Array<{ record: unknown; dataOffset: number }> = [];
  for await (const e of (await openSortedRecords(path)).records) out.push({ record: e.record, dataOffset: e.dataOffset });
  return out;
}

async function rejects(path: string): Promise<unknown> {
  try {
    await listed(path);
  } catch (e) {
    return e;
  }
  throw new Error(`${path} was listed`);
}

S('every sorted vector: the same records at the same offsets as the streaming reader', async () => {
  assert.ok(sortedVectors.length >= 5, `sorted vectors: ${sortedVectors.length}`);
  for (const f of sortedVectors) {
    const got = await listed(vec(f));
    assert.ok(got.length > 0, f);
    assert.equal(got, await streamed(vec(f)), f);
    const { header, size } = await openSortedRecords(vec(f));
    assert.is(size, readFileSync(vec(f)).byteLength);
    assert.is(header.type, 0);
  }
});

S('refused as the streaming reader refuses: indexed, cut data, a bad pack, records out of order', async () => {
  const indexed = Object.keys(manifest.files).find((f) => f.endsWith('.wdiff') && readFileSync(vec(f))[6] === 1)!;
  assert.instance(await rejects(vec(indexed)), UnsupportedVersionError);

  const src = readFileSync(vec(sortedVectors[0]));
  const p = join(t.dir, 'bad.wdiff');
  // Cut inside the first pack's data: the pack's data would end beyond the file.
  const firstPack = 32;
  const total = src.readUInt32LE(firstPack + 8);
  assert.ok(total > 0);
  writeFileSync(p, src.subarray(0, firstPack + 4096 + total - 1));
  const cut = await rejects(p);
  assert.instance(cut, TruncatedError);
  assert.is((cut as TruncatedError).offset, firstPack + 4096);
  assert.is((cut as TruncatedError).source, p);

  const flipped = Buffer.from(src);
  flipped[firstPack + 100] ^= 4;
  writeFileSync(p, flipped);
  assert.instance(await rejects(p), ChecksumError);

  // The first two records swap addresses, with the pack checksum made right again.
  const swapped = Buffer.from(src);
  const r0 = firstPack + 16, r1 = r0 + 32;
  const a0 = swapped.readBigUInt64LE(r0), a1 = swapped.readBigUInt64LE(r1);
  assert.ok(a0 < a1);
  swapped.writeBigUInt64LE(a1, r0);
  swapped.writeBigUInt64LE(a0, r1);
  swapped.writeUInt32LE(0, firstPack);
  swapped.writeUInt32LE(checksum(swapped.subarray(firstPack, firstPack + 4096), 0), firstPack);
  writeFileSync(p, swapped);
  const order = await rejects(p);
  assert.instance(order, LayoutError);
  assert.match((order as Error).message, /overlaps or precedes/);
  try {
    await streamed(p);
    assert.unreachable('the streaming reader took it');
  } catch (e) {
    assert.instance(e, LayoutError);
    assert.is((e as LayoutError).offset, (order as LayoutError).offset);
  }
});

function canUseLoop(): boolean {
  if (process.getuid?.() !== 0) return false;
  try { execFileSync('losetup', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

(canUseLoop() ? S : S.skip)('a wdiff on a block device (a loop device): listed by the device\'s size, not its inode\'s', async () => {
  // A device holds whole sectors: the vector padded with zeros after its END pack.
  const src = readFileSync(vec(sortedVectors[0]));
  const backing = join(t.dir, 'on-device.img');
  writeFileSync(backing, Buffer.concat([src, Buffer.alloc(512 - (src.byteLength % 512))]));
  const dev = execFileSync('losetup', ['--find', '--show', backing], { encoding: 'utf8' }).trim();
  try {
    assert.equal(await listed(dev), await streamed(vec(sortedVectors[0])));
  } finally {
    execFileSync('losetup', ['-d', dev]);
  }
});

S('a pipe is refused with a clear error, not read at offsets', async () => {
  const fifo = join(t.dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  try {
    await openSortedRecords(fifo);
    assert.unreachable('a pipe was opened');
  } catch (e) {
    assert.is((e as NodeJS.ErrnoException).code, 'ENOTBLK');
    assert.match((e as Error).message, /neither a regular file nor a block device/);
  }
});

S('the streaming reader: errors past the header name the input given by source, for bytes and streams', async () => {
  const src = readFileSync(vec(sortedVectors[0]));
  const firstPack = 32;
  const flipped = Buffer.from(src);
  flipped[firstPack + 100] ^= 4;
  for (const bytes of [src.subarray(0, src.length - 10), src.subarray(0, firstPack + 4096 + 100), flipped]) {
    for (const input of [bytes, Readable.from([bytes])]) {
      let err: (Error & { source?: string }) | undefined;
      try { for await (const _ of await SortedDiffReader.open(input, { source: 'mine.wdiff' })) { /* read on */ } } catch (e) { err = e as Error; }
      assert.ok(err, 'read through');
      assert.is(err!.source, 'mine.wdiff', err!.message);
      assert.match(err!.message, /\(at mine\.wdiff, offset \d+\)$/);
    }
  }
});

S.run();
