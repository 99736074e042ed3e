/**
 * A bounds-checked decoder of raw snappy blocks in plain TypeScript, written from the format
 * description (snappy `format_description.txt`): a varint of the decompressed length, then
 * literal and copy elements.
 *
 * It backs the pure-JS fallback codec. Unlike a decoder that keeps writing into a typed array past
 * its end (where writes are silently dropped), it stops at the first element that does not fit, so
 * corrupt input costs no more work than its own length.
 *
 * @module
 */

/** The decompressed length stored at the start of a snappy block. */
export interface SnappyPreamble {
  /** Decompressed length. */
  readonly length: number;
  /** Bytes the varint occupies. */
  readonly headerSize: number;
}

/**
 * Read the varint at the start of a snappy block (at most 5 bytes, at most 2^32 − 1).
 *
 * @returns the length and the varint size, or `undefined` if the varint is malformed or truncated
 */
export function readSnappyPreamble(src: Uint8Array): SnappyPreamble | undefined {
  let value = 0;
  for (let i = 0; i < 5 && i < src.length; i++) {
    const b = src[i];
    value += (b & 0x7f) * 2 ** (7 * i);
    if (b < 0x80) return value > 0xffffffff ? undefined : { length: value, headerSize: i + 1 };
  }
  return undefined;
}

/**
 * Decode the elements of a snappy block into `dst`, which must have exactly the length the preamble
 * announces.
 *
 * @param src - the whole block, preamble included
 * @param start - where the elements begin (the preamble size)
 * @param dst - the output, `preamble.length` bytes
 * @throws Error describing the first malformed element, or when the output is not filled exactly
 */
export function snappyDecodeInto(src: Uint8Array, start: number, dst: Uint8Array): void {
  const iend = src.length;
  const oend = dst.length;
  let ip = start;
  let op = 0;

  while (ip < iend) {
    const tag = src[ip++];
    const kind = tag & 3;
    if (kind === 0) {
      // Literal: length − 1 in the tag, or in 1..4 following bytes.
      let len = tag >>> 2;
      if (len >= 60) {
        const extra = len - 59;
        if (iend - ip < extra) throw new Error('block ends inside a literal length');
        len = 0;
        for (let k = extra - 1; k >= 0; k--) len = len * 256 + src[ip + k];
        ip += extra;
      }
      len += 1;
      if (len > iend - ip) throw new Error(`literal of ${len} bytes at input ${ip} passes the end of the block`);
      if (len > oend - op) throw new Error(`literal of ${len} bytes at output ${op} passes the expected size`);
      if (len < 24) {
        for (let k = 0; k < len; k++) dst[op + k] = src[ip + k];
      } else {
        dst.set(src.subarray(ip, ip + len), op);
      }
      ip += len;
      op += len;
      continue;
    }

    let len: number;
    let offset: number;
    if (kind === 1) {
      if (ip >= iend) throw new Error('block ends inside a copy');
      len = ((tag >>> 2) & 7) + 4;
      offset = ((tag >>> 5) << 8) | src[ip];
      ip += 1;
    } else if (kind === 2) {
      if (iend - ip < 2) throw new Error('block ends inside a copy');
      len = (tag >>> 2) + 1;
      offset = src[ip] | (src[ip + 1] << 8);
      ip += 2;
    } else {
      if (iend - ip < 4) throw new Error('block ends inside a copy');
      len = (tag >>> 2) + 1;
      offset = (src[ip] | (src[ip + 1] << 8) | (src[ip + 2] << 16)) + src[ip + 3] * 0x1000000;
      ip += 4;
    }
    if (offset === 0 || offset > op) throw new Error(`copy offset ${offset} at output ${op} points outside the data`);
    if (len > oend - op) throw new Error(`copy of ${len} bytes at output ${op} passes the expected size`);
    let m = op - offset;
    if (offset >= len && len >= 24) {
      dst.copyWithin(op, m, m + len);
      op += len;
    } else {
      const end = op + len;
      while (op < end) dst[op++] = dst[m++];
    }
  }
  if (op !== oend) throw new Error(`block decodes to ${op} bytes, its header says ${oend}`);
}
