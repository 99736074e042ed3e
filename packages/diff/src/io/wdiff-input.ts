/**
 * One way to read any wdiff, sorted or indexed: its header and its IOs in address order.
 *
 * @module
 */
import { openInput } from '@walbjs/log-format';
import { WALB_DIFF_FILE_HEADER_SIZE, WALB_DIFF_TYPE_INDEXED } from '../constants.ts';
import { TruncatedError } from '../errors.ts';
import type { DiffIo } from '../algo/diff-io.ts';
import { decodeDiffFileHeader, type DiffFileHeader } from '../layout/file-header.ts';
import { IndexedDiffReader } from './indexed-reader.ts';
import { SortedDiffReader, type SortedReadOptions } from './sorted-reader.ts';

/** An open wdiff of either format. */
export interface WdiffInput {
  /** The file path. */
  readonly path: string;
  /** The file header (its `type` tells the format). */
  readonly header: DiffFileHeader;
  /** The IOs in address order. A sorted file can be iterated once. */
  ios(): AsyncIterable<DiffIo>;
  /**
   * The caller holds no IO (nor its data) ending at or below LB `addr` any more: their memory may
   * be reused. Does something only for a file opened with `recycle`.
   */
  releaseBelow(addr: number): void;
  /** Release the file. */
  close(): Promise<void>;
}

/** Options of {@link openWdiff}. */
export interface OpenWdiffOptions {
  /**
   * The caller is done with each IO's data before it reads on (copies or writes it), so a sorted
   * file may be read into reused buffers ({@link SortedReadOptions.reuseBuffers}). Default false.
   */
  transientData?: boolean;
  /** Bytes per read of a sorted file (default 2 MiB; merge, apply and virt-cat take {@link readChunkFor}). */
  chunkBytes?: number;
  /**
   * The caller tells with {@link WdiffInput.releaseBelow} which IOs it is done with, and a file
   * is read into memory reused once released (a sorted one's chunks, an indexed one's image
   * slabs). Default false.
   */
  recycle?: boolean;
}

/** Read memory shared by the inputs of one merge, apply or virtual image. */
const READ_BUDGET = 64 << 20;

/**
 * Bytes per read for each of `inputs` sorted wdiffs read at once: 2 MiB for up to 32 inputs, then
 * smaller (down to 256 KiB) so the inputs together read into about 64 MiB. Each sorted reader
 * holds two or three chunks: with 8 MiB chunks a merge of 40 files took 1.8 GB. A 2 MiB chunk is
 * still in the caches when the JS thread parses and sums it: merging two 277 MB diffs took
 * 0.569 s against 0.639 s with 8 MiB chunks, eight 68 MB ones 0.528 s against 0.613 s (medians of
 * 11 and 9, alternating, output synced).
 */
export function readChunkFor(inputs: number): number {
  const per = READ_BUDGET / Math.max(1, inputs);
  return Math.max(256 << 10, Math.min(2 << 20, 2 ** Math.floor(Math.log2(per))));
}

/**
 * Open a wdiff file of either format.
 *
 * @example
 * const d = await openWdiff('a.wdiff');
 * for await (const io of d.ios()) console.log(io.addr, io.blocks, io.kind);
 * await d.close();
 */
export async function openWdiff(path: string, opts: OpenWdiffOptions = {}): Promise<WdiffInput> {
  const fh = await openInput(path);
  let head: Buffer;
  try {
    head = Buffer.alloc(WALB_DIFF_FILE_HEADER_SIZE);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead < head.length) throw new TruncatedError('wdiff header truncated', { offset: 0, source: path });
  } finally {
    await fh.close();
  }
  const header = decodeDiffFileHeader(head, 0, { source: path });
  if (header.type === WALB_DIFF_TYPE_INDEXED) {
    const r = await IndexedDiffReader.open(path, { recycle: opts.recycle });
    return { path, header, ios: () => r.ios(), releaseBelow: (addr) => r.releaseBelow(addr), close: () => r.close() };
  }
  const r = await SortedDiffReader.open(path, { reuseBuffers: opts.transientData, chunkBytes: opts.chunkBytes, recycle: opts.recycle });
  let used = false;
  return {
    path, header,
    ios: () => {
      if (used) throw new Error(`${path}: a sorted wdiff input can be iterated once; open it again`);
      used = true;
      // The reader's records as IOs, without a generator of its own between them: a sorted file
      // has many small records, and each generator step costs its own promises.
      const it: AsyncIterableIterator<DiffIo> = {
        [Symbol.asyncIterator]: () => it,
        next: async () => {
          const e = await r.next();
          return e ? { value: e.io, done: false } : { value: undefined, done: true };
        },
        return: async () => {
          await r.close();
          return { value: undefined, done: true };
        },
      };
      return it;
    },
    releaseBelow: (addr) => r.releaseBelow(addr),
    close: () => r.close(),
  };
}
