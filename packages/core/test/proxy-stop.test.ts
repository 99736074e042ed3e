// The proxy's stop modes and its background senders, on a real proxy listening on loopback whose
// archive is down: a `stop empty` waiting for an archive that does not answer is cancelled by
// `stop force`, state reports are what the commands did, a wait that ends later changes nothing;
// a sender that fails before it reaches the archive (a queued file that vanished or is not a
// wdiff) is logged and retried with backoff, never an unhandled rejection.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { imageToWdiff } from '@walbjs/diff';
import { Controller, ProxyDaemon, RemoteError, createDiffFileName, metaSnap, type Logger } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'walbjs-proxy-stop-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const c = new Controller({ pollMs: 20, timeoutMs: 10_000 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Every rejection nobody handled: one is a daemon that would have died (Node's default is to exit).
const unhandled: unknown[] = [];
process.on('unhandledRejection', (e) => { unhandled.push(e); });

/** A loopback port nothing listens on: the archive is down. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A small valid wdiff |g|-->|g+1| in a volume's send queue for archive a0. */
async function queueDiff(base: string, volId: string, gid: bigint): Promise<string> {
  const img = join(dir, `img-${gid}`);
  writeFileSync(img, randomBytes(64 << 10));
  const name = createDiffFileName({ snapB: metaSnap(gid), snapE: metaSnap(gid + 1n), isMergeable: true, isCompDiff: false, timestamp: 1_700_000_000, dataSize: 0n });
  const out = join(base, volId, 'sendto', 'a0', name);
  await imageToWdiff(img, out, { uuid: Buffer.alloc(16, 7) });
  return out;
}

function recorder(): Logger & { events: Array<{ event: string; fields?: Record<string, unknown> }> } {
  const events: Array<{ event: string; fields?: Record<string, unknown> }> = [];
  return { events, log: (_level, event, fields) => { events.push({ event, fields }); } };
}

async function startProxy(name: string, logger: Logger = recorder(), opts: { retryTimeoutSec?: number } = {}) {
  const base = join(dir, name);
  const proxy = await new ProxyDaemon({ baseDir: base, logger, retryDelayMs: 50, maxRetryDelayMs: 400, ...opts }).start();
  const px = { host: '127.0.0.1', port: Number(proxy.address.slice(proxy.address.lastIndexOf(':') + 1)) };
  await c.request(px, 'archive-info', { op: 'add', volId: 'vol0', archId: 'a0', addr: `127.0.0.1:${await deadPort()}` });
  await c.request(px, 'start', { volId: 'vol0' });
  return { base, proxy, px };
}

async function failure(p: Promise<unknown>): Promise<RemoteError> {
  try { await p; } catch (e) { if (e instanceof RemoteError) return e; throw e; }
  throw new Error('it succeeded');
}

const S = suite('proxy stop modes');

S('stop force cancels a stop empty that waits for a down archive; a later start stands', async () => {
  const { base, proxy, px } = await startProxy('cancel');
  try {
    const file = await queueDiff(base, 'vol0', 0n);
    const empty = c.request(px, 'stop', { volId: 'vol0', mode: 'empty' }, { timeoutMs: 30_000 });
    const emptyDone = empty.then(() => 'ok', (e: unknown) => e);
    await c.waitForState(px, 'vol0', ['WaitForEmpty'], 5000);
    // While it waits: wlogs are refused, as in the original, and a plain stop or a start is refused
    // naming what cancels it; a second stop empty too.
    assert.match((await failure(c.request(px, 'stop', { volId: 'vol0' }))).message, /stop force/);
    for (const [cmd, params] of [['start', {}], ['clear-vol', {}], ['archive-info', { op: 'add', archId: 'a1', addr: '127.0.0.1:1' }]] as const) {
      const e = await failure(c.request(px, cmd, { volId: 'vol0', ...params }));
      assert.is(e.remoteCode, 'ERR_WALB_STATE', cmd);
      assert.match(e.message, /is WaitForEmpty/, cmd);
    }
    assert.is((await failure(c.request(px, 'stop', { volId: 'vol0', mode: 'empty' }))).remoteCode, 'ERR_WALB_STATE');
    assert.is(await c.getState(px, 'vol0'), 'WaitForEmpty');

    assert.equal(await c.request(px, 'stop', { volId: 'vol0', mode: 'force' }), { state: 'Stopped' });
    assert.is(await c.getState(px, 'vol0'), 'Stopped');
    assert.is(((await c.status(px, 'vol0')) as { state: string }).state, 'Stopped');
    const e = await emptyDone;
    assert.ok(e instanceof RemoteError && e.remoteCode === 'ERR_WALB_STATE', `stop empty ended with ${String(e)}`);
    assert.match((e as RemoteError).message, /cancel/);

    assert.equal(await c.request(px, 'start', { volId: 'vol0' }), { state: 'Started' });
    assert.is(await c.getState(px, 'vol0'), 'Started');
    // The queue drains (as if the archive came back): the cancelled wait must not stop the volume.
    rmSync(file);
    await sleep(400);
    assert.is(await c.getState(px, 'vol0'), 'Started');
  } finally {
    await proxy.stop('force');
  }
});

S('stop empty ends in Stopped once the queue drains, and a failing archive sends it back to Started', async () => {
  const { base, proxy, px } = await startProxy('drain', recorder(), { retryTimeoutSec: 0.3 });
  try {
    const file = await queueDiff(base, 'vol0', 0n);
    const empty = c.request(px, 'stop', { volId: 'vol0', mode: 'empty' }, { timeoutMs: 30_000 });
    await c.waitForState(px, 'vol0', ['WaitForEmpty'], 5000);
    // The sender gives up after retryTimeoutSec: the stop empty fails and the volume is Started again.
    const e = await failure(empty);
    assert.is(e.remoteCode, 'ERR_WALB_STATE');
    assert.is(await c.getState(px, 'vol0'), 'Started');

    const again = c.request(px, 'stop', { volId: 'vol0', mode: 'empty' }, { timeoutMs: 30_000 });
    await c.request(px, 'kick', { volId: 'vol0' });
    await c.waitForState(px, 'vol0', ['WaitForEmpty'], 5000);
    rmSync(file);
    assert.equal(await again, { state: 'Stopped' });
    assert.is(await c.getState(px, 'vol0'), 'Stopped');
  } finally {
    await proxy.stop('force');
  }
});

S('a sender that fails before reaching the archive is logged and retried, not an unhandled rejection', async () => {
  const log = recorder();
  const { base, proxy, px } = await startProxy('broken', log);
  try {
    const q = join(base, 'vol0', 'sendto', 'a0');
    // A queued name whose file is gone (a resend replaced it between readdir and stat) …
    symlinkSync(join(dir, 'nowhere'), join(q, createDiffFileName({ snapB: metaSnap(0n), snapE: metaSnap(1n), isMergeable: true, isCompDiff: false, timestamp: 1_700_000_000, dataSize: 0n })));
    await c.request(px, 'kick', { volId: 'vol0' });
    await sleep(300);
    assert.equal(unhandled, [], 'a vanished file killed the sender');
    assert.ok(((await c.status(px, 'vol0')).archives as unknown[]).length === 1, 'status lists the archive');
    // … and a file that is not a wdiff at all.
    for (const n of readdirSync(q)) rmSync(join(q, n));
    writeFileSync(join(q, createDiffFileName({ snapB: metaSnap(1n), snapE: metaSnap(2n), isMergeable: true, isCompDiff: false, timestamp: 1_700_000_000, dataSize: 0n })), 'not a wdiff');
    await c.request(px, 'kick', { volId: 'vol0' });
    await sleep(600);
    assert.equal(unhandled, [], 'a broken wdiff killed the sender');
    const retries = log.events.filter((x) => x.event === 'wdiff-send-retry').map((x) => Number(x.fields?.inMs));
    assert.ok(retries.length >= 2, `retried: ${JSON.stringify(retries)}`);
    assert.ok(retries.at(-1)! > retries[0], `with backoff: ${JSON.stringify(retries)}`);
    // The daemon goes on serving.
    assert.is(await c.getState(px, 'vol0'), 'Started');
  } finally {
    await proxy.stop('force');
  }
});

S.run();
