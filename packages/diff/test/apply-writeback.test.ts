// Apply starts its target's writeback along the way (`useWritebackStart`, as the CLI runs): the
// addon's start is asked for on the target, at most once per 16 MiB written, no early fsync is
// made, and the image is the one the early fsyncs give; a start that fails changes nothing but
// the speed, the final sync still runs.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, openSync, readFileSync, readSync, readlinkSync, realpathSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeGeneratedWlog } from '@walbjs/log-format';
import { loadNative } from '@walbjs/native-walb';
import { ChecksumError, applyWdiffs, convertWlogs, parseCompressOpt, useCopyPieces, useWritebackStart, type WritebackStartFn } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const native = loadNative();
const t = tempDir();
process.on('exit', () => t.cleanup());
const W = suite('apply: writeback started along the way');
W.after(() => { useWritebackStart(undefined); useCopyPieces(undefined); });

const DEVICE = 512 << 20;

/** A sparse image of DEVICE bytes. */
function sparseImage(name: string): string {
  const p = join(t.dir, name);
  writeFileSync(p, '');
  truncateSync(p, DEVICE);
  return p;
}

/** Whether two files hold the same bytes (read 8 MiB at a time). */
function sameBytes(a: string, b: string): boolean {
  const fa = openSync(a, 'r'), fb = openSync(b, 'r');
  try {
    const ba = Buffer.alloc(8 << 20), bb = Buffer.alloc(8 << 20);
    for (let pos = 0; ; pos += ba.length) {
      const na = readSync(fa, ba, 0, ba.length, pos), nb = readSync(fb, bb, 0, bb.length, pos);
      if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
      if (na === 0) return true;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}
let diff = '';
W.before(async () => {
  const log = join(t.dir, 'w.wlog');
  await writeGeneratedWlog(log, { seed: 12, pbs: 4096, totalBytes: 150 << 20, deviceBytes: DEVICE, maxIoBytes: 1 << 20, randomData: true });
  diff = join(t.dir, 'w.wdiff');
  await convertWlogs([log], diff, { cmpr: parseCompressOpt('none') });
});

for (const pieces of [true, false]) {
  W(`the start is asked for on the target, at most once per 16 MiB written, and the image is the same (${pieces ? 'by pieces' : 'from JavaScript'})`, async () => {
    useCopyPieces(pieces ? native.copyPieces : undefined);
    useWritebackStart(undefined);
    const plain = sparseImage('plain.img');
    const p = await applyWdiffs(plain, [diff]);
    assert.ok(p.syncs >= 2, `early fsyncs without it: ${p.syncs}`);

    const targets: string[] = [];
    const counted: WritebackStartFn = (fd) => { targets.push(readlinkSync(`/proc/self/fd/${fd}`)); return native.startWriteback(fd); };
    useWritebackStart(counted);
    const img = sparseImage('started.img');
    const s = await applyWdiffs(img, [diff]);
    assert.ok(sameBytes(img, plain), 'the same image');
    assert.ok(s.bytesWritten >= 128 << 20, `${s.bytesWritten} bytes written`);
    // One start at a time (one may take a while, submitting much), at most one per 16 MiB.
    assert.ok(targets.length >= 1 && targets.length <= Math.floor(s.bytesWritten / (16 << 20)), `${targets.length} starts for ${s.bytesWritten} bytes`);
    assert.ok(targets.every((p) => p === realpathSync(img)), targets.join(', '));
    // The final sync alone: the starts are not syncs.
    assert.is(s.syncs, 1);
  });
}

W('a start that fails is let go: the apply ends synced, with the same image', async () => {
  useCopyPieces(native.copyPieces);
  let asked = 0;
  useWritebackStart(async () => { asked++; throw Object.assign(new Error('refused'), { code: 'ERR_WALB_WRITEBACK', errno: 5 }); });
  const img = sparseImage('failed.img');
  const s = await applyWdiffs(img, [diff]);
  // Failing at once, each is asked for as soon as 16 MiB more are written.
  assert.ok(asked >= 4, `${asked} starts`);
  assert.is(s.syncs, 1);
  useWritebackStart(undefined);
  const plain = sparseImage('plain2.img');
  await applyWdiffs(plain, [diff]);
  assert.ok(sameBytes(img, plain), 'the same image');
});

W('an apply that fails waits for the start in flight before it closes the target', async () => {
  // A byte of record data changed about 64 MiB in, the check skipped: the copy stops there, with
  // a start (slowed down here) still holding the target's bare descriptor.
  const b = readFileSync(diff);
  const bad = join(t.dir, 'bad.wdiff');
  b[64 << 20] ^= 0xff;
  writeFileSync(bad, b);
  useCopyPieces(native.copyPieces);
  const seen: string[] = [];
  useWritebackStart(async (fd) => {
    await new Promise((r) => setTimeout(r, 150));
    try { seen.push(readlinkSync(`/proc/self/fd/${fd}`)); } catch { seen.push('closed'); }
  });
  const img = sparseImage('bad.img');
  try {
    await applyWdiffs(img, [bad], { skipVerify: true });
    assert.unreachable('the changed byte');
  } catch (e) {
    assert.instance(e, ChecksumError);
  }
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(seen.length >= 1, 'a start ran');
  assert.equal(seen, seen.map(() => realpathSync(img)), 'each start found the target still open');
});

W('the addon refuses a descriptor that is not open, with its errno', async () => {
  try {
    await native.startWriteback(0x7fff_fff0);
    assert.unreachable('no such descriptor');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_WALB_WRITEBACK');
    assert.is((e as { errno?: number }).errno, 9);
  }
});

W.run();
