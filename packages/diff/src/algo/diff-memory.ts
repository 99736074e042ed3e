/**
 * The in-memory diff: a set of non-overlapping {@link DiffIo}s sorted by address, where a newer IO
 * replaces whatever it overlaps (walb-tools' `DiffMemory`, reference §4.7).
 *
 * Adding an IO cuts every stored IO it overlaps down to `old minus new`: an IO it covers is removed,
 * one it sits inside of is split in two, one it overlaps on a side is shortened. ALLZERO and DISCARD
 * pieces keep their kind. The new IO then goes in, split into pieces of at most `maxIoBlocks` from
 * its start; the cut-down old pieces are not split again. Normal data is never copied: a piece is a
 * window into the stored image of its IO (as {@link sliceIo} makes).
 *
 * An ALLZERO or DISCARD IO is stored whole, with its place in its own grid of `maxIoBlocks` pieces,
 * and read back split on that grid: the same pieces as if it had been split when added, but one
 * entry in memory. A discard of a whole 2 TiB device is one entry, not two million.
 *
 * For a k-way merge, which reads records in address order rather than in age order,
 * {@link DiffMemory.addAged} lets the IO of the higher age win whatever order they come in.
 *
 * Storage: an IO is kept as numbers (address, end, age, kind, offset in its image) in an
 * {@link IntervalIndex}, plus a reference to its image when it is normal; no object per IO is kept
 * or allocated by an add. The IOs read back (iteration, {@link DiffMemory.lookup},
 * {@link DiffMemory.takeBelow}, ...) are fresh {@link DiffIo} objects equal in content to what was
 * stored, not the objects that were added.
 *
 * @module
 */
import { LOGICAL_BLOCK_SIZE } from '@walbjs/log-format';
import { ValueOutOfRangeError } from '../errors.ts';
import type { DiffImage, DiffIo, DiffIoKind } from './diff-io.ts';
import { DEFAULT_INDEX_CHUNK_SIZE, type IndexCursor, IntervalIndex, Run } from './interval-index.ts';

/** Options of {@link DiffMemory}. */
export interface DiffMemoryOptions {
  /**
   * Largest IO inserted, in LB: a larger new IO is split into pieces of this size from its start.
   * 0 (the default) never splits.
   */
  maxIoBlocks?: number;
  /** Entries per chunk of the underlying index (tuning and tests; default 256, in [4, 65536]). */
  indexChunkSize?: number;
}

/** Index `ref` codes of the kinds without data; a normal IO's ref is its image's pool slot (≥ 0). */
const REF_NORMAL = 0;
const REF_ALLZERO = -1;
const REF_DISCARD = -2;

function makeIo(addr: number, end: number, ref: number, off: number, image: DiffImage | undefined): DiffIo {
  if (ref >= 0) return { addr, blocks: end - addr, kind: 'normal', data: { image: image!, offsetLb: off } };
  return { addr, blocks: end - addr, kind: ref === REF_ALLZERO ? 'allzero' : 'discard' };
}

/**
 * The end of the piece that starts at `addr` of a stored entry `[addr, end)`: a normal entry, or
 * any with no limit, is one piece; an ALLZERO or DISCARD one is cut on the grid of `max` LB that
 * starts where its IO started (`off` LB before `addr`).
 */
function pieceEnd(addr: number, end: number, ref: number, off: number, max: number): number {
  if (ref >= 0 || max === 0) return end;
  const next = addr + (max - (off % max));
  return next < end ? next : end;
}

/** A forward cursor over a {@link DiffMemory}'s IOs: read the fields after each `next()` that returns true. */
export class DiffCursor {
  /** First LB. */
  addr = 0;
  /** LB. */
  blocks = 0;
  kind: DiffIoKind = 'normal';
  /** A normal IO's image, and the LB offset of the IO in it. */
  image: DiffImage | undefined = undefined;
  offsetLb = 0;

  /** The rest of the stored entry being split (an ALLZERO or DISCARD one), and its grid offset. */
  private restAt = 0;
  private restEnd = 0;
  private restOff = 0;

  /** @internal */
  constructor(private readonly cur: IndexCursor<DiffImage>, private readonly max: number, private readonly gridRuns = false) {}

  /** Move to the next IO; false at the end. */
  next(): boolean {
    if (this.restAt < this.restEnd) {
      const e = this.gridRuns ? this.restEnd : pieceEnd(this.restAt, this.restEnd, -1, this.restOff, this.max);
      this.addr = this.restAt;
      this.blocks = e - this.restAt;
      this.restOff += e - this.restAt;
      this.restAt = e;
      return true;
    }
    const c = this.cur;
    if (!c.next()) return false;
    this.addr = c.addr;
    const ref = c.ref;
    const e = pieceEnd(c.addr, c.end, ref, c.off, this.max);
    this.blocks = e - c.addr;
    if (e < c.end) {
      this.restAt = e;
      this.restEnd = c.end;
      this.restOff = c.off + (e - c.addr);
    }
    this.kind = ref >= 0 ? 'normal' : ref === REF_ALLZERO ? 'allzero' : 'discard';
    this.image = ref >= 0 ? c.payload : undefined;
    this.offsetLb = ref >= 0 ? c.off : 0;
    return true;
  }
}

/**
 * A sorted, non-overlapping, in-memory diff.
 *
 * Costs, n stored IOs: an add is O(log n) to find its place plus O(k + B) for the k stored IOs it
 * overlaps (B, the index chunk size, bounds the numbers moved within one chunk), and allocates
 * nothing; {@link lookup} is O(log n); {@link takeBelow} is O(log n + output). Memory: about 50 to
 * 65 bytes per stored IO, plus the images of normal IOs (shared by the pieces cut from one IO).
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
  private readonly index: IntervalIndex<DiffImage>;
  private nBlocks = 0;
  private nNormalBlocks = 0;
  private maxAge = 0;
  /** Scratch runs reused by every operation (no allocation per add). */
  private readonly cutRun = new Run<DiffImage>(16);
  private readonly outRun = new Run<DiffImage>(16);

  /**
   * @param options - see {@link DiffMemoryOptions}
   * @throws ValueOutOfRangeError when `maxIoBlocks` is not a safe integer ≥ 0, or `indexChunkSize`
   *   not an integer in [4, 65536]
   */
  constructor(options: DiffMemoryOptions = {}) {
    const max = options.maxIoBlocks ?? 0;
    if (!Number.isSafeInteger(max) || max < 0) throw new ValueOutOfRangeError('maxIoBlocks', max, 'must be a safe integer >= 0');
    const chunk = options.indexChunkSize ?? DEFAULT_INDEX_CHUNK_SIZE;
    if (!Number.isSafeInteger(chunk) || chunk < 4 || chunk > 65536) throw new ValueOutOfRangeError('indexChunkSize', chunk, 'must be an integer in [4, 65536]');
    this.maxIoBlocks = max;
    this.index = new IntervalIndex<DiffImage>(chunk);
  }

  /** Number of IOs (an ALLZERO or DISCARD IO counted in its pieces: O(n) with a `maxIoBlocks`). */
  get size(): number {
    const max = this.maxIoBlocks;
    if (max === 0) return this.index.size;
    let n = 0;
    this.index.forEach((addr, end, _tag, ref, off) => {
      n += ref >= 0 ? 1 : Math.ceil((end - addr + (off % max)) / max);
    });
    return n;
  }

  /** Whether there is no IO. */
  get isEmpty(): boolean {
    return this.index.size === 0;
  }

  /** Sum of the lengths of all IOs, in LB. */
  get totalBlocks(): number {
    return this.nBlocks;
  }

  /**
   * Sum of the sizes of the normal IOs, in bytes: an estimate of the data they keep alive (the
   * images themselves may be larger, or compressed).
   */
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
   * a stored IO of higher age are dropped; stored IOs of lower (or equal) age are cut down. Stored
   * IOs keep their age ({@link ageAt}). Each surviving piece of `io` is split into `maxIoBlocks`
   * pieces from its own start. Only the image and window of a normal IO's data are kept; the `data`
   * of an ALLZERO or DISCARD IO is ignored.
   *
   * @param io - the IO
   * @param age - its age, a finite number; higher is newer (for a merge: the input's position)
   * @throws ValueOutOfRangeError when `io.addr` is not a safe integer ≥ 0, `io.blocks` not a safe
   *   integer > 0, the end beyond 2^53 − 1, the kind unknown, a normal IO without a data window
   *   inside its image, or `age` not finite
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
    return this.one((r) => this.index.find(addr, r), addr);
  }

  /** The age of the IO that covers LB `addr`, or `undefined`. */
  ageAt(addr: number): number | undefined {
    checkAddr('addr', addr);
    const r = this.outRun;
    this.index.find(addr, r);
    const age = r.n ? r.f[2] : undefined;
    r.release();
    return age;
  }

  /** The IOs that meet `[from, to)`, in order (whole, not clipped). */
  overlapping(from: number, to: number): DiffIo[] {
    checkAddr('from', from);
    checkAddr('to', to);
    const r = this.outRun;
    r.release();
    this.index.collect(from, to, r);
    return this.drain(r, from, to);
  }

  /** The first IO, or `undefined`. */
  first(): DiffIo | undefined {
    return this.one((r) => this.index.first(r));
  }

  /** The last IO, or `undefined`. */
  last(): DiffIo | undefined {
    return this.one((r) => this.index.last(r), undefined, true);
  }

  /**
   * A cursor over the IOs in address order that allocates nothing per IO, for walks over every
   * IO of a large diff (an indexed file's index). Do not modify the diff while it is used.
   *
   * With `gridRuns`, an ALLZERO or DISCARD IO larger than `maxIoBlocks` comes as at most two: the
   * piece up to its first grid line, then the rest whole, which a reader that splits IOs into
   * `maxIoBlocks` pieces from their start (a sorted writer) cuts into the same pieces. For a
   * private intermediate file: a discard of a whole device stays one record there.
   *
   * @example
   * const c = mem.cursor();
   * while (c.next()) if (c.kind === 'normal') use(c.addr, c.blocks, c.image!, c.offsetLb);
   */
  cursor(opts: { gridRuns?: boolean } = {}): DiffCursor {
    return new DiffCursor(this.index.cursor(), this.maxIoBlocks, opts.gridRuns ?? false);
  }

  /** The IOs in address order. Do not modify the diff while iterating. */
  [Symbol.iterator](): IterableIterator<DiffIo> {
    return this.values();
  }

  /** The IOs in address order. Do not modify the diff while iterating. */
  *values(): IterableIterator<DiffIo> {
    const cur: IndexCursor<DiffImage> = this.index.cursor();
    const max = this.maxIoBlocks;
    while (cur.next()) {
      if (cur.ref >= 0 || max === 0) { yield makeIo(cur.addr, cur.end, cur.ref, cur.off, cur.payload); continue; }
      // Piece by piece: the pieces of a large discard are made as they are asked for.
      const ref = cur.ref, end = cur.end;
      for (let a = cur.addr, off = cur.off; a < end;) {
        const e = pieceEnd(a, end, ref, off, max);
        yield makeIo(a, e, ref, 0, undefined);
        off += e - a;
        a = e;
      }
    }
  }

  /** `[addr, io]` pairs in address order, as a `Map` would give. */
  *entries(): IterableIterator<[number, DiffIo]> {
    for (const io of this.values()) yield [io.addr, io];
  }

  /** Call `fn` on each IO and its age, in address order. */
  forEach(fn: (io: DiffIo, age: number) => void): void {
    this.index.forEach((addr, end, tag, ref, off, image) => this.split(addr, end, ref, off, image, (io) => fn(io, tag)));
  }

  /** Call `fn` on each piece of the stored entry `[addr, end)` (see {@link pieceEnd}). */
  private split(addr: number, end: number, ref: number, off: number, image: DiffImage | undefined, fn: (io: DiffIo) => void): void {
    for (let a = addr, o = off; a < end;) {
      const e = pieceEnd(a, end, ref, o, this.maxIoBlocks);
      fn(makeIo(a, e, ref, ref >= 0 ? o : 0, image));
      if (ref >= 0) return;
      o += e - a;
      a = e;
    }
  }

  /**
   * Remove and return, in order, everything below LB `addr`: each IO that ends at or below it, and
   * the part below it of an IO that straddles it (the rest stays, with its age).
   */
  takeBelow(addr: number): DiffIo[] {
    checkAddr('addr', addr);
    const r = this.outRun;
    r.release();
    this.index.takeBelow(addr, r);
    this.uncount(r);
    return this.drain(r);
  }

  /** Remove and return every IO, in order. */
  takeAll(): DiffIo[] {
    const out: DiffIo[] = [];
    this.index.forEach((addr, end, _tag, ref, off, image) => this.split(addr, end, ref, off, image, (io) => { out.push(io); }));
    this.clear();
    return out;
  }

  /** Remove everything (and forget the ages seen). */
  clear(): void {
    this.index.clear();
    this.nBlocks = 0;
    this.nNormalBlocks = 0;
    this.maxAge = 0;
    this.cutRun.release();
    this.outRun.release();
  }

  /**
   * Check the structure (for tests): sorted, non-overlapping, counters right. Throws on a fault.
   */
  checkInvariants(): void {
    this.index.checkInvariants();
    let blocks = 0;
    let normal = 0;
    this.index.forEach((addr, end, _tag, ref) => {
      blocks += end - addr;
      if (ref >= 0) normal += end - addr;
    });
    if (blocks !== this.nBlocks) throw new Error(`totalBlocks ${this.nBlocks}, counted ${blocks}`);
    if (normal !== this.nNormalBlocks) throw new Error(`normal blocks ${this.nNormalBlocks}, counted ${normal}`);
  }

  /**
   * The piece of the one entry `get` puts in a run: the one holding `at`, else the first (or the
   * last, with `last`). Found on the grid, without walking the pieces before it.
   */
  private one(get: (r: Run<DiffImage>) => void, at?: number, last = false): DiffIo | undefined {
    const r = this.outRun;
    get(r);
    const f = r.f;
    let io: DiffIo | undefined;
    if (r.n) {
      const [addr, end, ref, off] = [f[0], f[1], f[3], f[4]];
      const max = this.maxIoBlocks;
      if (ref >= 0 || max === 0) {
        io = makeIo(addr, end, ref, off, r.p[0]);
      } else {
        // Grid lines at `addr + first + k * max`; the piece holding `x` starts at the last line at
        // or below it (or at `addr`).
        const first = max - (off % max);
        const x = at ?? (last ? end - 1 : addr);
        const a = x < addr + first ? addr : addr + first + Math.floor((x - addr - first) / max) * max;
        io = makeIo(a, pieceEnd(a, end, ref, off + (a - addr), max), ref, 0, undefined);
      }
    }
    r.release();
    return io;
  }

  /** The IOs of `r` (the pieces that meet `[from, to)` when given), which is then emptied. */
  private drain(r: Run<DiffImage>, from = 0, to = Infinity): DiffIo[] {
    const out: DiffIo[] = [];
    const f = r.f;
    for (let i = 0; i < r.n; i++) {
      this.split(f[5 * i], f[5 * i + 1], f[5 * i + 3], f[5 * i + 4], r.p[i], (io) => {
        if (io.addr < to && io.addr + io.blocks > from) out.push(io);
      });
    }
    r.release();
    return out;
  }

  /** Subtract the IOs of `r` from the counters. */
  private uncount(r: Run<DiffImage>): void {
    const f = r.f;
    for (let i = 0; i < r.n; i++) {
      const b = f[5 * i + 1] - f[5 * i];
      this.nBlocks -= b;
      if (f[5 * i + 3] >= 0) this.nNormalBlocks -= b;
    }
  }

  private insert(io: DiffIo, age: number): void {
    const a = io.addr;
    const e = a + io.blocks;
    const kind: DiffIoKind = io.kind;
    const ref = kind === 'normal' ? REF_NORMAL : kind === 'allzero' ? REF_ALLZERO : REF_DISCARD;
    const image = ref >= 0 ? io.data!.image : undefined;
    const off = ref >= 0 ? io.data!.offsetLb : 0;
    const cut = this.cutRun;
    const removed = this.index.cut(a, e, cut);
    const max = this.maxIoBlocks;
    // An ALLZERO or DISCARD IO is stored whole (its grid starts at `a`: offset 0).
    if (removed === 0 && (max === 0 || e - a <= max || ref < 0)) {
      this.nBlocks += e - a;
      if (ref >= 0) this.nNormalBlocks += e - a;
      this.index.fillOne(a, e, age, ref, off, image);
      return;
    }
    const out = this.outRun;
    out.release();
    const f = cut.f;
    let cursor = a;
    let right = -1;
    for (let k = 0; k < removed; k++) {
      const b = 5 * k;
      const sa = f[b];
      const se = f[b + 1];
      const sTag = f[b + 2];
      const sRef = f[b + 3];
      if (sTag > age) {
        // The stored IO is newer: it stays whole, and the part of `io` under it is dropped.
        if (sa > cursor) this.pushNew(cursor, sa, age, a, ref, off, image);
        out.push(sa, se, sTag, sRef, f[b + 4], cut.p[k]);
        if (se > cursor) cursor = se;
        continue;
      }
      this.nBlocks -= se - sa;
      if (sRef >= 0) this.nNormalBlocks -= se - sa;
      if (sa < a) {
        // Its head stays (same start, same offset).
        out.push(sa, a, sTag, sRef, f[b + 4], cut.p[k]);
        this.nBlocks += a - sa;
        if (sRef >= 0) this.nNormalBlocks += a - sa;
      }
      if (se > e) right = k;
    }
    if (cursor < e) this.pushNew(cursor, e, age, a, ref, off, image);
    if (right >= 0) {
      // The tail of the last one stays, its offset moved to the new start.
      const b = 5 * right;
      const sa = f[b];
      const se = f[b + 1];
      out.push(e, se, f[b + 2], f[b + 3], f[b + 4] + (e - sa), cut.p[right]);
      this.nBlocks += se - e;
      if (f[b + 3] >= 0) this.nNormalBlocks += se - e;
    }
    cut.release();
    this.index.fill(out);
    out.release();
  }

  /**
   * Queue `[from, to)` of the new IO (which starts at `a`): normal data split into `maxIoBlocks`
   * pieces from `from`; an ALLZERO or DISCARD part whole, its grid starting at `from` (offset 0),
   * where its pieces would have started.
   */
  private pushNew(from: number, to: number, age: number, a: number, ref: number, off: number, image: DiffImage | undefined): void {
    const max = this.maxIoBlocks;
    const out = this.outRun;
    const step = max === 0 || ref < 0 ? to - from : max;
    for (let x = from; x < to; x += step) {
      const y = Math.min(x + step, to);
      out.push(x, y, age, ref, ref >= 0 ? off + (x - a) : 0, image);
    }
    this.nBlocks += to - from;
    if (ref >= 0) this.nNormalBlocks += to - from;
  }
}

function checkAddr(field: string, v: number): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ValueOutOfRangeError(field, v, 'must be a safe integer >= 0');
}

/**
 * Throw {@link ValueOutOfRangeError} when `io` is malformed: an address or length that is not a
 * safe integer (length > 0), an unknown kind, or a normal IO whose window leaves its image.
 * @internal
 */
export function checkIo(io: DiffIo): void {
  const a = io.addr;
  const b = io.blocks;
  const k = io.kind;
  // One cheap test for the usual case; the detailed checks below only run to name the fault.
  if (a >= 0 && b > 0 && a + b <= Number.MAX_SAFE_INTEGER && Number.isInteger(a) && Number.isInteger(b)) {
    if (k === 'allzero' || k === 'discard') return;
    if (k === 'normal') {
      const d = io.data;
      if (d && d.image) {
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
  if (!d || !d.image) throw new ValueOutOfRangeError('data', d, 'with an image is required for a normal IO');
  throw new ValueOutOfRangeError('data.offsetLb', d.offsetLb, `with ${b} LB does not fit in an image of ${d.image.blocks} LB`);
}
