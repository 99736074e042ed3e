// The writers' synchronous `writeNow`: the same bytes as `write`, and a refusal (nothing done)
// whenever `write` would have to wait or throw.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IndexedDiffWriter, LayoutError, SortedDiffWriter, normalIo, parseCompressOpt, type DiffIo } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const W = suite('writeNow');
const t = tempDir();
process.on('exit', () => t.cleanup());

function ios(): DiffIo[] {
  const out: DiffIo[] = [];
  for (let i = 0; i < 600; i++) {
    const addr = i * 40;
    if (i % 7 === 3) { out.push({ addr, blocks: 3, kind: i % 2 ? 'allzero' : 'discard' }); continue; }
    const b = Buffer.alloc(8 * 512, i % 5 === 0 ? 0x61 : 0);
    if (i % 5 !== 0) for (let k = 0; k < b.length; k++) b[k] = (k * 31 + i * 17) & 0xff;
    out.push(normalIo(addr, b));
  }
  return out;
}

for (const cmpr of ['none', 'snappy', 'zstd']) {
  W(`sorted and indexed, ${cmpr}: writeNow writes the bytes write does`, async () => {
    for (const Writer of [SortedDiffWriter, IndexedDiffWriter]) {
      const a = join(t.dir, `a-${cmpr}-${Writer.name}.wdiff`), b = join(t.dir, `b-${cmpr}-${Writer.name}.wdiff`);
      const wa = await Writer.create(a, { cmpr: parseCompressOpt(cmpr) });
      for (const io of ios()) await wa.write(io);
      await wa.close();
      const wb = await Writer.create(b, { cmpr: parseCompressOpt(cmpr) });
      let now = 0;
      for (const io of ios()) { if (wb.writeNow(io)) now++; else await wb.write(io); }
      await wb.close();
      assert.ok(now > 0, 'writeNow took none of the IOs');
      assert.ok(readFileSync(a).equals(readFileSync(b)), `${Writer.name} ${cmpr}: the files differ`);
    }
  });
}

W('sorted: an IO out of order is refused by writeNow and thrown by write', async () => {
  const w = await SortedDiffWriter.create(join(t.dir, 'order.wdiff'));
  assert.ok(w.writeNow(normalIo(100, Buffer.alloc(512, 1))));
  const back = normalIo(50, Buffer.alloc(512, 2));
  assert.not.ok(w.writeNow(back));
  try { await w.write(back); assert.unreachable('no error'); } catch (e) { assert.instance(e, LayoutError); }
  await w.close();
  assert.not.ok(w.writeNow(normalIo(200, Buffer.alloc(512, 3))), 'a closed writer refuses');
});

W.run();
