// The virtual full image's stream over a sparse base with reused buffers: a chunk in a hole of the
// base zeroes only what the IOs laid over that buffer before (the rest of it is zeros already),
// and reads as zeros whatever the buffer held, for every mix of data, all-zero and discard IOs.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadNative } from '@walbjs/native-walb';
import { SortedDiffWriter, VirtualFullImage, normalIo, parseCompressOpt, useHoleSeek } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const SEED = Number(process.env.WALB_FUZZ_SEED ?? 0);
const t = tempDir();
process.on('exit', () => t.cleanup());
const V = suite('virtual full image over holes');
V.before(() => useHoleSeek(loadNative().seekData));
V.after(() => useHoleSeek(undefined));

const LB = 512;
const SIZE = 6 << 20;

V('chunks in holes after chunks with IOs read as zeros; the image is the model', async () => {
  await fc.assert(fc.asyncProperty(
    fc.array(fc.record({ at: fc.integer({ min: 0, max: SIZE / LB - 1 }), blocks: fc.integer({ min: 1, max: 600 }), kind: fc.constantFrom('normal', 'normal', 'allzero', 'discard') }), { maxLength: 12 }),
    fc.boolean(), fc.constantFrom(1 << 20, 3 << 19),
    async (specs, dataAtEnd, chunk) => {
      // A sparse base (all hole, or with a stretch of data near its end) and a model of the image.
      const base = join(t.dir, 'base.img');
      writeFileSync(base, '');
      truncateSync(base, SIZE);
      const model = Buffer.alloc(SIZE);
      if (dataAtEnd) {
        const d = Buffer.alloc(1 << 20, 0x77);
        const { openSync, writeSync, closeSync } = await import('node:fs');
        const fd = openSync(base, 'r+');
        writeSync(fd, d, 0, d.length, SIZE - (1 << 20));
        closeSync(fd);
        d.copy(model, SIZE - (1 << 20));
      }
      // The IOs, made ascending and apart, each filled with its own byte.
      const ios = [...specs].sort((x, y) => x.at - y.at);
      const diff = join(t.dir, 'd.wdiff');
      const w = await SortedDiffWriter.create(diff, { cmpr: parseCompressOpt('none') });
      let end = 0;
      for (const [k, s] of ios.entries()) {
        const addr = Math.max(s.at, end);
        const blocks = Math.min(s.blocks, SIZE / LB - addr);
        if (blocks <= 0) break;
        end = addr + blocks;
        if (s.kind === 'normal') {
          const b = Buffer.alloc(blocks * LB, 1 + k);
          await w.write(normalIo(addr, b));
          b.copy(model, addr * LB);
        } else {
          await w.write({ addr, blocks, kind: s.kind });
          model.fill(0, addr * LB, (addr + blocks) * LB);
        }
      }
      await w.close();
      const v = await VirtualFullImage.open(base, [diff]);
      const parts: Buffer[] = [];
      for await (const b of v.stream(chunk, { reuseBuffers: true })) parts.push(Buffer.from(b));
      await v.close();
      assert.ok(Buffer.concat(parts).equals(model));
    }), { numRuns: 40, seed: SEED + 3 });
});

V.run();
