/**
 * A small seedable PRNG (xoshiro128**), so generated logs are reproducible from their seed.
 *
 * @module
 */

/** A seeded pseudo-random generator. Not for cryptography. */
export class SeededRandom {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // splitmix32 spreads any seed over the 128-bit state.
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next(); this.b = next(); this.c = next(); this.d = next();
  }

  /** A uniformly distributed u32. */
  u32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a; this.d ^= this.b; this.b ^= this.c; this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }

  /** An integer in `[0, n)` for `n ≤ 2^53`. */
  below(n: number): number {
    if (n <= 0) return 0;
    if (n <= 0x1_0000_0000) return Math.floor((this.u32() / 0x1_0000_0000) * n);
    const hi = this.u32() & 0x1fffff;
    return Math.floor(((hi * 0x1_0000_0000 + this.u32()) / 2 ** 53) * n);
  }

  /** Fill `buf` with random bytes. */
  fill(buf: Uint8Array): void {
    const words = buf.byteLength >>> 2;
    if ((buf.byteOffset & 3) === 0) {
      const w = new Uint32Array(buf.buffer, buf.byteOffset, words);
      for (let i = 0; i < words; i++) w[i] = this.u32();
    } else {
      const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      for (let i = 0; i < words; i++) dv.setUint32(i * 4, this.u32(), true);
    }
    for (let i = words * 4; i < buf.byteLength; i++) buf[i] = this.u32() & 0xff;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
