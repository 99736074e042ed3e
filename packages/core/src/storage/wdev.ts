/**
 * The walb device a storage volume is bound to: a kernel walb device (`/dev/walb/NAME`, driven by
 * ioctls and sysfs) or a userspace capture device (a folder with `device.json`, an ldev and a
 * ddev; the storage daemon hosts it and serves it over NBD). Both give the same lsids, the same
 * log format on the ldev, and the same controls.
 *
 * @module
 */
import { mkdir, open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { formatLdev, LogDevice, probeDevice, type SuperSector } from '@walbjs/log-format';
import { BadRequestError, NotFoundError } from '../errors.ts';

/** The lsids of a device (PB), its overflow flag and ring size. */
export interface DeviceLsids {
  latest: bigint; completed: bigint; permanent: bigint; written: bigint;
  /** The written lsid last checkpointed in the super sector: the oldest lsid may not pass it. */
  prevWritten: bigint;
  oldest: bigint;
  overflow: boolean; ringBufferSize: bigint;
}

/** A walb device as the storage daemon uses it. */
export interface WalbDevice {
  /** The log device path (read for extraction). */
  readonly ldevPath: string;
  /** What a full sync reads: the data as the device shows it. */
  readonly dataPath: string;
  /** Where clients write (an NBD URI for a userspace device, the block device for a kernel one). */
  readonly exportUri: string;
  lsids(): Promise<DeviceLsids>;
  /** Size of the device in LB. */
  sizeLb(): Promise<bigint>;
  /** The log's super sector as it is now (uuid, salt, pbs). */
  readSuper(): Promise<SuperSector>;
  /** Write the checkpoint (written lsid) to the super sector now. */
  checkpoint(): Promise<void>;
  setOldestLsid(lsid: bigint): Promise<void>;
  /** New uuid and salt, every lsid 0. */
  clearLog(): Promise<void>;
  /** Resolve when the permanent lsid may have moved, or after `timeoutMs`. */
  waitChange(timeoutMs: number): Promise<void>;
  /**
   * Grow the device to `sizeLb` (0: to the data device's current size). A userspace device is
   * closed and opened again (its NBD clients reconnect); the log is kept.
   */
  resize(sizeLb: bigint): Promise<bigint>;
  close(): Promise<void>;
}

/** `device.json` of a userspace device folder. */
export interface UserspaceDeviceSpec {
  /** Log device (absolute, or relative to the folder). */
  ldev: string;
  /** Data device (absolute, or relative to the folder). */
  ddev: string;
  /** Unix socket the NBD export listens on (default `<folder>/nbd.sock`). */
  unix?: string;
  /** Or TCP `host:port` (loopback only unless you mean it). */
  tcp?: string;
  /** Checkpoint interval in ms (default 10 000). */
  checkpointIntervalMs?: number;
  /** Fail writes before the log overflows instead of overwriting and flagging (default false). */
  errorBeforeOverflow?: boolean;
}

/**
 * Create a userspace walb device in a folder: a data device file of `sizeBytes`, a log device
 * file of `logBytes` formatted as the driver does, and `device.json`.
 *
 * @example
 * await createUserspaceDevice('/var/lib/walb/dev0', { sizeBytes: 1n << 30n, logBytes: 256n << 20n });
 */
export async function createUserspaceDevice(dir: string, opts: { sizeBytes: bigint; logBytes: bigint; pbs?: number; name?: string; unix?: string; tcp?: string }): Promise<UserspaceDeviceSpec> {
  if (opts.sizeBytes <= 0n || opts.sizeBytes % 4096n) throw new BadRequestError('the device size must be a positive multiple of 4 KiB');
  if (opts.logBytes < 1n << 20n) throw new BadRequestError('the log device needs at least 1 MiB');
  await mkdir(dir, { recursive: true });
  const spec: UserspaceDeviceSpec = { ldev: 'ldev', ddev: 'ddev', ...(opts.unix ? { unix: opts.unix } : {}), ...(opts.tcp ? { tcp: opts.tcp } : {}) };
  for (const [f, size] of [['ddev', opts.sizeBytes], ['ldev', opts.logBytes]] as const) {
    const fh = await open(join(dir, f), 'wx');
    try { await fh.truncate(Number(size)); } finally { await fh.close(); }
  }
  await formatLdev(join(dir, 'ldev'), join(dir, 'ddev'), { pbs: opts.pbs ?? 4096, name: opts.name });
  await writeFile(join(dir, 'device.json'), JSON.stringify(spec, null, 2) + '\n');
  return spec;
}

/** Read `device.json` of a userspace device folder, or undefined when `path` is not one. */
export async function readUserspaceSpec(path: string): Promise<UserspaceDeviceSpec | undefined> {
  let text: string;
  try {
    if (!(await stat(path)).isDirectory()) return undefined;
    text = await readFile(join(path, 'device.json'), 'utf8');
  } catch { return undefined; }
  let spec: UserspaceDeviceSpec;
  try { spec = JSON.parse(text) as UserspaceDeviceSpec; } catch (e) { throw new BadRequestError(`${join(path, 'device.json')}: ${(e as Error).message}`); }
  if (typeof spec.ldev !== 'string' || typeof spec.ddev !== 'string') throw new BadRequestError(`${join(path, 'device.json')}: needs ldev and ddev`);
  return spec;
}

/** A userspace capture device hosted in this process. */
class UserspaceDevice implements WalbDevice {
  private constructor(
    private dev: import('@walbjs/native-walb').CaptureDevice,
    readonly ldevPath: string,
    readonly dataPath: string,
    readonly exportUri: string,
    private readonly dir: string,
    private readonly spec: UserspaceDeviceSpec,
  ) {}

  async resize(sizeLb: bigint): Promise<bigint> {
    const cur = await this.sizeLb();
    const info = await probeDevice(this.dataPath);
    const want = sizeLb === 0n ? info.sizeBytes / 512n : sizeLb;
    if (want < cur) throw new BadRequestError(`resize: ${want} LB is smaller than the device's ${cur} LB (grow only)`);
    await this.dev.close();
    try {
      if (!info.isBlockDevice && info.sizeBytes < want * 512n) await truncate(this.dataPath, Number(want * 512n));
      if (info.isBlockDevice && info.sizeBytes < want * 512n) throw new BadRequestError(`resize: the data device ${this.dataPath} has only ${info.sizeBytes} bytes`);
      const l = await LogDevice.open(this.ldevPath, { writable: true });
      try { await l.writeSuper({ ...l.superSector, deviceSize: want }); } finally { await l.close(); }
    } finally {
      const again = await UserspaceDevice.open(this.dir, this.spec);
      this.dev = again.dev;
    }
    return want;
  }

  static async open(dir: string, spec: UserspaceDeviceSpec): Promise<UserspaceDevice> {
    const { CaptureDevice } = await import('@walbjs/native-walb');
    const abs = (p: string) => (isAbsolute(p) ? p : resolve(dir, p));
    const ldev = abs(spec.ldev), ddev = abs(spec.ddev);
    const dev = await CaptureDevice.open(ldev, ddev, { checkpointIntervalMs: spec.checkpointIntervalMs, errorBeforeOverflow: spec.errorBeforeOverflow });
    let uri: string;
    try {
      if (spec.tcp) {
        const s = dev.serve({ tcp: spec.tcp });
        uri = `nbd://${s.address}`;
      } else {
        const sock = abs(spec.unix ?? 'nbd.sock');
        await rm(sock, { force: true });
        dev.serve({ unix: sock });
        uri = `nbd+unix:///?socket=${sock}`;
      }
    } catch (e) {
      await dev.close();
      throw e;
    }
    return new UserspaceDevice(dev, ldev, ddev, uri, dir, spec);
  }

  async lsids(): Promise<DeviceLsids> {
    const l = this.dev.lsids();
    return { latest: l.latest, completed: l.completed, permanent: l.permanent, written: l.written, prevWritten: l.prevWritten, oldest: l.oldest, overflow: l.overflow, ringBufferSize: l.ringBufferSize };
  }

  async sizeLb(): Promise<bigint> {
    return (await probeDevice(this.dataPath)).sizeBytes / 512n;
  }

  async readSuper(): Promise<SuperSector> {
    const l = await LogDevice.open(this.ldevPath);
    try { return l.superSector; } finally { await l.close(); }
  }

  checkpoint(): Promise<void> { return this.dev.checkpoint(); }
  setOldestLsid(lsid: bigint): Promise<void> { return this.dev.setOldestLsid(lsid); }
  clearLog(): Promise<void> { return this.dev.clearLog(); }

  async waitChange(timeoutMs: number): Promise<void> {
    const start = this.dev.lsids().permanent;
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
      if (this.dev.lsids().permanent !== start) return;
    }
  }

  close(): Promise<void> { return this.dev.close(); }
}

/** A kernel walb device, driven by the module's ioctls and sysfs. */
class KernelDevice implements WalbDevice {
  private constructor(private readonly name: string, readonly ldevPath: string, readonly dataPath: string) {}
  get exportUri(): string { return this.dataPath; }

  static async open(path: string): Promise<KernelDevice> {
    const nw = await import('@walbjs/native-walb');
    const name = path.replace(/^\/dev\/walb\//, '');
    await nw.getWalbVersion(); // fails with a typed error when the module is not loaded
    return new KernelDevice(name, nw.wldevPath(name), nw.wdevPath(name));
  }

  async lsids(): Promise<DeviceLsids> {
    const nw = await import('@walbjs/native-walb');
    const text = await readFile(nw.sysfsAttributePath(this.name, 'lsids'), 'utf8');
    const l = nw.parseLsids(text);
    return {
      latest: l.latest, completed: l.completed, permanent: l.permanent, written: l.written, prevWritten: l.prevWritten, oldest: l.oldest,
      overflow: await nw.isLogOverflow(this.dataPath), ringBufferSize: await nw.getLogCapacity(this.dataPath),
    };
  }

  async sizeLb(): Promise<bigint> { return (await probeDevice(this.dataPath)).sizeBytes / 512n; }

  async readSuper(): Promise<SuperSector> {
    const l = await LogDevice.open(this.ldevPath);
    try { return l.superSector; } finally { await l.close(); }
  }

  async checkpoint(): Promise<void> { await (await import('@walbjs/native-walb')).takeCheckpoint(this.dataPath); }
  async setOldestLsid(lsid: bigint): Promise<void> { await (await import('@walbjs/native-walb')).setOldestLsid(this.dataPath, lsid); }
  async clearLog(): Promise<void> { await (await import('@walbjs/native-walb')).clearLog(this.dataPath); }
  async waitChange(timeoutMs: number): Promise<void> { await (await import('@walbjs/native-walb')).waitLsidsChange(this.name, timeoutMs); }
  async resize(sizeLb: bigint): Promise<bigint> {
    await (await import('@walbjs/native-walb')).resizeWdev(this.dataPath, sizeLb);
    return this.sizeLb();
  }
  async close(): Promise<void> {}
}

/**
 * Open the device at `path`: a userspace device folder (with `device.json`), or `/dev/walb/NAME`.
 *
 * @throws {@link NotFoundError} when it is neither
 */
export async function openWalbDevice(path: string): Promise<WalbDevice> {
  const spec = await readUserspaceSpec(path);
  if (spec) return UserspaceDevice.open(path, spec);
  if (path.startsWith('/dev/walb/')) return KernelDevice.open(path);
  throw new NotFoundError(`${path} is neither a userspace walb device folder (with device.json) nor /dev/walb/NAME`);
}
