/**
 * The archive role embedded in another Node program: an {@link ArchiveDaemon} created in-process
 * and driven with `daemon.call(method, params, { upload })`, exactly as a peer's request over the
 * protocol would drive it, then started on a loopback port to show the same daemon serving peers.
 *
 * What goes in is made with the lower packages, as a storage and a proxy would make it:
 *
 * - the full image: a seeded random disk image, sent with `full-sync` (the bytes as an upload) and
 *   committed with `full-sync-commit` as the clean snapshot gid 0;
 * - the diffs: random valid logs (`@walbjs/log-format`'s `writeGeneratedWlog`, carrying the
 *   volume's uuid, as a walb device's logs would) converted to wdiffs (`@walbjs/diff`'s
 *   `convertWlogs`), each sent with `wdiff-transfer` as the diff gid i−1 → gid i.
 *
 * Then `get restorable`, `restore` of a gid, and a check that the restored image equals the base
 * with the diffs up to that gid applied by `applyWdiffs` on a copy, byte for byte.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ArchiveDaemon, Controller, WalbCoreError, formatMetaDiff, makeMetaDiff, metaSnap, parseServerAddress,
  type Logger, type LogLevel, type Restorable,
} from '@walbjs/core';
import { applyWdiffs, convertWlogs } from '@walbjs/diff';
import { SeededRandom, uuidToHex, writeGeneratedWlog } from '@walbjs/log-format';

/** Options of {@link runEmbeddedArchive}. */
export interface EmbeddedOptions {
  /** Work folder: the archive's base folder, the inputs, the checks (created). */
  dir: string;
  /** Diffs to send, gid 0 → 1, 1 → 2, … (default 3). */
  diffs?: number;
  /** The gid to restore, 0..diffs (default: the middle one). */
  restore?: number;
  /** Seed of the image and the logs (default 1). */
  seed?: number;
  /** Volume size in bytes (default 8 MiB). */
  sizeBytes?: number;
  /** Narration, one line at a time (default: none). */
  say?: (line: string) => void;
}

/** One diff sent to the archive. */
export interface SentDiff {
  gid: bigint;
  /** The diff in the archive's notation, e.g. `|0|-->|1| -- 2024-05-01T10:00:00 51234`. */
  line: string;
  /** Its file name in the archive's volume folder (what `wdiff-transfer` answered). */
  name: string;
  wlogLsids: [bigint, bigint];
  records: number;
  wdiffBytes: number;
}

/** What {@link runEmbeddedArchive} did. */
export interface EmbeddedSummary {
  dir: string;
  volId: string;
  uuid: string;
  sizeBytes: number;
  base: { sha256: string; bytesReceived: bigint };
  diffs: SentDiff[];
  /** A diff sent twice is refused with a typed error, in-process as over a socket. */
  refused: { code: string; reason: string; message: string };
  /** `get restorable`, in-process. */
  restorable: bigint[];
  restore: { gid: bigint; path: string; sha256: string; expectedSha256: string; identical: boolean };
  /** The same daemon listening on loopback: what a peer saw. */
  served: { address: string; restorable: bigint[]; virtFullScan: { gid: bigint; sha256: string; expectedSha256: string; identical: boolean } };
  /** The daemon's own log events, as this program's logger received them. */
  daemonEvents: string[];
  verified: boolean;
}

const MiB = 1 << 20;
const VOL = 'vol0';

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  const [fa, fb] = [await open(a, 'r'), await open(b, 'r')];
  try {
    const ba = Buffer.alloc(MiB), bb = Buffer.alloc(MiB);
    for (let off = 0; ; off += MiB) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, MiB, off), fb.read(bb, 0, MiB, off)]);
      if (ra.bytesRead !== rb.bytesRead) return false;
      if (ra.bytesRead === 0) return true;
      if (!ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
    }
  } finally {
    await fa.close();
    await fb.close();
  }
}

/**
 * A file as an upload. Lazy on purpose: the file is opened only when the daemon starts reading,
 * and closed when it stops (the generator's `finally`). `call()` hands the iterable to the
 * command as is; a command that refuses before reading (a diff too old, a volume in the wrong
 * state) never touches it, and an eager `createReadStream(path)` would then hold its descriptor
 * open until someone destroyed it.
 */
async function* fileUpload(path: string): AsyncGenerator<Buffer> {
  const s = createReadStream(path, { highWaterMark: MiB });
  try {
    for await (const chunk of s) yield chunk as Buffer;
  } finally {
    s.destroy();
  }
}

/** A seeded disk image: random data with a few zero regions (which the archive keeps sparse). */
async function makeImage(path: string, sizeBytes: number, rand: SeededRandom): Promise<void> {
  const fh = await open(path, 'w');
  try {
    const chunk = Buffer.alloc(MiB);
    for (let off = 0; off < sizeBytes; off += MiB) {
      const n = Math.min(MiB, sizeBytes - off);
      if (rand.below(4) === 0) chunk.fill(0, 0, n);
      else rand.fill(chunk.subarray(0, n));
      await fh.write(chunk, 0, n, off);
    }
  } finally {
    await fh.close();
  }
}

/** The daemon's structured logs, routed into this program (here: collected as short lines). */
function collectingLogger(out: string[], say: (line: string) => void): Logger {
  return {
    log(level: LogLevel, event: string, fields: Record<string, unknown> = {}) {
      if (level === 'debug') return;
      const kv = Object.entries(fields)
        .filter(([k]) => k !== 'baseDir')
        .map(([k, v]) => `${k}=${typeof v === 'object' && v !== null ? JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x)) : String(v)}`)
        .join(' ');
      const line = `${level} ${event}${kv ? ' ' + kv : ''}`;
      out.push(line);
      say(`           · archive: ${line}`);
    },
  };
}

/** Run the whole example in `opts.dir`; see the module comment. */
export async function runEmbeddedArchive(opts: EmbeddedOptions): Promise<EmbeddedSummary> {
  const nDiffs = opts.diffs ?? 3;
  const restoreGid = BigInt(opts.restore ?? Math.ceil(nDiffs / 2));
  if (!Number.isInteger(nDiffs) || nDiffs < 1) throw new RangeError(`diffs must be a positive integer, not ${nDiffs}`);
  if (restoreGid < 0n || restoreGid > BigInt(nDiffs)) throw new RangeError(`the gid to restore must be in 0..${nDiffs}, not ${restoreGid}`);
  const sizeBytes = opts.sizeBytes ?? 8 * MiB;
  const say = opts.say ?? (() => {});
  const rand = new SeededRandom(opts.seed ?? 1);
  const { dir } = opts;
  const inputs = join(dir, 'inputs'), checks = join(dir, 'checks'), baseDir = join(dir, 'archive');
  await mkdir(inputs, { recursive: true });
  await mkdir(checks, { recursive: true });
  // start() makes the base folder and recovers what is on disk; before it, calls work on a folder
  // that exists (a fresh one here: there is nothing to recover).
  await mkdir(baseDir, { recursive: true });

  const daemonEvents: string[] = [];
  const daemon = new ArchiveDaemon({ baseDir, host: '127.0.0.1', port: 0, logger: collectingLogger(daemonEvents, say), nodeId: 'embedded-archive' });
  // `call` answers `unknown`, as a reply off the wire would be: the shapes are the command's.
  const call = <T>(method: string, params: Record<string, unknown>, upload?: AsyncIterable<Buffer>): Promise<T> =>
    daemon.call(method, params, upload ? { upload } : {}) as Promise<T>;

  try {
    // -- the volume and its full image ----------------------------------------------------------
    const uuid = new Uint8Array(16);
    rand.fill(uuid);
    const basePath = join(inputs, 'base.img');
    await makeImage(basePath, sizeBytes, rand);
    const sizeLb = BigInt(sizeBytes / 512);
    const now = Math.floor(Date.now() / 1000);
    say(`volume     ${VOL}: ${sizeBytes / MiB} MiB, uuid ${uuidToHex(uuid)}; archive in ${baseDir}, driven in-process with daemon.call()`);
    await call('init-vol', { volId: VOL });
    const fs = await call<{ received: bigint }>('full-sync', { volId: VOL, sizeLb, uuid, timestamp: now }, fileUpload(basePath));
    await call('full-sync-commit', { volId: VOL, snap: metaSnap(0n), timestamp: now });
    say(`full sync  ${fs.received} bytes uploaded by full-sync, committed as the clean snapshot |0|`);

    // -- diffs: generated logs → wdiffs → wdiff-transfer ----------------------------------------------
    const diffs: SentDiff[] = [];
    const wdiffPaths: string[] = [];
    let lsid = 0n;
    for (let i = 1; i <= nDiffs; i++) {
      const wlog = join(inputs, `${i}.wlog`);
      const wdiff = join(inputs, `${i}.wdiff`);
      // The logs a walb device of this volume would have written: same uuid, consecutive lsids,
      // IOs inside the volume (normal, all-zero and discard records, and padding).
      const g = await writeGeneratedWlog(wlog, { seed: (opts.seed ?? 1) * 1000 + i, pbs: 4096, uuid, deviceBytes: sizeBytes, totalBytes: 512 << 10, beginLsid: lsid });
      const conv = await convertWlogs([wlog], wdiff);
      const dataSize = BigInt((await stat(wdiff)).size);
      const gid = BigInt(i);
      // isMergeable false: each gid is an explicit snapshot, listed by `get restorable` (a
      // mergeable diff makes the snapshot before it implicit, listed only with `all`).
      const diff = makeMetaDiff({ snapB: metaSnap(gid - 1n), snapE: metaSnap(gid), isMergeable: false, timestamp: now + i, dataSize });
      const r = await call<{ name: string }>('wdiff-transfer', { volId: VOL, uuid, sizeLb, diff }, fileUpload(wdiff));
      diffs.push({ gid, line: formatMetaDiff(diff), name: r.name, wlogLsids: [lsid, g.endLsid], records: conv.records, wdiffBytes: Number(dataSize) });
      wdiffPaths.push(wdiff);
      say(`diff ${i}     logs [${lsid}, ${g.endLsid}) -> ${conv.records} records, ${dataSize} bytes; wdiff-transfer ${formatMetaDiff(diff)} accepted as ${r.name}`);
      lsid = g.endLsid;
    }

    // -- a refusal: the first diff again is older than the archive's latest snapshot --------------------
    let refused: EmbeddedSummary['refused'] | undefined;
    try {
      const again = makeMetaDiff({ snapB: metaSnap(0n), snapE: metaSnap(1n), isMergeable: false, timestamp: now + 1, dataSize: BigInt(diffs[0].wdiffBytes) });
      await call('wdiff-transfer', { volId: VOL, uuid, sizeLb, diff: again }, fileUpload(wdiffPaths[0]));
    } catch (e) {
      // In-process, the command's own typed error (a peer gets it as a RemoteError with its code).
      if (!(e instanceof WalbCoreError)) throw e;
      refused = { code: e.code, reason: (e as WalbCoreError & { reason?: string }).reason ?? '', message: e.message };
    }
    if (!refused) throw new Error('the archive accepted a diff it already has');
    say(`refused    diff |0|-->|1| again: ${refused.code} (${refused.message})`);

    // -- restorable, restore, check ----------------------------------------------------------------------
    const restorable = (await call<Restorable[]>('get', { target: 'restorable', volId: VOL })).map((r) => r.gid);
    say(`restorable gids ${restorable.join(', ')}`);
    // wait: true makes the call return when the restore is done (else it answers at once and runs on).
    const restored = await call<{ restored: bigint; path: string }>('restore', { volId: VOL, gid: restoreGid, wait: true });
    // What the restore must equal: the base with the diffs up to the gid applied, on a copy. The
    // archive zeroes what a DISCARD covers; applyWdiffs' default, 'ignore', would keep the old data.
    const expectedAt = async (gid: bigint): Promise<string> => {
      const p = join(checks, `expected-${gid}.img`);
      await copyFile(basePath, p);
      const chain = wdiffPaths.slice(0, Number(gid));
      if (chain.length) await applyWdiffs(p, chain, { discard: 'zero' });
      return p;
    };
    const expected = await expectedAt(restoreGid);
    const restore = {
      gid: restoreGid, path: restored.path, sha256: await sha256(restored.path), expectedSha256: await sha256(expected),
      identical: await sameBytes(restored.path, expected),
    };
    say(`restore    gid ${restoreGid} -> ${restored.path}: ${restore.identical ? 'identical to' : 'DIFFERS from'} base + diffs 1..${restoreGid} applied with applyWdiffs (sha256 ${restore.sha256.slice(0, 16)}…)`);

    // -- the same daemon, serving peers on loopback ------------------------------------------------------
    await daemon.start();
    const ax = parseServerAddress(daemon.address);
    const c = new Controller({ pollMs: 50 });
    const servedRestorable = (await c.getRestorable(ax, VOL)).map((r) => r.gid);
    const last = BigInt(nDiffs);
    const scan = join(checks, `virt-full-scan-${last}.img`);
    await c.virtFullScan(ax, VOL, last, scan);
    const expectedLast = await expectedAt(last);
    const virtFullScan = { gid: last, sha256: await sha256(scan), expectedSha256: await sha256(expectedLast), identical: await sameBytes(scan, expectedLast) };
    say(`served     on ${daemon.address}: a Controller got restorable ${servedRestorable.join(', ')} and virt-full-scan of gid ${last}: ${virtFullScan.identical ? 'identical to' : 'DIFFERS from'} base + diffs 1..${last}`);

    const verified = restore.identical && virtFullScan.identical
      && restorable.join() === servedRestorable.join()
      && restorable.join() === Array.from({ length: nDiffs + 1 }, (_, i) => String(i)).join();
    say(verified ? 'verified   the archive restored exactly what the diffs describe' : 'FAILED     see above');
    return {
      dir, volId: VOL, uuid: uuidToHex(uuid), sizeBytes,
      base: { sha256: await sha256(basePath), bytesReceived: fs.received },
      diffs, refused, restorable, restore,
      served: { address: daemon.address, restorable: servedRestorable, virtFullScan },
      daemonEvents, verified,
    };
  } finally {
    // Graceful: background actions (a restore without wait) finish first.
    await daemon.stop('graceful');
  }
}
