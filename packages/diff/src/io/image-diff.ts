/**
 * Diffs made from images: a full image as a wdiff (like the original's `wdiff-full`), and the
 * compared diff of two images (the blocks where the newer differs).
 *
 * @module
 */
import { LOGICAL_BLOCK_SIZE, openInput, probeDevice, type ByteSink } from '@walbjs/log-format';
import type { CompressOpt } from '../compression.ts';
import { normalIo, type DiffIo } from '../algo/diff-io.ts';
import { ValueOutOfRangeError } from '../errors.ts';
import { isAllZero } from './convert.ts';
import { IndexedDiffWriter } from './indexed-writer.ts';
import { SortedDiffWriter, type WriteSummary } from './sorted-writer.ts';

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
  if (n <= 0 || n % LOGICAL_BLOCK_SIZE || n > 32 << 20) throw new ValueOutOfRangeError('ioBytes', n, 'must be a positive multiple of 512 up to 32 MiB');
  return n;
}

/**
 * The whole image as a wdiff: one IO per `ioBytes`, all-zero ones as ALLZERO. Applying it to any
 * image of the same size reproduces this one.
 */
export async function imageToWdiff(image: string, out: ByteSink, opts: ImageDiffOptions = {}): Promise<WriteSummary> {
  const chunk = ioSize(opts);
  const size = Number((await probeDevice(image)).sizeBytes);
  const fh = await openInput(image);
  const w = await writer(out, opts);
  try {
    for (let pos = 0; pos < size; pos += chunk) {
      const len = Math.min(chunk, size - pos);
      const buf = Buffer.allocUnsafe(len);
      let got = 0;
      while (got < len) { const { bytesRead } = await fh.read(buf, got, len - got, pos + got); if (!bytesRead) break; got += bytesRead; }
      buf.fill(0, got);
      const lb = Math.ceil(len / LOGICAL_BLOCK_SIZE);
      const data = len % LOGICAL_BLOCK_SIZE ? Buffer.concat([buf, Buffer.alloc(lb * LOGICAL_BLOCK_SIZE - len)]) : buf;
      const io: DiffIo = isAllZero(data) ? { addr: pos / LOGICAL_BLOCK_SIZE, blocks: lb, kind: 'allzero' } : normalIo(pos / LOGICAL_BLOCK_SIZE, data);
      await w.write(io);
      opts.onProgress?.(pos + len);
    }
    return await w.close();
  } finally {
    await fh.close();
  }
}

/**
 * The diff that turns image `older` into image `newer`: an IO for every `ioBytes` chunk that
 * differs, carrying the newer content (ALLZERO when that is all zero). Both images must have the
 * same size.
 */
export async function compareImagesToWdiff(older: string, newer: string, out: ByteSink, opts: ImageDiffOptions = {}): Promise<WriteSummary> {
  const chunk = ioSize(opts);
  const [a, b] = await Promise.all([probeDevice(older), probeDevice(newer)]);
  if (a.sizeBytes !== b.sizeBytes) throw new ValueOutOfRangeError('size', Number(b.sizeBytes), `differs from the older image's ${a.sizeBytes} bytes`);
  const size = Number(a.sizeBytes);
  const fa = await openInput(older);
  const fb = await openInput(newer);
  const w = await writer(out, opts);
  try {
    for (let pos = 0; pos < size; pos += chunk) {
      const len = Math.min(chunk, size - pos);
      const ba = Buffer.alloc(len), bb = Buffer.alloc(len);
      await fa.read(ba, 0, len, pos);
      await fb.read(bb, 0, len, pos);
      if (!ba.equals(bb)) {
        const lb = Math.ceil(len / LOGICAL_BLOCK_SIZE);
        const data = len % LOGICAL_BLOCK_SIZE ? Buffer.concat([bb, Buffer.alloc(lb * LOGICAL_BLOCK_SIZE - len)]) : bb;
        await w.write(isAllZero(data) ? { addr: pos / LOGICAL_BLOCK_SIZE, blocks: lb, kind: 'allzero' } : normalIo(pos / LOGICAL_BLOCK_SIZE, data));
      }
      opts.onProgress?.(pos + len);
    }
    return await w.close();
  } finally {
    await fa.close();
    await fb.close();
  }
}
