// Transfers split by the size limit: with a 1 MiB limit and random writes of up to 256 KiB, a
// range between snapshots takes several pieces, sometimes more than the gids reserved for it.
// Every explicit snapshot must still restore to exactly what the device held.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Controller, createUserspaceDevice } from '../src/index.ts';
import { qemuIoWorkload, startTrio } from './trio.ts';

const run = promisify(execFile);
const S = suite('split transfers');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const seed of [65315, 7, 4242]) {
  S(`seed ${seed}: every snapshot restores to the device`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'walbjs-split-'));
    const dev = join(dir, 'dev');
    const SIZE = 32 << 20;
    const workload = qemuIoWorkload(seed, SIZE);
    const uri = `nbd+unix:///?socket=${join(dev, 'nbd.sock')}`;
    await createUserspaceDevice(dev, { sizeBytes: BigInt(SIZE), logBytes: 64n << 20n });
    const trio = await startTrio(dir, { storage: { implicitSnapshotSec: 1, maxWlogSendMb: 1 } });
    const { ax, px, sx } = trio;
    const c = new Controller({ pollMs: 50 });
    try {
      await c.initStorage(sx, 'v', dev);
      await c.fullBackup(sx, [px], ax, 'v');
      const want = new Map<bigint, string>();
      for (let round = 0; round < 3; round++) {
        await run('qemu-io', ['-f', 'raw', ...workload(40), uri], { timeout: 60_000 });
        const g = await c.snapshot(sx, 'v', ax, { proxies: [px] });
        const img = join(dir, 'now.img');
        await run('nbdcopy', [uri, img]);
        want.set(g, sha(readFileSync(img)));
      }
      const chain = (await c.get(ax, 'applicable-diff', { volId: 'v' })) as unknown[];
      assert.ok(chain.length > 6, `${chain.length} diffs: the ranges were split`);
      for (const [g, h] of want) assert.is(sha(readFileSync(await c.restore(ax, 'v', g))), h, `gid ${g}`);
    } finally {
      await trio.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

S.run();
