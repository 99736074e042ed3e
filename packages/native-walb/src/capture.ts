/**
 * The userspace capture device: a walb device without the kernel module. An NBD server in the
 * native addon exports a disk of the data device's size; every write is first stored as a logpack
 * in the log device's ring buffer, in the walb driver's format (so the log-device readers extract
 * it as they extract a kernel device's), then written to the data device. FUA and FLUSH are
 * answered once the log is durable; on open, logs from the checkpointed written lsid are redone.
 *
 * @module
 */
import { loadNative, type NativeLsids } from './native.ts';

/** Options of {@link CaptureDevice.open}. */
export interface CaptureOptions {
  /** Fail writes that would overflow the ring (ENOSPC) instead of overwriting the oldest logs and flagging the overflow. */
  errorBeforeOverflow?: boolean;
  /** Checkpoint interval in ms (default 10 000, as the driver). */
  checkpointIntervalMs?: number;
  /** Largest logpack data in KiB (default 1024): how many writes one log write groups. */
  maxLogpackKb?: number;
}

/**
 * Where an NBD server listens: a unix socket path, or TCP `host:port` (loopback by default), and
 * the name it exports the device under (default `""`, the name clients ask for when given none).
 * A client asking for another name is refused: `NBD_REP_ERR_UNKNOWN` to `NBD_OPT_GO`/`INFO`, the
 * connection closed after `NBD_OPT_EXPORT_NAME`.
 */
export type ServeAddress = ({ unix: string } | { tcp: string }) & { exportName?: string };

/** A running NBD server. */
export interface CaptureServer {
  /** The address it listens on (a TCP port of 0 is resolved). */
  readonly address: string;
  /** Stop accepting connections. */
  stop(): void;
}

/** The lsids of a capture device, as the kernel device's (`latest ≥ completed ≥ permanent ≥ written ≥ oldest`). */
export type CaptureLsids = NativeLsids;

/**
 * A userspace walb device over a log device and a data device (files or block devices; the log
 * device formatted with `formatLdev`).
 *
 * @example
 * const dev = await CaptureDevice.open('ldev.img', 'ddev.img');
 * const srv = dev.serve({ unix: '/tmp/walb.sock' });   // nbd+unix:///?socket=/tmp/walb.sock
 * console.log(dev.lsids().permanent);
 * srv.stop(); await dev.close();
 */
export class CaptureDevice {
  private closed = false;
  private readonly servers: CaptureServer[] = [];

  private constructor(private readonly handle: object) {}

  /**
   * Whether a capture device, in this process or another, has `path` open as its log or data
   * device (it holds the file's exclusive lock until it is closed). Tools that rewrite a log
   * device (format, restore) ask first, so they never pull one from under a running device.
   *
   * @example
   * ```ts
   * if (await CaptureDevice.inUse('ldev.img')) throw new Error('close the device first');
   * ```
   */
  static inUse(path: string): Promise<boolean> {
    return loadNative().captureInUse(path);
  }

  /**
   * Open the device: read the super sector, redo the logs from written_lsid, start logging.
   * The log and data devices are locked until {@link CaptureDevice.close}: a second open of either
   * fails with `ERR_WALB_CAPTURE_BUSY`.
   */
  static async open(ldev: string, ddev: string, opts: CaptureOptions = {}): Promise<CaptureDevice> {
    const h = await loadNative().captureOpen(ldev, ddev, opts.errorBeforeOverflow ?? false, opts.checkpointIntervalMs ?? 10_000, opts.maxLogpackKb ?? 1024);
    return new CaptureDevice(h);
  }

  /** Export the device over NBD (several servers and connections at once are fine). */
  serve(where: ServeAddress): CaptureServer {
    this.check();
    const n = loadNative();
    const name = where.exportName ?? '';
    const r = 'unix' in where ? n.captureServe(this.handle, true, where.unix, name) : n.captureServe(this.handle, false, where.tcp, name);
    const s: CaptureServer = { address: r.address, stop: () => n.captureStopServer(r.server) };
    this.servers.push(s);
    return s;
  }

  /** The current lsids, the overflow and frozen flags, and the ring size. */
  lsids(): CaptureLsids {
    this.check();
    return loadNative().captureLsids(this.handle);
  }

  /** Free the log below `lsid` (after the next hop has what is below it). */
  async setOldestLsid(lsid: bigint): Promise<void> {
    this.check();
    await loadNative().captureSetOldest(this.handle, lsid);
  }

  /** Write written_lsid to the super sector now. */
  async checkpoint(): Promise<void> {
    this.check();
    await loadNative().captureCheckpoint(this.handle);
  }

  /**
   * Clear the log, as the kernel's CLEAR_LOG (`wdevc reset-wal`): a new random uuid and salt, every
   * lsid 0, the overflow flag cleared. Writes already acknowledged stay on the data device.
   */
  async clearLog(): Promise<void> {
    this.check();
    await loadNative().captureClearLog(this.handle);
  }

  /** Log usage in PB (`latest − oldest`; above the capacity means the log overflowed). */
  logUsage(): bigint {
    const l = this.lsids();
    return l.latest - l.oldest;
  }

  /** Log capacity in PB (the ring buffer size). */
  logCapacity(): bigint {
    return this.lsids().ringBufferSize;
  }

  /**
   * Call `listener` whenever the permanent lsid advances (checked every `intervalMs`); returns a
   * function that stops it. The timer does not keep the process alive.
   */
  onPermanent(listener: (lsids: CaptureLsids) => void, intervalMs = 50): () => void {
    let last = this.lsids().permanent;
    const t = setInterval(() => {
      if (this.closed) { clearInterval(t); return; }
      const l = this.lsids();
      if (l.permanent !== last) { last = l.permanent; listener(l); }
    }, intervalMs);
    t.unref();
    return () => clearInterval(t);
  }

  /** Hold every write until {@link melt}. */
  freeze(): void {
    this.check();
    loadNative().captureFreeze(this.handle, true);
  }

  /** Let writes go on. */
  melt(): void {
    this.check();
    loadNative().captureFreeze(this.handle, false);
  }

  /**
   * Resolve once `permanent` reaches `lsid` (polling every `intervalMs`), or reject after
   * `timeoutMs`.
   */
  async waitPermanent(lsid: bigint, timeoutMs = 30_000, intervalMs = 20): Promise<CaptureLsids> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const l = this.lsids();
      if (l.permanent >= lsid) return l;
      if (Date.now() > end) throw new Error(`permanent lsid ${l.permanent} did not reach ${lsid} in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  /** Stop the servers, finish queued writes, checkpoint. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const s of this.servers) s.stop();
    this.closed = true;
    await loadNative().captureClose(this.handle);
  }

  private check(): void {
    if (this.closed) throw new Error('the capture device is closed');
  }
}
