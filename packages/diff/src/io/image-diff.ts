/**
 * Diffs made from images: a full image as a wdiff (like the original's `wdiff-full`), and the
 * compared diff of two images (the blocks where the newer differs).
 *
 * @module
 */
import type { FileHandle } from 'node:fs/promises';
import { LOGICAL_BLOCK_SIZE, allocReadBuffer, openInput, probeDevice, type ByteSink } from '@walbjs/log-format';
import type { CompressOpt } from '../compression.ts';
import { normalIo, type DiffIo } from '../algo/diff-io.ts';
import { TruncatedError, ValueOutOfRangeError } from '../errors.ts';
import { isAllZero } from './convert.ts';
import { IndexedDiffWriter } from './indexed-writer.ts';
import { SortedDiffWriter, type WriteSummary } from './sorted-writer.ts';
import { preadFull } from './pread.ts';
import { HoleFinder } from './holes.ts';
import { fillThenClose } from './fill-then-close.ts';

/** Options of {@link imageToWdiff} and {@link compareImagesToWdiff}. */
export interface ImageDiffOptions {
  /** Bytes per IO (default 64 KiB, as `wdiff-full -ios`); a multiple of 512. */
  ioBytes?: number;
  /** Write the indexed format. */
  indexed?: boolean;
  /** Codec (default snappy). */
  cmpr?: CompressOpt;
  /** Uuid for the header. */
  uuid?: Uint8Array;
  /** Called with the bytes scanned so far. */
  onProgress?: (bytes: number) => void;
}

async function writer(out: ByteSink, o: ImageDiffOptions) {
  return o.indexed ? IndexedDiffWriter.create(out, { uuid: o.uuid, cmpr: o.cmpr }) : SortedDiffWriter.create(out, { uuid: o.uuid, cmpr: o.cmpr });
}

function ioSize(o: ImageDiffOptions): number {
  const n = o.ioBytes ?? 64 << 10;
  if (!Number.isSafeInteger(n) || n <= 0 || n % LOGICAL_BLOCK_SIZE || n > 32 << 20) throw new ValueOutOfRangeError('ioBytes', n, 'must be a positive multiple of 512 up to 32 MiB');
  return n;
}

/**
 * Bytes per read of an image, rounded down to whole IOs: one request per IO of 64 KiB cost more
 * than the rest of the work (a 1 GiB image took seconds).
 */
const READ_BYTES = 4 << 20;

/** A chunk of an image: its bytes, and whether it lies in a hole (zeros, not read). */
interface ImageChunk {
  bytes: Buffer;
  hole: boolean;
}

let zeroChunk = Buffer.alloc(0);

/**
 * Sequential reads of an image in chunks of whole IOs, one read ahead. Each chunk is memory of its
 * own (the writer may still hold views of the IOs cut from it), except a chunk in a hole: a view
 * of shared zeros, which nothing writes.
 */
class ImageReader {
  private pos = 0;
  private ahead: Promise<ImageChunk> | undefined;
  private readonly chunk: number;
  private readonly holes: HoleFinder | undefined;

  constructor(private readonly fh: FileHandle, private readonly path: string, private readonly size: number, ioBytes: number, regular: boolean) {
    this.chunk = Math.max(ioBytes, Math.floor(READ_BYTES / ioBytes) * ioBytes);
    // Only a regular file has holes to find; a block device reads as data everywhere.
    this.holes = regular ? HoleFinder.for(fh.fd, size) : undefined;
  }

  private read(pos: number): Promise<ImageChunk> {
    const len = Math.min(this.chunk, this.size - pos);
    if (this.holes?.inHole(pos, len)) {
      if (zeroChunk.byteLength < len) zeroChunk = Buffer.alloc(Math.max(len, READ_BYTES));
      return Promise.resolve({ bytes: zeroChunk.subarray(0, len), hole: true });
    }
    const buf = allocReadBuffer(len);
    return preadFull(this.fh, buf, 0, len, pos).then((n) => {
      if (n < len) throw new TruncatedError(`image: ended at byte ${pos + n}, its size was ${this.size}`, { offset: pos + n, source: this.path });
      return { bytes: buf, hole: false };
    });
  }

  /** The next chunk; undefined after the last. */
  async next(): Promise<ImageChunk | undefined> {
    if (this.pos >= this.size) return undefined;
    const p = this.ahead ?? this.read(this.pos);
    this.pos += Math.min(this.chunk, this.size - this.pos);
    this.ahead = undefined;
    if (this.pos < this.size) {
      this.ahead = this.read(this.pos);
      // Its failure is thrown by the next call; until then it must not count as unhandled.
      this.ahead.catch(() => {});
    }
    return p;
  }

  /** Wait for the read ahead, so the file can be closed under no request. */
  async settle(): Promise<void> {
    await this.ahead?.catch(() => {});
  }
}

/** An ALLZERO IO for `len` bytes (whole LB) of the image at byte `pos`. */
function zeroIo(pos: number, len: number): DiffIo {
  return { addr: pos / LOGICAL_BLOCK_SIZE, blocks: len / LOGICAL_BLOCK_SIZE, kind: 'allzero' };
}

/** The IO for `bytes` (whole LB) of the image at byte `pos`. */
function imageIo(pos: number, bytes: Buffer): DiffIo {
  const addr = pos / LOGICAL_BLOCK_SIZE;
  return isAllZero(bytes) ? { addr, blocks: bytes.byteLength / LOGICAL_BLOCK_SIZE, kind: 'allzero' } : normalIo(addr, bytes);
}

/**
 * Refuse an image that is not a whole number of 512-byte blocks: a diff addresses whole blocks,
 * and one whose last block passes the end of such an image applies to no image of its size (a
 * file of 1000 bytes gave a diff of 1024 that apply refused on it).
 */
function checkWholeBlocks(size: number, source: string): void {
  if (size % LOGICAL_BLOCK_SIZE !== 0) {
    throw new ValueOutOfRangeError('size', size, `is not a whole number of ${LOGICAL_BLOCK_SIZE}-byte blocks, as a volume's image is (a diff addresses whole blocks)`, { source });
  }
}

/**
 * Write what `fill` gives to a new wdiff writer and close it; on a failure the writer is
 * abandoned (its file closed, and a file output left as it was before) and the error rethrown.
 */
async function writeWith(out: ByteSink, opts: ImageDiffOptions, fill: (w: SortedDiffWriter | IndexedDiffWriter) => Promise<void>): Promise<WriteSummary> {
  const w = await writer(out, opts);
  return fillThenClose(w, () => fill(w));
}

/**
 * The whole image as a wdiff: one IO per `ioBytes`, all-zero ones as ALLZERO. Applying it to any
 * image of the same size reproduces this one.
 *
 * @throws {@link ValueOutOfRangeError} when the image is not a whole number of 512-byte blocks;
 *   {@link TruncatedError} when the image ends before the size it had at the start.
 */
export async function imageToWdiff(image: string, out: ByteSink, opts: ImageDiffOptions = {}): Promise<WriteSummary> {
  const io = ioSize(opts);
  const info = await probeDevice(image);
  const size = Number(info.sizeBytes);
  checkWholeBlocks(size, image);
  const fh = await openInput(image);
  const r = new ImageReader(fh, image, size, io, !info.isBlockDevice);
  try {
    return await writeWith(out, opts, async (w) => {
      let pos = 0;
      for (let c = await r.next(); c; c = await r.next()) {
        const n = c.bytes.byteLength;
        for (let o = 0; o < n; o += io) {
          // A hole needs no look at its bytes: each IO of it is ALLZERO.
          await w.write(c.hole ? zeroIo(pos + o, Math.min(io, n - o)) : imageIo(pos + o, c.bytes.subarray(o, o + io)));
        }
        pos += n;
        opts.onProgress?.(pos);
      }
    });
  } finally {
    await r.settle();
    await fh.close();
  }
}

/**
 * The diff that turns image `older` into image `newer`: an IO for every `ioBytes` chunk that
 * differs, carrying the newer content (ALLZERO when that is all zero). Both images must have the
 * same size.
 *
 * @throws {@link ValueOutOfRangeError} when the sizes differ or are not a whole number of 512-byte
 *   blocks; {@link TruncatedError} when an image
 *   ends before the size it had at the start.
 */
export async function compareImagesToWdiff(older: string, newer: string, out: ByteSink, opts: ImageDiffOptions = {}): Promise<WriteSummary> {
  const io = ioSize(opts);
  const [a, b] = await Promise.all([probeDevice(older), probeDevice(newer)]);
  if (a.sizeBytes !== b.sizeBytes) throw new ValueOutOfRangeError('size', Number(b.sizeBytes), `differs from the older image's ${a.sizeBytes} bytes`, { source: newer });
  const size = Number(a.sizeBytes);
  checkWholeBlocks(size, newer);
  const fa = await openInput(older);
  const fb = await openInput(newer).catch(async (e: unknown) => { await fa.close(); throw e; });
  const ra = new ImageReader(fa, older, size, io, !a.isBlockDevice);
  const rb = new ImageReader(fb, newer, size, io, !b.isBlockDevice);
  try {
    return await writeWith(out, opts, async (w) => {
      let pos = 0;
      for (;;) {
        const [ca, cb] = await Promise.all([ra.next(), rb.next()]);
        if (!ca || !cb) break;
        const n = cb.bytes.byteLength;
        // Holes in both: equal without a look.
        if (!(ca.hole && cb.hole)) {
          for (let o = 0; o < n; o += io) {
            const nb = cb.bytes.subarray(o, o + io);
            if (!nb.equals(ca.bytes.subarray(o, o + io))) await w.write(cb.hole ? zeroIo(pos + o, nb.byteLength) : imageIo(pos + o, nb));
          }
        }
        pos += n;
        opts.onProgress?.(pos);
      }
    });
  } finally {
    await Promise.all([ra.settle(), rb.settle()]);
    await Promise.all([fa.close(), fb.close()]);
  }
}
