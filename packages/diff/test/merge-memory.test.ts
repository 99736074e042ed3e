// A merge of many sorted wdiffs reads them in smaller chunks as their number grows, so its memory
// stays bounded: with 8 MiB chunks for every input, 40 inputs took 1.8 GB.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { linkSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeGeneratedWlog } from '@walbjs/log-format';
import { convertWlogs, mergeWdiffs, readChunkFor } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const M = suite('merge memory');

/** VmHWM of this process in bytes, after resetting it to the current resident set. */
const peak = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const resetPeak = () => writeFileSync('/proc/self/clear_refs', '5');

M('read chunks shrink with the number of inputs, within 256 KiB to 2 MiB', () => {
  assert.is(readChunkFor(1), 2 << 20);
  assert.is(readChunkFor(32), 2 << 20);
  assert.is(readChunkFor(33), 1 << 20);
  assert.is(readChunkFor(64), 1 << 20);
  assert.is(readChunkFor(65), 512 << 10);
  assert.is(readChunkFor(10_000), 256 << 10);
});

M('merging 48 sorted wdiffs of 24 MiB: peak memory grows by far less than their read buffers would at 8 MiB each', async () => {
  const t = tempDir();
  try {
    const wlog = join(t.dir, 'w.wlog');
    await writeGeneratedWlog(wlog, { seed: 31, pbs: 4096, totalBytes: 24 << 20, deviceBytes: 64 << 20, randomData: true, discard: false, allZero: false });
    const one = join(t.dir, 'one.wdiff');
    await convertWlogs([wlog], one);
    const inputs = Array.from({ length: 48 }, (_, i) => { const p = join(t.dir, `d${i}.wdiff`); linkSync(one, p); return p; });
    resetPeak();
    const before = peak();
    await mergeWdiffs(inputs, join(t.dir, 'merged.wdiff'));
    const grew = peak() - before;
    // 48 inputs at two or more 8 MiB chunks each would be 768 MiB and more.
    assert.ok(grew < 500 << 20, `peak RSS grew by ${(grew / 2 ** 20).toFixed(0)} MiB`);
    assert.ok(readFileSync(join(t.dir, 'merged.wdiff')).length > 0);
  } finally { t.cleanup(); }
});

M.run();
