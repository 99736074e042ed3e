/**
 * A local walbjs cluster for the demo and the system tests: `walb-storage`, `walb-proxy` and
 * `walb-archive` started as separate processes on loopback, each with its own state folder and
 * log file, and the means to kill (-9) and restart any of them on the same port.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerAddress } from '@walbjs/core';

/** A daemon of the cluster. */
export interface ClusterDaemon {
  readonly kind: 'storage' | 'proxy' | 'archive';
  /** Its address (the same across restarts). */
  readonly address: { host: string; port: number };
  /** Its structured log file. */
  readonly logFile: string;
  /** The running process. */
  readonly child: ChildProcess;
  /** Kill it with SIGKILL and wait until it is gone. */
  kill(): Promise<void>;
  /** Start it again on the same port (after {@link kill} or a shutdown). */
  restart(): Promise<void>;
  /** Ask it to stop (SIGINT: graceful) and wait. */
  stop(): Promise<void>;
}

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Folder for the daemons' state and logs. */
  workDir: string;
  /** Extra arguments per daemon. */
  args?: Partial<Record<'storage' | 'proxy' | 'archive', string[]>>;
}

/** The three daemons. */
export interface Cluster {
  storage: ClusterDaemon;
  proxy: ClusterDaemon;
  archive: ClusterDaemon;
  /** Stop all (gracefully, then by force if they linger). */
  stop(): Promise<void>;
}

/** The command that runs a bin of this package: from source under tsx, or the built file. */
function binCommand(name: string): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  let dir = here;
  while (!existsSync(join(dir, 'package.json')) || !readFileSync(join(dir, 'package.json'), 'utf8').includes('"@walbjs/cli"')) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the @walbjs/cli package above ${here}`);
    dir = up;
  }
  if (import.meta.url.endsWith('.ts')) return [process.execPath, '--conditions=walb-source', '--import', 'tsx', join(dir, 'src/bin', `${name}.ts`)];
  return [process.execPath, join(dir, 'dist/bin', `${name}.js`)];
}

async function launch(kind: 'storage' | 'proxy' | 'archive', args: string[], logFile: string): Promise<{ child: ChildProcess; address: string }> {
  const [cmd, ...pre] = binCommand(`walb-${kind}`);
  const child = spawn(cmd, [...pre, ...args, '--json', '--log', logFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      child.stdout!.off('data', onData);
      try { resolve((JSON.parse(out.slice(0, nl)) as { address: string }).address); } catch (e) { reject(e); }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`walb-${kind} exited with ${code} before listening: ${err.trim()}`)));
  });
  child.stdout!.resume();
  return { child, address };
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

/**
 * Start storage, proxy and archive as separate processes on loopback.
 *
 * @example
 * const c = await startCluster({ workDir: '/tmp/walb-demo' });
 * await new Controller().initStorage(c.storage.address, 'vol0', '/tmp/walb-demo/dev0');
 * await c.stop();
 */
export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const started: ClusterDaemon[] = [];
  // The daemons must not outlive this process, however it ends.
  const killAll = () => { for (const d of started) d.child.kill('SIGKILL'); };
  process.once('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    if (process.listenerCount(sig) === 0) process.once(sig, () => { killAll(); process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1)); });
  }
  const make = async (kind: 'storage' | 'proxy' | 'archive', extra: () => string[]): Promise<ClusterDaemon> => {
    const base = join(opts.workDir, kind);
    mkdirSync(base, { recursive: true });
    const logFile = join(opts.workDir, `${kind}.log`);
    const first = await launch(kind, ['-b', base, '-p', '0', ...extra(), ...(opts.args?.[kind] ?? [])], logFile);
    const [host, port] = [first.address.slice(0, first.address.lastIndexOf(':')), Number(first.address.slice(first.address.lastIndexOf(':') + 1))];
    const d = {
      kind, address: { host, port }, logFile, child: first.child,
      async kill() { d.child.kill('SIGKILL'); await exited(d.child); },
      async stop() {
        d.child.kill('SIGINT');
        const t = setTimeout(() => d.child.kill('SIGKILL'), 20_000);
        await exited(d.child);
        clearTimeout(t);
      },
      async restart() {
        const r = await launch(kind, ['-b', base, '-p', String(port), ...extra(), ...(opts.args?.[kind] ?? [])], logFile);
        d.child = r.child;
      },
    };
    started.push(d);
    return d;
  };
  try {
    const archive = await make('archive', () => []);
    const proxy = await make('proxy', () => ['--delay', '0.2', '--maxdelay', '2']);
    const at = (x: ClusterDaemon) => `${x.address.host}:${x.address.port}`;
    const storage = await make('storage', () => ['--archive', at(archive), '--proxy', at(proxy), '--snapintvl', '2', '--delay', '0.2', '--maxdelay', '2']);
    return { storage, proxy, archive, stop: async () => { await Promise.all(started.map((d) => d.stop())); } };
  } catch (e) {
    await Promise.all(started.map((d) => d.kill()));
    throw e;
  }
}

/** A daemon's address as the controller takes it. */
export function addressOf(d: ClusterDaemon): ServerAddress {
  return d.address;
}
