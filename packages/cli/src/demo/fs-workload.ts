/**
 * File-system workloads for demos and end-to-end tests: put a real ext4 file system on a disk
 * exported over NBD (through `nbdfuse` and a loop device), fill it with a deterministic set of
 * files, change it, hash it, and check a restored image by mounting it read-only. When file systems
 * are not possible (no root, no FUSE, no loop devices) the block-level fallback writes
 * deterministic data at 4 KiB-aligned offsets through a real NBD client (`qemu-io`) and reads the
 * whole export back (`nbdcopy`).
 *
 * Everything here runs system tools through `child_process`; a tool that fails is reported as a
 * {@link CommandFailedError} naming the command line and carrying its stderr.
 *
 * @example
 * const disk = await attachNbdDisk('/tmp/walb.sock', workDir);
 * try {
 *   await makeExt4(disk.device);
 *   await mountFs(disk.device, mnt);
 *   await writeFileSet(mnt, 1);
 *   const before = await hashTree(mnt);
 *   await unmountFs(mnt);
 * } finally {
 *   await disk.detach();
 * }
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants as fsc, createReadStream, existsSync } from 'node:fs';
import { access, mkdir, mkdtemp, open, readdir, readFile, realpath, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, delimiter, join, posix, resolve } from 'node:path';

// ───────────────────────────────────────────── errors ─────────────────────────────────────────────

/** Base class of every error this module throws. */
export class FsWorkloadError extends Error {
  /**
   * @param message - what went wrong
   * @param options - the underlying error, when there is one
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A system tool could not be started (not on PATH) or exited with an error. */
export class CommandFailedError extends FsWorkloadError {
  /** The program that was run. */
  readonly command: string;
  /** Its arguments. */
  readonly args: readonly string[];
  /** The exit code, or `null` when it was killed by a signal or never started. */
  readonly exitCode: number | null;
  /** The signal that killed it, if any. */
  readonly signal: NodeJS.Signals | null;
  /** What it wrote on stderr (trimmed). */
  readonly stderr: string;
  /** What it wrote on stdout (trimmed). */
  readonly stdout: string;

  /**
   * @param command - the program
   * @param args - its arguments
   * @param result - how it ended
   * @param why - a short reason when it did not simply exit non-zero (not found, timed out)
   */
  constructor(
    command: string,
    args: readonly string[],
    result: { exitCode: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string },
    why?: string,
    options?: { cause?: unknown },
  ) {
    const how = why ?? (result.signal ? `killed by ${result.signal}` : `exit code ${result.exitCode}`);
    const detail = result.stderr.trim() || result.stdout.trim();
    super(`\`${formatCommand(command, args)}\` failed (${how})${detail ? `: ${detail}` : ''}`, options);
    this.command = command;
    this.args = [...args];
    this.exitCode = result.exitCode;
    this.signal = result.signal;
    this.stderr = result.stderr.trim();
    this.stdout = result.stdout.trim();
  }
}

/** `nbdfuse` did not expose the NBD export as a file, or the loop device could not be set up. */
export class NbdAttachError extends FsWorkloadError {}

/** One or more steps of tearing down a disk or mount failed; every step was still attempted. */
export class DetachError extends FsWorkloadError {
  /** The failures, in the order of the steps. */
  readonly errors: readonly Error[];

  /**
   * @param what - what was being torn down
   * @param errors - the failed steps
   */
  constructor(what: string, errors: readonly Error[]) {
    super(`${what}: ${errors.length} step(s) failed: ${errors.map((e) => e.message).join('; ')}`, { cause: errors[0] });
    this.errors = [...errors];
  }
}

// ──────────────────────────────────────── running commands ────────────────────────────────────────

interface RunOptions {
  /** Kill the command after this long (default 120 s). */
  timeoutMs?: number;
  /** Do not throw on a non-zero exit; the caller inspects the result. */
  allowFailure?: boolean;
}

interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];

function formatCommand(command: string, args: readonly string[]): string {
  const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return [basename(command), ...args].map(q).join(' ');
}

const whichCache = new Map<string, string | null>();

/** The absolute path of `cmd` on PATH (then the usual sbin folders, which a non-login PATH may lack). */
async function which(cmd: string): Promise<string | null> {
  const hit = whichCache.get(cmd);
  if (hit !== undefined) return hit;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SBIN_DIRS];
  for (const d of dirs) {
    const p = join(d, cmd);
    try {
      await access(p, fsc.X_OK);
      if ((await stat(p)).isFile()) {
        whichCache.set(cmd, p);
        return p;
      }
    } catch {
      // not here
    }
  }
  whichCache.set(cmd, null);
  return null;
}

/** Run a command to completion, collecting its output; throws {@link CommandFailedError} on failure. */
async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const path = await which(cmd);
  const fail = (r: RunResult, why?: string, cause?: unknown) => new CommandFailedError(cmd, args, r, why, { cause });
  if (!path) throw fail({ exitCode: null, signal: null, stdout: '', stderr: '' }, `${cmd} is not installed (not found on PATH)`);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise<RunResult>((resolvePromise, reject) => {
    const child = spawn(path, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(fail({ exitCode: null, signal: null, stdout, stderr }, `could not start: ${e.message}`, e));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const r: RunResult = { exitCode: code, signal, stdout, stderr };
      if (timedOut) reject(fail(r, `timed out after ${timeoutMs} ms`));
      else if (code !== 0 && !opts.allowFailure) reject(fail(r));
      else resolvePromise(r);
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Mount points currently mounted (from /proc/self/mountinfo, escapes decoded). */
async function mountPoints(): Promise<Set<string>> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length > 4) out.add(unescapeMountinfo(f[4]));
  }
  return out;
}

/** Mount points of file systems mounted from block device `dev`. */
async function mountsOfDevice(dev: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!right) continue;
    if (right.split(' ')[1] === dev) out.push(unescapeMountinfo(left.split(' ')[4] ?? ''));
  }
  return out;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

async function isMounted(dir: string): Promise<boolean> {
  return (await mountPoints()).has(dir);
}

/** Canonical absolute path of `p` when it exists, else its resolved path. */
async function canonical(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return resolve(p);
  }
}

/** The backing file of loop device `dev` (`/dev/loopN`), or null when it is not attached. */
async function loopBackingFile(dev: string): Promise<string | null> {
  try {
    const s = (await readFile(`/sys/block/${basename(dev)}/loop/backing_file`, 'utf8')).trim();
    return s || null;
  } catch {
    return null;
  }
}

/**
 * Detach loop device `dev` if it is still backed by `file` (so a number reused by someone else is
 * left alone), then wait until the kernel has let go of it.
 */
async function detachLoop(dev: string, file: string): Promise<void> {
  const backing = await loopBackingFile(dev);
  if (backing === null || !sameFile(backing, file)) return;
  const r = await run('losetup', ['-d', dev], { allowFailure: true });
  if (r.exitCode !== 0 && (await loopBackingFile(dev)) !== null && !/No such device/i.test(r.stderr)) {
    throw new CommandFailedError('losetup', ['-d', dev], r);
  }
  // `losetup -d` of a busy device only sets autoclear; wait for the actual release.
  const end = Date.now() + 10_000;
  for (;;) {
    const b = await loopBackingFile(dev);
    if (b === null || !sameFile(b, file)) return;
    if (Date.now() > end) throw new FsWorkloadError(`loop device ${dev} still holds ${file} 10 s after \`losetup -d ${dev}\` (is it still open or mounted?)`);
    await sleep(50);
  }
}

function sameFile(backing: string, file: string): boolean {
  // The kernel reports the path it was given, possibly with " (deleted)" appended.
  const b = backing.replace(/ \(deleted\)$/, '');
  return b === file;
}

/**
 * `syncfs` the file system mounted at `dir` (`sync -f`): unlike a plain `sync`, this reports write-back
 * errors (EIO from a vanished NBD server, say) instead of dropping them silently.
 */
async function syncFs(dir: string): Promise<void> {
  await run('sync', ['-f', dir]);
}

/** Unmount `dir`, retrying while it is busy; `umount -l` as a last resort (reported as an error). */
async function unmountRetrying(dir: string, useFusermount: boolean): Promise<void> {
  const end = Date.now() + 10_000;
  let last: CommandFailedError | undefined;
  while (await isMounted(dir)) {
    const fm = useFusermount ? await which('fusermount3') : null;
    const [cmd, args] = fm ? ['fusermount3', ['-u', dir]] : ['umount', [dir]];
    const r = await run(cmd, args as string[], { allowFailure: true });
    if (r.exitCode === 0) continue;
    last = new CommandFailedError(cmd, args as string[], r);
    if (Date.now() > end) {
      await run('umount', ['-l', dir], { allowFailure: true });
      throw new FsWorkloadError(`${dir} stayed busy for 10 s, lazily unmounted (umount -l): ${last.message}`, { cause: last });
    }
    await sleep(100);
  }
}

// ────────────────────────────────────────── support check ─────────────────────────────────────────

/**
 * Whether this machine can put a file system on an NBD disk: running as root, `/dev/fuse` present,
 * `nbdfuse`, `losetup`, `mkfs.ext4`, `mount` and `umount` installed, and `losetup -f` able to find
 * (or create) a free loop device.
 *
 * @returns `ok: true`, or `ok: false` with `why` listing everything that is missing
 */
export async function filesystemSupport(): Promise<{ ok: boolean; why?: string }> {
  const missing: string[] = [];
  const uid = process.getuid?.();
  if (uid !== 0) missing.push(`not running as root (uid ${uid ?? 'unknown'})`);
  if (!existsSync('/dev/fuse')) missing.push('/dev/fuse does not exist (no FUSE)');
  const tools = ['nbdfuse', 'losetup', 'mkfs.ext4', 'mount', 'umount'];
  const absent: string[] = [];
  for (const t of tools) if (!(await which(t))) absent.push(t);
  if (absent.length) missing.push(`not on PATH: ${absent.join(', ')}`);
  if (!absent.includes('losetup') && uid === 0) {
    try {
      const r = await run('losetup', ['-f'], { timeoutMs: 15_000 });
      if (!/^\/dev\/loop\d+/.test(r.stdout.trim())) missing.push(`\`losetup -f\` printed no loop device: ${r.stdout.trim()}`);
    } catch (e) {
      missing.push(`no loop device can be created: ${(e as Error).message}`);
    }
  }
  return missing.length ? { ok: false, why: missing.join('; ') } : { ok: true };
}

// ────────────────────────────────────────── NBD disk ──────────────────────────────────────────────

/** An NBD export seen as a local block device (a loop device over an `nbdfuse` file). */
export interface AttachedDisk {
  /** The loop block device, e.g. `/dev/loop3`. */
  readonly device: string;
  /** The file `nbdfuse` exposes (the loop device's backing file). */
  readonly file: string;
  /** The process id of `nbdfuse`. */
  readonly nbdfusePid: number;
  /**
   * Tear down: `sync`, detach the loop device, unmount the FUSE mount and wait for `nbdfuse` to
   * exit. Every step is attempted even when an earlier one fails (a {@link DetachError} lists the
   * failures); calling it again returns the same promise.
   */
  detach(): Promise<void>;
}

/**
 * Attach the NBD export at unix socket `socketPath` as a block device: start
 * `nbdfuse <workDir>/fuse/disk --unix <socketPath>` in the background, wait for the file to appear,
 * then `losetup --find --show --direct-io=off` it. On failure everything set up so far is torn down.
 *
 * @param socketPath - the NBD server's unix socket
 * @param workDir - a folder this call may use (`fuse/` is created inside it as the mount point)
 * @returns the block device and its `detach()`
 * @throws {@link CommandFailedError} when nbdfuse exits before exposing the file (its stderr, e.g.
 *   `nbd_connect_unix: connect: No such file or directory`, is in the message) or `losetup` fails;
 *   {@link NbdAttachError} when nbdfuse is missing or the file does not appear within 15 s
 */
export async function attachNbdDisk(socketPath: string, workDir: string): Promise<AttachedDisk> {
  const nbdfuse = await which('nbdfuse');
  if (!nbdfuse) throw new NbdAttachError('nbdfuse is not installed (not found on PATH; Debian package libnbd-bin / nbdfuse)');
  const mnt = join(await canonical(workDir), 'fuse');
  await mkdir(mnt, { recursive: true });
  if (await isMounted(mnt)) throw new NbdAttachError(`${mnt} is already a mount point (a previous disk was not detached?)`);
  const file = join(mnt, 'disk');
  const args = [file, '--unix', socketPath];

  const child: ChildProcess = spawn(nbdfuse, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  let spawnError: Error | null = null;
  const exitPromise = new Promise<void>((r) => {
    child.on('error', (e) => { spawnError = e; exited ??= { code: null, signal: null }; r(); });
    child.on('exit', (code, signal) => { exited = { code, signal }; r(); });
  });

  let device: string | null = null;
  let detaching: Promise<void> | undefined;
  let killedByUs = false;

  const doDetach = async (): Promise<void> => {
    const errors: Error[] = [];
    const step = async (f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (e) {
        errors.push(e instanceof Error ? e : new Error(String(e)));
      }
    };
    await step(() => run('sync', []));
    // A file system the caller left mounted on the disk would keep the loop device busy.
    if (device) {
      for (const m of await mountsOfDevice(device).catch(() => [])) {
        await step(() => syncFs(m));
        await step(() => unmountRetrying(m, false));
      }
      await step(() => detachLoop(device!, file));
    }
    await step(() => unmountRetrying(mnt, true));
    await step(async () => {
      if (exited) return;
      const t = Date.now();
      while (!exited && Date.now() - t < 10_000) await Promise.race([exitPromise, sleep(100)]);
      if (exited) return;
      killedByUs = true;
      child.kill('SIGTERM');
      await Promise.race([exitPromise, sleep(3_000)]);
      if (!exited) child.kill('SIGKILL');
      await exitPromise;
      throw new FsWorkloadError(`nbdfuse (pid ${child.pid}) did not exit within 10 s of the unmount; killed`);
    });
    await step(async () => {
      // The mount point may be left empty by nbdfuse; leave the folder, it belongs to workDir.
      if (await isMounted(mnt)) throw new FsWorkloadError(`${mnt} is still mounted after detach`);
    });
    const ex = exited as { code: number | null; signal: NodeJS.Signals | null } | null;
    if (ex && (ex.code ?? 0) !== 0 && errors.length === 0) {
      errors.push(new CommandFailedError('nbdfuse', args, { exitCode: ex.code, signal: ex.signal, stdout: '', stderr }));
    } else if (ex?.signal && !killedByUs && errors.length === 0) {
      errors.push(new CommandFailedError('nbdfuse', args, { exitCode: null, signal: ex.signal, stdout: '', stderr }, `killed by ${ex.signal} while the disk was attached`));
    }
    if (errors.length) throw new DetachError(`detaching NBD disk ${device ?? '(no loop device)'} (${file})`, errors);
  };
  const detach = () => (detaching ??= doDetach());

  try {
    // Wait for the FUSE mount to expose the file (nbdfuse stays in the foreground while it serves).
    const end = Date.now() + 15_000;
    for (;;) {
      if (exited) {
        const ex = exited as { code: number | null; signal: NodeJS.Signals | null };
        throw new CommandFailedError('nbdfuse', args, { exitCode: ex.code, signal: ex.signal, stdout: '', stderr },
          spawnError ? `could not start: ${(spawnError as Error).message}` : `exited before exposing ${file}${ex.code !== null ? ` (exit code ${ex.code})` : ''}`);
      }
      try {
        const s = await stat(file);
        if (s.isFile() && (await isMounted(mnt))) break;
      } catch {
        // not there yet
      }
      if (Date.now() > end) throw new NbdAttachError(`nbdfuse did not expose ${file} within 15 s${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
      await sleep(25);
    }
    const r = await run('losetup', ['--find', '--show', '--direct-io=off', file]);
    const dev = r.stdout.trim();
    if (!/^\/dev\/loop\d+$/.test(dev)) throw new NbdAttachError(`\`losetup --find --show --direct-io=off ${file}\` printed no loop device: ${r.stdout.trim()}`);
    device = dev;
  } catch (e) {
    try {
      await detach();
    } catch {
      // the attach error is the one to report
    }
    throw e;
  }
  return { device, file, nbdfusePid: child.pid!, detach };
}

// ──────────────────────────────────────── file systems ────────────────────────────────────────────

/** Loop devices this module set up for mounts of image files, by canonical mount point. */
const loopsByMount = new Map<string, { device: string; file: string }>();

/**
 * Make an ext4 file system on `device` (`mkfs.ext4 -F -q`, inode tables and journal initialised at
 * once, so no lazy-init thread writes behind the test's back).
 *
 * @param device - a block device (or an image file)
 * @param opts - `label`: the volume label
 * @throws {@link CommandFailedError} when `mkfs.ext4` fails
 */
export async function makeExt4(device: string, opts: { label?: string } = {}): Promise<void> {
  const args = ['-F', '-q', '-E', 'lazy_itable_init=0,lazy_journal_init=0'];
  if (opts.label) args.push('-L', opts.label);
  await run('mkfs.ext4', [...args, device], { timeoutMs: 300_000 });
}

/**
 * Mount the ext4 file system on `device` at `dir` (created if needed). Read-only mounts use
 * `-o ro,noload` (no journal replay, so nothing is written). When `device` is a regular file (an
 * image), a loop device is set up for it first (`losetup -r` when read-only) and detached again by
 * {@link unmountFs}.
 *
 * @param device - a block device or an image file
 * @param dir - the mount point
 * @param opts - `readOnly`: mount read-only
 * @throws {@link CommandFailedError} when `losetup` or `mount` fails
 */
export async function mountFs(device: string, dir: string, opts: { readOnly?: boolean } = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  const mnt = await canonical(dir);
  const ro = opts.readOnly ?? false;
  const st = await stat(device);
  let loop: { device: string; file: string } | null = null;
  let blockDev = device;
  if (st.isFile()) {
    const file = await canonical(device);
    const r = await run('losetup', [...(ro ? ['-r'] : []), '--find', '--show', file]);
    blockDev = r.stdout.trim();
    loop = { device: blockDev, file };
  }
  try {
    await run('mount', ['-t', 'ext4', ...(ro ? ['-o', 'ro,noload'] : []), blockDev, mnt]);
  } catch (e) {
    if (loop) await detachLoop(loop.device, loop.file).catch(() => {});
    throw e;
  }
  if (loop) loopsByMount.set(mnt, loop);
}

/**
 * `sync`, then unmount `dir` (retrying while busy) and detach the loop device {@link mountFs} set
 * up for it, if any. Does nothing when `dir` is not mounted.
 *
 * @param dir - the mount point
 * @throws {@link CommandFailedError} or {@link FsWorkloadError} when the unmount fails
 */
export async function unmountFs(dir: string): Promise<void> {
  const mnt = await canonical(dir);
  if (!(await isMounted(mnt))) return;
  await run('sync', []);
  let syncError: unknown;
  try {
    await syncFs(mnt);
  } catch (e) {
    syncError = e;
  }
  await unmountRetrying(mnt, false);
  const loop = loopsByMount.get(mnt);
  if (loop) {
    loopsByMount.delete(mnt);
    await detachLoop(loop.device, loop.file);
  }
  if (syncError !== undefined) throw syncError;
}

/**
 * Mount a restored image file read-only at `dir`, through a read-only loop device (`losetup -r`)
 * and `-o ro,noload`, so the image is never written (not even a journal replay).
 *
 * @param imagePath - the image file
 * @param dir - the mount point (created if needed)
 * @returns the loop device and an idempotent `unmount()` that also detaches it
 */
export async function mountImageReadOnly(imagePath: string, dir: string): Promise<{ device: string; unmount(): Promise<void> }> {
  await mountFs(imagePath, dir, { readOnly: true });
  const mnt = await canonical(dir);
  const device = loopsByMount.get(mnt)?.device ?? '';
  let p: Promise<void> | undefined;
  return { device, unmount: () => (p ??= unmountFs(mnt)) };
}

// ───────────────────────────────────────── random data ────────────────────────────────────────────

/** mulberry32: a tiny seeded PRNG; returns a function giving uint32s. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Mix two numbers into a 32-bit seed. */
function mixSeed(a: number, b: number): number {
  let h = Math.imul((a >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul((b >>> 0) + 0x7f4a7c15, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x27d4eb2d);
  return (h ^ (h >>> 15)) >>> 0;
}

/** A uniform integer in [0, n). */
const below = (r: () => number, n: number) => Math.floor((r() / 0x1_0000_0000) * n);

/** `n` deterministic bytes from `seed`: random, or (when `textLike`) words from a small vocabulary (compressible). */
function randomBytes(seed: number, n: number, textLike = false): Buffer {
  const r = prng(seed);
  const buf = Buffer.allocUnsafe(n);
  if (textLike) {
    const words = ['walb ', 'log ', 'diff ', 'snapshot ', 'archive ', 'proxy ', 'lsid ', 'block\n'];
    let i = 0;
    while (i < n) {
      const w = words[r() & 7];
      i += buf.write(w, i, Math.min(w.length, n - i), 'latin1');
    }
    return buf;
  }
  let i = 0;
  for (; i + 4 <= n; i += 4) buf.writeUInt32LE(r(), i);
  if (i < n) {
    const last = r();
    for (let k = 0; i < n; i++, k++) buf[i] = (last >>> (8 * k)) & 0xff;
  }
  return buf;
}

const SUBDIRS = ['', 'docs', 'data', 'data/blobs', 'logs', 'tmp/deep/nest'];

/** A file size in [0, maxBytes]: some empty, many small, a few close to the maximum. */
function fileSize(r: () => number, maxBytes: number): number {
  const k = below(r, 10);
  if (k === 0) return 0;
  if (k <= 3) return below(r, Math.min(maxBytes, 8192) + 1);
  const u = r() / 0x1_0000_0000;
  const size = Math.floor(u * u * maxBytes) + (k === 9 ? Math.floor(maxBytes / 2) : 0);
  return Math.min(size, maxBytes);
}

/** What {@link writeFileSet} or {@link changeFileSet} did. */
export interface FileSetReport {
  /** Files created, relative to the folder. */
  added: string[];
  /** Files overwritten in part. */
  modified: string[];
  /** Files deleted. */
  deleted: string[];
  /** Bytes written. */
  bytes: number;
}

/**
 * Write a deterministic pseudo-random set of files under `dir`: the same `seed` and options always
 * give the same names and contents. Files go to a few subfolders (some nested); sizes range from 0
 * to `maxBytes` (skewed small: about a third of `maxBytes` on average); most contents are random
 * bytes, some text-like.
 *
 * @param dir - the folder (created if needed)
 * @param seed - the PRNG seed
 * @param opts - `files` (default 40) and `maxBytes` (default 2 MiB)
 * @returns the files written
 */
export async function writeFileSet(dir: string, seed: number, opts: { files?: number; maxBytes?: number } = {}): Promise<FileSetReport> {
  const files = opts.files ?? 40;
  const maxBytes = opts.maxBytes ?? 2 << 20;
  const r = prng(mixSeed(seed, 0x5e7));
  const report: FileSetReport = { added: [], modified: [], deleted: [], bytes: 0 };
  for (let i = 0; i < files; i++) {
    const sub = SUBDIRS[below(r, SUBDIRS.length)];
    const rel = posix.join(sub, `f${String(i).padStart(4, '0')}-${(r() & 0xffff).toString(16)}.bin`);
    const size = fileSize(r, maxBytes);
    const data = randomBytes(mixSeed(seed, r()), size, below(r, 4) === 0);
    await mkdir(join(dir, sub), { recursive: true });
    await writeFile(join(dir, rel), data);
    report.added.push(rel);
    report.bytes += size;
  }
  return report;
}

/** Every regular file under `dir` (relative, `/`-separated, sorted), skipping `lost+found` at the top. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    const entries = await readdir(join(dir, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const r = rel ? posix.join(rel, e.name) : e.name;
      if (e.isDirectory()) {
        if (!rel && e.name === 'lost+found') continue;
        await walk(r);
      } else if (e.isFile()) {
        out.push(r);
      }
    }
  };
  await walk('');
  return out;
}

/**
 * Change the files under `dir` deterministically (the same starting tree and `seed` give the same
 * result): overwrite ranges of some files in place (a range may run past the end and extend the
 * file), delete some, and add new ones (sizes up to `maxBytes`, default 2 MiB).
 *
 * @param dir - the folder, typically filled by {@link writeFileSet}
 * @param seed - the PRNG seed
 * @param opts - `maxBytes` of new files and overwritten ranges (default 2 MiB), `add`: how many new files (default 6)
 * @returns what changed
 */
export async function changeFileSet(dir: string, seed: number, opts: { maxBytes?: number; add?: number } = {}): Promise<FileSetReport> {
  const maxBytes = opts.maxBytes ?? 2 << 20;
  const r = prng(mixSeed(seed, 0xc4a));
  const report: FileSetReport = { added: [], modified: [], deleted: [], bytes: 0 };
  const existing = await listFiles(dir);
  for (const rel of existing) {
    const p = join(dir, rel);
    const k = below(r, 100);
    if (k < 35) {
      const size = (await stat(p)).size;
      const ranges = 1 + below(r, 3);
      const fh = await open(p, 'r+');
      try {
        for (let i = 0; i < ranges; i++) {
          const off = below(r, size + 1);
          const len = 1 + below(r, Math.min(maxBytes, 256 << 10));
          const data = randomBytes(mixSeed(seed, r()), len);
          await fh.write(data, 0, len, off);
          report.bytes += len;
        }
        if (below(r, 8) === 0) await fh.sync();
      } finally {
        await fh.close();
      }
      report.modified.push(rel);
    } else if (k < 50) {
      await unlink(p);
      report.deleted.push(rel);
    }
  }
  const add = opts.add ?? 6;
  for (let i = 0; i < add; i++) {
    const sub = SUBDIRS[below(r, SUBDIRS.length)];
    const rel = posix.join(sub, `new${String(i).padStart(3, '0')}-${(r() & 0xffff).toString(16)}.bin`);
    const size = fileSize(r, maxBytes);
    await mkdir(join(dir, sub), { recursive: true });
    await writeFile(join(dir, rel), randomBytes(mixSeed(seed, r()), size, below(r, 4) === 0));
    report.added.push(rel);
    report.bytes += size;
  }
  return report;
}

// ────────────────────────────────────────── tree hashes ───────────────────────────────────────────

async function sha256File(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(p, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Hash every regular file under `dir` (symbolic links, devices and the top-level `lost+found` are
 * skipped).
 *
 * @param dir - the folder (a mount point, say)
 * @returns relative `/`-separated path → sha256 hex of the content, in sorted path order
 */
export async function hashTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const rel of await listFiles(dir)) out.set(rel, await sha256File(join(dir, ...rel.split('/'))));
  return out;
}

/**
 * The differences between two trees from {@link hashTree}, `a` taken as the expected one: lines
 * `missing: <path>` (in `a` only), `extra: <path>` (in `b` only) and `differs: <path>`, sorted by
 * path.
 *
 * @returns an empty array when the trees are equal
 */
export function compareTrees(a: Map<string, string>, b: Map<string, string>): string[] {
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  const out: string[] = [];
  for (const p of paths) {
    const x = a.get(p);
    const y = b.get(p);
    if (y === undefined) out.push(`missing: ${p}`);
    else if (x === undefined) out.push(`extra: ${p}`);
    else if (x !== y) out.push(`differs: ${p}`);
  }
  return out;
}

// ───────────────────────────────────── block-level fallback ───────────────────────────────────────

/** One write of {@link writeBlocksNbd}: `length` bytes at `offset` (both multiples of 4 KiB). */
export interface BlockWrite {
  /** Byte offset on the disk. */
  offset: number;
  /** Length in bytes. */
  length: number;
  /** Seed of the data ({@link blockWriteData}). */
  dataSeed: number;
}

const BLOCK = 4096;

/**
 * The writes {@link writeBlocksNbd} makes for `seed`, in order (later ones may overlap earlier ones):
 * 4 KiB-aligned offsets, lengths of 4 KiB to `maxBytes` (default 256 KiB), all inside `sizeBytes`.
 *
 * @param seed - the PRNG seed
 * @param sizeBytes - the disk size
 * @param opts - `writes` (default 64), `maxBytes` of one write (default 256 KiB)
 */
export function planBlockWrites(seed: number, sizeBytes: number, opts: { writes?: number; maxBytes?: number } = {}): BlockWrite[] {
  const blocks = Math.floor(sizeBytes / BLOCK);
  if (blocks < 1) throw new FsWorkloadError(`disk of ${sizeBytes} bytes is smaller than one 4 KiB block`);
  const maxBlocks = Math.max(1, Math.floor((opts.maxBytes ?? 256 << 10) / BLOCK));
  const r = prng(mixSeed(seed, 0xb10c));
  const out: BlockWrite[] = [];
  for (let i = 0; i < (opts.writes ?? 64); i++) {
    const start = below(r, blocks);
    const n = 1 + below(r, Math.min(maxBlocks, blocks - start));
    out.push({ offset: start * BLOCK, length: n * BLOCK, dataSeed: mixSeed(seed, r()) });
  }
  return out;
}

/** The data of one planned write (deterministic pseudo-random bytes). */
export function blockWriteData(w: BlockWrite): Buffer {
  return randomBytes(w.dataSeed, w.length);
}

/** Apply planned writes, in order, to an in-memory image (what the disk should hold afterwards). */
export function applyBlockWrites(image: Buffer, writes: readonly BlockWrite[]): Buffer {
  for (const w of writes) blockWriteData(w).copy(image, w.offset);
  return image;
}

const nbdUri = (socketPath: string) => `nbd+unix:///?socket=${socketPath}`;

/**
 * Write deterministic pseudo-random data at pseudo-random 4 KiB-aligned offsets of the NBD export
 * at `socketPath`, through a real NBD client: each write's data goes to a temporary file and
 * `qemu-io -f raw` writes it (`write -s <file> <off> <len>`, many `-c` commands per invocation,
 * ending with `flush`).
 *
 * @param socketPath - the NBD server's unix socket
 * @param seed - the PRNG seed ({@link planBlockWrites})
 * @param sizeBytes - the export's size
 * @param opts - `writes` (default 64), `maxBytes` of one write (default 256 KiB)
 * @returns the writes made, in order ({@link applyBlockWrites} reproduces their effect)
 * @throws {@link CommandFailedError} when `qemu-io` fails
 */
export async function writeBlocksNbd(socketPath: string, seed: number, sizeBytes: number, opts: { writes?: number; maxBytes?: number } = {}): Promise<BlockWrite[]> {
  const plan = planBlockWrites(seed, sizeBytes, opts);
  const tmp = await mkdtemp(join(tmpdir(), 'walbjs-blocks-'));
  try {
    const BATCH = 128;
    for (let b = 0; b < plan.length; b += BATCH) {
      const args = ['-f', 'raw'];
      const batch = plan.slice(b, b + BATCH);
      for (let i = 0; i < batch.length; i++) {
        const f = join(tmp, `w${b + i}.bin`);
        await writeFile(f, blockWriteData(batch[i]));
        args.push('-c', `write -q -s ${f} ${batch[i].offset} ${batch[i].length}`);
      }
      args.push('-c', 'flush', nbdUri(socketPath));
      const r = await run('qemu-io', args, { timeoutMs: 300_000 });
      // qemu-io exits 1 when a command fails; some versions only print the failure.
      if (/failed|error/i.test(r.stdout + r.stderr)) throw new CommandFailedError('qemu-io', args, r, 'reported a failed command');
      for (let i = 0; i < batch.length; i++) await rm(join(tmp, `w${b + i}.bin`), { force: true });
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return plan;
}

/**
 * Copy the whole NBD export at `socketPath` to `outPath` with
 * `nbdcopy 'nbd+unix:///?socket=<socketPath>' <outPath>` (an existing regular file is replaced).
 *
 * @throws {@link CommandFailedError} when `nbdcopy` fails
 */
export async function readImageNbd(socketPath: string, outPath: string): Promise<void> {
  try {
    if ((await stat(outPath)).isFile()) await rm(outPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await run('nbdcopy', [nbdUri(socketPath), outPath], { timeoutMs: 600_000 });
}
