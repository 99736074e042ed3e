/**
 * Device nodes and sysfs attributes of walb devices (walb-driver 1.5, `module/sysfs.c`): their
 * paths, and parsers for the attribute texts the driver writes.
 *
 * @module
 */
import { SysfsFormatError } from './errors.ts';
import { validateWdevName } from './kernel-abi.ts';

/** Directory of walb device nodes. */
export const WALB_DEV_DIR = '/dev/walb';
/** The control node, where `WALB_IOCTL_CONTROL` is issued. */
export const WALB_CONTROL_PATH = '/dev/walb/control';

/**
 * `/dev/walb/NAME`, the walb device.
 *
 * @param name - device name
 * @throws {@link InvalidDeviceNameError} for a name that {@link validateWdevName} rejects
 */
export function wdevPath(name: string): string {
  return `${WALB_DEV_DIR}/${validateWdevName(name)}`;
}

/**
 * `/dev/walb/LNAME`, the read-only view of the device's log.
 *
 * @param name - device name
 * @throws {@link InvalidDeviceNameError} for a name that {@link validateWdevName} rejects
 */
export function wldevPath(name: string): string {
  return `${WALB_DEV_DIR}/L${validateWdevName(name)}`;
}

/** The read-only attributes under `/sys/block/walb!NAME/walb/`. */
export const WALB_SYSFS_ATTRIBUTES = Object.freeze([
  'ldev', 'ddev', 'lsids', 'name', 'uuid', 'log_capacity', 'log_usage', 'status',
  'support_flush', 'support_fua', 'support_discard',
] as const);

/** One of {@link WALB_SYSFS_ATTRIBUTES}. */
export type WalbSysfsAttribute = (typeof WALB_SYSFS_ATTRIBUTES)[number];

/**
 * `/sys/block/walb!NAME/walb`, the driver's attribute directory of a device (sysfs spells the
 * gendisk name `walb/NAME` with `!` for `/`).
 *
 * @param name - device name
 * @throws {@link InvalidDeviceNameError} for a name that {@link validateWdevName} rejects
 */
export function sysfsWalbDir(name: string): string {
  return `/sys/block/walb!${validateWdevName(name)}/walb`;
}

/**
 * The path of one attribute, for example `/sys/block/walb!vol0/walb/lsids`.
 *
 * @param name - device name
 * @param attribute - the attribute
 * @throws {@link InvalidDeviceNameError} for a bad name; {@link SysfsFormatError} for an unknown
 *   attribute
 */
export function sysfsAttributePath(name: string, attribute: WalbSysfsAttribute): string {
  if (!(WALB_SYSFS_ATTRIBUTES as readonly string[]).includes(attribute)) {
    throw new SysfsFormatError(String(attribute), 'is not a walb sysfs attribute');
  }
  return `${sysfsWalbDir(name)}/${attribute}`;
}

/** The lsids of a walb device, as the `lsids` attribute shows them (all in PB). */
export interface WalbLsids {
  /** Next lsid to allocate. */
  latest: bigint;
  /** All logpacks below are written to the ldev. */
  completed: bigint;
  /** A flush covering everything below is in flight. */
  flush: bigint;
  /** Everything below is durable on the ldev. */
  permanent: bigint;
  /** Everything below is also written to the ddev. */
  written: bigint;
  /** The written lsid last synced to the super sector. */
  prevWritten: bigint;
  /** Everything below may be overwritten. */
  oldest: bigint;
}

/** The `lsids` line names, in the driver's order, with their {@link WalbLsids} keys. */
export const LSIDS_LINE_NAMES: ReadonlyArray<readonly [string, keyof WalbLsids]> = Object.freeze([
  ['latest', 'latest'], ['completed', 'completed'], ['flush', 'flush'], ['permanent', 'permanent'],
  ['written', 'written'], ['prev_written', 'prevWritten'], ['oldest', 'oldest'],
] as const);

const KEY_OF = new Map<string, keyof WalbLsids>(LSIDS_LINE_NAMES);
const U64_MAX = (1n << 64n) - 1n;
const MAX_LSIDS_TEXT = 4096;

function parseU64(attribute: string, text: string, line?: number): bigint {
  if (!/^[0-9]{1,20}$/.test(text)) throw new SysfsFormatError(attribute, `${JSON.stringify(text)} is not a decimal u64`, line);
  const v = BigInt(text);
  if (v > U64_MAX) throw new SysfsFormatError(attribute, `${text} exceeds 2^64-1`, line);
  return v;
}

/**
 * Parse the `lsids` attribute: lines `NAME VALUE` (name, spaces or tabs, decimal), one per lsid.
 *
 * Every one of the seven names must appear exactly once. A well-formed line with another name is
 * skipped, as the original tools do (older drivers also showed `submitted`). Empty lines and
 * `\r\n` endings are accepted. Lsid order is not checked here; see {@link checkLsidOrder}.
 *
 * @param text - the attribute's content
 * @throws {@link SysfsFormatError} naming the line for malformed input, a duplicate or missing
 *   name, or a value that is not a u64
 *
 * @example
 * parseLsids('latest       10\ncompleted    10\nflush        10\npermanent    10\n' +
 *            'written      10\nprev_written 8\noldest       0\n').prevWritten // 8n
 */
export function parseLsids(text: string): WalbLsids {
  if (typeof text !== 'string') throw new SysfsFormatError('lsids', 'content is not a string');
  if (text.length > MAX_LSIDS_TEXT) throw new SysfsFormatError('lsids', `content is longer than ${MAX_LSIDS_TEXT} characters`);
  const got = new Map<keyof WalbLsids, bigint>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    const cols = raw.split(/[ \t]+/).filter((c) => c !== '');
    if (cols.length !== 2) throw new SysfsFormatError('lsids', `expected "name value", got ${JSON.stringify(raw)}`, line);
    const [name, value] = cols;
    const key = KEY_OF.get(name);
    if (key === undefined) {
      parseU64('lsids', value, line);
      return;
    }
    if (got.has(key)) throw new SysfsFormatError('lsids', `duplicate ${name}`, line);
    got.set(key, parseU64('lsids', value, line));
  });
  const missing = LSIDS_LINE_NAMES.filter(([, key]) => !got.has(key)).map(([n]) => n);
  if (missing.length) throw new SysfsFormatError('lsids', `missing ${missing.join(', ')}`);
  const out = {} as WalbLsids;
  for (const [, key] of LSIDS_LINE_NAMES) out[key] = got.get(key) as bigint;
  return out;
}

/**
 * Format lsids exactly as the driver's `lsids` attribute does (names padded to 13 columns, one
 * line each, trailing newline). The userspace capture device serves this text.
 *
 * @param l - the lsids
 */
export function formatLsids(l: WalbLsids): string {
  return LSIDS_LINE_NAMES.map(([name, key]) => `${name.padEnd(13)}${l[key]}\n`).join('');
}

/**
 * The first broken link of the driver's lsid order
 * `oldest ≤ prev_written ≤ written ≤ permanent ≤ flush ≤ completed ≤ latest`, or `undefined` when
 * the order holds.
 *
 * @param l - the lsids
 * @returns a description such as `"written (5) > permanent (4)"`, or `undefined`
 */
export function lsidOrderViolation(l: WalbLsids): string | undefined {
  const chain: Array<[string, bigint]> = [
    ['oldest', l.oldest], ['prev_written', l.prevWritten], ['written', l.written], ['permanent', l.permanent],
    ['flush', l.flush], ['completed', l.completed], ['latest', l.latest],
  ];
  for (let i = 1; i < chain.length; i++) {
    const [a, av] = chain[i - 1];
    const [b, bv] = chain[i];
    if (av > bv) return `${a} (${av}) > ${b} (${bv})`;
  }
  return undefined;
}

/**
 * Check the driver's lsid order (see {@link lsidOrderViolation}).
 *
 * @param l - the lsids
 * @returns `l`
 * @throws {@link SysfsFormatError} when the order is broken
 */
export function checkLsidOrder(l: WalbLsids): WalbLsids {
  const v = lsidOrderViolation(l);
  if (v !== undefined) throw new SysfsFormatError('lsids', `lsid order broken: ${v}`);
  return l;
}

/** A block device number. */
export interface DevNumber {
  /** Major number. */
  major: number;
  /** Minor number. */
  minor: number;
}

/**
 * Parse the `ldev` or `ddev` attribute, `"MAJOR:MINOR\n"`.
 *
 * @param text - the attribute's content
 * @param attribute - which attribute, for error messages
 * @throws {@link SysfsFormatError} unless the text is two decimal u32 values joined by `:`
 */
export function parseDevNumber(text: string, attribute = 'ldev'): DevNumber {
  const m = typeof text === 'string' ? /^([0-9]{1,10}):([0-9]{1,10})\r?\n?$/.exec(text) : null;
  if (!m) throw new SysfsFormatError(attribute, `expected "major:minor", got ${JSON.stringify(text)}`);
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major > 0xffff_ffff || minor > 0xffff_ffff) throw new SysfsFormatError(attribute, 'number exceeds a u32');
  return { major, minor };
}

/**
 * Parse the `uuid` attribute: 16 bytes as the driver prints them (`"XX XX … XX \n"`, upper-case
 * hex, a space after each byte), or as the tools print them (32 hex digits).
 *
 * @param text - the attribute's content
 * @throws {@link SysfsFormatError} unless the text holds exactly 16 hex bytes in one of those forms
 */
export function parseSysfsUuid(text: string): Uint8Array {
  const s = typeof text === 'string' ? text.trim() : '';
  let hex: string | undefined;
  if (/^[0-9A-Fa-f]{32}$/.test(s)) hex = s;
  else if (/^[0-9A-Fa-f]{2}( [0-9A-Fa-f]{2}){15}$/.test(s)) hex = s.replaceAll(' ', '');
  if (hex === undefined) throw new SysfsFormatError('uuid', `expected 16 hex bytes, got ${JSON.stringify(text)}`);
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}
