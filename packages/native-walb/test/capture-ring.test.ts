// The capture device's log ring across crashes and reopens: what the next open redoes from is
// never overwritten, logs left past the end by a crash are not chained into later, the overflow
// flag survives a reopen, and requests no client tool sends (zero lengths, unknown handshake
// flags) leave the log valid. Needs qemu-utils (installed by tools/setup.sh).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogDevice, extractLogpacks, formatLdev, hasData } from '@walbjs/log-format';
import { CaptureDevice } from '../src/index.ts';
import { NBD, freshDevice, nbdReplies, nbdRequest, nbdSession } from './nbd-client.ts';

const C = suite('capture device: the log ring');
const dir = mkdtempSync(join(tmpdir(), 'walbjs-ring-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const uri = (sock: string) => `nbd+unix:///?socket=${sock}`;
const qemuIo = (sock: string, ...cmds: string[]) =>
  execFileSync('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri(sock)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
const asRoot = process.getuid?.() === 0;
const KiB = 1024, MiB = 1 << 20;

/** Every record of the log from `from` on, as the extractor reads it: [lsid, offset LB, size LB, has data]. */
async function records(ldev: string, from?: bigint): Promise<Array<[bigint, bigint, number, boolean]>> {
  const d = await LogDevice.open(ldev);
  const out: Array<[bigint, bigint, number, boolean]> = [];
  try {
    for await (const p of extractLogpacks(d, { beginLsid: from, force: true })) {
      for (const r of p.header.records) out.push([r.lsid, r.offset, r.ioSize, hasData(r)]);
    }
  } finally {
    await d.close();
  }
  return out;
}

/** Wait until everything logged is on the data device. */
async function applied(dev: CaptureDevice): Promise<void> {
  for (let i = 0; i < 1000 && dev.lsids().written < dev.lsids().latest; i++) await new Promise((r) => setTimeout(r, 10));
  assert.is(dev.lsids().written, dev.lsids().latest, 'the data device caught up with the log');
}

C('a zero-length write logs nothing (a record of size 0 ended extraction there); with FUA it is a flush', async () => {
  const f = await freshDevice(dir, 'zero-write');
  const dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  const size = 32 * MiB;
  let latest: bigint;
  try {
    const replies = await nbdReplies(f.sock, Buffer.concat([
      nbdRequest(NBD.WRITE, 1, 0, 4096, 0, Buffer.alloc(4096, 0x61)),
      nbdRequest(NBD.WRITE, 2, 4096, 0),
      nbdRequest(NBD.WRITE, 3, size, 0, NBD.FUA),
      nbdRequest(NBD.WRITE, 4, 8192, 4096, NBD.FUA, Buffer.alloc(4096, 0x62)),
    ]), 4);
    assert.equal(replies.map((r) => r.handle).sort(), [1, 2, 3, 4]);
    assert.ok(replies.every((r) => r.error === 0), JSON.stringify(replies));
    latest = dev.lsids().latest;
  } finally {
    await dev.close();
  }
  const recs = await records(f.l);
  assert.equal(recs.map(([, off, n]) => [off, n]), [[0n, 8], [16n, 8]], JSON.stringify(recs, (_, v) => (typeof v === 'bigint' ? `${v}` : v)));
  assert.is(recs.at(-1)![0] + 1n, latest, 'the extraction reaches the end of the log (one 4 KiB block after the last record)');
});

C('a zero-length read with structured replies is answered with a NONE chunk (OFFSET_DATA carries at least a byte)', async () => {
  const f = await freshDevice(dir, 'zero-read');
  const dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  try {
    const reply = await nbdSession(f.sock, nbdRequest(NBD.READ, 5, 4096, 0), 20, { structured: true, keep: 20 });
    assert.is(reply.readUInt32BE(0), 0x668e33ef, 'a structured reply');
    assert.is(reply.readUInt16BE(4), 1, 'DONE');
    assert.is(reply.readUInt16BE(6), 0, 'NBD_REPLY_TYPE_NONE');
    assert.is(Number(reply.readBigUInt64BE(8)), 5);
    assert.is(reply.readUInt32BE(16), 0, 'no payload');
    const data = await nbdSession(f.sock, nbdRequest(NBD.READ, 6, 0, 512), 20 + 8 + 512, { structured: true, keep: 20 });
    assert.is(data.readUInt16BE(6), 1, 'a read of data is still OFFSET_DATA');
  } finally {
    await dev.close();
  }
});

C('client flags the server did not offer: it closes the connection, and serves the next client', async () => {
  const f = await freshDevice(dir, 'flags');
  const dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  try {
    const closed = await new Promise<number>((resolve, reject) => {
      const c = connect(f.sock);
      let got = 0;
      c.on('error', reject);
      c.on('data', (d) => {
        got += d.length;
        if (got === 18) { const b = Buffer.alloc(4); b.writeUInt32BE(0x80000003, 0); c.write(b); }
      });
      c.on('close', () => resolve(got));
      setTimeout(() => { c.destroy(); reject(new Error('the connection stayed open')); }, 10_000).unref();
    });
    assert.is(closed, 18, 'nothing sent after the server hello');
    assert.match(qemuIo(f.sock, 'write -P 7 0 4k', 'read -P 7 0 4k'), /read 4096\/4096/);
  } finally {
    await dev.close();
  }
});

C('overwriting the ring (the default) never reaches the checkpointed written lsid: a crash then reopens at the end of the log; the overflow flag survives a reopen', async () => {
  // A ring of about 4 MiB; no checkpoint but the ones the ring needs.
  const f = await freshDevice(dir, 'wrap', 4 * MiB, 32 * MiB);
  const dev = await CaptureDevice.open(f.l, f.d, { checkpointIntervalMs: 3_600_000 });
  dev.serve({ unix: f.sock });
  let latest: bigint;
  try {
    const out = qemuIo(f.sock, 'write -P 0x31 0 8M', 'write -P 0x32 8M 8M', 'write -P 0x33 16M 8M');
    assert.not.match(out, /fail|error/i, out);
    await applied(dev);
    latest = dev.lsids().latest;
    assert.ok(latest > 3n * dev.logCapacity(), 'the ring wrapped several times');
    assert.is(dev.lsids().overflow, true);
    // A crash now: the files as they are, the process gone. Before, written_lsid was still 0 in
    // the super sector while the ring had wrapped past it, so redo found a later lap's logpack
    // there and stopped at once: a device reopened at lsid 0, and acknowledged writes that had not
    // reached the data device (here they had) lost.
    const l2 = join(dir, 'wrap-crash.ldev'), d2 = join(dir, 'wrap-crash.ddev');
    copyFileSync(f.l, l2);
    copyFileSync(f.d, d2);
    const crashed = await CaptureDevice.open(l2, d2);
    try {
      assert.is(crashed.lsids().latest, latest, 'redo from the checkpointed written lsid reaches the end of the log');
      assert.is(crashed.lsids().overflow, true);
    } finally {
      await crashed.close();
    }
    const img = readFileSync(d2);
    for (const [at, b] of [[0, 0x31], [8 * MiB, 0x32], [16 * MiB, 0x33]]) {
      assert.ok(img.subarray(at, at + 8 * MiB).every((x) => x === b), `pattern 0x${b.toString(16)} at ${at}`);
    }
  } finally {
    await dev.close();
  }
  // The logs from oldest on are gone: a reopen says so (it said no overflow).
  const again = await CaptureDevice.open(f.l, f.d);
  try {
    assert.is(again.lsids().latest, latest);
    assert.is(again.lsids().overflow, true);
    assert.ok(again.logUsage() > again.logCapacity());
  } finally {
    await again.close();
  }
});

C('a crash leaves a later logpack past the end redo finds: it is invalidated at open, never chained into', async () => {
  const f = await freshDevice(dir, 'stale');
  let dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  try {
    // lsid 0: X = A (header, data); 2: a discard of Y (header only); 3: X = B.
    const r = await nbdReplies(f.sock, Buffer.concat([
      nbdRequest(NBD.WRITE, 1, 0, 4096, NBD.FUA, Buffer.alloc(4096, 0x41)),
    ]), 1);
    assert.is(r[0].error, 0);
    assert.is((await nbdReplies(f.sock, nbdRequest(NBD.TRIM, 2, MiB, 4096, NBD.FUA), 1))[0].error, 0);
    assert.is((await nbdReplies(f.sock, nbdRequest(NBD.WRITE, 3, 0, 4096, NBD.FUA, Buffer.alloc(4096, 0x42)), 1))[0].error, 0);
    assert.is(dev.lsids().latest, 5n);
  } finally {
    await dev.close();
  }
  // The state a crash can leave, as batches are written concurrently: the pack at lsid 2 never
  // reached the ring, the one at 3 did; neither was acknowledged, the data device has neither,
  // and the super sector's written lsid is 0.
  const ld = await LogDevice.open(f.l, { writable: true });
  await ld.writeLsids(2n, Buffer.alloc(ld.pbs));
  await ld.writeSuper({ ...ld.superSector, writtenLsid: 0n });
  await ld.close();
  writeFileSync(f.d, Buffer.alloc(32 * MiB));
  dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  try {
    assert.is(dev.lsids().latest, 2n, 'redo ends at the missing pack');
    assert.match(qemuIo(f.sock, 'read -P 0x41 0 4k'), /read 4096\/4096/);
    // A discard of X, acknowledged: one block at lsid 2, so the log's next pack is at 3, where
    // the stale X = B sat.
    assert.is((await nbdReplies(f.sock, nbdRequest(NBD.TRIM, 4, 0, 4096, NBD.FUA), 1))[0].error, 0);
    assert.is(dev.lsids().latest, 3n);
  } finally {
    await dev.close();
  }
  assert.equal((await records(f.l)).map(([lsid, off]) => [lsid, off]), [[1n, 0n], [3n, 0n]], 'the log ends with the discard');
  // Redo (from lsid 3 after that close, or from 0 after a crash) must not bring B back.
  for (const from of [3n, 0n]) {
    const l = await LogDevice.open(f.l, { writable: true });
    await l.writeSuper({ ...l.superSector, writtenLsid: from });
    await l.close();
    writeFileSync(f.d, Buffer.alloc(32 * MiB, 0x5a));
    dev = await CaptureDevice.open(f.l, f.d);
    try {
      assert.is(dev.lsids().latest, 3n);
    } finally {
      await dev.close();
    }
    const x = readFileSync(f.d).subarray(0, 4096);
    assert.ok(x.every((b) => b === (from === 0n ? 0 : 0x5a)), `X after a redo from lsid ${from}: 0x${x[0].toString(16)}`);
  }
});

(asRoot ? C : C.skip)('the data device fails while the ring fills: the device fails rather than overwrite logs the next open must redo', async () => {
  // The data device on an 8 MiB tmpfs of the test's own; a ring of about 4 MiB.
  const mnt = mkdtempSync(join(dir, 'tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
  let dev: CaptureDevice | undefined;
  try {
    const l = join(dir, 'ddfail.ldev'), d = join(mnt, 'ddfail.ddev'), sock = join(dir, 'ddfail.sock');
    writeFileSync(l, ''); truncateSync(l, 4 * MiB);
    writeFileSync(d, ''); truncateSync(d, 32 * MiB);
    await formatLdev(l, d);
    dev = await CaptureDevice.open(l, d, { checkpointIntervalMs: 3_600_000 });
    dev.serve({ unix: sock });
    qemuIo(sock, 'write -P 0x11 0 1M');
    await applied(dev);
    try { execFileSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=64k', 'status=none'], { stdio: 'ignore' }); } catch { /* full, as meant */ }
    // 32 writes of 256 KiB (8 MiB, twice the ring) onto blocks the data device cannot allocate.
    const reqs = Array.from({ length: 32 }, (_, i) => nbdRequest(NBD.WRITE, i + 1, 4 * MiB + i * 256 * KiB, 256 * KiB, 0, Buffer.alloc(256 * KiB, 0x80 + i)));
    const replies = await nbdReplies(sock, Buffer.concat(reqs), 32);
    const acked = replies.filter((r) => r.error === 0).map((r) => r.handle);
    assert.ok(acked.length > 0 && acked.length < 32, `acknowledged ${acked.length} of 32`);
    assert.ok(replies.every((r) => r.error === 0 || r.error === 5), JSON.stringify(replies));
    let closeError = '';
    try { await dev.close(); } catch (e) { closeError = (e as Error).message; }
    dev = undefined;
    assert.match(closeError, /failed|full/);
    execFileSync('mount', ['-o', 'remount,size=64m', mnt]);
    const again = await CaptureDevice.open(l, d);
    await again.close();
    const img = readFileSync(d);
    assert.ok(img.subarray(0, MiB).every((b) => b === 0x11));
    for (const h of acked) {
      const at = 4 * MiB + (h - 1) * 256 * KiB;
      const bad = img.subarray(at, at + 256 * KiB).findIndex((b) => b !== 0x80 + h - 1);
      assert.ok(bad < 0, `acknowledged write ${h} redone: byte ${bad} is 0x${img[at + bad]?.toString(16)}`);
    }
  } finally {
    // The device holds its data device open on the mount.
    await dev?.close().catch(() => {});
    execFileSync('umount', [mnt]);
  }
});

C.run();
