// Interoperability with the original walb-tools binaries, when WALB_TOOLS_BIN names a folder that
// holds them (wlog-show, wldev-info, wlog-cat). Without it the tests are skipped, not passed.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  LogDevice, LogStatistics, WlogReader, catLdev, formatLdev, formatLogStat, formatLogpack, formatSuperSector,
  restoreWlog, writeGeneratedWlog,
} from '../src/index.ts';
import { tempDir } from './helpers.ts';

const BIN = process.env.WALB_TOOLS_BIN;
const have = (tool: string) => BIN !== undefined && existsSync(join(BIN, tool));
const tool = (name: string, args: string[]) => execFileSync(join(BIN!, name), args, { encoding: 'utf8', maxBuffer: 1 << 28 });
const I = suite('walb-tools interop');
const t = tempDir();
process.on('exit', () => t.cleanup());

async function ours(path: string) {
  const r = await WlogReader.open(path);
  const st = new LogStatistics(r.header.beginLsid, r.header.endLsid, r.pbs);
  const packs: string[] = [];
  for await (const p of r) { st.update(p.header); packs.push(formatLogpack(p.header)); }
  return { stat: formatLogStat(st.value), packs: packs.join('\n') };
}

(have('wlog-show') ? I : I.skip)('wlog-show reads the logs we generate: same packs, same statistics', async () => {
  const cases = [
    { seed: 1, pbs: 512 }, { seed: 2, pbs: 4096 }, { seed: 3, pbs: 512, discard: false, padding: false },
    { seed: 4, pbs: 4096, beginLsid: 123456789n, maxIoBytes: 1 << 20, totalBytes: 8 << 20 }, { seed: 5, pbs: 512, randomData: false },
  ];
  for (const c of cases) {
    const p = join(t.dir, `g${c.seed}.wlog`);
    await writeGeneratedWlog(p, { totalBytes: 2 << 20, deviceBytes: 64 << 20, ...c });
    const o = await ours(p);
    assert.is(tool('wlog-show', ['-stat', p]).trimEnd(), o.stat, `stat seed ${c.seed}`);
    assert.is(tool('wlog-show', ['-pack', p]).trimEnd(), o.packs, `packs seed ${c.seed}`);
    assert.not.match(tool('wlog-show', ['-validate', '-pack', p]), /NG/);
  }
});

(have('wldev-info') && have('wlog-cat') ? I : I.skip)('wldev-info and wlog-cat read log devices we format and fill', async () => {
  for (const pbs of [512, 4096]) {
    const l = join(t.dir, `ldev${pbs}`);
    writeFileSync(l, ''); truncateSync(l, 16 << 20);
    await formatLdev(l, 1n << 21n, { name: `walbjs${pbs}`, pbs });
    const d = await LogDevice.open(l);
    const info = formatSuperSector(d.superSector);
    await d.close();
    if (pbs === 512) assert.is(tool('wldev-info', [l]), info);
    const w = join(t.dir, `src${pbs}.wlog`);
    await writeGeneratedWlog(w, { seed: pbs, pbs, totalBytes: 6 << 20, deviceBytes: 1 << 30 });
    const s = (await LogDevice.open(l)).superSector;
    await restoreWlog(l, w, { lsidDiff: s.ringBufferSize - 77n });
    if (pbs === 512) {
      const theirs = join(t.dir, `theirs${pbs}.wlog`), mine = join(t.dir, `mine${pbs}.wlog`);
      tool('wlog-cat', ['-noaio', '-o', theirs, l]);
      await catLdev(l, mine);
      assert.ok(readFileSync(theirs).equals(readFileSync(mine)), 'wlog-cat output = ours');
    }
  }
});

I.run();
