// A log overflow: when the proxy cannot take the logs and writes outrun the ring, the device
// flags the overflow, the storage stops the volume and says so, refuses snapshots and start, and a
// reset plus full backup brings the volume back with the archive equal to the device.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Controller, RemoteError, createUserspaceDevice } from '../src/index.ts';
import { startTrio } from './trio.ts';

const run = promisify(execFile);
const O = suite('log overflow');
const dir = mkdtempSync(join(tmpdir(), 'walbjs-overflow-'));
const dev = join(dir, 'dev');
const uri = `nbd+unix:///?socket=${join(dev, 'nbd.sock')}`;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

O('the storage stops an overflowed volume, refuses snapshots, and a full backup recovers it', async () => {
  await createUserspaceDevice(dev, { sizeBytes: 16n << 20n, logBytes: 2n << 20n });
  const trio = await startTrio(dir, { storage: { maxRetryDelayMs: 200 } });
  const { ax, px, sx } = trio;
  const c = new Controller({ pollMs: 50 });
  try {
    await c.initStorage(sx, 'v', dev);
    await c.fullBackup(sx, [px], ax, 'v');
    await c.request(px, 'stop', { volId: 'v' }); // the logs have nowhere to go
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 4M', uri]);
    await c.waitForState(sx, 'v', ['Stopped'], 30_000);
    assert.is(await c.get(sx, 'is-overflow', { volId: 'v' }), true);
    for (const [m, p] of [['snapshot', { volId: 'v' }], ['start', { volId: 'v', mode: 'target' }]] as const) {
      try { await c.request(sx, m, p); assert.unreachable(m); } catch (e) {
        assert.instance(e, RemoteError);
        assert.match((e as Error).message, /overflow/);
      }
    }
    // Recovery: reset the log, a new full backup; the archive follows the device again.
    await c.request(px, 'start', { volId: 'v' });
    const g = await c.fullBackup(sx, [px], ax, 'v');
    assert.is(await c.get(sx, 'is-overflow', { volId: 'v' }), false);
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 2 1M 1M', uri]);
    const g2 = await c.snapshot(sx, 'v', ax, { proxies: [px] });
    assert.ok(g2 > g);
    const out = join(dir, 'now.img');
    await run('nbdcopy', [uri, out]);
    assert.is(sha(readFileSync(await c.restore(ax, 'v', g2))), sha(readFileSync(out)));
  } finally {
    await trio.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

O.run();
