/**
 * Binary outputs (`-o FILE|-`) as a byte sink for the SDK writers that also counts the bytes, for
 * progress and summaries.
 *
 * @module
 */
import { rmSync, type Stats } from 'node:fs';
import { realpath, rm, stat, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { commitOutput, discardOutput, locateIoError, openPlace, placeOutput, type OutputPlace } from '@walbjs/log-format';
import { UsageError } from './errors.ts';
import type { CliIo } from './io.ts';
import { writeTo } from './io.ts';
import { armInterrupt } from './interrupt.ts';
import type { Progress } from './progress.ts';

/** An open output. */
export interface Output {
  /** The sink to hand to an SDK writer. */
  sink: (chunk: Uint8Array) => Promise<void>;
  /** Bytes written so far. */
  readonly bytes: number;
  /** Whether the output is stdout (`-`). */
  readonly isStdout: boolean;
  /** Sync and close the file and put it at its path (stdout is left open). */
  close(): Promise<void>;
  /**
   * After a failure: leave no partial output. A regular file was written under a temporary name
   * beside its path, which is removed (an earlier file at the path stays as it was); one written in
   * place is deleted. Nothing is deleted for stdout, a file never opened, or an output that is not
   * a regular file (a block device, a FIFO).
   */
  abort(): Promise<void>;
}

/**
 * Run `write` (which fills `out`), then close `out`; when it fails, abort `out` (no partial file
 * is left behind) and rethrow. `progress` is removed either way.
 *
 * @example
 * const out = openOutput(args.out, io, (n) => progress.update(n));
 * const r = await writeThrough(out, progress, () => catLdev(args.ldev, out.sink, opts));
 */
export async function writeThrough<T>(out: Output, progress: Pick<Progress, 'stop'>, write: () => Promise<T>): Promise<T> {
  try {
    const r = await write();
    await out.close();
    return r;
  } catch (e) {
    await out.abort();
    throw e;
  } finally {
    progress.stop();
  }
}

/**
 * Open `target` for writing: a path or `-` for stdout. A path is opened only when the first bytes
 * arrive, so a command that fails early leaves nothing behind; a regular file (or a new one) is
 * written under a temporary name beside it and renamed over it by `close()`, after it is synced.
 *
 * @param onBytes called with the running total after each write.
 */
export function openOutput(target: string, io: CliIo, onBytes?: (total: number) => void): Output {
  let bytes = 0;
  const isStdout = target === '-';
  let fh: FileHandle | undefined;
  let disarm = () => {};
  const count = (n: number) => {
    bytes += n;
    onBytes?.(bytes);
  };
  if (isStdout) {
    return {
      isStdout,
      get bytes() { return bytes; },
      async sink(chunk) {
        await writeTo(io.stdout, chunk);
        count(chunk.byteLength);
      },
      async close() {},
      async abort() {},
    };
  }
  // A regular file is written under a temporary name beside it and renamed over it when complete
  // (see placeOutput): a failed or interrupted run leaves an earlier file of that name whole.
  let place: OutputPlace | undefined;
  return {
    isStdout,
    get bytes() { return bytes; },
    async sink(chunk) {
      if (!fh) {
        const opened = await openPlace(await placeOutput(target));
        fh = opened.fh;
        place = opened.place;
        // Interrupted, the command leaves no partial file: the temporary one, or the file written
        // in place (no room for a sibling in its folder). A device or a pipe stays.
        const partial = place.finalPath !== undefined ? place.writePath : (await fh.stat()).isFile() ? target : undefined;
        if (partial !== undefined) disarm = armInterrupt(() => rmSync(partial, { force: true }));
      }
      let done = 0;
      try {
        while (done < chunk.byteLength) done += (await fh.write(chunk, done)).bytesWritten;
      } catch (e) {
        throw locateIoError(e, target, 'write', bytes + done);
      }
      count(chunk.byteLength);
    },
    async close() {
      // Success means the output is on disk (a file or a device; a pipe has nothing to sync). A
      // failed sync leaves the handle to abort(), which removes the file.
      if (fh) {
        const st = await fh.stat();
        if (st.isFile() || st.isBlockDevice()) await fh.datasync().catch((e: unknown) => { throw locateIoError(e, target, 'sync'); });
      }
      const h = fh;
      fh = undefined;
      await h?.close();
      if (place) await commitOutput(place, true);
      disarm();
    },
    async abort() {
      const h = fh;
      fh = undefined;
      disarm();
      if (!place) return;
      if (place.finalPath !== undefined) {
        // The path keeps what it held before the run.
        await h?.close().catch(() => {});
        await discardOutput(place);
        return;
      }
      if (!h) return;
      // Written in place: only a regular file is removed, a device or a pipe given as the output stays.
      const isFile = await h.stat().then((st) => st.isFile(), () => false);
      await h.close().catch(() => {});
      if (isFile) await rm(target, { force: true }).catch(() => {});
    },
  };
}

async function canonical(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return resolve(p);
  }
}

/**
 * Refuse an output that is also an input: it would be truncated while it is read.
 *
 * @throws {@link UsageError}
 */
export async function checkOutputNotInput(out: string, inputs: readonly string[], what = 'output'): Promise<void> {
  if (out === '-') return;
  const o = await canonical(out);
  // A second name for the same file (a hard link, another node of a block device) resolves to a
  // path of its own: the device and inode (or device number) say it is one. Two character devices (/dev/null, /dev/zero) are not compared by
  // inode: reading one while writing the other, or /dev/null twice, truncates nothing.
  const os = await stat(out).catch(() => undefined);
  for (const i of inputs) {
    if (i === '-') continue;
    if ((await canonical(i)) === o) throw new UsageError(`${what} ${out} is also an input`);
    const is = os && !os.isCharacterDevice() && !os.isFIFO() ? await stat(i).catch(() => undefined) : undefined;
    const same = is && ((is.dev === os!.dev && is.ino === os!.ino) || (is.isBlockDevice() && os!.isBlockDevice() && is.rdev === os!.rdev));
    if (same) throw new UsageError(`${what} ${out} is the same file as the input ${i} (another name for it)`);
  }
}

/**
 * Whether `now` (a stat of an output path) shows a regular file this run wrote: created, or
 * changed since `before` (its stat when the run began). Used to remove a partial output without
 * ever touching a device, or a file the run never got to.
 */
export function writtenSince(before: Stats | undefined, now: Stats | undefined): boolean {
  return !!now?.isFile() && (!before || now.ino !== before.ino || now.mtimeMs !== before.mtimeMs || now.size !== before.size);
}
