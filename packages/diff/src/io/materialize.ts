/**
 * Turning a normal IO's data window into bytes: decompress its image (once, cached briefly, since
 * consecutive IOs often share one image) and slice the window.
 *
 * @module
 */
import { LOGICAL_BLOCK_SIZE } from '@walbjs/log-format';
import type { DiffImage, DiffIo } from '../algo/diff-io.ts';
import { decompressStored, decompressStoredSync } from '../codec/index.ts';
import { WdiffFormatError } from '../errors.ts';

/**
 * Decompressed images kept, oldest first, up to this many entries and bytes (the last one kept
 * whatever its size): the IOs that share an image come one after another, and an image may hold
 * up to 64 MiB, which a cache counted in entries alone would keep eight of for the life of the
 * process.
 */
const CACHE_ENTRIES = 8;
const CACHE_BYTES = 8 << 20;
const cache = new Map<DiffImage, Buffer>();
let cachedBytes = 0;

function remember(image: DiffImage, raw: Buffer): Buffer {
  // Two waits for one image may both end here.
  const had = cache.get(image);
  if (had) cachedBytes -= had.byteLength;
  cache.set(image, raw);
  cachedBytes += raw.byteLength;
  while (cache.size > 1 && (cache.size > CACHE_ENTRIES || cachedBytes > CACHE_BYTES)) {
    const [k, v] = cache.entries().next().value!;
    cache.delete(k);
    cachedBytes -= v.byteLength;
  }
  return raw;
}

/**
 * The decompressed bytes of `image` when they can be had without waiting: raw, remembered, or
 * decompressed on the spot by a codec with a synchronous path; `undefined` otherwise (nothing done).
 *
 * @throws a codec error when the stored bytes do not decompress to `blocks·512` bytes.
 */
export function imageBytesNow(image: DiffImage): Buffer | undefined {
  if (image.cmpr === 0) return image.stored;
  const hit = cache.get(image);
  if (hit) return hit;
  try {
    const raw = decompressStoredSync(image.cmpr, image.stored, image.blocks * LOGICAL_BLOCK_SIZE);
    return raw && remember(image, raw);
  } catch (e) {
    if (e instanceof WdiffFormatError) e.locate({ source: image.source, offset: image.offset });
    throw e;
  }
}

/**
 * The decompressed bytes of `image` (exactly `blocks·512` of them).
 *
 * @throws a codec error when the stored bytes do not decompress to that size.
 */
export async function imageBytes(image: DiffImage): Promise<Buffer> {
  const now = imageBytesNow(image);
  if (now) return now;
  try {
    return remember(image, await decompressStored(image.cmpr, image.stored, image.blocks * LOGICAL_BLOCK_SIZE));
  } catch (e) {
    if (e instanceof WdiffFormatError) e.locate({ source: image.source, offset: image.offset });
    throw e;
  }
}

/** {@link ioBytes} when the bytes can be had without waiting, else `undefined` (see {@link imageBytesNow}). */
export function ioBytesNow(io: DiffIo): Buffer | undefined {
  const raw = imageBytesNow(io.data!.image);
  if (!raw) return undefined;
  const from = io.data!.offsetLb * LOGICAL_BLOCK_SIZE;
  return raw.subarray(from, from + io.blocks * LOGICAL_BLOCK_SIZE);
}

/** The bytes of a normal IO (`blocks·512`), or `undefined` for ALLZERO and DISCARD. */
export async function ioBytes(io: DiffIo): Promise<Buffer | undefined> {
  if (io.kind !== 'normal') return undefined;
  const raw = await imageBytes(io.data!.image);
  const from = io.data!.offsetLb * LOGICAL_BLOCK_SIZE;
  return raw.subarray(from, from + io.blocks * LOGICAL_BLOCK_SIZE);
}
