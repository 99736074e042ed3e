/**
 * A compact ordered index of non-overlapping intervals, the sorted map under {@link DiffMemory}.
 *
 * JavaScript has no ordered map, so this is a two-level sorted list (in effect a B+tree of height
 * two): the entries live in chunks of at most `chunkSize` entries, and a flat array holds each
 * chunk's first address for a binary search.
 *
 * An entry is five numbers and an optional payload:
 * - `addr`, `end`: the interval `[addr, end)`, the key being `addr`;
 * - `tag`: any number the caller attaches (DiffMemory: the age);
 * - `ref`: ≥ 0 when the entry has a payload, else a negative code of the caller's choosing
 *   (DiffMemory: the kind of a non-normal IO);
 * - `off`: an offset into the payload that moves with the start: when the start of an entry moves
 *   by d (by cutting off its head), `off` moves by d too (DiffMemory: the LB offset in the image).
 *
 * A chunk keeps its entries in two `Float64Array`s over one buffer (the keys, and
 * `[end, tag, ref, off]` per entry); payloads sit in a pool shared by all chunks, an entry's `ref`
 * being its slot. Inserting or removing moves plain numbers with `copyWithin` (a `memmove`, no
 * write barriers, nothing for the garbage collector to trace) and never allocates an object.
 *
 * Costs, with n entries and chunk size B: finding an address is O(log n) (two binary searches);
 * replacing a run of k entries by m moves O(B + m) numbers and, when a chunk splits or is merged
 * away, O(n/B) chunk references. Memory: 40 bytes per entry in its chunk plus a pool slot (8 bytes)
 * per entry with a payload. A full chunk splits in half, except when the entry goes at one of its
 * ends (sequential inserts), which starts a new chunk: chunks end up about ¾ full under random
 * inserts (≈ 55 bytes per entry) and full under sequential ones (≈ 40); a chunk that shrinks below
 * ¼ is merged with a neighbour.
 *
 * Entries move in and out through {@link Run}s, reusable growable lists of entries.
 *
 * @module
 */

/** Number of entries per chunk by default. */
export const DEFAULT_INDEX_CHUNK_SIZE = 256;
const MIN_CHUNK_SIZE = 4;
/** Chunks are allocated this many at a time, in one buffer. */
const ARENA_CHUNKS = 32;
/** At most this many emptied chunks are kept for reuse. */
const MAX_SPARE_CHUNKS = 64;
/** Numbers per entry in a {@link Run}: addr, end, tag, ref, off. */
const RS = 5;

/**
 * A growable list of entries, for moving them in and out of an {@link IntervalIndex} without
 * allocating per entry. Entry `i` is `f[5i .. 5i+4]` = addr, end, tag, ref, off, and its payload is
 * `p[i]` (present when `ref ≥ 0`).
 */
export class Run<P> {
  /** Number of entries. */
  n = 0;
  /** The numbers, five per entry. */
  f: Float64Array;
  /** The payloads. */
  readonly p: (P | undefined)[] = [];

  /** @param capacity - initial capacity in entries */
  constructor(capacity = 16) {
    this.f = new Float64Array(Math.max(1, capacity) * RS);
  }

  /** Append an entry. */
  push(addr: number, end: number, tag: number, ref: number, off: number, payload: P | undefined): void {
    const n = this.n;
    if ((n + 1) * RS > this.f.length) {
      const f = new Float64Array(Math.max(n + 1, 2 * (this.f.length / RS)) * RS);
      f.set(this.f);
      this.f = f;
    }
    const b = n * RS;
    const f = this.f;
    f[b] = addr;
    f[b + 1] = end;
    f[b + 2] = tag;
    f[b + 3] = ref;
    f[b + 4] = off;
    this.p[n] = payload;
    this.n = n + 1;
  }

  /** Empty the list, dropping its references to payloads. */
  release(): void {
    const p = this.p;
    for (let i = 0; i < this.n; i++) p[i] = undefined;
    this.n = 0;
  }
}

/** One chunk: `keys[i]` and `rec[4i ..]` = end, tag, ref, off; the first `len` in use. */
class Chunk {
  readonly keys: Float64Array;
  readonly rec: Float64Array;
  len = 0;
  /** A chunk of `cap` entries over `buf` from byte `at` (`cap * 40` bytes). */
  constructor(cap: number, buf: ArrayBuffer, at: number) {
    this.keys = new Float64Array(buf, at, cap);
    this.rec = new Float64Array(buf, at + cap * 8, cap * 4);
  }

  /** Move entries `[from, len)` to start at `to` (either direction); does not change `len`. */
  shift(from: number, to: number): void {
    this.keys.copyWithin(to, from, this.len);
    this.rec.copyWithin(4 * to, 4 * from, 4 * this.len);
  }

  /** Copy entries `[from, to)` of `src` to position `at` of this chunk. */
  copyFrom(src: Chunk, from: number, to: number, at: number): void {
    this.keys.set(src.keys.subarray(from, to), at);
    this.rec.set(src.rec.subarray(4 * from, 4 * to), 4 * at);
  }
}

/** A forward cursor over an {@link IntervalIndex}; read the fields after each `next()` that returns true. */
export class IndexCursor<P> {
  addr = 0;
  end = 0;
  tag = 0;
  ref = 0;
  off = 0;
  payload: P | undefined = undefined;
  private c = 0;
  private i = -1;
  /** @internal */
  constructor(
    private readonly chunks: readonly Chunk[],
    private readonly pool: readonly (P | undefined)[],
  ) {}

  /** Move to the next entry; false at the end. */
  next(): boolean {
    let ch = this.chunks[this.c];
    if (!ch) return false;
    if (++this.i >= ch.len) {
      ch = this.chunks[++this.c];
      this.i = 0;
      if (!ch) return false;
    }
    const i = this.i;
    const r = ch.rec;
    this.addr = ch.keys[i];
    this.end = r[4 * i];
    this.tag = r[4 * i + 1];
    this.ref = r[4 * i + 2];
    this.off = r[4 * i + 3];
    this.payload = this.ref >= 0 ? this.pool[this.ref] : undefined;
    return true;
  }
}

/**
 * An ordered set of non-overlapping intervals with a tag, a kind-or-payload and an offset each (see
 * the module description). The caller keeps the intervals non-overlapping; {@link checkInvariants}
 * verifies it. Modifying while a cursor is open invalidates the cursor.
 */
export class IntervalIndex<P> {
  /** Most entries in one chunk. */
  readonly chunkSize: number;
  private readonly minFill: number;
  private chunks: Chunk[] = [];
  /** `mins[c]` is `chunks[c].keys[0]`. */
  private mins: number[] = [];
  private n = 0;
  /** The payloads, by slot; free slots hold `undefined` and are listed in `free`. */
  private pool: (P | undefined)[] = [];
  private free: number[] = [];
  /** Where {@link cut} left its hole: chunk and index; `holeC < 0` when none. */
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
   * @param chunkSize - most entries per chunk, in [4, 65536]; small values are for tests
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
    this.empty();
    this.spare = [];
    this.arena = undefined;
  }

  /** Remove every entry but keep emptied chunks and the allocation buffer for reuse. */
  private empty(): void {
    const old = this.chunks;
    this.chunks = [];
    this.mins = [];
    this.n = 0;
    this.pool = [];
    this.free = [];
    this.holeC = -1;
    this.holeDead = 0;
    for (let q = 0; q < old.length && this.spare.length < MAX_SPARE_CHUNKS; q++) this.spare.push(old[q]);
  }

  /** A cursor from the first entry. */
  cursor(): IndexCursor<P> {
    this.settled();
    return new IndexCursor(this.chunks, this.pool);
  }

  /** Set `out` to the first entry (`out.n` 0 when empty). */
  first(out: Run<P>): void {
    this.settled();
    out.release();
    if (this.n) this.emit(this.chunks[0], 0, out);
  }

  /** Set `out` to the last entry (`out.n` 0 when empty). */
  last(out: Run<P>): void {
    this.settled();
    out.release();
    if (this.n) {
      const ch = this.chunks[this.chunks.length - 1];
      this.emit(ch, ch.len - 1, out);
    }
  }

  /** Set `out` to the entry that contains `addr` (`out.n` 0 when none). */
  find(addr: number, out: Run<P>): void {
    this.settled();
    out.release();
    if (!this.n) return;
    const ch = this.chunks[this.chunkIndex(addr)];
    const i = floorIndex(ch.keys, ch.len, addr);
    if (i >= 0 && ch.rec[4 * i] > addr) this.emit(ch, i, out);
  }

  /** Append to `out`, in order, the entries that meet `[from, to)` (whole). Returns how many. */
  collect(from: number, to: number, out: Run<P>): number {
    this.settled();
    if (this.n === 0 || from >= to) return 0;
    let c = this.chunkIndex(from);
    let ch = this.chunks[c];
    let i = floorIndex(ch.keys, ch.len, from);
    if (i < 0) i = 0;
    else if (ch.rec[4 * i] <= from) i++;
    let count = 0;
    for (;;) {
      while (i < ch.len && ch.keys[i] < to) {
        this.emit(ch, i, out);
        i++;
        count++;
      }
      if (i < ch.len || ++c >= this.chunks.length) return count;
      ch = this.chunks[c];
      i = 0;
    }
  }

  /**
   * Remove every entry that meets `[from, to)` and put them, in order, in `out` (which is emptied
   * first; payloads move into it). Returns how many were removed. The index then has a hole where
   * they were: the next call must be {@link fill} or {@link fillOne}, with the entries to put back
   * (possibly none), before anything else.
   */
  cut(from: number, to: number, out: Run<P>): number {
    this.settled();
    out.release();
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
    else if (ch.rec[4 * s] <= from) s++;
    this.holeC = c;
    this.holeI = s;
    // Take the run [s, ...) of entries that start before `to`, possibly over several chunks.
    let c2 = c;
    let ch2 = ch;
    let j = s;
    let count = 0;
    for (;;) {
      while (j < ch2.len && ch2.keys[j] < to) {
        this.emit(ch2, j, out);
        const ref = ch2.rec[4 * j + 2];
        if (ref >= 0) {
          this.pool[ref] = undefined;
          this.free.push(ref);
        }
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
      if (c2 > c + 1) this.dropChunks(c + 1, c2 - c - 1);
    }
    return count;
  }

  /**
   * Put the entries of `run` (sorted, non-overlapping, fitting between the entries around the
   * hole) into the hole left by the last {@link cut}. The run is left as it is.
   */
  fill(run: Run<P>): void {
    const c = this.holeC;
    if (c < 0) throw new Error('IntervalIndex.fill without cut');
    this.holeC = -1;
    const dead = this.holeDead;
    this.holeDead = 0;
    const count = run.n;
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
      for (let q = 0; q < count; q++) this.putFrom(ch, i + q, run, q);
      ch.len = len - dead + count;
      this.normalize(c);
      return;
    }
    // Too many for one chunk: lay the merged sequence ch[0, i), run, ch[i + dead, len) out over new
    // chunks, about ¾ full each.
    const total = len - dead + count;
    const per = Math.max(1, Math.floor((this.chunkSize * 3) / 4));
    const parts = Math.ceil(total / per);
    const made: Chunk[] = [];
    const firsts: number[] = [];
    let src = 0;
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
          this.putFrom(nc, k, run, src - i);
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

  /** {@link fill} with one entry, given by its fields. */
  fillOne(addr: number, end: number, tag: number, ref: number, off: number, payload: P | undefined): void {
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
      this.put(ch, i, addr, end, tag, ref, off, payload);
      if (dead > 1) {
        if (i + dead < ch.len) ch.shift(i + dead, i + 1);
        ch.len -= dead - 1;
      }
      this.n++;
      if (i === 0 || ch.len < this.minFill) this.normalize(c);
      return;
    }
    if (ch.len === this.chunkSize) {
      if (i === ch.len || i === 0) {
        // Full, and the entry goes at an end (sequential adds): start a new chunk there, leaving
        // this one full.
        const at = i === 0 ? c : c + 1;
        const nc = this.newChunkAt(at);
        this.put(nc, 0, addr, end, tag, ref, off, payload);
        nc.len = 1;
        this.mins[at] = addr;
        this.holeC = -1;
        this.n++;
        return;
      }
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
      }
      this.fillOne(addr, end, tag, ref, off, payload);
      return;
    }
    this.holeC = -1;
    if (i < ch.len) ch.shift(i, i + 1);
    this.put(ch, i, addr, end, tag, ref, off, payload);
    ch.len++;
    this.n++;
    // The chunk grew: no merging (that would undo the one-entry chunks of sequential adds).
    if (i === 0) this.mins[c] = addr;
  }

  /**
   * Remove everything below `addr` and append it, in order, to `out`: each entry that ends at or
   * below `addr`, and the head `[addr', addr)` of an entry that straddles `addr` (its tail stays,
   * with its start, and so its `off`, moved). Returns how many entries went out.
   */
  takeBelow(addr: number, out: Run<P>): number {
    this.settled();
    if (this.n === 0 || addr <= this.mins[0]) return 0;
    const c = this.chunkIndex(addr - 1);
    const ch = this.chunks[c];
    let i = lowerBound(ch.keys, ch.len, addr); // entries [0, i) of chunk c start below addr
    let count = 0;
    for (let k = 0; k < c; k++) {
      const ck = this.chunks[k];
      for (let q = 0; q < ck.len; q++) this.emitAndFree(ck, q, out);
      count += ck.len;
    }
    let whole = i;
    const straddles = ch.rec[4 * (i - 1)] > addr;
    if (straddles) whole = i - 1;
    for (let q = 0; q < whole; q++) this.emitAndFree(ch, q, out);
    count += whole;
    this.n -= count;
    if (straddles) {
      // The head goes out with the payload, which the tail keeps.
      const q = i - 1;
      const key = ch.keys[q];
      const r = ch.rec;
      const ref = r[4 * q + 2];
      out.push(key, addr, r[4 * q + 1], ref >= 0 ? 0 : ref, r[4 * q + 3], ref >= 0 ? this.pool[ref] : undefined);
      ch.keys[q] = addr;
      r[4 * q + 3] += addr - key;
      count++;
      i = q;
    }
    if (this.n === 0) {
      // Emptied, as a streaming merge does after nearly every step: keep the chunks for reuse
      // instead of dropping them (and their allocation buffer) to be allocated again at once.
      this.empty();
      return count;
    }
    const drop = i === ch.len ? c + 1 : c;
    if (drop > 0) this.dropChunks(0, drop);
    if (i < ch.len) {
      if (i > 0) {
        ch.shift(i, 0);
        ch.len -= i;
      }
      this.normalize(0);
    }
    return count;
  }

  /** Call `fn` on every entry, in order. */
  forEach(fn: (addr: number, end: number, tag: number, ref: number, off: number, payload: P | undefined) => void): void {
    this.settled();
    const pool = this.pool;
    for (const ch of this.chunks) {
      const r = ch.rec;
      for (let i = 0; i < ch.len; i++) {
        const ref = r[4 * i + 2];
        fn(ch.keys[i], r[4 * i], r[4 * i + 1], ref, r[4 * i + 3], ref >= 0 ? pool[ref] : undefined);
      }
    }
  }

  /**
   * Check the structure (for tests): chunk fill, `mins`, sorted and non-overlapping entries, the
   * count and the pool. Throws on the first fault.
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
        const addr = ch.keys[i];
        const end = ch.rec[4 * i];
        const ref = ch.rec[4 * i + 2];
        if (!(end > addr)) throw new Error(`entry [${addr}, ${end}) is empty`);
        if (addr < prevEnd) throw new Error(`entry at ${addr} overlaps or is out of order (previous end ${prevEnd})`);
        if (ref >= 0) {
          if (this.pool[ref] === undefined || seen.has(ref)) throw new Error(`bad payload slot ${ref}`);
          seen.add(ref);
        }
        prevEnd = end;
      }
      count += len;
    }
    if (count !== this.n) throw new Error(`size ${this.n}, counted ${count}`);
    if (this.pool.length - this.free.length !== seen.size) throw new Error(`pool holds ${this.pool.length - this.free.length} payloads, entries ${seen.size}`);
  }

  private settled(): void {
    if (this.holeC >= 0) throw new Error('IntervalIndex: cut must be followed by fill');
  }

  /** Append entry `i` of `ch` to `out` (sharing its payload). */
  private emit(ch: Chunk, i: number, out: Run<P>): void {
    const r = ch.rec;
    const ref = r[4 * i + 2];
    out.push(ch.keys[i], r[4 * i], r[4 * i + 1], ref >= 0 ? 0 : ref, r[4 * i + 3], ref >= 0 ? this.pool[ref] : undefined);
  }

  /** Append entry `i` of `ch` to `out` and free its payload slot. */
  private emitAndFree(ch: Chunk, i: number, out: Run<P>): void {
    this.emit(ch, i, out);
    const ref = ch.rec[4 * i + 2];
    if (ref >= 0) {
      this.pool[ref] = undefined;
      this.free.push(ref);
    }
  }

  /** Store an entry at position `i` of `ch`, taking a pool slot for its payload when it has one. */
  private put(ch: Chunk, i: number, addr: number, end: number, tag: number, ref: number, off: number, payload: P | undefined): void {
    if (ref >= 0) {
      if (this.free.length) {
        ref = this.free.pop()!;
        this.pool[ref] = payload;
      } else {
        ref = this.pool.length;
        this.pool.push(payload);
      }
    }
    ch.keys[i] = addr;
    const b = 4 * i;
    const r = ch.rec;
    r[b] = end;
    r[b + 1] = tag;
    r[b + 2] = ref;
    r[b + 3] = off;
  }

  private putFrom(ch: Chunk, i: number, run: Run<P>, q: number): void {
    const f = run.f;
    const b = q * RS;
    this.put(ch, i, f[b], f[b + 1], f[b + 2], f[b + 3], f[b + 4], run.p[q]);
  }

  /** A new empty chunk: a spare one, or one more from the allocation buffer. */
  private allocChunk(): Chunk {
    const sp = this.spare.pop();
    if (sp) {
      sp.len = 0;
      return sp;
    }
    const bytes = this.chunkSize * 40;
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
