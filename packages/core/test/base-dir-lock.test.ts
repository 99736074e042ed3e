// One daemon per base folder: a second one (in this process or another) is refused while the first
// runs; a lock left by a daemon that died is taken over; a stopped daemon lets the folder go.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArchiveDaemon, ProxyDaemon, StorageDaemon, silentLogger } from '../src/index.ts';

const L = suite('base folder lock');
const dir = mkdtempSync(join(tmpdir(), 'walbjs-lock-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const LOCK = '.walbjs-daemon.lock';

async function refusedWith(p: Promise<unknown>): Promise<string | undefined> {
  try { await p; } catch (e) { return (e as { code?: string }).code; }
  return undefined;
}

L('a second daemon on the same folder is refused while the first runs, of any role', async () => {
  const base = join(dir, 'shared');
  const first = await new ArchiveDaemon({ baseDir: base, logger: silentLogger }).start();
  try {
    assert.ok(existsSync(join(base, LOCK)));
    assert.is(await refusedWith(new ArchiveDaemon({ baseDir: base, logger: silentLogger }).open()), 'ERR_WALB_DIR_IN_USE');
    assert.is(await refusedWith(new ProxyDaemon({ baseDir: base, logger: silentLogger }).open()), 'ERR_WALB_DIR_IN_USE');
    assert.is(await refusedWith(new StorageDaemon({ baseDir: base, logger: silentLogger }).start()), 'ERR_WALB_DIR_IN_USE');
  } finally {
    await first.stop();
  }
  assert.not.ok(existsSync(join(base, LOCK)), 'the lock outlived its daemon');
  const next = await new ArchiveDaemon({ baseDir: base, logger: silentLogger }).start();
  await next.stop();
});

L('a daemon that cannot listen (the port is taken) lets its folder go: the next one starts', async () => {
  const first = await new ArchiveDaemon({ baseDir: join(dir, 'listening'), logger: silentLogger }).start();
  const base = join(dir, 'port-taken');
  try {
    const port = Number(first.address.split(':').pop());
    assert.is(await refusedWith(new ProxyDaemon({ baseDir: base, port, logger: silentLogger }).start()), 'EADDRINUSE');
    assert.not.ok(existsSync(join(base, LOCK)), 'the lock outlived the failed start');
    const next = await new ProxyDaemon({ baseDir: base, logger: silentLogger }).start();
    await next.stop();
  } finally {
    await first.stop();
  }
});

L('a lock left by a daemon that is gone is taken over', async () => {
  const base = join(dir, 'stale');
  // The pid of a process that has exited.
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  mkdirSync(base, { recursive: true });
  writeFileSync(join(base, LOCK), JSON.stringify({ pid: Number(gone), hostType: 'archive', nodeId: 'killed' }));
  const d = await new ArchiveDaemon({ baseDir: base, logger: silentLogger }).start();
  await d.stop();
  // An unreadable lock file is stale too.
  writeFileSync(join(base, LOCK), 'garbage');
  const e = await new ProxyDaemon({ baseDir: base, logger: silentLogger }).start();
  await e.stop();
  // One from another machine is not: its process cannot be checked from here.
  writeFileSync(join(base, LOCK), JSON.stringify({ pid: Number(gone), host: 'elsewhere.example', hostType: 'archive', nodeId: 'remote' }));
  assert.is(await refusedWith(new ArchiveDaemon({ baseDir: base, logger: silentLogger }).open()), 'ERR_WALB_DIR_IN_USE');
});

L.run();
