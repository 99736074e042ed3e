// Apply with `discard: 'punch'`: with the native punch in use, thousands of discards are punched in
// one call, no process spawned (PATH emptied, spawns counted), the punched ranges reading as zeros
// and being holes, the image the same bytes as with `discard: 'zero'`; by pieces and from here.
// With neither the native punch nor the external command, apply fails with a typed error before
// its first write, the image untouched; with the command on PATH, the command still serves.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadNative } from '@walbjs/native-walb';
import { PunchUnavailableError, SortedDiffWriter, applyWdiffs, normalIo, useCopyPieces, usePunchHoles, type DiffIo } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const native = loadNative();
const t = tempDir();
process.on('exit', () => t.cleanup());
const P = suite('apply punches discards');
P.after.each(() => { usePunchHoles(undefined); useCopyPieces(undefined); });

const LB = 512;
const KiB = 1024, MiB = 1 << 20;
/** Both apply paths: by pieces (the native copy) and from this thread. */
const PATHS = [['by pieces', native.copyPieces], ['from here', undefined]] as const;
/** The image: data in [0, DATA), a hole after it up to SIZE. */
const SIZE = 48 * MiB, DATA = 40 * MiB;
/** Discards of 4 KiB a page apart, from 0: 5,000 of them, over 39 MiB of data. */
const DISCARDS = 5000, STRIDE = 8 * KiB, HOLE = 4 * KiB;

/** A sparse file of SIZE, each MiB of [0, DATA) filled with a byte of its own. */
function sparseImage(name: string): string {
  const p = join(t.dir, name);
  writeFileSync(p, '');
  truncateSync(p, SIZE);
  const fd = openSync(p, 'r+');
  for (let m = 0; m < DATA / MiB; m++) writeSync(fd, Buffer.alloc(MiB, 0x40 + m), 0, MiB, m * MiB);
  closeSync(fd);
  return p;
}

/** Whether `[pos, pos + len)` of the file holds no data (SEEK_DATA finds none before its end). */
function isHole(fd: number, pos: number, len: number): boolean {
  const at = native.seekData(fd, BigInt(pos));
  return at === null || Number(at) >= pos + len;
}

/** Each discard's byte range. */
const discarded = Array.from({ length: DISCARDS }, (_, k): [number, number] => [k * STRIDE, HOLE]);

/** The discards, with a write in the gap after one in 50 and a discard in the hole past the data. */
async function manyDiscards(): Promise<string> {
  const ios: DiffIo[] = [];
  for (const [k, [pos, len]] of discarded.entries()) {
    ios.push({ addr: pos / LB, blocks: len / LB, kind: 'discard' });
    if (k % 50 === 7) ios.push(normalIo((pos + HOLE) / LB, Buffer.alloc(STRIDE - HOLE, k & 0xff | 1)));
  }
  ios.push({ addr: (DATA + 2 * MiB) / LB, blocks: MiB / LB, kind: 'discard' });
  const p = join(t.dir, 'many.wdiff');
  const w = await SortedDiffWriter.create(p);
  for (const io of ios) await w.write(io);
  await w.close();
  return p;
}

/** Every asynchronous child process (execFile, spawn, exec, fork) is started by this method. */
const proto = ChildProcess.prototype as unknown as { spawn: (this: ChildProcess, opts: { file?: string }) => unknown };

/** `f`'s outcome, with PATH emptied unless `keepPath`, and the programs it started meanwhile. */
async function watched<T>(f: () => Promise<T>, keepPath = false): Promise<{ value?: T; error?: unknown; spawned: string[] }> {
  const spawned: string[] = [];
  const path = process.env.PATH;
  const spawn = proto.spawn;
  proto.spawn = function (opts) {
    spawned.push(String(opts?.file));
    return spawn.call(this, opts);
  };
  if (!keepPath) process.env.PATH = '';
  try {
    return { value: await f(), spawned };
  } catch (error) {
    return { error, spawned };
  } finally {
    process.env.PATH = path;
    proto.spawn = spawn;
  }
}

P('thousands of discards punched natively: holes that read as zeros, the bytes of zero mode, no process started', async () => {
  const diff = await manyDiscards();
  for (const [name, fn] of PATHS) {
    useCopyPieces(fn);
    usePunchHoles(native.punchHoles);
    const img = sparseImage('punched.img');
    const before = statSync(img).blocks;
    const r = await watched(() => applyWdiffs(img, [diff], { discard: 'punch' }));
    assert.is(r.error, undefined, `${name}: ${String(r.error)}`);
    assert.equal(r.spawned, [], `${name}: no process started`);
    assert.is(r.value!.discardLb, (DISCARDS * HOLE + MiB) / LB, name);

    const zeroed = sparseImage('zeroed.img');
    await applyWdiffs(zeroed, [diff], { discard: 'zero' });
    assert.ok(readFileSync(img).equals(readFileSync(zeroed)), `${name}: the same bytes as discards written as zeros`);
    const fd = openSync(img, 'r');
    try {
      const notHoles = discarded.filter(([pos, len]) => !isHole(fd, pos, len));
      assert.equal(notHoles.slice(0, 3), [], `${name}: ${notHoles.length} discarded ranges are not holes`);
    } finally {
      closeSync(fd);
    }
    const after = statSync(img);
    assert.is(after.size, SIZE, `${name}: the size is kept`);
    // Freed, but for the blocks of the extent tree that maps the thousands of pieces left (ext4: about 64 KiB).
    assert.ok(after.blocks <= before - (DISCARDS * HOLE) / 512 + 2048, `${name}: ${before} blocks before, ${after.blocks} after`);
  }
});

P('with neither the native punch nor fallocate on PATH, apply fails before its first write; with fallocate, it punches', async () => {
  const diff = await manyDiscards();
  const small = join(t.dir, 'small.wdiff');
  const w = await SortedDiffWriter.create(small);
  for (const io of [{ addr: 0, blocks: 8, kind: 'discard' }, normalIo(8, Buffer.alloc(4 * KiB, 0x11)), { addr: 64, blocks: 16, kind: 'discard' }] as DiffIo[]) await w.write(io);
  await w.close();
  for (const [name, fn] of PATHS) {
    useCopyPieces(fn);
    const img = sparseImage('untouched.img');
    const bytes = readFileSync(img), blocks = statSync(img).blocks;
    const r = await watched(() => applyWdiffs(img, [diff], { discard: 'punch' }));
    assert.instance(r.error, PunchUnavailableError, `${name}: ${String(r.error)}`);
    const e = r.error as PunchUnavailableError;
    assert.equal([e.code, e.tool, e.source], ['ERR_WDIFF_PUNCH_UNAVAILABLE', 'fallocate', img], name);
    assert.match(e.message, /nothing was written/);
    assert.equal(r.spawned, [], name);
    assert.ok(readFileSync(img).equals(bytes) && statSync(img).blocks === blocks, `${name}: the image was changed`);

    // fallocate on PATH (the environment's own): a process a range, as before (and the watch
    // above sees processes).
    const viaTool = sparseImage('tool.img');
    const byCmd = await watched(() => applyWdiffs(viaTool, [small], { discard: 'punch' }), true);
    assert.is(byCmd.error, undefined, `${name}: ${String(byCmd.error)}`);
    assert.equal(byCmd.spawned, ['fallocate', 'fallocate'], name);
    const zeroed = sparseImage('zeroed.img');
    await applyWdiffs(zeroed, [small], { discard: 'zero' });
    assert.ok(readFileSync(viaTool).equals(readFileSync(zeroed)), `${name}: fallocate punched as zero mode writes`);
    const fd = openSync(viaTool, 'r');
    try { assert.ok(isHole(fd, 0, 4 * KiB) && isHole(fd, 32 * KiB, 8 * KiB), `${name}: holes punched by fallocate`); } finally { closeSync(fd); }
  }
});

P('a range the native punch refuses fails the apply, naming the image', async () => {
  const diff = await manyDiscards();
  usePunchHoles(async (_fd, ranges) => {
    throw Object.assign(new Error(`hole punch (fallocate) of descriptor 9, range 0 (${ranges[1]} bytes at byte ${ranges[0]}), failed: Operation not supported (os error 95)`), { code: 'ERR_WALB_PUNCH', errno: 95, index: 0 });
  });
  const img = sparseImage('refused.img');
  try { await applyWdiffs(img, [diff], { discard: 'punch' }); assert.unreachable(); } catch (e) {
    const x = e as { code?: string; errno?: number; path?: string; message: string };
    assert.equal([x.code, x.errno, x.path], ['ERR_WALB_PUNCH', 95, img]);
    assert.ok(x.message.startsWith(`${img}: hole punch (fallocate) of descriptor 9, range 0 (4096 bytes at byte 0)`), x.message);
  }
});

P.run();
