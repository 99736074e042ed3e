/**
 * A compact ordered index of non-overlapping intervals keyed by their start address, the sorted map
 * under {@link DiffMemory}. JavaScript has no ordered map, so this is a two-level sorted list: the
 * entries live in chunks of at most `chunkSize` entries, and a flat array holds each chunk's first
 * address for a binary search (in effect a B+tree of height two).
 *
 * A chunk is one `ArrayBuffer` holding, per entry, its start and end address and a numeric tag
 * (float64 each) and the slot of its value (int32) in a pool shared by all chunks. Inserting or
 * removing moves these plain numbers with `copyWithin` (a `memmove`, no write barriers), which is
 * several times faster than splicing arrays of objects; the values themselves never move.
 *
 * Costs, with n entries and chunk size B: finding an address is O(log n) (two binary searches);
 * inserting or removing one entry moves O(B) numbers, and, when a chunk splits or is merged away,
 * O(n/B) chunk references; a run of k entries costs O(k + B). Per entry it holds 28 bytes in its
 * chunk (chunks are ¼ to full, ¾ on average after a split) and one pool slot.
 *
 * The index does not know how to cut an interval; it only finds and removes the entries that meet a
 * range ({@link IntervalIndex.cut}) and puts a sorted run back in the hole ({@link IntervalIndex.fill}).
 * The caller computes what goes back.
 *
 * @module
 */

/** What the index holds: anything with a start address and a length, both in the same unit. */
export interface Span {
  /** First address. */
  readonly addr: number;
  /** Length, > 0. */
  readonly blocks: number;
}

/** Default number of entries per chunk. */
export const DEFAULT_INDEX_CHUNK_SIZE = 256;
const MIN_CHUNK_SIZE = 4;
/** Chunks are allocated this many at a time, in one buffer. */
const ARENA_CHUNKS = 32;
/** At most this many emptied chunks are kept for reuse. */
const MAX_SPARE_CHUNKS = 64;

/** One chunk: `keys[i]` and, at `rec[3i ..]`, end, tag and pool slot; the first `len` in use. */
class Chunk {
  readonly keys: Float64Array;
  readonly rec: Float64Array;
  len = 0;
  /** A chunk of `cap` entries over `buf` from byte `at` (`cap * 32` bytes). */
  constructor(cap: number, buf: ArrayBuffer, at: number) {
    this.keys = new Float64Array(buf, at, cap);
    this.rec = new Float64Array(buf, at + cap * 8, cap * 3);
  }

  /** Move entries `[from, len)` to start at `to` (either direction); does not change `len`. */
  shift(from: number, to: number): void {
    this.keys.copyWithin(to, from, this.len);
    this.rec.copyWithin(3 * to, 3 * from, 3 * this.len);
  }

  /** Copy entries `[from, to)` of `src` to position `at` of this chunk. */
  copyFrom(src: Chunk, from: number, to: number, at: number): void {
    this.keys.set(src.keys.subarray(from, to), at);
    this.rec.set(src.rec.subarray(3 * from, 3 * to), 3 * at);
  }
}

/**
 * An ordered set of non-overlapping {@link Span}s, each with a numeric tag, keyed by `addr`.
 *
 * The caller keeps the spans non-overlapping; {@link checkInvariants} verifies it. Iterating while
 * modifying is not supported.
 */
export class IntervalIndex<V extends Span> {
  /** Most entries in one chunk. */
  readonly chunkSize: number;
  private readonly minFill: number;
  private chunks: Chunk[] = [];
  /** `mins[c]` is `chunks[c].keys[0]`. */
  private mins: number[] = [];
  private n = 0;
  /** The values, by slot; free slots hold `undefined` and are listed in {@link free}. */
  private pool: (V | undefined)[] = [];
  private free: number[] = [];
  /** Where {@link cut} left its hole, for {@link fill}: chunk and index; `holeC < 0` when none. */
  private holeC = -1;
  private holeI = 0;
  /**
   * Entries `[holeI, holeI + holeDead)` of the hole's chunk were cut but not yet squeezed out:
   * {@link fill} moves the rest of the chunk only once, by the difference.
   */
  private holeDead = 0;
  /** Emptied chunks kept for reuse, and the unused rest of the current allocation buffer. */
  private spare: Chunk[] = [];
  private arena: ArrayBuffer | undefined;
  private arenaUsed = 0;

  /**
   * @param chunkSize - most entries per chunk (≥ 4); small values are for tests
   */
  constructor(chunkSize = DEFAULT_INDEX_CHUNK_SIZE) {
    if (!Number.isSafeInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > 65536) {
      throw new RangeError(`chunkSize must be an integer in [${MIN_CHUNK_SIZE}, 65536]: ${chunkSize}`);
    }
    this.chunkSize = chunkSize;
    this.minFill = chunkSize >> 2;
  }

  /** Number of entries. */
  get size(): number {
    return this.n;
  }

  /** Number of chunks (for tests and tuning). */
  get chunkCount(): number {
    return this.chunks.length;
  }

  /** Remove every entry. */
  clear(): void {
    this.chunks = [];
    this.mins = [];
    this.n = 0;
    this.pool = [];
    this.free = [];
    this.holeC = -1;
    this.spare = [];
    this.arena = undefined;
  }

  /** The first entry, or `undefined`. */
  first(): V | undefined {
    this.settled();
    return this.n ? this.pool[this.chunks[0].rec[3 * 0 + 2]] : undefined;
  }

  /** The last entry, or `undefined`. */
  last(): V | undefined {
    this.settled();
    if (!this.n) return undefined;
    const ch = this.chunks[this.chunks.length - 1];
    return this.pool[ch.rec[3 * (ch.len - 1) + 2]];
  }

  /** The entry that contains `addr`, or `undefined`. */
  find(addr: number): V | undefined {
    this.settled();
    if (!this.n) return undefined;
    const ch = this.chunks[this.chunkIndex(addr)];
    const i = floorIndex(ch.keys, ch.len, addr);
    return i >= 0 && ch.rec[3 * i] > addr ? this.pool[ch.rec[3 * i + 2]] : undefined;
  }

  /** The tag of the entry that contains `addr`, or `undefined`. */
  findTag(addr: number): number | undefined {
    this.settled();
    if (!this.n) return undefined;
    const ch = this.chunks[this.chunkIndex(addr)];
    const i = floorIndex(ch.keys, ch.len, addr);
    return i >= 0 && ch.rec[3 * i] > addr ? ch.rec[3 * i + 1] : undefined;
  }

  /**
   * Append to `outVals` (and `outTags` when given), in order, the entries that meet `[from, to)`.
   * Returns how many.
   */
  collect(from: number, to: number, outVals: V[], outTags?: number[]): number {
    this.settled();
    if (this.n === 0 || from >= to) return 0;
    let c = this.chunkIndex(from);
    let ch = this.chunks[c];
    let i = floorIndex(ch.keys, ch.len, from);
    if (i < 0) i = 0;
    else if (ch.rec[3 * i] <= from) i++;
    let count = 0;
    for (;;) {
      while (i < ch.len && ch.keys[i] < to) {
        outVals.push(this.pool[ch.rec[3 * i + 2]]!);
        if (outTags) outTags.push(ch.rec[3 * i + 1]);
        i++;
        count++;
      }
      if (i < ch.len || ++c >= this.chunks.length) return count;
      ch = this.chunks[c];
      i = 0;
    }
  }

  /**
   * Remove every entry that meets `[from, to)` and store them, in order, in `outVals` and their
   * tags in `outTags`, from index 0 (overwriting; the arrays are not truncated, so they can be
   * reused without reallocation). Returns how many were removed. The index then has a hole where they were: the
   * next call must be {@link fill} or {@link fillOne} (with the entries to put back, possibly
   * none), before anything else.
   */
  cut(from: number, to: number, outVals: V[], outTags: number[]): number {
    this.settled();
    this.holeDead = 0;
    if (this.n === 0) {
      this.holeC = 0;
      this.holeI = 0;
      return 0;
    }
    const c = this.chunkIndex(from);
    const ch = this.chunks[c];
    let s = floorIndex(ch.keys, ch.len, from);
    if (s < 0) s = 0;
    else if (ch.rec[3 * s] <= from) s++;
    this.holeC = c;
    this.holeI = s;
    // Take the run [s, ...) of entries that start before `to`, possibly over several chunks.
    const pool = this.pool;
    const free = this.free;
    let c2 = c;
    let ch2 = ch;
    let j = s;
    let count = 0;
    for (;;) {
      while (j < ch2.len && ch2.keys[j] < to) {
        const slot = ch2.rec[3 * j + 2];
        outVals[count] = pool[slot]!;
        outTags[count] = ch2.rec[3 * j + 1];
        pool[slot] = undefined;
        free.push(slot);
        j++;
        count++;
      }
      if (j < ch2.len || c2 + 1 >= this.chunks.length) break;
      c2++;
      ch2 = this.chunks[c2];
      j = 0;
    }
    if (count === 0) return 0;
    this.n -= count;
    if (c2 === c) {
      this.holeDead = j - s;
      return count;
    }
    // The run spans chunks c..c2: keep the head of c and the tail of c2, drop those in between.
    ch.len = s;
    const rest = ch2.len - j;
    if (s + rest <= this.chunkSize) {
      ch.copyFrom(ch2, j, ch2.len, s);
      ch.len = s + rest;
      this.dropChunks(c + 1, c2 - c);
    } else {
      ch2.shift(j, 0);
      ch2.len = rest;
      this.mins[c2] = ch2.keys[0];
      if (c2 > c + 1) {
        this.dropChunks(c + 1, c2 - c - 1);
      }
    }
    return count;
  }

  /**
   * Put the first `count` entries of `vals` (default: all), sorted and non-overlapping, with their
   * tags, into the hole left by the last {@link cut}. They must fit between the entries around it.
   */
  fill(vals: readonly V[], tags: readonly number[], count = vals.length): void {
    const c = this.holeC;
    if (c < 0) throw new Error('IntervalIndex.fill without cut');
    this.holeC = -1;
    const dead = this.holeDead;
    this.holeDead = 0;
    if (this.chunks.length === 0) {
      if (count === 0) return;
      this.newChunkAt(0);
    }
    const ch = this.chunks[c];
    const i = this.holeI;
    const len = ch.len;
    this.n += count;
    if (len - dead + count <= this.chunkSize) {
      if (count !== dead && i + dead < len) ch.shift(i + dead, i + count);
      for (let q = 0; q < count; q++) this.put(ch, i + q, vals[q], tags[q]);
      ch.len = len - dead + count;
      this.normalize(c);
      return;
    }
    // Too many for one chunk: lay the merged run out over new chunks, about ¾ full each.
    const total = len - dead + count;
    const per = Math.max(1, Math.floor((this.chunkSize * 3) / 4));
    const parts = Math.ceil(total / per);
    const made: Chunk[] = [];
    const firsts: number[] = [];
    let src = 0; // position in the merged sequence: ch[0, i), vals[0, count), ch[i + dead, len)
    for (let p = 0; p < parts; p++) {
      const end = Math.floor((total * (p + 1)) / parts);
      const nc = this.allocChunk();
      let k = 0;
      while (src < end) {
        if (src < i) {
          const take = Math.min(end, i) - src;
          nc.copyFrom(ch, src, src + take, k);
          k += take;
          src += take;
        } else if (src < i + count) {
          const q = src - i;
          this.put(nc, k, vals[q], tags[q]);
          k++;
          src++;
        } else {
          const from = src - count + dead;
          const take = end - src;
          nc.copyFrom(ch, from, from + take, k);
          k += take;
          src += take;
        }
      }
      nc.len = k;
      made.push(nc);
      firsts.push(nc.keys[0]);
    }
    this.replaceChunk(c, made, firsts);
  }

  /** {@link fill} with one entry. */
  fillOne(v: V, tag: number): void {
    const c = this.holeC;
    if (c < 0) throw new Error('IntervalIndex.fill without cut');
    if (this.chunks.length === 0) this.newChunkAt(0);
    const ch = this.chunks[c];
    const i = this.holeI;
    const dead = this.holeDead;
    if (dead > 0) {
      // Reuse the first cut place; squeeze out the others.
      this.holeC = -1;
      this.holeDead = 0;
      this.put(ch, i, v, tag);
      if (dead > 1) {
        if (i + dead < ch.len) ch.shift(i + dead, i + 1);
        ch.len -= dead - 1;
      }
      this.n++;
      if (i === 0 || ch.len < this.minFill) this.normalize(c);
      return;
    }
    if (ch.len === this.chunkSize) {
      // Full: split it in two and put the entry in its half.
      const h = ch.len >> 1;
      const nc = this.newChunkAt(c + 1);
      nc.copyFrom(ch, h, ch.len, 0);
      nc.len = ch.len - h;
      ch.len = h;
      this.mins[c + 1] = nc.keys[0];
      if (i > h) {
        this.holeC = c + 1;
        this.holeI = i - h;
        this.fillOne(v, tag);
        return;
      }
      this.holeI = i;
      this.fillOne(v, tag);
      return;
    }
    this.holeC = -1;
    if (i < ch.len) ch.shift(i, i + 1);
    this.put(ch, i, v, tag);
    ch.len++;
    this.n++;
    if (i === 0 || ch.len < this.minFill) this.normalize(c);
  }

  /**
   * Remove every entry whose key is below `addr` and append them, in order, to `outVals` (and their
   * tags to `outTags` when given). Returns how many. The caller cuts an entry that straddles `addr`
   * first.
   */
  takeBelow(addr: number, outVals: V[], outTags?: number[]): number {
    this.settled();
    if (this.n === 0 || addr <= this.mins[0]) return 0;
    const c = this.chunkIndex(addr - 1);
    const ch = this.chunks[c];
    const i = lowerBound(ch.keys, ch.len, addr);
    let count = 0;
    for (let k = 0; k <= c; k++) {
      const ck = this.chunks[k];
      const m = k < c ? ck.len : i;
      for (let q = 0; q < m; q++) {
        const slot = ck.rec[3 * q + 2];
        outVals.push(this.pool[slot]!);
        if (outTags) outTags.push(ck.rec[3 * q + 1]);
        this.pool[slot] = undefined;
        this.free.push(slot);
      }
      count += m;
    }
    this.n -= count;
    if (this.n === 0) {
      this.clear();
      return count;
    }
    const drop = i === ch.len ? c + 1 : c;
    if (drop > 0) {
      this.dropChunks(0, drop);
    }
    if (i < ch.len && i > 0) {
      ch.shift(i, 0);
      ch.len -= i;
      this.normalize(0);
    }
    return count;
  }

  /** The entries in order. */
  *values(): IterableIterator<V> {
    this.settled();
    const pool = this.pool;
    for (const ch of this.chunks) for (let i = 0; i < ch.len; i++) yield pool[ch.rec[3 * i + 2]]!;
  }

  /** Call `fn` on every entry and its tag, in order. */
  forEach(fn: (v: V, tag: number) => void): void {
    this.settled();
    const pool = this.pool;
    for (const ch of this.chunks) for (let i = 0; i < ch.len; i++) fn(pool[ch.rec[3 * i + 2]]!, ch.rec[3 * i + 1]);
  }

  /**
   * Check the structure (for tests): chunk fill, `mins`, keys and ends matching the values, sorted
   * and non-overlapping entries, the count and the pool. Throws on the first fault.
   */
  checkInvariants(): void {
    this.settled();
    let count = 0;
    let prevEnd = -Infinity;
    const seen = new Set<number>();
    if (this.mins.length !== this.chunks.length) throw new Error('mins length');
    for (let c = 0; c < this.chunks.length; c++) {
      const ch = this.chunks[c];
      const len = ch.len;
      if (len === 0 || len > this.chunkSize) throw new Error(`chunk ${c} has ${len} entries`);
      if (this.mins[c] !== ch.keys[0]) throw new Error(`mins[${c}] is stale`);
      for (let i = 0; i < len; i++) {
        const slot = ch.rec[3 * i + 2];
        const v = this.pool[slot];
        if (v === undefined || seen.has(slot)) throw new Error(`bad slot ${slot}`);
        seen.add(slot);
        if (ch.keys[i] !== v.addr || ch.rec[3 * i] !== v.addr + v.blocks) throw new Error(`key ${ch.keys[i]} does not match addr ${v.addr}`);
        if (v.addr < prevEnd) throw new Error(`entry at ${v.addr} overlaps or is out of order (previous end ${prevEnd})`);
        prevEnd = v.addr + v.blocks;
      }
      count += len;
    }
    if (count !== this.n) throw new Error(`size ${this.n}, counted ${count}`);
    if (this.pool.length - this.free.length !== this.n) throw new Error(`pool holds ${this.pool.length - this.free.length} for ${this.n} entries`);
  }

  private settled(): void {
    if (this.holeC >= 0) throw new Error('IntervalIndex: cut must be followed by fill');
  }

  /** Store `v` with `tag` at position `i` of `ch`. */
  private put(ch: Chunk, i: number, v: V, tag: number): void {
    let slot: number;
    if (this.free.length) {
      slot = this.free.pop()!;
      this.pool[slot] = v;
    } else {
      slot = this.pool.length;
      this.pool.push(v);
    }
    ch.keys[i] = v.addr;
    ch.rec[3 * i] = v.addr + v.blocks;
    ch.rec[3 * i + 1] = tag;
    ch.rec[3 * i + 2] = slot;
  }

  /** A new empty chunk: a spare one, or one more from the allocation buffer. */
  private allocChunk(): Chunk {
    const sp = this.spare.pop();
    if (sp) {
      sp.len = 0;
      return sp;
    }
    const bytes = this.chunkSize * 32;
    if (!this.arena || this.arenaUsed + bytes > this.arena.byteLength) {
      this.arena = new ArrayBuffer(bytes * ARENA_CHUNKS);
      this.arenaUsed = 0;
    }
    const nc = new Chunk(this.chunkSize, this.arena, this.arenaUsed);
    this.arenaUsed += bytes;
    return nc;
  }

  /** Remove `k` chunks from `c`, keeping a few for reuse. */
  private dropChunks(c: number, k: number): void {
    const gone = this.chunks.splice(c, k);
    this.mins.splice(c, k);
    for (let q = 0; q < gone.length && this.spare.length < MAX_SPARE_CHUNKS; q++) this.spare.push(gone[q]);
  }

  private newChunkAt(c: number): Chunk {
    const nc = this.allocChunk();
    this.chunks.splice(c, 0, nc);
    this.mins.splice(c, 0, 0);
    return nc;
  }

  /** Index of the last chunk whose first key is ≤ `addr` (0 when none). Needs a chunk. */
  private chunkIndex(addr: number): number {
    const mins = this.mins;
    let lo = 0;
    let hi = mins.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (mins[mid] <= addr) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Replace chunk `c` by `made` (whose first keys are `firsts`). */
  private replaceChunk(c: number, made: Chunk[], firsts: number[]): void {
    if (this.spare.length < MAX_SPARE_CHUNKS) this.spare.push(this.chunks[c]);
    if (made.length < 8192) {
      this.chunks.splice(c, 1, ...made);
      this.mins.splice(c, 1, ...firsts);
    } else {
      this.chunks = this.chunks.slice(0, c).concat(made, this.chunks.slice(c + 1));
      this.mins = this.mins.slice(0, c).concat(firsts, this.mins.slice(c + 1));
    }
  }

  /** After chunk `c` changed: drop it when empty, refresh its first key, merge it when too small. */
  private normalize(c: number): void {
    const ch = this.chunks[c];
    if (ch.len === 0) {
      this.dropChunks(c, 1);
      return;
    }
    this.mins[c] = ch.keys[0];
    if (ch.len >= this.minFill || this.chunks.length === 1) return;
    // Merge with a neighbour, or even out the two when together they do not fit in one.
    const l = c + 1 < this.chunks.length ? c : c - 1;
    const a = this.chunks[l];
    const b = this.chunks[l + 1];
    const total = a.len + b.len;
    if (total <= this.chunkSize) {
      a.copyFrom(b, 0, b.len, a.len);
      a.len = total;
      this.dropChunks(l + 1, 1);
      return;
    }
    const h = total >> 1;
    if (a.len < h) {
      const k = h - a.len;
      a.copyFrom(b, 0, k, a.len);
      a.len = h;
      b.shift(k, 0);
      b.len -= k;
    } else {
      const k = a.len - h;
      b.shift(0, k);
      b.len += k;
      b.copyFrom(a, h, a.len, 0);
      a.len = h;
    }
    this.mins[l] = a.keys[0];
    this.mins[l + 1] = b.keys[0];
  }
}

/** Index of the last of `keys[0, len)` that is ≤ `x`, or -1. */
function floorIndex(keys: Float64Array, len: number, x: number): number {
  let lo = 0;
  let hi = len;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (keys[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Index of the first of `keys[0, len)` that is ≥ `x` (`len` when none). */
function lowerBound(keys: Float64Array, len: number, x: number): number {
  let lo = 0;
  let hi = len;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (keys[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
