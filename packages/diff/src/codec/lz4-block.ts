/**
 * The LZ4 block format (no frame, no size prefix) in plain TypeScript: the fallback when the native
 * `lz4-napi` binary does not load, and the encoder to use when output must match walb-tools byte
 * for byte.
 *
 * Written from the format description (lz4 `doc/lz4_Block_format.md`): a block is a sequence of
 * (token, literal length, literals, offset, match length) groups; the last one holds literals only.
 * The encoder keeps the end-of-block rules of the reference decoder (the last 5 bytes are literals,
 * the last match starts at least 12 bytes before the end) and searches like the reference encoder.
 *
 * @module
 */

const MIN_MATCH = 4;
/** A match must not start in the last MF_LIMIT bytes of the input. */
const MF_LIMIT = 12;
/** The last LAST_LITERALS bytes of the input are always literals. */
const LAST_LITERALS = 5;
/** Inputs shorter than this are stored as one literal run. */
const MIN_LENGTH = MF_LIMIT + 1;
const MAX_OFFSET = 65535;
/** Below this input size every offset fits, and the reference uses a 2^13-entry table of 16-bit positions. */
const LIMIT_64K = 65536 + MF_LIMIT - 1;
const SKIP_TRIGGER = 6;
const PRIME32 = 0x9e3779b1;
/** The 40-bit prime of the reference's 5-byte hash, split in 32-bit halves. */
const PRIME5_HI = 0xcf;
const PRIME5_LO = 0x1bbcdcbb;
/** Copies shorter than this run as byte loops: cheaper than a typed-array call. */
const SHORT_COPY = 24;

/** Largest LZ4 block for `n` input bytes (`LZ4_compressBound`). */
export function lz4BlockBound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

// The match-finder table holds input positions plus `base`. Entries below `base` are left from
// earlier calls and read as position 0, which is what a freshly zeroed table holds: the table is
// never cleared, yet every call sees the state the reference encoder starts from.
const table = new Int32Array(1 << 13);
let base = 0;

function read32(a: Uint8Array, i: number): number {
  return a[i] | (a[i + 1] << 8) | (a[i + 2] << 16) | (a[i + 3] << 24);
}

/** Hash of the 4 bytes at `p` into 13 bits (inputs below 64 KiB). */
function hash4(a: Uint8Array, p: number): number {
  return Math.imul(read32(a, p), PRIME32) >>> 19;
}

/**
 * Hash of the 5 bytes at `p` into 12 bits, as the reference computes it on 64-bit hosts for larger
 * inputs: the top 12 bits of `(bytes[0..4] << 24) × prime5` modulo 2^64, here in 32-bit pieces.
 */
function hash5(a: Uint8Array, p: number): number {
  const b0 = a[p];
  const xHi = (a[p + 1] | (a[p + 2] << 8) | (a[p + 3] << 16) | (a[p + 4] << 24)) >>> 0;
  const hi = (Math.imul(xHi, PRIME5_LO) + Math.imul(b0 << 24, PRIME5_HI) + Math.floor((b0 * PRIME5_LO) / 256)) >>> 0;
  return hi >>> 20;
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
 * Compress `src` into one raw LZ4 block. The search follows the reference encoder
 * (`LZ4_compress_default`, acceleration 1, on a 64-bit host) step by step, so the output is
 * normally byte-identical to what walb-tools writes.
 *
 * @param src - the data
 * @returns the block, in a fresh buffer
 */
export function lz4CompressBlock(src: Uint8Array): Buffer {
  const n = src.length;
  const out = Buffer.allocUnsafe(lz4BlockBound(n));
  let op = 0;
  let anchor = 0;

  if (n >= MIN_LENGTH) {
    const small = n < LIMIT_64K;
    const hashAt = small ? hash4 : hash5;
    if (base > 0x7fffffff - n - 1) {
      table.fill(0);
      base = 0;
    }
    const b = base + 1;
    base = b + n;
    const matchStartEnd = n - MF_LIMIT + 1; // the search stops when its next position passes this
    const matchEndLimit = n - LAST_LITERALS; // matches end at or below this

    table[hashAt(src, 0)] = b;
    let ip = 1;
    let nextHash = hashAt(src, 1);

    search: for (;;) {
      // Find a match, skipping faster after every 64 misses.
      let match: number;
      let next = ip;
      let step = 1;
      let misses = 1 << SKIP_TRIGGER;
      for (;;) {
        const h = nextHash;
        const cur = next;
        let cand = table[h] - b;
        if (cand < 0) cand = 0;
        ip = next;
        next += step;
        step = misses++ >> SKIP_TRIGGER;
        if (next > matchStartEnd) break search;
        nextHash = hashAt(src, next);
        table[h] = cur + b;
        if (!small && cand + MAX_OFFSET < cur) continue;
        if (read32(src, cand) === read32(src, ip)) {
          match = cand;
          break;
        }
      }

      // Extend it backwards over pending literals.
      while (ip > anchor && match > 0 && src[ip - 1] === src[match - 1]) {
        ip--;
        match--;
      }

      // Token and literals.
      const litLen = ip - anchor;
      let tokenPos = op++;
      if (litLen >= 15) op = writeLength(out, op, litLen - 15);
      out[tokenPos] = Math.min(litLen, 15) << 4;
      copyBytes(src, anchor, litLen, out, op);
      op += litLen;

      // Offset and match length; then, while the next position matches at once, more matches
      // without literals.
      for (;;) {
        const offset = ip - match;
        out[op++] = offset & 0xff;
        out[op++] = offset >>> 8;
        let e = ip + MIN_MATCH;
        let m = match + MIN_MATCH;
        while (e < matchEndLimit && src[e] === src[m]) {
          e++;
          m++;
        }
        const mlCode = e - ip - MIN_MATCH;
        if (mlCode >= 15) {
          out[tokenPos] |= 15;
          op = writeLength(out, op, mlCode - 15);
        } else {
          out[tokenPos] |= mlCode;
        }
        ip = anchor = e;
        if (ip >= matchStartEnd) break search;

        table[hashAt(src, ip - 2)] = ip - 2 + b;
        const h = hashAt(src, ip);
        let cand = table[h] - b;
        if (cand < 0) cand = 0;
        table[h] = ip + b;
        if ((small || cand + MAX_OFFSET >= ip) && read32(src, cand) === read32(src, ip)) {
          tokenPos = op++;
          out[tokenPos] = 0;
          match = cand;
          continue;
        }
        break;
      }
      nextHash = hashAt(src, ++ip);
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
