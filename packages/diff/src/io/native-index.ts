/**
 * The indexed writer's index kept by an external implementation (the native addon's `indexNew`,
 * `indexAdd`, `indexEncode`): the writer hands it each IO as eight numbers, a batch at a time,
 * and takes the encoded records at the close.
 *
 * Why: a conversion's JavaScript runs once, cold. The writer's own interval index cost 3–5 µs an
 * IO there, and encoding a 518 MiB compressible log's 28,000 records at the close 10–20 ms more,
 * while both cores were busy walking the log. The external index gives the same bytes (checked
 * when it is set, and by the tests on random diffs).
 *
 * @module
 */
import { DiffMemory } from '../algo/diff-memory.ts';
import type { DiffIoKind } from '../algo/diff-io.ts';
import { kindFlags } from '../layout/diff-record.ts';
import { encodeIndexedDiffRecord, splitToAligned } from '../layout/indexed-record.ts';

/** The three functions of an external index (see the native addon's descriptions). */
export interface NativeIndexFns {
  /** A new, empty index. */
  indexNew(): object;
  /**
   * Add the first `count` IOs of `ios`, 8 numbers each: address, LB, kind (0 normal, 1 all zeros,
   * 2 discard), codec, image offset in the file, stored size, image LB, stored checksum (the image
   * numbers 0 without an image). Returns the visible pieces now.
   */
  indexAdd(index: object, ios: Float64Array, count: number): number;
  /**
   * The next records, at most `max` (none once all were taken), each visible piece split into
   * aligned extents of at most `cap` LB (0: no cap).
   */
  indexEncode(index: object, cap: number, max: number): Uint8Array;
}

/**
 * Numbers per IO: address, LB, kind (0 normal, 1 all zeros, 2 discard), codec, image offset in
 * the file, stored size, image LB, stored checksum (the image numbers 0 without an image).
 */
export const IO_NUMBERS = 8;

/** The kind numbers of {@link IO_NUMBERS}. */
export const KIND_NUMBER: Record<DiffIoKind, number> = { normal: 0, allzero: 1, discard: 2 };

let impl: NativeIndexFns | undefined;

/**
 * Let indexed writers keep their index with `fns` (the native addon: `useNativeIndex(loadNative())`).
 * It is checked first on a small index against this package's own: one that gives other bytes
 * (or throws) is refused, and false returned. `undefined` goes back to the writer's own index.
 *
 * @example
 * import { loadNative } from '@walbjs/native-walb';
 * if (!useNativeIndex(loadNative())) console.warn('native index refused');
 */
export function useNativeIndex(fns: NativeIndexFns | undefined): boolean {
  if (fns && !agrees(fns)) {
    impl = undefined;
    return false;
  }
  impl = fns;
  return true;
}

/** The external index in use, if any. */
export function nativeIndexFns(): NativeIndexFns | undefined {
  return impl;
}

/** Whether `fns` encodes a small index of every kind of overlap as this package does. */
function agrees(fns: NativeIndexFns): boolean {
  // [addr, blocks, kind] in write order; the normal ones get distinct images.
  const ios: Array<[number, number, DiffIoKind]> = [
    [0, 24, 'normal'], [4, 2, 'discard'], [20, 12, 'allzero'], [8, 3, 'normal'], [2 ** 40 + 5, 4100, 'normal'], [2 ** 40, 9, 'discard'], [30, 1, 'normal'],
  ];
  const cap = 1024;
  try {
    const mem = new DiffMemory();
    const nums = new Float64Array(ios.length * IO_NUMBERS);
    ios.forEach(([addr, blocks, kind], i) => {
      const image = kind === 'normal' ? { stored: Buffer.alloc(0), cmpr: 2, blocks, checksum: 0x5eed0000 + i, fileOffset: 4096 * (i + 1) + 2 ** 33, size: 100 + i } : undefined;
      mem.add(image ? { addr, blocks, kind, data: { image, offsetLb: 0 } } : { addr, blocks, kind });
      nums.set(image ? [addr, blocks, 0, image.cmpr, image.fileOffset, image.size, blocks, image.checksum] : [addr, blocks, KIND_NUMBER[kind], 0, 0, 0, 0, 0], i * IO_NUMBERS);
    });
    const want: Uint8Array[] = [];
    for (const io of mem.values()) {
      const img = io.data?.image as { cmpr: number; blocks: number; checksum: number; fileOffset: number; size: number } | undefined;
      let addr = io.addr;
      let off = io.data?.offsetLb ?? 0;
      for (const s of splitToAligned(io.addr, io.blocks, cap)) {
        want.push(encodeIndexedDiffRecord({
          ioAddress: addr, ioBlocks: s, flags: kindFlags(io.kind), compressionType: img?.cmpr ?? 0, reserved1: 0,
          dataOffset: img?.fileOffset ?? 0, dataSize: img?.size ?? 0, ioOffset: img ? off : 0, origBlocks: img?.blocks ?? 0,
          reserved2: 0, ioChecksum: img?.checksum ?? 0, recChecksum: 0,
        }));
        addr += s;
        off += s;
      }
    }
    const ix = fns.indexNew();
    if (fns.indexAdd(ix, nums, ios.length) !== mem.size) return false;
    // Taken in runs of 3, which split the 4100-LB piece's records between runs.
    const runs: Uint8Array[] = [];
    for (let r = fns.indexEncode(ix, cap, 3); r.byteLength > 0; r = fns.indexEncode(ix, cap, 3)) {
      if (runs.length > want.length) return false;
      runs.push(r);
    }
    return Buffer.concat(runs).equals(Buffer.concat(want));
  } catch {
    return false;
  }
}
