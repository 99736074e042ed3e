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
import { startTrio } from './trio.ts';

const run = promisify(execFile);
const S = suite('split transfers');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const seed of [65315, 7, 4242]) {
  S(`seed ${seed}: every snapshot restores to the device`, async () => {
    let x = seed;
    const rnd = (n: number) => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n; };
    const dir = mkdtempSync(join(tmpdir(), 'walbjs-split-'));
    const dev = join(dir, 'dev');
    const SIZE = 32 << 20;
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
        const cmds: string[] = [];
        for (let i = 0; i < 40; i++) {
          const len = (1 + rnd(64)) * 4096, off = rnd((SIZE - len) / 4096) * 4096, k = rnd(10);
          cmds.push(k === 0 ? `discard ${off} ${len}` : k === 1 ? `write -z ${off} ${len}` : `write -P ${rnd(256)} ${off} ${len}`);
        }
        await run('qemu-io', ['-f', 'raw', ...cmds.flatMap((s) => ['-c', s]), uri], { timeout: 60_000 });
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
