// The streaming merge of IO streams against a per-block model: the newest stream wins every block
// it has, the output is ascending without overlap, and the inputs are let go on every way out.
// Sparse streams make most IOs pass straight through (nothing held, nothing to come overlaps
// them); dense ones make them meet in the merge's memory.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { ValueOutOfRangeError, mergeIos, normalIo, ioBytes, type DiffIo } from '../src/index.ts';

const S = suite('merge stream');

type Piece = { gap: number; blocks: number; kind: 'normal' | 'allzero' | 'discard' };
const pieceArb = (maxGap: number) => fc.record({
  gap: fc.integer({ min: 0, max: maxGap }),
  blocks: fc.integer({ min: 1, max: 24 }),
  kind: fc.constantFrom('normal', 'normal', 'allzero', 'discard') as fc.Arbitrary<Piece['kind']>,
});
const streamsArb = fc.oneof(
  fc.array(fc.array(pieceArb(3), { maxLength: 12 }), { minLength: 1, maxLength: 4 }),
  fc.array(fc.array(pieceArb(200), { maxLength: 12 }), { minLength: 1, maxLength: 4 }),
);

/** Stream `s` of the pieces: ascending, without overlap; each block's bytes name stream and LB. */
function toStream(pieces: Piece[], s: number): DiffIo[] {
  const out: DiffIo[] = [];
  let at = 0;
  for (const p of pieces) {
    const addr = at + p.gap;
    at = addr + p.blocks;
    if (p.kind !== 'normal') { out.push({ addr, blocks: p.blocks, kind: p.kind }); continue; }
    const b = Buffer.alloc(p.blocks * 512);
    for (let i = 0; i < p.blocks; i++) b.write(`s${s}@${addr + i}`, i * 512);
    out.push(normalIo(addr, b));
  }
  return out;
}

async function* gen(ios: DiffIo[], closed: boolean[], i: number): AsyncGenerator<DiffIo> {
  try { for (const io of ios) yield io; } finally { closed[i] = true; }
}

/** Per block: what the newest stream having it says ("s<k>@<lb>", "allzero", "discard"). */
function model(streams: DiffIo[][]): Map<number, string> {
  const m = new Map<number, string>();
  for (const st of streams) for (const io of st) for (let i = 0; i < io.blocks; i++) {
    m.set(io.addr + i, io.kind === 'normal' ? io.data!.image.stored.subarray(i * 512, i * 512 + 16).toString().replace(/\0+$/, '') : io.kind);
  }
  return m;
}

S('the newest stream wins every block; output ascending, without overlap, split to maxIoBlocks', async () => {
  await fc.assert(fc.asyncProperty(streamsArb, fc.constantFrom(0, 1, 5), async (spec, max) => {
    const streams = spec.map(toStream);
    const closed = streams.map(() => false);
    const got = new Map<number, string>();
    let end = 0;
    for await (const io of mergeIos(streams.map((st, i) => gen(st, closed, i)), { maxIoBlocks: max })) {
      assert.ok(io.addr >= end, `IO at ${io.addr} before the previous end ${end}`);
      if (max > 0) assert.ok(io.blocks <= max, `IO of ${io.blocks} LB over ${max}`);
      end = io.addr + io.blocks;
      const bytes = await ioBytes(io);
      for (let i = 0; i < io.blocks; i++) got.set(io.addr + i, bytes ? bytes.subarray(i * 512, i * 512 + 16).toString().replace(/\0+$/, '') : io.kind);
    }
    assert.equal([...got].sort((a, b) => a[0] - b[0]), [...model(streams)].sort((a, b) => a[0] - b[0]));
    assert.ok(closed.every(Boolean));
  }), { numRuns: 300 });
});

S('a consumer that stops early lets every input go', async () => {
  const streams = [toStream([{ gap: 0, blocks: 4, kind: 'normal' }, { gap: 10, blocks: 4, kind: 'normal' }], 0),
    toStream([{ gap: 2, blocks: 4, kind: 'allzero' }, { gap: 50, blocks: 4, kind: 'normal' }], 1)];
  const closed = [false, false];
  for await (const io of mergeIos(streams.map((st, i) => gen(st, closed, i)))) { assert.is(io.addr, 0); break; }
  assert.equal(closed, [true, true]);
});

S('a malformed IO is a typed error, and every input is let go', async () => {
  const closed = [false, false];
  const bad: DiffIo = { addr: -1, blocks: 2, kind: 'allzero' };
  const it = mergeIos([gen([bad], closed, 0), gen(toStream([{ gap: 9, blocks: 1, kind: 'discard' }], 1), closed, 1)]);
  try {
    for await (const _ of it) { /* drain */ }
    assert.unreachable('no error');
  } catch (e) {
    assert.instance(e, ValueOutOfRangeError);
  }
  assert.equal(closed, [true, true]);
});

S.run();
