/**
 * The WalB checksum: a salted sum of little-endian u32 words, stored as its two's complement, so
 * that summing a block with its checksum field filled in gives zero.
 *
 * @module
 */

const isLittleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** A checksum implementation: the stored checksum of `buf` with `salt` (see {@link checksum}). */
export type ChecksumImplementation = (buf: Uint8Array, salt: number) => number;

let fast: ChecksumImplementation | undefined;
/** Below this many bytes the call overhead of a native implementation outweighs its speed. */
const FAST_MIN_BYTES = 1024;

/**
 * Use a faster implementation of the checksum (for example the native addon's, about twice the
 * speed of this package's TypeScript one) for buffers of 1 KiB and more. It is checked against
 * known vectors first; one that disagrees is refused. Pass `undefined` to go back.
 *
 * @returns whether the implementation is now in use.
 * @example
 * import { loadNative } from '@walbjs/native-walb';
 * useChecksumImplementation(loadNative().checksum);
 */
export function useChecksumImplementation(impl: ChecksumImplementation | undefined): boolean {
  if (impl === undefined) { fast = undefined; return true; }
  const probe = new Uint8Array(4099);
  for (let i = 0; i < probe.length; i++) probe[i] = (i * 131 + 7) & 0xff;
  try {
    for (const [len, salt] of [[4099, 0x12345678], [4096, 0], [1027, 0xffffffff]] as const) {
      const b = probe.subarray(0, len);
      if (impl(b, salt) >>> 0 !== jsChecksum(b, salt)) return false;
    }
  } catch {
    return false;
  }
  fast = impl;
  return true;
}

/** Whether a faster checksum implementation is in use. */
export function checksumAccelerated(): boolean {
  return fast !== undefined;
}

/**
 * Add the little-endian u32 words of `buf` to `sum` (mod 2^32) and return the new partial sum.
 * A trailing 1..3 bytes are zero-padded to a word, as walb-tools does.
 *
 * Use with {@link checksumFinish} to checksum data that arrives in pieces; every piece but the
 * last must be a multiple of 4 bytes long.
 */
export function checksumPartial(buf: Uint8Array, sum: number): number {
  // checksum = −partial, so the partial sum is the negation of the fast checksum seeded with it.
  if (fast !== undefined && buf.byteLength >= FAST_MIN_BYTES) return (-fast(buf, sum >>> 0)) >>> 0;
  return jsPartial(buf, sum);
}

function jsPartial(buf: Uint8Array, sum: number): number {
  let s = sum | 0;
  const len = buf.byteLength;
  const words = len >>> 2;
  if (isLittleEndian && (buf.byteOffset & 3) === 0) {
    const w = new Int32Array(buf.buffer, buf.byteOffset, words);
    // Four independent accumulators let the CPU overlap the additions. The loop runs downwards:
    // V8 then proves every index in bounds and drops its checks, which measured 1.5× the speed
    // of the same loop upwards (the order of a sum does not matter).
    let a = 0, b = 0, c = 0, d = 0;
    let i = words - 1;
    for (; i >= 3; i -= 4) {
      a = (a + w[i]) | 0;
      b = (b + w[i - 1]) | 0;
      c = (c + w[i - 2]) | 0;
      d = (d + w[i - 3]) | 0;
    }
    for (; i >= 0; i--) a = (a + w[i]) | 0;
    s = (s + a + b + c + d) | 0;
  } else {
    const dv = new DataView(buf.buffer, buf.byteOffset, len);
    for (let i = 0; i < words; i++) s = (s + dv.getInt32(i * 4, true)) | 0;
  }
  const rest = len & 3;
  if (rest) {
    let w = 0;
    for (let k = 0; k < rest; k++) w |= buf[words * 4 + k] << (8 * k);
    s = (s + w) | 0;
  }
  return s >>> 0;
}

/** Turn a partial sum into the stored checksum: its two's complement. */
export function checksumFinish(sum: number): number {
  return (-(sum | 0)) >>> 0;
}

/**
 * The WalB checksum of `buf` with `salt`.
 *
 * @example
 * checksum(Uint8Array.of(1, 0, 0, 0, 2, 0, 0, 0), 0) // 0xfffffffd
 * checksum(new Uint8Array(512), 0x12345678)          // 0xedcba988
 */
export function checksum(buf: Uint8Array, salt: number): number {
  if (fast !== undefined && buf.byteLength >= FAST_MIN_BYTES) return fast(buf, salt >>> 0) >>> 0;
  return jsChecksum(buf, salt);
}

function jsChecksum(buf: Uint8Array, salt: number): number {
  return checksumFinish(jsPartial(buf, salt >>> 0));
}

/**
 * Whether `buf`, which contains its own checksum field, verifies: the salted sum of all its words
 * is zero.
 */
export function checksumVerifies(buf: Uint8Array, salt: number): boolean {
  return checksumPartial(buf, salt >>> 0) === 0;
}
