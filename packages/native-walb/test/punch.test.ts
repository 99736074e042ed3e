// The addon's punchHoles: on the thread pool it punches holes in a file (the size kept, the ranges
// reading as zeros and freed), passes over empty ranges, and names the range the kernel refuses
// (its index, offset, length and errno); on a loop device it discards through a descriptor held
// exclusively, as apply holds it. Bad arguments throw before anything is punched.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNative } from '../src/index.ts';

const P = suite('native punchHoles');
const MiB = 1 << 20;

function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'walbjs-punch-'));
  return f(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

P('holes punched in a file read as zeros, are freed, and keep the size; empty ranges are passed over', () => withDir(async (dir) => {
  const n = loadNative();
  const file = join(dir, 'img');
  writeFileSync(file, Buffer.alloc(8 * MiB, 0x5a));
  const fd = openSync(file, 'r+');
  try {
    const before = fstatSync(fd).blocks;
    // 1,000 holes of 4 KiB a page apart, an empty range, and 512 bytes inside a page.
    const ranges: number[] = [];
    for (let k = 0; k < 1000; k++) ranges.push(k * 8192, 4096);
    ranges.push(0, 0, 7 * MiB + 100, 512);
    await n.punchHoles(fd, Float64Array.from(ranges), false);
    const want = Buffer.alloc(8 * MiB, 0x5a);
    for (let k = 0; k < 1000; k++) want.fill(0, k * 8192, k * 8192 + 4096);
    want.fill(0, 7 * MiB + 100, 7 * MiB + 612);
    assert.ok(readFileSync(file).equals(want), 'only the ranges read as zeros');
    const after = fstatSync(fd);
    assert.is(after.size, 8 * MiB, 'the size is kept');
    assert.ok(after.blocks <= before - 1000 * 8, `the holes are freed: ${before} then ${after.blocks} blocks`);
    for (const k of [0, 1, 500, 999]) assert.is(n.seekData(fd, BigInt(k * 8192)), BigInt(k * 8192 + 4096), `hole ${k}`);
    await n.punchHoles(fd, new Float64Array(0), false);
  } finally {
    closeSync(fd);
  }
}));

P('the range the kernel refuses is named with its errno; those before it are done', () => withDir(async (dir) => {
  const n = loadNative();
  const file = join(dir, 'img');
  writeFileSync(file, Buffer.alloc(MiB, 0x5a));
  const fd = openSync(file, 'r+');
  try {
    // A file is no block device: BLKDISCARD is refused (ENOTTY) at the first range that is not empty.
    try { await n.punchHoles(fd, Float64Array.of(0, 0, 8192, 4096), true); assert.unreachable(); } catch (e) {
      const x = e as { code?: string; errno?: number; index?: number; offset?: number; length?: number; message: string };
      assert.equal([x.code, x.errno, x.index, x.offset, x.length], ['ERR_WALB_PUNCH', 25, 1, 8192, 4096]);
      assert.match(x.message, /discard \(BLKDISCARD\) of descriptor \d+, range 1 \(4096 bytes at byte 8192\), failed: /);
    }
    assert.ok(readFileSync(file).equals(Buffer.alloc(MiB, 0x5a)));
  } finally {
    closeSync(fd);
  }
  // Open to read only: EBADF at the first range, nothing punched.
  const ro = openSync(file, 'r');
  try {
    try { await n.punchHoles(ro, Float64Array.of(0, 4096), false); assert.unreachable(); } catch (e) {
      assert.equal([(e as { code?: string }).code, (e as { errno?: number }).errno, (e as { index?: number }).index], ['ERR_WALB_PUNCH', 9, 0]);
    }
  } finally {
    closeSync(ro);
  }
  assert.ok(readFileSync(file).equals(Buffer.alloc(MiB, 0x5a)));
}));

P('bad arguments throw before anything is punched', () => withDir(async (dir) => {
  const n = loadNative() as unknown as Record<string, (...a: unknown[]) => unknown>;
  const file = join(dir, 'img');
  writeFileSync(file, Buffer.alloc(MiB, 0x5a));
  const fd = openSync(file, 'r+');
  try {
    const bad: Array<[unknown[], RegExp]> = [
      [[fd, Float64Array.of(0, 4096, 8192), false], /multiple of 2/],
      [[fd, Float64Array.of(0, 4096, -1, 4096), false], /ranges\[1\]: offset -1/],
      [[fd, Float64Array.of(0, 4096, 8192, 0.5), false], /ranges\[1\]: length 0.5/],
      [[fd, Float64Array.of(2 ** 53, 4096), false], /ranges\[0\]: offset/],
      [[fd, Uint32Array.of(0, 4096), false], /Float64Array/],
      [[fd, Float64Array.of(0, 4096), 'yes'], /isBlock/],
      [[-1, Float64Array.of(0, 4096), false], /fd/],
    ];
    for (const [args, re] of bad) assert.throws(() => n.punchHoles(...args), re);
  } finally {
    closeSync(fd);
  }
  assert.ok(readFileSync(file).equals(Buffer.alloc(MiB, 0x5a)), 'nothing was punched');
}));

function canUseLoop(): boolean {
  if (process.getuid?.() !== 0) return false;
  try { execFileSync('losetup', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

(canUseLoop() ? P : P.skip)('a loop device held exclusively: its ranges are discarded and read as zeros', () => withDir(async (dir) => {
  const n = loadNative();
  const backing = join(dir, 'backing.img');
  writeFileSync(backing, Buffer.alloc(8 * MiB, 0xa5));
  const dev = execFileSync('losetup', ['--find', '--show', backing], { encoding: 'utf8' }).trim();
  try {
    const fd = openSync(dev, constants.O_RDWR | constants.O_EXCL);
    try {
      await n.punchHoles(fd, Float64Array.of(512, 4096, 3 * MiB, MiB, 5 * MiB, 0), true);
    } finally {
      closeSync(fd);
    }
    const want = Buffer.alloc(8 * MiB, 0xa5);
    want.fill(0, 512, 512 + 4096);
    want.fill(0, 3 * MiB, 4 * MiB);
    // A loop device discards by punching its backing file, which then reads as zeros.
    assert.ok(readFileSync(dev).equals(want), 'the discarded ranges read as zeros, the rest is kept');
  } finally {
    execFileSync('losetup', ['-d', dev]);
  }
}));

P.run();
