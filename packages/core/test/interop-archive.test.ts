// The wdiff chain an archive keeps is read and applied by the original walb-tools: with
// WALB_TOOLS_BIN naming a folder with wdiff-redo and wdiff-show, random writes (a fresh seed each
// run, printed) go through a userspace device, storage, proxy and archive; the base image with
// every chain file applied by wdiff-redo equals our restore of the latest snapshot. Without the
// binaries the test is skipped, not passed.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Controller, createUserspaceDevice } from '../src/index.ts';
import { qemuIoWorkload, startTrio } from './trio.ts';

const BIN = process.env.WALB_TOOLS_BIN;
const have = BIN !== undefined && ['wdiff-redo', 'wdiff-show'].every((x) => existsSync(join(BIN, x)));
const I = suite('archive chain read by walb-tools');
const run = promisify(execFile);
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

(have ? I : I.skip)('wdiff-redo applies the archive\'s chain to the base and gets our restore', async () => {
  const seed = Number(process.env.WALB_SEED ?? Date.now() % 100000);
  console.log(`  seed ${seed}`);
  const dir = mkdtempSync(join(tmpdir(), 'walbjs-interop-archive-'));
  const dev = join(dir, 'dev');
  const SIZE = 32 << 20;
  const workload = qemuIoWorkload(seed, SIZE);
  await createUserspaceDevice(dev, { sizeBytes: BigInt(SIZE), logBytes: 64n << 20n });
  const trio = await startTrio(dir, { storage: { implicitSnapshotSec: 1, maxWlogSendMb: 1 } });
  const { ax, px, sx } = trio;
  const c = new Controller({ pollMs: 50 });
  const uri = `nbd+unix:///?socket=${join(dev, 'nbd.sock')}`;
  try {
    await c.initStorage(sx, 'v', dev);
    await c.fullBackup(sx, [px], ax, 'v');
    const base = join(dir, 'theirs.img');
    copyFileSync(join(dir, 'archive', 'v', 'base.img'), base);
    let last = 0n;
    for (let round = 0; round < 3; round++) {
      await run('qemu-io', ['-f', 'raw', ...workload(40), uri], { timeout: 60_000 });
      last = await c.snapshot(sx, 'v', ax, { proxies: [px] });
    }
    const chain = (await c.get(ax, 'applicable-diff', { volId: 'v' })) as Array<{ name: string }>;
    assert.ok(chain.length >= 3, `${chain.length} diffs`);
    for (const d of chain) {
      const f = join(dir, 'archive', 'v', d.name);
      execFileSync(join(BIN!, 'wdiff-show'), ['-csum', '-norec', f], { stdio: 'pipe' });
      execFileSync(join(BIN!, 'wdiff-redo'), ['-z', '-i', f, base], { stdio: 'pipe' });
    }
    const ours = await c.restore(ax, 'v', last);
    assert.is(sha(base), sha(ours));
  } finally {
    await trio.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

I.run();
