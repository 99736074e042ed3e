// A full sync whose connection closes before its commit is cancelled at once: the storage killed
// (kill -9) or the network cut, mid-image or between the image and the commit, leaves the archive's
// volume SyncReady again within a short wait, its received image removed, and the next full-bkp
// starts without a reset-vol, as walb-tools' archive rolls its state transaction back when the
// session breaks. A sync that committed stays committed whatever closes after it, and the other
// volumes' syncs go on. Real daemons on loopback (a real walb-storage process for the kill), a
// relay between storage and archive that cuts or holds the connection at a chosen frame, and raw
// protocol peers.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ArchiveDaemon, Controller, FrameDecoder, FrameType, ProtocolConnection, ProxyDaemon, RemoteError, StorageDaemon, WalbCoreError,
  createUserspaceDevice, decodeMessage, encodeFrame, encodeMessage, initFrames, jsonLogger, silentLogger, type Logger,
} from '../src/index.ts';

await initFrames();
const dir = mkdtempSync(join(tmpdir(), 'walbjs-full-sync-cancel-'));
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});
const logger = process.env.WALB_TEST_LOG ? undefined : silentLogger;
const STORAGE_BIN = new URL('../../cli/src/bin/walb-storage.ts', import.meta.url).pathname;
const MiB = 1 << 20;
const T0 = 1_700_000_000;
const uuid = Buffer.alloc(16, 0x3c);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const hp = (a: string) => ({ host: '127.0.0.1', port: Number(a.slice(a.lastIndexOf(':') + 1)) });
const c = new Controller({ pollMs: 20, timeoutMs: 30_000 });

/** How long the archive may take to give a cut-off full sync up (it does so on the close itself). */
const CANCEL_WITHIN_MS = 2000;

/** Bytes of a seeded xorshift: incompressible, the same for the same seed. */
function noise(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed | 1;
  for (let i = 0; i < n; i += 4) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b.writeInt32LE(x | 0, i); }
  return b;
}

/** A userspace walb device of `size` bytes whose data device holds seeded noise. */
async function noisyDevice(path: string, size: number, seed: number): Promise<Buffer> {
  await createUserspaceDevice(path, { sizeBytes: BigInt(size), logBytes: 4n * BigInt(MiB) });
  const img = noise(seed, size);
  const fd = openSync(join(path, 'ddev'), 'r+');
  try { writeSync(fd, img, 0, img.length, 0); } finally { closeSync(fd); }
  return img;
}

/** Poll `f` every 10 ms until it holds; fail after `ms`. */
async function within(ms: number, what: string, f: () => Promise<boolean>): Promise<void> {
  const t0 = Date.now();
  while (!(await f())) {
    if (Date.now() - t0 > ms) assert.unreachable(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try { await p; } catch (e) { return e as Error; }
  assert.unreachable('expected a failure');
  throw new Error('unreachable');
}

const codeOf = (e: Error) => (e instanceof RemoteError ? e.remoteCode : (e as WalbCoreError).code);
const tmpFiles = (archiveDir: string, volId: string) => readdirSync(join(archiveDir, volId, 'tmp'));

type Trap = { match: (f: { type: number; method?: string; chunks: number }) => boolean; mode: 'cut' | 'hold'; fired: () => void };

/**
 * A relay on loopback in front of the archive. Storage → archive frames are forwarded one by one
 * until an armed trap matches one (`cut`: both sockets are destroyed and the frame never arrives;
 * `hold`: the frame and all after it are kept back, and the connection lives until its client
 * goes); archive → storage bytes go through as they are. A trap fires once.
 */
async function relay(to: { host: string; port: number }) {
  let trap: Trap | undefined;
  const socks = new Set<Socket>();
  const server = createServer((client) => {
    const up = connect(to.port, to.host);
    socks.add(client).add(up);
    for (const s of [client, up]) s.on('error', () => undefined);
    const bothGone = () => { client.destroy(); up.destroy(); };
    client.on('close', bothGone);
    up.on('close', bothGone);
    up.on('data', (d) => client.write(d));
    const dec = new FrameDecoder();
    let chunks = 0;
    let holding = false;
    client.on('data', (d) => {
      if (holding) return;
      for (const f of dec.push(d)) {
        if (f.type === FrameType.CHUNK) chunks++;
        const method = f.type === FrameType.REQUEST ? (decodeMessage(f.payload) as { method?: string }).method : undefined;
        if (trap?.match({ type: f.type, method, chunks })) {
          const { mode, fired } = trap;
          trap = undefined;
          fired();
          if (mode === 'cut') { bothGone(); return; }
          holding = true;
          return;
        }
        up.write(Buffer.concat(encodeFrame(f.type, f.requestId, f.payload, f.flags)));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    /** Arm a trap; the returned promise resolves when it fires. */
    arm(mode: Trap['mode'], match: Trap['match']): Promise<void> {
      return new Promise<void>((fired) => { trap = { match, mode, fired }; });
    },
    close: () => new Promise<void>((r) => { for (const s of socks) s.destroy(); server.close(() => r()); }),
  };
}

const atCommit = (f: { type: number; method?: string }) => f.type === FrameType.REQUEST && f.method === 'full-sync-commit';

const N = suite('a full sync cut off from its storage');

N('the network drops mid-image, then between the image and the commit: the archive is SyncReady again at once each time, and the next full-bkp succeeds', async () => {
  const root = join(dir, 'net');
  const dev = join(root, 'dev');
  const img = await noisyDevice(dev, 8 * MiB, 7);
  const archive = await new ArchiveDaemon({ baseDir: join(root, 'archive'), logger }).start();
  const proxy = await new ProxyDaemon({ baseDir: join(root, 'proxy'), logger, retryDelayMs: 50, maxRetryDelayMs: 500 }).start();
  const ax = hp(archive.address), px = hp(proxy.address);
  const net = await relay(ax);
  // 64 KiB bulks: the image is many frames, so the cut lands inside it.
  const storage = await new StorageDaemon({
    baseDir: join(root, 'storage'), logger, archive: { host: '127.0.0.1', port: net.port }, proxies: [px],
    retryDelayMs: 50, maxRetryDelayMs: 500, fullSyncBulkBytes: 64 << 10,
  }).start();
  const sx = hp(storage.address);
  try {
    await c.initStorage(sx, 'v', dev);
    await c.request(sx, 'stop', { volId: 'v' });
    await c.request(ax, 'init-vol', { volId: 'v' });
    await c.request(px, 'archive-info', { op: 'add', volId: 'v', archId: 'a0', addr: `127.0.0.1:${ax.port}` });
    await c.request(px, 'start', { volId: 'v' });

    for (const [what, match] of [
      ['mid-image', (f: { type: number; chunks: number }) => f.type === FrameType.CHUNK && f.chunks === 40],
      ['at the commit', atCommit],
    ] as const) {
      const cut = net.arm('cut', match);
      const e = await failure(c.request(sx, 'full-bkp', { volId: 'v', wait: true }));
      await cut;
      assert.instance(e, RemoteError, `${what}: ${String(e)}`);
      assert.is(await c.getState(sx, 'v'), 'SyncReady', `${what}: the storage`);
      await within(CANCEL_WITHIN_MS, `${what}: the archive back to SyncReady`, async () => (await c.getState(ax, 'v')) === 'SyncReady');
      assert.equal(tmpFiles(join(root, 'archive'), 'v'), [], `${what}: the received image is removed`);
    }

    // No reset-vol anywhere: the next full-bkp goes through (the storage refuses to start one
    // unless the archive says SyncReady).
    const done = (await c.request(sx, 'full-bkp', { volId: 'v', wait: true })) as { state: string; snap: string };
    assert.is(done.state, 'Target');
    assert.is(await c.getState(ax, 'v'), 'Archived');
    const gid = BigInt(/^\|0,(\d+)\|$/.exec(done.snap)![1]);
    await c.waitForRestorable(ax, 'v', gid, 30_000, [px]);
    const h = (await c.request(ax, 'bhash', { volId: 'v', gid })) as { sha256: string };
    assert.is(h.sha256, sha(img), 'the archive holds the device');
    // Committed: nothing the relay's connections do now changes it.
    await net.close();
    await sleep(200);
    assert.is(await c.getState(ax, 'v'), 'Archived');
  } finally {
    await storage.stop('force');
    await proxy.stop('force');
    await archive.stop('force');
    await net.close();
  }
});

/** walb-storage in a process of its own, its archive reached through `archivePort`. */
async function storageProcess(base: string, archivePort: number, proxyPort: number): Promise<{ child: ChildProcess; sx: { host: string; port: number } }> {
  const child = spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', STORAGE_BIN, '-b', base, '--json',
    '--archive', `127.0.0.1:${archivePort}`, '--proxy', `127.0.0.1:${proxyPort}`, '--delay', '0.05', '--maxdelay', '0.5', '-l', join(base, '..', 'storage.log')],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let out = '', err = '';
  child.stdout!.on('data', (b: Buffer) => { out += b; });
  child.stderr!.on('data', (b: Buffer) => { err += b; });
  const line = await new Promise<string>((resolve) => {
    child.stdout!.on('data', () => { if (out.includes('\n')) resolve(out); });
    child.on('exit', () => resolve(''));
  });
  if (!line) assert.unreachable(`walb-storage did not start: ${out} ${err}`);
  return { child, sx: hp(String((JSON.parse(line) as { address: string }).address)) };
}

N('walb-storage killed (kill -9) after its image went over, before its commit: the archive is SyncReady again at once; a new storage process backs up again', async () => {
  const root = join(dir, 'kill');
  const dev = join(root, 'dev');
  const img = await noisyDevice(dev, 8 * MiB, 11);
  const archive = await new ArchiveDaemon({ baseDir: join(root, 'archive'), logger }).start();
  const proxy = await new ProxyDaemon({ baseDir: join(root, 'proxy'), logger, retryDelayMs: 50, maxRetryDelayMs: 500 }).start();
  const ax = hp(archive.address), px = hp(proxy.address);
  const net = await relay(ax);
  let s = await storageProcess(join(root, 'storage'), net.port, px.port);
  try {
    await c.initStorage(s.sx, 'v', dev);
    await c.request(s.sx, 'stop', { volId: 'v' });
    await c.request(ax, 'init-vol', { volId: 'v' });
    await c.request(px, 'archive-info', { op: 'add', volId: 'v', archId: 'a0', addr: `127.0.0.1:${ax.port}` });
    await c.request(px, 'start', { volId: 'v' });
    // The commit is kept back: the image is all there, and the storage dies waiting for its answer.
    const atTheCommit = net.arm('hold', atCommit);
    assert.equal(await c.request(s.sx, 'full-bkp', { volId: 'v' }), { accepted: true });
    await atTheCommit;
    assert.is(await c.getState(ax, 'v'), 'FullSync', 'the image arrived; the commit is all that is missing');
    const gone = new Promise((r) => s.child.once('exit', r));
    s.child.kill('SIGKILL');
    await gone;
    await within(CANCEL_WITHIN_MS, 'the archive back to SyncReady', async () => (await c.getState(ax, 'v')) === 'SyncReady');
    assert.equal(tmpFiles(join(root, 'archive'), 'v'), [], 'the received image is removed');
    assert.is(codeOf(await failure(c.request(ax, 'full-sync-commit', { volId: 'v', snap: { gidB: 0n, gidE: 1n }, timestamp: T0 }))), 'ERR_WALB_STATE', 'a late commit has nothing to commit');

    // The storage comes back (SyncReady: its full-bkp never finished) and backs up again, no reset-vol.
    s = await storageProcess(join(root, 'storage'), ax.port, px.port);
    assert.is(await c.getState(s.sx, 'v'), 'SyncReady');
    const done = (await c.request(s.sx, 'full-bkp', { volId: 'v', wait: true })) as { state: string; snap: string };
    assert.is(done.state, 'Target');
    const gid = BigInt(/^\|0,(\d+)\|$/.exec(done.snap)![1]);
    await c.waitForRestorable(ax, 'v', gid, 30_000, [px]);
    assert.is(((await c.request(ax, 'bhash', { volId: 'v', gid })) as { sha256: string }).sha256, sha(img));
  } finally {
    s.child.kill('SIGKILL');
    await proxy.stop('force');
    await archive.stop('force');
    await net.close();
  }
});

N.run();

const P = suite('the close of a full sync\'s connection, seen from raw peers');

const archiveDir = join(dir, 'raw-archive');
let archive: ArchiveDaemon;
let ax: { host: string; port: number };
/** What the raw peers' archive logged: its end of a sync is known from these, not from timing. */
const events: Array<{ event: string; fields: Record<string, unknown> }> = [];
const passOn: Logger = logger ?? jsonLogger('archive');
const recording: Logger = {
  log(level, event, fields = {}) {
    events.push({ event, fields });
    passOn.log(level, event, fields);
  },
};
P.before(async () => {
  archive = await new ArchiveDaemon({ baseDir: archiveDir, logger: recording }).start();
  ax = hp(archive.address);
});
P.after(() => archive.stop('force'));
const image = noise(5, MiB);
const sizeLb = BigInt(image.length / 512);
const snap0 = { gidB: 0n, gidE: 0n };

P('a peer that sent the whole image and died: SyncReady again, a late commit refused, a new full sync commits', async () => {
  await c.request(ax, 'init-vol', { volId: 'p' });
  const peer = await ProtocolConnection.connect(ax);
  assert.equal(await peer.upload('full-sync', { volId: 'p', sizeLb, uuid, timestamp: T0 }, [image]), { received: BigInt(image.length) });
  peer.close();
  await within(CANCEL_WITHIN_MS, 'SyncReady again', async () => (await c.getState(ax, 'p')) === 'SyncReady');
  assert.equal(tmpFiles(archiveDir, 'p'), []);
  assert.is(codeOf(await failure(c.request(ax, 'full-sync-commit', { volId: 'p', snap: snap0, timestamp: T0 }))), 'ERR_WALB_STATE');
  const again = await ProtocolConnection.connect(ax);
  try {
    await again.upload('full-sync', { volId: 'p', sizeLb, uuid, timestamp: T0 }, [image]);
    assert.is(((await again.request('full-sync-commit', { volId: 'p', snap: snap0, timestamp: T0 })) as { state: string }).state, 'Archived');
  } finally { again.close(); }
  await sleep(100);
  assert.is(await c.getState(ax, 'p'), 'Archived', 'the close after the commit undoes nothing');
  assert.is(((await c.request(ax, 'bhash', { volId: 'p', gid: 0n })) as { sha256: string }).sha256, sha(image));
});

P('a socket destroyed right after its last chunk (the archive still syncing the image) is cancelled too', async () => {
  await c.request(ax, 'init-vol', { volId: 'q' });
  const raw = connect(ax.port, ax.host);
  raw.on('error', () => undefined);
  await new Promise((r) => raw.once('connect', r));
  raw.write(Buffer.concat(encodeFrame(FrameType.REQUEST, 1, encodeMessage({ method: 'full-sync', params: { volId: 'q', sizeLb, uuid, timestamp: T0 } }), 1)));
  for (let o = 0; o < image.length; o += 256 << 10) raw.write(Buffer.concat(encodeFrame(FrameType.CHUNK, 1, image.subarray(o, o + (256 << 10)))));
  raw.write(Buffer.concat(encodeFrame(FrameType.END, 1)));
  events.length = 0;
  await new Promise<void>((r) => raw.end(r));
  raw.destroy();
  // Whichever comes first, the end of the image or the close, the archive ends the sync one way:
  // cancelled after the image, or the upload failed (on a slow machine it may not have begun when
  // the state is first asked, SyncReady then meaning nothing yet).
  const ended = () => events.some(({ event, fields }) => (event === 'full-sync-cancelled' && fields.volId === 'q') || (/^command-(failed|refused)$/.test(event) && fields.method === 'full-sync'));
  await within(CANCEL_WITHIN_MS, 'SyncReady again', async () => ended() && (await c.getState(ax, 'q')) === 'SyncReady');
  assert.equal(tmpFiles(archiveDir, 'q'), []);
});

P('a commit sent and its connection closed at once stays committed', async () => {
  await c.request(ax, 'init-vol', { volId: 'k' });
  const peer = await ProtocolConnection.connect(ax);
  await peer.upload('full-sync', { volId: 'k', sizeLb, uuid, timestamp: T0 }, [image]);
  const commit = peer.request('full-sync-commit', { volId: 'k', snap: snap0, timestamp: T0 }).catch(() => undefined);
  peer.close(); // the commit is on its way; the close comes right behind it
  await commit;
  await within(CANCEL_WITHIN_MS, 'the commit to land', async () => (await c.getState(ax, 'k')) !== 'FullSync');
  await sleep(200);
  assert.is(await c.getState(ax, 'k'), 'Archived');
  assert.is(((await c.request(ax, 'bhash', { volId: 'k', gid: 0n })) as { sha256: string }).sha256, sha(image));
});

P('other volumes are unaffected: a sync whose connection lives stays FullSync and commits (on that connection only); an Archived volume stays', async () => {
  for (const v of ['a', 'b']) await c.request(ax, 'init-vol', { volId: v });
  const ca = await ProtocolConnection.connect(ax);
  const cb = await ProtocolConnection.connect(ax);
  try {
    await ca.upload('full-sync', { volId: 'a', sizeLb, uuid, timestamp: T0 }, [image]);
    await cb.upload('full-sync', { volId: 'b', sizeLb, uuid, timestamp: T0 }, [image]);
    // Another connection that closes, having done nothing with either volume.
    (await ProtocolConnection.connect(ax)).close();
    ca.close();
    await within(CANCEL_WITHIN_MS, 'a back to SyncReady', async () => (await c.getState(ax, 'a')) === 'SyncReady');
    await sleep(100);
    assert.is(await c.getState(ax, 'b'), 'FullSync', 'b\'s connection is still open');
    assert.is(await c.getState(ax, 'p'), 'Archived');
    const stranger = await failure(c.request(ax, 'full-sync-commit', { volId: 'b', snap: snap0, timestamp: T0 }));
    assert.is(codeOf(stranger), 'ERR_WALB_STATE', 'only the connection that sent the image commits it');
    assert.match(stranger.message, /another connection/);
    assert.is(((await cb.request('full-sync-commit', { volId: 'b', snap: snap0, timestamp: T0 })) as { state: string }).state, 'Archived');
  } finally {
    ca.close();
    cb.close();
  }
  await sleep(100);
  assert.is(await c.getState(ax, 'b'), 'Archived');
});

P('one connection, two volumes: its close cancels the one not committed only', async () => {
  for (const v of ['m', 'n']) await c.request(ax, 'init-vol', { volId: v });
  const peer = await ProtocolConnection.connect(ax);
  await peer.upload('full-sync', { volId: 'm', sizeLb, uuid, timestamp: T0 }, [image]);
  await peer.upload('full-sync', { volId: 'n', sizeLb, uuid, timestamp: T0 }, [image]);
  await peer.request('full-sync-commit', { volId: 'm', snap: snap0, timestamp: T0 });
  peer.close();
  await within(CANCEL_WITHIN_MS, 'n back to SyncReady', async () => (await c.getState(ax, 'n')) === 'SyncReady');
  assert.is(await c.getState(ax, 'm'), 'Archived');
  assert.equal(tmpFiles(archiveDir, 'n'), []);
});

P.run();
