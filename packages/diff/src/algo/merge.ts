/**
 * Streaming k-way merge of diffs, oldest to newest: where they overlap the newer one wins. Memory
 * holds only the IOs that straddle the merge front, whatever the size of the inputs.
 *
 * @module
 */
import { DiffMemory } from './diff-memory.ts';
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
 * below the lowest next start of all streams is final and is emitted.
 *
 * @example
 * for await (const io of mergeIos([older.ios(), newer.ios()])) await writer.write(io);
 */
export async function* mergeIos(streams: AsyncIterable<DiffIo>[], opts: MergeOptions = {}): AsyncGenerator<DiffIo> {
  const max = opts.maxIoBlocks ?? 0;
  const its = streams.map((s) => s[Symbol.asyncIterator]());
  try {
    const heads: (DiffIo | undefined)[] = [];
    for (const it of its) { const r = await it.next(); heads.push(r.done ? undefined : r.value); }
    if (its.length === 1) {
      while (heads[0]) {
        yield* splitIo(heads[0], max);
        const r = await its[0].next();
        heads[0] = r.done ? undefined : r.value;
      }
      return;
    }
    const mem = new DiffMemory();
    for (;;) {
      let j = -1;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i];
        if (h && (j < 0 || h.addr < heads[j]!.addr)) j = i;
      }
      if (j < 0) break;
      mem.addAged(heads[j]!, j);
      const r = await its[j].next();
      heads[j] = r.done ? undefined : r.value;
      let front = Infinity;
      for (const h of heads) if (h && h.addr < front) front = h.addr;
      if (front === Infinity) break;
      for (const io of mem.takeBelow(front)) yield* splitIo(io, max);
    }
    for (const io of mem.takeAll()) yield* splitIo(io, max);
  } finally {
    await Promise.all(its.map((it) => it.return?.()));
  }
}
