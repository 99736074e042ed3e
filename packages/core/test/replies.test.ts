// Replies are checked command by command before anyone uses them: a peer whose result has a field
// missing, a string where a gid or a number belongs, an object where a list belongs, fails that one
// request with a ProtocolError (MalformedReplyError) naming the command and the field, through the
// Controller's typed methods, its generic request/get, and the storage's own request to the
// archive; well-formed replies come through with their values (u64s as bigints). Fake peers on
// loopback answer what each test tells them to.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Controller, MalformedReplyError, ProtocolError, REPLY_CHECKS, RemoteError, StorageDaemon, StreamReply, checkReply, createUserspaceDevice,
  initFrames, replyKey, serveProtocol, silentLogger, type ReplyKey,
} from '../src/index.ts';

await initFrames();
const dir = mkdtempSync(join(tmpdir(), 'walbjs-replies-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

type Answer = (params: Record<string, unknown>) => unknown;

/** A daemon look-alike: `answers[key]` (by replyKey) gives each result; `seen` lists the keys asked. */
async function fakeDaemon(answers: Record<string, Answer>) {
  const seen: string[] = [];
  const srv = await serveProtocol({ host: '127.0.0.1', port: 0 }, async (method, params) => {
    const p = (params ?? {}) as Record<string, unknown>;
    const key = replyKey(method, p);
    seen.push(key);
    const a = answers[key];
    if (!a) throw Object.assign(new Error(`fake: nothing to answer ${key}`), { code: 'ERR_FAKE' });
    return a(p);
  });
  return { at: { host: '127.0.0.1', port: Number(srv.address.split(':').pop()) }, seen, close: () => srv.close() };
}

async function malformed(p: Promise<unknown>, command: string, field: string): Promise<void> {
  let e: unknown;
  try { await p; } catch (x) { e = x; }
  assert.ok(e !== undefined, `${command}: the malformed reply was accepted`);
  assert.instance(e, ProtocolError, `${command}: ${String(e)}`);
  assert.instance(e, MalformedReplyError, `${command}: ${String(e)}`);
  const m = e as MalformedReplyError;
  assert.is(m.code, 'ERR_WALB_PROTOCOL');
  assert.is(m.command, command);
  assert.is(m.field, field);
  assert.ok(m.message.includes(command) && m.message.includes(field), m.message);
}

const c = new Controller({ timeoutMs: 10_000, pollMs: 10 });
const good = {
  restorable: [{ gid: 5n, timestamp: 1_700_000_000, isExplicit: true, line: '5 2023-11-14T22:13:20 1' }],
  daemonStatus: { hostType: 'archive', nodeId: 'a-1', volumes: [{ volId: 'v', state: 'Archived' }] },
  volStatus: { volId: 'v', state: 'Archived', numDiff: 3, sizeLb: 2048n },
};

const M = suite('malformed replies to the Controller');

// One peer for the table below; each case sets the one answer it needs.
const answers: Record<string, Answer> = {};
let peer: Awaited<ReturnType<typeof fakeDaemon>>;
M.before(async () => { peer = await fakeDaemon(answers); });
M.after(() => peer.close());

// A wrong type, a missing field, an object for a list: each fails with the command and the field.
const typedCases: Array<[key: string, answer: Answer, call: () => Promise<unknown>, command: string, field: string]> = [
    ['get state', () => ({ state: 'Archived' }), () => c.getState(peer.at, 'v'), 'get state', 'result'],
    ['get state', () => 7, () => c.getState(peer.at, 'v'), 'get state', 'result'],
    ['get vol', () => ({ 0: 'v' }), () => c.getVolList(peer.at), 'get vol', 'result'],
    ['get vol', () => ['v', 5], () => c.getVolList(peer.at), 'get vol', 'result[1]'],
    ['get vol', () => ['v', '../etc'], () => c.getVolList(peer.at), 'get vol', 'result[1]'],
    ['get restorable', () => ({}), () => c.getRestorable(peer.at, 'v'), 'get restorable', 'result'],
    ['get restorable', () => [{ ...good.restorable[0], gid: '5' }], () => c.getRestorable(peer.at, 'v'), 'get restorable', 'result[0].gid'],
    ['get restorable', () => [good.restorable[0], { gid: 6n, isExplicit: false, line: '6' }], () => c.getRestorable(peer.at, 'v'), 'get restorable', 'result[1].timestamp'],
    ['get restorable', () => [{ ...good.restorable[0], gid: -1n }], () => c.getRestorable(peer.at, 'v'), 'get restorable', 'result[0].gid'],
    ['get restorable', () => [{ ...good.restorable[0], isExplicit: 1 }], () => c.getRestorable(peer.at, 'v'), 'get restorable', 'result[0].isExplicit'],
    ['get restored', () => ['5'], () => c.getRestored(peer.at, 'v'), 'get restored', 'result[0]'],
    ['status', () => ({ ...good.daemonStatus, volumes: [{ volId: 'v', state: 7 }] }), () => c.status(peer.at), 'status', 'result.volumes[0].state'],
    ['status', () => ({ ...good.daemonStatus, volumes: { volId: 'v', state: 'Archived' } }), () => c.status(peer.at), 'status', 'result.volumes'],
    ['status', () => ({ ...good.daemonStatus, hostType: 'router' }), () => c.status(peer.at), 'status', 'result.hostType'],
    ['status volId', () => ({ volId: 'v' }), () => c.status(peer.at, 'v'), 'status', 'result.state'],
    ['status volId', () => [good.volStatus], () => c.status(peer.at, 'v'), 'status', 'result'],
    ['snapshot', () => ({ gid: '5', lsid: 8n }), () => c.snapshot(peer.at, 'v'), 'snapshot', 'result.gid'],
    ['snapshot', () => ({ gid: 5n }), () => c.snapshot(peer.at, 'v'), 'snapshot', 'result.lsid'],
    ['apply wait', () => ({ applied: '2' }), () => c.apply(peer.at, 'v', 5n), 'apply', 'result.applied'],
    ['apply wait', () => ({ applied: 2, bytesWritten: '4096' }), () => c.apply(peer.at, 'v', 5n), 'apply', 'result.bytesWritten'],
    ['merge wait', () => ({ merged: 2 }), () => c.merge(peer.at, 'v', 0n, { gidE: 5n }), 'merge', 'result.name'],
    ['restore', () => ({ accepted: 'yes' }), () => c.restore(peer.at, 'v', 5n), 'restore', 'result.accepted'],
    ['del-restored', () => ({ deleted: null }), () => c.delRestored(peer.at, 'v', 5n), 'del-restored', 'result.deleted'],
    ['shutdown', () => null, () => c.shutdown(peer.at), 'shutdown', 'result'],
];
for (const [key, answer, call, command, field] of typedCases) {
  M(`${command}: ${field} of ${JSON.stringify(answer({}), (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`, async () => {
    for (const k of Object.keys(answers)) delete answers[k];
    answers[key] = answer;
    await malformed(call(), command, field);
  });
}

M('a reply checked late in a sequence: restore\'s restored-path, fullBackup\'s archive list and its full-bkp answer', async () => {
  const answers: Record<string, Answer> = {
    restore: () => ({ accepted: true }),
    'get restored': () => [5n],
    'get restored-path': () => ({ path: '/x' }),
  };
  const peer = await fakeDaemon(answers);
  try {
    await malformed(c.restore(peer.at, 'v', 5n), 'get restored-path', 'result');
    // One peer plays the three roles: storage SyncReady, archive SyncReady, proxy Stopped.
    Object.assign(answers, {
      'get state': (p: Record<string, unknown>) => (p.volId === 'v' ? 'SyncReady' : 'Clear'),
      'archive-info list': () => ({ archId: 'a0', host: '127.0.0.1', port: 1, cmpr: 'snappy:0', delaySec: 0 }),
    });
    await malformed(c.fullBackup(peer.at, [peer.at], peer.at, 'v', { timeoutMs: 5000 }), 'archive-info list', 'result');
    Object.assign(answers, {
      'archive-info list': () => [{ archId: 'a0', host: '127.0.0.1', port: '10200', cmpr: 'snappy:0', delaySec: 0 }],
    });
    await malformed(c.fullBackup(peer.at, [peer.at], peer.at, 'v', { timeoutMs: 5000 }), 'archive-info list', 'result[0].port');
    Object.assign(answers, {
      'archive-info list': () => [],
      'archive-info add': () => ({ state: 'Stopped' }),
      start: () => ({ state: 'Started' }),
      'full-bkp wait': () => ({ state: 'Target' }),
    });
    await malformed(c.fullBackup(peer.at, [peer.at], peer.at, 'v', { timeoutMs: 5000 }), 'full-bkp', 'result.snap');
  } finally {
    await peer.close();
  }
});

M('virt-full-scan: a result of the wrong type, or counting bytes that never arrived, fails and leaves no file', async () => {
  let result: unknown = { bytes: '4096' };
  const srv = await serveProtocol({ host: '127.0.0.1', port: 0 }, () => new StreamReply((async function* () { yield Buffer.alloc(4096, 1); })(), () => result));
  const at = { host: '127.0.0.1', port: Number(srv.address.split(':').pop()) };
  const out = join(dir, 'scan.img');
  try {
    await malformed(c.virtFullScan(at, 'v', 0n, out), 'virt-full-scan', 'result.bytes');
    assert.not.ok(existsSync(out));
    result = { bytes: 8192 };
    await malformed(c.virtFullScan(at, 'v', 0n, out), 'virt-full-scan', 'result.bytes');
    assert.not.ok(existsSync(out));
    result = { bytes: 4096 };
    assert.is(await c.virtFullScan(at, 'v', 0n, out), 4096);
  } finally {
    await srv.close();
  }
});

M('the generic request and get check what the table knows and pass the rest through', async () => {
  const answers: Record<string, Answer> = {
    'get state': () => ['Archived'],
    'get restorable': () => 'none',
    snapshot: () => ({ gid: 1.5, lsid: 3n }),
    'get lsids': () => 'anything at all',
    kick: () => ({ kicked: 'whatever' }),
  };
  const peer = await fakeDaemon(answers);
  try {
    await malformed(c.get(peer.at, 'state', { volId: 'v' }), 'get state', 'result');
    await malformed(c.get(peer.at, 'restorable', { volId: 'v' }), 'get restorable', 'result');
    await malformed(c.request(peer.at, 'get', { target: 'state', volId: 'v' }), 'get state', 'result');
    await malformed(c.request(peer.at, 'snapshot', { volId: 'v' }), 'snapshot', 'result.gid');
    assert.is(await c.get(peer.at, 'lsids', { volId: 'v' }), 'anything at all');
    assert.equal(await c.request(peer.at, 'kick', {}), { kicked: 'whatever' });
  } finally {
    await peer.close();
  }
});

M.run();

const G = suite('well-formed replies');

G('come through with their values: bigints, numbers taken as u64, extra fields kept', async () => {
  const answers: Record<string, Answer> = {
    'get state': () => 'Archived',
    'get vol': () => ['a', 'b-2'],
    'get restorable': () => good.restorable,
    'get restored': () => [5n, 7],
    status: () => good.daemonStatus,
    'status volId': () => good.volStatus,
    snapshot: () => ({ gid: 9n, lsid: 4096 }),
    'apply wait': () => ({ applied: 2, base: '<|5|>', bytesWritten: 8192 }),
    'merge wait': () => ({ merged: 3, name: '20231114221320-M--0-5.wdiff' }),
    shutdown: () => ({ accepted: true }),
    'del-restored': () => ({ deleted: 5n }),
  };
  const peer = await fakeDaemon(answers);
  try {
    assert.is(await c.getState(peer.at, 'v'), 'Archived');
    assert.equal(await c.getVolList(peer.at), ['a', 'b-2']);
    assert.equal(await c.getRestorable(peer.at, 'v'), good.restorable);
    assert.equal(await c.getRestored(peer.at, 'v'), [5n, 7n]);
    assert.equal(await c.status(peer.at), good.daemonStatus);
    const vs = await c.status(peer.at, 'v');
    assert.equal(vs, good.volStatus);
    assert.is(vs.sizeLb, 2048n);
    assert.is(await c.snapshot(peer.at, 'v'), 9n);
    assert.equal(await c.apply(peer.at, 'v', 5n), { applied: 2, base: '<|5|>', bytesWritten: 8192 });
    assert.equal(await c.merge(peer.at, 'v', 0n, { maxSizeMb: 10 }), { merged: 3, name: '20231114221320-M--0-5.wdiff' });
    await c.shutdown(peer.at);
    await c.delRestored(peer.at, 'v', 5n);
  } finally {
    await peer.close();
  }
});

G('checkReply never throws anything but MalformedReplyError, whatever the value', () => {
  const keys = Object.keys(REPLY_CHECKS) as ReplyKey[];
  const value = fc.letrec((tie) => ({
    v: fc.oneof(
      { depthSize: 'small' },
      fc.constant(null), fc.constant(undefined), fc.boolean(), fc.double(), fc.integer(), fc.bigInt(), fc.string(),
      fc.constantFrom('Archived', 'v', 'snappy:0', '__proto__', 'storage'),
      fc.uint8Array({ maxLength: 4 }).map((b) => Buffer.from(b)),
      fc.array(tie('v'), { maxLength: 4 }),
      fc.dictionary(fc.constantFrom('gid', 'lsid', 'state', 'volId', 'volumes', 'timestamp', 'isExplicit', 'line', 'archId', 'host', 'port', 'accepted', '__proto__', 'x'), tie('v'), { maxKeys: 6 }),
    ),
  })).v;
  fc.assert(fc.property(fc.constantFrom(...keys), value, (key, v) => {
    try { checkReply(key, v); } catch (e) {
      if (!(e instanceof MalformedReplyError)) throw e;
    }
  }), { numRuns: 3000 });
});

G.run();

const S = suite('the storage\'s own request');

S('a full-bkp whose archive answers get state with something else than a state word fails with the ProtocolError, not archive-not-ready', async () => {
  const dev = join(dir, 'dev');
  await createUserspaceDevice(dev, { sizeBytes: 4n << 20n, logBytes: 2n << 20n });
  const archive = await fakeDaemon({ 'get state': () => ({ state: 'SyncReady' }) });
  const storage = await new StorageDaemon({ baseDir: join(dir, 'storage'), logger: silentLogger, archive: archive.at, retryDelayMs: 50 }).start();
  const sx = { host: '127.0.0.1', port: Number(storage.address.split(':').pop()) };
  try {
    await c.request(sx, 'init-vol', { volId: 'v', wdevPath: dev });
    let e: unknown;
    try { await c.request(sx, 'full-bkp', { volId: 'v', wait: true }); } catch (x) { e = x; }
    assert.instance(e, RemoteError);
    assert.is((e as RemoteError).remoteCode, 'ERR_WALB_PROTOCOL');
    assert.match((e as Error).message, /malformed reply to get state: result: expected a string/);
    assert.is(await c.getState(sx, 'v'), 'SyncReady');
  } finally {
    await storage.stop('force');
    await archive.close();
  }
});

S.run();
