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
  const raw = decodeNow(image);
  return raw && remember(image, raw);
}

/** The image decompressed on the spot (not remembered), or `undefined` without a synchronous path. */
function decodeNow(image: DiffImage): Buffer | undefined {
  try {
    return decompressStoredSync(image.cmpr, image.stored, image.blocks * LOGICAL_BLOCK_SIZE);
  } catch (e) {
    throw located(e, image);
  }
}

function located(e: unknown, image: DiffImage): unknown {
  if (e instanceof WdiffFormatError) e.locate({ source: image.source, offset: image.offset });
  return e;
}

/**
 * Check that `image` decompresses to its `blocks·512` bytes, as a writer must before it passes the
 * image on as stored (its checksum covers the stored bytes only); nothing is kept. True when that
 * is known without waiting, `undefined` when only {@link imageDecodes} can tell.
 *
 * @throws a codec error, located at the image, when it does not decompress to that size.
 */
export function imageDecodesNow(image: DiffImage): true | undefined {
  if (image.cmpr === 0 || cache.has(image)) return true;
  return decodeNow(image) ? true : undefined;
}

/** {@link imageDecodesNow}, waiting for the codec where it has no synchronous path. */
export async function imageDecodes(image: DiffImage): Promise<void> {
  if (imageDecodesNow(image)) return;
  try {
    await decompressStored(image.cmpr, image.stored, image.blocks * LOGICAL_BLOCK_SIZE);
  } catch (e) {
    throw located(e, image);
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
    throw located(e, image);
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
