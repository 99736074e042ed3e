/**
 * All-zero detection.
 *
 * @module
 */
let zeros = Buffer.alloc(0);
/** Whether `b` is all zero bytes (memcmp against a shared zero buffer). */
export function isAllZero(b: Uint8Array): boolean {
  if (zeros.byteLength < b.byteLength) zeros = Buffer.alloc(Math.max(b.byteLength, 1 << 20));
  return Buffer.compare(b, zeros.subarray(0, b.byteLength)) === 0;
}
