/**
 * Parsers for command-line values: lsids (unsigned 64-bit), signed lsid shifts and byte sizes.
 * Each throws a {@link UsageError}, so a bad value exits with code 2 and a message naming it.
 *
 * @module
 */
import { UsageError } from './errors.ts';

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/**
 * Parse an lsid: a decimal integer from 0 to 2^64−1 (18446744073709551615). Signs, hex, exponents,
 * fractions and empty strings are refused.
 *
 * @param what names the value in the error message (default `lsid`).
 * @throws {@link UsageError} when `text` is not such a number.
 *
 * @example
 * parseLsid('18446744073709551615') // 18446744073709551615n
 */
export function parseLsid(text: string | number, what = 'lsid'): bigint {
  const s = String(text).trim();
  if (!/^[0-9]+$/.test(s)) {
    throw new UsageError(`invalid ${what} ${JSON.stringify(String(text))}: expected a decimal integer from 0 to ${U64_MAX}`);
  }
  const v = BigInt(s);
  if (v > U64_MAX) throw new UsageError(`invalid ${what} ${s}: larger than 2^64-1 (${U64_MAX})`);
  return v;
}

/**
 * Parse a signed 64-bit decimal integer, such as an lsid shift (`wlog restore -d`).
 *
 * @throws {@link UsageError} when `text` is not a decimal integer in [−2^63, 2^63−1].
 */
export function parseSigned64(text: string | number, what = 'value'): bigint {
  const s = String(text).trim();
  if (!/^[-+]?[0-9]+$/.test(s)) {
    throw new UsageError(`invalid ${what} ${JSON.stringify(String(text))}: expected a decimal integer`);
  }
  const v = BigInt(s);
  if (v < I64_MIN || v > I64_MAX) throw new UsageError(`invalid ${what} ${s}: outside the signed 64-bit range`);
  return v;
}

/**
 * Check the lsid range of `--begin (-b)` and `--end (-e)` (either may be absent): the end is
 * exclusive, so a begin at or above it selects nothing, which is a mistake on the command line.
 *
 * @throws {@link UsageError} naming both options.
 * @example
 * checkLsidRange(5n, 5n) // throws: --begin (-b) 5 equals --end (-e) 5: the begin lsid must be below ...
 */
export function checkLsidRange(begin: bigint | undefined, end: bigint | undefined): void {
  if (begin === undefined || end === undefined || begin < end) return;
  throw new UsageError(`--begin (-b) ${begin} ${begin > end ? 'is above' : 'equals'} --end (-e) ${end}: the begin lsid must be below the end lsid, which is exclusive`);
}

const UNITS: Record<string, number> = { '': 0, k: 10, m: 20, g: 30, t: 40, p: 50 };

/**
 * Parse a byte size with an optional 1024-based suffix, as the original tools take them:
 * `512`, `4k`, `64M`, `1g`, `2T` (also `64MiB`, `64MB`, `64m`). The result must be a safe integer.
 *
 * @throws {@link UsageError} on anything else.
 *
 * @example
 * parseSize('64M') // 67108864
 */
export function parseSize(text: string | number, what = 'size'): number {
  const s = String(text).trim();
  const m = /^([0-9]+)\s*([kmgtp]?)(?:i?b)?$/i.exec(s);
  if (!m) {
    throw new UsageError(`invalid ${what} ${JSON.stringify(String(text))}: expected a number of bytes with an optional suffix k, m, g, t (1024-based)`);
  }
  const v = BigInt(m[1]) << BigInt(UNITS[m[2].toLowerCase()]);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError(`invalid ${what} ${s}: too large`);
  return Number(v);
}

/**
 * Parse a non-negative integer that fits a JavaScript number (a count or a seed).
 *
 * @throws {@link UsageError}
 */
export function parseUint(text: string | number, what: string, max = Number.MAX_SAFE_INTEGER): number {
  const s = String(text).trim();
  if (!/^[0-9]+$/.test(s) || Number(s) > max) {
    throw new UsageError(`invalid ${what} ${JSON.stringify(String(text))}: expected a decimal integer from 0 to ${max}`);
  }
  return Number(s);
}

/**
 * Parse an integer from `min` to `max` (a count, a size in MiB): {@link parseUint} with a lower bound.
 *
 * @throws {@link UsageError}
 */
export function parseIntRange(text: string | number, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const s = String(text).trim();
  if (!/^[0-9]+$/.test(s) || Number(s) < min || Number(s) > max) {
    throw new UsageError(`invalid ${what} ${JSON.stringify(String(text))}: expected a decimal integer from ${min} to ${max}`);
  }
  return Number(s);
}

/**
 * Parse a non-negative decimal number such as a duration in seconds (`0.2`, `30`); `positive`
 * refuses 0 too.
 *
 * @throws {@link UsageError}
 */
export function parseDecimal(text: string | number, what: string, positive = false): number {
  const s = String(text).trim();
  const v = Number(s);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(s) || !Number.isFinite(v) || (positive && v === 0)) {
    throw new UsageError(`invalid ${what} ${JSON.stringify(String(text))}: expected a ${positive ? 'positive' : 'non-negative'} decimal number`);
  }
  return v;
}

/**
 * Parse a TCP port: 1 to 65535, or also 0 (the system picks one) when `anyPort` is set.
 *
 * @throws {@link UsageError}
 */
export function parsePort(text: string | number, what: string, anyPort = false): number {
  const s = String(text).trim();
  const min = anyPort ? 0 : 1;
  if (!/^[0-9]{1,5}$/.test(s) || Number(s) < min || Number(s) > 65535) {
    throw new UsageError(`invalid ${what} ${JSON.stringify(String(text))}: a port is an integer from ${min} to 65535${anyPort ? ' (0: any free port)' : ''}`);
  }
  return Number(s);
}

/**
 * Check a TCP address `HOST:PORT` (`[V6]:PORT` for an IPv6 address) and return it unchanged; the
 * port may be 0 (the system picks one).
 *
 * @throws {@link UsageError}
 */
export function parseHostPort(text: string, what: string): string {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):([^:]*)$/.exec(String(text).trim());
  if (!m) throw new UsageError(`invalid ${what} ${JSON.stringify(text)}: expected HOST:PORT (or [IPV6]:PORT)`);
  parsePort(m[3], `${what} port`, true);
  return String(text).trim();
}

/**
 * A byte count for people, 1024-based: `512 B`, `4.0 KiB`, `64.0 MiB`.
 *
 * @example
 * formatBytes(67108864) // '64.0 MiB'
 */
export function formatBytes(n: number | bigint): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}
