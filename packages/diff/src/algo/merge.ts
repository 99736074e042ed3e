/**
 * Streaming k-way merge of diffs, oldest to newest: where they overlap the newer one wins. Memory
 * holds only the IOs that straddle the merge front, whatever the size of the inputs.
 *
 * @module
 */
import { DiffMemory, checkIo } from './diff-memory.ts';
import { splitIo, type DiffIo } from './diff-io.ts';

/** Options of {@link mergeIos}. */
export interface MergeOptions {
  /** Split output IOs larger than this many LB (default 0: no split). */
  maxIoBlocks?: number;
}

/**
 * Merge IO streams, each in ascending address order without overlap, given oldest first. The
 * result is in ascending order without overlap; each block comes from the newest stream that has
 * it.
 *
 * How: IOs are taken from the stream whose next IO starts lowest and inserted with the stream's
 * age (a newer stream's blocks win over an older's whatever the order of insertion); every block
 * below the lowest next start of all streams is final and is emitted. An IO that ends at or below
 * that front while nothing is held overlaps nothing and is passed on as it is.
 *
 * @example
 * for await (const io of mergeIos([older.ios(), newer.ios()])) await writer.write(io);
 */
export function mergeIos(streams: AsyncIterable<DiffIo>[], opts: MergeOptions = {}): AsyncIterableIterator<DiffIo> {
  return new Merge(streams.map((s) => s[Symbol.asyncIterator]()), opts.maxIoBlocks ?? 0);
}

/**
 * The merge as a plain async iterator rather than an async generator: with tens of thousands of
 * small IOs a second, the generator's promise and resumption per `yield` (and per element of a
 * `yield*`) cost more than the merge itself.
 */
class Merge implements AsyncIterableIterator<DiffIo> {
  private heads: (DiffIo | undefined)[] | undefined;
  private readonly mem = new DiffMemory();
  /** IOs ready to hand out, from `at` on. */
  private out: DiffIo[] = [];
  private at = 0;
  private ended = false;

  constructor(private readonly its: AsyncIterator<DiffIo>[], private readonly max: number) {}

  [Symbol.asyncIterator](): AsyncIterableIterator<DiffIo> {
    return this;
  }

  async next(): Promise<IteratorResult<DiffIo>> {
    try {
      while (this.at >= this.out.length) {
        if (this.ended) return { value: undefined, done: true };
        this.out.length = 0;
        this.at = 0;
        await this.step();
      }
      return { value: this.out[this.at++], done: false };
    } catch (e) {
      await this.return();
      throw e;
    }
  }

  async return(): Promise<IteratorResult<DiffIo>> {
    if (!this.ended) {
      this.ended = true;
      this.heads = undefined;
      this.out = [];
      await Promise.all(this.its.map((it) => it.return?.()));
    }
    return { value: undefined, done: true };
  }

  private emit(io: DiffIo): void {
    if (this.max > 0 && io.blocks > this.max) this.out.push(...splitIo(io, this.max));
    else this.out.push(io);
  }

  /** Take the lowest head and emit what becomes final. */
  private async step(): Promise<void> {
    const its = this.its;
    if (!this.heads) {
      const heads: (DiffIo | undefined)[] = [];
      for (const it of its) { const r = await it.next(); heads.push(r.done ? undefined : r.value); }
      this.heads = heads;
    }
    const heads = this.heads;
    let j = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i];
      if (h && (j < 0 || h.addr < heads[j]!.addr)) j = i;
    }
    if (j < 0) return this.finish();
    const io = heads[j]!;
    const r = await its[j].next();
    heads[j] = r.done ? undefined : r.value;
    let front = Infinity;
    for (const h of heads) if (h && h.addr < front) front = h.addr;
    if (its.length === 1 || (this.mem.isEmpty && io.addr + io.blocks <= front)) {
      // Overlaps nothing held, and every IO still to come starts at or after its end.
      checkIo(io);
      this.emit(io);
      if (front === Infinity) this.finish();
      return;
    }
    this.mem.addAged(io, j);
    if (front === Infinity) return this.finish();
    for (const x of this.mem.takeBelow(front)) this.emit(x);
  }

  private finish(): void {
    for (const x of this.mem.takeAll()) this.emit(x);
    this.ended = true;
    this.heads = undefined;
  }
}
