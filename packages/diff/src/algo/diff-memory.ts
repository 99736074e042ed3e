/**
 * The in-memory diff: a set of non-overlapping {@link DiffIo}s sorted by address, where a newer IO
 * replaces whatever it overlaps (walb-tools' `DiffMemory`, reference §4.7).
 *
 * Adding an IO cuts every stored IO it overlaps down to `old minus new`: an IO it covers is removed,
 * one it sits inside of is split in two, one it overlaps on a side is shortened. ALLZERO and DISCARD
 * pieces keep their kind. The new IO then goes in, split into pieces of at most `maxIoBlocks` from
 * its start; the cut-down old pieces are not split again. Normal data is never copied: a piece is a
 * window into the stored image of its IO ({@link sliceIo}).
 *
 * For a k-way merge, which reads records in address order rather than in age order,
 * {@link DiffMemory.addAged} lets the IO of the higher age win whatever order they come in.
 *
 * @module
 */
import { LOGICAL_BLOCK_SIZE } from '@walbjs/log-format';
import { ValueOutOfRangeError } from '../errors.ts';
import { type DiffIo, sliceIo } from './diff-io.ts';
import { DEFAULT_INDEX_CHUNK_SIZE, IntervalIndex } from './interval-index.ts';

/** Options of {@link DiffMemory}. */
export interface DiffMemoryOptions {
  /**
   * Largest IO inserted, in LB: a larger new IO is split into pieces of this size from its start.
   * 0 (the default) never splits.
   */
  maxIoBlocks?: number;
  /** Entries per chunk of the underlying index (tuning and tests; default 256, at least 4). */
  indexChunkSize?: number;
}

/**
 * A sorted, non-overlapping, in-memory diff.
 *
 * Operations cost O(log n) to find the place plus O(k) for the k stored IOs an added IO overlaps
 * (and O(B), B the index chunk size, for moving entries within one chunk).
 *
 * @example
 * const mem = new DiffMemory({ maxIoBlocks: 2048 });
 * mem.add(normalIo(0, Buffer.alloc(8 * 512, 1)));
 * mem.add({ addr: 2, blocks: 2, kind: 'discard' });
 * [...mem].map((io) => [io.addr, io.blocks, io.kind]); // [[0,2,'normal'], [2,2,'discard'], [4,4,'normal']]
 */
export class DiffMemory implements Iterable<DiffIo> {
  /** Largest IO inserted, in LB (0: no limit). */
  readonly maxIoBlocks: number;
  private readonly index: IntervalIndex<DiffIo>;
  private nBlocks = 0;
  private nNormalBlocks = 0;
  private maxAge = 0;
  // Scratch arrays reused by every add (no allocation per add).
  private readonly cutVals: DiffIo[] = [];
  private readonly cutTags: number[] = [];
  private readonly outVals: DiffIo[] = [];
  private readonly outTags: number[] = [];
  private outN = 0;

  /**
   * @param options - see {@link DiffMemoryOptions}
   * @throws ValueOutOfRangeError when `maxIoBlocks` is not a safe integer ≥ 0
   */
  constructor(options: DiffMemoryOptions = {}) {
    const max = options.maxIoBlocks ?? 0;
    if (!Number.isSafeInteger(max) || max < 0) throw new ValueOutOfRangeError('maxIoBlocks', max, 'must be a safe integer >= 0');
    const chunk = options.indexChunkSize ?? DEFAULT_INDEX_CHUNK_SIZE;
    if (!Number.isSafeInteger(chunk) || chunk < 4) throw new ValueOutOfRangeError('indexChunkSize', chunk, 'must be a safe integer >= 4');
    this.maxIoBlocks = max;
    this.index = new IntervalIndex<DiffIo>(chunk);
  }

  /** Number of IOs. */
  get size(): number {
    return this.index.size;
  }

  /** Whether there is no IO. */
  get isEmpty(): boolean {
    return this.index.size === 0;
  }

  /** Sum of the lengths of all IOs, in LB. */
  get totalBlocks(): number {
    return this.nBlocks;
  }

  /** Sum of the sizes of the normal IOs, in bytes (an estimate of the data they keep alive). */
  get normalBytes(): number {
    return this.nNormalBlocks * LOGICAL_BLOCK_SIZE;
  }

  /**
   * Add `io`, newer than everything stored: it wins wherever it overlaps. It is stored with the
   * highest age seen so far (0 when {@link addAged} was never used), so it also wins over an
   * {@link addAged} of that age that came before it.
   *
   * @throws ValueOutOfRangeError when `io` is malformed (see {@link addAged})
   */
  add(io: DiffIo): void {
    checkIo(io);
    this.insert(io, this.maxAge);
  }

  /**
   * Add `io` of age `age`: wherever it overlaps a stored IO, the one with the higher age wins, in
   * whatever order they were added; on equal ages the one added later wins. The parts of `io` under
   * a stored IO of higher age are dropped; stored IOs of lower (or equal) age are cut down. Stored IOs keep their age ({@link ageAt}). The surviving pieces of `io` are
   * each split into `maxIoBlocks` pieces from their start.
   *
   * @param io - the IO
   * @param age - its age, a finite number; higher is newer (for a merge: the input's position)
   * @throws ValueOutOfRangeError when `io.addr` is not a safe integer ≥ 0, `io.blocks` not a safe
   *   integer > 0, the end beyond 2^53 − 1, the kind unknown, a normal IO without a valid data window,
   *   or `age` not finite
   */
  addAged(io: DiffIo, age: number): void {
    checkIo(io);
    if (typeof age !== 'number' || !Number.isFinite(age)) throw new ValueOutOfRangeError('age', age, 'must be a finite number');
    if (age > this.maxAge) this.maxAge = age;
    this.insert(io, age);
  }

  /** The IO that covers LB `addr`, or `undefined`. */
  lookup(addr: number): DiffIo | undefined {
    checkAddr('addr', addr);
    return this.index.find(addr);
  }

  /** The age of the IO that covers LB `addr`, or `undefined`. */
  ageAt(addr: number): number | undefined {
    checkAddr('addr', addr);
    return this.index.findTag(addr);
  }

  /** The IOs that meet `[from, to)`, in order (whole, not clipped). */
  overlapping(from: number, to: number): DiffIo[] {
    checkAddr('from', from);
    checkAddr('to', to);
    const out: DiffIo[] = [];
    this.index.collect(from, to, out);
    return out;
  }

  /** The first IO, or `undefined`. */
  first(): DiffIo | undefined {
    return this.index.first();
  }

  /** The last IO, or `undefined`. */
  last(): DiffIo | undefined {
    return this.index.last();
  }

  /** The IOs in address order. Do not modify the diff while iterating. */
  [Symbol.iterator](): IterableIterator<DiffIo> {
    return this.index.values();
  }

  /** The IOs in address order. */
  values(): IterableIterator<DiffIo> {
    return this.index.values();
  }

  /** `[addr, io]` pairs in address order, as a `Map` would give. */
  *entries(): IterableIterator<[number, DiffIo]> {
    for (const io of this.index.values()) yield [io.addr, io];
  }

  /** Call `fn` on each IO and its age, in address order. */
  forEach(fn: (io: DiffIo, age: number) => void): void {
    this.index.forEach(fn);
  }

  /**
   * Remove and return, in order, everything below LB `addr`: each IO that ends at or below it, and
   * the part below it of an IO that straddles it (the rest stays, with its age).
   */
  takeBelow(addr: number): DiffIo[] {
    checkAddr('addr', addr);
    const out: DiffIo[] = [];
    if (this.index.size === 0) return out;
    let left: DiffIo | undefined;
    if (addr > 0) {
      const st = this.index.find(addr - 1);
      if (st && st.addr + st.blocks > addr) {
        const cv = this.cutVals;
        const ct = this.cutTags;
        this.index.cut(addr - 1, addr, cv, ct);
        cv[0] = undefined!;
        left = sliceIo(st, st.addr, addr)!;
        this.index.fillOne(sliceIo(st, addr, st.addr + st.blocks)!, ct[0]);
      }
    }
    this.index.takeBelow(addr, out);
    if (left) out.push(left);
    for (let i = 0; i < out.length; i++) {
      const io = out[i];
      this.nBlocks -= io.blocks;
      if (io.kind === 'normal') this.nNormalBlocks -= io.blocks;
    }
    return out;
  }

  /** Remove and return every IO, in order. */
  takeAll(): DiffIo[] {
    const out: DiffIo[] = [];
    this.index.forEach((io) => out.push(io));
    this.clear();
    return out;
  }

  /** Remove everything (and forget the ages seen). */
  clear(): void {
    this.index.clear();
    this.nBlocks = 0;
    this.nNormalBlocks = 0;
    this.maxAge = 0;
  }

  /**
   * Check the structure (for tests): sorted, non-overlapping, counters right. Throws on a fault.
   */
  checkInvariants(): void {
    this.index.checkInvariants();
    let blocks = 0;
    let normal = 0;
    this.index.forEach((io) => {
      blocks += io.blocks;
      if (io.kind === 'normal') normal += io.blocks;
    });
    if (blocks !== this.nBlocks) throw new Error(`totalBlocks ${this.nBlocks}, counted ${blocks}`);
    if (normal !== this.nNormalBlocks) throw new Error(`normal blocks ${this.nNormalBlocks}, counted ${normal}`);
  }

  private insert(io: DiffIo, age: number): void {
    const a = io.addr;
    const e = a + io.blocks;
    const cv = this.cutVals;
    const ct = this.cutTags;
    const removed = this.index.cut(a, e, cv, ct);
    const max = this.maxIoBlocks;
    this.outN = 0;
    if (removed === 0) {
      if (max === 0 || io.blocks <= max) {
        this.count(io, 1);
        this.index.fillOne(io, age);
        return;
      }
      this.pushSplit(io, a, e, age);
      this.flush();
      return;
    }
    let cursor = a;
    let right: DiffIo | undefined;
    let rightAge = 0;
    for (let k = 0; k < removed; k++) {
      const s = cv[k];
      const sa = ct[k];
      const sEnd = s.addr + s.blocks;
      if (sa > age) {
        // The stored IO is newer: it stays whole, and the part of `io` under it is dropped.
        if (s.addr > cursor) this.pushSplit(io, cursor, s.addr, age);
        this.push(s, sa);
        if (sEnd > cursor) cursor = sEnd;
        continue;
      }
      this.count(s, -1);
      if (s.addr < a) {
        const l = sliceIo(s, s.addr, a)!;
        this.count(l, 1);
        this.push(l, sa);
      }
      if (sEnd > e) {
        right = sliceIo(s, e, sEnd)!;
        rightAge = sa;
      }
    }
    // Drop the references the scratch array holds (they may pin large images).
    for (let k = 0; k < removed; k++) cv[k] = undefined!;
    if (cursor < e) this.pushSplit(io, cursor, e, age);
    if (right) {
      this.count(right, 1);
      this.push(right, rightAge);
    }
    this.flush();
  }

  /** Queue `v` with age `age` for the next {@link flush}. */
  private push(v: DiffIo, age: number): void {
    this.outVals[this.outN] = v;
    this.outTags[this.outN] = age;
    this.outN++;
  }

  /** Fill the index's hole with the queued IOs. */
  private flush(): void {
    const n = this.outN;
    const ov = this.outVals;
    if (n === 1) this.index.fillOne(ov[0], this.outTags[0]);
    else this.index.fill(ov, this.outTags, n);
    for (let k = 0; k < n; k++) ov[k] = undefined!;
    this.outN = 0;
  }

  /** Queue `[from, to)` of `io`, split into `maxIoBlocks` pieces from `from`. */
  private pushSplit(io: DiffIo, from: number, to: number, age: number): void {
    const max = this.maxIoBlocks;
    if (max === 0 || to - from <= max) {
      const p = sliceIo(io, from, to)!;
      this.count(p, 1);
      this.push(p, age);
      return;
    }
    for (let x = from; x < to; x += max) {
      const p = sliceIo(io, x, Math.min(x + max, to))!;
      this.count(p, 1);
      this.push(p, age);
    }
  }

  private count(io: DiffIo, sign: number): void {
    this.nBlocks += sign * io.blocks;
    if (io.kind === 'normal') this.nNormalBlocks += sign * io.blocks;
  }
}

function checkAddr(field: string, v: number): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ValueOutOfRangeError(field, v, 'must be a safe integer >= 0');
}

function checkIo(io: DiffIo): void {
  const a = io.addr;
  const b = io.blocks;
  const k = io.kind;
  // One cheap test for the usual case; the detailed checks below only run to name the fault.
  if (a >= 0 && b > 0 && a + b <= Number.MAX_SAFE_INTEGER && Number.isInteger(a) && Number.isInteger(b)) {
    if (k === 'allzero' || k === 'discard') return;
    if (k === 'normal') {
      const d = io.data;
      if (d !== undefined && d !== null) {
        const off = d.offsetLb;
        if (off >= 0 && Number.isInteger(off) && off + b <= d.image.blocks) return;
      }
    }
  }
  checkAddr('addr', a);
  if (typeof b !== 'number' || !Number.isSafeInteger(b) || b <= 0) throw new ValueOutOfRangeError('blocks', b, 'must be a safe integer > 0');
  if (!Number.isSafeInteger(a + b)) throw new ValueOutOfRangeError('blocks', b, `puts the end of the IO at ${a} beyond 2^53 - 1`);
  if (k !== 'normal' && k !== 'allzero' && k !== 'discard') throw new ValueOutOfRangeError('kind', k, "must be 'normal', 'allzero' or 'discard'");
  const d = io.data;
  if (!d) throw new ValueOutOfRangeError('data', d, 'is required for a normal IO');
  throw new ValueOutOfRangeError('data.offsetLb', d.offsetLb, `with ${b} LB does not fit in an image of ${d.image.blocks} LB`);
}
