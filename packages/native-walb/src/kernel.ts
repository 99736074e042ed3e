/**
 * Control of walb kernel devices, as the original's `wdevc`: every call is an ioctl on
 * `/dev/walb/control` or on a walb device, run on the thread pool by the native addon. Without
 * the walb module the device nodes do not exist and every call rejects with
 * {@link WalbModuleNotLoadedError} naming the missing path.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import {
  WALB_CTL_SIZE, WALB_DISK_DATA_SIZE, WALB_IOCTL_CONTROL, WALB_IOCTL_VERSION, WALB_IOCTL_WDEV, WALB_START_PARAM_SIZE,
  WalbCtlCommand, decodeStartParam, decodeWalbCtl, decodeWalbDiskDataList, decodeWalbVersion, encodeMinorRange,
  encodeStartParam, encodeWalbCtl, makeStartParam, makeWalbCtl, walbCtlCommandInfo, WALB_DYNAMIC_MINOR,
  type StartParam, type WalbCtl, type WalbCtlData, type WalbDiskData, type WalbVersion,
} from './kernel-abi.ts';
import { WALB_CONTROL_PATH, parseLsids, sysfsAttributePath, type WalbLsids } from './sysfs.ts';
import { WalbIoctlError, WalbModuleNotLoadedError } from './errors.ts';
import { loadNative } from './native.ts';

function requireNode(path: string): void {
  if (!existsSync(path)) throw new WalbModuleNotLoadedError(path);
}

async function rawIoctl(path: string, request: number, arg: Uint8Array, u2k?: Uint8Array, k2uSize = 0) {
  requireNode(path);
  try {
    return await loadNative().ioctl(path, request, arg, u2k, k2uSize, 1);
  } catch (e) {
    const err = e as Error & { code?: string; errno?: number };
    if (err.code === 'ERR_WALB_NO_DEVICE') throw new WalbModuleNotLoadedError(path);
    if (err.code === 'ERR_WALB_IOCTL' || err.code === 'ERR_WALB_OPEN') throw new WalbIoctlError(err.message, err.errno);
    throw e;
  }
}

/**
 * Issue one `walb_ctl` command: on `/dev/walb/control` for control commands, on `wdev` for device
 * commands. Returns the struct as the driver left it, and the k2u buffer.
 *
 * @throws {@link WalbModuleNotLoadedError}, {@link WalbIoctlError} (errno, or the driver's `error`)
 */
export async function walbCtl(ctl: WalbCtl, opts: { wdev?: string; u2k?: Uint8Array; k2uSize?: number } = {}): Promise<{ ctl: WalbCtl; k2u: Buffer }> {
  const info = walbCtlCommandInfo(ctl.command);
  const onControl = info.target === 'control';
  const path = onControl ? WALB_CONTROL_PATH : opts.wdev;
  if (!path) throw new TypeError(`${info.name} is a device command: give the walb device path`);
  const r = await rawIoctl(path, onControl ? WALB_IOCTL_CONTROL : WALB_IOCTL_WDEV, encodeWalbCtl(ctl, Buffer.alloc(WALB_CTL_SIZE)), opts.u2k, opts.k2uSize ?? 0);
  const out = decodeWalbCtl(r.arg);
  if (out.error !== 0) throw new WalbIoctlError(`${info.name} on ${path}: the driver returned error ${out.error}`, undefined, out.error);
  return { ctl: out, k2u: r.k2u };
}

/**
 * Wait for the next change notification of a walb device's sysfs `lsids` (the driver notifies when
 * `permanent` advances from empty), as the original's log-device monitor; resolves with the new
 * lsids, or `null` after `timeoutMs`.
 *
 * @throws {@link WalbModuleNotLoadedError} when the device's sysfs directory does not exist.
 */
export async function waitLsidsChange(name: string, timeoutMs = 1000): Promise<WalbLsids | null> {
  const path = sysfsAttributePath(name, 'lsids');
  return waitAttributeChange(path, timeoutMs, parseLsids);
}

/** Read a sysfs attribute and wait for its change notification (`null` on timeout). */
export async function waitAttributeChange<T = string>(path: string, timeoutMs: number, parse?: (text: string) => T): Promise<T | null> {
  requireNode(path);
  try {
    const text = await loadNative().waitSysfsChange(path, timeoutMs);
    return text === null ? null : (parse ? parse(text) : (text as unknown as T));
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_WALB_NO_DEVICE') throw new WalbModuleNotLoadedError(path);
    throw e;
  }
}

/** Version of the loaded walb module (`WALB_IOCTL_VERSION` on `/dev/walb/control`). */
export async function getWalbVersion(path = WALB_CONTROL_PATH): Promise<WalbVersion> {
  const r = await rawIoctl(path, WALB_IOCTL_VERSION, Buffer.alloc(4));
  return decodeWalbVersion(r.arg.readUInt32LE(0));
}

async function devNumber(path: string): Promise<{ major: number; minor: number }> {
  const st = await stat(path);
  if (!st.isBlockDevice()) throw new TypeError(`${path} is not a block device`);
  const r = BigInt(st.rdev);
  return { major: Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn)), minor: Number((r & 0xffn) | ((r >> 12n) & ~0xffn)) };
}

/** What {@link createWdev} made. */
export interface CreatedWdev {
  /** Device name. */
  name: string;
  /** Major of the walb device. */
  major: number;
  /** Minor of the walb device (the log view is minor + 1). */
  minor: number;
  /** The parameters the driver actually used. */
  params: StartParam;
}

/** Create a walb device over a log and a data device (`wdevc create-wdev`). */
export async function createWdev(ldev: string, ddev: string, params: Partial<StartParam> = {}, minor = WALB_DYNAMIC_MINOR): Promise<CreatedWdev> {
  requireNode(WALB_CONTROL_PATH);
  const p = makeStartParam(params);
  const [l, d] = await Promise.all([devNumber(ldev), devNumber(ddev)]);
  const ctl = makeWalbCtl(WalbCtlCommand.START_DEV, { u2k: { lmajor: l.major, lminor: l.minor, dmajor: d.major, dminor: d.minor, wminor: minor } });
  const r = await walbCtl(ctl, { u2k: encodeStartParam(p), k2uSize: WALB_START_PARAM_SIZE });
  const used = decodeStartParam(r.k2u);
  return { name: used.name, major: r.ctl.k2u.wmajor, minor: r.ctl.k2u.wminor, params: used };
}

/** Stop and delete a walb device (`wdevc delete-wdev [-f]`). */
export async function deleteWdev(wdev: string, force = false): Promise<void> {
  requireNode(WALB_CONTROL_PATH);
  requireNode(wdev);
  const n = await devNumber(wdev);
  await walbCtl(makeWalbCtl(WalbCtlCommand.STOP_DEV, { valInt: force ? 1 : 0, u2k: { wmajor: n.major, wminor: n.minor } as Partial<WalbCtlData> }));
}

/** Every walb device (`wdevc list`), paged 32 at a time as the original. */
export async function listWdevs(): Promise<WalbDiskData[]> {
  const all: WalbDiskData[] = [];
  let minor = 0;
  for (;;) {
    const r = await walbCtl(makeWalbCtl(WalbCtlCommand.LIST_DEV), { u2k: encodeMinorRange(minor, 0xffff_ffff), k2uSize: 32 * WALB_DISK_DATA_SIZE });
    const n = r.ctl.valInt;
    if (n <= 0) break;
    const page = decodeWalbDiskDataList(r.k2u, Math.min(n, 32));
    all.push(...page);
    if (n < 32) break;
    minor = page[page.length - 1].minor + 2;
  }
  return all;
}

async function wdevU64(wdev: string, command: number): Promise<bigint> {
  return (await walbCtl(makeWalbCtl(command), { wdev })).ctl.valU64;
}
async function wdevInt(wdev: string, command: number): Promise<number> {
  return (await walbCtl(makeWalbCtl(command), { wdev })).ctl.valInt;
}

/** Oldest lsid of a walb device. */
export const getOldestLsid = (wdev: string) => wdevU64(wdev, WalbCtlCommand.GET_OLDEST_LSID);
/** Written lsid (everything below is on the data device). */
export const getWrittenLsid = (wdev: string) => wdevU64(wdev, WalbCtlCommand.GET_WRITTEN_LSID);
/** Permanent lsid (everything below is durable in the log). */
export const getPermanentLsid = (wdev: string) => wdevU64(wdev, WalbCtlCommand.GET_PERMANENT_LSID);
/** Completed lsid (everything below is written to the log). */
export const getCompletedLsid = (wdev: string) => wdevU64(wdev, WalbCtlCommand.GET_COMPLETED_LSID);
/** Log usage in PB (`latest − oldest`; more than the capacity means overflow). */
export const getLogUsage = (wdev: string) => wdevU64(wdev, WalbCtlCommand.GET_LOG_USAGE);
/** Log capacity in PB (the ring buffer size). */
export const getLogCapacity = (wdev: string) => wdevU64(wdev, WalbCtlCommand.GET_LOG_CAPACITY);
/** Whether the device passes flushes down. */
export const isFlushCapable = async (wdev: string) => (await wdevInt(wdev, WalbCtlCommand.IS_FLUSH_CAPABLE)) !== 0;
/** Whether the log has overflowed. */
export const isLogOverflow = async (wdev: string) => (await wdevInt(wdev, WalbCtlCommand.IS_LOG_OVERFLOW)) !== 0;
/** Whether the device is frozen. */
export const isFrozen = async (wdev: string) => (await wdevInt(wdev, WalbCtlCommand.IS_FROZEN)) !== 0;

/** Set the oldest lsid: frees the log below it (`wdevc set-oldest-lsid`). */
export async function setOldestLsid(wdev: string, lsid: bigint): Promise<void> {
  await walbCtl(makeWalbCtl(WalbCtlCommand.SET_OLDEST_LSID, { valU64: lsid }), { wdev });
}
/** Checkpoint interval in ms. */
export async function getCheckpointInterval(wdev: string): Promise<number> {
  return (await walbCtl(makeWalbCtl(WalbCtlCommand.GET_CHECKPOINT_INTERVAL), { wdev })).ctl.valU32;
}
/** Set the checkpoint interval in ms (≤ 86 400 000). */
export async function setCheckpointInterval(wdev: string, ms: number): Promise<void> {
  await walbCtl(makeWalbCtl(WalbCtlCommand.SET_CHECKPOINT_INTERVAL, { valU32: ms }), { wdev });
}
/** Write the written lsid to the super sector now. */
export async function takeCheckpoint(wdev: string): Promise<void> {
  await walbCtl(makeWalbCtl(WalbCtlCommand.TAKE_CHECKPOINT), { wdev });
}
/** Grow the device to `sizeLb` (0: the data device's size). */
export async function resizeWdev(wdev: string, sizeLb = 0n): Promise<void> {
  await walbCtl(makeWalbCtl(WalbCtlCommand.RESIZE, { valU64: sizeLb }), { wdev });
}
/** Clear the log: new uuid and salt, every lsid 0 (`wdevc reset-wal`). */
export async function clearLog(wdev: string): Promise<void> {
  await walbCtl(makeWalbCtl(WalbCtlCommand.CLEAR_LOG), { wdev });
}
/** Freeze write IO, melting by itself after `timeoutSec` (0: never). */
export async function freeze(wdev: string, timeoutSec = 0): Promise<void> {
  await walbCtl(makeWalbCtl(WalbCtlCommand.FREEZE, { valU32: timeoutSec }), { wdev });
}
/** Melt a frozen device. */
export async function melt(wdev: string): Promise<void> {
  await walbCtl(makeWalbCtl(WalbCtlCommand.MELT), { wdev });
}
