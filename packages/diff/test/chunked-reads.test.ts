// The sorted reader over a file read in small chunks, so that records and pack headers straddle
// two, three or more of them: in every way it can hold its memory (fresh chunks, a ring of reused
// ones, recycled ones released early, even while a read waits for its next chunk), it must hand
// out exactly the records and bytes of the file as read whole.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SortedDiffReader, SortedDiffWriter, normalIo, parseCompressOpt, type DiffIo } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const KiB = 1024;
/** The smallest chunk a file reader takes. */
const CHUNK = 64 * KiB;

/** Bytes that differ from record to record and from block to block. */
function bytesOf(seed: number, blocks: number): Buffer {
  const b = Buffer.alloc(blocks * 512);
  let x = seed | 1;
  for (let i = 0; i < b.length; i += 4) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b.writeInt32LE(x, i); }
  return b;
}

/** Records of 1 LB to 5 chunks, apart, some all zero or discarded. */
const layout = fc.array(fc.record({ gap: fc.nat({ max: 64 }), blocks: fc.integer({ min: 1, max: 5 * CHUNK / 512 }), kind: fc.constantFrom('normal', 'normal', 'normal', 'allzero', 'discard') }), { minLength: 1, maxLength: 40 });

type Mode = 'fresh' | 'ring' | 'recycled' | 'recycled, released while reading';

test('records across chunk boundaries come out whole, whatever holds the memory', async () => {
  const t = tempDir();
  let seq = 0;
  try {
    await fc.assert(fc.asyncProperty(layout, fc.boolean(), fc.constantFrom<Mode>('fresh', 'ring', 'recycled', 'recycled, released while reading'), async (recs, snappy, mode) => {
      const path = join(t.dir, `d${seq++}.wdiff`);
      const w = await SortedDiffWriter.create(path, { cmpr: parseCompressOpt(snappy ? 'snappy' : 'none') });
      let addr = 0;
      for (const [k, r] of recs.entries()) {
        addr += r.gap;
        const io: DiffIo = r.kind === 'normal' ? normalIo(addr, bytesOf(k + 1, r.blocks)) : { addr, blocks: r.blocks, kind: r.kind as 'allzero' | 'discard' };
        await w.write(io);
        addr += r.blocks;
      }
      await w.close();

      const want: Array<{ addr: number; end: number; kind: string; stored: Buffer }> = [];
      for await (const e of await SortedDiffReader.open(readFileSync(path))) want.push({ addr: e.io.addr, end: e.io.addr + e.io.blocks, kind: e.io.kind, stored: Buffer.from(e.stored) });

      const r = await SortedDiffReader.open(path, {
        chunkBytes: CHUNK, reuseBuffers: mode === 'ring', recycle: mode.startsWith('recycled'),
      });
      let k = 0;
      // Released while reading: every record checked so far is given back from a timer, which can
      // fire while the reader waits for a chunk in the middle of the next record (as a merge's
      // writer releases what its written packs held).
      const early = mode === 'recycled, released while reading';
      const timer = early ? setInterval(() => { if (k > 0) r.releaseBelow(want[k - 1].end); }, 0) : undefined;
      try {
        for (let e = await r.next(); e; e = await r.next()) {
          const x = want[k];
          assert.ok(x, `record ${k} beyond the ${want.length} of the file`);
          assert.is(e.io.addr, x.addr);
          assert.is(e.io.kind, x.kind);
          assert.ok(e.stored.equals(x.stored), `${mode}: record ${k} at LB ${x.addr} (${x.stored.byteLength} bytes)`);
          k++;
          // A caller done with each record before the next one, as apply and merge are.
          if (mode === 'recycled') r.releaseBelow(e.io.addr + e.io.blocks);
        }
      } finally {
        clearInterval(timer);
        await r.close();
      }
      assert.is(k, want.length);
    }), { numRuns: 150 });
  } finally {
    t.cleanup();
  }
});

test.run();
