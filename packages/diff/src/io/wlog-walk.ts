/**
 * The wlog scan with its byte work on the thread pool: an external walk (the native addon's
 * `scanLogChunk`) reads a stretch of the log, passes its logpacks, sums each IO's data with the
 * log's salt, tells all-zero IOs apart and stores the others with the conversion's codec, in one
 * request per stretch. This thread then only decodes the headers the walk passed and hands out
 * the IOs; the next stretch is walked meanwhile.
 *
 * The walk is trusted with finding bytes only. Every header it passed is decoded here with
 * log-format's decoder (every check of the JavaScript scan, same typed errors at the same
 * offsets), every sum is compared here with its record, and wherever the walk stops at something
 * it does not handle (the end marker, an empty pack, a corrupt block, the end of the file), this
 * thread decides, as the JavaScript scan does.
 *
 * @module
 */
import type { FileHandle } from 'node:fs/promises';
import {
  ChecksumError as LogChecksumError, LOGICAL_BLOCK_SIZE, TruncatedError as LogTruncatedError, WALBLOG_HEADER_SIZE,
  allocReadBuffer, capacityPb, decodeLogpackHeader, isEndMarker, nextLogpackLsid,
  type LogpackHeader, type WlogHeader,
} from '@walbjs/log-format';
import { CompressionType } from '../compression.ts';
import { ValueOutOfRangeError } from '../errors.ts';
import { SCAN_ALLZERO, SCAN_DISCARD, SCAN_NORMAL, decodePackAt, ioAddress, setDiscard, type ScanIo, type WlogScanHooks, type WlogScanInfo, type WlogWalkEnd } from './scan-io.ts';

/**
 * Walk up to `buf.length` bytes of a wlog (the native addon's `scanLogChunk`; see its
 * description for `state`, `hdr`, what `buf` gets and the events in `out`). Resolves when
 * `state` and `out` hold the outcome; none of the buffers may be touched until then. With
 * `post`, the walk posts where it ended to that link; with `after`, it first waits for the post
 * of the walk before it and starts where that one ended (`state[1]` and `state[2]` then say
 * where), or does not run (stop reason 3) when that one ended where the caller must decide.
 */
export type LogChunkScanFn = (state: Float64Array, buf: Uint8Array, hdr: Uint8Array, salt: number, codec: number, dst: Uint8Array, out: Uint32Array, post?: object, after?: object) => Promise<void>;

let impl: LogChunkScanFn | undefined;
let newLink: (() => object) | undefined;

/**
 * Let wlog conversions walk their logs with `fn` (the native addon's `scanLogChunk`): the reads,
 * checksums and compression of the IOs run on the thread pool. Its snappy bytes are its own
 * encoder's: use it with the same addon's encoder (`useSnappyEncoder`) so every path writes the
 * same bytes. `undefined` goes back to the JavaScript scan.
 *
 * With `link` (the addon's `scanLink`), each walk has the next one queued behind it, which starts
 * the moment it ends, where it ended, instead of after this thread has seen the end: on the
 * development machine the waits for this thread were a fifth of a compressible log's conversion.
 * Where 256 MiB or more of a file is left to walk, that costs one more walk's buffers.
 *
 * @example
 * import { loadNative } from '@walbjs/native-walb';
 * useLogChunkScan(loadNative().scanLogChunk, loadNative().scanLink);
 */
export function useLogChunkScan(fn: LogChunkScanFn | undefined, link?: () => object): void {
  impl = fn;
  newLink = fn && link;
}

/**
 * The walk's codec asking for sums and all-zero tests only: normal IOs are handed out with
 * neither `data` nor `stored` (a consumer that reads them again later, as the sorted conversion's
 * first pass).
 */
export const WALK_SUMS_ONLY = 0xff;

/** The walk's codec asking for the headers alone (see {@link walkWlogHeaders}). */
export const WALK_HEADERS_ONLY = 0xfe;

/** The walk in use for codec `type`, if any (it stores with none and snappy, sums only, or reads headers only). */
export function logChunkScanFor(type: number): LogChunkScanFn | undefined {
  return type === CompressionType.NONE || type === CompressionType.SNAPPY || type === WALK_SUMS_ONLY || type === WALK_HEADERS_ONLY ? impl : undefined;
}

/**
 * Bytes per walk (read 2 MiB at a time inside it): fewer trips to the thread pool. A 512 MiB
 * compressible log converted in 0.218–0.224 s against 0.242–0.280 s with walks of 2 MiB.
 */
const CHUNK = 8 << 20;
/** Bytes left to walk from which a walk queued behind another may take a third walk's buffers. */
const THIRD_SLOT_FROM = 32 * CHUNK;
/** Events one walk may report: an IO per LB of the stretch, and its headers. */
const EVENTS = 2 * (CHUNK / LOGICAL_BLOCK_SIZE);
const EVENT_WORDS = 8;
const EV_PACK = 1;
const ALL_ZERO = 0xff;
/** A walk's starting record meaning "at a header". */
const AT_HEADER = 0xffff;
const STOP_NEED_MORE = 0;
const STOP_HEADER = 1;
const STOP_FULL = 2;
/** A walk queued behind another that did not run: that one ended where this thread decides. */
const STOP_NOT_STARTED = 3;
const NO_BYTES = Buffer.alloc(0);
/** Bytes a walk of headers alone goes (it reads one block a pack): as far as 32-bit offsets reach. */
const HEADERS_STRETCH = 2 ** 32 - 1;

/** The memory of one walk. */
interface Slot {
  buf: Buffer;
  dst: Buffer;
  out: Uint32Array;
  state: Float64Array;
  /** What the walk posts where it ended to, for the walk queued behind it. */
  link: object | undefined;
}

/**
 * Walk one wlog file (its header `h` read) from its first logpack to its end marker, handing each
 * IO to `hooks.io` with its stored form under `codec`; returns where it ended (the wlog's header
 * at byte `from`).
 */
export async function walkWlogFile(walk: LogChunkScanFn, codec: number, fh: FileHandle, fi: number, path: string, h: WlogHeader, io: ScanIo, hooks: WlogScanHooks, info: WlogScanInfo, from = 0, size = -1): Promise<WlogWalkEnd> {
  const pbs = h.physicalBs;
  const salt = h.logChecksumSalt;
  const hdr = Buffer.alloc(pbs);
  const spare: Slot[] = [];
  /** Walk slots of CHUNK bytes made (a queued walk may take a third). */
  let chunkSlots = 0;
  const slotOf = (bytes: number): Slot => {
    if (bytes <= CHUNK) {
      const s = spare.pop();
      if (s) return s;
      bytes = CHUNK;
      chunkSlots++;
    }
    // Only snappy stores into dst.
    const dst = codec === CompressionType.SNAPPY ? Buffer.allocUnsafeSlow(bytes) : Buffer.alloc(0);
    return { buf: allocReadBuffer(bytes), dst, out: new Uint32Array(EVENTS * EVENT_WORDS), state: new Float64Array(8), link: undefined };
  };
  const give = (s: Slot): void => { if (s.buf.byteLength === CHUNK) spare.push(s); };
  const link = newLink;
  /** Start a walk of `s` at byte `at`, record `rec`; or, `after` a running walk, where that one ends. */
  const start = (s: Slot, at: number, rec: number, after?: Slot): Promise<void> => {
    s.state[0] = fh.fd;
    s.state[1] = at;
    s.state[2] = rec;
    s.link = link?.();
    const p = after ? walk(s.state, s.buf, hdr, salt, codec, s.dst, s.out, s.link, after.link) : walk(s.state, s.buf, hdr, salt, codec, s.dst, s.out, s.link);
    p.catch(() => {});
    return p;
  };

  let lsid = h.beginLsid;
  /** The pack being walked, and its next record to hand out. */
  let header: LogpackHeader | undefined;
  let ri = 0;

  const decodeAt = (buf: Buffer, off: number, offset: number): LogpackHeader => decodePackAt(buf, off, pbs, salt, lsid, offset, path);
  /** Hand out the records before `upTo` that carry no data the walk reports (discards; padding is skipped). */
  const passTo = (upTo: number): void => {
    for (; ri < upTo; ri++) {
      const rec = header!.records[ri];
      if ((rec.flags & 4) !== 0) {
        setDiscard(io, rec, fi, path);
        info.ios++;
        hooks.io(io);
      } else if ((rec.flags & 2) === 0) {
        throw new Error(`wlog walk: record ${ri} of the pack at lsid ${header!.logpackLsid} was passed over (${path})`);
      }
    }
  };
  /** Close the current pack: all its records handed out, the lsid moved past it. */
  const endPack = (): void => {
    if (!header) return;
    passTo(header.records.length);
    lsid = nextLogpackLsid(header);
    header = undefined;
  };

  let pos = from + WALBLOG_HEADER_SIZE;
  let cur = slotOf(CHUNK);
  let curP: Promise<void> | undefined = start(cur, pos, AT_HEADER);
  let next: Slot | undefined;
  let nextP: Promise<void> | undefined;
  /**
   * With links, the walk queued behind the running one (`cur`'s, then `next`'s). It takes new
   * buffers (the second walk's at the start, a third's) only where enough of the file is left to
   * walk: that fresh memory costs about as much as the waits it saves over 30 walks (a 135 MiB
   * random log converted to indexed in 0.122 against 0.104 s with a third, 0.123 against 0.119 s
   * with the second queued at the start; a 518 MiB compressible one in 0.127 against 0.134 s);
   * else it is queued only when a slot is spare.
   */
  let queued: Slot | undefined;
  let queuedP: Promise<void> | undefined;
  const queueBehind = (s: Slot): void => {
    if (!link || queued) return;
    // New buffers for it (a second walk's early, a third's) only pay over many stretches.
    if (spare.length === 0 && (chunkSlots >= 3 || size < 0 || size - pos < THIRD_SLOT_FROM)) return;
    queued = slotOf(CHUNK);
    queuedP = start(queued, 0, 0, s);
  };
  /**
   * Take back the queued walk after the one before it ended where this thread decides: it must
   * not have run (it would have walked on into `hdr` from where this thread does not go).
   */
  const unqueue = async (): Promise<void> => {
    const q = queued!;
    await queuedP;
    queued = queuedP = undefined;
    if (q.state[4] !== STOP_NOT_STARTED) throw new Error(`wlog walk: the walk queued behind the one at offset ${pos} ran where this thread stops (${path})`);
    give(q);
  };
  /** Position of the last walk that passed nothing (a second one there is a fault). */
  let stuckAt = -1;
  try {
    queueBehind(cur);
    for (;;) {
      await curP;
      curP = undefined;
      const st = cur.state;
      // Queued behind a walk that the addon saw end where this thread saw it go on, or started
      // elsewhere: the two disagree on where the log goes on.
      if (st[4] === STOP_NOT_STARTED) throw new Error(`wlog walk: the walk queued at offset ${pos} did not run where this thread goes on (${path})`);
      if (st[1] !== pos) throw new Error(`wlog walk: a walk started at offset ${st[1]}, not ${pos} (${path})`);
      const nextRec = st[2], events = st[3], stop = st[4], consumed = st[5], read = st[7];
      const end = pos + consumed;
      // Walk on at once where nothing needs deciding here: the walk queued behind this one has
      // started already.
      if (stop === STOP_FULL || (stop === STOP_NEED_MORE && consumed > 0 && read === cur.buf.byteLength)) {
        if (queued) {
          next = queued;
          nextP = queuedP;
          queued = queuedP = undefined;
        } else {
          next = slotOf(CHUNK);
          nextP = start(next, end, nextRec);
        }
        queueBehind(next);
      } else if (queued) {
        // It does not run: this thread decides first.
        await unqueue();
      }
      const { buf, out, dst } = cur;
      for (let e = 0; e < events; e++) {
        const w = e * EVENT_WORDS;
        const off = out[w + 1];
        if ((out[w] & 0xff) === EV_PACK) {
          endPack();
          header = decodeAt(buf, off, pos + off);
          ri = 0;
          continue;
        }
        const r = out[w] >>> 8;
        if (!header || r < ri || r >= header.records.length) throw new Error(`wlog walk: an IO event for record ${r} out of place (${path}, offset ${pos + off})`);
        passTo(r);
        const rec = header.records[ri];
        if ((rec.flags & 6) !== 0) throw new Error(`wlog walk: record ${r} has no data to report (${path}, offset ${pos + off})`);
        const sum = out[w + 2];
        if (sum !== rec.checksum) {
          throw new LogChecksumError('log record data checksum', rec.checksum, sum, { offset: pos + off, lsid: rec.lsid, source: path });
        }
        io.addr = ioAddress(rec, path); io.blocks = rec.ioSize; io.file = fi; io.filePos = pos + off;
        const cmpr = out[w + 3];
        if (cmpr === ALL_ZERO) {
          io.kind = SCAN_ALLZERO; io.data = undefined; io.csum0 = 0; io.stored = undefined;
        } else {
          io.kind = SCAN_NORMAL; io.csum0 = (sum + salt) >>> 0;
          // The walk leaves in `buf` only the data it kept raw.
          if (codec === WALK_SUMS_ONLY) {
            io.data = undefined;
            io.stored = undefined;
          } else if (cmpr === CompressionType.NONE) {
            const data = buf.subarray(off, off + rec.ioSize * LOGICAL_BLOCK_SIZE);
            io.data = data;
            io.stored = { cmpr, stored: data, checksum: out[w + 6] };
          } else {
            io.data = undefined;
            io.stored = { cmpr, stored: dst.subarray(out[w + 4], out[w + 4] + out[w + 5]), checksum: out[w + 6] };
          }
        }
        info.ios++;
        hooks.io(io);
        ri++;
      }
      // Records the walk passed after its last event.
      if (header) passTo(Math.min(nextRec, header.records.length));
      // Decide here where the walk could not, while its buffer is still ours.
      /** Offset just past the end marker, once reached. */
      let ended = -1;
      let need = 0;
      if (!next) {
        if (stop === STOP_HEADER) {
          endPack();
          const hd = decodeAt(buf, consumed, end);
          if (isEndMarker(hd)) ended = end + pbs;
          // An empty pack: one block, the same lsid.
          else lsid = nextLogpackLsid(hd);
        } else if (read < cur.buf.byteLength) {
          const left = read - consumed;
          if (!header || ri >= header.records.length) {
            if (left === 0) throw new LogTruncatedError('input ended without the end marker', { offset: end, source: path, lsid });
            throw new LogTruncatedError(`logpack header: needed ${pbs} bytes, input ended after ${left}`, { offset: end, source: path });
          }
          const rec = header.records[ri];
          const what = `data of lsid ${rec.lsid}: needed ${capacityPb(pbs, rec.ioSize) * pbs} bytes, input ended`;
          if (left === 0) throw new LogTruncatedError(what, { offset: end, source: path, lsid: header.logpackLsid });
          throw new LogTruncatedError(`${what} after ${left}`, { offset: end, source: path });
        } else {
          // A piece larger than the stretch: its size is known from the decoded header.
          if (consumed > 0 || stuckAt === end || !header || ri >= header.records.length) throw new Error(`wlog walk: stopped without progress at offset ${end} of ${path}`);
          stuckAt = end;
          need = capacityPb(pbs, header.records[ri].ioSize) * pbs;
        }
      }
      const done = cur;
      await hooks.chunkDone(() => give(done));
      // The slot just given back (when it was at once) takes the walk after the running one.
      if (next) queueBehind(next);
      if (ended >= 0) return { lsid, end: ended };
      if (next) {
        pos = end;
        cur = next;
        curP = nextP;
        next = undefined;
        nextP = undefined;
      } else if (stop === STOP_HEADER) {
        pos = end + pbs;
        cur = slotOf(CHUNK);
        curP = start(cur, pos, AT_HEADER);
        queueBehind(cur);
      } else {
        pos = end;
        cur = slotOf(need);
        curP = start(cur, pos, nextRec);
        queueBehind(cur);
      }
    }
  } finally {
    // No walk may still read the file when the caller closes it (the one queued last ends when
    // the one before it does).
    await curP?.catch(() => {});
    await nextP?.catch(() => {});
    await queuedP?.catch(() => {});
  }
}

/**
 * Walk one wlog file (its header `h` read) reading its pack headers alone, handing each IO with
 * data (as normal, with neither `data` nor `stored`) and each discard to `hooks.io`, in log order;
 * returns where it ended (the wlog's header at byte `from`). For a first look at a log (where its IOs lie): the addon's
 * walk reads one block a pack and reports the records' places itself, and nothing is decoded here
 * but the blocks it stops at (the end marker, an empty pack). Nothing is checked beyond that: no
 * record checksum, no lsid. Where the walk stops short of the end marker at anything else (a block
 * that is not a logpack, the end of the file), this throws, and the look ends there: the pass that
 * reads the data finds what is wrong.
 */
export async function walkWlogHeaders(walk: LogChunkScanFn, fh: FileHandle, fi: number, path: string, h: WlogHeader, io: ScanIo, hooks: WlogScanHooks, info: WlogScanInfo, from = 0): Promise<WlogWalkEnd> {
  const pbs = h.physicalBs;
  const hdr = Buffer.alloc(pbs);
  const state = new Float64Array(8);
  const out = new Uint32Array(EVENTS * EVENT_WORDS);
  let lsid = h.beginLsid;
  let pos = from + WALBLOG_HEADER_SIZE;
  let rec = AT_HEADER;
  for (;;) {
    state[0] = fh.fd;
    state[1] = pos;
    state[2] = rec;
    // As far as the file goes (up to 4 GiB), in one trip unless `out` fills: the walk reads into `hdr` alone.
    state[3] = HEADERS_STRETCH;
    await walk(state, NO_BYTES, hdr, h.logChecksumSalt, WALK_HEADERS_ONLY, NO_BYTES, out);
    const nextRec = state[2], events = state[3], stop = state[4], consumed = state[5], read = state[7];
    for (let e = 0; e < events; e++) {
      const w = e * EVENT_WORDS;
      if ((out[w] & 0xff) === EV_PACK) {
        // The lsid after this pack, as nextLogpackLsid gives it from the decoded header.
        lsid = (BigInt(out[w + 3]) << 32n | BigInt(out[w + 2])) + 1n + BigInt(out[w + 4]);
        continue;
      }
      const addr = out[w + 3] * 2 ** 32 + out[w + 2], blocks = out[w + 4];
      if (!Number.isSafeInteger(addr + blocks)) throw new ValueOutOfRangeError('offset', addr, 'exceeds 2^53 LB', { source: path });
      io.addr = addr; io.blocks = blocks; io.file = fi; io.filePos = pos + out[w + 1];
      io.kind = out[w + 5] ? SCAN_DISCARD : SCAN_NORMAL; io.data = undefined; io.stored = undefined; io.csum0 = 0;
      info.ios++;
      hooks.io(io);
    }
    if (stop === STOP_HEADER) {
      const hd = decodeLogpackHeader(hdr, 0, pbs, h.logChecksumSalt, { loc: { offset: pos + consumed, source: path } });
      if (isEndMarker(hd)) return { lsid, end: pos + consumed + pbs };
      if (hd.nRecords !== 0) throw new Error(`wlog headers: a pack the walk does not take at offset ${pos + consumed} of ${path}`);
      // An empty pack: one block, and on at the next.
      lsid = nextLogpackLsid(hd);
      pos += consumed + pbs;
      rec = AT_HEADER;
      continue;
    }
    if (stop === STOP_NEED_MORE && read < HEADERS_STRETCH) throw new LogTruncatedError('input ended without the end marker', { offset: pos + consumed, source: path, lsid });
    if (consumed === 0) throw new Error(`wlog headers: stopped without progress at offset ${pos} of ${path}`);
    // `out` is full, or the stretch ended (a log past 4 GiB): on from where the walk stopped.
    pos += consumed;
    rec = nextRec;
  }
}
