// The three roles in this process on loopback, for the tests that drive them as a whole.
import { join } from 'node:path';
import {
  ArchiveDaemon, ProxyDaemon, StorageDaemon, silentLogger,
  type ArchiveOptions, type Logger, type ProxyOptions, type StorageOptions,
} from '../src/index.ts';

type Extra<T> = Partial<Omit<T, 'baseDir' | 'logger'>>;

/** Archive, proxy and storage (wired to them) with folders under `dir`; quick retries for tests. */
export async function startTrio(dir: string, opts: { archive?: Extra<ArchiveOptions>; proxy?: Extra<ProxyOptions>; storage?: Extra<StorageOptions>; logger?: Logger } = {}) {
  const logger = opts.logger ?? silentLogger;
  const archive = await new ArchiveDaemon({ baseDir: join(dir, 'archive'), logger, ...opts.archive }).start();
  const proxy = await new ProxyDaemon({ baseDir: join(dir, 'proxy'), logger, retryDelayMs: 50, maxRetryDelayMs: 1000, ...opts.proxy }).start();
  const hp = (a: string) => ({ host: '127.0.0.1', port: Number(a.slice(a.lastIndexOf(':') + 1)) });
  const storage = await new StorageDaemon({
    baseDir: join(dir, 'storage'), logger, archive: hp(archive.address), proxies: [hp(proxy.address)],
    retryDelayMs: 50, maxRetryDelayMs: 1000, ...opts.storage,
  }).start();
  return {
    archive, proxy, storage, ax: hp(archive.address), px: hp(proxy.address), sx: hp(storage.address),
    async stop() { await storage.stop('force'); await proxy.stop('force'); await archive.stop('force'); },
  };
}

/**
 * A seeded source of random qemu-io workloads over a device of `size` bytes: each call gives the
 * `-c` arguments of `n` commands (writes of a random pattern, zero-writes, discards; 4 KiB to
 * 256 KiB, 4 KiB aligned). The same seed gives the same sequence.
 */
export function qemuIoWorkload(seed: number, size: number): (n: number) => string[] {
  let x = seed || 1;
  const rnd = (m: number) => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % m; };
  return (n) => {
    const args: string[] = [];
    for (let i = 0; i < n; i++) {
      const len = (1 + rnd(64)) * 4096, off = rnd((size - len) / 4096) * 4096, k = rnd(10);
      args.push('-c', k === 0 ? `discard ${off} ${len}` : k === 1 ? `write -z ${off} ${len}` : `write -P ${rnd(256)} ${off} ${len}`);
    }
    return args;
  };
}
