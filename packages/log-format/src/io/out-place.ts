/**
 * Where a file output is written until it is complete. A regular file (or a path with nothing at
 * it) is written under a temporary name beside it and renamed over it at the end, so a failed or
 * interrupted run leaves the path as it found it: an earlier file of that name kept whole, no
 * partial diff that a later reader could take for a complete one. Anything else at the path (a
 * block device, `/dev/null`, a FIFO, a dangling symbolic link) is written in place, as before.
 *
 * @module
 */
import { constants, unlinkSync } from 'node:fs';
import { access, lstat, open, realpath, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { openForWriting } from './device.ts';
import { locateIoError } from './io-error.ts';

/** How an output path is written. */
export interface OutputPlace {
  /** The path the caller gave. */
  readonly path: string;
  /** The file opened for writing: a temporary sibling, or `path` itself. */
  readonly writePath: string;
  /** The file the temporary one replaces at the end; undefined when written in place. */
  readonly finalPath: string | undefined;
  /** Mode the file is created with. */
  readonly mode: number;
}

/** Temporary files not yet renamed or removed: removed if the process exits first. */
const live = new Set<string>();
let exitHook = false;
let serial = 0;

function removeLive(): void {
  for (const p of live) {
    try { unlinkSync(p); } catch { /* gone already */ }
  }
  live.clear();
}

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * Whether `path` names a pipe, a character device (`/dev/null`) or a socket: an output that takes
 * its bytes in order only (no write at an offset, nothing to sync), and that a reader may be
 * waiting on, so it is opened once, when the bytes are ready to go.
 */
export async function isStreamPath(path: string): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  return !!st && (st.isFIFO() || st.isCharacterDevice() || st.isSocket());
}

/**
 * Decide where `path` is written. An existing regular file must be writable by this process (as
 * opening it for writing would require): a read-only file is not replaced behind its owner's back.
 *
 * @throws the system error (`EACCES`, `ENOTDIR`, …) with `path`.
 */
export async function placeOutput(path: string): Promise<OutputPlace> {
  const st = await stat(path).catch((e: unknown) => { if (isMissing(e)) return undefined; throw e; });
  if (st && !st.isFile()) return { path, writePath: path, finalPath: undefined, mode: 0o644 };
  if (!st && (await lstat(path).then(() => true, () => false))) {
    // A dangling symbolic link: opening it creates its target, which a rename would not.
    return { path, writePath: path, finalPath: undefined, mode: 0o644 };
  }
  let finalPath = path;
  let mode = 0o644;
  if (st) {
    await access(path, constants.W_OK);
    finalPath = await realpath(path);
    mode = st.mode & 0o7777;
  }
  const writePath = join(dirname(finalPath), `.${basename(finalPath)}.${process.pid}-${++serial}.part`);
  return { path, writePath, finalPath, mode };
}

/**
 * Open the file of `place` for writing (a temporary file is created new, never reused), and keep
 * it on the list of files removed if the process exits before {@link commitOutput}. Where no file
 * can be created beside the path (a folder this process may not write in, a read-only mount) but
 * the file itself is writable, the file is written in place, as before: the place returned says so.
 */
export async function openPlace(place: OutputPlace): Promise<{ fh: FileHandle; place: OutputPlace }> {
  // In place: a block device exclusively, never one that is mounted or otherwise in use.
  if (place.finalPath === undefined) return { fh: await openForWriting(place.writePath, 'w', place.mode), place };
  if (!exitHook) {
    exitHook = true;
    process.on('exit', removeLive);
  }
  try {
    const fh = await open(place.writePath, 'wx', place.mode);
    live.add(place.writePath);
    return { fh, place };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      const inPlace = { path: place.path, writePath: place.path, finalPath: undefined, mode: place.mode };
      const fh = await open(place.path, 'w', place.mode).catch(() => undefined);
      if (fh) return { fh, place: inPlace };
    }
    // The user named the output, not the temporary file beside it.
    throw locateIoError(Object.assign(e as Error, { path: undefined }), place.path, 'create a file beside');
  }
}

/**
 * Put the finished file at its path: rename the temporary file over it and, with `sync`, sync the
 * folder so that the new name is on the disk too. Nothing to do for a file written in place.
 */
export async function commitOutput(place: OutputPlace, sync: boolean): Promise<void> {
  if (place.finalPath === undefined) return;
  await rename(place.writePath, place.finalPath).catch((e: unknown) => { throw locateIoError(Object.assign(e as Error, { path: undefined }), place.path, 'rename the finished file to'); });
  live.delete(place.writePath);
  if (!sync) return;
  const dir = await open(dirname(place.finalPath), constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await dir.sync().catch((e: unknown) => {
      // Some file systems cannot sync a folder; the file itself is synced already.
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
    });
  } finally {
    await dir.close();
  }
}

/** Remove the temporary file of an output that will not be finished; the path is left as it was. */
export async function discardOutput(place: OutputPlace): Promise<void> {
  if (place.finalPath === undefined) return;
  live.delete(place.writePath);
  await unlink(place.writePath).catch(() => {});
}
