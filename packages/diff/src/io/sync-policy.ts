/**
 * When apply syncs its target: an fsync every `syncEvery` bytes (waited for), and writeback
 * started every 64 MiB without waiting, so the final sync finds little left.
 *
 * @module
 */
import type { FileHandle } from 'node:fs/promises';
import { locateIoError } from '@walbjs/log-format';
import type { ApplySummary } from './apply.ts';

/** Bytes written between the syncs started early. */
const EARLY_SYNC_BYTES = 64 << 20;

/** @internal */
export class SyncPolicy {
  private sinceSync = 0;
  private sinceEarly = 0;
  private early: Promise<void> | undefined;
  private earlyError: unknown;
  readonly summary: ApplySummary = { ios: 0, bytesWritten: 0, discardLb: 0, zeroBytesInHoles: 0, syncs: 0 };

  constructor(private readonly fh: FileHandle, private readonly path: string, private readonly syncEvery: number) {}

  /** Count `n` bytes written; sync when the interval is reached, start writeback early. */
  async written(n: number): Promise<void> {
    this.summary.bytesWritten += n;
    this.sinceSync += n;
    this.sinceEarly += n;
    if (this.syncEvery > 0 && this.sinceSync >= this.syncEvery) {
      await this.sync();
      this.summary.syncs++;
      this.sinceSync = 0;
      this.sinceEarly = 0;
    } else if (this.sinceEarly >= EARLY_SYNC_BYTES && !this.early) {
      // Start writing back what is dirty while the apply goes on (one such sync at a time): the
      // disk works alongside the reads instead of after them.
      this.sinceEarly = 0;
      this.early = this.sync().then(() => { this.summary.syncs++; }, (e: unknown) => { this.earlyError ??= e; }).finally(() => { this.early = undefined; });
    }
  }

  sync(): Promise<void> {
    return this.fh.datasync().catch((e: unknown) => { throw locateIoError(e, this.path, 'sync'); });
  }

  /** Wait for an early sync, then sync everything. */
  async finish(): Promise<void> {
    await this.early;
    if (this.earlyError !== undefined) throw this.earlyError;
    await this.sync();
    this.summary.syncs++;
  }
}
