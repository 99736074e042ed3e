// Stale base-folder locks that a pid check alone gets wrong: a daemon that runs as PID 1 of a
// container (its next incarnation is PID 1 again), a pid reused by an unrelated process, a host
// name that changed on the same machine. A lock whose holder may still run somewhere this daemon
// cannot see is still refused, with an error that says how to take it over.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BaseDirInUseError, ProxyDaemon, silentLogger } from '../src/index.ts';

const L = suite('base folder lock: pids, namespaces, host names');
const dir = mkdtempSync(join(tmpdir(), 'walbjs-lock1-'));
const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});
const LOCK = '.walbjs-daemon.lock';
const PROXY_BIN = new URL('../../cli/src/bin/walb-proxy.ts', import.meta.url).pathname;

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try { await p; } catch (e) { return (e as { code?: string }).code; }
  return undefined;
}

const proxy = (base: string) => new ProxyDaemon({ baseDir: base, logger: silentLogger });
const readLock = (base: string) => JSON.parse(readFileSync(join(base, LOCK), 'utf8')) as Record<string, unknown>;
const writeLock = (base: string, l: Record<string, unknown>) => writeFileSync(join(base, LOCK), JSON.stringify(l) + '\n');
const gonePid = () => Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);

/** The lock a daemon of this process wrote, once that daemon has stopped (it looks like a killed one's). */
async function leftLock(base: string): Promise<Record<string, unknown>> {
  const d = await proxy(base).open();
  const l = readLock(base);
  await d.stop();
  return l;
}

L('a lock naming this very pid, not taken by this process, is a previous incarnation\'s', async () => {
  const base = join(dir, 'own-pid');
  const l = await leftLock(base);
  assert.is(l.pid, process.pid);
  writeLock(base, { ...l, since: '2001-01-01T00:00:00.000Z', nodeId: 'before-the-restart' });
  const d = await proxy(base).open();
  try {
    // Taken by this process now: a second daemon here is refused.
    assert.is(await code(proxy(base).open()), 'ERR_WALB_DIR_IN_USE');
  } finally {
    await d.stop();
  }
  // The old format (pid and host only) too.
  writeLock(base, { pid: process.pid, host: l.host, hostType: 'proxy', nodeId: 'old' });
  await (await proxy(base).open()).stop();
});

L('a pid now used by another process (started after the lock was written) is stale', async () => {
  const base = join(dir, 'reused');
  const l = await leftLock(base);
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  children.push(other);
  try {
    const lock: Record<string, unknown> = { ...l, pid: other.pid };
    delete lock.beacon; // only the pid and its start time to go by
    writeLock(base, lock);
    await (await proxy(base).open()).stop();
  } finally {
    other.kill('SIGKILL');
  }
});

L('another host name on this kernel and pid namespace is checked like this host\'s', async () => {
  const base = join(dir, 'renamed');
  const l = await leftLock(base);
  writeLock(base, { ...l, host: 'container-before-restart', pid: gonePid() });
  await (await proxy(base).open()).stop();
});

L('a lock of another machine (other host name, other boot) is refused, naming how to take it over', async () => {
  const base = join(dir, 'remote');
  const l = await leftLock(base);
  writeLock(base, { ...l, host: 'elsewhere.example', boot: '00000000-0000-4000-8000-000000000000', pid: gonePid() });
  try {
    await proxy(base).open();
    assert.unreachable('opened');
  } catch (e) {
    assert.instance(e, BaseDirInUseError);
    assert.match((e as Error).message, /elsewhere\.example/);
    assert.ok((e as Error).message.includes(join(base, LOCK)), (e as Error).message);
  }
});

L('a lock from another pid namespace without a beacon cannot be checked: refused, naming the way out', async () => {
  const base = join(dir, 'other-ns');
  const l = await leftLock(base);
  const lock: Record<string, unknown> = { ...l, pidns: 'pid:[1]', pid: gonePid() };
  delete lock.beacon;
  writeLock(base, lock);
  try {
    await proxy(base).open();
    assert.unreachable('opened');
  } catch (e) {
    assert.instance(e, BaseDirInUseError);
    assert.match((e as Error).message, /another pid namespace.*remove .*\.walbjs-daemon\.lock/);
  }
});

/** walb-proxy on `base` in a pid namespace of its own (PID 1 there), killed with its `unshare`. */
async function proxyAsPid1(base: string): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn('unshare', ['-pf', '--kill-child', '--mount-proc', process.execPath, '--conditions=walb-source', '--import', 'tsx', PROXY_BIN, '-b', base, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '', err = '';
  child.stdout!.on('data', (b: Buffer) => { out += b; });
  child.stderr!.on('data', (b: Buffer) => { err += b; });
  const line = await new Promise<string>((resolve) => {
    child.stdout!.on('data', () => { if (out.includes('\n')) resolve(out); });
    child.on('exit', () => resolve(`exited: ${out} ${err}`));
  });
  return { child, line };
}

/** Until the lock's beacon refuses connections: unshare has exited, its child may take a moment more to die. */
async function beaconClosed(base: string): Promise<void> {
  const path = join(base, String(readLock(base).beacon));
  for (let i = 0; i < 50; i++) {
    const open = await new Promise<boolean>((r) => { const s = connect(path); s.once('connect', () => { s.destroy(); r(true); }); s.once('error', () => r(false)); });
    if (!open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the killed daemon\'s beacon still answers');
}

const canUnshare = spawnSync('unshare', ['-pf', '--kill-child', '--mount-proc', 'true']).status === 0;

L('a daemon running as PID 1 of a pid namespace restarts after kill -9', async () => {
  if (!canUnshare) { console.log('  (skipped: unshare -pf is not allowed here)'); return; }
  const base = join(dir, 'pid1');
  mkdirSync(base, { recursive: true });
  const first = await proxyAsPid1(base);
  assert.match(first.line, /"type":"listening".*"pid":1\b/, first.line);
  // Alive in a namespace this process cannot see into: refused.
  assert.is(await code(proxy(base).open()), 'ERR_WALB_DIR_IN_USE');
  const gone = new Promise((r) => first.child.once('exit', r));
  first.child.kill('SIGKILL');
  await gone;
  assert.is(readLock(base).pid, 1, 'the killed daemon left its lock');
  await beaconClosed(base);
  const second = await proxyAsPid1(base);
  try {
    assert.match(second.line, /"type":"listening"/, second.line);
  } finally {
    if (second.child.exitCode === null && second.child.signalCode === null) {
      const ended = new Promise((r) => second.child.once('exit', r));
      second.child.kill('SIGKILL');
      await ended;
    }
  }
  // And this process takes it over in turn.
  await beaconClosed(base);
  await (await proxy(base).open()).stop();
});

L.run();
