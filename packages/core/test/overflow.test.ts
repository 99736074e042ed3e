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
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
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
  }
});

O('a log that overflows during a full backup fails it, the volume not Target (it reported success, with a snapshot never to be restorable)', async () => {
  const d2 = join(dir, 'dev2');
  await createUserspaceDevice(d2, { sizeBytes: 16n << 20n, logBytes: 1n << 20n });
  // The image goes in 4 KiB frames, so the copy lasts while the log is overrun.
  const trio = await startTrio(join(dir, 'fb'), { storage: { fullSyncBulkBytes: 4096 } });
  const { ax, sx } = trio;
  const c = new Controller({ pollMs: 20 });
  try {
    await c.initStorage(sx, 'w', d2);
    // What fullBackup does before its full-bkp: storage Standby → Stopped → SyncReady, archive init.
    await c.request(sx, 'stop', { volId: 'w' });
    await c.request(sx, 'reset-vol', { volId: 'w' });
    await c.request(ax, 'init-vol', { volId: 'w' });
    // No proxy knows the volume: the logs have nowhere to go.
    const full = c.request(sx, 'full-bkp', { volId: 'w', wait: true }, { timeoutMs: 120_000 }).then(() => undefined, (e: Error) => e);
    await c.waitForState(sx, 'w', ['FullSync'], 30_000);
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 3 0 4M', `nbd+unix:///?socket=${join(d2, 'nbd.sock')}`]);
    const e = await full;
    assert.instance(e, RemoteError, 'the full backup succeeded');
    assert.match(e!.message, /overflowed during the full backup/);
    assert.is.not(await c.get(sx, 'state', { volId: 'w' }), 'Target');
  } finally {
    await trio.stop();
  }
});

O.run();
