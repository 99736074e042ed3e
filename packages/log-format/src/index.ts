/**
 * `@walbjs/log-format`: the WalB log format, byte-compatible with walb-driver 1.5 and
 * walb-tools 1.0.19.
 *
 * - {@link checksum}: the salted WalB checksum.
 * - Byte layouts: {@link decodeSuperSector}, {@link decodeLogpackHeader}, {@link decodeLogRecord},
 *   {@link decodeWlogHeader} and their encoders.
 * - wlog files: {@link WlogReader} / {@link readWlog}, {@link WlogWriter}.
 * - Log devices: {@link formatLdev}, {@link LogDevice}, {@link extractLogpacks}, {@link catLdev},
 *   {@link restoreWlog}.
 * - {@link generateWlog}: seeded random valid logs.
 * - Errors: {@link WalbFormatError} and its subclasses.
 *
 * @example
 * import { WlogReader, LogStatistics, formatLogStat } from '@walbjs/log-format';
 * const r = await WlogReader.open('a.wlog');
 * const st = new LogStatistics(r.header.beginLsid, r.header.endLsid, r.pbs);
 * for await (const p of r) st.update(p.header);
 * console.log(formatLogStat(st.value));
 *
 * @packageDocumentation
 */
export * from './constants.ts';
export * from './errors.ts';
export {
  checksum, checksumPartial, checksumFinish, checksumVerifies, useChecksumImplementation, checksumAccelerated,
  type ChecksumImplementation,
} from './checksum.ts';
export { uuidToHex, uuidFromHex } from './layout/bytes.ts';
export * from './layout/log-record.ts';
export * from './layout/logpack-header.ts';
export * from './layout/super-sector.ts';
export * from './layout/wlog-header.ts';
export { ChunkReader, type ByteSource, type ChunkPool, type ChunkReaderOptions } from './io/byte-source.ts';
export { SinkWriter, type ByteSink } from './io/byte-sink.ts';
export {
  useBufferAlignment, bufferAlignmentKnown, alignedBuffer, allocReadBuffer, READ_BUFFER_ALIGN, type AlignOffsetFn,
} from './io/aligned-buffer.ts';
export { isStdin, locateIoError, openInput, refuseDirectoryStdin } from './io/io-error.ts';
export { commitOutput, discardOutput, isStreamPath, openPlace, placeOutput, type OutputPlace } from './io/out-place.ts';
export { openForWriting, probeDevice, type DeviceInfo } from './io/device.ts';
export { spoolStream, type SpoolOptions, type SpooledStream } from './io/spool.ts';
export * from './io/wlog-reader.ts';
export * from './io/wlog-writer.ts';
export * from './io/log-device.ts';
export * from './stats.ts';
export * from './text.ts';
export { SeededRandom } from './gen/random.ts';
export * from './gen/wlog-gen.ts';
