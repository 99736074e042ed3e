/**
 * `@walbjs/diff`: the WalB wdiff formats and the convert / merge / apply engine, byte-compatible
 * with walb-tools 1.0.19.
 *
 * - Formats: the sorted format ({@link SortedDiffReader}, {@link SortedDiffWriter}) and the indexed
 *   format ({@link IndexedDiffReader}, {@link IndexedDiffWriter}); {@link openWdiff} reads either.
 *   Every checksum of the original is verified on read.
 * - Codecs: none, gzip (a zlib stream), snappy, lzma (xz), lz4 (raw block), zstd — see
 *   {@link getCodec}; records are compressed one by one, stored raw when that does not shrink them.
 * - Algorithms: the in-memory diff with overlap trimming ({@link DiffMemory}), wlog → wdiff
 *   conversion ({@link convertWlogs}), the streaming k-way merge ({@link mergeIos},
 *   {@link mergeWdiffs}), apply ({@link applyWdiffs}), the virtual full image
 *   ({@link VirtualFullImage}), diffs of images ({@link imageToWdiff}, {@link compareImagesToWdiff}).
 * - Statistics and text in the original's formats ({@link formatDiffStat}, …).
 * - Errors: {@link WdiffFormatError} and its subclasses.
 *
 * Addresses inside the engine are numbers of logical blocks; every reader rejects an address
 * beyond 2^53 LB with a typed error, so none loses precision.
 *
 * @example
 * import { convertWlogs, mergeWdiffs, applyWdiffs } from '@walbjs/diff';
 * await convertWlogs(['a.wlog'], 'a.wdiff');
 * await mergeWdiffs(['a.wdiff', 'b.wdiff'], 'ab.wdiff');
 * await applyWdiffs('disk.img', ['ab.wdiff'], { discard: 'zero' });
 *
 * @packageDocumentation
 */
export * from './constants.ts';
export * from './compression.ts';
export * from './errors.ts';
export * from './codec/index.ts';
export * from './algo/diff-io.ts';
export * from './algo/diff-memory.ts';
export * from './algo/merge.ts';
export * from './algo/live-parts.ts';
export * from './layout/file-header.ts';
export * from './layout/diff-record.ts';
export * from './layout/pack-header.ts';
export * from './layout/indexed-record.ts';
export * from './io/materialize.ts';
export * from './io/sorted-reader.ts';
export * from './io/sorted-records.ts';
export * from './io/indexed-reader.ts';
export * from './io/wdiff-input.ts';
export * from './io/sorted-writer.ts';
export * from './io/indexed-writer.ts';
export { storedData, type StoredData } from './io/stored-data.ts';
export { useDirectWrites } from './io/out-writer.ts';
export { useBatchStore, STORED_IN_SRC, type StoreBatchFn } from './io/batch-store.ts';
export { useLogChunkScan, type LogChunkScanFn } from './io/wlog-walk.ts';
export { useNativeIndex, type NativeIndexFns } from './io/native-index.ts';
export { useNativeMerge, type NativeMergeFns } from './io/merge-native.ts';
export * from './io/convert.ts';
export * from './io/merge-files.ts';
export { useExtentSums, type ExtentSumsFn } from './io/extent-check.ts';
export { useCopyPieces, type CopyPiecesFn } from './io/apply-copy.ts';
export { usePrefetch, type PrefetchRangesFn } from './io/target-prefetch.ts';
export { usePunchHoles, type PunchHolesFn } from './io/punch.ts';
export { useWritebackStart, type WritebackStartFn } from './io/sync-policy.ts';
export { applyWdiffs, verifyWdiffs, type ApplyOptions, type ApplySummary, type DiscardMode } from './io/apply.ts';
export * from './io/virtual-full.ts';
export * from './io/image-diff.ts';
export { useHoleSeek, type SeekDataFn } from './io/holes.ts';
export * from './stats.ts';
