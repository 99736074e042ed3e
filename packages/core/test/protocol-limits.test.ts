// The protocol against a broken or hostile peer: a malformed reply rejects its request with a typed
// error and never throws inside an event handler; requests in flight per connection are capped, so
// a client that pipelines large requests behind a held lock cannot grow the server's memory; an
// upload that stops making progress gives its volume's lock back; a volume's lock queue is bounded.
// Real sockets on loopback, real archive daemons; memory is judged by RSS growth, not by time.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ArchiveDaemon, Controller, FrameDecoder, FrameType, ProtocolConnection, ProtocolError, RefusedError, RemoteError, VolumeLocks,
  encodeFrame, encodeMessage, initFrames, serveProtocol, silentLogger, type ArchiveOptions,
} from '../src/index.ts';

await initFrames();
const dir = mkdtempSync(join(tmpdir(), 'walbjs-limits-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const uuid = randomBytes(16);
const diff01 = { snapB: { gidB: 0n, gidE: 0n }, snapE: { gidB: 1n, gidE: 1n }, isMergeable: true, isCompDiff: false, timestamp: 1_700_000_000, dataSize: 0n };

/** A peer that answers its n-th request with `replies[n]` (frame type, payload text), later ones with "ok". */
async function fakePeer(replies: Array<[FrameType, string]>): Promise<{ port: number; close: () => Promise<void> }> {
  const socks = new Set<Socket>();
  const server = createServer((s) => {
    socks.add(s);
    const dec = new FrameDecoder();
    let n = 0;
    s.on('error', () => undefined);
    s.on('data', (d) => {
      for (const f of dec.push(d)) {
        if (f.type !== FrameType.REQUEST) continue;
        const [type, text] = replies[n++] ?? [FrameType.RESPONSE, '{"result":"ok"}'];
        s.write(Buffer.concat(encodeFrame(type, f.requestId, Buffer.from(text))));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise<void>((r) => { for (const s of socks) s.destroy(); server.close(() => r()); }) };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try { await p; } catch (e) { return e as Error; }
  assert.unreachable('resolved');
  return new Error('unreachable');
}

const M = suite('malformed replies');
M('every field of a reply is checked: a malformed one rejects its request with ProtocolError, the connection serves on', async () => {
  const bad: Array<[FrameType, string]> = [
    [FrameType.ERROR, '{"code":{"toString":1},"message":"x"}'],
    [FrameType.ERROR, '{"code":"ERR_X","message":{"toString":1}}'],
    [FrameType.ERROR, '{"code":7,"message":"x"}'],
    [FrameType.ERROR, `{"code":"${'E'.repeat(300)}"}`],
    [FrameType.ERROR, '[1,2]'],
    [FrameType.ERROR, 'null'],
    [FrameType.ERROR, '"text"'],
    [FrameType.RESPONSE, '[]'],
    [FrameType.RESPONSE, 'null'],
    [FrameType.RESPONSE, '7'],
    [FrameType.RESPONSE, '{"$bytes":"AA=="}'],
    [FrameType.RESPONSE, '{not json'],
  ];
  const peer = await fakePeer(bad);
  const c = await ProtocolConnection.connect({ host: '127.0.0.1', port: peer.port });
  for (const [type, text] of bad) {
    const e = await rejection(c.request('status'));
    assert.instance(e, ProtocolError, `type ${type} ${text}: ${String(e)}`);
    assert.is((e as ProtocolError).code, 'ERR_WALB_PROTOCOL');
  }
  assert.not.ok(c.isClosed, 'a malformed reply is that request\'s failure, not the connection\'s');
  assert.is(await c.request('status'), 'ok');
  c.close();
  await peer.close();
});

M('well-formed edge replies keep their meaning', async () => {
  const peer = await fakePeer([[FrameType.ERROR, '{}'], [FrameType.ERROR, '{"code":null,"message":null}'], [FrameType.RESPONSE, '{}']]);
  const c = await ProtocolConnection.connect({ host: '127.0.0.1', port: peer.port });
  for (let i = 0; i < 2; i++) {
    const e = await rejection(c.request('status'));
    assert.instance(e, RemoteError);
    assert.is((e as RemoteError).remoteCode, 'ERR_UNKNOWN');
  }
  assert.is(await c.request('status'), undefined);
  c.close();
  await peer.close();
});

M('uploads, downloads and the Controller get the typed error too', async () => {
  const evil = '{"code":{"toString":1},"message":"x"}';
  const peer = await fakePeer([[FrameType.ERROR, evil], [FrameType.ERROR, evil], [FrameType.ERROR, evil]]);
  const c = await ProtocolConnection.connect({ host: '127.0.0.1', port: peer.port });
  assert.instance(await rejection(c.upload('wdiff-transfer', {}, [Buffer.alloc(10), Buffer.alloc(10)])), ProtocolError);
  const d = c.download('virt-full-scan');
  assert.instance(await rejection(d.result), ProtocolError);
  assert.instance(await rejection((async () => { for await (const _b of d.chunks); })()), ProtocolError);
  c.close();
  assert.instance(await rejection(new Controller({ timeoutMs: 5000 }).status({ host: '127.0.0.1', port: peer.port })), ProtocolError);
  await peer.close();
});

M('a handler that throws something odd still sends a typed ERROR, and the server serves on', async () => {
  const odd: unknown[] = [Object.create(null), { code: { toString: 1 } }, null, { code: 42, message: { toString: 1 } }];
  const srv = await serveProtocol({ host: '127.0.0.1', port: 0 }, (method) => {
    if (method === 'ok') return 'ok';
    throw odd[Number(method)];
  });
  const c = await ProtocolConnection.connect({ host: '127.0.0.1', port: Number(srv.address.split(':').pop()) });
  for (let i = 0; i < odd.length; i++) {
    const e = await rejection(c.request(String(i), undefined, { timeoutMs: 5000 }));
    assert.instance(e, RemoteError, `throw #${i}: ${String(e)}`);
  }
  assert.is(await c.request('ok'), 'ok');
  c.close();
  await srv.close();
});
M.run();

const L = suite('requests in flight');
L('beyond maxInFlight a request is refused as busy at once; the admitted ones finish', async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => { open = r; });
  const srv = await serveProtocol({ host: '127.0.0.1', port: 0 }, async (method) => { if (method === 'wait') await gate; return method; }, { maxInFlight: 2, maxInFlightBytes: 64 << 10 });
  const c = await ProtocolConnection.connect({ host: '127.0.0.1', port: Number(srv.address.split(':').pop()) });
  const ps = Array.from({ length: 5 }, () => c.request('wait', undefined, { timeoutMs: 5000 }));
  for (const p of ps.slice(2)) {
    const e = await rejection(p);
    assert.instance(e, RemoteError, String(e));
    assert.is((e as RemoteError).remoteCode, 'ERR_WALB_REFUSED');
    assert.match(e.message, /busy/);
  }
  open();
  assert.equal(await Promise.all(ps.slice(0, 2)), ['wait', 'wait']);
  // The byte budget: a big request is admitted alone, a second big one is not, a small one is.
  let open2!: () => void;
  const gate2 = new Promise<void>((r) => { open2 = r; });
  const srv2 = await serveProtocol({ host: '127.0.0.1', port: 0 }, async (method) => { if (method === 'wait') await gate2; return method; }, { maxInFlightBytes: 64 << 10 });
  const c2 = await ProtocolConnection.connect({ host: '127.0.0.1', port: Number(srv2.address.split(':').pop()) });
  const big1 = c2.request('wait', 'x'.repeat(40 << 10), { timeoutMs: 5000 });
  const big2 = rejection(c2.request('wait', 'x'.repeat(40 << 10), { timeoutMs: 5000 }));
  const small = c2.request('wait', 'x', { timeoutMs: 5000 });
  assert.match((await big2).message, /busy/);
  open2();
  assert.is(await big1, 'wait');
  assert.is(await small, 'wait');
  assert.is(await c.request('next'), 'next');
  c.close(); c2.close();
  await srv.close(); await srv2.close();
});
L('unread upload chunks are bounded over the whole connection, and every upload still completes', async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => { open = r; });
  const srv = await serveProtocol({ host: '127.0.0.1', port: 0 }, async (_m, _p, ctx) => {
    await gate;
    let n = 0;
    for await (const b of ctx.upload!) n += b.byteLength;
    return n;
  });
  const c = await ProtocolConnection.connect({ host: '127.0.0.1', port: Number(srv.address.split(':').pop()) });
  // One shared buffer: the sending side allocates nothing per chunk, so RSS growth is the receiver's.
  const piece = Buffer.alloc(1 << 20, 1);
  const base = process.memoryUsage.rss();
  let peak = base;
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()); }, 20);
  const ups = Array.from({ length: 12 }, () => c.upload('sink', {}, Array.from({ length: 12 }, () => piece), { timeoutMs: 60_000 }));
  await sleep(2000);
  clearInterval(sampler);
  open();
  assert.equal(await Promise.all(ups), Array.from({ length: 12 }, () => 12 << 20));
  const growMb = Math.round((peak - base) / 2 ** 20);
  assert.ok(growMb < 80, `RSS grew by ${growMb} MiB while 12 handlers left 12 MiB each unread`);
  c.close();
  await srv.close();
});

L('a request reusing the id of one still served closes the connection; the server serves others', async () => {
  const srv = await serveProtocol({ host: '127.0.0.1', port: 0 }, async (method) => { if (method === 'wait') await new Promise(() => undefined); return method; });
  const port = Number(srv.address.split(':').pop());
  const req = Buffer.concat(encodeFrame(FrameType.REQUEST, 9, encodeMessage({ method: 'wait' })));
  const closed = await new Promise<boolean>((resolve) => {
    const s = createConnection(port, '127.0.0.1', () => s.write(Buffer.concat([req, req])));
    s.resume();
    s.on('close', () => resolve(true));
    s.on('error', () => undefined);
    setTimeout(() => { s.destroy(); resolve(false); }, 5000).unref();
  });
  assert.ok(closed, 'the connection stayed open');
  const c = await ProtocolConnection.connect({ host: '127.0.0.1', port });
  assert.is(await c.request('x'), 'x');
  c.close();
  await srv.close();
});
L.run();

/** An archive daemon with volume `v` archived at gid 0. */
async function archived(name: string, opts: Partial<ArchiveOptions> = {}): Promise<ArchiveDaemon> {
  const d = await new ArchiveDaemon({ baseDir: join(dir, name), logger: silentLogger, ...opts }).start();
  await d.call('init-vol', { volId: 'v' });
  async function* image() { yield Buffer.alloc(1 << 20, 7); }
  await d.call('full-sync', { volId: 'v', sizeLb: 2048n, timestamp: 1_700_000_000, uuid }, { upload: image() });
  await d.call('full-sync-commit', { volId: 'v', snap: { gidB: 0n, gidE: 0n }, timestamp: 1_700_000_000 });
  return d;
}
const portOf = (d: ArchiveDaemon) => ({ host: '127.0.0.1', port: Number(d.address.split(':').pop()) });

/**
 * A wdiff upload that sends a few bytes and then nothing, for at most `maxMs`; empty pieces let the
 * uploader notice an early answer without sending anything.
 */
async function* stalled(maxMs: number): AsyncGenerator<Buffer> {
  yield randomBytes(100);
  for (const t0 = Date.now(); Date.now() - t0 < maxMs;) { await sleep(50); yield Buffer.alloc(0); }
}

async function waitState(d: ArchiveDaemon, state: string): Promise<void> {
  for (const t0 = Date.now(); Date.now() - t0 < 10_000; await sleep(20)) if ((await d.volumeState('v')) === state) return;
  assert.unreachable(`volume v never became ${state} (is ${await d.volumeState('v')})`);
}

const P = suite('pile-up behind a held lock');
P('pipelined 10 MiB requests behind a stalled upload: the server\'s memory stays bounded', async () => {
  const archive = await archived('pileup');
  const holder = await ProtocolConnection.connect(portOf(archive));
  const held = holder.upload('wdiff-transfer', { volId: 'v', uuid, sizeLb: 2048n, diff: diff01 }, stalled(120_000)).catch((e: Error) => e);
  await waitState(archive, 'WdiffRecv');
  const N = 40;
  const frameFile = join(dir, 'frame.bin');
  writeFileSync(frameFile, Buffer.concat(encodeFrame(FrameType.REQUEST, 1, encodeMessage({ method: 'clear-vol', params: { volId: 'v', pad: 'x'.repeat(10 << 20) } }))));
  // The pipelining client lives in another process, so this one's RSS is the daemon's alone.
  const client = `
    const fs = require('node:fs'), net = require('node:net');
    const frame = fs.readFileSync(process.argv[1]);
    let errors = 0, head = Buffer.alloc(0);
    const s = net.connect(Number(process.argv[2]), '127.0.0.1', async () => {
      for (let i = 0; i < ${N}; i++) {
        const f = Buffer.from(frame); f.writeUInt32LE(i + 1, 8);
        if (!s.write(f)) await new Promise((r) => s.once('drain', r));
      }
      s.write(Buffer.alloc(0), () => console.log('sent'));
    });
    s.on('data', (d) => {
      head = Buffer.concat([head, d]);
      while (head.length >= 24 && head.length >= 24 + head.readUInt32LE(12)) {
        if (head[5] === 3) console.log('error ' + (++errors));
        head = head.subarray(24 + head.readUInt32LE(12));
      }
    });
    s.on('error', () => {});`;
  const base = process.memoryUsage.rss();
  let peak = base;
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()); }, 20);
  const child = spawn(process.execPath, ['-e', client, frameFile, String(portOf(archive).port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let giveUp: NodeJS.Timeout | undefined;
  const done = await new Promise<boolean>((resolve) => {
    child.stdout.on('data', (d) => { out += d; if (out.includes('sent')) resolve(true); });
    child.on('exit', () => resolve(false));
    giveUp = setTimeout(() => resolve(false), 120_000);
  });
  clearTimeout(giveUp);
  await sleep(1000);
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage.rss());
  child.kill();
  const growMb = Math.round((peak - base) / 2 ** 20);
  const refused = Number(/error (\d+)\s*$/.exec(out)?.[1] ?? 0);
  holder.close();
  await held;
  await archive.stop('force');
  assert.ok(done, `the client could not send its ${N} requests`);
  assert.ok(growMb < 200, `RSS grew by ${growMb} MiB for ${N} pipelined 10 MiB requests`);
  assert.ok(refused >= N - 8, `only ${refused} of ${N} requests were refused as busy`);
});
P.run();

const S = suite('stalled uploads and lock queues');
S('VolumeLocks bounds the commands waiting per volume: beyond it, RefusedError busy', async () => {
  const locks = new VolumeLocks(2);
  let open!: () => void;
  const gate = new Promise<void>((r) => { open = r; });
  const order: number[] = [];
  const holder = locks.run('v', () => gate);
  await sleep(0);
  const w1 = locks.run('v', () => { order.push(1); });
  const w2 = locks.run('v', () => { order.push(2); });
  const e = await Promise.race([rejection(locks.run('v', () => { order.push(3); })), sleep(2000).then(() => undefined)]);
  assert.instance(e, RefusedError, 'a third waiter was queued');
  assert.is((e as RefusedError).reason, 'busy');
  assert.is(await locks.run('w', () => 'other volume'), 'other volume');
  open();
  await holder; await w1; await w2;
  assert.equal(order, [1, 2]);
  await locks.run('v', () => { order.push(4); });
  assert.equal(order, [1, 2, 4]);
});

S('a stalled upload (pings still flowing) times out: lock released, partial file removed, connection kept', async () => {
  const archive = await archived('stall', { connection: { uploadStallMs: 3000 }, maxLockWaiters: 1 });
  const c = await ProtocolConnection.connect(portOf(archive), { keepaliveMs: 100 });
  const t0 = Date.now();
  const up = c.upload('wdiff-transfer', { volId: 'v', uuid, sizeLb: 2048n, diff: diff01 }, stalled(15_000));
  up.catch(() => undefined);
  await waitState(archive, 'WdiffRecv');
  // While the lock is held, one more command may wait for it; the next is refused at once.
  const [wc, bc] = [await ProtocolConnection.connect(portOf(archive)), await ProtocolConnection.connect(portOf(archive))];
  const waiter = wc.upload('wdiff-transfer', { volId: 'v', uuid, sizeLb: 2048n, diff: diff01 }, [randomBytes(100)]);
  waiter.catch(() => undefined);
  await sleep(200);
  const busy = await rejection(bc.upload('wdiff-transfer', { volId: 'v', uuid, sizeLb: 2048n, diff: diff01 }, [randomBytes(100)]));
  assert.instance(busy, RemoteError, String(busy));
  assert.is((busy as RemoteError).remoteCode, 'ERR_WALB_REFUSED');
  assert.match(busy.message, /busy/);
  const e = await rejection(up);
  assert.instance(e, RemoteError, String(e));
  assert.is((e as RemoteError).remoteCode, 'ERR_WALB_TIMEOUT', e.message);
  assert.ok(Date.now() - t0 < 14_000, 'answered before the uploader gave up on its own');
  // The waiter got the lock: its junk is refused for what it is, not for being late.
  const w = await rejection(waiter);
  assert.instance(w, RemoteError);
  assert.is.not((w as RemoteError).remoteCode, 'ERR_WALB_TIMEOUT');
  assert.is.not((w as RemoteError).remoteCode, 'ERR_WALB_REFUSED');
  assert.is(await archive.volumeState('v'), 'Archived');
  assert.equal(readdirSync(join(dir, 'stall', 'v', 'tmp')).filter((n) => n.startsWith('recv-')), []);
  assert.not.ok(c.isClosed, 'the connection outlives the stalled upload');
  assert.is(await c.request('get', { target: 'state', volId: 'v' }), 'Archived');
  c.close(); wc.close(); bc.close();
  await archive.stop('force');
});
S.run();
