// What later IOs of a log leave visible of each IO: against the last writer of every LB worked out
// one LB at a time; the checks that the pass reading the data sees the same log; the bound on IOs.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { loadNative } from '@walbjs/native-walb';
import { LivePartsBuilder, useLiveParts } from '../src/index.ts';

const L = suite('live parts');

const ioArb = fc.record({ addr: fc.integer({ min: 0, max: 60 }), blocks: fc.integer({ min: 1, max: 12 }) });

L.after(() => useLiveParts(undefined));

L('each IO\'s pieces are exactly the LBs it writes last, in address order, joined where adjacent', async () => {
  await fc.assert(fc.asyncProperty(fc.array(ioArb, { maxLength: 40 }), async (ios) => {
    const b = new LivePartsBuilder();
    for (const io of ios) assert.ok(b.add(io.addr, io.blocks));
    const live = (await b.finish(true))!;
    assert.is(live.size, ios.length);
    // The last writer of each LB.
    const last = new Map<number, number>();
    ios.forEach((io, k) => { for (let a = io.addr; a < io.addr + io.blocks; a++) last.set(a, k); });
    let visible = 0;
    ios.forEach((io, k) => {
      const mine: number[] = [];
      for (let a = io.addr; a < io.addr + io.blocks; a++) if (last.get(a) === k) mine.push(a);
      // Runs of consecutive LBs, as (address, length) pairs.
      const runs: number[] = [];
      for (const a of mine) {
        if (runs.length && runs[runs.length - 2] + runs[runs.length - 1] === a) runs[runs.length - 1]++;
        else runs.push(a, 1);
      }
      visible += mine.length;
      const got = live.piecesOf(k, io.addr, io.blocks);
      if (mine.length === io.blocks) assert.is(got, undefined, `IO ${k} is visible whole`);
      else assert.equal(Array.from(got!), runs, `IO ${k}`);
    });
    assert.is(live.visibleBlocks, visible);
    // Past the IOs known: whole (a pass may see more when the look at the headers stopped early).
    assert.is(live.piecesOf(ios.length, 0, 1), undefined);
  }), { numRuns: 300 });
});

L('the native sweep gives the same parts as this one, addresses up to 2^53 included', async () => {
  const native = loadNative();
  const big = fc.record({ addr: fc.oneof(fc.integer({ min: 0, max: 60 }), fc.constantFrom(2 ** 40, 2 ** 53 - 64)), blocks: fc.integer({ min: 1, max: 12 }) });
  await fc.assert(fc.asyncProperty(fc.array(fc.oneof(ioArb, big), { maxLength: 60 }), async (ios) => {
    const parts = async (fn: typeof native.liveParts | undefined) => {
      useLiveParts(fn);
      const b = new LivePartsBuilder();
      for (const io of ios) b.add(io.addr, io.blocks);
      const live = (await b.finish(true))!;
      return ios.map((io, k) => { const p = live.piecesOf(k, io.addr, io.blocks); return p && Array.from(p); });
    };
    assert.equal(await parts(native.liveParts), await parts(undefined));
  }), { numRuns: 300 });
  useLiveParts(undefined);
  // Bad input is a typed error, not a crash, with nothing written.
  const code = async (a: number, b: number, pieces = 4): Promise<string | undefined> => {
    const whole = new Uint8Array(1).fill(7);
    try {
      await native.liveParts(Float64Array.of(a), Float64Array.of(b), whole, new Uint32Array(2), new Float64Array(pieces));
    } catch (e) {
      assert.is(whole[0], 7, 'written');
      return (e as NodeJS.ErrnoException).code;
    }
    return undefined;
  };
  for (const [a, b] of [[1.5, 1], [1, 0], [-1, 1], [2 ** 53, 1], [NaN, 1]]) assert.is(await code(a, b), 'ERR_INVALID_ARG_VALUE', `${a} + ${b}`);
  assert.is(await code(1, 1, 3), 'ERR_INVALID_ARG_VALUE', 'pieces too short');
  assert.is(await code(1, 1), undefined);
  // A wrong type is refused at the call.
  assert.throws(() => native.liveParts(Float64Array.of(1), Float64Array.of(1), new Uint8Array(1), new Uint32Array(2), new Uint8Array(4) as unknown as Float64Array), /pieces/);
});

L('an IO other than the one seen before, or another number of IOs, is refused', async () => {
  const b = new LivePartsBuilder();
  b.add(0, 8); b.add(4, 8); b.add(100, 1);
  const live = (await b.finish(true))!;
  assert.equal(Array.from(live.piecesOf(0, 0, 8)!), [0, 4]);
  assert.throws(() => live.piecesOf(1, 5, 8), /changed while it was read: its IO 1 is at LB 5 \(8 LB\), it was at LB 4 \(8 LB\)/);
  assert.throws(() => live.piecesOf(2, 100, 2), /changed/);
  live.expectSeen(3);
  assert.throws(() => live.expectSeen(2), /has 2 IOs, it had 3/);
  assert.throws(() => live.expectSeen(4), /has 4 IOs, it had 3/);
  // Incomplete (the look stopped early): more IOs are fine, fewer are not.
  const c = new LivePartsBuilder();
  c.add(0, 8);
  const part = (await c.finish(false))!;
  part.expectSeen(5);
  assert.throws(() => part.expectSeen(0), /changed/);
});

L('an IO that is not a range of whole LBs makes the builder give up', async () => {
  for (const [a, n] of [[0, 0], [1.5, 1], [-1, 1], [2 ** 53 - 1, 2], [0, NaN]]) {
    const b = new LivePartsBuilder();
    assert.ok(b.add(0, 1));
    assert.not.ok(b.add(a, n), `${a} + ${n}`);
    assert.not.ok(b.add(0, 1));
    assert.is(await b.finish(true), undefined);
  }
});

L('a log of more IOs than the bound gives no parts, and every IO is kept', async () => {
  const b = new LivePartsBuilder(3);
  assert.ok(b.add(0, 1) && b.add(0, 1) && b.add(0, 1));
  assert.not.ok(b.add(0, 1));
  assert.not.ok(b.add(5, 1));
  assert.is(await b.finish(true), undefined);
  const c = new LivePartsBuilder(3);
  c.add(0, 1); c.add(0, 1); c.add(0, 1);
  const live = (await c.finish(true))!;
  assert.equal(Array.from(live.piecesOf(0, 0, 1)!), []);
  assert.is(live.piecesOf(2, 0, 1), undefined);
});

L.run();
