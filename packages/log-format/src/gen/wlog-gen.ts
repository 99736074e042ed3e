/**
 * A generator of random valid logs for tests and benchmarks, with the knobs of the original
 * `wlog-gen` and a seed so a log can be made again.
 *
 * @module
 */
import {
  LOGICAL_BLOCK_SIZE, LOG_RECORD_DISCARD, LOG_RECORD_EXIST, LOG_RECORD_PADDING,
  MAX_TOTAL_IO_SIZE_IN_LOGPACK_HEADER, WALB_MAX_DISCARD_IO_SECTORS, WALB_MAX_NORMAL_IO_SECTORS,
  INVALID_LSID, capacityPb, isValidPbs, lbPerPb, maxRecordsInPack,
} from '../constants.ts';
import { checksum } from '../checksum.ts';
import { ValueOutOfRangeError } from '../errors.ts';
import { emptyLogpackHeader, type LogpackHeader } from '../layout/logpack-header.ts';
import { hasDataForChecksum, type LogRecord } from '../layout/log-record.ts';
import { makeWlogHeader, type WlogHeader } from '../layout/wlog-header.ts';
import type { ByteSink } from '../io/byte-sink.ts';
import { WlogWriter } from '../io/wlog-writer.ts';
import { SeededRandom } from './random.ts';

/** Knobs of the generator; sizes in bytes unless the name says LB or PB. */
export interface WlogGenOptions {
  /** Seed of the pseudo-random sequence (default 1). Same seed and options, same log. */
  seed?: number;
  /** Physical block size, 512 or 4096 (default 512). */
  pbs?: number;
  /** Size of the device the IOs address, bytes (default 16 MiB). */
  deviceBytes?: number;
  /** Size of the log to make, bytes of PBs (default 1 MiB); the last pack may go past it. */
  totalBytes?: number;
  /** Smallest normal IO, bytes (default 512). */
  minIoBytes?: number;
  /** Largest normal IO, bytes (default 32 KiB). */
  maxIoBytes?: number;
  /** Smallest discard, bytes (default 512). */
  minDiscardBytes?: number;
  /** Largest discard, bytes (default 64 KiB). */
  maxDiscardBytes?: number;
  /** Largest pack data, bytes (default 16 MiB). */
  maxPackBytes?: number;
  /** lsid of the first pack (default 0). */
  beginLsid?: bigint;
  /** Include padding records (default true). */
  padding?: boolean;
  /** Include discard records (default true). */
  discard?: boolean;
  /** Make about one IO in ten all zero (default true). */
  allZero?: boolean;
  /** Random data (default); false writes each PB's lsid in its first 8 bytes, as `wlog-gen`. */
  randomData?: boolean;
  /** Salt; drawn from the seed by default. */
  salt?: number;
  /** Uuid; drawn from the seed by default. */
  uuid?: Uint8Array;
  /** Called by {@link writeGeneratedWlog} after each pack with the PBs written so far. */
  onProgress?: (pbWritten: bigint) => void;
}

/** A generated pack. */
export interface GeneratedPack {
  /** The header, checksums filled in when encoded. */
  header: LogpackHeader;
  /** One PB-padded buffer per record with data. */
  ios: Buffer[];
}

interface Resolved {
  pbs: number; devLb: number; totalPb: number; minIoLb: number; maxIoLb: number;
  minDiscardLb: number; maxDiscardLb: number; maxPackPb: number; beginLsid: bigint;
  padding: boolean; discard: boolean; allZero: boolean; randomData: boolean;
}

function resolve(o: WlogGenOptions): Resolved {
  const pbs = o.pbs ?? 512;
  if (!isValidPbs(pbs)) throw new ValueOutOfRangeError('pbs', `${pbs} is not a valid block size`);
  const lb = (bytes: number, name: string) => {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new ValueOutOfRangeError(name, `${bytes} is not a byte count`);
    return Math.ceil(bytes / LOGICAL_BLOCK_SIZE);
  };
  const r: Resolved = {
    pbs,
    devLb: lb(o.deviceBytes ?? 16 << 20, 'deviceBytes'),
    totalPb: Math.ceil((o.totalBytes ?? 1 << 20) / pbs),
    minIoLb: Math.max(1, lb(o.minIoBytes ?? 512, 'minIoBytes')),
    maxIoLb: lb(o.maxIoBytes ?? 32 << 10, 'maxIoBytes'),
    minDiscardLb: Math.max(1, lb(o.minDiscardBytes ?? 512, 'minDiscardBytes')),
    maxDiscardLb: lb(o.maxDiscardBytes ?? 64 << 10, 'maxDiscardBytes'),
    maxPackPb: Math.min(MAX_TOTAL_IO_SIZE_IN_LOGPACK_HEADER, Math.ceil((o.maxPackBytes ?? 16 << 20) / pbs)),
    beginLsid: o.beginLsid ?? 0n,
    padding: o.padding ?? true,
    discard: o.discard ?? true,
    allZero: o.allZero ?? true,
    randomData: o.randomData ?? true,
  };
  if (r.maxIoLb > WALB_MAX_NORMAL_IO_SECTORS) throw new ValueOutOfRangeError('maxIoBytes', `at most ${WALB_MAX_NORMAL_IO_SECTORS} LB`);
  if (r.maxIoLb < r.minIoLb) throw new ValueOutOfRangeError('minIoBytes', 'must be ≤ maxIoBytes');
  if (r.maxDiscardLb > WALB_MAX_DISCARD_IO_SECTORS) throw new ValueOutOfRangeError('maxDiscardBytes', `at most ${WALB_MAX_DISCARD_IO_SECTORS} LB`);
  if (r.maxDiscardLb < r.minDiscardLb) throw new ValueOutOfRangeError('minDiscardBytes', 'must be ≤ maxDiscardBytes');
  if (r.devLb < r.minIoLb) throw new ValueOutOfRangeError('deviceBytes', 'smaller than the smallest IO');
  if (r.maxPackPb < 1) throw new ValueOutOfRangeError('maxPackBytes', 'must hold at least one block');
  // The last pack may pass totalBytes by a whole pack: a log that could reach the invalid lsid
  // (2^64 - 1) is refused before any of it is made, not found unreadable afterwards.
  if (r.beginLsid < 0n) throw new ValueOutOfRangeError('beginLsid', `${r.beginLsid} is below 0`);
  if (r.beginLsid + BigInt(r.totalPb) + BigInt(r.maxPackPb) + 1n > INVALID_LSID) {
    throw new ValueOutOfRangeError('beginLsid', `${r.beginLsid}: a log of ${r.totalPb} PB from there may pass the largest lsid (${INVALID_LSID - 1n})`);
  }
  return r;
}

/**
 * A random valid log: its wlog header and a lazy sequence of packs (memory stays at one pack).
 *
 * @example
 * const { header, packs } = generateWlog({ seed: 7, totalBytes: 4 << 20, pbs: 4096 });
 * for (const p of packs) console.log(p.header.logpackLsid, p.header.records.length);
 */
export function generateWlog(opts: WlogGenOptions = {}): { header: WlogHeader; packs: Iterable<GeneratedPack> } {
  const cfg = resolve(opts);
  const rand = new SeededRandom(opts.seed ?? 1);
  const uuid = opts.uuid ?? (() => { const u = new Uint8Array(16); rand.fill(u); return u; })();
  const salt = opts.salt ?? rand.u32();
  const header = makeWlogHeader({ pbs: cfg.pbs, salt, uuid, beginLsid: cfg.beginLsid });
  return { header, packs: packsOf(cfg, rand, salt) };
}

function* packsOf(cfg: Resolved, rand: SeededRandom, salt: number): Generator<GeneratedPack> {
  let lsid = cfg.beginLsid;
  let written = 0;
  while (written < cfg.totalPb) {
    const header = randomPackHeader(cfg, rand, lsid);
    const ios: Buffer[] = [];
    let blockLsid = lsid + 1n;
    for (const rec of header.records) {
      if (rec.flags & LOG_RECORD_DISCARD) continue;
      const npb = capacityPb(cfg.pbs, rec.ioSize);
      const buf = Buffer.alloc(npb * cfg.pbs);
      const zero = cfg.allZero && rand.below(100) < 10;
      if (!zero) {
        if (cfg.randomData) rand.fill(buf);
        else for (let j = 0; j < npb; j++) buf.writeBigUInt64LE(blockLsid + BigInt(j), j * cfg.pbs);
      }
      blockLsid += BigInt(npb);
      if (hasDataForChecksum(rec)) rec.checksum = checksum(buf.subarray(0, rec.ioSize * LOGICAL_BLOCK_SIZE), salt);
      ios.push(buf);
    }
    const w = 1 + header.totalIoSize;
    written += w;
    lsid += BigInt(w);
    yield { header, ios };
  }
}

function randomPackHeader(cfg: Resolved, rand: SeededRandom, lsid: bigint): LogpackHeader {
  const h = emptyLogpackHeader(lsid);
  const maxRec = maxRecordsInPack(cfg.pbs);
  const want = rand.below(maxRec) + 1;
  const add = (flags: number, offset: number, ioSize: number, pb: number) => {
    const lsidLocal = h.totalIoSize + 1;
    const rec: LogRecord = {
      checksum: 0, flags: LOG_RECORD_EXIST | flags, offset: BigInt(offset), ioSize,
      lsidLocal, reserved1: 0, lsid: lsid + BigInt(lsidLocal),
    };
    h.records.push(rec);
    h.nRecords++;
    h.totalIoSize += pb;
  };
  for (let i = 0; i < want; i++) {
    // lsid_local is 16 bits: once the data fill the pack, no record of any kind fits after them.
    if (h.totalIoSize >= MAX_TOTAL_IO_SIZE_IN_LOGPACK_HEADER) break;
    const offset = rand.below(cfg.devLb);
    const v = rand.below(100);
    const isPad = cfg.padding && v < 10 && h.nPadding === 0;
    const isDiscard = !isPad && cfg.discard && v < 30;
    const [lo, hi] = isDiscard ? [cfg.minDiscardLb, cfg.maxDiscardLb] : [cfg.minIoLb, cfg.maxIoLb];
    let ioSize = lo + rand.below(hi - lo + 1);
    if (offset + ioSize > cfg.devLb) ioSize = cfg.devLb - offset;
    if (ioSize === 0) continue;
    if (isDiscard) {
      add(LOG_RECORD_DISCARD, offset, ioSize, 0);
      continue;
    }
    const pb = capacityPb(cfg.pbs, ioSize);
    // Every pack holds at least one IO even when that IO alone exceeds maxPackPb.
    if (h.totalIoSize > 0 && h.totalIoSize + pb > cfg.maxPackPb) break;
    if (h.totalIoSize + pb > MAX_TOTAL_IO_SIZE_IN_LOGPACK_HEADER) break;
    if (isPad) {
      // wlog-gen also makes zero-sized padding; a padding record's size must stay ≤ 65535 LB.
      const padPb = v < 5 ? 0 : Math.min(pb, Math.floor(WALB_MAX_NORMAL_IO_SECTORS / lbPerPb(cfg.pbs)));
      add(LOG_RECORD_PADDING, 0, padPb * lbPerPb(cfg.pbs), padPb);
      h.nPadding = 1;
      continue;
    }
    add(0, offset, ioSize, pb);
  }
  if (h.records.length === 0) add(0, 0, Math.min(cfg.minIoLb, cfg.devLb), capacityPb(cfg.pbs, Math.min(cfg.minIoLb, cfg.devLb)));
  return h;
}

/**
 * Generate a random valid log straight into a wlog file or stream.
 *
 * @returns the header written (checksum filled in) and the end lsid.
 * @example
 * await writeGeneratedWlog('rand.wlog', { seed: 42, totalBytes: 64 << 20 });
 */
export async function writeGeneratedWlog(sink: ByteSink, opts: WlogGenOptions = {}): Promise<{ header: WlogHeader; endLsid: bigint }> {
  const { header, packs } = generateWlog(opts);
  const w = await WlogWriter.create(sink, header);
  for (const p of packs) {
    await w.writePack(p.header, p.ios);
    opts.onProgress?.(w.endLsid - header.beginLsid);
  }
  await w.close();
  return { header: w.header, endLsid: w.endLsid };
}
