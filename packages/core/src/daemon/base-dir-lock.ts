/**
 * One daemon per base folder: two working on the same volumes would interleave applies, merges
 * and deletions. The daemon creates a lock file naming itself (pid, host type, node id) when it
 * opens the folder and removes it when it stops; a lock file whose process is gone (a daemon
 * killed with SIGKILL) is stale and taken over. One written on another machine (a folder shared
 * over the network) is never taken over: only its owner, or a person, can tell it is stale.
 *
 * @module
 */
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BaseDirInUseError } from '../errors.ts';

/** Name of the lock file in the base folder (a dot file: no volume name starts with a dot). */
export const LOCK_FILE = '.walbjs-daemon.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, as another user's process.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Take the base folder for this daemon; returns the function that gives it back.
 *
 * @throws {@link BaseDirInUseError} when a running daemon (this process included) holds it
 */
export async function lockBaseDir(dir: string, hostType: string, nodeId: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const host = hostname();
  const mine = JSON.stringify({ pid: process.pid, host, hostType, nodeId, since: new Date().toISOString() }) + '\n';
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(path, mine, { flag: 'wx', mode: 0o644 });
      return async () => {
        // Only our own: a daemon that took a stale lock over after us keeps its.
        if ((await readFile(path, 'utf8').catch(() => '')) === mine) await unlink(path).catch(() => {});
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // The stale lock was removed below and someone else created one first.
      if (attempt > 0) throw new BaseDirInUseError(`${dir}: another daemon took it at the same time`);
    }
    const text = await readFile(path, 'utf8').catch(() => '');
    let holder: { pid?: unknown; host?: unknown; hostType?: unknown; nodeId?: unknown } = {};
    try { holder = JSON.parse(text) as typeof holder; } catch { /* unreadable: treated as stale */ }
    // A daemon of another machine (a shared folder) cannot be checked from here: it counts as running.
    if (typeof holder.host === 'string' && holder.host !== host) {
      throw new BaseDirInUseError(`${dir} is in use by ${String(holder.hostType ?? 'a daemon')} ${String(holder.nodeId ?? '')} on ${holder.host}; if it is gone, remove ${path}`);
    }
    if (typeof holder.pid === 'number' && Number.isSafeInteger(holder.pid) && alive(holder.pid)) {
      throw new BaseDirInUseError(`${dir} is in use by ${String(holder.hostType ?? 'a daemon')} ${String(holder.nodeId ?? '')} (pid ${holder.pid}); stop it first, or give this daemon another folder`);
    }
    await unlink(path).catch(() => {});
  }
}
