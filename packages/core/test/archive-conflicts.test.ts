// The archive's readers against its writers, and the ways out of work cut short. A virt-full-scan
// or a bhash keeps an apply (which rewrites the base in place) away while it reads, and reads the
// chain as it is when it starts even if a merge replaced it since the request; a restore racing a
// merge reads whole diffs; an apply that failed (no space) is finished by the next apply, and what
// it left half-applied is never offered as a snapshot; a failed restore leaves no temporary image;
// a full sync given in-process and never committed can be reset or cleared. Real daemons on
// loopback, real wdiffs, real files (a tmpfs of the test's own for the no-space cases, as root).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { open, readdir, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareImagesToWdiff } from '@walbjs/diff';
import {
  ArchiveDaemon, Controller, FrameDecoder, FrameType, ProtocolConnection, RemoteError, StateError, StreamReply, WalbCoreError,
  decodeMessage, encodeFrame, encodeMessage, initFrames, silentLogger,
} from '../src/index.ts';

await initFrames();
const dir = mkdtempSync(join(tmpdir(), 'walbjs-archive-conflicts-'));
const logger = process.env.WALB_TEST_LOG ? undefined : silentLogger;
const uuid = Buffer.alloc(16, 0x5a);
const T0 = 1_700_000_000;
const MiB = 1 << 20;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const asRoot = process.getuid?.() === 0;
const controller = new Controller({ pollMs: 20, timeoutMs: 30_000 });
const hp = (a: ArchiveDaemon) => ({ host: '127.0.0.1', port: Number(a.address.slice(a.address.lastIndexOf(':') + 1)) });

/** Bytes of a seeded xorshift: incompressible, and the same for the same seed. */
function noise(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed | 1;
  for (let i = 0; i < n; i += 4) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b.writeInt32LE(x | 0, i); }
  return b;
}

/** `base` with `len` bytes of fresh noise (seeded by `seed`) at each offset. */
function overwrite(base: Buffer, seed: number, len: number, offsets: number[]): Buffer {
  const b = Buffer.from(base);
  offsets.forEach((o, i) => noise(seed * 1000 + i, len).copy(b, o));
  return b;
}

/** Write an image as a sparse file: the all-zero 64 KiB blocks stay holes. */
async function writeSparse(path: string, img: Buffer): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.truncate(img.length);
    for (let o = 0; o < img.length; o += 64 << 10) {
      const blk = img.subarray(o, o + (64 << 10));
      if (blk.some((x) => x !== 0)) await fh.write(blk, 0, blk.length, o);
    }
  } finally { await fh.close(); }
}

const snap = (g: number) => ({ gidB: BigInt(g), gidE: BigInt(g) });

/**
 * Volume `volId` of `a` whose clean snapshot gid i is `images[i]`: the full sync of images[0]
 * committed as gid 0, then one wdiff per later image, received as a proxy sends them.
 */
async function seedVolume(a: ArchiveDaemon, volId: string, images: Buffer[], opts: { mergeable?: boolean } = {}): Promise<void> {
  const work = mkdtempSync(join(dir, `seed-${volId}-`));
  const sizeLb = BigInt(images[0].length / 512);
  await a.call('init-vol', { volId });
  await a.call('full-sync', { volId, sizeLb, uuid, timestamp: T0 }, { upload: (async function* () { yield images[0]; })() });
  await a.call('full-sync-commit', { volId, snap: snap(0), timestamp: T0 });
  const older = join(work, 'older.img'), newer = join(work, 'newer.img'), wdiff = join(work, 'd.wdiff');
  for (let i = 1; i < images.length; i++) {
    await writeSparse(older, images[i - 1]);
    await writeSparse(newer, images[i]);
    await compareImagesToWdiff(older, newer, wdiff);
    const diff = { snapB: snap(i - 1), snapE: snap(i), isMergeable: opts.mergeable ?? false, isCompDiff: false, timestamp: T0 + i, dataSize: 0n };
    await a.call('wdiff-transfer', { volId, uuid, sizeLb, diff }, { upload: createReadStream(wdiff) });
  }
  rmSync(work, { recursive: true, force: true });
}

/** The typed error `f` fails with (in-process calls throw the daemon's own errors). */
async function failure(f: () => Promise<unknown>): Promise<Error> {
  try { await f(); } catch (e) { return e as Error; }
  assert.unreachable('expected a failure');
  throw new Error('unreachable');
}

const code = (e: Error) => (e instanceof RemoteError ? e.remoteCode : (e as WalbCoreError).code);

/** Wait until `f` holds, checking every `everyMs` (0: every turn of the event loop), for at most 5 s. */
async function until(what: string, f: () => Promise<boolean>, everyMs = 0): Promise<void> {
  const end = Date.now() + 5000;
  while (!(await f())) {
    if (Date.now() > end) assert.unreachable(`timed out waiting for ${what}`);
    await new Promise((r) => (everyMs ? setTimeout(r, everyMs) : setImmediate(r)));
  }
}

const actions = async (a: ArchiveDaemon, volId: string) => ((await a.call('get', { target: 'all-actions', volId })) as Array<{ action: string }>).map((x) => x.action);

const archive = await new ArchiveDaemon({ baseDir: join(dir, 'archive'), logger }).start();

const S = suite('archive readers against apply and merge');

// A raw client left paused (by a failed test) would keep the daemon's stop waiting for it.
const clients = new Set<Socket>();

S.after(async () => {
  for (const c of clients) c.destroy();
  await archive.stop('force');
});

// 16 MiB: the scan streams it in four 4 MiB chunks; every chunk has blocks each snapshot changes.
const SCAN_SIZE = 16 * MiB;
const scanOffsets = [0, 5 * MiB, 9 * MiB, 13 * MiB, 16 * MiB - (256 << 10)];
const scan0 = overwrite(Buffer.alloc(SCAN_SIZE), 1, 1 * MiB, [0]);
const scan1 = overwrite(scan0, 2, 256 << 10, scanOffsets);
const scan2 = overwrite(scan1, 3, 256 << 10, scanOffsets);
const scan3 = overwrite(scan2, 4, 256 << 10, scanOffsets);

S('an apply is refused while a virt-full-scan reads; the scan gets exactly its snapshot', async () => {
  await seedVolume(archive, 'scan', [scan0, scan1, scan2]);
  const reply = await archive.call('virt-full-scan', { volId: 'scan', gid: 1n });
  assert.instance(reply, StreamReply);
  const it = (reply as StreamReply).chunks[Symbol.asyncIterator]();
  const h = createHash('sha256');
  const first = await it.next();
  assert.not.ok(first.done);
  h.update(first.value);
  // The reader holds its first chunk; the rest of the image is still to be read from the base.
  const e = await failure(() => archive.call('apply', { volId: 'scan', gid: 2n, wait: true }));
  assert.instance(e, StateError, String(e));
  assert.match(e.message, /VirtFullScan/);
  assert.equal(await actions(archive, 'scan'), ['VirtFullScan']);
  let n = first.value.byteLength;
  for (let r = await it.next(); !r.done; r = await it.next()) { h.update(r.value); n += r.value.byteLength; }
  assert.is(n, SCAN_SIZE);
  assert.is(h.digest('hex'), sha(scan1), 'the scan is the image at gid 1, whole');
  // Done reading: the apply may go.
  assert.equal(await actions(archive, 'scan'), []);
  await archive.call('apply', { volId: 'scan', gid: 2n, wait: true });
  assert.is(((await archive.call('bhash', { volId: 'scan', gid: 2n })) as { sha256: string }).sha256, sha(scan2));
});

S('a slow client over the wire: the apply is refused with a typed error until the scan ends or the client goes', async () => {
  // 64 MiB, so most of the image is still unsent when the client stops reading.
  const size = 64 * MiB;
  const offs = [0, 20 * MiB, 40 * MiB, 60 * MiB, size - MiB];
  const w0 = overwrite(Buffer.alloc(size), 11, MiB, [0]);
  const w1 = overwrite(w0, 12, MiB, offs);
  const w2 = overwrite(w1, 13, MiB, offs);
  await seedVolume(archive, 'wire', [w0, w1, w2]);
  const ax = hp(archive);
  const s = connect(ax.port, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  clients.add(s);
  s.pause();
  const [fh, fp] = encodeFrame(FrameType.REQUEST, 1, encodeMessage({ method: 'virt-full-scan', params: { volId: 'wire', gid: 1n } }));
  s.write(Buffer.concat([fh, fp]));
  await until('the scan to start', async () => (await actions(archive, 'wire')).includes('VirtFullScan'), 5);
  const e = await failure(() => controller.apply(ax, 'wire', 2n));
  assert.instance(e, RemoteError);
  assert.is(code(e), 'ERR_WALB_STATE', e.message);
  const dec = new FrameDecoder(64 * MiB);
  const h = createHash('sha256');
  let n = 0;
  const end = await new Promise<{ type: number; body: unknown }>((resolve) => {
    s.on('data', (d: Buffer) => {
      for (const f of dec.push(d)) {
        if (f.type === FrameType.CHUNK) { h.update(f.payload); n += f.payload.byteLength; } else if (f.type === FrameType.RESPONSE || f.type === FrameType.ERROR) resolve({ type: f.type, body: decodeMessage(f.payload) });
      }
    });
    s.resume();
  });
  assert.is(end.type, FrameType.RESPONSE, JSON.stringify(end.body, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
  assert.is(n, size);
  assert.is(h.digest('hex'), sha(w1), 'the image at gid 1, whole');

  // A client that goes away part way releases the volume too.
  s.removeAllListeners('data');
  const [gh, gp] = encodeFrame(FrameType.REQUEST, 2, encodeMessage({ method: 'virt-full-scan', params: { volId: 'wire', gid: 1n } }));
  const got = await new Promise<number>((resolve) => {
    let m = 0;
    s.on('data', (d: Buffer) => { m += d.byteLength; if (m > 2 * MiB) { s.pause(); resolve(m); } });
    s.write(Buffer.concat([gh, gp]));
  });
  assert.ok(got > 0);
  assert.equal(await actions(archive, 'wire'), ['VirtFullScan']);
  s.destroy();
  await until('the scan to be released', async () => (await actions(archive, 'wire')).length === 0, 5);
  await controller.apply(ax, 'wire', 2n);
  await controller.virtFullScan(ax, 'wire', 2n, join(dir, 'wire2.img'));
  assert.is(sha(readFileSync(join(dir, 'wire2.img'))), sha(w2));
  rmSync(join(dir, 'wire2.img'));
});

S('an apply is refused while a bhash reads', async () => {
  await seedVolume(archive, 'hash', [scan0, scan1, scan2]);
  const pending = archive.call('bhash', { volId: 'hash', gid: 1n });
  await until('the bhash to start', async () => (await actions(archive, 'hash')).includes('BlockHash'));
  const e = await failure(() => archive.call('apply', { volId: 'hash', gid: 2n, wait: true }));
  assert.instance(e, StateError, String(e));
  assert.is(((await pending) as { sha256: string }).sha256, sha(scan1));
  assert.equal(await actions(archive, 'hash'), []);
  await archive.call('apply', { volId: 'hash', gid: 2n, wait: true });
});

S('a scan asked before a merge reads the merged chain once it starts', async () => {
  await seedVolume(archive, 'merge', [scan0, scan1, scan2, scan3], { mergeable: true });
  const reply = (await archive.call('virt-full-scan', { volId: 'merge', gid: 3n })) as StreamReply;
  // 1-->2 and 2-->3 become 1-->3; the files the request saw are gone.
  await archive.call('merge', { volId: 'merge', gidB: 1n, gidE: 3n, wait: true });
  const h = createHash('sha256');
  for await (const b of reply.chunks) h.update(b);
  assert.is(h.digest('hex'), sha(scan3));
});

S('restores racing merges read whole diffs: the image, or not-found when the gid was merged away', async () => {
  // A long chain makes the restore's listing, opening and reading of its diffs take a while; a
  // merge of two early diffs deletes them part way through.
  const N = 200;
  const small = 64 << 10;
  const imgs: Buffer[] = [Buffer.alloc(small)];
  for (let i = 1; i <= N; i++) imgs.push(overwrite(imgs[i - 1], 100 + i, 4096, [(i % 16) * 4096]));
  await seedVolume(archive, 'race', imgs, { mergeable: true });
  for (let k = 0; k + 3 <= 60; k += 3) {
    const gidB = BigInt(k + 1);
    // A restore of the latest gid (always there) and one of a gid inside the merged range.
    const [latest, inside, merged] = await Promise.allSettled([
      archive.call('restore', { volId: 'race', gid: BigInt(N), wait: true }),
      archive.call('bhash', { volId: 'race', gid: gidB + 1n }),
      archive.call('merge', { volId: 'race', gidB, gidE: gidB + 2n, wait: true }),
    ]);
    assert.is(latest.status, 'fulfilled', latest.status === 'rejected' ? String(latest.reason) : '');
    assert.is(sha(readFileSync(((latest as PromiseFulfilledResult<{ path: string }>).value).path)), sha(imgs[N]));
    await archive.call('del-restored', { volId: 'race', gid: BigInt(N) });
    if (inside.status === 'fulfilled') assert.is((inside.value as { sha256: string }).sha256, sha(imgs[k + 2]));
    else assert.is(code(inside.reason as Error), 'ERR_WALB_NOT_FOUND', String(inside.reason));
    assert.is(merged.status, 'fulfilled', merged.status === 'rejected' ? String(merged.reason) : '');
  }
});

S.run();

const F = suite('the ways out of interrupted work');

F.after(async () => {
  rmSync(dir, { recursive: true, force: true });
});

/** A tmpfs of `size` mounted on a fresh folder for `f`, unmounted after. */
async function withTmpfs(size: string, f: (mnt: string) => Promise<void>): Promise<void> {
  const mnt = mkdtempSync(join(tmpdir(), 'walbjs-archive-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt]);
  try {
    await f(mnt);
  } finally {
    execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
}

/** Fill the file system of `path` up to `leave` free bytes with a file `path`. */
function fill(path: string, leave: number): void {
  const st = statfsSync(join(path, '..'));
  const free = st.bavail * st.bsize;
  writeFileSync(path, Buffer.alloc(Math.max(0, free - leave), 0xee));
}

const freeBytes = (p: string) => { const st = statfsSync(p); return st.bavail * st.bsize; };

(asRoot ? F : F.skip)('an apply that ran out of space is finished by the next apply; its half is never a snapshot', async () => {
  await withTmpfs('32m', async (mnt) => {
    const a = await new ArchiveDaemon({ baseDir: join(mnt, 'archive'), logger }).start();
    try {
      const i0 = Buffer.alloc(16 * MiB);
      const i1 = overwrite(i0, 21, 12 * MiB, [2 * MiB]);
      await seedVolume(a, 'v', [i0, i1]);
      const filler = join(mnt, 'filler');
      fill(filler, 4 * MiB);
      const e = await failure(() => a.call('apply', { volId: 'v', gid: 1n, wait: true }));
      assert.match(`${(e as NodeJS.ErrnoException).code} ${e.message}`, /ENOSPC|no space/i, String(e));
      const base = (await a.call('get', { target: 'base', volId: 'v' })) as { isApplying: boolean; text: string };
      assert.ok(base.isApplying, base.text);
      await rm(filler);
      // Half-applied: gid 0 is gone for good, gid 1 is whole (the base with the diff laid over it).
      const restorable = ((await a.call('get', { target: 'restorable', volId: 'v', all: true })) as Array<{ gid: bigint }>).map((r) => r.gid);
      assert.equal(restorable, [1n]);
      assert.is(code(await failure(() => a.call('restore', { volId: 'v', gid: 0n, wait: true }))), 'ERR_WALB_NOT_FOUND');
      assert.is(code(await failure(() => a.call('bhash', { volId: 'v', gid: 0n }))), 'ERR_WALB_NOT_FOUND');
      assert.is(((await a.call('bhash', { volId: 'v', gid: 1n })) as { sha256: string }).sha256, sha(i1));
      // Its diffs stay as they are until it is finished (the original's verifyNotApplying).
      assert.is(code(await failure(() => a.call('merge', { volId: 'v', gidB: 0n, gidE: 1n, wait: true }))), 'ERR_WALB_STATE');
      // The way out: apply again.
      await a.call('apply', { volId: 'v', gid: 1n, wait: true });
      const after = (await a.call('get', { target: 'base', volId: 'v' })) as { isApplying: boolean; text: string };
      assert.is(after.text, '<|1|>');
      assert.is(await a.call('get', { target: 'num-diff', volId: 'v' }), 0);
      assert.ok(readFileSync(join(mnt, 'archive', 'v', 'base.img')).equals(i1), 'the base is the image at gid 1');
      const r = (await a.call('restore', { volId: 'v', gid: 1n, wait: true })) as { path: string };
      assert.is(sha(readFileSync(r.path)), sha(i1));
    } finally {
      await a.stop('force');
    }
  });
});

(asRoot ? F : F.skip)('a restore that ran out of space leaves no temporary image, and can be done again', async () => {
  await withTmpfs('24m', async (mnt) => {
    const a = await new ArchiveDaemon({ baseDir: join(mnt, 'archive'), logger }).start();
    try {
      const i0 = Buffer.alloc(8 * MiB);
      const i1 = overwrite(i0, 31, 6 * MiB, [MiB]);
      await seedVolume(a, 'v', [i0, i1]);
      const filler = join(mnt, 'filler');
      fill(filler, 2 * MiB);
      const before = freeBytes(mnt);
      const e = await failure(() => a.call('restore', { volId: 'v', gid: 1n, wait: true }));
      assert.match(`${(e as NodeJS.ErrnoException).code} ${e.message}`, /ENOSPC|no space/i, String(e));
      const restoredDir = join(mnt, 'archive', 'v', 'restored');
      assert.equal(readdirSync(restoredDir), [], 'nothing left in restored/');
      assert.equal(await a.call('get', { target: 'restored', volId: 'v' }), []);
      assert.ok(freeBytes(mnt) >= before, 'the space the restore took is free again');
      await rm(filler);
      const r = (await a.call('restore', { volId: 'v', gid: 1n, wait: true })) as { path: string };
      assert.is(sha(readFileSync(r.path)), sha(i1));
    } finally {
      await a.stop('force');
    }
  });
});

F('a restore that fails on a damaged diff leaves no temporary image', async () => {
  const a = await new ArchiveDaemon({ baseDir: join(dir, 'archive-damaged'), logger }).start();
  try {
    const i0 = Buffer.alloc(4 * MiB);
    const i1 = overwrite(i0, 41, 2 * MiB, [MiB]);
    await seedVolume(a, 'v', [i0, i1]);
    const vdir = join(dir, 'archive-damaged', 'v');
    const name = (await readdir(vdir)).find((n) => n.endsWith('.wdiff'))!;
    // Bit rot in the middle of the record data, after the diff was received and verified.
    const fh = await open(join(vdir, name), 'r+');
    try {
      const at = Math.floor((await fh.stat()).size / 2);
      const b = Buffer.alloc(1);
      await fh.read(b, 0, 1, at);
      b[0] ^= 0xff;
      await fh.write(b, 0, 1, at);
    } finally { await fh.close(); }
    const e = await failure(() => a.call('restore', { volId: 'v', gid: 1n, wait: true }));
    assert.match(e.message, /checksum/i, String(e));
    assert.equal(readdirSync(join(vdir, 'restored')), [], 'nothing left in restored/');
    assert.equal(await a.call('get', { target: 'restored', volId: 'v' }), []);
  } finally {
    await a.stop('force');
  }
});

F('a full sync given in-process and never committed: reset-vol and clear-vol get the volume out', async () => {
  const a = await new ArchiveDaemon({ baseDir: join(dir, 'archive-fullsync'), logger }).start();
  const ax = hp(a);
  const image = noise(51, MiB);
  // An embedder's call has no connection whose close would cancel it (full-sync-cancel.test.ts
  // covers that): the volume waits in FullSync for a commit that does not come.
  async function abandoned(volId: string): Promise<void> {
    await controller.request(ax, 'init-vol', { volId });
    await a.call('full-sync', { volId, sizeLb: BigInt(image.length / 512), uuid, timestamp: T0 }, { upload: (async function* () { yield image; })() });
    assert.is(await controller.getState(ax, volId), 'FullSync');
  }
  try {
    await abandoned('r');
    assert.equal(await controller.request(ax, 'reset-vol', { volId: 'r' }), { state: 'SyncReady' });
    assert.is(await controller.getState(ax, 'r'), 'SyncReady');
    assert.equal(await readdir(join(dir, 'archive-fullsync', 'r', 'tmp')), [], 'the received image is gone');
    // A commit that comes late finds nothing to commit.
    assert.is(code(await failure(() => controller.request(ax, 'full-sync-commit', { volId: 'r', snap: snap(0), timestamp: T0 }))), 'ERR_WALB_STATE');
    // And the volume takes a full sync again.
    const c = await ProtocolConnection.connect(ax);
    try {
      await c.upload('full-sync', { volId: 'r', sizeLb: BigInt(image.length / 512), uuid, timestamp: T0 }, [image]);
      await c.request('full-sync-commit', { volId: 'r', snap: snap(0), timestamp: T0 });
    } finally { c.close(); }
    assert.is(await controller.getState(ax, 'r'), 'Archived');
    assert.is(((await controller.request(ax, 'bhash', { volId: 'r', gid: 0n })) as { sha256: string }).sha256, sha(image));

    await abandoned('c');
    assert.equal(await controller.request(ax, 'clear-vol', { volId: 'c' }), { state: 'Clear' });
    assert.is(await controller.getState(ax, 'c'), 'Clear');

    // While the image is still coming, the volume stays busy.
    await controller.request(ax, 'init-vol', { volId: 'u' });
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const c2 = await ProtocolConnection.connect(ax);
    try {
      const up = c2.upload('full-sync', { volId: 'u', sizeLb: 2n * BigInt(image.length / 512), uuid, timestamp: T0 }, (async function* () { yield image; await gate; yield image; })());
      await until('the full sync to start', async () => (await controller.getState(ax, 'u')) === 'FullSync', 5);
      assert.is(code(await failure(() => controller.request(ax, 'reset-vol', { volId: 'u' }))), 'ERR_WALB_STATE');
      assert.is(code(await failure(() => controller.request(ax, 'clear-vol', { volId: 'u' }))), 'ERR_WALB_STATE');
      release();
      await up;
      await c2.request('full-sync-commit', { volId: 'u', snap: snap(0), timestamp: T0 });
    } finally { c2.close(); }
    assert.is(await controller.getState(ax, 'u'), 'Archived');
  } finally {
    await a.stop('force');
  }
});

F.run();
