/**
 * What later IOs of a log leave visible of each IO (newer wins), found from the IOs' places
 * alone: how the indexed conversion of wlog files leaves out the data that nobody will read.
 *
 * Built from a log's IOs in log order ({@link LivePartsBuilder}), in one sweep over their
 * addresses (the newest IO over each stretch is the visible one); then asked IO by IO, in the same
 * order, by the pass that reads the data ({@link LiveParts.piecesOf}): all of an IO is visible,
 * none of it, or some pieces.
 *
 * @module
 */

/** The error of a log that is not the one whose parts were worked out. */
function logChanged(what: string): Error {
  return Object.assign(new Error(`the log changed while it was read: ${what}`), { code: 'ERR_WALB_LOG_CHANGED' });
}

/**
 * Works out the visible parts the way {@link LivePartsBuilder.finish} does (the native addon's
 * `liveParts`, on the thread pool): fills `whole`, `start` and `pieces` and resolves to the numbers
 * written to `pieces`; none of the arrays is touched by the caller until then.
 */
export type LivePartsFn = (addrs: Float64Array, blocks: Float64Array, whole: Uint8Array, start: Uint32Array, pieces: Float64Array) => Promise<number>;

let impl: LivePartsFn | undefined;

/**
 * Work out visible parts with `fn` (the native addon's `liveParts`): the same sweep, run once per
 * indexed conversion of files, cold, where JavaScript took 6–10 ms for 4,000 IOs, and off this
 * thread (2^20 IOs take 0.17 s). `undefined` goes back to this module's own.
 *
 * @example
 * import { loadNative } from '@walbjs/native-walb';
 * useLiveParts(loadNative().liveParts);
 */
export function useLiveParts(fn: LivePartsFn | undefined): void {
  impl = fn;
}

/** IOs of a log whose visible parts are all computed; a longer log is left whole. */
export const DEFAULT_MAX_LIVE_IOS = 1 << 20;

/**
 * Gathers the IOs of a log in log order, then works out their visible parts.
 *
 * @example
 * const b = new LivePartsBuilder();
 * b.add(0, 16); b.add(8, 16);
 * const live = (await b.finish(true))!;
 * live.piecesOf(0, 0, 16); // Float64Array [0, 8]: only LB 0–7 of the first IO are visible
 * live.piecesOf(1, 8, 16); // undefined: all of the second is
 */
export class LivePartsBuilder {
  private addrs = new Float64Array(1024);
  private blocks = new Float64Array(1024);
  private n = 0;
  private over = false;

  /** @param maxIos - IOs at most (default {@link DEFAULT_MAX_LIVE_IOS}); past that the builder gives up, to keep memory bounded. */
  constructor(private readonly maxIos = DEFAULT_MAX_LIVE_IOS) {}

  /**
   * Add the next IO of the log: LB `addr`, `blocks` LB. False once more than `maxIos` were added,
   * or one was not a range of whole LBs (at least one, ending by 2^53): the builder gives up, and
   * {@link finish} gives undefined.
   */
  add(addr: number, blocks: number): boolean {
    const range = Number.isSafeInteger(addr) && addr >= 0 && Number.isSafeInteger(blocks) && blocks >= 1 && blocks <= 2 ** 53 - addr;
    if (this.over || this.n === this.maxIos || !range) { this.over = true; return false; }
    if (this.n === this.addrs.length) {
      const grow = (a: Float64Array) => { const b = new Float64Array(a.length * 2); b.set(a); return b; };
      this.addrs = grow(this.addrs);
      this.blocks = grow(this.blocks);
    }
    this.addrs[this.n] = addr;
    this.blocks[this.n] = blocks;
    this.n++;
    return true;
  }

  /**
   * The visible parts of the IOs added, or undefined when there were too many. `complete`: the
   * IOs added are all of the log's (see {@link LiveParts.expectSeen}).
   */
  async finish(complete: boolean): Promise<LiveParts | undefined> {
    if (this.over) return undefined;
    const n = this.n, A = this.addrs.subarray(0, n), B = this.blocks.subarray(0, n);
    if (impl) {
      const whole = new Uint8Array(n), start = new Uint32Array(n + 1), out = new Float64Array(4 * n);
      const used = await impl(A, B, whole, start, out);
      return new LiveParts(A, B, whole, start, out.slice(0, used), complete);
    }
    // A sweep over the addresses where some IO starts or ends: between two of them the newest IO
    // over the stretch (the highest index among those that cover it) is the visible one. The
    // covering IOs are kept in a max-heap of their indexes; one that ended leaves it when it
    // reaches the top. Typed arrays only, O(n log n): this runs once per conversion, cold.
    const byStart = orderBy(n, (i) => A[i]);
    const byEnd = orderBy(n, (i) => A[i] + B[i]);
    const heap = new Int32Array(n);
    let hn = 0;
    const push = (k: number): void => {
      let i = hn++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p] >= k) break;
        heap[i] = heap[p];
        i = p;
      }
      heap[i] = k;
    };
    const pop = (): void => {
      const last = heap[--hn];
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= hn) break;
        if (c + 1 < hn && heap[c + 1] > heap[c]) c++;
        if (heap[c] <= last) break;
        heap[i] = heap[c];
        i = c;
      }
      heap[i] = last;
    };
    // The visible stretches in address order, each joined to the one before when it continues it.
    const segK = new Int32Array(2 * n), segA = new Float64Array(2 * n), segL = new Float64Array(2 * n);
    let sn = 0, si = 0, ei = 0;
    let x = n ? A[byStart[0]] : 0;
    while (si < n || hn > 0) {
      while (si < n && A[byStart[si]] === x) push(byStart[si++]);
      while (hn > 0 && A[heap[0]] + B[heap[0]] <= x) pop();
      while (ei < n && A[byEnd[ei]] + B[byEnd[ei]] <= x) ei++;
      const y = Math.min(si < n ? A[byStart[si]] : Infinity, ei < n ? A[byEnd[ei]] + B[byEnd[ei]] : Infinity);
      if (hn > 0) {
        const k = heap[0];
        if (sn > 0 && segK[sn - 1] === k && segA[sn - 1] + segL[sn - 1] === x) segL[sn - 1] += y - x;
        else { segK[sn] = k; segA[sn] = x; segL[sn] = y - x; sn++; }
      }
      if (y === Infinity) break;
      x = y;
    }
    // Counting sort of the stretches by the IO they belong to: one visible whole is only marked.
    const count = new Uint32Array(n);
    for (let s = 0; s < sn; s++) count[segK[s]]++;
    const whole = new Uint8Array(n);
    for (let s = 0; s < sn; s++) {
      const k = segK[s];
      if (count[k] === 1 && segA[s] === A[k] && segL[s] === B[k]) whole[k] = 1;
    }
    const start = new Uint32Array(n + 1);
    for (let k = 0; k < n; k++) start[k + 1] = start[k] + (whole[k] ? 0 : count[k]);
    const pieces = new Float64Array(2 * start[n]);
    const at = start.slice(0, n);
    for (let s = 0; s < sn; s++) {
      const k = segK[s];
      if (whole[k]) continue;
      const i = 2 * at[k]++;
      pieces[i] = segA[s];
      pieces[i + 1] = segL[s];
    }
    return new LiveParts(A, B, whole, start, pieces, complete);
  }
}

/** The indexes 0..n-1 in the order of `key` (ties in index order; keys are safe integers ≥ 0). */
function orderBy(n: number, key: (i: number) => number): Uint32Array {
  const keys = new Float64Array(n);
  const idx = new Uint32Array(n);
  let max = 0;
  for (let i = 0; i < n; i++) { keys[i] = key(i); idx[i] = i; if (keys[i] > max) max = keys[i]; }
  // Key and index in one number when both fit in 53 bits (addresses below 2^53 / n LB): the
  // numeric sort, without a comparator, is many times faster.
  const scale = 2 ** Math.ceil(Math.log2(n + 1));
  if (max * scale + scale <= Number.MAX_SAFE_INTEGER) {
    for (let i = 0; i < n; i++) keys[i] = keys[i] * scale + i;
    keys.sort();
    for (let i = 0; i < n; i++) idx[i] = keys[i] % scale;
    return idx;
  }
  return idx.sort((i, j) => keys[i] - keys[j] || i - j);
}

/** The visible parts of each IO of a log (see {@link LivePartsBuilder}). */
export class LiveParts {
  private static readonly NONE = new Float64Array(0);

  /** @internal */
  constructor(private readonly addrs: Float64Array, private readonly blocks: Float64Array, private readonly whole: Uint8Array,
    private readonly start: Uint32Array, private readonly pieces: Float64Array,
    /** Whether these are all of the log's IOs. */
    readonly complete: boolean) {}

  /** IOs known. */
  get size(): number {
    return this.addrs.length;
  }

  /** LB of the IOs known that no later IO hides. */
  get visibleBlocks(): number {
    let n = 0;
    for (let k = 0; k < this.whole.length; k++) if (this.whole[k]) n += this.blocks[k];
    for (let i = 1; i < this.pieces.length; i += 2) n += this.pieces[i];
    return n;
  }

  /**
   * The visible pieces of IO `k` of the log, which must be at LB `addr` and `blocks` LB long, as
   * (LB address, LB) pairs in address order: undefined when all of it is visible, or when `k` is
   * past the IOs known; empty when none of it is.
   *
   * @throws Error with code `ERR_WALB_LOG_CHANGED` when IO `k` is not where it was when the parts
   *   were worked out (the log changed).
   */
  piecesOf(k: number, addr: number, blocks: number): Float64Array | undefined {
    if (k >= this.addrs.length) return undefined;
    if (this.addrs[k] !== addr || this.blocks[k] !== blocks) {
      throw logChanged(`its IO ${k} is at LB ${addr} (${blocks} LB), it was at LB ${this.addrs[k]} (${this.blocks[k]} LB)`);
    }
    if (this.whole[k]) return undefined;
    const a = this.start[k], b = this.start[k + 1];
    return a === b ? LiveParts.NONE : this.pieces.subarray(2 * a, 2 * b);
  }

  /**
   * Check that a pass over the log saw `seen` IOs, as it must have to rely on these parts: as many
   * as known when they are complete, at least as many otherwise.
   *
   * @throws Error with code `ERR_WALB_LOG_CHANGED` when it saw another number (the log changed).
   */
  expectSeen(seen: number): void {
    if (seen < this.size || (this.complete && seen !== this.size)) {
      throw logChanged(`it has ${seen} IOs, it had ${this.size}`);
    }
  }
}
