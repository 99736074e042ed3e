/**
 * Log statistics as the original's `wlog-show -stat` computes them.
 *
 * @module
 */
import { capacityPb } from './constants.ts';
import { nextLogpackLsid, type LogpackHeader } from './layout/logpack-header.ts';
import { isDiscard, isPadding } from './layout/log-record.ts';

/** Totals over a log. */
export interface LogStat {
  /** Begin lsid of the range (the file header's). */
  bgnLsid: bigint;
  /** End lsid of the range (the file header's; may exceed the real end). */
  endLsid: bigint;
  /** lsid after the last pack. */
  reallyEndLsid: bigint;
  /** Packs seen. */
  nrPacks: bigint;
  /** LBs of normal IOs. */
  normalLb: bigint;
  /** LBs of discard IOs. */
  discardLb: bigint;
  /** PBs of padding. */
  paddingPb: bigint;
}

/**
 * Accumulates {@link LogStat} pack by pack.
 *
 * @example
 * const st = new LogStatistics(r.header.beginLsid, r.header.endLsid, r.pbs);
 * for await (const p of r) st.update(p.header);
 * console.log(formatLogStat(st.value));
 */
export class LogStatistics {
  /** The current totals. */
  readonly value: LogStat;
  constructor(bgnLsid: bigint, endLsid: bigint, private readonly pbs: number) {
    this.value = {
      bgnLsid, endLsid, reallyEndLsid: bgnLsid, nrPacks: 0n, normalLb: 0n, discardLb: 0n, paddingPb: 0n,
    };
  }

  /** Add one pack. */
  update(h: LogpackHeader): void {
    const v = this.value;
    let normal = 0, discard = 0, padding = 0;
    for (const r of h.records) {
      if (isDiscard(r)) discard += r.ioSize;
      else if (isPadding(r)) padding += capacityPb(this.pbs, r.ioSize);
      else normal += r.ioSize;
    }
    v.normalLb += BigInt(normal);
    v.discardLb += BigInt(discard);
    v.paddingPb += BigInt(padding);
    v.nrPacks++;
    v.reallyEndLsid = nextLogpackLsid(h);
  }
}

/** The seven lines `wlog-show -stat` prints, without a trailing newline. */
export function formatLogStat(s: LogStat): string {
  return [
    `bgnLsid ${s.bgnLsid}`,
    `endLsid ${s.endLsid}`,
    `reallyEndLsid ${s.reallyEndLsid}`,
    `nrPacks ${s.nrPacks}`,
    `normalLb ${s.normalLb}`,
    `discardLb ${s.discardLb}`,
    `paddingPb ${s.paddingPb}`,
  ].join('\n');
}
