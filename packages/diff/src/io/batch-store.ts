/**
 * Storing records a batch at a time on the thread pool: an external implementation (the native
 * addon's `storeBatch`) reads a batch's bytes from the log files, compresses each record (none or
 * snappy; raw when that does not shrink it) and sums what will be stored, on another core, while
 * the JS thread writes the previous batch. The sorted conversion of wlog files uses it for its
 * second pass; without one, it does this work itself.
 *
 * Only where it paid: handing the indexed conversion's records, or an indexed reader's images,
 * to the pool this way measured no faster on two cores (the work moved, and the data then reached
 * the JS thread from another core's cache).
 *
 * @module
 */
import { checksum } from '@walbjs/log-format';
import { CompressionType } from '../compression.ts';
import { snappyDecodeInto, readSnappyPreamble } from '../codec/snappy-block.ts';
import { probeNoise } from '../codec/types.ts';

/**
 * Read `reads` ((fd, pos, len, at) quadruples) into `src`, then store each record of `pieces`
 * with `codec` (0 or 2). A piece is four words: at, len, then 1 and the salt-0 checksum of those
 * bytes when known (not computed again for a record stored raw), else 0 and 0. `out` gets four
 * words a record: compression type, offset of its bytes in `dst` (or 0xFFFFFFFF: stored raw, in
 * place in `src`), stored size, salt-0 checksum of the stored bytes. Compressed records are packed
 * from `dst[0]`. The three buffers stay untouched until the promise settles.
 */
export type StoreBatchFn = (reads: Float64Array, src: Uint8Array, pieces: Uint32Array, codec: number, dst: Uint8Array, out: Uint32Array) => Promise<void>;

/** `out` offset that means "stored raw, in place in `src`". */
export const STORED_IN_SRC = 0xffffffff;

let impl: StoreBatchFn | undefined;

/**
 * Store conversion records a batch at a time with `fn` (for example the native addon's
 * `storeBatch`), on the thread pool. It is checked first on a small batch: its snappy blocks must
 * decode back, its raw records stay in place, its checksums must be right; one that fails is
 * refused. Its snappy bytes are its own encoder's: use it with the same addon's encoder
 * (`useSnappyEncoder`) so every path writes the same bytes. `undefined` goes back to storing on
 * the JS thread.
 *
 * @returns whether `fn` is now in use.
 * @example
 * import { loadNative } from '@walbjs/native-walb';
 * await useBatchStore(loadNative().storeBatch);
 */
export async function useBatchStore(fn: StoreBatchFn | undefined): Promise<boolean> {
  impl = undefined;
  if (fn === undefined) return true;
  const noise = probeNoise(0x6d2b79f5)(8192);
  const src = Buffer.concat([noise, Buffer.from('walbjs batch probe '.repeat(600)).subarray(0, 8192)]);
  const dst = Buffer.alloc(src.length);
  const out = new Uint32Array(8);
  try {
    // A checksum given for a record that ends up compressed must not be taken for its stored bytes.
    await fn(new Float64Array(0), src, Uint32Array.of(0, 8192, 0, 0, 8192, 8192, 1, 12345), CompressionType.SNAPPY, dst, out);
    const rawOk = out[0] === 0 && out[1] === STORED_IN_SRC && out[2] === 8192 && out[3] === checksum(noise, 0);
    const n = out[6];
    const block = dst.subarray(out[5], out[5] + n);
    const pre = readSnappyPreamble(block);
    if (!rawOk || out[4] !== CompressionType.SNAPPY || n >= 8192 || out[7] !== checksum(block, 0) || pre?.length !== 8192) return false;
    const back = Buffer.alloc(8192);
    snappyDecodeInto(block, pre.headerSize, back);
    if (!back.equals(src.subarray(8192))) return false;
  } catch {
    return false;
  }
  impl = fn;
  return true;
}

/** The batch store in use for codec `type`, if any (it does none and snappy). */
export function batchStoreFor(type: number): StoreBatchFn | undefined {
  return type === CompressionType.NONE || type === CompressionType.SNAPPY ? impl : undefined;
}
