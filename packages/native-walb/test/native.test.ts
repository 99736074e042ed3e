// The native addon: it loads, its checksum equals the TypeScript one, it finds aligned addresses
// for direct IO, it stores batches of records, walks wlogs, sums stretches of files and copies
// checked pieces of one file into another on the thread pool, a panic inside it reaches JS
// as an Error, and without the walb kernel module every device call rejects with a typed error
// naming the missing path (never a crash).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WlogReader, checksum as tsChecksum, hasData, isPadding, writeGeneratedWlog } from '@walbjs/log-format';
import {
  WalbIoctlError, WalbModuleNotLoadedError, clearLog, createWdev, deleteWdev, freeze, getLogCapacity, getOldestLsid,
  getPermanentLsid, getWalbVersion, isLogOverflow, listWdevs, loadNative, melt, setOldestLsid, takeCheckpoint,
  WALB_IOCTL_VERSION, waitAttributeChange, waitLsidsChange,
} from '../src/index.ts';

const N = suite('native addon');
N('loads and reports its version', () => {
  assert.match(loadNative().version(), /^\d+\.\d+\.\d+$/);
});
N('checksum equals the TypeScript implementation (property)', () => {
  const n = loadNative();
  fc.assert(fc.property(fc.uint8Array({ maxLength: 5000 }), fc.integer({ min: 0, max: 0xffffffff }), (d, salt) => n.checksum(d, salt) === tsChecksum(d, salt)), { numRuns: 500 });
  assert.is(n.checksum(Uint8Array.of(1, 0, 0, 0, 2, 0, 0, 0), 0), 0xfffffffd);
});
N('bad arguments are JS errors, not crashes', () => {
  const n = loadNative() as unknown as Record<string, (...a: unknown[]) => unknown>;
  assert.throws(() => n.checksum('not bytes', 0), /Uint8Array/);
  assert.throws(() => n.checksum(new Uint8Array(4), 'x'), /salt/);
  // Numbers outside an unsigned 32-bit field are refused, not wrapped round.
  for (const x of [-1, 1.5, 2 ** 32, NaN]) assert.throws(() => n.checksum(new Uint8Array(4), x), /salt: .* is not a whole number in \[0, 2\^32\)/);
  assert.is(n.checksum(new Uint8Array(4), 2 ** 32 - 1), 1);
  assert.throws(() => n.ioctl(42, 0, new Uint8Array(4)), /path/);
});
N('alignOffset finds the aligned address inside a buffer, consistently across views', () => {
  const n = loadNative();
  const b = Buffer.allocUnsafeSlow(1 << 16);
  for (const align of [1, 512, 4096]) {
    const o = n.alignOffset(b, align);
    assert.ok(o >= 0 && o < align, `offset ${o} for alignment ${align}`);
    // A view k bytes further in is k bytes closer to the same aligned address (modulo align).
    for (const k of [1, 7, 100, 511, 4095]) assert.is(n.alignOffset(b.subarray(k), align), (o - k % align + align) % align);
  }
  assert.throws(() => n.alignOffset(b, 3000), /power of two/);
  assert.throws(() => n.alignOffset('x' as unknown as Uint8Array, 4096), /Uint8Array/);
});
N('seekData finds data after a hole, null after the last data, and never skips data', () => {
  const n = loadNative();
  const dir = mkdtempSync(join(tmpdir(), 'walbjs-native-'));
  try {
    const file = join(dir, 'sparse');
    const fd = openSync(file, 'w+');
    try {
      // A 4 MiB hole, 64 KiB of data, a hole up to 16 MiB.
      writeSync(fd, Buffer.alloc(64 << 10, 7), 0, 64 << 10, 4 << 20);
      ftruncateSync(fd, 16 << 20);
      fsyncSync(fd);
      const first = n.seekData(fd, 0n);
      // ext4 and most file systems report the hole; one that cannot reports data at once.
      assert.ok(first === 4n << 20n || first === 0n, `first data at ${first}`);
      assert.is(n.seekData(fd, 4n << 20n), 4n << 20n);
      assert.is(n.seekData(fd, (4n << 20n) + 1n), (4n << 20n) + 1n);
      if (first !== 0n) assert.is(n.seekData(fd, 8n << 20n), null);
      assert.is(n.seekData(fd, 16n << 20n), null);
      assert.is(n.seekData(fd, 1n << 62n), null);
    } finally {
      closeSync(fd);
    }
    // Not a file it can look into (a bad descriptor): the offset itself, so a reader reads.
    assert.is(n.seekData(2 ** 30, 5n), 5n);
    assert.throws(() => n.seekData(fd, 5 as unknown as bigint), /offset/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
N('storeBatch reads, stores and sums records on the thread pool; bad arguments throw before anything starts', async () => {
  const n = loadNative();
  const dir = mkdtempSync(join(tmpdir(), 'walbjs-native-'));
  try {
    const file = join(dir, 'log');
    const body = Buffer.concat([randomBytes(8192), Buffer.alloc(8192, 0x5a)]);
    writeFileSync(file, body);
    const fd = openSync(file, 'r');
    try {
      const src = Buffer.alloc(16384), dst = Buffer.alloc(16384), out = new Uint32Array(8);
      // The repetitive half read first into the front, the random half behind it.
      await n.storeBatch(Float64Array.of(fd, 8192, 8192, 0, fd, 0, 8192, 8192), src, Uint32Array.of(8192, 8192, 0, 0, 0, 8192, 1, 42), 2, dst, out);
      assert.ok(src.equals(Buffer.concat([body.subarray(8192), body.subarray(0, 8192)])));
      assert.equal([...out.subarray(0, 4)], [0, 0xffffffff, 8192, tsChecksum(body.subarray(0, 8192), 0)]);
      assert.is(out[4], 2);
      assert.ok(out[6] < 1000);
      assert.is(out[7], tsChecksum(dst.subarray(out[5], out[5] + out[6]), 0), 'a given sum is not taken for compressed bytes');
      const bad: Array<[unknown[], RegExp]> = [
        [[Float64Array.of(fd, 0, 16384, 1), src, new Uint32Array(0), 0, dst, new Uint32Array(0)], /pass the end of src/],
        [[new Float64Array(0), src, Uint32Array.of(16000, 1000, 0, 0), 0, dst, new Uint32Array(4)], /pass the end of src/],
        [[new Float64Array(0), src, new Uint32Array(0), 3, dst, new Uint32Array(0)], /codec/],
        [[new Float64Array(0), src, Uint32Array.of(0, 100, 0), 0, dst, new Uint32Array(4)], /multiple of 4/],
        [[new Float64Array(0), src, Uint32Array.of(0, 100, 0, 0), 0, dst, new Uint32Array(3)], /out: 3 words/],
        [[new Float64Array(0), src, Uint32Array.of(0, 16384, 0, 0), 2, dst.subarray(0, 100), new Uint32Array(4)], /dst: 100 bytes/],
        [[new Float64Array(0), src, Uint32Array.of(0, 100, 0, 0), 2, src.subarray(8000), new Uint32Array(4)], /overlap/],
        [[Float64Array.of(fd, -1, 10, 0), src, new Uint32Array(0), 0, dst, new Uint32Array(0)], /pos -1/],
        [[Float64Array.of(fd, 0.5, 10, 0), src, new Uint32Array(0), 0, dst, new Uint32Array(0)], /pos 0.5/],
        [[new Uint32Array(4), src, new Uint32Array(0), 0, dst, new Uint32Array(0)], /Float64Array/],
      ];
      for (const [args, re] of bad) {
        src.fill(1);
        assert.throws(() => (n.storeBatch as (...a: unknown[]) => unknown)(...args), re);
        assert.ok(src.every((b) => b === 1), `${re}: nothing was read`);
      }
      try { await n.storeBatch(Float64Array.of(fd, 10000, 8192, 0), src, new Uint32Array(0), 0, dst, new Uint32Array(0)); assert.unreachable(); } catch (e) {
        assert.is((e as { code?: string }).code, 'ERR_WALB_SHORT_READ');
        assert.match((e as Error).message, /ended 6384 bytes into a read of 8192 at byte 10000/);
      }
    } finally {
      closeSync(fd);
    }
    // A descriptor far above any this process opened: the read fails with its errno (EBADF).
    try { await n.storeBatch(Float64Array.of(1_000_000, 0, 10, 0), Buffer.alloc(10), new Uint32Array(0), 0, Buffer.alloc(0), new Uint32Array(0)); assert.unreachable(); } catch (e) {
      assert.is((e as { code?: string }).code, 'ERR_WALB_READ');
      assert.is((e as { errno?: number }).errno, 9);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
N('merge*: a merge of two inputs written whole; bad arguments and bad records throw before anything is queued', async () => {
  const n = loadNative();
  const dir = mkdtempSync(join(tmpdir(), 'walbjs-native-'));
  try {
    const a = Buffer.alloc(8 * 512, 0x61), b = Buffer.alloc(2 * 512, 0x62);
    writeFileSync(join(dir, 'a'), a);
    writeFileSync(join(dir, 'b'), b);
    const fa = openSync(join(dir, 'a'), 'r'), fb = openSync(join(dir, 'b'), 'r'), fo = openSync(join(dir, 'out'), 'w');
    try {
      const rec = (addr: number, bytes: Buffer, kind = 0) => [addr, bytes.length / 512, kind, 0, 0, bytes.length, tsChecksum(bytes, 0), 0, bytes.length / 512];
      const prefix = Buffer.alloc(32, 9);
      const bad: Array<[() => unknown, RegExp]> = [
        [() => n.mergeOpen(Uint32Array.of(fa), Float64Array.of(fo, -1), 1, 0, prefix), /codec/],
        [() => n.mergeOpen(new Uint32Array(0), Float64Array.of(fo, -1), 0, 0, prefix), /no input/],
        [() => n.mergeOpen(Uint32Array.of(fa), Float64Array.of(fo), 0, 0, prefix), /out: 1 numbers/],
        [() => n.mergeOpen(Uint32Array.of(fa), Float64Array.of(-3, -1), 0, 0, prefix), /fd -3/],
      ];
      for (const [f, re] of bad) assert.throws(f, re);
      const m = n.mergeOpen(Uint32Array.of(fa, fb), Float64Array.of(fo, -1), 0, 0, prefix);
      for (const [recs, re] of [
        [Float64Array.of(1, 2, 3), /multiple of 9/],
        [Float64Array.from(rec(0, a).map((x, i) => (i === 3 ? 5 : x))), /compression type 5/],
        [Float64Array.from(rec(0, a).map((x, i) => (i === 1 ? 0 : x))), /0 LB/],
        [Float64Array.from(rec(0, a).map((x, i) => (i === 7 ? 1 : x))), /passes the end of its image/],
        [Float64Array.from([...rec(8, a), ...rec(0, a)]), /overlaps or precedes/],
      ] as const) assert.throws(() => n.mergeFeed(m, 0, recs, true), re);
      assert.throws(() => n.mergeFeed({}, 0, new Float64Array(0), true), /handle made by this addon/);
      n.mergeFeed(m, 0, Float64Array.from(rec(0, a)), true);
      n.mergeFeed(m, 1, new Float64Array(0), false);
      assert.is(await n.mergeRun(m, 1 << 20), 0, 'input 1 needs records');
      n.mergeFeed(m, 1, Float64Array.from(rec(3, b)), true);
      assert.is(await n.mergeRun(m, 1 << 20), 2);
      await n.mergeFinish(m);
      const st = new Float64Array(7);
      n.mergeState(m, st);
      // [0, 3) of a, [3, 5) of b, [5, 8) of a; one pack, the END pack.
      assert.equal([...st.subarray(0, 3)], [3, 1, 32 + 4096 + 4096 + 4096]);
      await n.mergeStop(m);
      const out = readFileSync(join(dir, 'out'));
      assert.ok(out.subarray(32 + 4096, 32 + 4096 + 4096).equals(Buffer.concat([a.subarray(0, 1536), b, a.subarray(2560)])));
    } finally {
      for (const fd of [fa, fb, fo]) closeSync(fd);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
N('sumExtents sums stretches of a file on the thread pool, as the TypeScript checksum does; bad arguments throw before anything starts', async () => {
  const n = loadNative();
  const dir = mkdtempSync(join(tmpdir(), 'walbjs-native-'));
  try {
    const file = join(dir, 'diff');
    // 5 MiB: enough for both threads and for an extent larger than one 2 MiB slice.
    const body = randomBytes(5 << 20);
    writeFileSync(file, body);
    const fd = openSync(file, 'r');
    try {
      const pairs: Array<[number, number]> = [[0, 0], [3, 4093], [4096, 511], [8192, 3 << 20], [(3 << 20) + 9000, 12345], [100, 7], [body.length - 1, 1]];
      const sums = new Uint32Array(pairs.length);
      await n.sumExtents(fd, Float64Array.from(pairs.flat()), sums);
      assert.equal([...sums], pairs.map(([o, l]) => tsChecksum(body.subarray(o, o + l), 0)));
      const bad: Array<[unknown[], RegExp]> = [
        [[fd, Float64Array.of(0, 10, 20), new Uint32Array(1)], /multiple of 2/],
        [[fd, Float64Array.of(0, 10), new Uint32Array(2)], /sums: 2 words for 1 extents/],
        [[fd, Float64Array.of(-1, 10), new Uint32Array(1)], /ext\[0\]: offset -1/],
        [[fd, Float64Array.of(0, 10, 5, 0.5), new Uint32Array(2)], /ext\[1\]: length 0.5/],
        [[fd, new Uint32Array(2), new Uint32Array(1)], /Float64Array/],
        [[-1, Float64Array.of(0, 10), new Uint32Array(1)], /fd/],
      ];
      for (const [args, re] of bad) {
        const out = args[2] as Uint32Array;
        out.fill(7);
        assert.throws(() => (n.sumExtents as (...a: unknown[]) => unknown)(...args), re);
        assert.ok(out.every((w) => w === 7), `${re}: nothing was written`);
      }
      try { await n.sumExtents(fd, Float64Array.of(0, 4096, body.length - 100, 4096), new Uint32Array(2)); assert.unreachable(); } catch (e) {
        assert.is((e as { code?: string }).code, 'ERR_WALB_SHORT_READ');
        assert.match((e as Error).message, /ended 100 bytes into a read of 4096/);
      }
    } finally {
      closeSync(fd);
    }
    try { await n.sumExtents(1_000_000, Float64Array.of(0, 10), new Uint32Array(1)); assert.unreachable(); } catch (e) {
      assert.is((e as { code?: string }).code, 'ERR_WALB_READ');
      assert.is((e as { errno?: number }).errno, 9);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
N('copyPieces checks and writes pieces of files into another on the thread pool; a bad sum stops it with its place', async () => {
  const n = loadNative();
  const dir = mkdtempSync(join(tmpdir(), 'walbjs-native-'));
  try {
    const srcPath = join(dir, 'diff'), otherPath = join(dir, 'other'), dstPath = join(dir, 'img');
    const body = randomBytes(3 << 20), other = randomBytes(64 << 10);
    writeFileSync(srcPath, body);
    writeFileSync(otherPath, other);
    writeFileSync(dstPath, Buffer.alloc(4 << 20, 0x55));
    const src = openSync(srcPath, 'r'), oth = openSync(otherPath, 'r'), dst = openSync(dstPath, 'r+');
    const srcs = Uint32Array.of(src, oth);
    try {
      const sum = (o: number, l: number) => tsChecksum(body.subarray(o, o + l), 0);
      // Raw pieces (two that follow on in both files), one of the other file at the same offsets,
      // zeros, a check only, one larger than a slice.
      const pieces: number[][] = [[0, 512, 4096, 0, sum(512, 4096)], [0, 4608, 512, 4096, -1], [1, 512, 4096, 8192, tsChecksum(other.subarray(512, 4608), 0)],
        [0, -1, 8192, 65536, -1], [0, 100_000, 7000, -1, sum(100_000, 7000)], [0, 8192, (2 << 20) + 512, 1 << 20, sum(8192, (2 << 20) + 512)]];
      const state = new Float64Array(2);
      await n.copyPieces(srcs, dst, Float64Array.from(pieces.flat()), state);
      assert.is(state[0], pieces.length);
      const want = Buffer.alloc(4 << 20, 0x55);
      body.copy(want, 0, 512, 512 + 4608);
      other.copy(want, 8192, 512, 4608);
      want.fill(0, 65536, 65536 + 8192);
      body.copy(want, 1 << 20, 8192, 8192 + (2 << 20) + 512);
      assert.ok(readFileSync(dstPath).equals(want));
      // A wrong checksum on the third piece: the first is written; the second shares its slice, so
      // it is not written either.
      writeFileSync(dstPath, Buffer.alloc(4 << 20, 0x55));
      const bad = [[0, 0, 4096, 0, sum(0, 4096)], [0, 2 << 20, 4096, 8192, sum(2 << 20, 4096)], [0, (2 << 20) + 4096, 4096, 16384, (sum((2 << 20) + 4096, 4096) ^ 1) >>> 0]];
      try { await n.copyPieces(srcs, dst, Float64Array.from(bad.flat()), state); assert.unreachable(); } catch (e) {
        assert.is((e as { code?: string }).code, 'ERR_WALB_SUM');
        assert.equal([...state], [1, sum((2 << 20) + 4096, 4096)]);
      }
      const img = readFileSync(dstPath);
      assert.ok(img.subarray(0, 4096).equals(body.subarray(0, 4096)) && img.subarray(8192, 20480).every((b) => b === 0x55));
      try { await n.copyPieces(srcs, dst, Float64Array.of(0, body.length - 10, 4096, 0, -1), state); assert.unreachable(); } catch (e) {
        assert.is((e as { code?: string }).code, 'ERR_WALB_SHORT_READ');
      }
      const badArgs: Array<[unknown[], RegExp]> = [
        [[srcs, dst, Float64Array.of(0, 0, 10, 0), state], /multiple of 5/],
        [[srcs, dst, Float64Array.of(0, 0, 10, 0, -1), new Float64Array(3)], /state: 3 numbers/],
        [[srcs, dst, Float64Array.of(0, -1, 10, -1, -1), state], /zeros need a target/],
        [[srcs, dst, Float64Array.of(0, -1, 10, 0, 5), state], /zeros need a target and no checksum/],
        [[srcs, dst, Float64Array.of(0, -2, 10, 0, -1), state], /pieces\[0\]: source -2/],
        [[srcs, dst, Float64Array.of(0, 0, 10, 0, 2 ** 32), state], /checksum 4294967296/],
        [[srcs, dst, Float64Array.of(2, 0, 10, 0, -1), state], /file 2/],
        [[new Uint32Array(0), dst, Float64Array.of(0, 0, 10, 0, -1), state], /srcs has 0/],
        [[srcs, dst, new Uint32Array(5), state], /Float64Array/],
        [[src, dst, new Float64Array(5), state], /Uint32Array/],
      ];
      for (const [args, re] of badArgs) assert.throws(() => (n.copyPieces as (...a: unknown[]) => unknown)(...args), re);
    } finally {
      for (const fd of [src, oth, dst]) closeSync(fd);
    }
    // A target opened read-only: the write fails with its errno (EBADF).
    const src2 = openSync(srcPath, 'r'), ro = openSync(dstPath, 'r');
    try {
      await n.copyPieces(Uint32Array.of(src2), ro, Float64Array.of(0, 0, 4096, 0, -1), new Float64Array(2));
      assert.unreachable();
    } catch (e) {
      assert.is((e as { code?: string }).code, 'ERR_WALB_WRITE');
      assert.is((e as { errno?: number }).errno, 9);
    } finally {
      closeSync(src2);
      closeSync(ro);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
N('scanLogChunk walks a wlog on the thread pool; bad arguments throw before anything starts', async () => {
  const n = loadNative();
  const dir = mkdtempSync(join(tmpdir(), 'walbjs-native-'));
  try {
    const file = join(dir, 'a.wlog');
    await writeGeneratedWlog(file, { seed: 3, pbs: 4096, salt: 77, totalBytes: 1 << 20, deviceBytes: 4 << 20, randomData: false });
    const log = readFileSync(file);
    // Every IO with data, from the TypeScript reader.
    const want: Array<{ sum: number; zero: boolean }> = [];
    let packs = 0;
    for await (const p of await WlogReader.open(file)) {
      packs++;
      let k = 0;
      for (const rec of p.header.records) {
        if (!hasData(rec)) continue;
        const d = p.ios[k++];
        if (!isPadding(rec)) want.push({ sum: rec.checksum, zero: d.subarray(0, rec.ioSize * 512).every((b) => b === 0) });
      }
    }
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(log.length), hdr = Buffer.alloc(4096), dst = Buffer.alloc(log.length), out = new Uint32Array(8 * 4096);
      const state = Float64Array.of(fd, 4096, 0xffff, 0, 0, 0, 0, 0);
      await n.scanLogChunk(state, buf, hdr, 77, 2, dst, out);
      const [, , , events, stop, consumed, , read] = state;
      assert.is(read, log.length - 4096);
      // It stops at the end marker, the last block, and leaves it to the caller.
      assert.equal([stop, consumed], [1, read - 4096]);
      assert.is(events, packs + want.length);
      const evs = [...Array(events).keys()].map((e) => out.subarray(e * 8, e * 8 + 8));
      // The headers walked, the block it stopped at and every IO kept raw are in buf where they are in the log.
      const same = (off: number, len: number) => assert.ok(buf.subarray(off, off + len).equals(log.subarray(4096 + off, 4096 + off + len)), `bytes at ${off}`);
      for (const w of evs) if ((w[0] & 0xff) === 1) same(w[1], 4096); else if (w[3] === 0) same(w[1], w[5]);
      same(consumed, 4096);
      const ios = evs.filter((w) => (w[0] & 0xff) === 2);
      assert.equal(ios.map((w) => ({ sum: w[2], zero: w[3] === 0xff })), want);
      for (const w of ios.filter((x) => x[3] === 2)) assert.is(w[6], tsChecksum(dst.subarray(w[4], w[4] + w[5]), 0));
      const st = () => Float64Array.of(fd, 4096, 0xffff, 0, 0, 0, 0, 0);
      const bad: Array<[unknown[], RegExp]> = [
        [[new Float64Array(7), buf, hdr, 0, 0, dst, out], /state: 7 numbers/],
        [[Float64Array.of(fd, -1, 0, 0, 0, 0, 0, 0), buf, hdr, 0, 0, dst, out], /pos -1/],
        [[st(), buf, hdr, 0, 1, dst, out], /codec/],
        [[st(), buf, Buffer.alloc(1000), 0, 0, dst, out], /physical block size/],
        [[st(), buf, buf.subarray(0, 4096), 0, 0, dst, out], /buf and hdr overlap/],
        [[st(), buf, hdr, 0, 0, dst, new Float64Array(8)], /Uint32Array/],
      ];
      for (const [args, re] of bad) {
        buf.fill(1);
        assert.throws(() => (n.scanLogChunk as (...a: unknown[]) => unknown)(...args), re);
        assert.ok(buf.every((b) => b === 1), `${re}: nothing was read`);
      }
    } finally {
      closeSync(fd);
    }
    try { await n.scanLogChunk(Float64Array.of(1_000_000, 0, 0, 0, 0, 0, 0, 0), Buffer.alloc(4096), Buffer.alloc(512), 0, 0, Buffer.alloc(0), new Uint32Array(8)); assert.unreachable(); } catch (e) {
      assert.is((e as { code?: string }).code, 'ERR_WALB_READ');
      assert.is((e as { errno?: number }).errno, 9);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

N('scanLogChunk: a walk queued behind another goes on where that one ends, or does not run where the caller decides', async () => {
  const n = loadNative();
  const dir = mkdtempSync(join(tmpdir(), 'walbjs-native-'));
  try {
    const file = join(dir, 'a.wlog');
    await writeGeneratedWlog(file, { seed: 4, pbs: 4096, salt: 5, totalBytes: 1 << 20, deviceBytes: 4 << 20, maxIoBytes: 32 << 10, randomData: false });
    const fd = openSync(file, 'r');
    try {
      const B = 96 << 10;
      const slot = () => ({ state: Float64Array.of(fd, 0, 0, 0, 0, 0, 0, 0), buf: Buffer.alloc(B), dst: Buffer.alloc(B), out: new Uint32Array(8 * 1024) });
      // Walked one at a time from here, each from where the one before ended.
      const alone: Array<{ state: number[]; out: number[] }> = [];
      const hdr1 = Buffer.alloc(4096);
      let pos = 4096, rec = 0xffff;
      for (;;) {
        const s = slot();
        s.state[1] = pos; s.state[2] = rec;
        await n.scanLogChunk(s.state, s.buf, hdr1, 5, 2, s.dst, s.out);
        alone.push({ state: [...s.state], out: [...s.out.subarray(0, 8 * s.state[3])] });
        if (s.state[4] !== 2 && !(s.state[4] === 0 && s.state[5] > 0 && s.state[7] === B)) break;
        pos += s.state[5]; rec = s.state[2];
      }
      assert.ok(alone.length >= 4, `${alone.length} walks`);
      assert.is(alone[alone.length - 1].state[4], 1, 'the last one stops at the end marker');
      // Queued all at once, each behind the one before: the same walks, and one more that does not run.
      const hdr2 = Buffer.alloc(4096);
      const slots = Array.from({ length: alone.length + 1 }, slot);
      const links = slots.map(() => n.scanLink());
      slots[0].state[1] = 4096; slots[0].state[2] = 0xffff;
      for (const s of slots.slice(1)) s.buf.fill(0xee);
      await Promise.all(slots.map((s, k) => n.scanLogChunk(s.state, s.buf, hdr2, 5, 2, s.dst, s.out, links[k], k > 0 ? links[k - 1] : undefined)));
      for (const [k, a] of alone.entries()) {
        assert.equal([...slots[k].state], a.state, `walk ${k}: state`);
        assert.equal([...slots[k].out.subarray(0, 8 * a.state[3])], a.out, `walk ${k}: events`);
      }
      const last = slots[alone.length];
      assert.equal([...last.state.subarray(3, 8)], [0, 3, 0, 0, 0], 'not run: stop reason 3, no event');
      assert.ok(last.buf.every((b) => b === 0xee), 'not run: nothing read');
      // A walk that fails: the one behind it does not run.
      const l = n.scanLink();
      const hdr3 = Buffer.alloc(4096);
      const failing = n.scanLogChunk(Float64Array.of(1_000_000, 0, 0, 0, 0, 0, 0, 0), Buffer.alloc(4096), hdr3, 0, 2, Buffer.alloc(4096), new Uint32Array(64), l);
      const behind = slot();
      const after = n.scanLogChunk(behind.state, behind.buf, hdr3, 5, 2, behind.dst, behind.out, undefined, l);
      await failing.then(() => assert.unreachable(), (e: { code?: string }) => assert.is(e.code, 'ERR_WALB_READ'));
      await after;
      assert.is(behind.state[4], 3);
      // Bad links throw before anything starts.
      const s = slot();
      s.state[1] = 4096; s.state[2] = 0xffff;
      const same = n.scanLink();
      for (const [args, re] of [
        [[s.state, s.buf, hdr1, 5, 2, s.dst, s.out, same, same], /post and after are the same link/],
        [[s.state, s.buf, hdr1, 5, 2, s.dst, s.out, {}], /post must be a handle made by this addon/],
        [[s.state, s.buf, hdr1, 5, 2, s.dst, s.out, undefined, n.indexNew()], /after must be a handle made by this addon/],
        [[s.state, s.buf, hdr1, 5, 0xfe, s.dst, s.out, n.scanLink()], /a walk of headers alone takes no link/],
        // Behind a link no walk posts to, a walk would wait for ever; a second walk posting to one is refused.
        [[s.state, s.buf, hdr1, 5, 2, s.dst, s.out, undefined, n.scanLink()], /after: no walk posts to this link/],
        [[s.state, s.buf, hdr1, 5, 2, s.dst, s.out, links[0]], /post: another walk posts to this link/],
        // One walk behind a link, going on from the header block of the walk before it.
        [[s.state, s.buf, hdr2, 5, 2, s.dst, s.out, undefined, links[0]], /after: another walk waits on this link/],
        [[s.state, s.buf, hdr1, 5, 2, s.dst, s.out, undefined, links[1]], /after: the walk before it keeps its header in another hdr/],
      ] as Array<[unknown[], RegExp]>) {
        assert.throws(() => (n.scanLogChunk as (...a: unknown[]) => unknown)(...args), re);
      }
    } finally {
      closeSync(fd);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

N('the wdiff index keeps what later IOs leave visible and encodes it as checksummed aligned records; bad arguments change nothing', () => {
  const n = loadNative();
  // [addr, blocks, kind, codec, image offset, stored size, image LB, checksum]
  const ios = Float64Array.of(
    0, 12, 0, 2, 8192, 100, 12, 0xabc,
    4, 2, 2, 0, 0, 0, 0, 0,
    2 ** 40, 8, 1, 0, 0, 0, 0, 0,
  );
  const filled = () => {
    const x = n.indexNew();
    assert.is(n.indexAdd(x, ios, 2), 3);
    assert.is(n.indexAdd(x, ios.subarray(16), 1), 4);
    return x;
  };
  const ix = filled();
  const recs = n.indexEncode(ix, 2, 1000);
  assert.is(n.indexEncode(ix, 2, 1000).length, 0, 'all taken');
  assert.throws(() => n.indexAdd(ix, ios, 1), /records are being taken/);
  const words = (i: number) => [...new Uint32Array(recs.buffer, recs.byteOffset + 48 * i, 12)];
  // [0, 4) in two records of the cap, the discard, [6, 12) in records of 2, then the all-zero IO
  // above 2^32 LB in four.
  assert.is(recs.length % 48, 0);
  const all = [...Array(recs.length / 48).keys()].map(words);
  assert.equal(all.map((w) => [w[0], w[1], w[2], w[3] & 0xff, w[7]]), [
    [0, 0, 2, 0, 0], [2, 0, 2, 0, 2], [4, 0, 2, 4, 0], [6, 0, 2, 0, 6], [8, 0, 2, 0, 8], [10, 0, 2, 0, 10],
    [0, 256, 2, 2, 0], [2, 256, 2, 2, 0], [4, 256, 2, 2, 0], [6, 256, 2, 2, 0],
  ]);
  for (const w of all) assert.is(w.reduce((a, b) => (a + b) >>> 0, 0), 0, 'record checksum');
  assert.equal(words(0).slice(3, 11), [2 << 8, 8192, 0, 100, 0, 12, 0, 0xabc]);
  // Taken three at a time: the same records.
  const ix2 = filled();
  const runs: Buffer[] = [];
  for (let r = n.indexEncode(ix2, 2, 3); r.length > 0; r = n.indexEncode(ix2, 2, 3)) { assert.ok(r.length <= 3 * 48); runs.push(r); }
  assert.ok(Buffer.concat(runs).equals(recs));
  const ix3 = filled();
  const bad: Array<[unknown[], RegExp]> = [
    [[{}, ios, 1], /index must be a handle made by this addon/],
    [[ix3, new Float32Array(8), 1], /Float64Array/],
    [[ix3, ios, 4], /count: 4 IOs, ios holds 3/],
    [[ix3, Float64Array.of(...ios.subarray(0, 8), -1, 1, 0, 0, 0, 0, 0, 0), 2], /IO 1: address -1/],
    [[ix3, Float64Array.of(0, 1.5, 1, 0, 0, 0, 0, 0), 1], /IO 0: length 1.5/],
    [[ix3, Float64Array.of(0, 16, 0, 2, 0, 9, 8, 0), 1], /larger than its image/],
    [[ix3, Float64Array.of(2 ** 53 - 2, 4, 1, 0, 0, 0, 0, 0), 1], /beyond 2\^53/],
    [[ix3, Float64Array.of(0, 4, 2, 0, 0, 9, 0, 0), 1], /without data/],
  ];
  for (const [args, re] of bad) assert.throws(() => (n.indexAdd as (...a: unknown[]) => unknown)(...args), re);
  for (const [cap, max, re] of [[3, 10, /cap: 3/], [2 ** 32, 10, /cap/], [2, 0, /max: 0/], [2, 2 ** 21, /max/]] as const) assert.throws(() => n.indexEncode(ix3, cap, max), re);
  // Nothing was added by the calls that threw, not even the good IO before a bad one, and no record taken.
  assert.is(n.indexAdd(ix3, ios, 0), 4);
  assert.ok(n.indexEncode(ix3, 2, 1000).equals(recs));
  // A handle of another kind is refused, not read as an index (nor the index as a device).
  assert.throws(() => n.captureLsids(ix), /handle made by this addon/);
  assert.is(n.indexEncode(n.indexNew(), 0, 1).length, 0);
});

N('storeBatch on random arguments: a typed error before anything starts, or a consistent result (property)', async () => {
  const n = loadNative();
  const dir = mkdtempSync(join(tmpdir(), 'walbjs-native-'));
  const file = join(dir, 'log');
  const body = Buffer.concat([randomBytes(20000), Buffer.alloc(12000, 0x33)]);
  writeFileSync(file, body);
  const fd = openSync(file, 'r');
  const codes = new Set<string>();
  try {
    // Mostly in range (positions as fractions of the buffers), sometimes not, sometimes not whole.
    const frac = fc.oneof({ weight: 8, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }) }, { weight: 1, arbitrary: fc.constantFrom(1.5, -0.1, Number.NaN, 2 ** 40) });
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 0, max: 40000 }), fc.double({ min: 0, max: 1.2, noNaN: true }),
      fc.array(fc.tuple(fc.constantFrom(fd, fd, fd, 999_999, -1), frac, frac, frac), { maxLength: 4 }),
      fc.array(fc.tuple(frac, frac, fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 0xffffffff })), { maxLength: 6 }),
      fc.constantFrom(0, 2, 2, 1, 7), fc.constantFrom(0, 0, 0, -1, 1),
      async (srcLen, dstFrac, readFracs, pieceFracs, codec, outDelta) => {
        const scale = (f: number, n: number) => (Number.isFinite(f) && f >= 0 && f <= 1 ? Math.floor(f * n) : f);
        // Reads: a position in the file, a length, a place in src (the file holds 32000 bytes).
        const reads = readFracs.map(([f, pos, len, at]) => { const a = scale(at, srcLen); return [f, scale(pos, 32000), scale(len, srcLen - (Number.isFinite(a) ? Math.min(Math.max(a, 0), srcLen) : 0)), a]; });
        const pieces = pieceFracs.map(([at, len, known, sum]) => { const a = scale(at, srcLen); const x = Number.isFinite(a) ? a : 0; return [x, scale(len, srcLen - Math.min(Math.max(x, 0), srcLen)), known, sum]; });
        const dstLen = Math.floor(dstFrac * srcLen);
        const src = Buffer.alloc(srcLen, 0xee), dst = Buffer.alloc(dstLen);
        const out = new Uint32Array(Math.max(0, pieces.length * 4 + outDelta));
        const r = Float64Array.from(reads.flat()), p = Uint32Array.from(pieces.flat().map((x) => (Number.isFinite(x) && x >= 0 ? Math.min(x, 0xffffffff) : 0)));
        let job: Promise<void>;
        try {
          job = n.storeBatch(r, src, p, codec, dst, out);
        } catch (e) {
          codes.add((e as { code?: string }).code ?? 'none');
          assert.is((e as { code?: string }).code, 'ERR_INVALID_ARG_VALUE', (e as Error).message);
          return;
        }
        try {
          await job;
        } catch (e) {
          const code = (e as { code?: string }).code ?? 'none';
          codes.add(code);
          assert.ok(code === 'ERR_WALB_READ' || code === 'ERR_WALB_SHORT_READ', (e as Error).message);
          return;
        }
        codes.add('ok');
        for (let k = 0; k < pieces.length; k++) {
          const [at, len] = [p[4 * k], p[4 * k + 1]];
          const [cmpr, off, size, sum] = out.subarray(4 * k, 4 * k + 4);
          if (cmpr === 0) {
            assert.is(off, 0xffffffff);
            assert.is(size, len);
            if (p[4 * k + 2] === 0) assert.is(sum, tsChecksum(src.subarray(at, at + len), 0));
          } else {
            assert.is(cmpr, 2);
            assert.ok(size < len && off + size <= dst.length);
            assert.is(sum, tsChecksum(dst.subarray(off, off + size), 0));
          }
        }
      }), { numRuns: 400, seed: 5 });
    // The cases covered every outcome.
    for (const c of ['ok', 'ERR_INVALID_ARG_VALUE', 'ERR_WALB_READ', 'ERR_WALB_SHORT_READ']) assert.ok(codes.has(c), `${c} among ${[...codes]}`);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});
N('a panic inside the addon becomes a JS Error with a code', () => {
  try { loadNative().panicForTest(); assert.unreachable(); } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_WALB_NATIVE_PANIC');
    assert.match((e as Error).message, /deliberate panic/);
  }
  assert.is(loadNative().checksum(new Uint8Array(8), 0), 0, 'the addon still works after the panic');
});
N('an ioctl on a file that is not a walb device fails with errno, on the thread pool', async () => {
  try { await loadNative().ioctl('/dev/null', WALB_IOCTL_VERSION, Buffer.alloc(4)); assert.unreachable(); } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_WALB_IOCTL');
    assert.ok(typeof (e as { errno?: number }).errno === 'number');
  }
  try { await loadNative().ioctl('/nonexistent/walb', WALB_IOCTL_VERSION, Buffer.alloc(4)); assert.unreachable(); } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_WALB_NO_DEVICE');
  }
});
N.run();

const K = suite('kernel control without the walb module');
const moduleLoaded = existsSync('/dev/walb/control');
(moduleLoaded ? K.skip : K)('every call rejects with WalbModuleNotLoadedError naming the path', async () => {
  const wdev = '/dev/walb/vol0';
  const calls: Array<[string, () => Promise<unknown>, string]> = [
    ['version', () => getWalbVersion(), '/dev/walb/control'],
    ['list', () => listWdevs(), '/dev/walb/control'],
    ['create', () => createWdev('/dev/null', '/dev/null'), '/dev/walb/control'],
    ['delete', () => deleteWdev(wdev), '/dev/walb/control'],
    ['oldest', () => getOldestLsid(wdev), wdev],
    ['permanent', () => getPermanentLsid(wdev), wdev],
    ['capacity', () => getLogCapacity(wdev), wdev],
    ['set oldest', () => setOldestLsid(wdev, 5n), wdev],
    ['checkpoint', () => takeCheckpoint(wdev), wdev],
    ['overflow', () => isLogOverflow(wdev), wdev],
    ['reset-wal', () => clearLog(wdev), wdev],
    ['freeze', () => freeze(wdev, 10), wdev],
    ['melt', () => melt(wdev), wdev],
  ];
  for (const [name, call, path] of calls) {
    try { await call(); assert.unreachable(name); } catch (e) {
      assert.instance(e, WalbModuleNotLoadedError, name);
      assert.is((e as WalbModuleNotLoadedError).path, path, name);
      assert.match((e as Error).message, /walb kernel module is not loaded/);
    }
  }
});
K('sysfs change wait: a missing device is the typed error; an attribute nobody notifies times out with null', async () => {
  try { await waitLsidsChange('no-such-walb-device', 10); assert.unreachable(); } catch (e) {
    assert.instance(e, WalbModuleNotLoadedError);
    assert.match((e as Error).message, /walb!no-such-walb-device/);
  }
  const attr = ['/sys/kernel/mm/transparent_hugepage/enabled', '/sys/kernel/profiling', '/sys/power/state'].find((p) => existsSync(p));
  if (attr) {
    const t0 = Date.now();
    assert.is(await waitAttributeChange(attr, 150), null);
    assert.ok(Date.now() - t0 >= 100, 'it waited');
  }
});
K('a device node that exists but is not walb: the ioctl error is typed', async () => {
  try { await getWalbVersion('/dev/null'); assert.unreachable(); } catch (e) {
    assert.instance(e, WalbIoctlError);
    assert.ok((e as WalbIoctlError).errno! > 0);
  }
});
K.run();
