/**
 * A stream copied into a file of its own before it is used, for work that must read its input
 * twice or check all of it before acting on any of it (a restore, an apply from stdin).
 *
 * @module
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chunksOf, type ByteSource } from './byte-source.ts';
import { pwriteAll } from './device.ts';

/** Options of {@link spoolStream}. */
export interface SpoolOptions {
  /** Where the private folder is made (default: the system's temporary folder). */
  dir?: string;
  /** Start of the folder's name (default `walbjs-spool-`). */
  prefix?: string;
  /** Name of the copy in the folder (default `stream`). */
  fileName?: string;
  /** Told the folder as soon as it exists (to remove it when the program is interrupted). */
  onFolder?: (folder: string) => void;
  /** Told the bytes copied so far after each chunk (progress). */
  onBytes?: (bytes: number) => void;
}

/** A stream's copy (see {@link spoolStream}). */
export interface SpooledStream {
  /** The copy. */
  path: string;
  /** Its private folder. */
  folder: string;
  /** Remove the folder and the copy. */
  remove(): Promise<void>;
}

/**
 * Copy `src` into a file (mode 0600) of a new private folder, a chunk at a time. The folder is
 * removed by the result's `remove`, or at once when the copy fails.
 *
 * @example
 * const s = await spoolStream(process.stdin, { prefix: 'walbjs-apply-', onBytes: (n) => bar.update(n) });
 * try { await useTwice(s.path); } finally { await s.remove(); }
 */
export async function spoolStream(src: ByteSource, opts: SpoolOptions = {}): Promise<SpooledStream> {
  const folder = await mkdtemp(join(opts.dir ?? tmpdir(), opts.prefix ?? 'walbjs-spool-'));
  const remove = () => rm(folder, { recursive: true, force: true });
  const path = join(folder, opts.fileName ?? 'stream');
  opts.onFolder?.(folder);
  const it = chunksOf(src);
  try {
    const fh = await open(path, 'wx', 0o600);
    try {
      let pos = 0;
      for (let c = await it.next(); !c.done; c = await it.next()) {
        await pwriteAll(fh, c.value, pos);
        pos += c.value.byteLength;
        opts.onBytes?.(pos);
      }
    } finally {
      await fh.close();
    }
  } catch (e) {
    await it.return?.();
    await remove();
    throw e;
  }
  return { path, folder, remove };
}
