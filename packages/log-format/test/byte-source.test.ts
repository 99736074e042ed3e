import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChunkReader, TruncatedError } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const MiB = 1 << 20;

/** Bytes that differ at every offset modulo a large odd number, so a stale buffer shows. */
function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 13)) >>> 0, i);
  return b;
}

// 3 × 8 MiB chunks and a partial fourth (14 and a part with the default 2 MiB): reused buffers go
// round more than once.
const SIZE = 29 * MiB + 1234;
const SIZE4 = SIZE - (SIZE % 4);

/** Run `fn` on a temporary file holding `bytes`, removed afterwards. */
async function withFile(bytes: Buffer, fn: (path: string) => Promise<void>): Promise<void> {
  const t = tempDir();
  try {
    const p = join(t.dir, 'f.bin');
    writeFileSync(p, bytes);
    await fn(p);
  } finally { t.cleanup(); }
}

test('reused buffers: every read returns the file\'s bytes, views stay valid for a chunk of reading on', async () => {
  const want = pattern(SIZE4);
  await withFile(want, async (p) => {
    // The default chunk (2 MiB) and 8 MiB; reads across two, three and more chunks among them.
    for (const [chunkBytes, chunk] of [[undefined, 2 * MiB], [8 * MiB, 8 * MiB]] as const) {
      for (const reuseBuffers of [false, true]) {
        const r = new ChunkReader(p, { reuseBuffers, chunkBytes });
        // Odd sizes: reads inside a chunk (views) and across chunks (copies).
        const sizes = [4096, 5000, MiB + 3, 7, 3 * MiB - 1, 17 * MiB + 5];
        const held: Array<{ at: number; view: Buffer; readUntil: number }> = [];
        let at = 0;
        for (let k = 0; at < SIZE4; k++) {
          const n = Math.min(sizes[k % sizes.length], SIZE4 - at);
          const b = await r.readExact(n);
          assert.ok(b.equals(want.subarray(at, at + n)), `read of ${n} at ${at} (chunk ${chunk}, reuse ${reuseBuffers})`);
          held.push({ at, view: b, readUntil: at + n + chunk });
          at += n;
          // Every view still inside its guarantee (or any view without reuse) holds its bytes.
          for (const h of held) {
            if (reuseBuffers && at > h.readUntil) continue;
            assert.ok(h.view.equals(want.subarray(h.at, h.at + h.view.byteLength)), `view at ${h.at} changed after reading to ${at} (chunk ${chunk})`);
          }
        }
        assert.is(await r.read(1), null);
        await r.close();
      }
    }
  });
});

test('pooled chunks: a read across chunks is whole even when the chunk before the current one is read into again', async () => {
  // The most a caller may give back: a merge's writer releases IOs when their pack is written,
  // which can happen while a reader waits for its next chunk in the middle of a long read. This
  // pool hands out again the buffer taken two reads before (the chunk before the current one).
  const want = pattern(SIZE4);
  await withFile(want, async (p) => {
    const taken: Buffer[] = [];
    const pool = { take: (bytes: number) => { const b = taken.length >= 2 ? taken[taken.length - 2] : Buffer.allocUnsafeSlow(bytes); taken.push(b); return b; } };
    const r = new ChunkReader(p, { chunkBytes: MiB, pool });
    let at = 0;
    for (const n of [MiB - 100, 3 * MiB + 7, 100, 5 * MiB - 3, 2 * MiB + 1]) {
      const b = await r.readExact(n);
      assert.ok(b.equals(want.subarray(at, at + n)), `read of ${n} at ${at}`);
      at += n;
    }
    await r.close();
  });
});

test('reused buffers: a truncated read is still a TruncatedError', async () => {
  await withFile(pattern(9 * MiB), async (p) => {
    const r = new ChunkReader(p, { reuseBuffers: true });
    await r.readExact(5 * MiB);
    try {
      await r.readExact(5 * MiB, 'record data');
      assert.unreachable('read past the end');
    } catch (e) {
      assert.instance(e, TruncatedError);
      assert.match((e as Error).message, /record data/);
    }
    await r.close();
  });
});

test('readNow takes bytes only from the chunk at hand, and consumes nothing when it cannot', async () => {
  const want = pattern(SIZE4);
  await withFile(want, async (p) => {
    const r = new ChunkReader(p, { chunkBytes: MiB });
    // Nothing read yet: no chunk at hand.
    assert.is(r.readNow(16), undefined);
    assert.is(r.offset, 0);
    let at = 0, now = 0, waited = 0;
    for (let k = 0; at < SIZE4; k++) {
      const n = Math.min([4096, 70000, 513][k % 3], SIZE4 - at);
      const before = r.offset;
      let b = r.readNow(n);
      if (b) now++;
      else {
        // Refused: nothing was consumed, and read gives the same bytes.
        assert.is(r.offset, before);
        b = await r.readExact(n);
        waited++;
      }
      assert.ok(b.equals(want.subarray(at, at + n)), `${n} bytes at ${at}`);
      at += n;
      assert.is(r.offset, at);
    }
    assert.ok(now > 10 * waited, `${now} reads now, ${waited} waited`);
    assert.is(r.readNow(1), undefined);
    assert.is(await r.read(1), null);
    await r.close();
  });
});

test.run();
