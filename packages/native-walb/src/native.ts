/**
 * Loading the native addon: `WALB_NATIVE_PATH` when set, else the `.node` file built beside this
 * package; a clear error lists every place tried and why it failed.
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeLoadError } from './errors.ts';

/** The functions the addon exports. */
export interface NativeAddon {
  /** The WalB checksum of `data` with `salt`. */
  checksum(data: Uint8Array, salt: number): number;
  /**
   * Open `path` and issue ioctl `request` with a copy of `arg` on the thread pool. A 120-byte
   * `arg` is a `walb_ctl`: its `u2k.buf` points at a copy of `u2k`, its `k2u.buf` at a fresh
   * `k2uSize`-byte buffer returned as `k2u`.
   */
  ioctl(path: string, request: number, arg: Uint8Array, u2k?: Uint8Array, k2uSize?: number, openWrite?: number): Promise<{ arg: Buffer; k2u: Buffer; ret: number }>;
  /**
   * A raw snappy block of `data` (the addon's own encoder; any snappy decoder reads it). With
   * `onlyIfSmaller`, null as soon as the block would not be shorter than `data`, with nothing
   * allocated for it.
   */
  snappyCompress(data: Uint8Array, onlyIfSmaller: boolean): Buffer | null;
  /**
   * Bytes from the start of `data` to the first address that is a multiple of `align` (a power of
   * two; else it throws): where a buffer allocated `align` bytes larger holds an aligned one, as
   * direct IO needs (see @walbjs/diff's `useDirectWrites`).
   */
  alignOffset(data: Uint8Array, align: number): number;
  /**
   * The first offset at or after `offset` where the open file `fd` holds data rather than a hole
   * (`lseek` with `SEEK_DATA`); null when only a hole follows up to its end. Where the file system
   * cannot tell, `offset` itself, so a caller reads rather than skips. Moves the descriptor's file
   * position (positional reads do not care). See @walbjs/diff's `useHoleSeek`.
   */
  seekData(fd: number, offset: bigint): bigint | null;
  /**
   * On the thread pool: read `reads` ((fd, pos, len, at) quadruples) into `src`, then store each
   * record `pieces` ((at, len) pairs in `src`) with `codec` (0 none, 2 snappy; raw when snappy does
   * not shrink it), packing compressed records from `dst[0]`; `out` gets 4 words a record
   * (compression type, offset in `dst` or 0xFFFFFFFF for raw in `src`, stored size, salt-0
   * checksum). Ranges are checked before anything starts (`ERR_INVALID_ARG_VALUE`); a failed read
   * rejects with `ERR_WALB_READ` (and `errno`), a file too short with `ERR_WALB_SHORT_READ`.
   * `src`, `dst` and `out` must be distinct and untouched until the promise settles (see
   * @walbjs/diff's `useBatchStore`).
   */
  storeBatch(reads: Float64Array, src: Uint8Array, pieces: Uint32Array, codec: number, dst: Uint8Array, out: Uint32Array): Promise<void>;
  /**
   * A merge of the open wdiffs `fds` (oldest first) into a sorted wdiff written to `out` (its
   * descriptor, and one opened with O_DIRECT or -1), records stored with `codec` (0 none, 2
   * snappy; raw when snappy does not shrink them), output IOs split at `maxIoBlocks` LB (0: not
   * split), the file starting with `prefix` (its header). Starts a writer thread. Bad arguments
   * throw `ERR_INVALID_ARG_VALUE`. See @walbjs/diff's `useNativeMerge`.
   */
  mergeOpen(fds: Uint32Array, out: Float64Array, codec: number, maxIoBlocks: number, prefix: Uint8Array): object;
  /**
   * Queue records of input `input`, in address order after those before: 9 numbers each
   * (address, LB, kind 0/1/2 for normal/all zeros/discard, compression type 0 or 2, image offset,
   * stored size, stored checksum, LB offset in the image, image LB); `ended`: its last. All are
   * checked before any is queued (`ERR_INVALID_ARG_VALUE`); `ERR_INVALID_STATE` while a job runs.
   */
  mergeFeed(merge: object, input: number, recs: Float64Array, ended: boolean): void;
  /**
   * On the thread pool: merge until an input that has not ended has no record queued (0), about
   * `budget` more bytes were written (1), or every record is (2). Rejects with `ERR_WALB_SUM`
   * (`input`, `offset`, `expected`, `actual`), `ERR_WALB_SNAPPY`, `ERR_WALB_SHORT_READ` or
   * `ERR_WALB_READ` (`input`, `offset`, `errno`), `ERR_WALB_WRITE` (`offset`, `errno`).
   */
  mergeRun(merge: object, budget: number): Promise<number>;
  /** `out` gets records, packs and bytes written, then per input the records queued and 1 once it ended. */
  mergeState(merge: object, out: Float64Array): void;
  /** On the thread pool: write the last pack, the END pack and what is pending (not synced). */
  mergeFinish(merge: object): Promise<void>;
  /** On the thread pool: end the merge and its writer thread; its descriptors may be closed once this settles. */
  mergeStop(merge: object): Promise<void>;
  /**
   * On the thread pool: walk up to `buf.length` bytes of a wlog (fewer at its end), its logpacks
   * and their IOs, summing each IO with `salt`, telling all-zero ones apart and storing the others
   * with `codec` (0 none, 2 snappy; raw when snappy does not shrink it) into `dst`; codec 255
   * sums and tells all-zero IOs apart only. Codec 254 reads the headers alone, each into `hdr`
   * (which keeps the block the walk stopped at), walking `state[3]` bytes (up to 2^32 − 1; 0: as
   * many as `buf` holds) and touching neither `buf` nor `dst`: a pack's event is then `[1, offset,
   * lsid low, lsid high, total IO size]` and each record that is not padding, discards included,
   * `[2 | record << 8, offset, address low, address high, LB, 1 for a discard]`. `buf` gets
   * the headers walked, the block the walk stopped at, and the data of the IOs kept raw, each at
   * its offset; its other bytes are unspecified. The stretch is read through a read-only mapping
   * where the descriptor allows one (a SIGBUS handler, installed at the first walk, answers faults
   * in those mappings alone: see the README), else by reads. Large stretches are shared with a
   * helper thread. `state` (8 numbers)
   * holds in: descriptor, byte position, record of `hdr`'s pack to start at (65535: at a header);
   * out, from index 2: that record, events, stop reason (0 the next piece needs more bytes, 1 a
   * header the walk leaves to the caller, 2 `out` or `dst` full), bytes walked, bytes the next
   * piece needs, bytes the file has in the stretch. `hdr` (one physical block) gets each header passed. `out` gets 8
   * words an event: a header `[1, offset]`, an IO `[2 | record << 8, offset, salted sum, 0 / 2 /
   * 0xff (all zero), offset in dst or 0xFFFFFFFF (raw, in buf), stored size, salt-0 sum of the
   * stored bytes]`. The walk only finds bytes: the caller decodes the headers and compares the
   * sums (see @walbjs/diff's `useLogChunkScan`). None of the buffers may overlap or be touched
   * until the promise settles.
   *
   * `post` and `after` ({@link NativeAddon.scanLink}s; not with codec 254) queue a walk behind
   * another: the walk given `post` posts there where it ended, and the one given that link as
   * `after` waits for the post on the thread pool, then walks on from there (its `state[1]` and
   * `state[2]` are replaced with that position and record) when the walk before filled `out` or
   * `dst`, or read its whole buffer and stopped inside a piece after some progress; otherwise
   * (a header left to the caller, the end of the file, an error) it does not run and reports stop
   * reason 3, no event. Both walks share `hdr` (a walk given a link as `after` must pass the
   * `hdr` of the walk that took it as `post`); a link is taken by one walk to post to and waited
   * on by one walk, which cannot be queued behind a link no walk has taken.
   */
  scanLogChunk(state: Float64Array, buf: Uint8Array, hdr: Uint8Array, salt: number, codec: number, dst: Uint8Array, out: Uint32Array, post?: object, after?: object): Promise<void>;
  /** A new link between two walks of a log (see {@link NativeAddon.scanLogChunk}); freed when collected. */
  scanLink(): object;
  /**
   * What later IOs of a log leave visible of each IO (newer wins), for the indexed conversion
   * (see @walbjs/diff's `useLiveParts`): `addrs` and `blocks` hold the IOs in log order (LB
   * address and LB, whole numbers, ending by 2^53); `whole[k]` gets 1 where all of IO `k` is
   * visible, and the others' visible pieces go to `pieces` (at least 4·n numbers) as (address,
   * LB) pairs, those of IO `k` at `pieces[2·start[k] .. 2·start[k+1]]` (`start`: n + 1 numbers).
   * On the thread pool; resolves to the numbers written to `pieces`, none of the arrays touched
   * until then. Bad numbers reject with `ERR_INVALID_ARG_VALUE`, nothing written.
   */
  liveParts(addrs: Float64Array, blocks: Float64Array, whole: Uint8Array, start: Uint32Array, pieces: Float64Array): Promise<number>;
  /**
   * A new, empty index of an indexed wdiff, held by the addon: give it the diff's IOs in write
   * order with {@link NativeAddon.indexAdd}, take its records with {@link NativeAddon.indexEncode}.
   * Freed when collected. See @walbjs/diff's `useNativeIndex`.
   */
  indexNew(): object;
  /**
   * Add the first `count` IOs of `ios` (8 numbers an IO: address and length in LB, kind 0 normal /
   * 1 all zeros / 2 discard, codec, image offset in the file, stored size, image length in LB,
   * stored checksum; the image numbers 0 for an IO without one), each newer than those before: a
   * later IO hides what it overlaps. Returns the visible pieces now. Every IO is checked first;
   * a bad number throws `ERR_INVALID_ARG_VALUE` naming the IO, and nothing is added.
   */
  indexAdd(index: object, ios: Float64Array, count: number): number;
  /**
   * The next index records, at most `max` (1 to 2^20) of them: 48 bytes each, checksummed, in
   * address order, an empty Buffer once all were taken; each visible piece split into
   * power-of-two aligned extents of at most `cap` LB (0 for no cap, else a power of two up to
   * 2^31). Once records were taken no IO can be added (`ERR_INVALID_STATE`).
   */
  indexEncode(index: object, cap: number, max: number): Buffer;
  /**
   * On the thread pool: put the salt-0 WalB checksum of each extent of the open file `fd` (`ext`:
   * (offset, length) pairs, whole numbers under 2^53) in `sums` (one word an extent), on two
   * threads: where they lie in the page cache through 8 MiB mapped windows, else read a 2 MiB
   * slice at a time. A failed read rejects with `ERR_WALB_READ` (and
   * `errno`), a file that ends inside an extent with `ERR_WALB_SHORT_READ`; bad arguments throw
   * `ERR_INVALID_ARG_VALUE` before anything starts. `sums` must be untouched until the promise
   * settles (see @walbjs/diff's `useExtentSums`).
   */
  sumExtents(fd: number, ext: Float64Array, sums: Uint32Array): Promise<void>;
  /**
   * Start writing back the dirty pages of the open descriptor `fd` (a file or block device), on
   * the thread pool, without waiting for them: `sync_file_range(SYNC_FILE_RANGE_WRITE)` over the
   * whole file. Nothing is made durable (that takes `fdatasync`). A refusal rejects with
   * `ERR_WALB_WRITEBACK` and its `errno`. See @walbjs/diff's `useWritebackStart`.
   */
  startWriteback(fd: number): Promise<void>;
  /**
   * On the thread pool: check and write `pieces` of wdiffs ((file, source offset or -1 for zeros,
   * length, target offset or -1 to only check, salt-0 checksum or -1) quintuples, `file` an index
   * into `srcs`, their open descriptors) to the open target `dst`. Pieces are read a 2 MiB slice
   * at a time; each one with a checksum is checked before anything of its slice is written (a
   * piece larger than a slice is read through twice), and pieces that follow on in both files go
   * out in one write. `state` (2 numbers) gets the pieces finished and, after a rejection with
   * `ERR_WALB_SUM`, the sum the failing piece has. Failed reads reject with `ERR_WALB_READ`, a
   * source that ends inside a piece with `ERR_WALB_SHORT_READ`, failed writes with
   * `ERR_WALB_WRITE` (each with `errno`); bad arguments throw `ERR_INVALID_ARG_VALUE` before
   * anything starts (see @walbjs/diff's `useCopyPieces`).
   */
  copyPieces(srcs: Uint32Array, dst: number, pieces: Float64Array, state: Float64Array): Promise<void>;
  /**
   * On the thread pool: ask the kernel to read the (offset, length) pairs of `ranges` of the open
   * file `fd` into the page cache (`posix_fadvise` with `POSIX_FADV_WILLNEED`), without waiting
   * for the reads (an empty range asks for nothing; a batch whose sampled pages are all cached is
   * left alone); rejects with `ERR_WALB_PREFETCH` (`errno`) when the kernel refuses (see
   * @walbjs/diff's `usePrefetch`).
   */
  prefetchRanges(fd: number, ranges: Float64Array): Promise<void>;
  /**
   * On the thread pool: give back the (offset, length) pairs of `ranges` (bytes, whole numbers
   * under 2^53) of the open `fd`, in order, one system call each: a hole punched in a file with
   * its size kept (`fallocate` with `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`), or with
   * `isBlock` a discard of the block device (the `BLKDISCARD` ioctl; the descriptor must be open
   * to write, and may be held exclusively). An empty range is passed over. The first range the
   * kernel refuses rejects with `ERR_WALB_PUNCH` and its `errno`, `index`, `offset` and `length`
   * (the ranges before it are done); bad arguments throw `ERR_INVALID_ARG_VALUE` before anything
   * starts (see @walbjs/diff's `usePunchHoles`).
   */
  punchHoles(fd: number, ranges: Float64Array, isBlock: boolean): Promise<void>;
  /** The addon's version. */
  version(): string;
  /** Panics inside the addon on purpose: shows that a panic reaches JS as an Error. */
  panicForTest(): never;
  /** Open (and redo) a userspace capture device (see `CaptureDevice`). */
  captureOpen(ldev: string, ddev: string, errorBeforeOverflow: boolean, checkpointMs: number, maxPackKb: number): Promise<object>;
  /** Serve a capture device over NBD on a unix socket or TCP. */
  captureServe(handle: object, unix: boolean, address: string, exportName: string): { server: object; address: string };
  /** Stop accepting NBD connections. */
  captureStopServer(server: object): void;
  /** The device's lsids. */
  captureLsids(handle: object): NativeLsids;
  /** Free the log below `lsid`. */
  captureSetOldest(handle: object, lsid: bigint): Promise<void>;
  /** Write the checkpoint now. */
  captureCheckpoint(handle: object): Promise<void>;
  /** Freeze or melt write IO. */
  captureFreeze(handle: object, frozen: boolean): void;
  /** Finish queued writes, checkpoint, stop. */
  captureClose(handle: object): Promise<void>;
  /** Clear the log: new uuid and salt, every lsid 0. */
  captureClearLog(handle: object): Promise<void>;
  /** Whether a capture device holds the lock of `path` (its log or data device). */
  captureInUse(path: string): Promise<boolean>;
  /** Read a sysfs attribute, wait for its change notification; its new content, or null on timeout. */
  waitSysfsChange(path: string, timeoutMs: number): Promise<string | null>;
}

/** Lsids and flags of a capture device as the addon reports them. */
export interface NativeLsids {
  latest: bigint; completed: bigint; permanent: bigint; written: bigint; prevWritten: bigint; oldest: bigint;
  ringBufferSize: bigint; overflow: boolean; frozen: boolean;
}

const require = createRequire(import.meta.url);
let loaded: NativeAddon | undefined;

/** File name `napi build --platform` gives the addon on this machine. */
export function nativeFileName(): string {
  const abi = process.platform === 'linux' ? (isMusl() ? '-musl' : '-gnu') : '';
  return `walb-native.${process.platform}-${process.arch}${abi}.node`;
}

function isMusl(): boolean {
  // ldd says which C library it belongs to; reading it costs far less than the diagnostic report
  // (about 15 ms at every start of a CLI), which is asked only where there is no ldd.
  try {
    const ldd = readFileSync('/usr/bin/ldd', 'latin1');
    if (ldd.includes('musl')) return true;
    if (ldd.includes('GNU C Library') || ldd.includes('glibc')) return false;
  } catch { /* no ldd: ask the report */ }
  const r = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return !r?.header?.glibcVersionRuntime;
}

/** Where the addon is looked for, in order. */
export function nativeCandidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const pkg = resolve(here, '..'); // src/ or dist/ sit one level below the package
  const out: string[] = [];
  if (process.env.WALB_NATIVE_PATH) out.push(resolve(process.env.WALB_NATIVE_PATH));
  out.push(join(pkg, nativeFileName()));
  return out;
}

/**
 * The native addon, loaded once.
 *
 * @throws {@link NativeLoadError} listing every path tried and its cause.
 */
export function loadNative(): NativeAddon {
  if (loaded) return loaded;
  const tried: Array<{ path: string; cause: string }> = [];
  for (const p of nativeCandidates()) {
    if (!existsSync(p)) { tried.push({ path: p, cause: 'no such file' }); continue; }
    try {
      loaded = require(p) as NativeAddon;
      return loaded;
    } catch (e) {
      tried.push({ path: p, cause: (e as Error).message.split('\n')[0] });
    }
  }
  throw new NativeLoadError(tried);
}
