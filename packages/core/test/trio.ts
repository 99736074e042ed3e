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
