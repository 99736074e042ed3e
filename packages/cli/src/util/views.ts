/**
 * The JSON shapes of SDK structures. Field names follow the SDK; bigints become decimal strings
 * and uuids hex when serialized by `toJson`.
 *
 * @module
 */
import {
  isDiscard, isPadding, ringBufferOffset, uuidToHex,
  type LogRecord, type LogStat, type SuperSector, type WlogHeader, type WlogPack, type LogpackHeader,
} from '@walbjs/log-format';

/** A wlog file header as JSON. */
export function wlogHeaderView(h: WlogHeader) {
  return {
    sectorType: h.sectorType,
    version: h.version,
    headerSize: h.headerSize,
    checksum: h.checksum,
    logChecksumSalt: h.logChecksumSalt,
    logicalBs: h.logicalBs,
    physicalBs: h.physicalBs,
    uuid: uuidToHex(h.uuid),
    beginLsid: h.beginLsid,
    endLsid: h.endLsid,
  };
}

/** Kind of a record: `normal`, `discard` or `padding`. */
export function recordKind(r: LogRecord): 'normal' | 'discard' | 'padding' {
  return isPadding(r) ? 'padding' : isDiscard(r) ? 'discard' : 'normal';
}

/** A log record as JSON. */
export function logRecordView(r: LogRecord) {
  return {
    lsid: r.lsid,
    lsidLocal: r.lsidLocal,
    offset: r.offset,
    ioSize: r.ioSize,
    kind: recordKind(r),
    flags: r.flags,
    checksum: r.checksum,
  };
}

/** A logpack header as JSON, with the byte offset of its header block when known. */
export function logpackView(h: LogpackHeader, offset?: number) {
  return {
    ...(offset !== undefined ? { offset } : {}),
    logpackLsid: h.logpackLsid,
    totalIoSize: h.totalIoSize,
    nRecords: h.nRecords,
    nPadding: h.nPadding,
    checksum: h.checksum,
    records: h.records.map(logRecordView),
  };
}

/** A pack read from a wlog, as JSON. */
export function wlogPackView(p: WlogPack) {
  return logpackView(p.header, p.offset);
}

/** Log statistics as JSON (every field a bigint, so every field a decimal string). */
export function logStatView(s: LogStat) {
  return { ...s };
}

/** A super sector as JSON, with the ring buffer offset `wldev-info` prints. */
export function superSectorView(s: SuperSector) {
  return {
    sectorType: s.sectorType,
    version: s.version,
    checksum: s.checksum >>> 0,
    logicalBs: s.logicalBs,
    physicalBs: s.physicalBs,
    metadataSize: s.metadataSize,
    logChecksumSalt: s.logChecksumSalt >>> 0,
    name: s.name,
    ringBufferSize: s.ringBufferSize,
    oldestLsid: s.oldestLsid,
    writtenLsid: s.writtenLsid,
    deviceSize: s.deviceSize,
    ringBufferOffset: BigInt(ringBufferOffset(s.physicalBs) + s.metadataSize),
    uuid: uuidToHex(s.uuid),
  };
}
