// The three roles in one process, over real loopback sockets and a real userspace walb device
// written by a real NBD client (qemu-io): full backup, snapshots, restore equal to what the device
// held at each snapshot, apply and merge keep every restorable image, bad requests change nothing.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Controller, RemoteError, createUserspaceDevice, silentLogger } from '../src/index.ts';
import { startTrio } from './trio.ts';

const dir = mkdtempSync(join(tmpdir(), 'walbjs-roles-'));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const log = process.env.WALB_TEST_LOG ? undefined : silentLogger;

const devDir = join(dir, 'dev0');
await createUserspaceDevice(devDir, { sizeBytes: 32n << 20n, logBytes: 16n << 20n });
const trio = await startTrio(dir, { logger: log, storage: { implicitSnapshotSec: 1 } });
const { ax, px, sx } = trio;
const c = new Controller({ pollMs: 50 });
const uri = `nbd+unix:///?socket=${join(devDir, 'nbd.sock')}`;
// The device lives in this process: its NBD clients must not block the event loop.
const run = promisify(execFile);
const qemuIo = (...cmds: string[]) => run('qemu-io', ['-f', 'raw', ...cmds.flatMap((x) => ['-c', x]), uri], { timeout: 60_000 });
const readDevice = async () => { const out = join(dir, `dev-${Date.now()}.img`); await run('nbdcopy', [uri, out], { timeout: 60_000 }); const b = readFileSync(out); rmSync(out); return b; };

const T = suite('storage → proxy → archive');
const images = new Map<bigint, string>();

T.after(async () => {
  await trio.stop();
  rmSync(dir, { recursive: true, force: true });
});

T('full backup of a device being written, then snapshots become restorable', async () => {
  await c.initStorage(sx, 'vol0', devDir);
  await qemuIo('write -P 0x11 0 4M', 'write -P 0x22 8M 1M');
  const g0 = await c.fullBackup(sx, [px], ax, 'vol0', { timeoutMs: 60_000 });
  assert.ok(g0 >= 0n);
  await qemuIo('write -P 0x33 1M 2M', 'write -z 8M 512k', 'discard 20M 1M', 'write -P 0x44 31M 1M');
  const g1 = await c.snapshot(sx, 'vol0', ax, { timeoutMs: 60_000, proxies: [px] });
  images.set(g1, sha(await readDevice()));
  await qemuIo('write -P 0x55 0 64k', 'write -P 0x66 16M 3M');
  const g2 = await c.snapshot(sx, 'vol0', ax, { timeoutMs: 60_000, proxies: [px] });
  images.set(g2, sha(await readDevice()));
  assert.ok(g2 > g1 && g1 > g0);
  const r = await c.getRestorable(ax, 'vol0');
  assert.ok(r.some((x) => x.gid === g1) && r.some((x) => x.gid === g2), JSON.stringify(r.map((x) => x.gid.toString())));
});

T('explicit snapshots taken while logs ship are never lost, and stay explicit', async () => {
  const gids: bigint[] = [];
  for (let i = 0; i < 12; i++) {
    const w = qemuIo(`write -P ${0x70 + i} ${(i % 8) * 4}M 1M`);
    gids.push(((await c.request(sx, 'snapshot', { volId: 'vol0' })) as { gid: bigint }).gid);
    await w;
  }
  gids.push(await c.snapshot(sx, 'vol0', ax, { timeoutMs: 60_000, proxies: [px] }));
  for (const g of gids) await c.waitForRestorable(ax, 'vol0', g, 60_000, [px]);
  const explicit = (await c.getRestorable(ax, 'vol0')).map((r) => r.gid);
  for (const g of gids) assert.ok(explicit.includes(g), `gid ${g} is listed as explicit`);
  assert.is(new Set(gids).size, gids.length);
});

T('restore equals the device at each snapshot', async () => {
  for (const [gid, want] of images) {
    const p = await c.restore(ax, 'vol0', gid, { timeoutMs: 60_000 });
    assert.is(sha(readFileSync(p)), want, `gid ${gid}`);
    const out = join(dir, `scan-${gid}.img`);
    await c.virtFullScan(ax, 'vol0', gid, out);
    assert.is(sha(readFileSync(out)), want, `virt-full-scan gid ${gid}`);
  }
});

T('apply keeps the later snapshots exact', async () => {
  const [g1, g2] = [...images.keys()];
  await c.apply(ax, 'vol0', g1);
  const base = (await c.get(ax, 'base', { volId: 'vol0' })) as { text: string };
  assert.match(base.text, new RegExp(`<\\|${g1}\\|>`));
  await c.delRestored(ax, 'vol0', g2);
  const p = await c.restore(ax, 'vol0', g2, { timeoutMs: 60_000 });
  assert.is(sha(readFileSync(p)), images.get(g2));
});

T('bad requests get typed errors and change nothing', async () => {
  const before = JSON.stringify(await c.status(ax, 'vol0'), (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  for (const [server, method, params, code] of [
    [ax, 'init-vol', { volId: '../etc' }, 'ERR_WALB_INVALID_NAME'],
    [ax, 'restore', { volId: 'vol0', gid: 'x' }, 'ERR_WALB_BAD_REQUEST'],
    [ax, 'restore', { volId: 'vol0', gid: 999999n }, 'ERR_WALB_NOT_FOUND'],
    [ax, 'init-vol', { volId: 'vol0' }, 'ERR_WALB_STATE'],
    [ax, 'no-such-command', {}, 'ERR_WALB_UNKNOWN_COMMAND'],
    [sx, 'start', { volId: 'vol0', mode: 'target' }, 'ERR_WALB_STATE'],
    [px, 'archive-info', { op: 'add', volId: 'vol0', archId: 'a/b', addr: 'x:1' }, 'ERR_WALB_INVALID_NAME'],
    [sx, 'init-vol', { volId: 'v1', wdevPath: devDir }, 'ERR_WALB_BAD_REQUEST'],
  ] as const) {
    try { await c.request(server, method, params as Record<string, unknown>); assert.unreachable(`${method} should fail`); } catch (e) {
      assert.instance(e, RemoteError, String(e));
      assert.is((e as RemoteError).remoteCode, code, `${method}: ${(e as Error).message}`);
    }
  }
  const after = JSON.stringify(await c.status(ax, 'vol0'), (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  assert.is(after, before);
});

T.run();
