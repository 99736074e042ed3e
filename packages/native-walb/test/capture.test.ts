// The userspace capture device against real NBD clients (qemu-io, nbdinfo, nbdcopy): writes and
// reads through NBD, and the log it keeps replays onto the data device's earlier content to the
// device's content, byte for byte. Needs qemu-utils and libnbd-bin (installed by tools/setup.sh).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { LogDevice, extractLogpacks, formatLdev, hasData, isDiscard, isPadding } from '@walbjs/log-format';
import { CaptureDevice } from '../src/index.ts';
import { freshDevice, nbdReplies, nbdRequest, nbdSession } from './nbd-client.ts';

const C = suite('userspace capture device');
const dir = mkdtempSync(join(tmpdir(), 'walbjs-capture-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const uri = (sock: string) => `nbd+unix:///?socket=${sock}`;
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Files for a device; `pbs` undefined takes formatLdev's default for a file (4 KiB). */
const fresh = (name: string, ldevBytes?: number, ddevBytes?: number, pbs?: number) => freshDevice(dir, name, ldevBytes, ddevBytes, pbs);

/** Replay the device's log, in order, onto `image` (discards as zeros, as the device applies them). */
async function replay(ldev: string, image: Buffer): Promise<number> {
  const dev = await LogDevice.open(ldev);
  let n = 0;
  for await (const p of extractLogpacks(dev, { force: true })) {
    let k = 0;
    for (const r of p.header.records) {
      const io = hasData(r) ? p.ios[k++] : undefined;
      if (isPadding(r)) continue;
      if (isDiscard(r)) { image.fill(0, Number(r.offset) * 512, (Number(r.offset) + r.ioSize) * 512); continue; }
      image.set(io!.subarray(0, r.ioSize * 512), Number(r.offset) * 512);
      n++;
    }
  }
  await dev.close();
  return n;
}

C('qemu-io patterns and nbdinfo through the device; the log replays to the device content', async () => {
  const f = await fresh('qemu');
  const dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  try {
    const info = run('nbdinfo', ['--json', uri(f.sock)]);
    assert.is(JSON.parse(info).exports[0]['export-size'], 32 << 20);
    const out = run('qemu-io', ['-f', 'raw',
      '-c', 'write -P 0xab 0 1M', '-c', 'write -P 0xcd -f 4096 64k', '-c', 'write -z 512k 128k', '-c', 'write -P 0x77 2M 1M', '-c', 'write -P 0x77 3M 1M', '-c', 'discard 2M 1M',
      '-c', 'write -P 0x11 31M 1M', '-c', 'flush',
      '-c', 'read -P 0xab 0 4096', '-c', 'read -P 0xcd 4096 64k', '-c', 'read -P 0 512k 128k', '-c', 'read -P 0x11 31M 1M', '-c', 'read -P 0 2M 1M', '-c', 'read -P 0x77 3M 1M',
      uri(f.sock)]);
    assert.not.match(out, /fail|error/i, out);
    assert.is(out.match(/^read /gm)?.length, 6);
  } finally {
    await dev.close();
  }
  const l = (await CaptureDevice.open(f.l, f.d));
  const lsids = l.lsids();
  await l.close();
  assert.ok(lsids.written > 0n);
  const replayed = Buffer.alloc(32 << 20);
  // Six data writes; the four of 1 MiB are logged in two 512 KiB pieces each.
  assert.is(await replay(f.l, replayed), 10, 'six data writes logged, in ten records');
  const ddev = readFileSync(f.d);
  // A discarded range reads as zeros on the device, as every restore of the log has it.
  assert.ok(replayed.equals(ddev), 'replaying the log onto zeros gives the device content');
});

C('a small ring of 512-byte blocks wraps several times while extracted as it goes: every range replays exactly', async () => {
  // Batches share pages of the ring here; each write fills the rest of its last page with zeros
  // where the next batch goes. What is not yet extracted must survive that, lap after lap.
  const f = await fresh('wrap', 2 << 20, 8 << 20, 512);
  const dev = await CaptureDevice.open(f.l, f.d, { errorBeforeOverflow: true });
  dev.serve({ unix: f.sock });
  const shadow = Buffer.alloc(8 << 20);
  const ring = Number(dev.lsids().ringBufferSize) * 512;
  let seed = 7;
  const rnd = (n: number) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
  let from = 0n;
  let replayed = 0;
  try {
    for (let round = 0; round < 6; round++) {
      // About 70% of the ring per round: the log runs close behind what is not yet extracted.
      const cmds: string[] = [];
      for (let bytes = 0; bytes < ring * 0.7;) {
        const len = (1 + rnd(40)) * 512 + (rnd(3) === 0 ? 4096 * rnd(8) : 0);
        const off = rnd((8 << 20) / 512 - len / 512) * 512;
        cmds.push('-c', `write -P ${1 + rnd(250)} ${off} ${len}`);
        bytes += len + 512;
      }
      const out = run('qemu-io', ['-f', 'raw', ...cmds, uri(f.sock)]);
      assert.not.match(out, /fail|error/i, out);
      await dev.checkpoint();
      const to = dev.lsids().written;
      const ldev = await LogDevice.open(f.l);
      let n = 0;
      for await (const p of extractLogpacks(ldev, { beginLsid: from, endLsid: to })) {
        let k = 0;
        for (const r of p.header.records) {
          const io = hasData(r) ? p.ios[k++] : undefined;
          if (isPadding(r) || isDiscard(r)) continue;
          shadow.set(io!.subarray(0, r.ioSize * 512), Number(r.offset) * 512);
          n++;
        }
      }
      await ldev.close();
      assert.is(n, cmds.length / 2, `round ${round}: every write extracted`);
      replayed += n;
      await dev.setOldestLsid(to);
      from = to;
    }
    assert.ok(dev.lsids().latest > BigInt(3 * ring / 512), 'the ring wrapped at least three times');
  } finally {
    await dev.close();
  }
  assert.ok(replayed > 100);
  assert.ok(shadow.equals(readFileSync(f.d)), 'the extracted logs replay to the device content');
});

C('nbdcopy a random image in and out: byte-identical', async () => {
  const f = await fresh('copy');
  const img = join(dir, 'random.img'), back = join(dir, 'back.img');
  writeFileSync(img, randomBytes(32 << 20));
  const dev = await CaptureDevice.open(f.l, f.d, { maxLogpackKb: 4096 });
  dev.serve({ unix: f.sock });
  try {
    run('nbdcopy', [img, uri(f.sock)]);
    run('nbdcopy', [uri(f.sock), back]);
    assert.ok(readFileSync(back).equals(readFileSync(img)));
    const l = await dev.waitPermanent(dev.lsids().latest);
    assert.ok(l.permanent >= l.written || l.permanent === l.latest);
  } finally {
    await dev.close();
  }
  const replayed = Buffer.alloc(32 << 20);
  await replay(f.l, replayed);
  assert.ok(replayed.equals(readFileSync(img)), 'the log holds every write');
});

C('reopen redoes the log from written_lsid; a corrupted super sector is a typed error at open', async () => {
  const f = await fresh('redo');
  let dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a -f 0 256k', uri(f.sock)]);
  await dev.close();
  // Forget the data device's content: redo must bring it back from the log.
  const l0 = readFileSync(f.l);
  writeFileSync(f.d, Buffer.alloc(32 << 20));
  const sb = Buffer.from(l0.subarray(4096, 4096 + 512));
  sb.writeBigUInt64LE(0n, 88); // written_lsid back to 0
  sb.writeUInt32LE(0, 4);
  let s = 0; for (let i = 0; i < 512; i += 4) s = (s + sb.readUInt32LE(i)) | 0;
  sb.writeUInt32LE((-s) >>> 0, 4);
  const l1 = Buffer.from(l0); sb.copy(l1, 4096); writeFileSync(f.l, l1);
  dev = await CaptureDevice.open(f.l, f.d);
  await dev.close();
  assert.ok(readFileSync(f.d).subarray(0, 256 << 10).every((b) => b === 0x5a), 'redo restored the data');
  const bad = Buffer.from(l1); bad[4096 + 200] ^= 1; writeFileSync(f.l, bad);
  try { await CaptureDevice.open(f.l, f.d); assert.unreachable(); } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_WALB_CAPTURE_CHECKSUM');
    assert.match((e as Error).message, /offset 4096/);
  }
});

C('a corrupted IO inside the log is a typed error at redo, not a silently wrong disk', async () => {
  const f = await fresh('corrupt', undefined, undefined, 512);
  const dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x21 -f 0 64k', '-c', 'write -P 0x22 -f 1M 64k', '-c', 'write -P 0x23 -f 2M 64k', uri(f.sock)]);
  const written = dev.lsids().latest;
  await dev.close();
  // Roll written_lsid back so the reopen redoes the three packs, and flip a bit in the first IO.
  const l = readFileSync(f.l);
  const sb = l.subarray(4096, 4608);
  sb.writeBigUInt64LE(0n, 88);
  sb.writeUInt32LE(0, 4);
  let s = 0; for (let i = 0; i < 512; i += 4) s = (s + sb.readUInt32LE(i)) | 0;
  sb.writeUInt32LE((-s) >>> 0, 4);
  const ringStart = 10 * 512;
  l[ringStart + 512 + 100] ^= 1; // lsid 1: the data of the first write
  writeFileSync(f.l, l);
  assert.ok(written > 3n);
  try { await CaptureDevice.open(f.l, f.d); assert.unreachable(); } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_WALB_CAPTURE_CORRUPT');
    assert.match((e as Error).message, /lsid 0/);
  }
});

C('several connections at once; fio with verify through the nbd engine', async () => {
  const f = await fresh('multi');
  const dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  try {
    const writers = [0, 1, 2, 3].map((i) => new Promise<string>((res, rej) => {
      execFile('qemu-io', ['-f', 'raw', '-c', `write -P ${0x40 + i} ${i * 4}M 4M`, '-c', `read -P ${0x40 + i} ${i * 4}M 4M`, uri(f.sock)], { encoding: 'utf8' }, (e, out) => (e ? rej(e) : res(out)));
    }));
    for (const out of await Promise.all(writers)) assert.not.match(out, /fail/i);
    const fio = run('fio', ['--name=v', '--ioengine=nbd', `--uri=${uri(f.sock)}`, '--rw=randwrite', '--bs=4k', '--size=16M', '--offset=16M',
      '--iodepth=16', '--verify=crc32c', '--do_verify=1', '--verify_fatal=1', '--verify_state_save=0', '--output-format=json']);
    const job = JSON.parse(fio.slice(fio.indexOf('{'))).jobs[0];
    assert.is(job.error, 0);
    assert.ok(job.write.total_ios >= 4096);
  } finally {
    await dev.close();
  }
});

C('set oldest lsid frees the log up to the checkpointed written lsid, and no further', async () => {
  const f = await fresh('oldest');
  const dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  try {
    run('qemu-io', ['-f', 'raw', '-c', 'write -P 7 -f 0 1M', uri(f.sock)]);
    const l = dev.lsids();
    try { await dev.setOldestLsid(l.latest + 10n); assert.unreachable(); } catch (e) {
      assert.is((e as { code?: string }).code, 'ERR_WALB_RANGE');
    }
    await dev.setOldestLsid(l.latest);
    assert.is(dev.lsids().oldest, l.latest);
    assert.is(dev.logUsage(), 0n);
  } finally {
    await dev.close();
  }
  const d = await LogDevice.open(f.l);
  assert.ok(d.superSector.oldestLsid <= d.superSector.writtenLsid);
  await d.close();
  await (await CaptureDevice.open(f.l, f.d)).close();
});

C('clear log: new salt and uuid, lsids back to 0, new writes logged from lsid 0; permanent progress is reported', async () => {
  const f = await fresh('clear');
  const dev = await CaptureDevice.open(f.l, f.d, { errorBeforeOverflow: true });
  dev.serve({ unix: f.sock });
  try {
    const seen: bigint[] = [];
    const stop = dev.onPermanent((l) => seen.push(l.permanent), 10);
    run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x31 -f 0 128k', uri(f.sock)]);
    await dev.waitPermanent(dev.lsids().latest);
    await new Promise((r) => setTimeout(r, 50));
    stop();
    assert.ok(seen.length > 0 && seen[seen.length - 1] > 0n, 'progress reported');
    assert.ok(dev.logUsage() > 0n);
    assert.is(dev.logCapacity(), dev.lsids().ringBufferSize);
    const before = await LogDevice.open(f.l);
    const s0 = before.superSector;
    await before.close();
    await dev.clearLog();
    const l = dev.lsids();
    assert.is(l.latest, 0n);
    assert.is(l.oldest, 0n);
    const after = await LogDevice.open(f.l);
    assert.is.not(after.superSector.logChecksumSalt, s0.logChecksumSalt);
    assert.not.equal(after.superSector.uuid, s0.uuid);
    let n = 0;
    for await (const _p of extractLogpacks(after)) n++;
    assert.is(n, 0, 'no old logpack survives the clear');
    await after.close();
    run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x32 -f 1M 64k', '-c', 'read -P 0x31 0 128k', uri(f.sock)]);
    assert.ok(dev.lsids().latest > 0n);
  } finally {
    await dev.close();
  }
  const img = Buffer.alloc(32 << 20);
  assert.is(await replay(f.l, img), 1, 'only the write after the clear is in the log');
  assert.ok(img.subarray(1 << 20, (1 << 20) + 65536).every((b) => b === 0x32));
});

C('a ring smaller than a large write: writes are split to fit it (they complete, and read back); a ring of one block is refused', async () => {
  // A 1 MiB log file: a ring of 253 4-KiB blocks, less than one 1 MiB write. Before writes were
  // split to fit, such a write was padded around the ring forever and memory grew without end.
  const f = await fresh('small-ring', 1 << 20);
  const dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  try {
    const out = execFileSync('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 4M', '-c', 'write -P 0x22 6M 3M', '-c', 'read -P 0x11 0 4M', '-c', 'read -P 0x22 6M 3M', uri(f.sock)],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    assert.not.match(out, /fail|error/i, out);
    assert.is(out.match(/^read /gm)?.length, 2);
    const l = dev.lsids();
    assert.ok(l.overflow, 'a log of 7 MiB through a 1 MiB ring overflows (and is flagged)');
  } finally {
    await dev.close();
  }
  // formatLdev makes no ring this small: one is written over a larger one.
  const t = await fresh('one-block', 64 << 10);
  const l = await LogDevice.open(t.l, { writable: true });
  try { await l.writeSuper({ ...l.superSector, ringBufferSize: 1n }); } finally { await l.close(); }
  let msg = '';
  try { await (await CaptureDevice.open(t.l, t.d)).close(); } catch (e) { msg = (e as Error).message; }
  assert.match(msg, /cannot hold a logpack/);
  // A log of 512-byte blocks that ends before a whole page past its super sector opens (the
  // super sector was read as a page: "failed to fill whole buffer").
  const small = await fresh('small-512', 6656, 1 << 20, 512);
  await (await CaptureDevice.open(small.l, small.d)).close();
});

/** VmHWM (peak resident set) of this process, in bytes. */
const peakRss = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
/** Start a new peak from the current resident set (clear_refs 5), so earlier tests' peaks do not hide growth. */
const resetPeak = () => writeFileSync('/proc/self/clear_refs', '5');

C('a WRITE_ZEROES of 1 GiB in one request: done with no per-request allocation of its size; the range reads as zeros', async () => {
  const f = await fresh('zeroes', 64 << 20, 1 << 30);
  writeFileSync(f.d, Buffer.alloc(1 << 20, 0x5a), { flag: 'r+' });
  const dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  try {
    resetPeak();
    const before = peakRss();
    const reply = await nbdSession(f.sock, nbdRequest(6, 1, 0, (1 << 30) - 4096), 16); // WRITE_ZEROES
    assert.is(reply.readUInt32BE(4), 0);
    // Zeros used to be allocated for the whole request before it was logged: a gigabyte here.
    assert.ok(peakRss() - before < 256 << 20, `peak RSS grew by ${((peakRss() - before) / 2 ** 20).toFixed(0)} MiB`);
    const out = run('qemu-io', ['-f', 'raw', '-c', 'read -P 0 0 1M', '-c', 'read -P 0 1020M 1M', uri(f.sock)]);
    assert.not.match(out, /fail|error/i, out);
  } finally {
    await dev.close();
  }
});

C('zero-length WRITE_ZEROES, WRITE and TRIM are answered, and the connection closes cleanly after them', async () => {
  const f = await fresh('zero-length');
  const dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  try {
    // A zero-length WRITE_ZEROES made no operation, so nothing answered it and the connection's
    // close waited for it forever.
    const reqs = Buffer.concat([nbdRequest(6, 7, 4096, 0), nbdRequest(1, 8, 0, 0), nbdRequest(4, 9, 0, 0), nbdRequest(6, 10, 0, 4096)]);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error('no reply to some zero-length request within 10 s')), 10_000); });
    const replies = await Promise.race([nbdReplies(f.sock, reqs, 4), deadline]).finally(() => clearTimeout(timer));
    assert.equal(replies.map((r) => r.handle).sort((a, b) => a - b), [7, 8, 9, 10]);
    assert.ok(replies.every((r) => r.error === 0), JSON.stringify(replies));
    const before = dev.lsids().latest;
    // The device still takes writes, and the zero-length ones logged nothing of their own.
    const out = run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x41 0 4k', '-c', 'read -P 0x41 0 4k', uri(f.sock)]);
    assert.not.match(out, /fail|error/i, out);
    assert.ok(dev.lsids().latest > before);
  } finally {
    await dev.close();
  }
});

C('pipelined reads of 32 MiB from a client that reads its replies late: memory stays bounded', async () => {
  const f = await fresh('reads', 64 << 20, 64 << 20);
  const dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  try {
    const n = 40;
    const reqs = Buffer.concat(Array.from({ length: n }, (_, i) => nbdRequest(0, i, 0, 32 << 20)));
    resetPeak();
    const before = peakRss();
    const reply = await nbdSession(f.sock, reqs, n * (16 + (32 << 20)), { pauseMs: 2000 });
    assert.is(reply.readUInt32BE(4), 0);
    // Replies used to gather until every buffered request was handled: 1.3 GB here.
    assert.ok(peakRss() - before < 400 << 20, `peak RSS grew by ${((peakRss() - before) / 2 ** 20).toFixed(0)} MiB`);
  } finally {
    await dev.close();
  }
});

const asRoot = process.getuid?.() === 0;

(asRoot ? C : C.skip)('the data device fills up: writes acknowledged from the log are not lost; the next open redoes them', async () => {
  // The data device on an 8 MiB tmpfs of the test's own: its writes fail (ENOSPC) part-way.
  const mnt = mkdtempSync(join(dir, 'tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
  try {
    const l = join(dir, 'full.ldev'), d = join(mnt, 'full.ddev');
    writeFileSync(l, ''); truncateSync(l, 64 << 20);
    writeFileSync(d, ''); truncateSync(d, 32 << 20);
    await formatLdev(l, d);
    const sock = join(dir, 'full.sock');
    const dev = await CaptureDevice.open(l, d);
    dev.serve({ unix: sock });
    // Each write is acknowledged once logged; the data device write follows. 4 MiB fit; then the
    // file system is filled up, and two writes are sent at once: 512 KiB (one logged piece) at
    // 4 MiB, on blocks not allocated yet, so its data device write fails (ENOSPC) after it is
    // logged and acknowledged; and 64 KiB at 0, on blocks already there. When the second lands in
    // a batch of its own, its success must not move written_lsid past the failed write (the next
    // open would not redo it). It is acknowledged or refused, depending on when the failure is seen.
    const first = execFileSync('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 4M', uri(sock)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    assert.match(first, /^wrote /m);
    // Acknowledged means logged: its data device write may still be under way. The file system is
    // filled only once that write is done, or the filler takes its blocks and fails it instead.
    for (let i = 0; i < 500 && dev.lsids().written < dev.lsids().latest; i++) await new Promise((r) => setTimeout(r, 10));
    assert.is(dev.lsids().written, dev.lsids().latest, 'the 4 MiB write reached the data device');
    try { execFileSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=64k', 'status=none'], { stdio: 'ignore' }); } catch { /* ENOSPC: full, as meant */ }
    const w22 = Buffer.concat([nbdRequest(1, 1, 4 << 20, 512 << 10), Buffer.alloc(512 << 10, 0x22)]);
    const w33 = Buffer.concat([nbdRequest(1, 2, 0, 64 << 10), Buffer.alloc(64 << 10, 0x33)]);
    const replies = await nbdReplies(sock, Buffer.concat([w22, w33]), 2);
    const acked = replies.filter((r) => r.error === 0).map((r) => r.handle);
    let closeError = '';
    try { await dev.close(); } catch (e) { closeError = (e as Error).message; }
    assert.match(closeError, /failed/, 'close says the device failed');
    // Room again: the reopened device redoes the log from written_lsid onto the data device.
    execFileSync('mount', ['-o', 'remount,size=64m', mnt]);
    const again = await CaptureDevice.open(l, d);
    await again.close();
    const img = readFileSync(d);
    const expect = Buffer.alloc(32 << 20);
    expect.fill(0x11, 0, 4 << 20);
    expect.fill(0x22, 4 << 20, (4 << 20) + (512 << 10));
    if (acked.includes(2)) expect.fill(0x33, 0, 64 << 10);
    assert.ok(acked.includes(1), 'the 512 KiB write was not acknowledged (it is logged before its data device write)');
    // A write is acknowledged exactly when it is logged (a batch logged after the data device
    // failed included), so what the redo shows is what was acknowledged, no more, no less.
    const at = img.findIndex((b, i) => b !== expect[i]);
    assert.ok(at < 0, `after redo, byte ${at} is 0x${img[at]?.toString(16)}, expected 0x${expect[at]?.toString(16)} (acknowledged: ${acked.join(', ')})`);
  } finally {
    execFileSync('umount', [mnt]);
  }
});

/** Hello, flags, then NBD_OPT_EXPORT_NAME `name`: resolves to the bytes the server sent after its hello, up to its close. */
function exportNameSession(sock: string, name: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = connect(sock);
    let got = Buffer.alloc(0);
    let sent = false;
    c.on('error', reject);
    c.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (!sent && got.length >= 18) {
        sent = true;
        const n = Buffer.from(name);
        const o = Buffer.alloc(20 + n.length);
        o.writeUInt32BE(3, 0); // fixed newstyle, no zeroes
        o.write('IHAVEOPT', 4, 'latin1');
        o.writeUInt32BE(1, 12);
        o.writeUInt32BE(n.length, 16);
        n.copy(o, 20);
        c.write(o);
      }
      // The export's size and flags: the server took the name.
      if (got.length >= 28) c.end();
    });
    c.on('close', () => resolve(got.subarray(18)));
  });
}

C('an export name: clients asking for another are refused (GO, INFO and EXPORT_NAME), LIST shows it', async () => {
  const f = await fresh('named');
  const dev = await CaptureDevice.open(f.l, f.d);
  const named = join(dir, 'named-2.sock');
  dev.serve({ unix: f.sock });
  dev.serve({ unix: named, exportName: 'disk0' });
  try {
    // The default server exports "" only; nbdinfo asks with NBD_OPT_GO (INFO with --list).
    assert.is(JSON.parse(run('nbdinfo', ['--json', uri(f.sock)])).exports[0]['export-size'], 32 << 20);
    assert.throws(() => run('nbdinfo', ['--json', `nbd+unix:///other?socket=${f.sock}`]), /server replied with error/);
    assert.is(JSON.parse(run('nbdinfo', ['--json', `nbd+unix:///disk0?socket=${named}`])).exports[0]['export-size'], 32 << 20);
    assert.throws(() => run('nbdinfo', ['--json', uri(named)]), /server replied with error/);
    const list = JSON.parse(run('nbdinfo', ['--json', '--list', `nbd+unix:///?socket=${named}`]));
    assert.equal(list.exports.map((e: { 'export-name': string }) => e['export-name']), ['disk0']);
    // qemu-io writes through the named export and not through another name.
    run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x44 0 64k', `nbd+unix:///disk0?socket=${named}`]);
    assert.throws(() => run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x45 0 64k', `nbd+unix:///disk1?socket=${named}`]));
    // The old option has no error reply: the server closes without sending the export.
    assert.is((await exportNameSession(named, 'disk1')).length, 0);
    assert.is((await exportNameSession(named, 'disk0')).length, 10);
    assert.is((await exportNameSession(f.sock, '')).length, 10);
  } finally {
    await dev.close();
  }
  const data = readFileSync(f.d);
  assert.ok(data.subarray(0, 64 << 10).every((b) => b === 0x44), 'the write through the named export');
});

C('one device per log: a second open of the same ldev (or ddev) is refused while the first is open', async () => {
  const f = await fresh('busy');
  const g = await fresh('busy2');
  assert.is(await CaptureDevice.inUse(f.l), false);
  const dev = await CaptureDevice.open(f.l, f.d);
  assert.is(await CaptureDevice.inUse(f.l), true);
  assert.is(await CaptureDevice.inUse(f.d), true);
  assert.is(await CaptureDevice.inUse(g.l), false);
  for (const [l, d] of [[f.l, f.d], [f.l, g.d], [g.l, f.d]]) {
    let code: string | undefined;
    try { await (await CaptureDevice.open(l, d)).close(); } catch (e) { code = (e as { code?: string }).code; }
    assert.is(code, 'ERR_WALB_CAPTURE_BUSY', `${l} + ${d}`);
  }
  let same: string | undefined;
  try { await (await CaptureDevice.open(g.l, g.l)).close(); } catch (e) { same = (e as Error).message; }
  assert.match(same ?? '', /are the same file/);
  await dev.close();
  // Closed, it lets the files go at once (its handle may live on until garbage collection).
  assert.is(await CaptureDevice.inUse(f.l), false);
  const again = await CaptureDevice.open(f.l, f.d);
  await again.close();
});

const haveLoop = () => { try { return process.getuid?.() === 0 && execFileSync('losetup', ['--version']).length > 0; } catch { return false; } };

C('a data or log device that is a block device in use (mounted, or claimed) is refused, nothing written', async () => {
  if (!haveLoop()) { console.log('  (losetup unavailable: skipped)'); return; }
  const f = await fresh('held');
  const loops = [f.l, f.d].map((p) => execFileSync('losetup', ['-f', '--show', p], { encoding: 'utf8' }).trim());
  try {
    const before = [readFileSync(f.l), readFileSync(f.d)];
    for (const i of [0, 1]) {
      const held = openSync(loops[i], constants.O_RDONLY | constants.O_EXCL);
      let e: { code?: string; message?: string } = {};
      try { await (await CaptureDevice.open(loops[0], loops[1])).close(); } catch (x) { e = x as typeof e; } finally { closeSync(held); }
      assert.is(e.code, 'ERR_WALB_CAPTURE_IO', `held ${loops[i]}`);
      assert.match(e.message ?? '', /in use: mounted, or held by another program/);
    }
    assert.ok(readFileSync(f.l).equals(before[0]) && readFileSync(f.d).equals(before[1]), 'a device in use was written');
    // Free, the devices open, and are held while open.
    const dev = await CaptureDevice.open(loops[0], loops[1]);
    try {
      assert.throws(() => openSync(loops[1], constants.O_RDONLY | constants.O_EXCL), /EBUSY/);
    } finally {
      await dev.close();
    }
  } finally {
    for (const l of loops) execFileSync('losetup', ['-d', l]);
  }
});

C('a unix socket path: never deletes what is not a stale socket; the socket goes with the server', async () => {
  const f = await fresh('sockets');
  const dev = await CaptureDevice.open(f.l, f.d);
  try {
    const plain = join(dir, 'not-a-socket');
    writeFileSync(plain, 'keep');
    assert.throws(() => dev.serve({ unix: plain }), /not a socket/);
    assert.is(readFileSync(plain, 'utf8'), 'keep');
    const srv = dev.serve({ unix: f.sock });
    assert.throws(() => dev.serve({ unix: f.sock }), /another server listens/);
    srv.stop();
    // At once: a process that stops its server and exits (wdevc serve on SIGINT) left it behind.
    assert.not.ok(existsSync(f.sock), 'the socket file outlived its server');
    // A server that took the path over keeps its socket when the old one stops.
    const a = dev.serve({ unix: f.sock });
    a.stop();
    const b = dev.serve({ unix: f.sock });
    a.stop();
    assert.ok(existsSync(f.sock), 'a stopped server removed its successor\'s socket');
    b.stop();
    assert.not.ok(existsSync(f.sock));
  } finally {
    await dev.close();
  }
});

C.run();
