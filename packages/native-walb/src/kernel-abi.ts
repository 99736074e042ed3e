/**
 * The userspace ABI of the walb kernel driver (walb-driver 1.5, `include/linux/walb/ioctl.h`) as
 * pure data: ioctl request numbers, the `walb_ctl` command ids, the packed struct layouts and their
 * little-endian byte encodings, and the start-parameter rules of the driver and of `wdevc`.
 *
 * Nothing here touches a device; the native addon issues the ioctls with these bytes.
 *
 * @module
 */
import { InvalidDeviceNameError, TruncatedError, ValueOutOfRangeError } from './errors.ts';

// ---------------------------------------------------------------------------------------------
// ioctl numbers (asm-generic encoding, used by x86_64 and arm64)
// ---------------------------------------------------------------------------------------------

/** Bits of the command-number field of an ioctl request. */
export const IOC_NRBITS = 8;
/** Bits of the type (magic) field. */
export const IOC_TYPEBITS = 8;
/** Bits of the argument-size field. */
export const IOC_SIZEBITS = 14;
/** Bits of the direction field. */
export const IOC_DIRBITS = 2;
/** Shift of the command-number field. */
export const IOC_NRSHIFT = 0;
/** Shift of the type field. */
export const IOC_TYPESHIFT = IOC_NRSHIFT + IOC_NRBITS;
/** Shift of the size field. */
export const IOC_SIZESHIFT = IOC_TYPESHIFT + IOC_TYPEBITS;
/** Shift of the direction field. */
export const IOC_DIRSHIFT = IOC_SIZESHIFT + IOC_SIZEBITS;
/** Direction: no data transfer. */
export const IOC_NONE = 0;
/** Direction: userspace writes (the kernel reads the argument). */
export const IOC_WRITE = 1;
/** Direction: userspace reads (the kernel writes the argument). */
export const IOC_READ = 2;

/** The fields of an ioctl request number. */
export interface IoctlFields {
  /** Direction bits: a combination of {@link IOC_WRITE} and {@link IOC_READ}, or {@link IOC_NONE}. */
  dir: number;
  /** Type (magic) byte, 0xfe for walb. */
  type: number;
  /** Command number within the type. */
  nr: number;
  /** Size of the argument in bytes. */
  size: number;
}

function checkBits(field: string, v: number, bits: number): void {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits) {
    throw new ValueOutOfRangeError(field, v, `is not an integer in 0..${2 ** bits - 1}`);
  }
}

/**
 * `_IOC(dir, type, nr, size)`: an ioctl request number, as an unsigned 32-bit value.
 *
 * @param dir - direction bits (0..3)
 * @param type - type byte (0..255)
 * @param nr - command number (0..255)
 * @param size - argument size in bytes (0..16383)
 * @throws {@link ValueOutOfRangeError} when a field does not fit its bits
 */
export function ioc(dir: number, type: number, nr: number, size: number): number {
  checkBits('dir', dir, IOC_DIRBITS);
  checkBits('type', type, IOC_TYPEBITS);
  checkBits('nr', nr, IOC_NRBITS);
  checkBits('size', size, IOC_SIZEBITS);
  return ((dir << IOC_DIRSHIFT) | (size << IOC_SIZESHIFT) | (type << IOC_TYPESHIFT) | (nr << IOC_NRSHIFT)) >>> 0;
}

/** `_IO(type, nr)`: a request without an argument. */
export function io(type: number, nr: number): number {
  return ioc(IOC_NONE, type, nr, 0);
}

/** `_IOR(type, nr, size)`: the kernel writes a `size`-byte argument. */
export function ior(type: number, nr: number, size: number): number {
  return ioc(IOC_READ, type, nr, size);
}

/** `_IOW(type, nr, size)`: the kernel reads a `size`-byte argument. */
export function iow(type: number, nr: number, size: number): number {
  return ioc(IOC_WRITE, type, nr, size);
}

/** `_IOWR(type, nr, size)`: the argument goes both ways. */
export function iowr(type: number, nr: number, size: number): number {
  return ioc(IOC_READ | IOC_WRITE, type, nr, size);
}

/**
 * Split a request number into its fields (`_IOC_DIR`, `_IOC_TYPE`, `_IOC_NR`, `_IOC_SIZE`).
 *
 * @param request - an unsigned 32-bit request number
 * @throws {@link ValueOutOfRangeError} when `request` is not a u32
 *
 * @example
 * decodeIoctl(WALB_IOCTL_CONTROL) // { dir: 3, type: 0xfe, nr: 1, size: 120 }
 */
export function decodeIoctl(request: number): IoctlFields {
  if (!Number.isInteger(request) || request < 0 || request > 0xffff_ffff) {
    throw new ValueOutOfRangeError('request', request, 'is not a u32');
  }
  return {
    dir: (request >>> IOC_DIRSHIFT) & ((1 << IOC_DIRBITS) - 1),
    type: (request >>> IOC_TYPESHIFT) & ((1 << IOC_TYPEBITS) - 1),
    nr: (request >>> IOC_NRSHIFT) & ((1 << IOC_NRBITS) - 1),
    size: (request >>> IOC_SIZESHIFT) & ((1 << IOC_SIZEBITS) - 1),
  };
}

// ---------------------------------------------------------------------------------------------
// Sizes and layouts
// ---------------------------------------------------------------------------------------------

/** `DISK_NAME_LEN`: bytes of a name field, NUL included. */
export const DISK_NAME_LEN = 32;
/** Longest walb device name in bytes: 32 − len("walb") − len("/L") − 1 = 25. */
export const WALB_DEV_NAME_MAX_LEN = 25;
/** `MAX_PENDING_MB`: the largest `max_pending_mb`. */
export const MAX_PENDING_MB = 16384;
/** `WALB_DYNAMIC_MINOR` (−1U): ask START_DEV to choose the walb device minor. */
export const WALB_DYNAMIC_MINOR = 0xffff_ffff;
/** Largest SET_CHECKPOINT_INTERVAL value in ms (one day). */
export const WALB_MAX_CHECKPOINT_INTERVAL_MS = 86_400_000;
/** Default checkpoint interval of a started device, in ms. */
export const WALB_DEFAULT_CHECKPOINT_INTERVAL_MS = 10_000;
/** Largest FREEZE timeout in seconds (one day); 0 means no timeout. */
export const WALB_MAX_FREEZE_TIMEOUT_SEC = 86_400;

/** Bytes of `struct walb_ctl`. */
export const WALB_CTL_SIZE = 120;
/** Bytes of `struct walb_ctl_data`. */
export const WALB_CTL_DATA_SIZE = 48;
/** Bytes of `struct walb_start_param`. */
export const WALB_START_PARAM_SIZE = 64;
/** Bytes of `struct walb_disk_data`. */
export const WALB_DISK_DATA_SIZE = 40;

/** Offset and size of one field of a packed struct. */
export interface FieldLayout {
  /** Byte offset from the start of the struct. */
  readonly offset: number;
  /** Size in bytes. */
  readonly size: number;
}

/** A packed struct: its size and its fields, keyed by their C names. */
export interface StructLayout<F extends string> {
  /** The C struct name. */
  readonly name: string;
  /** `sizeof` the struct. */
  readonly size: number;
  /** The fields, in declaration order. */
  readonly fields: { readonly [K in F]: FieldLayout };
}

function layout<F extends string>(name: string, fields: ReadonlyArray<readonly [F, number]>): StructLayout<F> {
  const out = {} as { [K in F]: FieldLayout };
  let off = 0;
  for (const [f, size] of fields) {
    out[f] = Object.freeze({ offset: off, size });
    off += size;
  }
  return Object.freeze({ name, size: off, fields: Object.freeze(out) });
}

/** Layout of `struct walb_ctl_data` (48 bytes, packed, LP64). */
export const WALB_CTL_DATA_LAYOUT = layout('walb_ctl_data', [
  ['wmajor', 4], ['wminor', 4], ['lmajor', 4], ['lminor', 4], ['dmajor', 4], ['dminor', 4],
  ['buf_size', 8], ['buf', 8], ['kbuf', 8],
] as const);

/** Layout of `struct walb_ctl` (120 bytes, packed). */
export const WALB_CTL_LAYOUT = layout('walb_ctl', [
  ['command', 4], ['val_int', 4], ['val_u64', 8], ['val_u32', 4], ['error', 4],
  ['u2k', WALB_CTL_DATA_SIZE], ['k2u', WALB_CTL_DATA_SIZE],
] as const);

/** Layout of `struct walb_start_param` (64 bytes, packed). */
export const WALB_START_PARAM_LAYOUT = layout('walb_start_param', [
  ['name', DISK_NAME_LEN], ['max_pending_mb', 4], ['min_pending_mb', 4], ['queue_stop_timeout_ms', 4],
  ['max_logpack_kb', 4], ['log_flush_interval_ms', 4], ['log_flush_interval_mb', 4], ['n_pack_bulk', 4],
  ['n_io_bulk', 4],
] as const);

/** Layout of `struct walb_disk_data` (40 bytes), one entry of a LIST_DEV answer. */
export const WALB_DISK_DATA_LAYOUT = layout('walb_disk_data', [
  ['name', DISK_NAME_LEN], ['major', 4], ['minor', 4],
] as const);

// ---------------------------------------------------------------------------------------------
// Request numbers and commands
// ---------------------------------------------------------------------------------------------

/** `WALB_IOCTL_ID`, the ioctl type byte of walb. */
export const WALB_IOCTL_ID = 0xfe;
/** `WALB_IOCTL_VERSION = _IOR(0xfe, 0, u32)` = 0x8004FE00, on the control node or a walb device. */
export const WALB_IOCTL_VERSION = ior(WALB_IOCTL_ID, 0, 4);
/** `WALB_IOCTL_CONTROL = _IOWR(0xfe, 1, struct walb_ctl)` = 0xC078FE01, on `/dev/walb/control`. */
export const WALB_IOCTL_CONTROL = iowr(WALB_IOCTL_ID, 1, WALB_CTL_SIZE);
/** `WALB_IOCTL_WDEV = _IOWR(0xfe, 2, struct walb_ctl)` = 0xC078FE02, on `/dev/walb/NAME` opened O_RDWR. */
export const WALB_IOCTL_WDEV = iowr(WALB_IOCTL_ID, 2, WALB_CTL_SIZE);

/**
 * `walb_ctl.command` ids (the driver's enum without its `WALB_IOCTL_` prefix).
 * 9–15 are the deprecated snapshot commands, which the driver does not serve.
 */
export const WalbCtlCommand = {
  /** Start a walb device over an ldev and a ddev (control). */
  START_DEV: 1,
  /** Stop a walb device; `val_int` = force (control). */
  STOP_DEV: 2,
  /** Get the walb major number into `k2u.wmajor` (control). */
  GET_MAJOR: 3,
  /** List devices with minors in a range (control). */
  LIST_DEV: 4,
  /** Count devices into `val_int` (control). */
  NUM_OF_DEV: 5,
  /** `val_u64` ← oldest_lsid (wdev). */
  GET_OLDEST_LSID: 6,
  /** oldest_lsid ← `val_u64` (wdev). */
  SET_OLDEST_LSID: 7,
  /** Not implemented by the driver. */
  STATUS: 8,
  /** @deprecated Not served by the driver. */
  CREATE_SNAPSHOT: 9,
  /** @deprecated Not served by the driver. */
  DELETE_SNAPSHOT: 10,
  /** @deprecated Not served by the driver. */
  DELETE_SNAPSHOT_RANGE: 11,
  /** @deprecated Not served by the driver. */
  GET_SNAPSHOT: 12,
  /** @deprecated Not served by the driver. */
  NUM_OF_SNAPSHOT_RANGE: 13,
  /** @deprecated Not served by the driver. */
  LIST_SNAPSHOT_RANGE: 14,
  /** @deprecated Not served by the driver. */
  LIST_SNAPSHOT_FROM: 15,
  /** `val_u32` ← checkpoint interval in ms (wdev). */
  GET_CHECKPOINT_INTERVAL: 16,
  /** Write written_lsid to the super sector now (wdev). */
  TAKE_CHECKPOINT: 17,
  /** Checkpoint interval ← `val_u32` ms, at most one day (wdev). */
  SET_CHECKPOINT_INTERVAL: 18,
  /** `val_u64` ← written_lsid (wdev). */
  GET_WRITTEN_LSID: 19,
  /** `val_u64` ← permanent_lsid (wdev). */
  GET_PERMANENT_LSID: 20,
  /** `val_u64` ← completed_lsid (wdev). */
  GET_COMPLETED_LSID: 21,
  /** `val_u64` ← latest − oldest in PB (wdev). */
  GET_LOG_USAGE: 22,
  /** `val_u64` ← ring buffer size in PB (wdev). */
  GET_LOG_CAPACITY: 23,
  /** `val_int` ← whether the device supports flush (wdev). */
  IS_FLUSH_CAPABLE: 24,
  /** Grow the device to `val_u64` LB, 0 = the ddev size (wdev). */
  RESIZE: 25,
  /** Reset the log: new uuid and salt, all lsids 0 (wdev; `wdevc reset-wal`). */
  CLEAR_LOG: 26,
  /** `val_int` ← whether the log has overflowed (wdev). */
  IS_LOG_OVERFLOW: 27,
  /** Stop write IO; `val_u32` = timeout in s, 0 = none (wdev). */
  FREEZE: 28,
  /** Resume write IO (wdev). */
  MELT: 29,
  /** `val_int` ← whether the device is frozen (wdev). */
  IS_FROZEN: 30,
} as const;

/** A `walb_ctl.command` name. */
export type WalbCtlCommandName = keyof typeof WalbCtlCommand;
/** A `walb_ctl.command` id, 1..30. */
export type WalbCtlCommand = (typeof WalbCtlCommand)[WalbCtlCommandName];

/** Which node a command is issued on. */
export type WalbCtlTarget = 'control' | 'wdev';

/** What the driver does with one command id. */
export interface WalbCtlCommandInfo {
  /** The id in `walb_ctl.command`. */
  readonly id: WalbCtlCommand;
  /** The name without the `WALB_IOCTL_` prefix. */
  readonly name: WalbCtlCommandName;
  /** `control`: issued with {@link WALB_IOCTL_CONTROL} on `/dev/walb/control`; `wdev`: with {@link WALB_IOCTL_WDEV} on the device. */
  readonly target: WalbCtlTarget;
  /** Whether the driver serves the command (false for STATUS and the deprecated snapshot commands). */
  readonly served: boolean;
}

const CONTROL_COMMANDS = new Set<number>([1, 2, 3, 4, 5]);
const UNSERVED_COMMANDS = new Set<number>([8, 9, 10, 11, 12, 13, 14, 15]);

/** Every command, by id (index 0 is unused: `WALB_IOCTL_DUMMY`). */
export const WALB_CTL_COMMANDS: readonly WalbCtlCommandInfo[] = Object.freeze(
  (Object.entries(WalbCtlCommand) as Array<[WalbCtlCommandName, WalbCtlCommand]>)
    .sort((a, b) => a[1] - b[1])
    .map(([name, id]) => Object.freeze({
      id, name, target: CONTROL_COMMANDS.has(id) ? 'control' as const : 'wdev' as const, served: !UNSERVED_COMMANDS.has(id),
    })),
);

/**
 * What the driver does with command `id`.
 *
 * @param id - a `walb_ctl.command` value
 * @throws {@link ValueOutOfRangeError} when `id` is not 1..30
 *
 * @example
 * walbCtlCommandInfo(26) // { id: 26, name: 'CLEAR_LOG', target: 'wdev', served: true }
 */
export function walbCtlCommandInfo(id: number): WalbCtlCommandInfo {
  const info = Number.isInteger(id) ? WALB_CTL_COMMANDS[id - 1] : undefined;
  if (info === undefined) throw new ValueOutOfRangeError('command', id, 'is not a walb_ctl command (1..30)');
  return info;
}

/**
 * The ioctl request to issue command `id` with: {@link WALB_IOCTL_CONTROL} for control commands,
 * {@link WALB_IOCTL_WDEV} for device commands.
 *
 * @param id - a `walb_ctl.command` value
 * @throws {@link ValueOutOfRangeError} when `id` is not 1..30
 */
export function walbCtlRequest(id: number): number {
  return walbCtlCommandInfo(id).target === 'control' ? WALB_IOCTL_CONTROL : WALB_IOCTL_WDEV;
}

/** A driver version as answered by {@link WALB_IOCTL_VERSION}: `0x00MMmmpp`. */
export interface WalbVersion {
  /** Major version. */
  major: number;
  /** Minor version. */
  minor: number;
  /** Patch level. */
  patch: number;
}

/**
 * Split the u32 answer of {@link WALB_IOCTL_VERSION}.
 *
 * @param v - the u32 the driver wrote
 * @throws {@link ValueOutOfRangeError} when `v` is not a u32 of the form 0x00MMmmpp
 *
 * @example
 * decodeWalbVersion(0x010501) // { major: 1, minor: 5, patch: 1 }
 */
export function decodeWalbVersion(v: number): WalbVersion {
  if (!Number.isInteger(v) || v < 0 || v > 0x00ff_ffff) {
    throw new ValueOutOfRangeError('version', v, 'is not of the form 0x00MMmmpp');
  }
  return { major: (v >>> 16) & 0xff, minor: (v >>> 8) & 0xff, patch: v & 0xff };
}

/**
 * Format a driver version as `M.m.p`, as `wdevc get-version` prints it.
 *
 * @param v - a decoded version, or the raw u32
 */
export function formatWalbVersion(v: WalbVersion | number): string {
  const d = typeof v === 'number' ? decodeWalbVersion(v) : v;
  return `${d.major}.${d.minor}.${d.patch}`;
}

// ---------------------------------------------------------------------------------------------
// Device names
// ---------------------------------------------------------------------------------------------

/**
 * Check a walb device name: 1..25 bytes of printable ASCII without `/`, `!` or spaces, and not `.`
 * or `..`.
 *
 * The driver itself only limits the length (the name becomes `walb/NAME` and `walb/LNAME`, which
 * must fit 32 bytes). The character rule keeps every name safe as the path component it becomes in
 * `/dev/walb/NAME` and `/sys/block/walb!NAME` (sysfs writes `/` as `!`, and the original tools map
 * `!` back to `/`, so neither can appear in a name).
 *
 * @param name - the device name
 * @returns `name`
 * @throws {@link InvalidDeviceNameError} when the name breaks a rule
 */
export function validateWdevName(name: string): string {
  if (typeof name !== 'string') throw new InvalidDeviceNameError(String(name), 'is not a string');
  if (name.length === 0) throw new InvalidDeviceNameError(name, 'is empty');
  if (name.length > WALB_DEV_NAME_MAX_LEN) {
    throw new InvalidDeviceNameError(name, `is longer than ${WALB_DEV_NAME_MAX_LEN} bytes`);
  }
  if (!/^[\x21-\x7e]+$/.test(name)) throw new InvalidDeviceNameError(name, 'has characters other than printable ASCII');
  if (/[/!]/.test(name)) throw new InvalidDeviceNameError(name, "contains '/' or '!'");
  if (name === '.' || name === '..') throw new InvalidDeviceNameError(name, 'is a relative path component');
  return name;
}

// ---------------------------------------------------------------------------------------------
// Field helpers
// ---------------------------------------------------------------------------------------------

const U64_MAX = (1n << 64n) - 1n;

function need(struct: string, buf: Uint8Array, offset: number, size: number): void {
  if (!Number.isInteger(offset) || offset < 0) throw new ValueOutOfRangeError('offset', offset, 'is not a non-negative integer');
  const available = Math.max(0, buf.length - offset);
  if (available < size) throw new TruncatedError(struct, size, available);
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function u32(field: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new ValueOutOfRangeError(field, v, 'is not a u32');
  return v;
}

function i32(field: string, v: number): number {
  if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0x7fff_ffff) throw new ValueOutOfRangeError(field, v, 'is not an int (i32)');
  return v;
}

function u64(field: string, v: bigint): bigint {
  if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) throw new ValueOutOfRangeError(field, v, 'is not a u64 bigint');
  return v;
}

function encodeName(field: string, name: string, out: Uint8Array, offset: number): void {
  if (typeof name !== 'string') throw new ValueOutOfRangeError(field, name, 'is not a string');
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.includes(0)) throw new ValueOutOfRangeError(field, name, 'contains a NUL byte');
  if (bytes.length >= DISK_NAME_LEN) {
    throw new ValueOutOfRangeError(field, name, `does not fit ${DISK_NAME_LEN} bytes with its NUL terminator`);
  }
  out.fill(0, offset, offset + DISK_NAME_LEN);
  out.set(bytes, offset);
}

function decodeName(struct: string, buf: Uint8Array, offset: number): string {
  const field = buf.subarray(offset, offset + DISK_NAME_LEN);
  const end = field.indexOf(0);
  if (end < 0) throw new ValueOutOfRangeError(`${struct}.name`, Buffer.from(field).toString('latin1'), 'is not NUL-terminated');
  return Buffer.from(field.subarray(0, end)).toString('utf8');
}

// ---------------------------------------------------------------------------------------------
// struct walb_start_param
// ---------------------------------------------------------------------------------------------

/** `struct walb_start_param`: the parameters of START_DEV (`wdevc create-wdev` options). */
export interface StartParam {
  /** Device name (`-n`); empty = the name in the super sector, else the minor / 2. */
  name: string;
  /** Pending data limit in MiB (`-maxp`): 2..16384. */
  maxPendingMb: number;
  /** Pending data level at which a stopped queue restarts, MiB (`-minp`): 1 ≤ x < maxPendingMb. */
  minPendingMb: number;
  /** Queue stop timeout in ms (`-qp`): ≥ 1. */
  queueStopTimeoutMs: number;
  /** Largest logpack in KiB (`-maxl`); 0 = limited only by the header block. */
  maxLogpackKb: number;
  /** Log flush period in ms (`-fp`). */
  logFlushIntervalMs: number;
  /** Log flush size in MiB (`-fs`): 2·x ≤ maxPendingMb. */
  logFlushIntervalMb: number;
  /** Logpacks processed at once (`-bp`): ≥ 1. */
  nPackBulk: number;
  /** Data IOs processed at once (`-bi`): ≥ 1. */
  nIoBulk: number;
}

/** The defaults of `wdevc create-wdev`. */
export const DEFAULT_START_PARAM: Readonly<StartParam> = Object.freeze({
  name: '',
  maxPendingMb: 32,
  minPendingMb: 16,
  queueStopTimeoutMs: 100,
  maxLogpackKb: 32,
  logFlushIntervalMs: 100,
  logFlushIntervalMb: 16,
  nPackBulk: 128,
  nIoBulk: 1024,
});

const START_PARAM_U32: ReadonlyArray<readonly [Exclude<keyof StartParam, 'name'>, keyof typeof WALB_START_PARAM_LAYOUT.fields]> = [
  ['maxPendingMb', 'max_pending_mb'],
  ['minPendingMb', 'min_pending_mb'],
  ['queueStopTimeoutMs', 'queue_stop_timeout_ms'],
  ['maxLogpackKb', 'max_logpack_kb'],
  ['logFlushIntervalMs', 'log_flush_interval_ms'],
  ['logFlushIntervalMb', 'log_flush_interval_mb'],
  ['nPackBulk', 'n_pack_bulk'],
  ['nIoBulk', 'n_io_bulk'],
];

/**
 * Check start parameters against the driver's `is_walb_start_param_valid()` plus the name rules
 * of {@link validateWdevName} (an empty name is allowed: the driver then picks one).
 *
 * @param p - the parameters
 * @returns `p`
 * @throws {@link ValueOutOfRangeError} naming the first field that breaks a rule;
 *   {@link InvalidDeviceNameError} for a bad name
 */
export function validateStartParam(p: StartParam): StartParam {
  if (p.name !== '') validateWdevName(p.name);
  for (const [key, field] of START_PARAM_U32) u32(field, p[key]);
  if (p.maxPendingMb < 2 || p.maxPendingMb > MAX_PENDING_MB) {
    throw new ValueOutOfRangeError('max_pending_mb', p.maxPendingMb, `is not in 2..${MAX_PENDING_MB}`);
  }
  if (p.minPendingMb < 1 || p.minPendingMb >= p.maxPendingMb) {
    throw new ValueOutOfRangeError('min_pending_mb', p.minPendingMb, `is not in 1..max_pending_mb−1 (${p.maxPendingMb - 1})`);
  }
  if (p.queueStopTimeoutMs < 1) throw new ValueOutOfRangeError('queue_stop_timeout_ms', p.queueStopTimeoutMs, 'must be at least 1');
  if (p.logFlushIntervalMb * 2 > p.maxPendingMb) {
    throw new ValueOutOfRangeError('log_flush_interval_mb', p.logFlushIntervalMb, `must be at most max_pending_mb/2 (${Math.floor(p.maxPendingMb / 2)})`);
  }
  if (p.nPackBulk < 1) throw new ValueOutOfRangeError('n_pack_bulk', p.nPackBulk, 'must be at least 1');
  if (p.nIoBulk < 1) throw new ValueOutOfRangeError('n_io_bulk', p.nIoBulk, 'must be at least 1');
  return p;
}

/**
 * Start parameters from the `wdevc` defaults and `overrides`, validated.
 *
 * @param overrides - the fields to change
 * @throws the errors of {@link validateStartParam}
 *
 * @example
 * makeStartParam({ name: 'vol0', maxPendingMb: 64, minPendingMb: 32 })
 */
export function makeStartParam(overrides: Partial<StartParam> = {}): StartParam {
  return validateStartParam({ ...DEFAULT_START_PARAM, ...overrides });
}

/**
 * Encode `struct walb_start_param` (64 bytes, little-endian). Only field widths are checked; call
 * {@link validateStartParam} for the driver's rules.
 *
 * @param p - the parameters
 * @param out - buffer to write into (a new 64-byte one when omitted)
 * @param offset - where in `out`
 * @returns `out`
 * @throws {@link ValueOutOfRangeError} when a value does not fit its field;
 *   {@link TruncatedError} when `out` is too short
 */
export function encodeStartParam(p: StartParam, out: Uint8Array = Buffer.alloc(WALB_START_PARAM_SIZE), offset = 0): Uint8Array {
  need('walb_start_param', out, offset, WALB_START_PARAM_SIZE);
  const f = WALB_START_PARAM_LAYOUT.fields;
  const values = START_PARAM_U32.map(([key, field]) => u32(field, p[key]));
  encodeName('name', p.name, out, offset + f.name.offset);
  const v = view(out);
  START_PARAM_U32.forEach(([, field], i) => v.setUint32(offset + f[field].offset, values[i], true));
  return out;
}

/**
 * Decode `struct walb_start_param` (for example the parameters START_DEV reports as used).
 *
 * @param buf - the bytes
 * @param offset - where the struct starts
 * @throws {@link TruncatedError} when fewer than 64 bytes follow `offset`;
 *   {@link ValueOutOfRangeError} when the name is not NUL-terminated
 */
export function decodeStartParam(buf: Uint8Array, offset = 0): StartParam {
  need('walb_start_param', buf, offset, WALB_START_PARAM_SIZE);
  const f = WALB_START_PARAM_LAYOUT.fields;
  const v = view(buf);
  const p = { name: decodeName('walb_start_param', buf, offset + f.name.offset) } as StartParam;
  for (const [key, field] of START_PARAM_U32) p[key] = v.getUint32(offset + f[field].offset, true);
  return p;
}

// ---------------------------------------------------------------------------------------------
// struct walb_ctl and walb_ctl_data
// ---------------------------------------------------------------------------------------------

/** `struct walb_ctl_data`: one direction of a `walb_ctl`. Pointers are process addresses. */
export interface WalbCtlData {
  /** walb device major. */
  wmajor: number;
  /** walb device minor (the log view is minor + 1). */
  wminor: number;
  /** Log device major. */
  lmajor: number;
  /** Log device minor. */
  lminor: number;
  /** Data device major. */
  dmajor: number;
  /** Data device minor. */
  dminor: number;
  /** `size_t buf_size`: bytes at `buf`. */
  bufSize: bigint;
  /** `void *buf`: address of the command's buffer, 0 when none. */
  buf: bigint;
  /** `void *kbuf`: for kernel use; userspace leaves it 0. */
  kbuf: bigint;
}

/** `struct walb_ctl`: the argument of {@link WALB_IOCTL_CONTROL} and {@link WALB_IOCTL_WDEV}. */
export interface WalbCtl {
  /** `int command`: a {@link WalbCtlCommand} id. */
  command: number;
  /** `int val_int`. */
  valInt: number;
  /** `u64 val_u64`. */
  valU64: bigint;
  /** `u32 val_u32`. */
  valU32: number;
  /** `int error`: set by the kernel. */
  error: number;
  /** User to kernel data. */
  u2k: WalbCtlData;
  /** Kernel to user data. */
  k2u: WalbCtlData;
}

/** An all-zero {@link WalbCtlData}. */
export function emptyWalbCtlData(): WalbCtlData {
  return { wmajor: 0, wminor: 0, lmajor: 0, lminor: 0, dmajor: 0, dminor: 0, bufSize: 0n, buf: 0n, kbuf: 0n };
}

/**
 * A `walb_ctl` for `command`, every other field zero unless given.
 *
 * @param command - a {@link WalbCtlCommand} id
 * @param fields - fields to set; `u2k` and `k2u` are merged over zero data
 * @throws {@link ValueOutOfRangeError} when `command` is not 1..30
 *
 * @example
 * makeWalbCtl(WalbCtlCommand.SET_OLDEST_LSID, { valU64: 1234n })
 */
export function makeWalbCtl(
  command: number,
  fields: Partial<Omit<WalbCtl, 'command' | 'u2k' | 'k2u'>> & { u2k?: Partial<WalbCtlData>; k2u?: Partial<WalbCtlData> } = {},
): WalbCtl {
  walbCtlCommandInfo(command);
  return {
    command,
    valInt: fields.valInt ?? 0,
    valU64: fields.valU64 ?? 0n,
    valU32: fields.valU32 ?? 0,
    error: fields.error ?? 0,
    u2k: { ...emptyWalbCtlData(), ...fields.u2k },
    k2u: { ...emptyWalbCtlData(), ...fields.k2u },
  };
}

const CTL_DATA_U32 = ['wmajor', 'wminor', 'lmajor', 'lminor', 'dmajor', 'dminor'] as const;
const CTL_DATA_U64 = [['bufSize', 'buf_size'], ['buf', 'buf'], ['kbuf', 'kbuf']] as const;

function checkCtlData(prefix: string, d: WalbCtlData): void {
  for (const k of CTL_DATA_U32) u32(`${prefix}.${k}`, d[k]);
  for (const [k, c] of CTL_DATA_U64) u64(`${prefix}.${c}`, d[k]);
}

function writeCtlData(v: DataView, offset: number, d: WalbCtlData): void {
  const f = WALB_CTL_DATA_LAYOUT.fields;
  for (const k of CTL_DATA_U32) v.setUint32(offset + f[k].offset, d[k], true);
  for (const [k, c] of CTL_DATA_U64) v.setBigUint64(offset + f[c].offset, d[k], true);
}

function readCtlData(v: DataView, offset: number): WalbCtlData {
  const f = WALB_CTL_DATA_LAYOUT.fields;
  const d = emptyWalbCtlData();
  for (const k of CTL_DATA_U32) d[k] = v.getUint32(offset + f[k].offset, true);
  for (const [k, c] of CTL_DATA_U64) d[k] = v.getBigUint64(offset + f[c].offset, true);
  return d;
}

/**
 * Encode `struct walb_ctl_data` (48 bytes, little-endian).
 *
 * @param d - the data
 * @param out - buffer to write into (a new 48-byte one when omitted)
 * @param offset - where in `out`
 * @returns `out`
 * @throws {@link ValueOutOfRangeError} when a value does not fit its field;
 *   {@link TruncatedError} when `out` is too short
 */
export function encodeWalbCtlData(d: WalbCtlData, out: Uint8Array = Buffer.alloc(WALB_CTL_DATA_SIZE), offset = 0): Uint8Array {
  need('walb_ctl_data', out, offset, WALB_CTL_DATA_SIZE);
  checkCtlData('walb_ctl_data', d);
  writeCtlData(view(out), offset, d);
  return out;
}

/**
 * Decode `struct walb_ctl_data`.
 *
 * @param buf - the bytes
 * @param offset - where the struct starts
 * @throws {@link TruncatedError} when fewer than 48 bytes follow `offset`
 */
export function decodeWalbCtlData(buf: Uint8Array, offset = 0): WalbCtlData {
  need('walb_ctl_data', buf, offset, WALB_CTL_DATA_SIZE);
  return readCtlData(view(buf), offset);
}

/**
 * Encode `struct walb_ctl` (120 bytes, little-endian), ready to pass to the ioctl.
 *
 * @param ctl - the control block
 * @param out - buffer to write into (a new 120-byte one when omitted)
 * @param offset - where in `out`
 * @returns `out`
 * @throws {@link ValueOutOfRangeError} when a value does not fit its field;
 *   {@link TruncatedError} when `out` is too short
 */
export function encodeWalbCtl(ctl: WalbCtl, out: Uint8Array = Buffer.alloc(WALB_CTL_SIZE), offset = 0): Uint8Array {
  need('walb_ctl', out, offset, WALB_CTL_SIZE);
  const f = WALB_CTL_LAYOUT.fields;
  i32('command', ctl.command);
  i32('val_int', ctl.valInt);
  u64('val_u64', ctl.valU64);
  u32('val_u32', ctl.valU32);
  i32('error', ctl.error);
  checkCtlData('u2k', ctl.u2k);
  checkCtlData('k2u', ctl.k2u);
  const v = view(out);
  v.setInt32(offset + f.command.offset, ctl.command, true);
  v.setInt32(offset + f.val_int.offset, ctl.valInt, true);
  v.setBigUint64(offset + f.val_u64.offset, ctl.valU64, true);
  v.setUint32(offset + f.val_u32.offset, ctl.valU32, true);
  v.setInt32(offset + f.error.offset, ctl.error, true);
  writeCtlData(v, offset + f.u2k.offset, ctl.u2k);
  writeCtlData(v, offset + f.k2u.offset, ctl.k2u);
  return out;
}

/**
 * Decode `struct walb_ctl` (typically after the ioctl returned, to read `k2u`, `val_*` and `error`).
 *
 * @param buf - the bytes
 * @param offset - where the struct starts
 * @throws {@link TruncatedError} when fewer than 120 bytes follow `offset`
 */
export function decodeWalbCtl(buf: Uint8Array, offset = 0): WalbCtl {
  need('walb_ctl', buf, offset, WALB_CTL_SIZE);
  const f = WALB_CTL_LAYOUT.fields;
  const v = view(buf);
  return {
    command: v.getInt32(offset + f.command.offset, true),
    valInt: v.getInt32(offset + f.val_int.offset, true),
    valU64: v.getBigUint64(offset + f.val_u64.offset, true),
    valU32: v.getUint32(offset + f.val_u32.offset, true),
    error: v.getInt32(offset + f.error.offset, true),
    u2k: readCtlData(v, offset + f.u2k.offset),
    k2u: readCtlData(v, offset + f.k2u.offset),
  };
}

// ---------------------------------------------------------------------------------------------
// LIST_DEV: struct walb_disk_data and the minor range
// ---------------------------------------------------------------------------------------------

/** `struct walb_disk_data`: one device of a LIST_DEV answer. */
export interface WalbDiskData {
  /** Device name. */
  name: string;
  /** walb device major. */
  major: number;
  /** walb device minor. */
  minor: number;
}

/**
 * Encode `struct walb_disk_data` (40 bytes).
 *
 * @param d - the entry
 * @param out - buffer to write into (a new 40-byte one when omitted)
 * @param offset - where in `out`
 * @returns `out`
 * @throws {@link ValueOutOfRangeError} when a value does not fit its field;
 *   {@link TruncatedError} when `out` is too short
 */
export function encodeWalbDiskData(d: WalbDiskData, out: Uint8Array = Buffer.alloc(WALB_DISK_DATA_SIZE), offset = 0): Uint8Array {
  need('walb_disk_data', out, offset, WALB_DISK_DATA_SIZE);
  const f = WALB_DISK_DATA_LAYOUT.fields;
  const major = u32('major', d.major);
  const minor = u32('minor', d.minor);
  encodeName('name', d.name, out, offset + f.name.offset);
  const v = view(out);
  v.setUint32(offset + f.major.offset, major, true);
  v.setUint32(offset + f.minor.offset, minor, true);
  return out;
}

/**
 * Decode `count` consecutive `struct walb_disk_data` entries (the `k2u.buf` of LIST_DEV, whose
 * `val_int` is the count).
 *
 * @param buf - the bytes
 * @param count - number of entries
 * @param offset - where the first entry starts
 * @throws {@link TruncatedError} when the buffer is too short;
 *   {@link ValueOutOfRangeError} for a bad count or a name without NUL
 */
export function decodeWalbDiskDataList(buf: Uint8Array, count: number, offset = 0): WalbDiskData[] {
  if (!Number.isInteger(count) || count < 0) throw new ValueOutOfRangeError('count', count, 'is not a non-negative integer');
  need('walb_disk_data[]', buf, offset, count * WALB_DISK_DATA_SIZE);
  const f = WALB_DISK_DATA_LAYOUT.fields;
  const v = view(buf);
  const out: WalbDiskData[] = [];
  for (let i = 0; i < count; i++) {
    const o = offset + i * WALB_DISK_DATA_SIZE;
    out.push({
      name: decodeName('walb_disk_data', buf, o + f.name.offset),
      major: v.getUint32(o + f.major.offset, true),
      minor: v.getUint32(o + f.minor.offset, true),
    });
  }
  return out;
}

/**
 * Encode the `u32 minor[2]` range `[minor0, minor1)` that LIST_DEV takes in `u2k.buf`.
 *
 * @param minor0 - first minor (inclusive)
 * @param minor1 - end minor (exclusive)
 * @throws {@link ValueOutOfRangeError} when a bound is not a u32 or minor0 > minor1
 */
export function encodeMinorRange(minor0: number, minor1: number): Uint8Array {
  u32('minor[0]', minor0);
  u32('minor[1]', minor1);
  if (minor0 > minor1) throw new ValueOutOfRangeError('minor[0]', minor0, `is greater than minor[1] (${minor1})`);
  const out = Buffer.alloc(8);
  out.writeUInt32LE(minor0, 0);
  out.writeUInt32LE(minor1, 4);
  return out;
}
