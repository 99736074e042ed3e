/**
 * The discarded ranges apply gives back to its target with `discard: 'punch'`: holes punched in
 * an image file (its size kept), ranges of a block device discarded.
 *
 * With {@link usePunchHoles} in place (the native addon's `punchHoles`) every range goes in one
 * call on the descriptor apply holds, off this thread. Without it, one external process a range
 * (`fallocate --punch-hole --keep-size`, or `blkdiscard`), milliseconds each: 5,000 discards took
 * 23 s. Which of the two serves is settled before apply writes anything (see `punchFor`), so a
 * missing tool never leaves a target written and its discards not punched.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { PunchUnavailableError } from '../errors.ts';

const run = promisify(execFile);

/**
 * Give back the (offset, length) byte pairs of `ranges` of the open `fd`, in order: holes punched
 * in a file with its size kept, or with `isBlock` discards of the block device. Rejects at the
 * first range refused (those before it are done).
 */
export type PunchHolesFn = (fd: number, ranges: Float64Array, isBlock: boolean) => Promise<void>;

let impl: PunchHolesFn | undefined;

/**
 * Let apply punch its discards (`discard: 'punch'`) with `fn` (for example the native addon's
 * `punchHoles`), all in one call, rather than run an external `fallocate` or `blkdiscard` for
 * each; `undefined` goes back to the external commands.
 *
 * @example
 * import { loadNative } from '@walbjs/native-walb';
 * usePunchHoles(loadNative().punchHoles);
 */
export function usePunchHoles(fn: PunchHolesFn | undefined): void {
  impl = fn;
}

/** Gives back byte ranges of the target open as `fd`. @internal */
export type Puncher = (fd: number, ranges: Array<[number, number]>) => Promise<void>;

/**
 * How the discards of `target` will be punched: with the implementation in use now, else with the
 * external command, found on `PATH` now.
 *
 * @throws {@link PunchUnavailableError} when there is neither.
 * @internal
 */
export function punchFor(target: string, isBlock: boolean): Puncher {
  const fn = impl;
  if (fn) return (fd, ranges) => punchInOneCall(fn, fd, target, isBlock, ranges);
  const tool = isBlock ? 'blkdiscard' : 'fallocate';
  if (!onPath(tool)) throw new PunchUnavailableError(target, tool);
  return (_fd, ranges) => punchByCommands(target, isBlock, ranges);
}

async function punchInOneCall(fn: PunchHolesFn, fd: number, target: string, isBlock: boolean, ranges: Array<[number, number]>): Promise<void> {
  const flat = new Float64Array(2 * ranges.length);
  ranges.forEach(([off, len], k) => {
    flat[2 * k] = off;
    flat[2 * k + 1] = len;
  });
  try {
    await fn(fd, flat, isBlock);
  } catch (e) {
    // The addon knows a descriptor, the user a path.
    if (e instanceof Error) Object.assign(e, { path: target, message: `${target}: ${e.message}` });
    throw e;
  }
}

async function punchByCommands(target: string, isBlock: boolean, ranges: Array<[number, number]>): Promise<void> {
  for (const [off, len] of ranges) {
    // -f: the device is ours already (opened exclusively), which blkdiscard's own check would refuse.
    if (isBlock) await run('blkdiscard', ['-f', '-o', String(off), '-l', String(len), target]);
    else await run('fallocate', ['--punch-hole', '--keep-size', '-o', String(off), '-l', String(len), target]);
  }
}

/**
 * Whether `execFile` would find `tool`, searched as the `execvp` it ends in searches: `PATH`, else
 * `/usr/bin:/bin`, an empty entry standing for the current folder.
 */
function onPath(tool: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    const p = join(dir || '.', tool);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return true;
    } catch { /* not here */ }
  }
  return false;
}
