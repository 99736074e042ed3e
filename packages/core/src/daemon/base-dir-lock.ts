/**
 * One daemon per base folder: two working on the same volumes would interleave applies, merges
 * and deletions. The daemon creates a lock file naming itself when it opens the folder and removes
 * it when it stops. A lock file whose holder is gone (a daemon killed with SIGKILL) is stale and
 * taken over; one whose holder may still run is never taken over.
 *
 * A pid alone cannot tell: a daemon that is PID 1 of a container finds its own pid in the lock its
 * previous incarnation left; a pid may since belong to an unrelated process; a container's host
 * name changes from one run to the next. So the lock also records the kernel's boot id, the pid
 * namespace, the process's start time, and a *beacon*: a unix socket in the base folder that the
 * holder listens on. On the same kernel (same boot id) the beacon decides, whatever the host name
 * or pid namespace: the kernel closes it when its process dies, however it dies. Without an
 * answer from it, the rules are, in order:
 *
 * 1. another host name, not on this kernel and pid namespace: in use (a folder shared over the
 *    network; only its owner, or a person, can tell it is stale);
 * 2. the same host name, another boot: stale (nothing of that boot runs);
 * 3. another pid namespace of this kernel: in use (its pids mean nothing here);
 * 4. this process's own pid: stale unless this process holds the lock (an earlier incarnation);
 * 5. a pid that is gone, or that now belongs to a process started at another time: stale;
 * 6. otherwise in use.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { readFile, readlink, realpath, unlink, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { BaseDirInUseError } from '../errors.ts';

/** Name of the lock file in the base folder (a dot file: no volume name starts with a dot). */
export const LOCK_FILE = '.walbjs-daemon.lock';

/** Beacon names: checked before a stale holder's beacon is removed, so a lock file cannot name any other file. */
const BEACON_NAME = /^\.walbjs-daemon-[0-9a-f]{8}\.sock$/;

/** Longest unix socket path: longer ones are cut short without an error, and would name another file. */
const MAX_SOCKET_PATH = 107;

/** The base folders (real paths) whose lock this process holds. */
const held = new Set<string>();

/** What a lock file says about its holder (any field may be missing or of the wrong type). */
interface Holder {
  pid?: unknown;
  host?: unknown;
  hostType?: unknown;
  nodeId?: unknown;
  boot?: unknown;
  pidns?: unknown;
  start?: unknown;
  beacon?: unknown;
}

/** This process as a lock records it. */
interface Self {
  host: string;
  boot?: string;
  pidns?: string;
  start?: string;
  /** Whether `/proc` shows this pid namespace (it may be the parent's, as under `unshare -p` alone). */
  procIsOurs: boolean;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, as another user's process.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Field 22 of `/proc/<pid>/stat`: clock ticks from boot to the process's start. */
async function startTime(pid: number | 'self'): Promise<string | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  // The command name (field 2) may hold spaces and parentheses: count from its closing one.
  return text?.slice(text.lastIndexOf(')') + 2).split(' ')[19];
}

async function self(): Promise<Self> {
  const procIsOurs = (await readlink('/proc/self').catch(() => '')) === String(process.pid);
  return {
    host: hostname(),
    boot: (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim() || undefined,
    pidns: procIsOurs ? await readlink('/proc/self/ns/pid').catch(() => undefined) : undefined,
    start: procIsOurs ? await startTime('self') : undefined,
    procIsOurs,
  };
}

/** Listen on a fresh beacon in `dir`; undefined where unix sockets cannot be made there. */
async function listenBeacon(dir: string): Promise<{ name: string; server: Server } | undefined> {
  const name = `.walbjs-daemon-${randomBytes(4).toString('hex')}.sock`;
  const path = join(dir, name);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) return undefined;
  // A peer only learns that the socket is open: nothing is read or written.
  const server = createServer((s) => s.destroy());
  try {
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(path, () => { server.off('error', fail); ok(); });
    });
  } catch {
    return undefined;
  }
  server.on('error', () => {});
  // The daemon's own socket keeps the process running, not this one.
  server.unref();
  return { name, server };
}

async function closeBeacon(dir: string, b: { name: string; server: Server } | undefined): Promise<void> {
  if (!b) return;
  await new Promise((r) => b.server.close(r));
  await unlink(join(dir, b.name)).catch(() => {});
}

/** Whether a beacon's process runs: `undefined` when the answer says nothing (no permission, say). */
function probe(path: string): Promise<boolean | undefined> {
  return new Promise((done) => {
    const s = connect(path);
    const finish = (v: boolean | undefined) => { clearTimeout(t); s.destroy(); done(v); };
    // A listener that does not accept (stopped, busy) still has its socket open: the connect waits.
    const t = setTimeout(() => finish(true), 2000);
    s.once('connect', () => finish(true));
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') finish(false);
      else if (e.code === 'EAGAIN') finish(true);
      else finish(undefined);
    });
  });
}

/**
 * Why the lock's holder counts as running (the message of the error), or undefined when the lock
 * is stale; `me` is this process.
 */
async function inUse(h: Holder, me: Self, dir: string, path: string): Promise<string | undefined> {
  const who = `${String(h.hostType ?? 'a daemon')} ${String(h.nodeId ?? '')}`.trimEnd();
  const pid = typeof h.pid === 'number' && Number.isSafeInteger(h.pid) && h.pid > 0 ? h.pid : undefined;
  const otherHost = typeof h.host === 'string' && h.host !== me.host;
  const sameKernel = me.boot !== undefined && h.boot === me.boot;
  const running = `${dir} is in use by ${who} (pid ${String(h.pid)}${otherHost ? ` on ${String(h.host)}` : ''}); stop it first, or give this daemon another folder`;
  const unknowable = (where: string) => `${dir} is in use by ${who} (pid ${String(h.pid)}) ${where}, which cannot be checked from here; if that daemon is gone, remove ${path} and start again`;
  if (sameKernel && typeof h.beacon === 'string' && BEACON_NAME.test(h.beacon)) {
    const up = await probe(join(dir, h.beacon));
    if (up !== undefined) return up ? running : undefined;
  }
  const samePidNs = sameKernel && me.pidns !== undefined && h.pidns === me.pidns;
  if (otherHost && !samePidNs) return unknowable(`on ${String(h.host)}`);
  if (typeof h.boot === 'string' && me.boot !== undefined && h.boot !== me.boot) return undefined;
  if (typeof h.pidns === 'string' && me.pidns !== undefined && h.pidns !== me.pidns) return unknowable(`in another pid namespace (${h.pidns})`);
  if (pid === undefined || pid === process.pid || !alive(pid)) return undefined;
  if (typeof h.start === 'string' && me.procIsOurs) {
    const now = await startTime(pid);
    if (now !== undefined && now !== h.start) return undefined;
  }
  return running;
}

/**
 * Take the base folder for this daemon; returns the function that gives it back.
 *
 * @throws {@link BaseDirInUseError} when a daemon that runs, or may run, holds it (this process
 *   included); the message says how to take over a lock whose holder cannot be checked from here
 */
export async function lockBaseDir(dir: string, hostType: string, nodeId: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const real = await realpath(dir).catch(() => resolve(dir));
  if (held.has(real)) throw new BaseDirInUseError(`${dir} is in use by another daemon of this process (pid ${process.pid}); stop it first, or give this daemon another folder`);
  const me = await self();
  const beacon = await listenBeacon(dir);
  const mine = JSON.stringify({
    pid: process.pid, host: me.host, hostType, nodeId, since: new Date().toISOString(),
    boot: me.boot, pidns: me.pidns, start: me.start, beacon: beacon?.name,
  }) + '\n';
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await writeFile(path, mine, { flag: 'wx', mode: 0o644 });
        held.add(real);
        return async () => {
          // Only our own: a daemon that took a stale lock over after us keeps its.
          if ((await readFile(path, 'utf8').catch(() => '')) === mine) await unlink(path).catch(() => {});
          held.delete(real);
          await closeBeacon(dir, beacon);
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        // The stale lock was removed below and someone else created one first.
        if (attempt > 0) throw new BaseDirInUseError(`${dir}: another daemon took it at the same time`);
      }
      const text = await readFile(path, 'utf8').catch(() => '');
      let holder: Holder = {};
      try { holder = JSON.parse(text) as Holder; } catch { /* unreadable: treated as stale */ }
      if (holder === null || typeof holder !== 'object') holder = {};
      const why = await inUse(holder, me, dir, path);
      if (why) throw new BaseDirInUseError(why);
      await unlink(path).catch(() => {});
      if (typeof holder.beacon === 'string' && BEACON_NAME.test(holder.beacon) && holder.beacon !== beacon?.name) await unlink(join(dir, holder.beacon)).catch(() => {});
    }
  } catch (e) {
    await closeBeacon(dir, beacon);
    throw e;
  }
}
