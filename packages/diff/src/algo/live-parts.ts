/**
 * What later IOs of a log leave visible of each IO (newer wins), found from the IOs' places
 * alone: how the indexed conversion of wlog files leaves out the data that nobody will read.
 *
 * Built in one pass over a log's IOs in log order ({@link LivePartsBuilder}), through the same
 * in-memory diff as the sorted conversion with every IO aged by its position; then asked IO by IO,
 * in the same order, by the pass that reads the data ({@link LiveParts.piecesOf}): all of an IO is
 * visible, none of it, or some pieces.
 *
 * @module
 */
import { DiffMemory } from './diff-memory.ts';

/** The error of a log that is not the one whose parts were worked out. */
function logChanged(what: string): Error {
  return Object.assign(new Error(`the log changed while it was read: ${what}`), { code: 'ERR_WALB_LOG_CHANGED' });
}

/** IOs of a log whose visible parts are all computed; a longer log is left whole. */
export const DEFAULT_MAX_LIVE_IOS = 1 << 20;

/**
 * Gathers the IOs of a log in log order, then works out their visible parts.
 *
 * @example
 * const b = new LivePartsBuilder();
 * b.add(0, 16); b.add(8, 16);
 * const live = b.finish(true)!;
 * live.piecesOf(0, 0, 16); // Float64Array [0, 8]: only LB 0–7 of the first IO are visible
 * live.piecesOf(1, 8, 16); // undefined: all of the second is
 */
export class LivePartsBuilder {
  private readonly mem = new DiffMemory();
  private addrs = new Float64Array(1024);
  private blocks = new Float64Array(1024);
  private n = 0;
  private over = false;

  /** @param maxIos - IOs at most (default {@link DEFAULT_MAX_LIVE_IOS}); past that the builder gives up, to keep memory bounded. */
  constructor(private readonly maxIos = DEFAULT_MAX_LIVE_IOS) {}

  /**
   * Add the next IO of the log: LB `addr`, `blocks` LB. False once more than `maxIos` were added:
   * the rest is not kept and {@link finish} gives undefined.
   */
  add(addr: number, blocks: number): boolean {
    if (this.over || this.n === this.maxIos) { this.over = true; return false; }
    if (this.n === this.addrs.length) {
      const grow = (a: Float64Array) => { const b = new Float64Array(a.length * 2); b.set(a); return b; };
      this.addrs = grow(this.addrs);
      this.blocks = grow(this.blocks);
    }
    // The kind does not matter here, only which IO is newest where: no data is kept.
    this.mem.addAged({ addr, blocks, kind: 'allzero' }, this.n);
    this.addrs[this.n] = addr;
    this.blocks[this.n] = blocks;
    this.n++;
    return true;
  }

  /**
   * The visible parts of the IOs added, or undefined when there were too many. `complete`: the
   * IOs added are all of the log's, so the pass that reads the data must see exactly as many.
   */
  finish(complete: boolean): LiveParts | undefined {
    if (this.over) return undefined;
    const n = this.n, addrs = this.addrs, blocks = this.blocks;
    // Counting sort of the visible pieces by the IO they belong to (the diff lists them in address
    // order): an IO visible whole is only marked.
    const whole = new Uint8Array(n);
    const start = new Uint32Array(n + 1);
    this.mem.forEach((io, k) => {
      if (io.addr === addrs[k] && io.blocks === blocks[k]) whole[k] = 1;
      else start[k + 1]++;
    });
    for (let k = 0; k < n; k++) start[k + 1] += start[k];
    const pieces = new Float64Array(2 * start[n]);
    const at = start.slice(0, n);
    this.mem.forEach((io, k) => {
      if (whole[k]) return;
      const i = 2 * at[k]++;
      pieces[i] = io.addr;
      pieces[i + 1] = io.blocks;
    });
    this.mem.clear();
    return new LiveParts(addrs.subarray(0, n), blocks.subarray(0, n), whole, start, pieces, complete);
  }
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
