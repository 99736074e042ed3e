// The demo's file-system workload against a real NBD server, the userspace capture device: ext4 made
// and filled through nbdfuse + a loop device, changed, then the data device file mounted read-only
// must hold exactly the tree seen through NBD. The block-level fallback: qemu-io writes through
// NBD, nbdcopy reads the export back, both equal to the data device file and to the planned writes.
// The file-system test needs root, /dev/fuse, nbdfuse and loop devices; without them it is not
// registered (the reason is printed).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { formatLdev } from '@walbjs/log-format';
import { CaptureDevice } from '@walbjs/native-walb';
import {
  applyBlockWrites, attachNbdDisk, changeFileSet, compareTrees, filesystemSupport, hashTree, makeExt4, mountFs,
  mountImageReadOnly, planBlockWrites, readImageNbd, unmountFs, writeBlocksNbd, writeFileSet,
} from '../src/demo/fs-workload.ts';

const root = mkdtempSync(join(tmpdir(), 'walbjs-demo-fs-'));
process.on('exit', () => {
  // Never rm -rf through a mount left behind: that would delete inside the mounted file system.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '');
  const left = mounts.filter((m) => m === root || m.startsWith(root + '/'));
  if (left.length) console.error(`demo-fs: mounts left behind, ${root} not removed: ${left.join(', ')}`);
  else rmSync(root, { recursive: true, force: true });
});

const MiB = 1 << 20;

async function fresh(name: string, ldevBytes: number, ddevBytes: number) {
  const dir = join(root, name);
  mkdirSync(dir);
  const l = join(dir, 'ldev.img'), d = join(dir, 'ddev.img');
  writeFileSync(l, ''); truncateSync(l, ldevBytes);
  writeFileSync(d, ''); truncateSync(d, ddevBytes);
  await formatLdev(l, d);
  return { dir, l, d, sock: join(dir, 'nbd.sock') };
}

/** Run `body` with a `defer` for clean-ups; they run in reverse order even when `body` throws. */
async function withCleanup(body: (defer: (f: () => Promise<unknown>) => void) => Promise<void>): Promise<void> {
  const stack: Array<() => Promise<unknown>> = [];
  let failure: unknown;
  try {
    await body((f) => stack.push(f));
  } catch (e) {
    failure = e;
  }
  const cleanupErrors: unknown[] = [];
  for (const f of stack.reverse()) {
    try { await f(); } catch (e) { cleanupErrors.push(e); }
  }
  if (failure !== undefined) {
    for (const e of cleanupErrors) console.error('clean-up after failure also failed:', (e as Error).message);
    throw failure;
  }
  if (cleanupErrors.length) throw cleanupErrors[0];
}

const sha256 = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const onPath = (cmd: string) => (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, cmd)));

test('file sets, tree comparison and block plans are deterministic (no devices)', async () => {
  await withCleanup(async (defer) => {
    const a = join(root, 'det-a'), b = join(root, 'det-b');
    defer(async () => { rmSync(a, { recursive: true, force: true }); rmSync(b, { recursive: true, force: true }); });
    const wa = await writeFileSet(a, 5, { files: 12, maxBytes: 64 << 10 });
    await writeFileSet(b, 5, { files: 12, maxBytes: 64 << 10 });
    assert.is(wa.added.length, 12);
    const ha = await hashTree(a), hb = await hashTree(b);
    assert.is(ha.size, 12);
    assert.equal(compareTrees(ha, hb), []);
    const ca = await changeFileSet(a, 9, { maxBytes: 64 << 10 });
    await changeFileSet(b, 9, { maxBytes: 64 << 10 });
    assert.ok(ca.added.length + ca.modified.length + ca.deleted.length > 0);
    const ha2 = await hashTree(a);
    assert.equal(compareTrees(ha2, await hashTree(b)), [], 'same seed, same changes');
    const diff = compareTrees(ha, ha2);
    for (const p of ca.deleted) assert.ok(diff.includes(`missing: ${p}`), p);
    for (const p of ca.added) assert.ok(diff.includes(`extra: ${p}`), p);
    assert.equal(compareTrees(new Map([['x', '1'], ['y', '2'], ['z', '3']]), new Map([['x', '1'], ['y', '9'], ['w', '0']])),
      ['extra: w', 'differs: y', 'missing: z']);
    const plan = planBlockWrites(3, 8 * MiB, { writes: 50 });
    assert.equal(plan, planBlockWrites(3, 8 * MiB, { writes: 50 }));
    for (const w of plan) {
      assert.ok(w.offset % 4096 === 0 && w.length % 4096 === 0 && w.length > 0 && w.offset + w.length <= 8 * MiB, JSON.stringify(w));
    }
  });
});

if (onPath('qemu-io') && onPath('nbdcopy')) {
  test('block fallback: qemu-io writes through NBD, nbdcopy reads back; both match the data device', async () => {
    const size = 32 * MiB;
    const f = await fresh('blocks', 64 * MiB, size);
    const out = join(f.dir, 'read-back.img');
    let plan: Awaited<ReturnType<typeof writeBlocksNbd>> = [];
    await withCleanup(async (defer) => {
      const dev = await CaptureDevice.open(f.l, f.d);
      defer(() => dev.close());
      dev.serve({ unix: f.sock });
      plan = await writeBlocksNbd(f.sock, 1234, size, { writes: 100 });
      assert.is(plan.length, 100);
      await readImageNbd(f.sock, out);
      assert.ok(dev.lsids().latest > 0n, 'the writes were logged');
      await dev.close();
    });
    const got = readFileSync(out);
    assert.is(got.length, size);
    assert.ok(got.equals(readFileSync(f.d)), 'nbdcopy read-back equals the data device file');
    assert.ok(got.equals(applyBlockWrites(Buffer.alloc(size), plan)), 'the device holds exactly the planned writes');
  });
} else {
  console.log('demo-fs: block fallback test not registered: qemu-io or nbdcopy is not on PATH');
}

const support = await filesystemSupport();
if (support.ok) {
  test('ext4 on the capture device through nbdfuse; the data device file mounts read-only to the same tree', async () => {
    const f = await fresh('ext4', 256 * MiB, 64 * MiB);
    const mnt = join(f.dir, 'mnt'), check = join(f.dir, 'check'), ref = join(f.dir, 'ref');
    let afterChange = new Map<string, string>();
    await withCleanup(async (defer) => {
      const dev = await CaptureDevice.open(f.l, f.d);
      defer(() => dev.close());
      dev.serve({ unix: f.sock });
      const disk = await attachNbdDisk(f.sock, join(f.dir, 'work'));
      defer(() => disk.detach());
      assert.match(disk.device, /^\/dev\/loop\d+$/);
      await makeExt4(disk.device);
      await mountFs(disk.device, mnt);
      defer(() => unmountFs(mnt));
      const written = await writeFileSet(mnt, 42);
      assert.is(written.added.length, 40);
      const initial = await hashTree(mnt);
      assert.is(initial.size, 40);
      assert.not.ok([...initial.keys()].some((p) => p.startsWith('lost+found')), 'lost+found ignored');
      // The same seed in a plain folder gives the same tree (the file set is deterministic).
      await writeFileSet(ref, 42);
      assert.equal(compareTrees(await hashTree(ref), initial), []);
      const changed = await changeFileSet(mnt, 7);
      assert.ok(changed.modified.length > 0 && changed.deleted.length > 0 && changed.added.length > 0, JSON.stringify(changed));
      afterChange = await hashTree(mnt);
      assert.ok(compareTrees(initial, afterChange).length > 0, 'the change changed something');
      await changeFileSet(ref, 7);
      assert.equal(compareTrees(await hashTree(ref), afterChange), [], 'the change is deterministic');
      // Tear down in order; the deferred calls then find nothing left to do.
      await unmountFs(mnt);
      await disk.detach();
      await disk.detach(); // idempotent
      assert.ok(dev.lsids().latest > 0n, 'the file system writes were logged');
      await dev.close();
    });
    const before = sha256(f.d);
    await withCleanup(async (defer) => {
      const m = await mountImageReadOnly(f.d, check);
      defer(() => m.unmount());
      assert.match(m.device, /^\/dev\/loop\d+$/);
      const restored = await hashTree(check);
      assert.equal(compareTrees(afterChange, restored), [], 'the data device holds the tree seen through NBD');
      await m.unmount();
    });
    assert.is(sha256(f.d), before, 'a read-only mount leaves the image untouched');
  });
} else {
  console.log(`demo-fs: file-system test not registered: ${support.why}`);
}

test.run();
