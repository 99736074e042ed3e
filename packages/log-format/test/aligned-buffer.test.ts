// Read buffers placed by an alignment function: the view starts where the function says, is as
// long as asked, and a function that answers nonsense is refused; without one, plain buffers.
// (The native addon's function, and readers using aligned chunks, are tested in @walbjs/diff.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { alignedBuffer, allocReadBuffer, bufferAlignmentKnown, useBufferAlignment } from '../src/index.ts';

test('alignedBuffer: a view at the offset the function gives, of the length asked, in memory of its own', () => {
  for (const [n, align, off] of [[1, 64, 0], [4096, 4096, 4080], [3 << 20, 4096, 17], [100, 512, 511]] as const) {
    let seen = -1;
    const b = alignedBuffer(n, align, (raw, a) => { seen = raw.byteLength; assert.is(a, align); return off; });
    assert.is(seen, n + align);
    assert.is(b.byteLength, n);
    assert.is(b.byteOffset, off);
    assert.is(b.buffer.byteLength, n + align);
  }
});

test('alignedBuffer: an answer outside 0 ..< align is a RangeError', () => {
  for (const bad of [-1, 4096, 1.5, Number.NaN]) {
    assert.throws(() => alignedBuffer(10, 4096, () => bad), (e: unknown) => e instanceof RangeError && e.message.includes(String(bad)));
  }
});

test('allocReadBuffer: plain memory until a function is registered, placed by it after', () => {
  try {
    useBufferAlignment(undefined);
    assert.not.ok(bufferAlignmentKnown());
    const plain = allocReadBuffer(8192);
    assert.is(plain.byteLength, 8192);
    assert.is(plain.buffer.byteLength, 8192);
    let calls = 0;
    useBufferAlignment((_raw, align) => { calls++; return align - 16; });
    assert.ok(bufferAlignmentKnown());
    const b = allocReadBuffer(8192);
    assert.is(calls, 1);
    assert.is(b.byteLength, 8192);
    assert.is(b.byteOffset, 4096 - 16);
  } finally {
    useBufferAlignment(undefined);
  }
});

test.run();
