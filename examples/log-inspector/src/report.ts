/**
 * Printing an {@link Inspection}: aligned tables for people, JSON (bigints as decimal strings) for
 * programs.
 *
 * @module
 */
import { REGION_BYTES, type Inspection } from './inspect.ts';

/** The inspection as JSON text: every bigint becomes a decimal string. */
export function toJson(x: Inspection): string {
  return JSON.stringify(x, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

type Align = 'l' | 'r';

/** Rows of cells as lines, each column padded to its widest cell, two spaces between columns. */
export function table(rows: string[][], align: Align[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length); });
  return rows.map((row) =>
    row.map((c, i) => ((align[i] ?? 'l') === 'r' ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd());
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** `n` bytes in binary units: exact for powers of two ("4 KiB"), else three significant digits. */
export function human(n: bigint): string {
  let u = 0;
  let v = Number(n);
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const s = Number.isInteger(v) ? String(v) : v.toPrecision(3);
  return `${s} ${UNITS[u]}`;
}

const pct = (part: number, whole: number) => (whole === 0 ? '' : `${((100 * part) / whole).toFixed(1)}%`);

/** The human-readable report. */
export function toText(x: Inspection): string {
  const out: string[] = [];
  const s = x.source;
  const info: string[][] = [
    ['file', x.file],
    ['format', s.kind === 'wlog' ? 'wlog file' : `log device${s.name ? ` "${s.name}"` : ''}`],
    ['pbs', `${x.pbs} B`],
    ['salt', String(x.salt)],
    ['uuid', x.uuid],
  ];
  if (s.kind === 'wlog') {
    info.push(['header lsids', `[${s.headerBeginLsid}, ${s.headerEndLsid})`]);
  } else {
    info.push(['ring buffer', `${s.ringBufferSize} PB (${human(s.ringBufferSize * BigInt(x.pbs))})`]);
    info.push(['oldest lsid', String(s.oldestLsid)]);
    info.push(['written lsid', String(s.writtenLsid)]);
    info.push(['device size', `${s.deviceSizeLb} LB (${human(s.deviceSizeLb * 512n)})`]);
    info.push(['log ends', s.stopReason ? `${s.stoppedBy}: ${s.stopReason}` : s.stoppedBy]);
  }
  info.push(['lsids', `[${x.beginLsid}, ${x.endLsid})  ${x.endLsid - x.beginLsid} PB`]);
  info.push(['log size', `${x.bytes.log} B (${human(x.bytes.log)})`]);
  info.push(['packs', String(x.packs)]);
  info.push(['address range', x.addressRange
    ? `[${x.addressRange.beginByte}, ${x.addressRange.endByte}) B  ${human(x.addressRange.beginByte)} .. ${human(x.addressRange.endByte)}`
    : '-']);
  out.push(...table(info, ['l', 'l']));

  const r = x.records;
  out.push('');
  out.push(...table([
    ['records', 'count', 'share', 'bytes', ''],
    ['normal', String(r.normal), pct(r.normal, r.total), String(x.bytes.normal), human(x.bytes.normal)],
    ['  all-zero data', String(r.allZero), pct(r.allZero, r.total), String(x.bytes.allZero), human(x.bytes.allZero)],
    ['discard', String(r.discard), pct(r.discard, r.total), String(x.bytes.discard), human(x.bytes.discard)],
    ['padding', String(r.padding), pct(r.padding, r.total), String(x.bytes.padding), human(x.bytes.padding)],
    ['total', String(r.total), '', '', ''],
  ], ['l', 'r', 'r', 'r', 'r']));

  out.push('');
  if (x.ioSizes.length === 0) out.push('IO sizes: no normal or discard IOs');
  else {
    out.push('IO sizes (from <= size < to)');
    out.push(...table([
      ['from', 'to', 'normal', 'discard'],
      ...x.ioSizes.map((b) => [human(b.fromBytes), human(b.toBytes), String(b.normal), String(b.discard)]),
    ], ['r', 'r', 'r', 'r']));
  }

  out.push('');
  if (x.hotRegions.length === 0) out.push(`hottest ${human(REGION_BYTES)} regions: no normal writes`);
  else {
    out.push(`hottest ${human(REGION_BYTES)} regions (bytes of normal writes)`);
    out.push(...table([
      ['rank', 'from', 'to', 'writes', 'bytes written', ''],
      ...x.hotRegions.map((h, i) => [
        String(i + 1), human(h.beginByte), human(h.endByte), String(h.writes), String(h.bytesWritten), human(h.bytesWritten),
      ]),
    ], ['r', 'r', 'r', 'r', 'r', 'r']));
  }
  return out.join('\n');
}
