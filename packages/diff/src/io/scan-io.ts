/**
 * What the wlog scans (the JavaScript one and the native walk) hand out: each IO of the log,
 * classified, and the hooks a consumer gives; and the checks both make the same way.
 *
 * @module
 */
import type { FileHandle } from 'node:fs/promises';
import { WalbFormatError, decodeLogpackHeader, type LogRecord, type LogpackHeader, type WlogHeader } from '@walbjs/log-format';
import { ValueOutOfRangeError } from '../errors.ts';

/** Kinds of a scanned IO. */
export const SCAN_NORMAL = 0;
export const SCAN_ALLZERO = 1;
export const SCAN_DISCARD = 2;

/** One IO of the log, as the scanner hands it out (the object is reused: copy what you keep). */
export interface ScanIo {
  /** First LB. */
  addr: number;
  /** LB. */
  blocks: number;
  /** {@link SCAN_NORMAL}, {@link SCAN_ALLZERO} or {@link SCAN_DISCARD}. */
  kind: number;
  /**
   * A normal IO's `blocks·512` bytes (a view: see the module description); undefined when a
   * native walk stored it compressed and did not keep it (then `stored` has it).
   */
  data: Buffer | undefined;
  /** Checksum with salt 0 of `data` (derived from the log's, no extra pass). */
  csum0: number;
  /** Index of the wlog file in the list. */
  file: number;
  /** Byte offset of the data in that file. */
  filePos: number;
  /**
   * A normal IO's stored form, when the scan stored it on the way (a native walk asked to store
   * with a codec): a view that lives as long as `data`. Undefined otherwise.
   */
  stored: ScanStored | undefined;
}

/** An IO's bytes as a wdiff stores them. */
export interface ScanStored {
  /** Compression type (0: `stored` is the raw data). */
  cmpr: number;
  stored: Buffer;
  /** Checksum with salt 0 of `stored`. */
  checksum: number;
}

/** What the consumer does with the scan. */
export interface WlogScanHooks {
  /** Called once with the first wlog's header, before any IO. */
  begin?(header: WlogHeader): void | Promise<void>;
  /** Called for each IO in log order (synchronously: no await between IOs of one read). */
  io(io: ScanIo): void;
  /**
   * Called after the IOs of one read buffer were handed out; `release` gives the buffer back to
   * the pool (call it once the views into it are no longer needed). Awaited: the place for
   * back-pressure.
   */
  chunkDone(release: () => void): void | Promise<void>;
}

/** What the scan saw. */
export interface WlogScanInfo {
  uuid: Uint8Array;
  beginLsid: bigint;
  endLsid: bigint;
  /** The open files (closed by {@link closeScanFiles}); kept open for a second pass. */
  files: FileHandle[];
  /** IOs handed out. */
  ios: number;
}

/** Where the walk of one wlog ended: the lsid after its last pack, and the file offset just past its end marker (where another wlog may begin). */
export interface WlogWalkEnd {
  lsid: bigint;
  end: number;
}

/**
 * Decode the logpack header at `buf[off]`, expected at `lsid`; its errors name byte `offset` of
 * `source`.
 */
export function decodePackAt(buf: Uint8Array, off: number, pbs: number, salt: number, lsid: bigint, offset: number, source: string): LogpackHeader {
  const loc = { offset, source, lsid };
  try {
    return decodeLogpackHeader(buf, off, pbs, salt, { expectedLsid: lsid, loc });
  } catch (e) {
    if (e instanceof WalbFormatError) e.locate(loc);
    throw e;
  }
}

/** Record `rec`'s first LB, refused when its IO would end beyond 2^53 LB. */
export function ioAddress(rec: LogRecord, source: string): number {
  const addr = Number(rec.offset);
  if (!Number.isSafeInteger(addr + rec.ioSize)) throw new ValueOutOfRangeError('offset', rec.offset, 'exceeds 2^53 LB', { source });
  return addr;
}

/** Fill `io` with discard record `rec` of file `file`. */
export function setDiscard(io: ScanIo, rec: LogRecord, file: number, source: string): void {
  io.addr = ioAddress(rec, source); io.blocks = rec.ioSize; io.kind = SCAN_DISCARD;
  io.data = undefined; io.csum0 = 0; io.file = file; io.filePos = 0; io.stored = undefined;
}
