// Outputs written with direct IO: the same bytes as buffered ones whatever the size (stages, the
// last stage's aligned part, the tail), nothing of them left in the page cache, the caller's
// buffers free at once, and buffered outputs where direct IO is not set up or not supported.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeGeneratedWlog } from '@walbjs/log-format';
import { loadNative } from '@walbjs/native-walb';
import { convertWlogs, mergeWdiffs, parseCompressOpt, useDirectWrites } from '../src/index.ts';
import { OutWriter } from '../src/io/out-writer.ts';
import { tempDir } from './helpers.ts';

const t = tempDir();
process.on('exit', () => t.cleanup());
const D = suite('direct-IO outputs');

/** Whether the test folder's file system takes O_DIRECT (tmpfs does not). */
function directWorks(dir: string): boolean {
  const p = join(dir, 'probe');
  writeFileSync(p, '');
  try { closeSync(openSync(p, constants.O_WRONLY | constants.O_DIRECT)); return true; } catch { return false; } finally { rmSync(p); }
}
const canDirect = directWorks(t.dir);

/** Pages of `path` in the page cache, as fincore counts them (undefined without fincore). */
function cachedPages(path: string): number | undefined {
  try {
    return Number(execFileSync('fincore', ['-n', '-b', '-o', 'PAGES', path], { encoding: 'utf8' }).trim());
  } catch {
    return undefined;
  }
}

let seed = 1;
function randomBytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; b[i] = seed >>> 24; }
  return b;
}

/**
 * Write `total` bytes in chunks of varying size: direct, from one buffer overwritten after each
 * push; buffered, from fresh buffers (kept until written).
 */
async function writeOut(path: string, total: number, direct: boolean): Promise<{ expect: Buffer; wasDirect: boolean }> {
  const expect = randomBytes(total);
  const w = await OutWriter.open(path, { direct, syncAlong: true });
  const chunk = Buffer.alloc(1 << 20);
  let at = 0, k = 0;
  try {
    while (at < total) {
      const n = Math.min(total - at, [1, 511, 4096, 70_000, 1 << 20][k++ % 5]);
      if (w.isDirect) {
        chunk.set(expect.subarray(at, at + n));
        let freed = false;
        w.push(chunk.subarray(0, n));
        w.whenWritten(() => { freed = true; });
        // Direct IO copies what is pushed: the chunk may change at once.
        assert.ok(freed, 'a direct output frees the pushed buffer at once');
        chunk.fill(0xee, 0, n);
      } else {
        w.push(Buffer.from(expect.subarray(at, at + n)));
      }
      at += n;
      await w.ready();
    }
  } catch (e) {
    await w.close().catch(() => {});
    throw e;
  }
  const wasDirect = w.isDirect;
  await w.close(true);
  return { expect, wasDirect };
}

D('any size comes out byte for byte, with nothing of it left in the page cache', async () => {
  useDirectWrites(loadNative().alignOffset);
  try {
    for (const total of [0, 100, 4096, 4097, (4 << 20) - 1, 4 << 20, (4 << 20) + 1, (13 << 20) + 1234]) {
      const p = join(t.dir, `d${total}.out`);
      const { expect, wasDirect } = await writeOut(p, total, true);
      assert.is(wasDirect, canDirect, `direct IO used where the file system takes it (${total} bytes)`);
      assert.ok(readFileSync(p).equals(expect), `${total} bytes: the file differs from what was written`);
    }
    if (canDirect) {
      // What went direct never entered the page cache (only the buffered tail may); a buffered
      // output is all there.
      const p = join(t.dir, 'cache.out');
      await writeOut(p, 12 << 20, true);
      const pages = cachedPages(p);
      if (pages !== undefined) assert.ok(pages <= 1, `${pages} pages of a direct output in the page cache`);
      const q = join(t.dir, 'cache-b.out');
      await writeOut(q, 12 << 20, false);
      const bpages = cachedPages(q);
      if (bpages !== undefined) assert.ok(bpages >= 3000, `only ${bpages} pages of a buffered output in the page cache`);
    }
  } finally {
    useDirectWrites(undefined);
  }
});

D('without useDirectWrites outputs are buffered; on tmpfs, direct where the kernel allows it; whole either way', async () => {
  const p = join(t.dir, 'plain.out');
  const { expect, wasDirect } = await writeOut(p, (5 << 20) + 7, true);
  assert.is(wasDirect, false, 'direct needs useDirectWrites');
  assert.ok(readFileSync(p).equals(expect));
  if (process.getuid?.() !== 0) return;
  const mnt = mkdtempSync(join(t.dir, 'tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', mnt]);
  useDirectWrites(loadNative().alignOffset);
  try {
    const q = join(mnt, 'out');
    const r = await writeOut(q, (5 << 20) + 7, true);
    // tmpfs takes O_DIRECT from Linux 6.6 on; before, the output is buffered.
    assert.is(r.wasDirect, directWorks(mnt));
    assert.ok(readFileSync(q).equals(r.expect));
  } finally {
    useDirectWrites(undefined);
    execFileSync('umount', [mnt]);
  }
});

(process.getuid?.() === 0 ? D : D.skip)('a full file system fails a direct output with ENOSPC naming the file, never a crash', async () => {
  const mnt = mkdtempSync(join(t.dir, 'full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
  useDirectWrites(loadNative().alignOffset);
  try {
    const q = join(mnt, 'out');
    try {
      await writeOut(q, 9 << 20, true);
      assert.unreachable('9 MiB fit into 2 MiB');
    } catch (e) {
      assert.is((e as NodeJS.ErrnoException).code, 'ENOSPC');
      assert.match((e as Error).message, new RegExp(`write ${q} at byte \\d+`));
    }
  } finally {
    useDirectWrites(undefined);
    execFileSync('umount', [mnt]);
  }
});

D('a wrong alignment function is refused with a clear error', async () => {
  useDirectWrites(() => 5000);
  try {
    const p = join(t.dir, 'bad-align.out');
    try { await writeOut(p, 10, true); assert.unreachable(); } catch (e) { assert.match((e as Error).message, /alignment function returned 5000/); }
  } finally {
    useDirectWrites(undefined);
  }
});

D('conversions and merges write the same bytes direct as buffered', async () => {
  const w = join(t.dir, 'g.wlog');
  await writeGeneratedWlog(w, { seed: 3, pbs: 4096, totalBytes: 9 << 20, deviceBytes: 16 << 20, maxDiscardBytes: 1 << 20, maxIoBytes: 300 << 10, randomData: true });
  useDirectWrites(loadNative().alignOffset);
  try {
    const outs: Record<string, string> = {};
    for (const indexed of [false, true]) {
      for (const direct of [false, true]) {
        const o = join(t.dir, `g-${indexed}-${direct}.wdiff`);
        await convertWlogs([w], o, { indexed, cmpr: parseCompressOpt('snappy'), sync: true, direct });
        outs[`${indexed}-${direct}`] = o;
      }
      assert.ok(readFileSync(outs[`${indexed}-true`]).equals(readFileSync(outs[`${indexed}-false`])), `${indexed ? 'indexed' : 'sorted'} conversion differs`);
    }
    const m1 = join(t.dir, 'm-direct.wdiff'), m2 = join(t.dir, 'm-buffered.wdiff');
    await mergeWdiffs([outs['true-false'], outs['false-false']], m1, { direct: true, sync: true });
    await mergeWdiffs([outs['true-false'], outs['false-false']], m2, { direct: false });
    assert.ok(readFileSync(m1).equals(readFileSync(m2)), 'merge differs');
  } finally {
    useDirectWrites(undefined);
  }
});

D('reserved ranges filled later, in any order, come out where they were set aside; an unfilled one fails the close', async () => {
  const buffered = await OutWriter.open(join(t.dir, 'no-reserve.out'));
  assert.is(buffered.canReserve, false, 'a buffered output takes no reservation');
  assert.throws(() => buffered.reserve(10), /direct IO/);
  await buffered.close();
  if (!canDirect) return;
  useDirectWrites(loadNative().alignOffset);
  try {
    for (const round of [1, 2, 3]) {
      const p = join(t.dir, `reserve-${round}.out`);
      const w = await OutWriter.open(p, { direct: true, syncAlong: true });
      assert.ok(w.canReserve);
      const expect: Buffer[] = [];
      let open: Array<{ at: number; bytes: Buffer }> = [];
      let size = 0;
      // Plain bytes and reservations of sizes around the 4 MiB stage, some filled at once, some
      // after more bytes (several stages later), in shuffled order.
      for (let i = 0; i < 60; i++) {
        const n = [1, 4096, 5000, 70_000, (1 << 20) + 3, (4 << 20) + 17][Math.floor((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32 * 6)];
        const bytes = randomBytes(n);
        expect.push(bytes);
        if (i % 3 === 0) {
          const at = w.reserve(n);
          assert.is(at, size);
          open.push({ at, bytes });
        } else {
          w.push(bytes);
        }
        size += n;
        if (open.length > round || i === 59) {
          open = open.sort(() => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) & 1 ? 1 : -1));
          for (const r of open.splice(0, i === 59 ? open.length : 2)) w.fill(r.at, r.bytes);
        }
        // Now and then only, so that full stages queue up behind the writes in flight.
        if (i % 4 === 3) await w.ready();
      }
      await w.close(true);
      assert.ok(readFileSync(p).equals(Buffer.concat(expect)), `round ${round}: the file differs`);
    }
    // A held stage filled while the stage after it waits its turn goes back ahead of it.
    {
      const p = join(t.dir, 'reserve-queued.out');
      const w = await OutWriter.open(p, { direct: true });
      const parts = [randomBytes(4 << 20), randomBytes(4 << 20), randomBytes(4096), randomBytes((4 << 20) - 4096), randomBytes((4 << 20) + 99)];
      // Two writes in flight, then a stage held, then one queued behind them.
      w.push(parts[0]);
      w.push(parts[1]);
      const at = w.reserve(4096);
      w.push(parts[3]);
      w.push(parts[4]);
      w.fill(at, parts[2]);
      await w.close(true);
      assert.ok(readFileSync(p).equals(Buffer.concat(parts)), 'the held stage went elsewhere');
    }
    const q = join(t.dir, 'unfilled.out');
    const w = await OutWriter.open(q, { direct: true });
    w.push(randomBytes(5 << 20));
    w.reserve(4096);
    w.push(randomBytes(5 << 20));
    try { await w.close(); assert.unreachable('an unfilled reservation was closed over'); } catch (e) { assert.match((e as Error).message, /reserved bytes never filled/); }
    assert.throws(() => w.fill(12, Buffer.alloc(4)), /no reservation at byte 12/);
  } finally {
    useDirectWrites(undefined);
  }
});

D('a sorted conversion whose packs span several stages writes the same bytes direct as buffered', async () => {
  const w = join(t.dir, 'big-packs.wlog');
  await writeGeneratedWlog(w, { seed: 9, pbs: 4096, totalBytes: 40 << 20, deviceBytes: 64 << 20, minIoBytes: 256 << 10, maxIoBytes: 1 << 20, discard: false, randomData: true });
  useDirectWrites(loadNative().alignOffset);
  try {
    const a = join(t.dir, 'bp-direct.wdiff'), b = join(t.dir, 'bp-buffered.wdiff');
    await convertWlogs([w], a, { cmpr: parseCompressOpt('snappy'), sync: true, direct: true });
    await convertWlogs([w], b, { cmpr: parseCompressOpt('snappy'), direct: false });
    assert.ok(readFileSync(a).equals(readFileSync(b)), 'sorted conversion differs');
  } finally {
    useDirectWrites(undefined);
  }
});

D.run();
