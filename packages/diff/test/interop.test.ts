// Interoperability with the original walb-tools binaries, when WALB_TOOLS_BIN names a folder that
// holds them (wlog-to-wdiff, wdiff-show, wdiff-redo, wdiff-merge, virt-full-cat): the original
// reads and applies the diffs we write, we apply the diffs it writes, and both give the same
// images. Without the binaries the tests are skipped, not passed.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeGeneratedWlog } from '@walbjs/log-format';
import { loadNative } from '@walbjs/native-walb';
import { VirtualFullImage, applyWdiffs, convertWlogs, mergeWdiffs, parseCompressOpt, useNativeMerge } from '../src/index.ts';
import { makeImage, sha256File, tempDir } from './helpers.ts';

const BIN = process.env.WALB_TOOLS_BIN;
const have = (...tools: string[]) => BIN !== undefined && tools.every((x) => existsSync(join(BIN, x)));
const tool = (name: string, args: string[]) => execFileSync(join(BIN!, name), args, { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'] });
const I = suite('walb-tools interop');
const t = tempDir();
process.on('exit', () => t.cleanup());
const DEV = 64 << 20;

async function logs(n: number, seed: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = join(t.dir, `l${seed}-${i}.wlog`);
    await writeGeneratedWlog(p, { seed: seed * 100 + i, pbs: i % 2 ? 4096 : 512, totalBytes: 3 << 20, deviceBytes: DEV, maxDiscardBytes: 1 << 20, maxIoBytes: 256 << 10 });
    out.push(p);
  }
  return out;
}

(have('wdiff-redo', 'wdiff-show') ? I : I.skip)('wdiff-redo applies our diffs (sorted and indexed, every codec) to the image we get', async () => {
  const [w] = await logs(1, 1);
  for (const cmpr of ['none', 'snappy', 'gzip', 'lzma', 'lz4', 'zstd']) {
    for (const indexed of [false, true]) {
      const d = join(t.dir, `ours-${cmpr}-${indexed}.wdiff`);
      await convertWlogs([w], d, { indexed, cmpr: parseCompressOpt(cmpr) });
      tool('wdiff-show', ['-csum', '-norec', d]);
      for (const [flag, discard] of [[[], 'ignore'], [['-z'], 'zero']] as const) {
        const theirs = makeImage(t.dir, 'theirs.img', DEV, 0x55), mine = makeImage(t.dir, 'mine.img', DEV, 0x55);
        tool('wdiff-redo', [...flag, '-i', d, theirs]);
        await applyWdiffs(mine, [d], { discard });
        assert.is(sha256File(mine), sha256File(theirs), `${cmpr} indexed=${indexed} discard=${discard}`);
      }
    }
  }
});

(have('wlog-to-wdiff', 'wdiff-redo') ? I : I.skip)('we apply the diffs wlog-to-wdiff writes, to the image wdiff-redo gets', async () => {
  for (const w of await logs(2, 2)) {
    for (const indexed of [false, true]) {
      const d = join(t.dir, `theirs-${indexed}.wdiff`);
      tool('wlog-to-wdiff', ['-i', w, '-o', d, ...(indexed ? ['-indexed'] : [])]);
      const theirs = makeImage(t.dir, 'a.img', DEV), mine = makeImage(t.dir, 'b.img', DEV);
      tool('wdiff-redo', ['-i', d, theirs]);
      await applyWdiffs(mine, [d]);
      assert.is(sha256File(mine), sha256File(theirs));
      const ours = join(t.dir, `ours-${indexed}.wdiff`);
      await convertWlogs([w], ours, { indexed });
      const m2 = makeImage(t.dir, 'c.img', DEV);
      await applyWdiffs(m2, [ours]);
      assert.is(sha256File(m2), sha256File(theirs), 'our conversion = theirs');
      if (!indexed) assert.ok(readFileSync(ours).equals(readFileSync(d)), 'sorted snappy conversion is byte-identical');
    }
  }
});

(have('wdiff-merge', 'wdiff-redo', 'virt-full-cat') ? I : I.skip)('merges and virtual full images agree with wdiff-merge and virt-full-cat', async () => {
  const ws = await logs(4, 3);
  const ds: string[] = [];
  for (const [i, w] of ws.entries()) { const d = join(t.dir, `m${i}.wdiff`); await convertWlogs([w], d, { indexed: i % 2 === 0 }); ds.push(d); }
  const ours = join(t.dir, 'ours-merged.wdiff'), oursNative = join(t.dir, 'ours-native-merged.wdiff'), theirs = join(t.dir, 'theirs-merged.wdiff');
  await mergeWdiffs(ds, ours);
  // The native addon's merge too (its record boundaries are its own).
  useNativeMerge(loadNative());
  try { await mergeWdiffs(ds, oursNative); } finally { useNativeMerge(undefined); }
  tool('wdiff-merge', ['-i', ...ds, '-o', theirs]);
  const a = makeImage(t.dir, 'ma.img', DEV), b = makeImage(t.dir, 'mb.img', DEV), c = makeImage(t.dir, 'mc.img', DEV), n = makeImage(t.dir, 'mn.img', DEV);
  tool('wdiff-redo', ['-z', '-i', ours, a]);
  tool('wdiff-redo', ['-z', '-i', theirs, b]);
  tool('wdiff-show', ['-csum', oursNative]);
  tool('wdiff-redo', ['-z', '-i', oursNative, n]);
  await applyWdiffs(c, [theirs], { discard: 'zero' });
  assert.is(sha256File(a), sha256File(b), 'wdiff-redo of our merge = of theirs');
  assert.is(sha256File(n), sha256File(b), 'wdiff-redo of our native merge = of theirs');
  assert.is(sha256File(c), sha256File(b), 'our apply of their merge');
  const base = makeImage(t.dir, 'base.img', DEV, 0x21);
  const vout = join(t.dir, 'virt.img');
  tool('virt-full-cat', ['-i', base, '-o', vout, '-d', ...ds]);
  const v = await VirtualFullImage.open(base, ds);
  const parts: Buffer[] = [];
  for await (const x of v.stream()) parts.push(x);
  await v.close();
  assert.ok(Buffer.concat(parts).equals(readFileSync(vout)), 'virtual full image = virt-full-cat');
});

I.run();
