/**
 * wlog → wdiff conversion, sorted or indexed, from one or several consecutive wlogs, in bounded
 * memory.
 *
 * @module
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LOGICAL_BLOCK_SIZE, LsidSequenceError, WlogReader, hasData, isDiscard, isPadding, uuidToHex,
  type ByteSink, type ByteSource, type WlogHeader,
} from '@walbjs/log-format';
import { DEFAULT_INDEXED_MAX_IO_BLOCKS } from '../constants.ts';
import { DEFAULT_COMPRESS_OPT, codecLevel, type CompressOpt } from '../compression.ts';
import { DiffMemory } from '../algo/diff-memory.ts';
import { OrderedCompressor } from './stored-data.ts';
import { ValueOutOfRangeError } from '../errors.ts';
import { normalIo, type DiffIo } from '../algo/diff-io.ts';
import { IndexedDiffWriter } from './indexed-writer.ts';
import { SortedDiffWriter, type WriteSummary } from './sorted-writer.ts';
import { IndexedDiffReader } from './indexed-reader.ts';
import { convertFilesIndexed, convertFilesSorted } from './convert-files.ts';
import { fillThenClose } from './fill-then-close.ts';

import { isAllZero } from './zero.ts';

export { isAllZero };

/** What the log side of a conversion saw. */
export interface WlogStreamInfo {
  /** Uuid of the logs. */
  uuid: Uint8Array;
  /** First lsid. */
  beginLsid: bigint;
  /** lsid after the last pack. */
  endLsid: bigint;
}

/**
 * The IOs of one or several consecutive wlogs, in log order, as a wdiff sees them: padding
 * dropped, discards as DISCARD, all-zero data as ALLZERO. Each wlog must have the uuid of the
 * first and begin where the previous one ended.
 *
 * Normal IOs' data are views into the read chunks: they stay valid, but keep their chunk in memory.
 * @throws log-format's `LsidSequenceError` when a wlog does not continue the previous one;
 *   {@link ValueOutOfRangeError} on a uuid change.
 */
export async function* wlogIos(wlogs: ByteSource[], info: Partial<WlogStreamInfo> = {}): AsyncGenerator<DiffIo> {
  let expect: bigint | undefined;
  for (const src of wlogs) {
    const source = typeof src === 'string' ? src : undefined;
    // One input may hold several wlogs back to back (`cat a.wlog b.wlog |`), as the original's
    // wlog-to-wdiff reads them: each one after the first must continue the one before.
    for (let r: WlogReader | null = await WlogReader.open(src, { chained: true }); r; r = await r.following()) {
      try {
        const h: WlogHeader = r.header;
        if (expect === undefined) {
          info.uuid = h.uuid;
          info.beginLsid = h.beginLsid;
        } else {
          if (uuidToHex(h.uuid) !== uuidToHex(info.uuid!)) {
            throw new ValueOutOfRangeError('uuid', uuidToHex(h.uuid), `differs from the first wlog's ${uuidToHex(info.uuid!)}`, { source, offset: r.headerOffset });
          }
          if (h.beginLsid !== expect) {
            throw new LsidSequenceError(`wlog begins at lsid ${h.beginLsid}, the previous one ended at ${expect}`, { source, offset: r.headerOffset });
          }
        }
        for await (const p of r) {
          let k = 0;
          for (const rec of p.header.records) {
            const io = hasData(rec) ? p.ios[k++] : undefined;
            if (isPadding(rec)) continue;
            const addr = Number(rec.offset);
            if (!Number.isSafeInteger(addr + rec.ioSize)) throw new ValueOutOfRangeError('offset', rec.offset, 'exceeds 2^53 LB', { source, offset: p.offset });
            if (isDiscard(rec)) { yield { addr, blocks: rec.ioSize, kind: 'discard' }; continue; }
            const bytes = io!.subarray(0, rec.ioSize * LOGICAL_BLOCK_SIZE);
            if (isAllZero(bytes)) { yield { addr, blocks: rec.ioSize, kind: 'allzero' }; continue; }
            yield normalIo(addr, bytes);
          }
        }
      } catch (e) {
        await r.close();
        throw e;
      }
      expect = r.endLsid;
      info.endLsid = r.endLsid;
    }
  }
}

/** Total size of the inputs when all are regular files or bytes, else undefined (a pipe's size says nothing). */
async function knownSize(srcs: ByteSource[]): Promise<number | undefined> {
  let total = 0;
  for (const s of srcs) {
    if (s instanceof Uint8Array) { total += s.byteLength; continue; }
    if (typeof s !== 'string' || s === '-') return undefined;
    const st = await stat(s).catch(() => undefined);
    if (!st?.isFile()) return undefined;
    total += st.size;
  }
  return total;
}

/**
 * Whether every source is a path that can be read at offsets: a regular file or a block device
 * (a path that does not exist counts, for the file converter to report). A pipe given by its path
 * (`<(…)`) is read as a stream.
 */
async function allSeekablePaths(srcs: ByteSource[]): Promise<boolean> {
  for (const s of srcs) {
    if (typeof s !== 'string' || s === '-') return false;
    const st = await stat(s).catch(() => undefined);
    if (st && !st.isFile() && !st.isBlockDevice()) return false;
  }
  return true;
}

/** Options of {@link convertWlogs}. */
export interface ConvertOptions {
  /** Write the indexed format (what proxies write) instead of the sorted one. */
  indexed?: boolean;
  /** Codec of each record (default snappy level 0). */
  cmpr?: CompressOpt;
  /** Largest IO in LB (default 2048 = 1 MiB, as the original's `-x 1M`). */
  maxIoBlocks?: number;
  /**
   * Sorted output from streams or bytes: inputs of known size up to this many bytes are converted
   * in memory (default 256 MiB); larger ones go through an intermediate file. Wlog files need
   * neither: they are read twice in place.
   */
  memoryBytes?: number;
  /** Folder for the intermediate file of a sorted conversion from streams (default: the system's temporary folder). */
  tmpDir?: string;
  /** Called with the number of IOs read so far, now and then. */
  onProgress?: (ios: number) => void;
  /** fdatasync an output file before returning, as the original's wlog-to-wdiff does (default false). */
  sync?: boolean;
  /** Write an output file with direct IO (`O_DIRECT`; needs `useDirectWrites`); default false. */
  direct?: boolean;
}

/** Result of {@link convertWlogs}. */
export interface ConvertResult extends WriteSummary, WlogStreamInfo {}

/**
 * Convert consecutive wlogs into one wdiff.
 *
 * Wlog files (paths) are read in place with large reads into reused buffers (see
 * `convert-files.ts`): indexed output after a look at the headers alone, in one pass, images
 * written as they come but without what later IOs overwrite (see `LivePartsBuilder`); sorted output in
 * two passes over the files, the first building the index of what survives (newer overrides older,
 * large IOs split into `maxIoBlocks` pieces), the second reading those pieces back in address
 * order, compressing and writing them. Memory holds the index only, whatever the size of the log.
 *
 * Other sources (stdin, streams, bytes) are read once, as a stream. Indexed output streams: images
 * are written as they come, only the index stays in memory.
 * Sorted output needs the whole log before its first record: logs up to `memoryBytes` are
 * collected, compressed, in memory; larger ones are compressed into a private indexed file (newer overrides older, large IOs split into `maxIoBlocks` pieces, as the original's
 * in-memory diff), which is then written out in address order. Memory holds the index only, so a
 * log of any size converts in bounded memory; the intermediate file takes about the output's size
 * on disk.
 *
 * @throws RangeError when `wlogs` is empty (before anything is written); the readers' typed
 *   errors on corrupt or non-consecutive logs.
 * @example
 * await convertWlogs(['a.wlog', 'b.wlog'], 'ab.wdiff', { indexed: true });
 */
export async function convertWlogs(wlogs: ByteSource[], out: ByteSink, opts: ConvertOptions = {}): Promise<ConvertResult> {
  // The output's uuid comes from the first wlog: with none there is nothing to write.
  if (wlogs.length === 0) throw new RangeError('convertWlogs: no wlog given');
  const info: Partial<WlogStreamInfo> = {};
  const maxIo = opts.maxIoBlocks ?? DEFAULT_INDEXED_MAX_IO_BLOCKS;
  let n = 0;
  const tick = () => { if (++n % 4096 === 0) opts.onProgress?.(n); };
  if (await allSeekablePaths(wlogs)) {
    // Files: read in place, the sorted conversion in two passes over them (see convert-files).
    const paths = wlogs as string[];
    const fopts = { cmpr: opts.cmpr, maxIoBlocks: maxIo, onIo: tick, sync: opts.sync, direct: opts.direct };
    const r = opts.indexed ? await convertFilesIndexed(paths, out, fopts) : await convertFilesSorted(paths, out, fopts);
    opts.onProgress?.(n);
    return r;
  }
  if (opts.indexed) {
    // The first wlog's header gives the uuid; open it before the writer needs it.
    const it = wlogIos(wlogs, info)[Symbol.asyncIterator]();
    const first = await it.next();
    const w = await IndexedDiffWriter.create(out, { uuid: info.uuid, cmpr: opts.cmpr, maxIoBlocks: maxIo, sync: opts.sync, direct: opts.direct });
    const s = await fillThenClose(w, async () => {
      if (!first.done) { await w.write(first.value); tick(); }
      for (let r = await it.next(); !r.done; r = await it.next()) { if (!w.writeNow(r.value)) await w.write(r.value); tick(); }
    });
    opts.onProgress?.(n);
    return { ...s, ...(info as WlogStreamInfo) };
  }
  // Sorted output of logs that fit the memory budget: compress each IO as it comes into an
  // in-memory diff (newer wins, new IOs split into maxIoBlocks pieces), then write it in order.
  const budget = opts.memoryBytes ?? 256 << 20;
  const inputBytes = await knownSize(wlogs);
  if (inputBytes !== undefined && inputBytes <= budget) {
    const c = opts.cmpr ?? DEFAULT_COMPRESS_OPT;
    const mem = new DiffMemory({ maxIoBlocks: maxIo });
    const comp = new OrderedCompressor<undefined>(c.type, c.type === 0 ? 0 : (codecLevel(c.type, c.level) ?? 0), 8 * availableParallelism(), async (_t, io, d) => {
      mem.add(d ? { addr: io.addr, blocks: io.blocks, kind: 'normal', data: { image: { stored: d.stored, cmpr: d.cmpr, blocks: d.blocks, checksum: d.checksum }, offsetLb: 0 } } : io);
    });
    for await (const io of wlogIos(wlogs, info)) { await comp.push(undefined, io); tick(); }
    await comp.flush();
    opts.onProgress?.(n);
    const w = await SortedDiffWriter.create(out, { uuid: info.uuid, cmpr: opts.cmpr, passRaw: true, sync: opts.sync, direct: opts.direct });
    // Piece by piece (a huge discard is one entry in memory, millions of pieces out).
    const s = await fillThenClose(w, async () => { for (const x of mem.values()) if (!w.writeNow(x)) await w.write(x); });
    mem.clear();
    return { ...s, ...(info as WlogStreamInfo) };
  }
  // Larger sorted output: the IOs go through the same in-memory diff as the original's (newer wins, new
  // IOs split into maxIoBlocks pieces), but their data are compressed and written at once to a
  // private indexed file, so memory holds the index only; the file is then laid out in address
  // order, whole images copied without recompression.
  const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'walbjs-convert-'));
  try {
    const tmp = join(dir, 'convert.wdiff');
    const it = wlogIos(wlogs, info)[Symbol.asyncIterator]();
    const first = await it.next();
    const iw = await IndexedDiffWriter.create(tmp, { uuid: info.uuid, cmpr: opts.cmpr, splitOnAdd: maxIo, align: false });
    await fillThenClose(iw, async () => {
      if (!first.done) { await iw.write(first.value); tick(); }
      for (let r = await it.next(); !r.done; r = await it.next()) { if (!iw.writeNow(r.value)) await iw.write(r.value); tick(); }
    });
    opts.onProgress?.(n);
    // Its images were compressed just now, by this conversion.
    const r = await IndexedDiffReader.open(tmp, { ownFile: true });
    try {
      // maxIoBlocks: the intermediate file keeps the ALLZERO and DISCARD IOs on their split grid
      // but whole; the writer cuts them (normal ones are split already).
      const w = await SortedDiffWriter.create(out, { uuid: info.uuid, cmpr: opts.cmpr, passRaw: true, sync: opts.sync, direct: opts.direct, maxIoBlocks: maxIo });
      const s = await fillThenClose(w, async () => { for await (const x of r.ios()) if (!w.writeNow(x)) await w.write(x); });
      return { ...s, ...(info as WlogStreamInfo) };
    } finally {
      await r.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
