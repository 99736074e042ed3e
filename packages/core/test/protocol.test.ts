// The protocol: frames and messages round-trip, bigints stay exact, a peer's errors arrive typed,
// timeouts and keepalive work, and malformed or oversized input gets a typed error and a closed
// connection while the server goes on serving others. Real sockets on loopback.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FrameDecoder, FrameType, InvalidMetaError, ProtocolConnection, ProtocolError, RemoteError, TimeoutError, WalbCoreError,
  decodeMessage, encodeFrame, encodeMessage, initFrames, serveProtocol,
} from '../src/index.ts';

await initFrames();
const dir = mkdtempSync(join(tmpdir(), 'walbjs-proto-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const F = suite('frames and messages');
F('frames round-trip through the decoder in any chunking; bigints and bytes stay exact', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom(1, 2, 3, 4, 5, 6, 7), fc.nat({ max: 0xffffffff }), fc.uint8Array({ maxLength: 300 })), { maxLength: 8 }), fc.integer({ min: 1, max: 64 }), (frames, cut) => {
    const bytes = Buffer.concat(frames.flatMap(([t, id, p]) => encodeFrame(t as FrameType, id, p)));
    const dec = new FrameDecoder();
    const got = [];
    for (let o = 0; o < bytes.length; o += cut) got.push(...dec.push(bytes.subarray(o, o + cut)));
    assert.is(got.length, frames.length);
    got.forEach((f, i) => { assert.is(f.type, frames[i][0]); assert.is(f.requestId, frames[i][1]); assert.ok(f.payload.equals(Buffer.from(frames[i][2]))); });
  }), { numRuns: 200 });
  const m = { lsid: 18446744073709551614n, gid: -3n, uuid: Uint8Array.of(1, 2, 3), buf: Buffer.from('xy'), s: 'ok', n: [1, 2] };
  const back = decodeMessage(encodeMessage(m)) as typeof m;
  assert.is(back.lsid, 18446744073709551614n);
  assert.is(back.gid, -3n);
  assert.equal([...back.uuid], [1, 2, 3]);
  assert.is(Buffer.from(back.buf).toString(), 'xy');
});
F('hostile bytes: typed errors only, and nothing allocated from a length field', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
    try { new FrameDecoder(1024).push(b); } catch (e) { if (!(e instanceof ProtocolError)) throw e; }
  }), { numRuns: 2000 });
  const [h] = encodeFrame(FrameType.REQUEST, 1, new Uint8Array(0));
  h.writeUInt32LE(0xffffffff, 12);
  try { new FrameDecoder(1 << 20).push(h); assert.unreachable(); } catch (e) { assert.instance(e, ProtocolError); assert.match((e as Error).message, /exceeds the limit/); }
  const [h2, p2] = encodeFrame(FrameType.REQUEST, 1, Buffer.from('{"method":"x"}'));
  const bad = Buffer.concat([h2, p2]); bad[FRAME_BODY(bad)] ^= 1;
  try { new FrameDecoder().push(bad); assert.unreachable(); } catch (e) { assert.is((e as WalbCoreError).code, 'ERR_WALB_PROTOCOL_CHECKSUM'); }
});
function FRAME_BODY(b: Buffer): number { return b.length - 3; }
F.run();

const C = suite('connections');
C('requests and responses over TCP and a unix socket; remote errors keep their code', async () => {
  const handler = async (method: string, params: any) => {
    if (method === 'add') return { sum: params.a + params.b };
    if (method === 'bad-meta') throw new InvalidMetaError('gidB', 'must be ≤ gidE');
    if (method === 'slow') { await new Promise((r) => setTimeout(r, 300)); return 'late'; }
    throw new ProtocolError(`unknown command ${method}`);
  };
  const places: Array<{ host: string; port: number } | { path: string }> = [{ host: '127.0.0.1', port: 0 }, { path: join(dir, 's.sock') }];
  for (const at of places) {
    const srv = await serveProtocol(at, handler);
    const to = 'path' in at ? { path: at.path } : { host: '127.0.0.1', port: Number(srv.address.split(':').pop()) };
    const c = await ProtocolConnection.connect(to);
    assert.equal(await c.request('add', { a: 2n ** 62n, b: 1n }), { sum: 2n ** 62n + 1n });
    const many = await Promise.all(Array.from({ length: 50 }, (_x, i) => c.request('add', { a: i, b: 1 })));
    assert.equal(many.map((r: any) => r.sum), Array.from({ length: 50 }, (_x, i) => i + 1));
    try { await c.request('bad-meta'); assert.unreachable(); } catch (e) { assert.instance(e, RemoteError); assert.is((e as RemoteError).remoteCode, 'ERR_WALB_META_INVALID'); }
    try { await c.request('rm -rf /'); assert.unreachable(); } catch (e) { assert.is((e as RemoteError).remoteCode, 'ERR_WALB_PROTOCOL'); }
    try { await c.request('slow', undefined, { timeoutMs: 50 }); assert.unreachable(); } catch (e) { assert.instance(e, TimeoutError); }
    assert.equal(await c.request('add', { a: 1, b: 1 }), { sum: 2 }, 'still usable after a timeout');
    c.close();
    await srv.close();
  }
});
C('garbage and oversized frames close that connection with a typed error; the server serves others', async () => {
  const srv = await serveProtocol({ host: '127.0.0.1', port: 0 }, async () => 'pong', { maxPayload: 1024 });
  const port = Number(srv.address.split(':').pop());
  await new Promise<void>((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')));
    s.resume();
    s.on('close', () => resolve());
    s.on('error', () => {});
  });
  const big = await ProtocolConnection.connect({ host: '127.0.0.1', port });
  try { await big.request('x', 'y'.repeat(4096)); assert.unreachable(); } catch (e) { assert.instance(e, WalbCoreError); }
  const ok = await ProtocolConnection.connect({ host: '127.0.0.1', port });
  assert.is(await ok.request('ping'), 'pong');
  ok.close();
  await srv.close();
});
C('keepalive keeps a quiet connection open; a silent peer is dropped by the idle timeout', async () => {
  const srv = await serveProtocol({ host: '127.0.0.1', port: 0 }, async () => 'ok', { keepaliveMs: 50 });
  const port = Number(srv.address.split(':').pop());
  const c = await ProtocolConnection.connect({ host: '127.0.0.1', port }, { keepaliveMs: 50 });
  await new Promise((r) => setTimeout(r, 400));
  assert.not.ok(c.isClosed, 'pings kept it alive');
  assert.is(await c.request('x'), 'ok');
  c.close();
  // A raw socket that never speaks: the server drops it after its idle timeout (3 × 50 ms).
  const closedAt = await new Promise<number>((resolve) => {
    const t0 = Date.now();
    const s = connect(port, '127.0.0.1');
    s.resume(); // read, so the server's close is noticed
    s.on('close', () => resolve(Date.now() - t0));
    s.on('error', () => {});
  });
  assert.ok(closedAt >= 100 && closedAt < 3000, `dropped after ${closedAt} ms`);
  await srv.close();
});
C('onClose: called once with the reason, by the peer\'s close as by this side\'s; late listeners still hear it; removed ones do not', async () => {
  const heard: string[] = [];
  const srv = await serveProtocol({ host: '127.0.0.1', port: 0 }, async (_m, _p, ctx) => {
    ctx.connection!.onClose((r) => heard.push(`server: ${r.message}`));
    return 'ok';
  });
  const c = await ProtocolConnection.connect({ host: '127.0.0.1', port: Number(srv.address.split(':').pop()) });
  const removed = c.onClose(() => heard.push('removed'));
  c.onClose((r) => { heard.push(`client: ${r.message}`); throw new Error('a listener that throws harms nobody'); });
  c.onClose((r) => heard.push(`client again: ${r.message}`));
  assert.is(await c.request('x'), 'ok');
  removed();
  c.close();
  c.close();
  const late: string[] = [];
  c.onClose((r) => late.push(r.message));
  c.onClose(() => late.push('removed at once'))();
  assert.equal(late, [], 'a late listener is called on a later microtask');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(late, ['closed by this side']);
  assert.equal(heard, ['client: closed by this side', 'client again: closed by this side', 'server: the connection closed']);
  await srv.close();
});
C.run();
