// Hostile requests to the daemons: malformed parameters, path-like names, out-of-state commands,
// unknown commands, corrupt uploads, oversized frames. Each gets a typed error reply and changes
// nothing on disk; the daemons go on serving.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ArchiveDaemon, Controller, FrameType, ProxyDaemon, RemoteError, StorageDaemon, createUserspaceDevice, encodeFrame, initFrames, silentLogger,
  type Daemon,
} from '../src/index.ts';

await initFrames();
const dir = mkdtempSync(join(tmpdir(), 'walbjs-reqfuzz-'));
const dev = join(dir, 'dev');
await createUserspaceDevice(dev, { sizeBytes: 8n << 20n, logBytes: 4n << 20n });
const archive = await new ArchiveDaemon({ baseDir: join(dir, 'a'), logger: silentLogger }).start();
const proxy = await new ProxyDaemon({ baseDir: join(dir, 'p'), logger: silentLogger }).start();
const storage = await new StorageDaemon({ baseDir: join(dir, 's'), logger: silentLogger }).start();
const hp = (d: Daemon) => ({ host: '127.0.0.1', port: Number(d.address.split(':')[1]) });
const c = new Controller({ timeoutMs: 10_000 });
const uuid = randomBytes(16);

// One volume in each daemon: archived on the archive, stopped on the proxy, sync-ready on the storage.
await archive.call('init-vol', { volId: 'v' });
async function* image() { yield Buffer.alloc(1 << 20, 7); }
await archive.call('full-sync', { volId: 'v', sizeLb: 2048n, timestamp: 1_700_000_000, uuid }, { upload: image() });
await archive.call('full-sync-commit', { volId: 'v', snap: { gidB: 0n, gidE: 0n }, timestamp: 1_700_000_000 });
await proxy.call('archive-info', { op: 'add', volId: 'v', archId: 'a0', addr: `127.0.0.1:${hp(archive).port}` });
await storage.call('init-vol', { volId: 'v', wdevPath: dev });

/** Every file under the daemons' folders with its content hash. */
function disk(): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n), st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (!n.endsWith('.sock')) out.push(`${p} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
  };
  for (const x of ['a', 'p', 's']) walk(join(dir, x));
  return out.join('\n');
}

async function refused(d: Daemon, method: string, params: unknown): Promise<string> {
  try {
    await c.request(hp(d), method, params as Record<string, unknown>);
  } catch (e) {
    assert.instance(e, RemoteError, `${method}: ${String(e)}`);
    assert.match((e as RemoteError).remoteCode, /^ERR_W/, `${method}: ${(e as Error).message}`);
    return (e as RemoteError).remoteCode;
  }
  assert.unreachable(`${d.hostType} ${method} ${JSON.stringify(params, (_k, v) => (typeof v === 'bigint' ? String(v) : v))} was accepted`);
  return '';
}

const F = suite('hostile requests');
F.after(async () => {
  await storage.stop('force'); await proxy.stop('force'); await archive.stop('force');
  rmSync(dir, { recursive: true, force: true });
});

const NEUTRAL = new Set(['version', 'status', 'get', 'shutdown', 'kick']);
const badName = fc.oneof(
  fc.string({ maxLength: 80 }).filter((s) => !/^[0-9A-Za-z-]{1,64}$/.test(s)),
  fc.constantFrom('../v', 'v/../../etc', '/etc/passwd', '.', '..', 'a'.repeat(65), 'v\u0000', ''),
  fc.integer(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }),
);

F('malformed parameters and path-like names, to every command: typed errors, nothing changes', async () => {
  const before = disk();
  for (const d of [archive, proxy, storage] as Daemon[]) {
    for (const method of d.commandNames.filter((m) => !NEUTRAL.has(m))) {
      await fc.assert(fc.asyncProperty(badName, fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }), async (volId, extra) => {
        await refused(d, method, { ...extra, volId, archId: volId });
      }), { numRuns: 15 });
    }
  }
  assert.is(disk(), before);
});

F('out-of-state, unknown and incomplete commands: typed errors, nothing changes', async () => {
  const before = disk();
  const cases: Array<[Daemon, string, Record<string, unknown>, string]> = [
    [archive, 'init-vol', { volId: 'v' }, 'ERR_WALB_STATE'],
    [archive, 'full-sync', { volId: 'v', sizeLb: 2048n, timestamp: 0, uuid }, 'ERR_WALB_BAD_REQUEST'], // no upload
    [archive, 'full-sync-commit', { volId: 'v', snap: { gidB: 0n, gidE: 3n }, timestamp: 0 }, 'ERR_WALB_STATE'],
    [archive, 'restore', { volId: 'v', gid: 5n }, 'ERR_WALB_NOT_FOUND'],
    [archive, 'apply', { volId: 'v', gid: 5n }, 'ERR_WALB_NOT_FOUND'],
    [archive, 'merge', { volId: 'v', gidB: 0n, gidE: 9n }, 'ERR_WALB_NOT_FOUND'],
    [archive, 'merge', { volId: 'v', gidB: 0n }, 'ERR_WALB_BAD_REQUEST'],
    [archive, 'clear-vol', { volId: 'v' }, 'ERR_WALB_STATE'],
    [archive, 'start', { volId: 'v' }, 'ERR_WALB_STATE'],
    [archive, 'resize', { volId: 'v', sizeLb: 8n }, 'ERR_WALB_BAD_REQUEST'],
    [archive, 'restore', { volId: 'nope', gid: 0n }, 'ERR_WALB_STATE'],
    [archive, 'del-restored', { volId: 'v', gid: 0n }, 'ERR_WALB_NOT_FOUND'],
    [archive, 'get', { target: 'no-such-target', volId: 'v' }, 'ERR_WALB_UNKNOWN_COMMAND'],
    [archive, 'get', { volId: 'v' }, 'ERR_WALB_BAD_REQUEST'],
    [archive, 'frobnicate', {}, 'ERR_WALB_UNKNOWN_COMMAND'],
    [proxy, 'stop', { volId: 'v' }, 'ERR_WALB_STATE'],
    [proxy, 'archive-info', { op: 'add', volId: 'v', archId: 'a0', addr: '127.0.0.1:1' }, 'ERR_WALB_STATE'],
    [proxy, 'archive-info', { op: 'add', volId: 'v', archId: 'a1', addr: 'no-port' }, 'ERR_WALB_BAD_REQUEST'],
    [proxy, 'archive-info', { op: 'add', volId: 'v', archId: 'a1', addr: '127.0.0.1:1', cmpr: 'rot13' }, 'ERR_WALB_BAD_REQUEST'],
    [proxy, 'archive-info', { op: 'rename', volId: 'v', archId: 'a0' }, 'ERR_WALB_BAD_REQUEST'],
    [proxy, 'wlog-transfer', { volId: 'v', uuid, sizeLb: 0n, lsidB: 0n, lsidE: 0n, diff: {} }, 'ERR_WALB_BAD_REQUEST'],
    [storage, 'start', { volId: 'v', mode: 'target' }, 'ERR_WALB_STATE'],
    [storage, 'start', { volId: 'v', mode: 'sideways' }, 'ERR_WALB_BAD_REQUEST'],
    [storage, 'snapshot', { volId: 'v' }, 'ERR_WALB_STATE'],
    [storage, 'stop', { volId: 'v' }, 'ERR_WALB_STATE'],
    [storage, 'full-bkp', { volId: 'v' }, 'ERR_WALB_BAD_REQUEST'], // no archive configured
    [storage, 'init-vol', { volId: 'w', wdevPath: dev }, 'ERR_WALB_BAD_REQUEST'], // already used
    [storage, 'init-vol', { volId: 'w', wdevPath: join(dir, 'missing') }, 'ERR_WALB_NOT_FOUND'],
  ];
  for (const [d, m, p, code] of cases) assert.is(await refused(d, m, p), code, `${d.hostType} ${m} ${JSON.stringify(Object.keys(p))}`);
  assert.is(disk(), before);
});

F('corrupt wdiff uploads are verified before they join the chain', async () => {
  const before = disk();
  const diff = { snapB: { gidB: 0n, gidE: 0n }, snapE: { gidB: 1n, gidE: 1n }, isMergeable: true, isCompDiff: false, timestamp: 1_700_000_000, dataSize: 0n };
  const conn = await (await import('../src/index.ts')).ProtocolConnection.connect(hp(archive));
  try {
    for (const junk of [randomBytes(0), randomBytes(100), randomBytes(70_000)]) {
      try { await conn.upload('wdiff-transfer', { volId: 'v', uuid, sizeLb: 2048n, diff }, [junk]); assert.unreachable(); } catch (e) {
        assert.instance(e, RemoteError);
        assert.match((e as RemoteError).remoteCode, /^ERR_W/);
      }
    }
    try { await conn.upload('wdiff-transfer', { volId: 'v', uuid: randomBytes(16), sizeLb: 2048n, diff }, [randomBytes(10)]); assert.unreachable(); } catch (e) {
      assert.match((e as Error).message, /different-uuid/);
    }
  } finally { conn.close(); }
  assert.is(disk(), before);
});

F('virt-full-scan that fails leaves no partial image behind', async () => {
  const out = join(dir, 'scan-out.img');
  for (const [vol, gid] of [['nosuch', 0n], ['v', 99n]] as const) {
    let code: string | undefined;
    try { await c.virtFullScan(hp(archive), vol, gid, out); } catch (e) { code = (e as { code?: string }).code; }
    assert.ok(code, `${vol} gid ${gid}: no error`);
    assert.not.ok(existsSync(out), `${vol} gid ${gid}: a partial image is left`);
  }
  // The one that exists streams whole.
  assert.is(await c.virtFullScan(hp(archive), 'v', 0n, out), 1 << 20);
  assert.ok(readFileSync(out).equals(Buffer.alloc(1 << 20, 7)));
});

F('oversized and garbage frames close that connection only; the daemon serves on', async () => {
  for (const bytes of [Buffer.concat(encodeFrame(FrameType.REQUEST, 1, Buffer.alloc(0))).fill(0xff, 12, 16), randomBytes(64)]) {
    await new Promise<void>((resolve) => {
      const s = connect(hp(archive).port, '127.0.0.1', () => s.write(bytes));
      s.on('close', () => resolve());
      s.on('error', () => undefined);
    });
  }
  assert.is(await c.get(hp(archive), 'state', { volId: 'v' }), 'Archived');
});

F.run();
