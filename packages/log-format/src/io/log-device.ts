/**
 * The log device (ldev): its super sector and its ring buffer of logpacks. Format one as
 * `wdevc format-ldev`, extract logs as `wlog-cat`, write a wlog into one as `wlog-restore`.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { stat, type FileHandle } from 'node:fs/promises';
import { openInput } from './io-error.ts';
import {
  INVALID_LSID, LOGICAL_BLOCK_SIZE, LOG_RECORD_EXIST, LOG_RECORD_PADDING, PAGE_SIZE, WALB_MAX_NORMAL_IO_SECTORS,
  capacityPb, isValidPbs, lbPerPb, ringBufferOffset,
} from '../constants.ts';
import { checksum } from '../checksum.ts';
import { LsidSequenceError, ValueOutOfRangeError, WalbFormatError } from '../errors.ts';
import {
  decodeLogpackHeader, emptyLogpackHeader, encodeLogpackHeader, nextLogpackLsid, type LogpackHeader,
} from '../layout/logpack-header.ts';
import {
  hasData, hasDataForChecksum, isPadding, recordDataPb, type LogRecord,
} from '../layout/log-record.ts';
import {
  decodeSuperSector, encodeSuperSector, makeSuperSector, superSectorPbs, type SuperSector,
} from '../layout/super-sector.ts';
import type { WlogHeader } from '../layout/wlog-header.ts';
import type { ByteSink } from './byte-sink.ts';
import type { ByteSource } from './byte-source.ts';
import { spoolStream } from './spool.ts';
import { openForWriting, preadExact, probeDevice, pwriteAll, type DeviceInfo } from './device.ts';
import { allocReadBuffer } from './aligned-buffer.ts';
import { WlogReader, type WlogPack } from './wlog-reader.ts';
import { WlogWriter } from './wlog-writer.ts';
import { LogStatistics, type LogStat } from './../stats.ts';

/** Byte offset of super sector 0, whatever the block size (the first page is reserved). */
export const SUPER_SECTOR_BYTE_OFFSET = PAGE_SIZE;

/**
 * An open log device: a file or a block device with a valid super sector.
 *
 * @example
 * const ldev = await LogDevice.open('/dev/loop0');
 * console.log(ldev.superSector.oldestLsid, ldev.superSector.ringBufferSize);
 * await ldev.close();
 */
export class LogDevice {
  private constructor(
    private readonly fh: FileHandle,
    /** Size and block size of the device. */
    readonly info: DeviceInfo,
    /** The super sector as last read or written. */
    public superSector: SuperSector,
  ) {}

  /**
   * Open a log device and read its super sector.
   *
   * @throws {@link WalbFormatError} when the super sector is invalid.
   */
  static async open(path: string, opts: { writable?: boolean } = {}): Promise<LogDevice> {
    const info = await probeDevice(path);
    // Written, a block device is held exclusively: never one that is mounted or otherwise in use.
    const fh = opts.writable ? await openForWriting(path) : await openInput(path, 'r');
    try {
      const s = await readSuperAt(fh, info);
      return new LogDevice(fh, info, s);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Physical block size of the log. */
  get pbs(): number {
    return this.superSector.physicalBs;
  }

  /** First PB of the ring buffer. */
  get ringBufferOffsetPb(): bigint {
    return BigInt(ringBufferOffset(this.pbs) + this.superSector.metadataSize);
  }

  /** PB address on the device where lsid `lsid` is stored. */
  pbOfLsid(lsid: bigint): bigint {
    if (lsid < 0n || lsid >= INVALID_LSID) throw new ValueOutOfRangeError('lsid', `${lsid} has no place in the ring`);
    return this.ringBufferOffsetPb + (lsid % this.superSector.ringBufferSize);
  }

  /** Re-read the super sector from the device. */
  async readSuper(): Promise<SuperSector> {
    this.superSector = await readSuperAt(this.fh, this.info);
    return this.superSector;
  }

  /** Write `s` (default: the current super) as super sector 0, then `fdatasync`. */
  async writeSuper(s: SuperSector = this.superSector): Promise<void> {
    const block = encodeSuperSector(s);
    await pwriteAll(this.fh, block, SUPER_SECTOR_BYTE_OFFSET);
    await this.fh.datasync();
    this.superSector = s;
  }

  /** Read `npb` PBs of the ring starting at `lsid`, across the ring end when needed. */
  async readLsids(lsid: bigint, npb: number): Promise<Buffer> {
    const pbs = this.pbs;
    const buf = allocReadBuffer(npb * pbs);
    let done = 0;
    while (done < npb) {
      const l = lsid + BigInt(done);
      const untilEnd = Number(this.superSector.ringBufferSize - (l % this.superSector.ringBufferSize));
      const n = Math.min(npb - done, untilEnd);
      await preadExact(this.fh, buf.subarray(done * pbs, (done + n) * pbs), Number(this.pbOfLsid(l)) * pbs, this.info.path);
      done += n;
    }
    return buf;
  }

  /** Write whole PBs at `lsid`, across the ring end when needed. */
  async writeLsids(lsid: bigint, data: Uint8Array): Promise<void> {
    const pbs = this.pbs;
    if (data.byteLength % pbs !== 0) throw new ValueOutOfRangeError('data', `${data.byteLength} bytes is not a whole number of ${pbs}-byte blocks`);
    const npb = data.byteLength / pbs;
    let done = 0;
    while (done < npb) {
      const l = lsid + BigInt(done);
      const untilEnd = Number(this.superSector.ringBufferSize - (l % this.superSector.ringBufferSize));
      const n = Math.min(npb - done, untilEnd);
      await pwriteAll(this.fh, data.subarray(done * pbs, (done + n) * pbs), Number(this.pbOfLsid(l)) * pbs);
      done += n;
    }
  }

  /** `fdatasync` the device. */
  async sync(): Promise<void> {
    await this.fh.datasync();
  }

  /** Close the device. */
  async close(): Promise<void> {
    await this.fh.close();
  }
}

async function readSuperAt(fh: FileHandle, info: DeviceInfo): Promise<SuperSector> {
  // The super sector is one PB, and only the sector itself says which size: its smallest size
  // first, then the rest of a larger one. A device that ends after a 512-byte super sector and a
  // small ring is whole (reading a page there read past its end).
  let buf = Buffer.alloc(LOGICAL_BLOCK_SIZE);
  await preadExact(fh, buf, SUPER_SECTOR_BYTE_OFFSET, info.path, 'super sector');
  const pbs = superSectorPbs(buf);
  // A size that is none is the decoder's to report, with the sector's other faults.
  if (isValidPbs(pbs) && pbs > buf.length) {
    buf = Buffer.alloc(pbs);
    await preadExact(fh, buf, SUPER_SECTOR_BYTE_OFFSET, info.path, `super sector of ${pbs}-byte blocks`);
  }
  let s: SuperSector;
  try {
    s = decodeSuperSector(buf, 0, {});
  } catch (e) {
    if (e instanceof WalbFormatError) e.locate({ offset: SUPER_SECTOR_BYTE_OFFSET, source: info.path });
    throw e;
  }
  // A ring that does not fit the device: its lsids would be read past the end, and restored logs
  // written there (a file grew by tens of gigabytes).
  const ringEndBytes = (BigInt(ringBufferOffset(s.physicalBs) + s.metadataSize) + s.ringBufferSize) * BigInt(s.physicalBs);
  if (ringEndBytes > info.sizeBytes) {
    throw new ValueOutOfRangeError('ring_buffer_size', `${s.ringBufferSize} PB end at byte ${ringEndBytes}, past the device's ${info.sizeBytes} bytes`, { offset: SUPER_SECTOR_BYTE_OFFSET, source: info.path });
  }
  return s;
}

/**
 * Physical block size {@link formatLdev} gives a log device in a regular file: a memory page, so
 * no page of the ring holds the end of one log write and the start of the next (a write to a
 * page not in the page cache that covers only part of it makes the kernel read the page first).
 * A log device that is a block device keeps its own block size, as the kernel driver needs.
 */
export const FILE_LOG_PBS = 4096;

/** Options of {@link formatLdev}. */
export interface FormatLdevOptions {
  /** Device name stored in the super sector (at most 31 bytes). */
  name?: string;
  /**
   * Physical block size. Default: a block device's own (the data device's must match), and
   * {@link FILE_LOG_PBS} for a log device in a regular file.
   */
  pbs?: number;
  /** Salt; random by default. */
  salt?: number;
  /** Uuid (16 bytes); random by default. */
  uuid?: Uint8Array;
}

/**
 * Format a log device as `wdevc format-ldev LDEV DDEV [-n NAME]`: super sector 0 at byte 4096 with
 * a random uuid and salt, the ring buffer right after super sector 1, `oldest = written = 0`, and
 * the device size taken from the data device. The first ring block (lsid 0) is zeroed so no stale
 * logpack can be read there, as the kernel does when it clears a log; the rest of the device is
 * left as it is (the original discards it, which needs an ioctl).
 *
 * @param ddev the data device path, or its size in LB.
 * @throws {@link ValueOutOfRangeError} when the devices disagree on the block size or the log
 *   device is too small: it must hold a ring of `MIN_RING_BUFFER_PB` (3) blocks after super
 *   sector 1, at least 6656 bytes at pbs 512 and 24576 at pbs 4096.
 *
 * @example
 * const s = await formatLdev('ldev.img', 'ddev.img', { name: 'vol0' });
 */
export async function formatLdev(ldevPath: string, ddev: string | bigint, opts: FormatLdevOptions = {}): Promise<SuperSector> {
  const linfo = await probeDevice(ldevPath);
  let ddevLb: bigint;
  let pbs = opts.pbs ?? (linfo.isBlockDevice ? linfo.pbs : FILE_LOG_PBS);
  if (typeof ddev === 'string') {
    // Formatting the data device itself would write a super sector over its data.
    const [ls, ds] = await Promise.all([stat(ldevPath), stat(ddev)]);
    if (ls.dev === ds.dev && ls.ino === ds.ino && ls.rdev === ds.rdev) {
      throw new ValueOutOfRangeError('ldev', `${ldevPath} and ${ddev} are the same ${ls.isBlockDevice() ? 'device' : 'file'}: the log and data devices must differ`, { source: ldevPath });
    }
    const dinfo = await probeDevice(ddev);
    if (opts.pbs === undefined && linfo.isBlockDevice && dinfo.pbs !== linfo.pbs) {
      throw new ValueOutOfRangeError('physical_bs', `log device block size ${linfo.pbs} differs from data device block size ${dinfo.pbs}`, { source: ldevPath });
    }
    ddevLb = dinfo.sizeBytes / BigInt(LOGICAL_BLOCK_SIZE);
  } else {
    ddevLb = ddev;
  }
  if (linfo.isBlockDevice && pbs < linfo.pbs) {
    throw new ValueOutOfRangeError('physical_bs', `${pbs} is below the log device's block size ${linfo.pbs}`, { source: ldevPath });
  }
  if (opts.name !== undefined && Buffer.byteLength(opts.name) > 31) {
    throw new ValueOutOfRangeError('name', `"${opts.name}" is longer than 31 bytes`, { source: ldevPath });
  }
  let s: SuperSector;
  try {
    s = makeSuperSector(
      { pbs, ldevLb: linfo.sizeBytes / BigInt(LOGICAL_BLOCK_SIZE), ddevLb, name: opts.name, salt: opts.salt, uuid: opts.uuid },
      (n) => randomBytes(n),
    );
  } catch (e) {
    if (e instanceof WalbFormatError) e.locate({ source: ldevPath });
    throw e;
  }
  pbs = s.physicalBs;
  const fh = await openForWriting(ldevPath);
  try {
    await pwriteAll(fh, encodeSuperSector(s), SUPER_SECTOR_BYTE_OFFSET);
    await pwriteAll(fh, Buffer.alloc(pbs), ringBufferOffset(pbs) * pbs);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  return s;
}

/** Options of {@link extractLogpacks} and {@link catLdev}. */
export interface ExtractOptions {
  /** First lsid wanted (default 0; raised to the super's oldest lsid unless `force`). */
  beginLsid?: bigint;
  /** Stop before the pack at or beyond this lsid (default: 2^64−1, i.e. until the first invalid pack). */
  endLsid?: bigint;
  /** Ignore the oldest lsid of the super sector (`wlog-cat -f`). */
  force?: boolean;
  /** Keep a pack whole even when one of its IOs fails its checksum (`wlog-cat -s`). */
  noShrink?: boolean;
  /** Called by {@link catLdev} after each pack with the lsid reached. */
  onProgress?: (lsid: bigint) => void;
}

/** Where an extraction starts and what it found. */
export interface ExtractRange {
  /** First lsid extracted. */
  beginLsid: bigint;
  /** lsid after the last pack extracted. */
  endLsid: bigint;
  /** Why extraction stopped. */
  stoppedBy: 'end-lsid' | 'invalid-pack' | 'shrunk-pack';
  /** The error that made the pack at `endLsid` invalid, when `stoppedBy` is 'invalid-pack'. */
  invalid?: WalbFormatError;
}

/** The effective begin lsid of an extraction: `beginLsid`, raised to `oldest` unless `force`. */
export function extractionBegin(s: SuperSector, opts: ExtractOptions): bigint {
  const b = opts.beginLsid ?? 0n;
  return !opts.force && b < s.oldestLsid ? s.oldestLsid : b;
}

/**
 * Read the logpacks of a log device from the begin lsid on, following the ring across its end,
 * until `endLsid` or the first invalid pack (bad checksum, wrong lsid: an older lap of the ring,
 * or never written). A pack whose IO fails its checksum is shrunk to the records before it and
 * ends the extraction, as the original does. The generator returns the {@link ExtractRange}.
 */
export async function* extractLogpacks(ldev: LogDevice, opts: ExtractOptions = {}): AsyncGenerator<WlogPack, ExtractRange> {
  const pbs = ldev.pbs;
  const salt = ldev.superSector.logChecksumSalt;
  const beginLsid = extractionBegin(ldev.superSector, opts);
  const endLimit = opts.endLsid ?? INVALID_LSID;
  let lsid = beginLsid;
  while (lsid < endLimit) {
    const offset = Number(ldev.pbOfLsid(lsid)) * pbs;
    let header: LogpackHeader;
    try {
      const block = await ldev.readLsids(lsid, 1);
      header = decodeLogpackHeader(block, 0, pbs, salt, { expectedLsid: lsid, loc: { offset, lsid, source: ldev.info.path } });
      if (header.logpackLsid !== lsid) throw new LsidSequenceError(`end marker at lsid ${lsid}`, { offset, lsid });
      // An empty pack (a flush alone) marks where the next one goes: the next lsid is its own, so
      // the log ends here (reading on read the same block forever).
      if (header.records.length === 0) throw new LsidSequenceError(`an empty logpack at lsid ${lsid}: the next pack goes there`, { offset, lsid, source: ldev.info.path });
      // A pack longer than the ring would have overwritten itself: not a pack this device holds.
      if (BigInt(header.totalIoSize) + 1n > ldev.superSector.ringBufferSize) {
        throw new ValueOutOfRangeError('total_io_size', `${header.totalIoSize} PB and its header do not fit a ring of ${ldev.superSector.ringBufferSize} PB`, { offset, lsid, source: ldev.info.path });
      }
    } catch (e) {
      if (e instanceof WalbFormatError) return { beginLsid, endLsid: lsid, stoppedBy: 'invalid-pack', invalid: e };
      throw e;
    }
    const data = header.totalIoSize > 0 ? await ldev.readLsids(lsid + 1n, header.totalIoSize) : Buffer.alloc(0);
    const ios: Buffer[] = [];
    let shrunkAt = -1;
    let pos = 0;
    for (let i = 0; i < header.records.length; i++) {
      const rec = header.records[i];
      if (!hasData(rec)) continue;
      const len = recordDataPb(rec, pbs) * pbs;
      const io = data.subarray(pos, pos + len);
      pos += len;
      if (!opts.noShrink && hasDataForChecksum(rec) && checksum(io.subarray(0, rec.ioSize * LOGICAL_BLOCK_SIZE), salt) !== rec.checksum) {
        shrunkAt = i;
        break;
      }
      ios.push(io);
    }
    if (shrunkAt >= 0) {
      const shrunk = shrinkLogpack(header, shrunkAt, pbs);
      if (shrunk.records.length > 0) yield { header: shrunk, ios, offset };
      return { beginLsid, endLsid: nextLogpackLsid(shrunk), stoppedBy: 'shrunk-pack' };
    }
    yield { header, ios, offset };
    lsid = nextLogpackLsid(header);
  }
  return { beginLsid, endLsid: lsid, stoppedBy: 'end-lsid' };
}

/**
 * A copy of `h` keeping only the records before index `at`, with `total_io_size` and `n_padding`
 * recomputed (`LogPackHeader::shrink`). The checksum is recomputed when the pack is encoded.
 */
export function shrinkLogpack(h: LogpackHeader, at: number, pbs: number): LogpackHeader {
  const records = h.records.slice(0, at);
  let total = 0, nPad = 0;
  for (const r of records) {
    total += recordDataPb(r, pbs);
    if (isPadding(r)) nPad++;
  }
  return { ...h, records, nRecords: records.length, totalIoSize: total, nPadding: nPad };
}

/** Result of {@link catLdev}. */
export interface CatResult extends ExtractRange {
  /** Statistics of what was written (`wlog-cat -v`). */
  stat: LogStat;
}

/**
 * Extract the logs of an lsid range from a log device into a wlog file, as `wlog-cat`: the file
 * header carries the device's salt and uuid, `begin_lsid` = the effective begin and `end_lsid` =
 * the requested end (2^64−1 by default).
 *
 * @example
 * const r = await catLdev('/dev/loop0', 'out.wlog', { beginLsid: 0n });
 * console.log(`extracted [${r.beginLsid}, ${r.endLsid})`);
 */
export async function catLdev(ldevPath: string, sink: ByteSink, opts: ExtractOptions = {}): Promise<CatResult> {
  const ldev = await LogDevice.open(ldevPath);
  try {
    const s = ldev.superSector;
    const beginLsid = extractionBegin(s, opts);
    const endLsid = opts.endLsid ?? INVALID_LSID;
    if (beginLsid >= endLsid) {
      // Raised to the oldest lsid, a begin below the end can end up at or past it.
      const raised = beginLsid !== (opts.beginLsid ?? 0n) ? ` (raised to the device's oldest lsid from ${opts.beginLsid ?? 0n}, as force is not set)` : '';
      throw new ValueOutOfRangeError('lsid', `begin lsid ${beginLsid}${raised} must be below end lsid ${endLsid}`, { source: ldevPath });
    }
    const w = await WlogWriter.create(sink, { pbs: ldev.pbs, salt: s.logChecksumSalt, uuid: s.uuid, beginLsid, endLsid });
    const stat = new LogStatistics(beginLsid, endLsid, ldev.pbs);
    const it = extractLogpacks(ldev, opts);
    let r: IteratorResult<WlogPack, ExtractRange>;
    while (!(r = await it.next()).done) {
      await w.writePack(r.value.header, r.value.ios);
      stat.update(r.value.header);
      opts.onProgress?.(w.endLsid);
    }
    await w.close();
    return { ...r.value, stat: stat.value };
  } finally {
    await ldev.close();
  }
}

/** Options of {@link restoreWlog}. */
export interface RestoreOptions {
  /** Shift every lsid by this much (`wlog-restore -d`). */
  lsidDiff?: bigint;
  /** Skip packs below this lsid of the wlog (`-b`). */
  beginLsid?: bigint;
  /** Stop at this lsid of the wlog (`-e`; default: the wlog's end). */
  endLsid?: bigint;
  /** Also invalidate the block at this (shifted) lsid (`-i`). */
  invalidLsid?: bigint;
  /**
   * Data device size in LB (`-s`): the IOs that do not end within it are taken out of their packs
   * (see {@link restoreWlog}).
   */
  ddevLb?: bigint;
  /** Read every written header back and compare (`--verify`). */
  verify?: boolean;
  /**
   * Folder for the temporary copy of a wlog given as a stream or `'-'` (default: the system's
   * temporary folder, `os.tmpdir()`). The copy needs as much free space as the wlog's size.
   */
  tmpDir?: string;
  /** Called after each pack with the (unshifted) wlog lsid reached. */
  onProgress?: (lsid: bigint) => void;
}

/** Result of {@link restoreWlog}. */
export interface RestoreResult {
  /** First lsid written to the ring (shifted). */
  beginLsid: bigint;
  /** lsid after the last pack written (shifted, padding included). */
  endLsid: bigint;
  /**
   * The final lsid shift: grown by the padding packs inserted at the ring end, shrunk by the
   * blocks of IOs beyond `ddevLb` that no padding record could take.
   */
  lsidDiff: bigint;
  /** Padding packs inserted at the ring end. */
  paddingPacks: number;
}

/**
 * Write a wlog into a log device's ring buffer, as `wlog-restore`: packs are shifted by `lsidDiff`;
 * a pack that would cross the ring end is preceded by a padding pack that fills the ring up to its
 * end (shifting the rest); then the super sector gets `oldest = written =` the first lsid written
 * and the wlog's uuid and salt, and the block after the last pack is invalidated.
 *
 * With `beginLsid`, the log on the device begins at the first pack restored (the original's
 * `wlog-restore -b` keeps the wlog's own begin in the super sector, where nothing was written, so
 * the restored packs could not be read back); without it, as the original.
 *
 * The wlog is verified completely, and the restore laid out, before anything is written, so a
 * corrupt wlog or one that does not fit leaves the log device unchanged. A wlog given as a stream
 * (or `'-'`, stdin) can be read only once: it is first copied into a file of a new folder in
 * `tmpDir`, which takes as much space as the wlog, and the folder is removed when the restore
 * ends, whether it succeeded or failed. A process killed by a signal cannot remove it: a caller
 * that handles signals passes a `tmpDir` of its own and removes that (as the `walb` CLI does).
 *
 * With `ddevLb`, an IO that does not end within the data device is taken out of its pack, as the
 * original's `wlog-restore -s` means to: a discard is dropped; the blocks of a normal IO, and of a
 * padding record already in the pack, become one padding record at the end of the pack, after
 * the IOs kept (whose data move up). The pack so keeps its size and every lsid its place, as the
 * original's do; but the original flags each such IO as padding where it lies and leaves
 * `n_padding` as it was, so its packs hold several padding records against an `n_padding` of 0 or
 * 1, and {@link extractLogpacks} stops at them. A padding record holds at most 65535 LB; blocks
 * beyond that are cut from the pack and the packs after it move down (`lsidDiff` shrinks). A pack
 * left with no record keeps an empty padding record (a pack without records ends the log).
 *
 * @throws {@link WalbFormatError} on a corrupt wlog, a block size mismatch, or a log larger than
 *   the ring; {@link ValueOutOfRangeError} when `beginLsid` is not below `endLsid`, or no pack of
 *   the wlog starts in [`beginLsid`, `endLsid`) (the log device then unchanged; a wlog with no
 *   pack at all is restored as an empty log); the file system's error when the copy of a stream
 *   cannot be written (no space left in `tmpDir`).
 *
 * @example
 * await restoreWlog('ldev.img', 'a.wlog', { lsidDiff: 16000n, verify: true });
 * await restoreWlog('ldev.img', process.stdin, { tmpDir: '/var/tmp' });
 */
export async function restoreWlog(ldevPath: string, src: ByteSource, opts: RestoreOptions = {}): Promise<RestoreResult> {
  if (opts.beginLsid !== undefined && opts.endLsid !== undefined && opts.beginLsid >= opts.endLsid) {
    throw new ValueOutOfRangeError('beginLsid', `${opts.beginLsid} is not below endLsid ${opts.endLsid}`, { source: ldevPath });
  }
  if (opts.invalidLsid !== undefined && opts.invalidLsid >= INVALID_LSID) {
    throw new ValueOutOfRangeError('invalidLsid', `${opts.invalidLsid} is not a valid lsid (below ${INVALID_LSID})`, { source: ldevPath });
  }
  const rereadable = (typeof src === 'string' && src !== '-') || src instanceof Uint8Array;
  // The log device is looked at before a stream is taken in: a wrong one fails at once.
  const ldev = await LogDevice.open(ldevPath, { writable: true });
  let spool: { path: string; remove: () => Promise<void> } | undefined;
  try {
    if (rereadable) return await restoreInto(ldev, src, opts);
    spool = await spoolStream(src, { dir: opts.tmpDir, prefix: 'walbjs-restore-', fileName: 'stream.wlog' });
    try {
      return await restoreInto(ldev, spool.path, opts);
    } catch (e) {
      // An error names the stream, not its copy, which is gone by the time the error is read.
      if (e instanceof Error) {
        const name = src === '-' || src === process.stdin ? '<stdin>' : '<stream>';
        e.message = e.message.replaceAll(spool.path, name);
        if (e instanceof WalbFormatError && e.source === spool.path) e.source = name;
      }
      throw e;
    }
  } finally {
    await ldev.close();
    await spool?.remove();
  }
}

/**
 * {@link restoreWlog} from a source that can be read twice: once to verify the whole wlog and lay
 * out the restore, once to write it.
 */
async function restoreInto(ldev: LogDevice, src: string | Uint8Array, opts: RestoreOptions): Promise<RestoreResult> {
  const ldevPath = ldev.info.path;
  const ringEnd = ldev.superSector.ringBufferSize;
  const check = await WlogReader.open(src);
  let planned: RestoreLayout;
  try {
    if (check.pbs !== ldev.pbs) throw pbsMismatch(ldev.pbs, check.pbs, ldevPath);
    planned = new RestoreLayout(check.header, ringEnd, opts);
    // Every pack is read, and so verified, past the end of the range too.
    for await (const p of check) planned.place(p);
  } finally {
    await check.close();
  }
  if (planned.seen > 0 && planned.first === undefined) {
    throw new ValueOutOfRangeError('beginLsid', `no logpack of the wlog (lsids ${check.header.beginLsid} to ${check.header.endLsid}) starts at or above ${opts.beginLsid ?? check.header.beginLsid} and below ${opts.endLsid ?? check.header.endLsid}: nothing to restore`, { source: ldevPath });
  }
  const bgnShifted = check.header.beginLsid + (opts.lsidDiff ?? 0n);
  if (planned.first === undefined) {
    if (bgnShifted < 0n || bgnShifted >= INVALID_LSID) {
      throw new ValueOutOfRangeError('lsidDiff', `${opts.lsidDiff ?? 0n} moves begin lsid ${check.header.beginLsid} to ${bgnShifted}, outside 0 to ${INVALID_LSID - 1n}`, { source: ldevPath });
    }
  } else {
    const { first, end } = planned;
    // One more block than the logs: the end is marked by zeroing the block after them, which
    // must not be the first one.
    if (end - first + 1n > ringEnd) {
      throw new ValueOutOfRangeError('wlog', `${end - first} PB of logs (padding included) and the block that ends them do not fit a ring of ${ringEnd} PB`, { source: ldevPath });
    }
    if (first < 0n || end >= INVALID_LSID) {
      throw new ValueOutOfRangeError('lsidDiff', `${opts.lsidDiff ?? 0n} moves the log to lsids ${first} to ${end}, outside 0 to ${INVALID_LSID - 1n}`, { source: ldevPath });
    }
  }

  const r = await WlogReader.open(src);
  const pbs = r.pbs;
  const salt = r.header.logChecksumSalt;
  const layout = new RestoreLayout(r.header, ringEnd, opts);
  try {
    for await (const pack of r) {
      if (layout.pastRange) break;
      const placed = layout.place(pack);
      if (placed === undefined) continue;
      for (const pad of placed.pads) {
        await ldev.writeLsids(pad.logpackLsid, encodeLogpackHeader(pad, pbs, salt));
        if (opts.verify) await verifyHeader(ldev, pad, pbs, salt);
      }
      const block = encodeLogpackHeader(placed.header, pbs, salt);
      const parts = [block, ...placed.ios];
      if (placed.padBytes > 0) parts.push(Buffer.alloc(placed.padBytes));
      await ldev.writeLsids(placed.header.logpackLsid, parts.length > 1 ? Buffer.concat(parts) : block);
      if (opts.verify) await verifyHeader(ldev, placed.header, pbs, salt);
      opts.onProgress?.(layout.lsid);
    }
  } finally {
    await r.close();
  }
  const oldest = layout.first ?? bgnShifted;
  const endShifted = layout.first === undefined ? bgnShifted : layout.end;
  const s: SuperSector = { ...ldev.superSector, oldestLsid: oldest, writtenLsid: oldest, uuid: r.header.uuid, logChecksumSalt: salt };
  await ldev.writeSuper(s);
  if (oldest < endShifted) await ldev.writeLsids(endShifted, Buffer.alloc(pbs));
  if (opts.invalidLsid !== undefined) await ldev.writeLsids(opts.invalidLsid, Buffer.alloc(pbs));
  await ldev.sync();
  return { beginLsid: oldest, endLsid: endShifted, lsidDiff: layout.lsidDiff, paddingPacks: layout.paddingPacks };
}

/** A pack of the wlog as it goes into the ring. */
interface PlacedPack {
  /** Padding packs that fill the ring up to its end, when the pack would cross it. */
  pads: LogpackHeader[];
  /** The pack at its lsid in the ring, clipped to the data device. */
  header: LogpackHeader;
  /** The data of its IOs kept. */
  ios: readonly Buffer[];
  /** Zero bytes after them: the data of a padding record that clipping made. */
  padBytes: number;
}

/**
 * Where each pack of a wlog goes in the ring, pack by pack. The verification pass and the writing
 * pass each run one over the same wlog, so what is checked is what is written.
 */
class RestoreLayout {
  /** wlog lsid of the next pack. */
  lsid: bigint;
  /** Shift of the next pack. */
  lsidDiff: bigint;
  /** Shifted lsid of the first block placed (a pack, or the padding before it). */
  first: bigint | undefined;
  /** Shifted lsid after the last pack placed. */
  end = 0n;
  paddingPacks = 0;
  /** Packs of the wlog seen, in the range or not. */
  seen = 0;
  private readonly endLimit: bigint;
  private readonly pbs: number;

  constructor(header: WlogHeader, private readonly ringEnd: bigint, private readonly opts: RestoreOptions) {
    this.lsid = header.beginLsid;
    this.lsidDiff = opts.lsidDiff ?? 0n;
    this.endLimit = opts.endLsid ?? header.endLsid;
    this.pbs = header.physicalBs;
  }

  /** Whether the next pack, and so every later one, is at or past the end of the range. */
  get pastRange(): boolean {
    return this.lsid >= this.endLimit;
  }

  /** Place the next pack of the wlog; undefined when it is outside the range. */
  place(pack: WlogPack): PlacedPack | undefined {
    this.seen++;
    const lsid = this.lsid;
    this.lsid = nextLogpackLsid(pack.header);
    if (lsid >= this.endLimit || (this.opts.beginLsid !== undefined && lsid < this.opts.beginLsid)) return undefined;
    const c = this.opts.ddevLb !== undefined
      ? clipLogpack(pack.header, pack.ios, this.opts.ddevLb, this.pbs)
      : { header: pack.header, ios: pack.ios, padBytes: 0, cutPb: 0 };
    let target = lsid + this.lsidDiff;
    this.first ??= target;
    const pads: LogpackHeader[] = [];
    // A lsid below 0 has no place in the ring; such a layout is refused once it is complete.
    let left = target < 0n ? 0n : paddingBefore(target, c.header, this.ringEnd);
    while (left > 0n) {
      // One padding record cannot always fill the rest of the ring: each pack takes what one holds.
      const pb = left - 1n > BigInt(maxPaddingPb(this.pbs)) ? maxPaddingPb(this.pbs) : Number(left - 1n);
      const pad = emptyLogpackHeader(target);
      pad.records.push(paddingRecord(target, 1, pb, this.pbs));
      pad.totalIoSize = pb;
      pad.nPadding = 1;
      pad.nRecords = 1;
      pads.push(pad);
      this.paddingPacks++;
      target += BigInt(pb + 1);
      left -= BigInt(pb + 1);
    }
    this.lsidDiff = target - lsid;
    const header = relocateLogpack(c.header, target);
    this.lsidDiff -= BigInt(c.cutPb);
    this.end = nextLogpackLsid(header);
    return { pads, header, ios: c.ios, padBytes: c.padBytes };
  }
}

/** PBs of padding before pack `h` at shifted lsid `target`: where it would cross the ring end, up to it (else 0). */
function paddingBefore(target: bigint, h: LogpackHeader, ringEnd: bigint): bigint {
  const inRing = target % ringEnd;
  return inRing + 1n + BigInt(h.totalIoSize) > ringEnd ? ringEnd - inRing : 0n;
}

function pbsMismatch(ldevPbs: number, wlogPbs: number, path: string): ValueOutOfRangeError {
  return new ValueOutOfRangeError('physical_bs', `log device ${ldevPbs}, wlog ${wlogPbs} (a log device takes wlogs of its own block size: format it with pbs ${wlogPbs})`, { source: path });
}

/** PBs one padding record holds: its size is at most 65535 LB, as a normal IO's. */
function maxPaddingPb(pbs: number): number {
  return capacityPb(pbs, WALB_MAX_NORMAL_IO_SECTORS);
}

/** A padding record of `pb` PBs at `lsidLocal` in the pack at `packLsid`. */
function paddingRecord(packLsid: bigint, lsidLocal: number, pb: number, pbs: number): LogRecord {
  return {
    checksum: 0, flags: LOG_RECORD_EXIST | LOG_RECORD_PADDING, offset: 0n,
    ioSize: Math.min(pb * lbPerPb(pbs), WALB_MAX_NORMAL_IO_SECTORS),
    lsidLocal, reserved1: 0, lsid: packLsid + BigInt(lsidLocal),
  };
}

/** A copy of `h` moved to `lsid`: every record lsid follows (`LogPackHeader::updateLsid`). */
export function relocateLogpack(h: LogpackHeader, lsid: bigint): LogpackHeader {
  return { ...h, logpackLsid: lsid, records: h.records.map((r) => ({ ...r, lsid: lsid + BigInt(r.lsidLocal) })) };
}

/** A pack clipped to the data device. */
interface ClippedPack {
  header: LogpackHeader;
  /** The data of the IOs kept. */
  ios: readonly Buffer[];
  /** Bytes of the padding record's data, after those of the IOs. */
  padBytes: number;
  /** PBs cut from the pack: what its padding record could not take. */
  cutPb: number;
}

/**
 * Pack `h` (with the data `ios` of its records that have data) without the IOs that do not end
 * within `ddevLb`: discards dropped, the blocks of normal IOs and of the pack's padding record
 * gathered in one padding record after the IOs kept, up to what one record holds.
 */
function clipLogpack(h: LogpackHeader, ios: readonly Buffer[], ddevLb: bigint, pbs: number): ClippedPack {
  const beyond = (r: LogRecord) => !isPadding(r) && r.offset + BigInt(r.ioSize) > ddevLb;
  if (!h.records.some(beyond)) return { header: h, ios, padBytes: 0, cutPb: 0 };
  const records: LogRecord[] = [];
  const kept: Buffer[] = [];
  let pos = 1;
  let i = 0;
  for (const r of h.records) {
    const io = hasData(r) ? ios[i++] : undefined;
    if (isPadding(r) || beyond(r)) continue;
    records.push({ ...r, lsidLocal: pos, lsid: h.logpackLsid + BigInt(pos) });
    if (io !== undefined) {
      kept.push(io);
      pos += recordDataPb(r, pbs);
    }
  }
  const freed = h.totalIoSize - (pos - 1);
  const padPb = Math.min(freed, maxPaddingPb(pbs));
  // A pack without records would read as the end of the log.
  if (padPb > 0 || records.length === 0) records.push(paddingRecord(h.logpackLsid, pos, padPb, pbs));
  const header: LogpackHeader = {
    ...h, records, nRecords: records.length, totalIoSize: pos - 1 + padPb, nPadding: records.some(isPadding) ? 1 : 0,
  };
  return { header, ios: kept, padBytes: padPb * pbs, cutPb: freed - padPb };
}

async function verifyHeader(ldev: LogDevice, h: LogpackHeader, pbs: number, salt: number): Promise<void> {
  const block = await ldev.readLsids(h.logpackLsid, 1);
  const expect = encodeLogpackHeader({ ...h }, pbs, salt);
  if (!block.equals(expect)) throw new LsidSequenceError('logpack header read back differs from what was written', { lsid: h.logpackLsid, source: ldev.info.path });
}
