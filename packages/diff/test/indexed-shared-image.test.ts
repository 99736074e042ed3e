// Index records that share a stored image (same offset, size, codec and original size) must also
// agree on its checksum: a record that points at another's image but claims another io_checksum
// (its own rec_checksum right) is refused by every reader before apply writes a byte, with the
// addon's quick check and copy by pieces and without them.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadNative } from '@walbjs/native-walb';
import {
  ChecksumError, IndexedDiffReader, WALB_INDEXED_DIFF_RECORD_SIZE, applyWdiffs, encodeIndexedDiffRecord, mergeWdiffs,
  recordKind, sameStoredImage, useCopyPieces, useExtentSums, verifyWdiffs,
} from '../src/index.ts';
import { makeImage, sha256File, tempDir, vec } from './helpers.ts';

const t = tempDir();
process.on('exit', () => t.cleanup());
const S = suite('indexed records sharing an image');
const INDEX_SUPER_BYTES = 24;

/** A copy of indexed vector `name` where a record sharing its neighbour's image claims another checksum; undefined when none shares. */
async function craft(name: string): Promise<string | undefined> {
  const r = await IndexedDiffReader.open(vec(name));
  let k = -1;
  try {
    for (let i = Math.floor(r.size / 2); i + 1 < r.size; i++) {
      const a = r.record(i), b = r.record(i + 1);
      if (recordKind(a.flags) === 'normal' && recordKind(b.flags) === 'normal' && sameStoredImage(a, b)) { k = i + 1; break; }
    }
    if (k < 0) return undefined;
    const bytes = readFileSync(vec(name));
    const rec = { ...r.record(k) };
    rec.ioChecksum = (rec.ioChecksum ^ 0x0100_0000) >>> 0;
    const at = bytes.length - INDEX_SUPER_BYTES - (r.size - k) * WALB_INDEXED_DIFF_RECORD_SIZE;
    encodeIndexedDiffRecord(rec, bytes, at);
    const out = join(t.dir, `shared-${name}`);
    writeFileSync(out, bytes);
    return out;
  } finally {
    await r.close();
  }
}

S('apply, verify and merge refuse the record, and the image is unchanged', async () => {
  const native = (() => { try { return loadNative(); } catch { return undefined; } })();
  let crafted = 0;
  for (const name of ['w-pbs4096-rand.indexed.wdiff', 'w-pbs512-mixed.indexed.wdiff', 'w-pbs512-rand-nodiscard.indexed.wdiff']) {
    if (!existsSync(vec(name))) continue;
    const bad = await craft(name);
    if (!bad) continue;
    crafted++;
    for (const quick of native ? [true, false] : [false]) {
      useExtentSums(quick ? native!.sumExtents : undefined);
      useCopyPieces(quick ? native!.copyPieces : undefined);
      try {
        const img = makeImage(t.dir, 'target.img', 64 << 20, 0x55);
        const before = sha256File(img);
        try { await applyWdiffs(img, [bad]); assert.unreachable('applied'); } catch (e) { assert.instance(e, ChecksumError, `${name}, quick=${quick}: ${e}`); }
        assert.is(sha256File(img), before, `${name}, quick=${quick}: the image changed`);
        try { await verifyWdiffs([bad]); assert.unreachable('verified'); } catch (e) { assert.instance(e, ChecksumError); }
      } finally {
        useExtentSums(undefined);
        useCopyPieces(undefined);
      }
    }
    const out = join(t.dir, 'merged.wdiff');
    try { await mergeWdiffs([bad], out); assert.unreachable('merged'); } catch (e) { assert.instance(e, ChecksumError); }
    assert.not.ok(existsSync(out));
  }
  assert.ok(crafted > 0, 'no vector has records sharing an image');
});

S.run();
