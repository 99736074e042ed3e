/**
 * State on disk: small JSON files replaced atomically (temp file, fsync, rename, fsync of the
 * folder), so a crash leaves either the old or the new content, never a mix. Bigints and bytes
 * keep their exact values (the protocol's message encoding).
 *
 * @module
 */
import { open, readFile, rename, rm, mkdir } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { StoreError } from '../errors.ts';
import { decodeMessage, encodeMessage } from '../protocol/message.ts';

let tmpCounter = 0;

/** fsync a folder, so a rename or unlink in it is durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

/**
 * Replace `path` with `bytes` atomically and durably.
 *
 * @example
 * await writeFileAtomic('/var/lib/walb/vol0/state', Buffer.from('Archived'));
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${tmpCounter++}`);
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, path);
  await syncDir(dirname(path));
}

/** Write a JSON value atomically (bigints exact). */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, Buffer.concat([encodeMessage(value), Buffer.from('\n')]));
}

/**
 * Read a JSON value written by {@link writeJsonAtomic}; `undefined` when the file does not exist.
 *
 * @throws {@link StoreError} when the file exists but does not parse.
 */
export async function readJson<T>(path: string): Promise<T | undefined> {
  let b: Buffer;
  try { b = await readFile(path); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try { return decodeMessage(b) as T; } catch (e) {
    throw new StoreError(`${path} is corrupt: ${(e as Error).message}`, { cause: e });
  }
}

/** Create a folder (and its parents) and make its entry durable. */
export async function makeDirDurable(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await syncDir(dirname(dir));
}
