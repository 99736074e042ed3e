// Growing a volume while it is backed up: the storage grows its userspace device (data device and
// the super sector's size; the log is kept), an archive with autoResize grows its base when the
// larger diffs arrive, and the restore equals the grown device. Shrinking is refused.
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
const R = suite('resize');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

R('grow the device under backup; the archive follows; shrinking is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'walbjs-resize-'));
  const dev = join(dir, 'dev');
  const uri = `nbd+unix:///?socket=${join(dev, 'nbd.sock')}`;
  await createUserspaceDevice(dev, { sizeBytes: 16n << 20n, logBytes: 16n << 20n });
  const trio = await startTrio(dir, { archive: { autoResize: true } });
  const { ax, px, sx } = trio;
  const c = new Controller({ pollMs: 50 });
  try {
    await c.initStorage(sx, 'v', dev);
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 3 0 2M', uri]);
    await c.fullBackup(sx, [px], ax, 'v');
    try { await c.request(sx, 'resize', { volId: 'v', sizeLb: 1024n }); assert.unreachable(); } catch (e) { assert.instance(e, RemoteError); assert.match((e as Error).message, /grow only/); }
    const r = (await c.request(sx, 'resize', { volId: 'v', sizeLb: (24n << 20n) / 512n })) as { sizeLb: bigint };
    assert.is(r.sizeLb, (24n << 20n) / 512n);
    const info = JSON.parse((await run('nbdinfo', ['--json', uri])).stdout) as { exports: Array<{ 'export-size': number }> };
    assert.is(info.exports[0]['export-size'], 24 << 20);
    await run('qemu-io', ['-f', 'raw', '-c', 'write -P 4 20M 2M', '-c', 'write -P 5 1M 1M', uri]);
    const g = await c.snapshot(sx, 'v', ax, { proxies: [px] });
    assert.is(await c.get(ax, 'vol-size', { volId: 'v' }), (24n << 20n) / 512n);
    const out = join(dir, 'now.img');
    await run('nbdcopy', [uri, out]);
    assert.is(sha(readFileSync(await c.restore(ax, 'v', g))), sha(readFileSync(out)));
  } finally {
    await trio.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

R.run();
