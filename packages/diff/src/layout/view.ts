// Little-endian field access on any Uint8Array (Buffers from pools have arbitrary offsets).
import { ValueOutOfRangeError, type ErrorLocation } from '../errors.ts';

/** @internal */
export function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * @internal Read a u64 LB address as a number; addresses beyond 2^53 LB (4 EiB) are rejected so
 * no precision is ever lost.
 */
export function readAddress(v: DataView, off: number, field: string, loc: ErrorLocation): number {
  const hi = v.getUint32(off + 4, true);
  const lo = v.getUint32(off, true);
  if (hi > 0x1fffff) throw new ValueOutOfRangeError(field, v.getBigUint64(off, true), 'exceeds 2^53 LB (4 EiB), beyond what this implementation addresses', loc);
  return hi * 0x1_0000_0000 + lo;
}

/** @internal Write a number (a safe integer) as a u64. */
export function writeU64(v: DataView, off: number, n: number): void {
  v.setUint32(off, n % 0x1_0000_0000, true);
  v.setUint32(off + 4, Math.floor(n / 0x1_0000_0000), true);
}
