/**
 * Text dumps in the exact formats of the original tools (`wlog-show`, `wldev-info`).
 *
 * @module
 */
import { ringBufferOffset } from './constants.ts';
import { hex32, uuidToHex } from './layout/bytes.ts';
import type { LogpackHeader } from './layout/logpack-header.ts';
import { isDiscard, isExist, isPadding, type LogRecord } from './layout/log-record.ts';
import type { SuperSector } from './layout/super-sector.ts';
import type { WlogHeader } from './layout/wlog-header.ts';

const pad = (v: number | bigint, w: number) => String(v).padStart(w, ' ');

/** `wlog_r: lsid %10u %4u io %10u %4u flags %c%c%c csum %08x` */
export function formatLogRecord(r: LogRecord): string {
  const flags = (isExist(r) ? 'E' : '-') + (isPadding(r) ? 'P' : '-') + (isDiscard(r) ? 'D' : '-');
  return `wlog_r: lsid ${pad(r.lsid, 10)} ${pad(r.lsidLocal, 4)} io ${pad(r.offset, 10)} ${pad(r.ioSize, 4)} flags ${flags} csum ${hex32(r.checksum)}`;
}

/** `wlog_p: lsid %10u total %4u n_rec %2u n_pad %2u csum %08x` */
export function formatLogpackHead(h: LogpackHeader): string {
  return `wlog_p: lsid ${pad(h.logpackLsid, 10)} total ${pad(h.totalIoSize, 4)} n_rec ${pad(h.nRecords, 2)} n_pad ${pad(h.nPadding, 2)} csum ${hex32(h.checksum)}`;
}

/** The pack line followed by its record lines, as `wlog-show -pack` prints a pack. */
export function formatLogpack(h: LogpackHeader): string {
  return [formatLogpackHead(h), ...h.records.map(formatLogRecord)].join('\n');
}

/** `wlog_h: ver %3u pbs %4u salt %08x uuid %s lsid %u %u` */
export function formatWlogHeader(h: WlogHeader): string {
  return `wlog_h: ver ${pad(h.version, 3)} pbs ${pad(h.physicalBs, 4)} salt ${hex32(h.logChecksumSalt)} uuid ${uuidToHex(h.uuid)} lsid ${h.beginLsid} ${h.endLsid}`;
}

/** The super sector as `wldev-info` prints it (one `key: value` per line, trailing newline). */
export function formatSuperSector(s: SuperSector): string {
  return [
    `sectorType: ${s.sectorType}`,
    `version: ${s.version}`,
    `checksum: ${s.checksum >>> 0}`,
    `lbs: ${s.logicalBs}`,
    `pbs: ${s.physicalBs}`,
    `metadataSize: ${s.metadataSize}`,
    `salt: ${s.logChecksumSalt >>> 0}`,
    `name: ${s.name}`,
    `ringBufferSize: ${s.ringBufferSize}`,
    `oldestLsid: ${s.oldestLsid}`,
    `writtenLsid: ${s.writtenLsid}`,
    `deviceSize: ${s.deviceSize}`,
    `ringBufferOffset: ${ringBufferOffset(s.physicalBs) + s.metadataSize}`,
    `uuid: ${uuidToHex(s.uuid)}`,
  ].join('\n') + '\n';
}
