// The system with real separate processes on loopback: walb-storage (hosting a userspace walb
// device written by qemu-io), walb-proxy and walb-archive. Restores equal the device at every
// snapshot; a proxy killed mid-transfer, an archive killed mid-apply and a storage killed and
// restarted all recover with nothing lost and nothing applied twice; walbc drives them too.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PassThrough } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Controller, RemoteError, createUserspaceDevice } from '@walbjs/core';
import { startCluster, type Cluster } from '../src/demo/cluster.ts';
import { runWalbc } from '../src/index.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'walbjs-system-'));
const devDir = join(dir, 'dev0');
const uri = `nbd+unix:///?socket=${join(devDir, 'nbd.sock')}`;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const c = new Controller({ pollMs: 50, timeoutMs: 30_000 });
let cl: Cluster;
const snaps = new Map<bigint, string>();

const qemuIo = (...cmds: string[]) => run('qemu-io', ['-f', 'raw', ...cmds.flatMap((x) => ['-c', x]), uri], { timeout: 120_000 });
async function deviceSha(): Promise<string> {
  const out = join(dir, 'now.img');
  await run('nbdcopy', [uri, out], { timeout: 120_000 });
  const h = sha(readFileSync(out));
  rmSync(out);
  return h;
}
async function restoreSha(gid: bigint): Promise<string> {
  const p = await c.restore(cl.archive.address, 'vol0', gid, { timeoutMs: 120_000 });
  const h = sha(readFileSync(p));
  await c.delRestored(cl.archive.address, 'vol0', gid);
  return h;
}
async function snapshot(): Promise<bigint> {
  const g = await c.snapshot(cl.storage.address, 'vol0', cl.archive.address, { timeoutMs: 120_000, proxies: [cl.proxy.address] });
  snaps.set(g, await deviceSha());
  return g;
}
async function walbc(d: { address: { host: string; port: number } }, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough(), stderr = new PassThrough();
  const o: Buffer[] = [], e: Buffer[] = [];
  stdout.on('data', (b: Buffer) => o.push(b));
  stderr.on('data', (b: Buffer) => e.push(b));
  const code = await runWalbc(['-a', d.address.host, '-p', String(d.address.port), ...args], { stdout, stderr });
  return { code, out: Buffer.concat(o).toString(), err: Buffer.concat(e).toString() };
}

const S = suite('system');
S.before(async () => {
  await createUserspaceDevice(devDir, { sizeBytes: 64n << 20n, logBytes: 128n << 20n });
  cl = await startCluster({ workDir: dir });
});
S.after(async () => {
  await cl?.stop();
  if (process.env.WALB_KEEP) console.log(`  kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
});

S('init-storage, full backup while writing, snapshots restorable and equal to the device', async () => {
  await c.initStorage(cl.storage.address, 'vol0', devDir);
  await qemuIo('write -P 0x11 0 8M', 'write -P 0x12 40M 2M');
  const writer = qemuIo('write -P 0x13 10M 4M', 'write -P 0x14 60M 1M'); // during the full sync
  const g0 = await c.fullBackup(cl.storage.address, [cl.proxy.address], cl.archive.address, 'vol0', { timeoutMs: 120_000 });
  await writer;
  assert.ok(g0 >= 1n);
  await qemuIo('write -P 0x21 1M 3M', 'write -z 40M 1M', 'discard 50M 2M');
  await snapshot();
  await qemuIo('write -P 0x22 20M 5M');
  await snapshot();
  for (const [g, h] of snaps) assert.is(await restoreSha(g), h, `restore of gid ${g}`);
});

S('walbc: queries with --json, typed refusals with exit 1, usage errors with exit 2', async () => {
  const st = await walbc(cl.storage, 'get', 'state', 'vol0');
  assert.is(st.code, 0, st.err);
  assert.is(st.out.trim(), 'Target');
  const r = await walbc(cl.archive, '--json', 'get', 'restorable', 'vol0');
  assert.is(r.code, 0, r.err);
  const list = JSON.parse(r.out) as Array<{ gid: string }>;
  for (const g of snaps.keys()) assert.ok(list.some((x) => x.gid === g.toString()), `gid ${g} in ${r.out}`);
  const bad = await walbc(cl.archive, '--json', 'restore', 'vol0', '99999999');
  assert.is(bad.code, 1);
  assert.match(bad.err, /ERR_WALB_NOT_FOUND/);
  const trav = await walbc(cl.archive, 'init-vol', '../../etc');
  assert.is(trav.code, 1);
  assert.match(trav.err, /ERR_WALB_INVALID_NAME/);
  const snap = await walbc(cl.storage, 'snapshot', 'vol0');
  assert.is(snap.code, 0, snap.err);
  assert.match(snap.out, /^\d+\n$/, 'snapshot prints the gid alone');
  assert.is((await walbc(cl.archive, 'restore', 'vol0')).code, 2);
  assert.is((await walbc(cl.archive, 'frobnicate')).code, 2);
});

S('proxy killed mid-transfer and restarted: nothing lost, nothing applied twice', async () => {
  await qemuIo('write -P 0x31 0 16M', 'write -P 0x32 30M 16M');
  const { gid } = (await c.request(cl.storage.address, 'snapshot', { volId: 'vol0' })) as { gid: bigint };
  // Kill the proxy while it is receiving those logs (its conversion file exists), if we catch it.
  const tmp = join(dir, 'proxy', 'vol0', 'tmp');
  let midTransfer = false;
  for (let i = 0; i < 2000 && !midTransfer; i++) {
    midTransfer = readdirSync(tmp).some((n) => n.startsWith('recv-'));
    if (!midTransfer) await new Promise((r) => setTimeout(r, 1));
  }
  await cl.proxy.kill();
  console.log(`  (proxy killed ${midTransfer ? 'while receiving logs' : 'before the transfer was seen'})`);
  const want = await deviceSha(); // nothing writes meanwhile: the device is as at the snapshot
  await new Promise((r) => setTimeout(r, 500));
  await cl.proxy.restart();
  await c.waitForRestorable(cl.archive.address, 'vol0', gid, 120_000, [cl.proxy.address]);
  snaps.set(gid, want);
  assert.is(await restoreSha(gid), want);
  // The chain has no overlapping pieces: each diff starts where the previous one ended.
  const chain = (await c.get(cl.archive.address, 'applicable-diff', { volId: 'vol0' })) as Array<{ snapB: { gidB: bigint }; snapE: { gidB: bigint } }>;
  for (let i = 1; i < chain.length; i++) assert.is(chain[i].snapB.gidB, chain[i - 1].snapE.gidB);
});

S('storage killed and restarted: the device redoes its log, extraction resumes at the right lsid', async () => {
  await qemuIo('write -P 0x41 5M 6M', 'flush');
  const before = (await c.get(cl.storage.address, 'progress', { volId: 'vol0' })) as { done: { lsid: bigint } };
  await cl.storage.kill();
  await cl.storage.restart();
  await c.waitForState(cl.storage.address, 'vol0', ['Target']);
  const after = (await c.get(cl.storage.address, 'progress', { volId: 'vol0' })) as { done: { lsid: bigint } };
  assert.ok(after.done.lsid >= before.done.lsid);
  await qemuIo('write -P 0x42 7M 1M');
  const g = await snapshot();
  assert.is(await restoreSha(g), snaps.get(g));
  // The restarted storage's first transfer begins exactly where the acknowledged ones ended.
  const events = readFileSync(cl.storage.logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; lsidB?: string; done?: { lsid: string } });
  const rec = events.map((e) => e.event).lastIndexOf('volume-recovered');
  const firstSent = events.slice(rec).find((e) => e.event === 'wlog-sent');
  assert.is(firstSent?.lsidB, events[rec].done!.lsid);
});

S('archive killed mid-apply and restarted: the apply resumes and every later image is exact', async () => {
  for (let i = 0; i < 4; i++) { await qemuIo(`write -P ${0x51 + i} ${i * 12}M 12M`); await snapshot(); }
  const gids = [...snaps.keys()];
  const last = gids[gids.length - 1];
  const target = gids[gids.length - 2];
  await c.request(cl.archive.address, 'apply', { volId: 'vol0', gid: target });
  let caught = false;
  for (let i = 0; i < 400 && !caught; i++) {
    const b = (await c.get(cl.archive.address, 'base', { volId: 'vol0' })) as { isApplying: boolean };
    if (b.isApplying) caught = true; else await new Promise((r) => setTimeout(r, 2));
    if ((await c.get(cl.archive.address, 'all-actions', { volId: 'vol0' }) as unknown[]).length === 0) break;
  }
  await cl.archive.kill();
  await cl.archive.restart();
  await c.waitFor('the apply to finish', async () => ((await c.get(cl.archive.address, 'all-actions', { volId: 'vol0' })) as unknown[]).length === 0 && !((await c.get(cl.archive.address, 'base', { volId: 'vol0' })) as { isApplying: boolean }).isApplying ? true : undefined, 120_000);
  const base = (await c.get(cl.archive.address, 'base', { volId: 'vol0' })) as { text: string };
  if (caught) assert.match(readFileSync(cl.archive.logFile, 'utf8'), /apply-resume/);
  assert.match(base.text, new RegExp(`<\\|${target}\\|>`));
  assert.is(await restoreSha(target), snaps.get(target));
  assert.is(await restoreSha(last), snaps.get(last));
  try { await c.restore(cl.archive.address, 'vol0', gids[0]); assert.unreachable(); } catch (e) { assert.instance(e, RemoteError); }
  console.log(`  (archive killed ${caught ? 'mid-apply' : 'after the apply'})`);
});

S.run();
