/**
 * Streaming wlog writer: the header, contiguous packs, and the end marker.
 *
 * @module
 */
import { LOGICAL_BLOCK_SIZE, capacityPb } from '../constants.ts';
import { LsidSequenceError, ValueOutOfRangeError } from '../errors.ts';
import {
  encodeLogpackHeader, endMarkerHeader, nextLogpackLsid, type LogpackHeader,
} from '../layout/logpack-header.ts';
import { hasData } from '../layout/log-record.ts';
import { encodeWlogHeader, makeWlogHeader, type WlogHeader, type WlogHeaderInit } from '../layout/wlog-header.ts';
import { SinkWriter, type ByteSink } from './byte-sink.ts';

/** Options of {@link WlogWriter.create}. */
export interface WlogWriterOptions {
  /** `fdatasync` a file before closing it (default false, as the original). */
  sync?: boolean;
}

/**
 * Writes a wlog file: packs must be contiguous from the header's `beginLsid`; packs without
 * records are skipped, as the original writer does. `close()` writes the end marker.
 *
 * @example
 * const w = await WlogWriter.create('out.wlog', { pbs: 512, salt, uuid, beginLsid: 0n });
 * await w.writePack(header, ios);
 * await w.close();
 */
export class WlogWriter {
  /** The header written. */
  readonly header: WlogHeader;
  /** lsid the next pack must have. */
  endLsid: bigint;
  private closed = false;

  private constructor(private readonly out: SinkWriter, header: WlogHeader, private readonly sync: boolean) {
    this.header = header;
    this.endLsid = header.beginLsid;
  }

  /** Create a writer and write the header (a full {@link WlogHeader} or its essentials). */
  static async create(sink: ByteSink, header: WlogHeader | WlogHeaderInit, opts: WlogWriterOptions = {}): Promise<WlogWriter> {
    const h = 'sectorType' in header ? { ...header } : makeWlogHeader(header);
    const block = encodeWlogHeader(h);
    const out = await SinkWriter.open(sink);
    await out.write(block);
    return new WlogWriter(out, h, opts.sync ?? false);
  }

  /** Physical block size. */
  get pbs(): number {
    return this.header.physicalBs;
  }

  /**
   * Write one pack: its header (re-encoded with this log's salt) and one data buffer per record
   * that has data. A buffer may be the exact `io_size·512` bytes or the PB-padded extent; it is
   * zero-padded to whole PBs.
   *
   * @throws {@link LsidSequenceError} when the pack does not start at {@link endLsid};
   *   {@link ValueOutOfRangeError} when the data does not match the records.
   */
  async writePack(header: LogpackHeader, ios: readonly Uint8Array[]): Promise<void> {
    if (this.closed) throw new Error('WlogWriter is closed');
    if (header.records.length === 0) return;
    if (header.logpackLsid !== this.endLsid) {
      throw new LsidSequenceError(`pack lsid ${header.logpackLsid}, expected ${this.endLsid}`, { lsid: header.logpackLsid });
    }
    const pbs = this.pbs;
    const withData = header.records.filter(hasData);
    if (withData.length !== ios.length) {
      throw new ValueOutOfRangeError('ios', `${ios.length} data buffers for ${withData.length} records with data`, { lsid: header.logpackLsid });
    }
    const block = encodeLogpackHeader({ ...header, records: header.records }, pbs, this.header.logChecksumSalt);
    await this.out.write(block);
    for (let i = 0; i < ios.length; i++) {
      const rec = withData[i];
      const full = capacityPb(pbs, rec.ioSize) * pbs;
      const io = ios[i];
      if (io.byteLength === full) {
        await this.out.write(io);
      } else if (io.byteLength >= rec.ioSize * LOGICAL_BLOCK_SIZE && io.byteLength < full) {
        const padded = Buffer.alloc(full);
        padded.set(io);
        await this.out.write(padded);
      } else {
        throw new ValueOutOfRangeError('ios', `record at lsid ${rec.lsid}: ${io.byteLength} bytes for ${rec.ioSize} LB`, { lsid: rec.lsid });
      }
    }
    this.endLsid = nextLogpackLsid(header);
  }

  /** Write the end marker and close the output. Calling it again does nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.out.write(encodeLogpackHeader(endMarkerHeader(), this.pbs, this.header.logChecksumSalt));
    await this.out.close(this.sync);
  }
}
