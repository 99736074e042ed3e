/**
 * The error vocabulary of `@walbjs/native-walb`. Everything this package rejects (a value that does
 * not fit a kernel struct field, a buffer too short for a struct, a malformed sysfs file, a device
 * name that is not safe to use) is one of these classes, with a machine-readable code.
 *
 * @module
 */

/** Machine-readable codes of {@link WalbAbiError}. */
export type WalbAbiErrorCode =
  /** A value does not fit its field, or breaks a rule of the driver. */
  | 'ERR_WALB_ABI_RANGE'
  /** A buffer is shorter than the struct to decode. */
  | 'ERR_WALB_ABI_TRUNCATED'
  /** A sysfs attribute's text does not have the kernel's format. */
  | 'ERR_WALB_ABI_SYSFS'
  /** A walb device name is empty, too long, or unsafe in a path. */
  | 'ERR_WALB_ABI_NAME'
  /** The native addon could not be loaded. */
  | 'ERR_WALB_NATIVE_LOAD'
  /** The walb kernel module is not loaded (its device node is missing). */
  | 'ERR_WALB_NO_MODULE'
  /** An ioctl failed, or the driver reported an error for it. */
  | 'ERR_WALB_IOCTL';

/**
 * Base class of every error this package throws on bad input.
 *
 * @example
 * try { parseLsids(text); }
 * catch (e) { if (e instanceof WalbAbiError) console.error(e.code, e.message); }
 */
export class WalbAbiError extends Error {
  /** Machine-readable code. */
  readonly code: WalbAbiErrorCode;
  /**
   * @param code - machine-readable code
   * @param message - what is wrong, and where
   */
  constructor(code: WalbAbiErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A value does not fit its struct field, or breaks a rule the driver checks. */
export class ValueOutOfRangeError extends WalbAbiError {
  /** The field, named as in the C struct (`max_pending_mb`, `val_u64`, …) or the argument. */
  readonly field: string;
  /** The offending value. */
  readonly value: unknown;
  /**
   * @param field - field or argument name
   * @param value - the offending value
   * @param detail - the rule it breaks
   */
  constructor(field: string, value: unknown, detail: string) {
    super('ERR_WALB_ABI_RANGE', `${field}: ${describe(value)} ${detail}`);
    this.field = field;
    this.value = value;
  }
}

/** A buffer is shorter than the struct to decode from it. */
export class TruncatedError extends WalbAbiError {
  /** Bytes the struct needs from the given offset. */
  readonly needed: number;
  /** Bytes available from the given offset. */
  readonly available: number;
  /**
   * @param struct - the C struct name
   * @param needed - bytes needed
   * @param available - bytes available
   */
  constructor(struct: string, needed: number, available: number) {
    super('ERR_WALB_ABI_TRUNCATED', `${struct}: needs ${needed} bytes, ${available} available`);
    this.needed = needed;
    this.available = available;
  }
}

/** The text of a sysfs attribute does not have the format the driver writes. */
export class SysfsFormatError extends WalbAbiError {
  /** The attribute (`lsids`, `ldev`, `uuid`, …). */
  readonly attribute: string;
  /** 1-based line number of the problem, when it is about one line. */
  readonly line: number | undefined;
  /**
   * @param attribute - the attribute name
   * @param detail - what is wrong
   * @param line - 1-based line number, when known
   */
  constructor(attribute: string, detail: string, line?: number) {
    super('ERR_WALB_ABI_SYSFS', `sysfs ${attribute}${line === undefined ? '' : ` line ${line}`}: ${detail}`);
    this.attribute = attribute;
    this.line = line;
  }
}

/** A walb device name that the driver would refuse or that is unsafe as a path component. */
export class InvalidDeviceNameError extends WalbAbiError {
  /** The rejected name. */
  readonly deviceName: string;
  /**
   * @param deviceName - the rejected name
   * @param detail - why it is rejected
   */
  constructor(deviceName: string, detail: string) {
    super('ERR_WALB_ABI_NAME', `walb device name ${JSON.stringify(deviceName)}: ${detail}`);
    this.deviceName = deviceName;
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  return String(v);
}

/** The native addon could not be loaded: every place tried, and why each failed. */
export class NativeLoadError extends WalbAbiError {
  /** Each path tried with the reason it failed. */
  readonly tried: ReadonlyArray<{ path: string; cause: string }>;
  /**
   * @param tried - the paths tried and why each failed
   */
  constructor(tried: ReadonlyArray<{ path: string; cause: string }>) {
    super('ERR_WALB_NATIVE_LOAD', `cannot load the walbjs native addon; tried:\n${tried.map((t) => `  ${t.path}: ${t.cause}`).join('\n')}\n`
      + 'Build it with `pnpm --filter @walbjs/native-walb build:native`, or set WALB_NATIVE_PATH to a built .node file.');
    this.tried = tried;
  }
}

/** The walb kernel module is not loaded: the device node a call needs does not exist. */
export class WalbModuleNotLoadedError extends WalbAbiError {
  /** The missing path. */
  readonly path: string;
  /**
   * @param path - the device node that is missing
   */
  constructor(path: string) {
    super('ERR_WALB_NO_MODULE', `the walb kernel module is not loaded, or no such walb device: ${path} does not exist`);
    this.path = path;
  }
}

/** An ioctl on a walb device failed (errno), or the driver set `walb_ctl.error`. */
export class WalbIoctlError extends WalbAbiError {
  /** The errno of a failed system call, when that is what failed. */
  readonly errno?: number;
  /** The driver's `walb_ctl.error`, when it reported one. */
  readonly driverError?: number;
  /**
   * @param message - what failed, and where
   * @param errno - errno of the failed call
   * @param driverError - walb_ctl.error
   */
  constructor(message: string, errno?: number, driverError?: number) {
    super('ERR_WALB_IOCTL', message);
    this.errno = errno;
    this.driverError = driverError;
  }
}
