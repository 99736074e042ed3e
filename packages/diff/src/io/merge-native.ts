/**
 * The merge of wdiff files into a sorted wdiff (codec none or snappy) done by an external
 * implementation (the native addon's `merge*` functions, see `useNativeMerge`): the inputs'
 * headers (pack headers, or indexes) are decoded here with the readers' decoders and checks and
 * their records handed over in address order, a chunk at a time; the implementation works out
 * the merge, reads and checks the stored images, compresses and packs the records and writes the
 * file, off this thread. The output is placed as every file output is (a temporary file renamed
 * at the end).
 *
 * Where it does not apply (no implementation, an indexed output, another codec, an output that is
 * not a regular file, an input that is not one), the streaming merge runs instead; so it does,
 * from the start, when a record stored with another codec (or one the readers alone judge) turns
 * up halfway.
 *
 * Why: on two cores the merge on the JS thread (reading, copying, trying snappy, summing, packing)
 * was the bound, not the disk: 0.78× walb-tools' wdiff-merge with the outputs on a tmpfs.
 *
 * @module
 */
import { closeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { constants } from 'node:fs';
import {
  LOGICAL_BLOCK_SIZE, commitOutput, discardOutput, isStreamPath, locateIoError, openPlace, placeOutput, type ByteSink, type OutputPlace,
} from '@walbjs/log-format';
import { CompressionType, DEFAULT_COMPRESS_OPT } from '../compression.ts';
import { WALB_DIFF_TYPE_INDEXED, WALB_DIFF_TYPE_SORTED } from '../constants.ts';
import { ChecksumError, TruncatedError } from '../errors.ts';
import { CodecError } from '../codec/errors.ts';
import { recordKind } from '../layout/diff-record.ts';
import { encodeDiffFileHeader, makeDiffFileHeader } from '../layout/file-header.ts';
import { IndexedDiffReader } from './indexed-reader.ts';
import type { MergeFilesOptions } from './merge-files.ts';
import { sortedRecordsOf } from './sorted-records.ts';
import type { WriteSummary } from './sorted-writer.ts';
import { openWdiffFile, type WdiffFile } from './wdiff-file.ts';

/**
 * The functions of an external merge: the native addon's `merge*`, whose descriptions give the
 * details (a merge handle; records fed per input, 9 numbers each; runs that stop when an input
 * needs records (0), after about `budget` bytes (1) or at the end (2); the state as records,
 * packs, bytes, then per input the records queued and whether it ended).
 */
export interface NativeMergeFns {
  mergeOpen(fds: Uint32Array, out: Float64Array, codec: number, maxIoBlocks: number, prefix: Uint8Array): object;
  mergeFeed(merge: object, input: number, recs: Float64Array, ended: boolean): void;
  mergeRun(merge: object, budget: number): Promise<number>;
  mergeState(merge: object, out: Float64Array): void;
  mergeFinish(merge: object): Promise<void>;
  mergeStop(merge: object): Promise<void>;
}

/**
 * Numbers per record handed over: address, LB, kind (0 normal, 1 all zeros, 2 discard),
 * compression type, offset of the stored image in its file, stored size, stored checksum, LB
 * offset of the record in its image, image LB.
 */
export const REC_NUMBERS = 9;

let impl: NativeMergeFns | undefined;

/**
 * Merge into sorted wdiffs with `fns` (the native addon: `useNativeMerge(loadNative())`) where it
 * applies (see the module); `undefined` goes back to the streaming merge alone.
 *
 * @example
 * import { loadNative } from '@walbjs/native-walb';
 * useNativeMerge(loadNative());
 */
export function useNativeMerge(fns: NativeMergeFns | undefined): void {
  impl = fns;
}

/**
 * Records handed over at a time per input (an input is fed again below half of it): at most
 * 16,384, fewer with many inputs, so that what waits in both places (about 120 bytes a record)
 * stays near 30 MiB whatever their number.
 */
const CHUNK_MAX = 16384;
const RECORDS_HELD = 1 << 18;
const CHUNK_MIN = 256;
/** Bytes written between two looks at the progress. */
const BUDGET = 64 << 20;

/** A record the external merge leaves to the streaming one (another codec, odd sizes). */
class NotHere extends Error {}

/** The records of one input, a chunk at a time. */
type Feeder = () => { recs: Float64Array; ended: boolean };

function sortedFeeder(f: WdiffFile, source: string, chunk: number): Feeder {
  const it = sortedRecordsOf(f.fd, f.size, source);
  return () => {
    const q = new Float64Array(chunk * REC_NUMBERS);
    let n = 0;
    for (; n < chunk; n++) {
      const r = it.next();
      if (r.done) return { recs: q.subarray(0, n * REC_NUMBERS), ended: true };
      const { record: x, dataOffset } = r.value;
      put(q, n, x.ioAddress, x.ioBlocks, x.flags, x.compressionType, dataOffset, x.dataSize, x.checksum, 0, x.ioBlocks);
    }
    return { recs: q, ended: false };
  };
}

function indexedFeeder(r: IndexedDiffReader, chunk: number): Feeder {
  let i = 0;
  return () => {
    const n = Math.min(chunk, r.size - i);
    const q = new Float64Array(n * REC_NUMBERS);
    for (let k = 0; k < n; k++, i++) {
      const x = r.record(i);
      put(q, k, x.ioAddress, x.ioBlocks, x.flags, x.compressionType, x.dataOffset, x.dataSize, x.ioChecksum, x.ioOffset, x.origBlocks);
    }
    return { recs: q, ended: i >= r.size };
  };
}

/** Write record `k` into `q`; a normal record the external merge does not take throws {@link NotHere}. */
function put(q: Float64Array, k: number, addr: number, blocks: number, flags: number, cmpr: number, off: number, size: number, sum: number, ioOff: number, imgBlocks: number): void {
  const kind = recordKind(flags);
  const o = k * REC_NUMBERS;
  q[o] = addr;
  q[o + 1] = blocks;
  if (kind !== 'normal') {
    q[o + 2] = kind === 'allzero' ? 1 : 2;
    return;
  }
  const bytes = imgBlocks * LOGICAL_BLOCK_SIZE;
  if ((cmpr !== CompressionType.NONE && cmpr !== CompressionType.SNAPPY) || ioOff + blocks > imgBlocks || bytes > 0xffffffff || (cmpr === CompressionType.NONE && size !== bytes)) throw new NotHere();
  q[o + 3] = cmpr;
  q[o + 4] = off;
  q[o + 5] = size;
  q[o + 6] = sum;
  q[o + 7] = ioOff;
  q[o + 8] = imgBlocks;
}

/**
 * Merge `inputs` into the sorted wdiff at `out` with the external merge; undefined, with nothing
 * left behind, where it does not apply (see the module).
 *
 * @throws the readers' typed errors for corrupt inputs, the output keeping what it had.
 * @internal
 */
export async function mergeNatively(inputs: string[], out: ByteSink, opts: MergeFilesOptions): Promise<WriteSummary | undefined> {
  const fns = impl;
  const type = (opts.cmpr ?? DEFAULT_COMPRESS_OPT).type;
  if (!fns || opts.indexed || (type !== CompressionType.NONE && type !== CompressionType.SNAPPY) || typeof out !== 'string' || out === '-') return undefined;
  const files: WdiffFile[] = [];
  const readers: IndexedDiffReader[] = [];
  let place: OutputPlace | undefined;
  let fh: FileHandle | undefined;
  let dfh: FileHandle | undefined;
  let merge: object | undefined;
  let done = false;
  try {
    for (const p of inputs) {
      const f = openWdiffFile(p);
      if (f) files.push(f);
      if (f === undefined || (f.header.type !== WALB_DIFF_TYPE_SORTED && f.header.type !== WALB_DIFF_TYPE_INDEXED)) return undefined;
    }
    const feeders: Feeder[] = [];
    const chunk = Math.max(CHUNK_MIN, Math.min(CHUNK_MAX, Math.floor(RECORDS_HELD / files.length)));
    const low = chunk / 2;
    for (const [k, f] of files.entries()) {
      if (f.header.type === WALB_DIFF_TYPE_SORTED) { feeders.push(sortedFeeder(f, inputs[k], chunk)); continue; }
      const r = await IndexedDiffReader.open(inputs[k]);
      readers.push(r);
      feeders.push(indexedFeeder(r, chunk));
    }
    // The first chunk of each input before the output exists: most inputs the external merge does
    // not take show it in their first record.
    const first = feeders.map((f) => f());
    // A pipe is not opened here: its reader would see this open's close as the end of the output.
    if (await isStreamPath(out)) return undefined;
    ({ fh, place } = await openPlace(await placeOutput(out)));
    if (!(await fh.stat()).isFile()) return undefined;
    if (opts.direct) dfh = await open(place.writePath, constants.O_WRONLY | constants.O_DIRECT).catch(() => undefined);
    const header = encodeDiffFileHeader(makeDiffFileHeader(WALB_DIFF_TYPE_SORTED, files[files.length - 1].header.uuid));
    merge = fns.mergeOpen(Uint32Array.from(files, (f) => f.fd), Float64Array.of(fh.fd, dfh?.fd ?? -1), type, opts.maxIoBlocks ?? 0, header);
    const m = merge;
    const state = new Float64Array(3 + 2 * files.length);
    const ended = first.map((c) => c.ended);
    first.forEach((c, i) => fns.mergeFeed(m, i, c.recs, c.ended));
    // Each input's next chunk is decoded while the merge runs, and handed over when it returns.
    const next: Array<{ recs: Float64Array; ended: boolean } | undefined> = files.map(() => undefined);
    for (;;) {
      const run = fns.mergeRun(m, BUDGET);
      // A decoding failure below leaves the run unawaited: its own failure must not go unhandled.
      run.catch(() => {});
      for (let i = 0; i < files.length; i++) if (!ended[i] && !next[i]) next[i] = feeders[i]();
      const step = await run;
      if (step === 2) break;
      fns.mergeState(m, state);
      if (step === 1) opts.onProgress?.(state[0]);
      for (let i = 0; i < files.length; i++) {
        const c = next[i];
        if (ended[i] || !c || state[3 + 2 * i] >= low) continue;
        next[i] = undefined;
        ended[i] = c.ended;
        fns.mergeFeed(m, i, c.recs, c.ended);
      }
    }
    await fns.mergeFinish(m);
    fns.mergeState(m, state);
    if (opts.sync) await fh.datasync().catch((e: unknown) => { throw locateIoError(e, out, 'sync'); });
    await closeAll();
    await commitOutput(place, opts.sync ?? false);
    done = true;
    return { records: state[0], packs: state[1], bytes: state[2] };
  } catch (e) {
    if (e instanceof NotHere) return undefined;
    throw located(e, inputs, files.map((f) => f.header.type === WALB_DIFF_TYPE_INDEXED), out);
  } finally {
    if (!done) {
      await closeAll().catch(() => {});
      if (place) await discardOutput(place);
    }
    await Promise.all(readers.map((r) => r.close()));
    for (const f of files) closeSync(f.fd);
  }

  async function closeAll(): Promise<void> {
    // The writer thread ends before its descriptors close.
    if (merge) { const m = merge; merge = undefined; await fns!.mergeStop(m); }
    const hs = [dfh, fh];
    dfh = fh = undefined;
    for (const h of hs) await h?.close();
  }
}

/**
 * The typed error of a failed external merge, placed in the input (or output) it concerns, in the
 * readers' words (`indexed`: which inputs are indexed).
 */
function located(e: unknown, inputs: string[], indexed: boolean[], out: string): unknown {
  const x = e as { code?: string; input?: number; offset?: number; expected?: number; actual?: number; stored?: number; size?: number; errno?: number; message?: string };
  const source = x.input !== undefined ? inputs[x.input] : undefined;
  switch (x.code) {
    case 'ERR_WALB_SUM': return new ChecksumError(indexed[x.input!] ? 'image checksum' : 'wdiff record data checksum', x.expected!, x.actual!, { offset: x.offset, source });
    case 'ERR_WALB_SNAPPY': return new CodecError({ codec: 'snappy', type: CompressionType.SNAPPY, operation: 'decompress', inputSize: x.stored, origSize: x.size }, x.message ?? '', { offset: x.offset, source });
    case 'ERR_WALB_SHORT_READ': return new TruncatedError('the input ended inside a record\'s data', { offset: x.offset, source });
    case 'ERR_WALB_READ':
    case 'ERR_WALB_WRITE': {
      const name = Object.entries(osConstants.errno).find(([, v]) => v === x.errno)?.[0] ?? 'EIO';
      const write = x.code === 'ERR_WALB_WRITE';
      const sys = Object.assign(new Error(`${name}: ${x.message}`), { code: name, errno: -(x.errno ?? 5), syscall: write ? 'write' : 'read' });
      return locateIoError(sys, write ? out : source ?? inputs.join(', '), write ? 'write' : 'read', x.offset);
    }
    default: return e;
  }
}
