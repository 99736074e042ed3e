/**
 * The inspection itself: open a wlog file or a log device image, walk its packs with the readers of
 * `@walbjs/log-format`, and gather per-record statistics. Only the package's public entry is used,
 * as any program outside this repository would use it.
 *
 * @module
 */
import {
  LOGICAL_BLOCK_SIZE, LogDevice, SectorTypeError, WalbFormatError, WlogReader, capacityPb,
  extractLogpacks, isDiscard, isPadding, uuidToHex,
  type ExtractRange, type WlogPack,
} from '@walbjs/log-format';

/** Size of the regions the "hottest regions" ranking counts writes in. */
export const REGION_BYTES = 1n << 20n;
/** How many regions the ranking keeps. */
export const TOP_REGIONS = 10;

/** One power-of-two bucket of the IO size histogram: sizes in `[fromBytes, toBytes)`. */
export interface SizeBucket {
  /** Smallest size of the bucket, in bytes (a power of two). */
  fromBytes: bigint;
  /** Twice `fromBytes`: the sizes of the bucket are below it. */
  toBytes: bigint;
  /** Normal (data) IOs of that size. */
  normal: number;
  /** Discard IOs of that size. */
  discard: number;
}

/** One 1 MiB region of the device and the normal writes that landed in it. */
export interface HotRegion {
  /** Region index: its first byte is `index · 1 MiB`. */
  index: bigint;
  /** First byte of the region. */
  beginByte: bigint;
  /** Byte after the region. */
  endByte: bigint;
  /** Normal IOs that touched the region. */
  writes: number;
  /** Bytes of those IOs that fell inside the region. */
  bytesWritten: bigint;
}

/** Where the log came from and how it was read. */
export type Source =
  | {
    kind: 'wlog';
    /** The file header's lsid range (its end may exceed the real end). */
    headerBeginLsid: bigint;
    headerEndLsid: bigint;
  }
  | {
    kind: 'ldev';
    /** Device name from the super sector. */
    name: string;
    /** Ring buffer size in PB. */
    ringBufferSize: bigint;
    /** Super sector's oldest and written lsids. */
    oldestLsid: bigint;
    writtenLsid: bigint;
    /** Size of the data device, in LB. */
    deviceSizeLb: bigint;
    /** Why reading the ring stopped. */
    stoppedBy: ExtractRange['stoppedBy'];
    /** The library's message for the pack that ended the log, when it was invalid. */
    stopReason?: string;
  };

/** Everything the inspector reports. */
export interface Inspection {
  /** The path given. */
  file: string;
  source: Source;
  /** Physical block size of the log. */
  pbs: number;
  /** Log checksum salt. */
  salt: number;
  /** Device uuid, hex. */
  uuid: string;
  /** lsid of the first pack read, and the lsid after the last one. */
  beginLsid: bigint;
  endLsid: bigint;
  /** Packs read (the end marker is not counted). */
  packs: number;
  /** Records by kind; `allZero` counts the normal records whose data is all zero bytes. */
  records: { total: number; normal: number; discard: number; padding: number; allZero: number };
  /** Bytes by kind: IO sizes for normal and discard records, the PBs taken for padding. */
  bytes: { normal: bigint; allZero: bigint; discard: bigint; padding: bigint; log: bigint };
  /** Normal and discard IOs by size, smallest bucket first; empty buckets are left out. */
  ioSizes: SizeBucket[];
  /** Byte range of the device that normal and discard IOs touched (null when there were none). */
  addressRange: { beginByte: bigint; endByte: bigint } | null;
  /** The {@link TOP_REGIONS} 1 MiB regions that received the most bytes of normal writes. */
  hotRegions: HotRegion[];
}

/** Accumulates the statistics pack by pack. */
class Tally {
  packs = 0;
  totalPb = 0n;
  records = { total: 0, normal: 0, discard: 0, padding: 0, allZero: 0 };
  bytes = { normal: 0n, allZero: 0n, discard: 0n, padding: 0n };
  private readonly buckets = new Map<number, { normal: number; discard: number }>();
  private minByte: bigint | undefined;
  private maxByte: bigint | undefined;
  private readonly regions = new Map<bigint, { writes: number; bytes: bigint }>();

  constructor(private readonly pbs: number) {}

  add(pack: WlogPack): void {
    this.packs++;
    this.totalPb += 1n + BigInt(pack.header.totalIoSize);
    let dataIndex = 0;
    for (const rec of pack.header.records) {
      this.records.total++;
      if (isPadding(rec)) {
        // Padding has data blocks in the log (its content is meaningless) but touches no address.
        dataIndex++;
        this.records.padding++;
        this.bytes.padding += BigInt(capacityPb(this.pbs, rec.ioSize) * this.pbs);
        continue;
      }
      const size = rec.ioSize * LOGICAL_BLOCK_SIZE;
      const begin = rec.offset * BigInt(LOGICAL_BLOCK_SIZE);
      const end = begin + BigInt(size);
      if (this.minByte === undefined || begin < this.minByte) this.minByte = begin;
      if (this.maxByte === undefined || end > this.maxByte) this.maxByte = end;
      const bucket = this.bucket(size);
      if (isDiscard(rec)) {
        this.records.discard++;
        this.bytes.discard += BigInt(size);
        bucket.discard++;
        continue;
      }
      this.records.normal++;
      this.bytes.normal += BigInt(size);
      bucket.normal++;
      const io = pack.ios[dataIndex++];
      if (io !== undefined && isAllZero(io.subarray(0, size))) {
        this.records.allZero++;
        this.bytes.allZero += BigInt(size);
      }
      this.countRegions(begin, end);
    }
  }

  private bucket(sizeBytes: number): { normal: number; discard: number } {
    // Bit length − 1 = floor(log2): exact for any size a record can hold (below 2^42).
    const exp = sizeBytes.toString(2).length - 1;
    let b = this.buckets.get(exp);
    if (b === undefined) {
      b = { normal: 0, discard: 0 };
      this.buckets.set(exp, b);
    }
    return b;
  }

  private countRegions(begin: bigint, end: bigint): void {
    if (begin === end) return;
    for (let r = begin / REGION_BYTES; r <= (end - 1n) / REGION_BYTES; r++) {
      const lo = r * REGION_BYTES > begin ? r * REGION_BYTES : begin;
      const hi = (r + 1n) * REGION_BYTES < end ? (r + 1n) * REGION_BYTES : end;
      const c = this.regions.get(r);
      if (c === undefined) this.regions.set(r, { writes: 1, bytes: hi - lo });
      else {
        c.writes++;
        c.bytes += hi - lo;
      }
    }
  }

  ioSizes(): SizeBucket[] {
    return [...this.buckets.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([exp, c]) => ({ fromBytes: 1n << BigInt(exp), toBytes: 2n << BigInt(exp), normal: c.normal, discard: c.discard }));
  }

  addressRange(): Inspection['addressRange'] {
    return this.minByte === undefined || this.maxByte === undefined ? null : { beginByte: this.minByte, endByte: this.maxByte };
  }

  /** Most bytes first; ties: more writes first, then the lower address. */
  hotRegions(): HotRegion[] {
    return [...this.regions.entries()]
      .sort((a, b) => cmpDesc(a[1].bytes, b[1].bytes) || b[1].writes - a[1].writes || cmpDesc(b[0], a[0]))
      .slice(0, TOP_REGIONS)
      .map(([index, c]) => ({
        index, beginByte: index * REGION_BYTES, endByte: (index + 1n) * REGION_BYTES, writes: c.writes, bytesWritten: c.bytes,
      }));
  }
}

function cmpDesc(a: bigint, b: bigint): number {
  return a > b ? -1 : a < b ? 1 : 0;
}

const ZEROS = Buffer.alloc(64 << 10);

/** Whether every byte of `buf` is zero (compared 64 KiB at a time with `memcmp`). */
export function isAllZero(buf: Uint8Array): boolean {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let off = 0; off < b.length; off += ZEROS.length) {
    const n = Math.min(ZEROS.length, b.length - off);
    if (!b.subarray(off, off + n).equals(ZEROS.subarray(0, n))) return false;
  }
  return true;
}

/**
 * Thrown when a file is neither a wlog nor a log device: carries both of the library's errors.
 * (When one of the two formats recognised its own sector type, that format's error is thrown
 * as is instead: the file is a damaged wlog, or a damaged log device.)
 */
export class UnrecognisedInputError extends Error {
  constructor(readonly asWlog: WalbFormatError, readonly asLdev: WalbFormatError) {
    super(`neither a wlog nor a log device: as a wlog, ${describe(asWlog)}; as a log device, ${describe(asLdev)}`);
    this.name = 'UnrecognisedInputError';
  }
}

/** `ClassName [CODE]: message` for a library error. */
export function describe(e: WalbFormatError): string {
  return `${e.name} [${e.code}]: ${e.message}`;
}

type Opened = { kind: 'wlog'; reader: WlogReader } | { kind: 'ldev'; ldev: LogDevice };

/**
 * Detect the format by reading: a wlog header at byte 0, else a super sector at byte 4096.
 *
 * @throws {@link WalbFormatError} of the format that recognised the file, or
 *   {@link UnrecognisedInputError} when neither did; Node's errors for unreadable paths.
 */
async function openEither(file: string): Promise<Opened> {
  let asWlog: WalbFormatError;
  try {
    return { kind: 'wlog', reader: await WlogReader.open(file) };
  } catch (e) {
    // Anything but "this block is not a wlog header" means the file is a wlog, and a bad one
    // (or too short to be either: a log device is larger than a wlog header).
    if (!(e instanceof SectorTypeError)) throw e;
    asWlog = e;
  }
  try {
    return { kind: 'ldev', ldev: await LogDevice.open(file) };
  } catch (e) {
    if (e instanceof SectorTypeError) throw new UnrecognisedInputError(asWlog, e);
    throw e;
  }
}

/**
 * Inspect a wlog file or a log device (image file or block device).
 *
 * A wlog is read strictly: every checksum is verified and the end marker is required, so a damaged
 * file raises the library's typed error. A log device is read as `wlog-cat` reads it: from the
 * super sector's oldest lsid, across the ring end, until the first pack that is not valid (the
 * normal end of the logs), whose reason is reported.
 */
export async function inspect(file: string): Promise<Inspection> {
  const opened = await openEither(file);
  if (opened.kind === 'wlog') {
    const r = opened.reader;
    const t = new Tally(r.pbs);
    for await (const pack of r) t.add(pack);
    return finish(file, t, {
      source: { kind: 'wlog', headerBeginLsid: r.header.beginLsid, headerEndLsid: r.header.endLsid },
      pbs: r.pbs, salt: r.header.logChecksumSalt, uuid: uuidToHex(r.header.uuid),
      beginLsid: r.header.beginLsid, endLsid: r.endLsid,
    });
  }
  const ldev = opened.ldev;
  try {
    const s = ldev.superSector;
    const t = new Tally(ldev.pbs);
    const it = extractLogpacks(ldev);
    let step: IteratorResult<WlogPack, ExtractRange>;
    while (!(step = await it.next()).done) t.add(step.value);
    const range = step.value;
    return finish(file, t, {
      source: {
        kind: 'ldev', name: s.name, ringBufferSize: s.ringBufferSize, oldestLsid: s.oldestLsid,
        writtenLsid: s.writtenLsid, deviceSizeLb: s.deviceSize, stoppedBy: range.stoppedBy,
        ...(range.invalid ? { stopReason: describe(range.invalid) } : {}),
      },
      pbs: ldev.pbs, salt: s.logChecksumSalt, uuid: uuidToHex(s.uuid),
      beginLsid: range.beginLsid, endLsid: range.endLsid,
    });
  } finally {
    await ldev.close();
  }
}

function finish(
  file: string,
  t: Tally,
  head: Pick<Inspection, 'source' | 'pbs' | 'salt' | 'uuid' | 'beginLsid' | 'endLsid'>,
): Inspection {
  return {
    file,
    ...head,
    packs: t.packs,
    records: { ...t.records },
    bytes: { ...t.bytes, log: t.totalPb * BigInt(head.pbs) },
    ioSizes: t.ioSizes(),
    addressRange: t.addressRange(),
    hotRegions: t.hotRegions(),
  };
}
