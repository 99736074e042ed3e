// The decompressed images kept for IOs that share one are bounded in bytes, not only in entries:
// reading large compressed records does not leave them all in memory once the caller let go.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { SortedDiffWriter, ioBytes, normalIo, openWdiff, parseCompressOpt } from '../src/index.ts';
import { tempDir } from './helpers.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const C = suite('decompressed image cache');
const t = tempDir();
C.after(() => t.cleanup());

const MiB = 1 << 20;

C('eight 16 MiB compressed records read one after another: at most about one stays in memory', async () => {
  const path = join(t.dir, 'big-records.wdiff');
  const w = await SortedDiffWriter.create(path, { cmpr: parseCompressOpt('snappy') });
  for (let i = 0; i < 8; i++) {
    // Compressible but not all zero (that would be an ALLZERO record with nothing to decompress).
    const b = Buffer.alloc(16 * MiB, `record ${i} `);
    await w.write(normalIo(i * 32768, b));
  }
  await w.close();

  gc();
  const before = process.memoryUsage().arrayBuffers;
  const d = await openWdiff(path);
  let n = 0;
  for await (const io of d.ios()) {
    const raw = await ioBytes(io);
    assert.is(raw!.byteLength, 16 * MiB);
    assert.is(raw![0], 'r'.charCodeAt(0));
    n++;
  }
  await d.close();
  assert.is(n, 8);
  // Eight entries would keep 128 MiB; the byte bound keeps the last image (16 MiB). Memory let go
  // is given back by a sweeper that may run after gc() returns: look again for a while.
  let kept = Infinity;
  for (let i = 0; i < 50 && kept >= 40 * MiB; i++) {
    gc();
    await new Promise((res) => setTimeout(res, 20));
    kept = process.memoryUsage().arrayBuffers - before;
  }
  assert.ok(kept < 40 * MiB, `kept ${(kept / MiB).toFixed(1)} MiB`);
});

C.run();
