/**
 * The LZ4 block format (no frame, no size prefix) in plain TypeScript: the fallback when the native
 * `lz4-napi` binary does not load, and the decoder of choice for small records, where calling into
 * native code costs more than the work.
 *
 * Written from the format description (lz4 `doc/lz4_Block_format.md`): a block is a sequence of
 * (token, literal length, literals, offset, match length) groups; the last one holds literals only.
 * The encoder keeps the end-of-block rules of the reference decoder: the last 5 bytes are literals
 * and the last match starts at least 12 bytes before the end.
 *
 * @module
 */

const MIN_MATCH = 4;
/** A match must not start in the last MF_LIMIT bytes of the input. */
const MF_LIMIT = 12;
/** The last LAST_LITERALS bytes of the input are always literals. */
const LAST_LITERALS = 5;
const MAX_OFFSET = 65535;
const HASH_LOG = 12;
const HASH_SHIFT = 32 - HASH_LOG;
/** Copies shorter than this run as byte loops: cheaper than a typed-array call. */
const SHORT_COPY = 24;

/** Largest LZ4 block for `n` input bytes (`LZ4_compressBound`). */
export function lz4BlockBound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

// The match-finder table holds input positions plus `base`; entries below `base` belong to earlier
// calls and count as empty, so the table is never cleared between calls.
const table = new Int32Array(1 << HASH_LOG);
let base = 1;

function read32(a: Uint8Array, i: number): number {
  return a[i] | (a[i + 1] << 8) | (a[i + 2] << 16) | (a[i + 3] << 24);
}

function hash(seq: number): number {
  return Math.imul(seq, 0x9e3779b1) >>> HASH_SHIFT;
}

/** Write the length extension bytes of a length ≥ 15 (after the token nibble 15). */
function writeLength(out: Uint8Array, op: number, rest: number): number {
  while (rest >= 255) {
    out[op++] = 255;
    rest -= 255;
  }
  out[op++] = rest;
  return op;
}

function copyBytes(src: Uint8Array, from: number, len: number, dst: Uint8Array, to: number): void {
  if (len < SHORT_COPY) {
    for (let k = 0; k < len; k++) dst[to + k] = src[from + k];
  } else {
    dst.set(src.subarray(from, from + len), to);
  }
}

/**
 * Compress `src` into one raw LZ4 block (what `LZ4_compress_default` produces, though not
 * necessarily the same bytes).
 *
 * @param src - the data
 * @returns the block, in a fresh buffer
 */
export function lz4CompressBlock(src: Uint8Array): Buffer {
  const n = src.length;
  const out = Buffer.allocUnsafe(lz4BlockBound(n));
  let op = 0;
  let anchor = 0;

  if (n > MF_LIMIT) {
    if (base > 0x7fffffff - n - 1) {
      table.fill(0);
      base = 1;
    }
    const b = base;
    base += n + 1;
    const matchStartLimit = n - MF_LIMIT; // a match starts below this
    const matchEndLimit = n - LAST_LITERALS; // and ends at or below this
    let ip = 0;
    let misses = 1 << 6;

    while (ip < matchStartLimit) {
      const seq = read32(src, ip);
      const h = hash(seq);
      const ref = table[h] - b;
      table[h] = ip + b;
      if (ref < 0 || ip - ref > MAX_OFFSET || read32(src, ref) !== seq) {
        ip += misses++ >> 6; // skip faster through data that does not compress
        continue;
      }
      misses = 1 << 6;

      // Extend the match backwards over pending literals, then forwards.
      let s = ip;
      let r = ref;
      while (s > anchor && r > 0 && src[s - 1] === src[r - 1]) {
        s--;
        r--;
      }
      let e = ip + MIN_MATCH;
      let re = ref + MIN_MATCH;
      while (e < matchEndLimit && src[e] === src[re]) {
        e++;
        re++;
      }

      // Emit: token, literal length, literals, offset, match length.
      const litLen = s - anchor;
      const mlCode = e - s - MIN_MATCH;
      const tokenPos = op++;
      if (litLen >= 15) op = writeLength(out, op, litLen - 15);
      copyBytes(src, anchor, litLen, out, op);
      op += litLen;
      const offset = s - r;
      out[op++] = offset & 0xff;
      out[op++] = offset >>> 8;
      if (mlCode >= 15) op = writeLength(out, op, mlCode - 15);
      out[tokenPos] = (Math.min(litLen, 15) << 4) | Math.min(mlCode, 15);

      anchor = ip = e;
      // Index a position inside the match just emitted, which helps the next search.
      if (ip < matchStartLimit) table[hash(read32(src, ip - 2))] = ip - 2 + b;
    }
  }

  // Last literals.
  const litLen = n - anchor;
  const tokenPos = op++;
  if (litLen >= 15) op = writeLength(out, op, litLen - 15);
  out[tokenPos] = Math.min(litLen, 15) << 4;
  copyBytes(src, anchor, litLen, out, op);
  op += litLen;
  return out.subarray(0, op);
}

/**
 * Decode one raw LZ4 block into `dst`, never reading or writing out of bounds.
 *
 * @param src - the block
 * @param dst - where to write; its length is the most the block may produce
 * @returns the number of bytes written
 * @throws Error describing the first malformed element
 */
export function lz4DecodeBlockInto(src: Uint8Array, dst: Uint8Array): number {
  const iend = src.length;
  const oend = dst.length;
  let ip = 0;
  let op = 0;
  if (iend === 0) throw new Error('empty block');

  for (;;) {
    if (ip >= iend) throw new Error(`block ends before a token at input ${ip}`);
    const token = src[ip++];

    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= iend) throw new Error('block ends inside a literal length');
        b = src[ip++];
        lit += b;
      } while (b === 255);
    }
    if (lit > iend - ip) throw new Error(`literal run of ${lit} bytes at input ${ip} passes the end of the block`);
    if (lit > oend - op) throw new Error(`literal run of ${lit} bytes at output ${op} passes the expected size`);
    copyBytes(src, ip, lit, dst, op);
    ip += lit;
    op += lit;
    if (ip === iend) return op; // the last sequence has literals only

    if (iend - ip < 2) throw new Error('block ends inside a match offset');
    const offset = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    if (offset === 0 || offset > op) throw new Error(`match offset ${offset} at output ${op} points outside the data`);

    let ml = token & 15;
    if (ml === 15) {
      let b: number;
      do {
        if (ip >= iend) throw new Error('block ends inside a match length');
        b = src[ip++];
        ml += b;
      } while (b === 255);
    }
    ml += MIN_MATCH;
    if (ml > oend - op) throw new Error(`match of ${ml} bytes at output ${op} passes the expected size`);

    let m = op - offset;
    if (ml < SHORT_COPY || offset < 8) {
      // Overlapping matches repeat a short pattern: byte order matters.
      const end = op + ml;
      while (op < end) dst[op++] = dst[m++];
    } else if (offset >= ml) {
      dst.copyWithin(op, m, m + ml);
      op += ml;
    } else {
      // Repeat the pattern in chunks that never overlap their own source.
      let left = ml;
      while (left > 0) {
        const k = Math.min(left, op - m);
        dst.copyWithin(op, m, m + k);
        op += k;
        left -= k;
      }
    }
  }
}
