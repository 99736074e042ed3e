/**
 * Merging wdiff files into one.
 *
 * @module
 */
import type { ByteSink } from '@walbjs/log-format';
import type { CompressOpt } from '../compression.ts';
import { mergeIos } from '../algo/merge.ts';
import { IndexedDiffWriter } from './indexed-writer.ts';
import { SortedDiffWriter, type WriteSummary } from './sorted-writer.ts';
import { openWdiff, readChunkFor, type WdiffInput } from './wdiff-input.ts';
import { fillThenClose } from './fill-then-close.ts';
import { mergeNatively } from './merge-native.ts';

/** Options of {@link mergeWdiffs}. */
export interface MergeFilesOptions {
  /** Codec of the output records (default snappy level 0). */
  cmpr?: CompressOpt;
  /** Split output IOs larger than this many LB (default 0: no split, as `wdiff-merge`). */
  maxIoBlocks?: number;
  /** Write the indexed format instead of the sorted one. */
  indexed?: boolean;
  /** Called with the number of IOs written, now and then. */
  onProgress?: (ios: number) => void;
  /** fdatasync an output file before returning (default false). */
  sync?: boolean;
  /** Write an output file with direct IO (`O_DIRECT`; needs `useDirectWrites`); default false. */
  direct?: boolean;
}

/**
 * Merge wdiffs (sorted or indexed, oldest first) into one; the output's uuid is the last input's
 * (the device the newest diff came from). Untouched records whose codec is the output's are copied
 * without recompression, once seen to decompress to their size. With an external merge in use
 * (`useNativeMerge`), a sorted output file in codec none or snappy is merged by it, off this
 * thread: the same blocks, in the fewest records (see merge-native.ts).
 *
 * @throws RangeError when `inputs` is empty (before anything is written); the readers' typed
 *   errors on corrupt inputs (a `CodecError` for a record that does not decompress), a file output
 *   then keeping what it had (written under a temporary name, renamed over it at the end).
 * @example
 * await mergeWdiffs(['d0.wdiff', 'd1.wdiff', 'd2.wdiff'], 'merged.wdiff', { cmpr: parseCompressOpt('zstd') });
 */
export async function mergeWdiffs(inputs: string[], out: ByteSink, opts: MergeFilesOptions = {}): Promise<WriteSummary> {
  // The output's uuid is the last input's: with none there is nothing to write.
  if (inputs.length === 0) throw new RangeError('mergeWdiffs: no wdiff given');
  // Off this thread where an external merge is in use and applies (see merge-native.ts).
  const native = await mergeNatively(inputs, out, opts);
  if (native) return native;
  const opened: WdiffInput[] = [];
  try {
    const chunkBytes = readChunkFor(inputs.length);
    // A sorted output holds an IO's data until its pack is written, then says so: indexed inputs
    // may then read into the memory of the IOs it let go.
    const recycle = !opts.indexed;
    for (const p of inputs) opened.push(await openWdiff(p, { chunkBytes, recycle }));
    const uuid = opened[opened.length - 1]?.header.uuid;
    const w = opts.indexed
      ? await IndexedDiffWriter.create(out, { uuid, cmpr: opts.cmpr, maxIoBlocks: opts.maxIoBlocks || undefined, sync: opts.sync, direct: opts.direct })
      : await SortedDiffWriter.create(out, { uuid, cmpr: opts.cmpr, maxIoBlocks: opts.maxIoBlocks, sync: opts.sync, direct: opts.direct });
    if (w instanceof SortedDiffWriter) w.onReleased = (addr) => { for (const d of opened) d.releaseBelow(addr); };
    let n = 0;
    // A corrupt input found halfway: the output path keeps what it had.
    return await fillThenClose(w, async () => {
      for await (const io of mergeIos(opened.map((d) => d.ios()), { maxIoBlocks: opts.indexed ? 0 : opts.maxIoBlocks })) {
        if (!w.writeNow(io)) await w.write(io);
        if (++n % 4096 === 0) opts.onProgress?.(n);
      }
    });
  } finally {
    await Promise.all(opened.map((d) => d.close()));
  }
}
