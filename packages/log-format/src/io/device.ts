/**
 * Files and block devices as byte-addressed devices: size and physical block size, from `stat`
 * for files and from sysfs for block devices (no ioctl needed).
 *
 * @module
 */
import { constants } from 'node:fs';
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { LOGICAL_BLOCK_SIZE } from '../constants.ts';
import { TruncatedError } from '../errors.ts';

/** What {@link probeDevice} finds. */
export interface DeviceInfo {
  /** The path given. */
  path: string;
  /** Whether it is a block device (else a regular file). */
  isBlockDevice: boolean;
  /** Size in bytes. */
  sizeBytes: bigint;
  /** Physical block size: the device's, or 512 for a regular file. */
  pbs: number;
}

function majorMinor(rdev: number): [number, number] {
  const r = BigInt(rdev);
  const major = Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn));
  const minor = Number((r & 0xffn) | ((r >> 12n) & ~0xffn));
  return [major, minor];
}

async function readSysNumber(paths: string[]): Promise<number | undefined> {
  for (const p of paths) {
    try {
      return Number((await readFile(p, 'utf8')).trim());
    } catch { /* try the next place */ }
  }
  return undefined;
}

/**
 * Size and physical block size of a file or block device.
 *
 * @throws an error with `code` `EISDIR` (a directory) or `ENOTBLK` (a character device, FIFO or
 *   socket) and `path`, as system errors have; the stat's own error when the path is missing
 * @example
 * const { sizeBytes, pbs } = await probeDevice('/dev/loop0');
 */
export async function probeDevice(path: string): Promise<DeviceInfo> {
  const st = await stat(path);
  if (st.isBlockDevice()) {
    const [ma, mi] = majorMinor(st.rdev);
    const base = `/sys/dev/block/${ma}:${mi}`;
    const sectors = await readSysNumber([`${base}/size`]);
    if (sectors === undefined) throw new Error(`cannot read the size of block device ${path} from ${base}/size`);
    // A partition has no queue/ of its own; its disk's is one level up.
    const pbs = await readSysNumber([`${base}/queue/physical_block_size`, `${base}/../queue/physical_block_size`]);
    return { path, isBlockDevice: true, sizeBytes: BigInt(sectors) * BigInt(LOGICAL_BLOCK_SIZE), pbs: pbs ?? LOGICAL_BLOCK_SIZE };
  }
  if (!st.isFile()) {
    // As a system error would: a code to switch on (EISDIR, else ENOTBLK), the syscall, the path.
    const [code, errno] = st.isDirectory() ? ['EISDIR', -21] : ['ENOTBLK', -15];
    throw Object.assign(new Error(`${code}: ${path} is neither a regular file nor a block device`), { code, errno, syscall: 'stat', path });
  }
  return { path, isBlockDevice: false, sizeBytes: BigInt(st.size), pbs: LOGICAL_BLOCK_SIZE };
}

/**
 * Open `path` to write: a regular file as `flags` says (`'w'` creates it with `mode`), a block
 * device exclusively (`O_EXCL`). The kernel refuses an exclusive open of a device that is mounted
 * or claimed by another program (a device mapper, a RAID, another exclusive writer), so a
 * mistyped device name fails instead of writing under a live file system.
 *
 * @throws an error with `code` `EBUSY` and `path` when the block device is in use; the system's
 *   error otherwise
 * @example
 * const fh = await openForWriting('/dev/loop3');            // read-write, exclusive
 * const out = await openForWriting('out.img', 'w', 0o644);   // a file, created or truncated
 */
export async function openForWriting(path: string, flags: 'r+' | 'w' = 'r+', mode = 0o644): Promise<FileHandle> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isBlockDevice()) return open(path, flags, mode);
  try {
    return await open(path, (flags === 'w' ? constants.O_WRONLY : constants.O_RDWR) | constants.O_EXCL);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EBUSY') throw e;
    throw Object.assign(new Error(`EBUSY: ${path} is in use (mounted, or held by another program): it is not written while it is`), { code: 'EBUSY', errno: -16, syscall: 'open', path });
  }
}

/**
 * Read exactly `buf.length` bytes at `pos`, or throw {@link TruncatedError} (its message led by
 * `what`, the structure read, when given).
 */
export async function preadExact(fh: FileHandle, buf: Uint8Array, pos: number, source?: string, what?: string): Promise<void> {
  let got = 0;
  while (got < buf.byteLength) {
    const { bytesRead } = await fh.read(buf, got, buf.byteLength - got, pos + got);
    if (bytesRead === 0) {
      throw new TruncatedError(`${what ? `${what}: ` : ''}needed ${buf.byteLength} bytes, device ended after ${got}`, { offset: pos, source });
    }
    got += bytesRead;
  }
}

/** Write all of `buf` at `pos`. */
export async function pwriteAll(fh: FileHandle, buf: Uint8Array, pos: number): Promise<void> {
  let done = 0;
  while (done < buf.byteLength) {
    const { bytesWritten } = await fh.write(buf, done, buf.byteLength - done, pos + done);
    done += bytesWritten;
  }
}

