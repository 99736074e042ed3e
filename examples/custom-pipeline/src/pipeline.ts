/**
 * Continuous backup of a userspace walb device, composed by hand from the low-level packages, the
 * way a third party would build its own pipeline without the storage / proxy / archive daemons:
 *
 * 1. `@walbjs/log-format`'s `formatLdev` formats a log device file for a data device file, and
 *    `@walbjs/native-walb`'s `CaptureDevice` opens the pair as a walb device and serves it on a
 *    unix socket over NBD;
 * 2. a real NBD client (`qemu-io`) writes to it, and the data device file is copied as the base
 *    image;
 * 3. each round: more writes, then wait for the permanent lsid, extract the logs between the last
 *    extracted lsid and it from the log device (`LogDevice` + `extractLogpacks` into a
 *    `WlogWriter`), convert them to a wdiff (`@walbjs/diff`'s `convertWlogs`) kept in a folder
 *    named by sequence, and free that part of the ring (`setOldestLsid`);
 * 4. restore a chosen snapshot as base + the diffs up to it, three ways (`VirtualFullImage`,
 *    `applyWdiffs` onto a copy of the base, and one `mergeWdiffs` output), and compare each byte
 *    for byte with what the device held then (read with `nbdcopy`).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { applyWdiffs, convertWlogs, mergeWdiffs, VirtualFullImage } from '@walbjs/diff';
import { extractLogpacks, formatLdev, LogDevice, WlogWriter, type WlogPack, type ExtractRange } from '@walbjs/log-format';
import { CaptureDevice } from '@walbjs/native-walb';
import { nbdcopy, qemuIo, unixUri } from './nbd.ts';
import { Workload } from './workload.ts';

/** Options of {@link runPipeline}. */
export interface PipelineOptions {
  /** Work folder: device files, base image, diffs, restored images (created; must be empty or absent). */
  dir: string;
  /** Rounds of writes, one wdiff each (default 5). */
  rounds?: number;
  /** The snapshot to restore, 1..rounds (default: the middle one). */
  restore?: number;
  /** Seed of the workload (default 1). */
  seed?: number;
  /** Data device size in bytes (default 16 MiB). */
  deviceBytes?: number;
  /**
   * Log device size in bytes (default 4 MiB). Smaller than what all rounds write, so the ring
   * wraps: it is freeing the ring after each extraction that lets the device go on.
   */
  logBytes?: number;
  /** Narration, one line at a time (default: none). */
  say?: (line: string) => void;
}

/** One extracted and converted range of logs. */
export interface DiffSummary {
  /** Sequence number, 1 for the first round. */
  seq: number;
  /** The folder it is kept in. */
  folder: string;
  /** The wdiff file. */
  wdiff: string;
  /** lsids `[beginLsid, endLsid)` of the logs it holds. */
  beginLsid: bigint;
  endLsid: bigint;
  /** Logpacks extracted. */
  packs: number;
  /** qemu-io commands of the round and the bytes they wrote. */
  writes: number;
  bytesWritten: number;
  /** Records and size of the wdiff. */
  records: number;
  wdiffBytes: number;
  /** sha256 of the device when the round ended (an nbdcopy of it). */
  deviceSha256: string;
}

/** One way of restoring the chosen snapshot, and its comparison with the device. */
export interface RestoreCheck {
  method: 'virtual-full-image' | 'apply-onto-copy' | 'merged-diff';
  path: string;
  sha256: string;
  /** Byte offset of the first difference from the device image, or null when identical. */
  firstDifference: number | null;
}

/** What {@link runPipeline} did. */
export interface PipelineSummary {
  dir: string;
  uri: string;
  pbs: number;
  deviceBytes: number;
  logBytes: number;
  /** Ring buffer size in physical blocks. */
  ringBufferPb: bigint;
  base: {
    path: string;
    /** The image is consistent with the logs from this lsid on. */
    lsid: bigint;
    /** Bytes another qemu-io wrote while the copy was taken. */
    bytesWrittenDuringCopy: number;
    /** The latest lsid when the copy ended: the writer's logs between `lsid` and it overlapped the copy. */
    latestAfterCopy: bigint;
  };
  diffs: DiffSummary[];
  /** lsid after the last log, and how many times the ring wrapped to hold them all. */
  endLsid: bigint;
  ringWraps: number;
  restore: {
    snapshot: number;
    lsid: bigint;
    expected: string;
    expectedSha256: string;
    checks: RestoreCheck[];
  };
  /** Every restore equals the device at the chosen snapshot. */
  verified: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const PBS = 4096;

/** A human size. */
export function size(bytes: number): string {
  if (bytes >= MiB) return `${+(bytes / MiB).toFixed(1)} MiB`;
  if (bytes >= KiB) return `${+(bytes / KiB).toFixed(1)} KiB`;
  return `${bytes} B`;
}

async function makeFile(path: string, bytes: number): Promise<void> {
  const fh = await open(path, 'wx');
  try { await fh.truncate(bytes); } finally { await fh.close(); }
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Offset of the first byte where two files differ (a shorter file differs at its end), or null. */
export async function firstDifference(a: string, b: string): Promise<number | null> {
  const [fa, fb] = [await open(a, 'r'), await open(b, 'r')];
  try {
    const ba = Buffer.alloc(MiB), bb = Buffer.alloc(MiB);
    for (let off = 0; ; off += MiB) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, MiB, off), fb.read(bb, 0, MiB, off)]);
      const n = Math.min(ra.bytesRead, rb.bytesRead);
      for (let i = 0; i < n; i++) if (ba[i] !== bb[i]) return off + i;
      if (ra.bytesRead !== rb.bytesRead) return off + n;
      if (n === 0) return null;
    }
  } finally {
    await fa.close();
    await fb.close();
  }
}

/**
 * Free the ring below `lsid`. The device checks `oldest ≤ lsid ≤ written lsid` as the kernel does,
 * and an NBD client is answered as its data reach the data device, a moment before the device's
 * written lsid moves past them: wait for that first.
 */
async function freeLog(dev: CaptureDevice, lsid: bigint): Promise<void> {
  const end = Date.now() + 10_000;
  while (dev.lsids().written < lsid) {
    if (Date.now() > end) throw new Error(`the written lsid did not reach ${lsid}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  await dev.setOldestLsid(lsid);
}

/**
 * Extract the logs `[beginLsid, endLsid)` of a log device into a wlog file, as `wlog-cat` would
 * with begin and end lsids. The range must be complete: the logs up to the permanent lsid are on
 * the log device, so stopping early means the ring lost some (an overflow), and a diff made from
 * them would silently miss writes.
 */
async function extractRange(ldevPath: string, beginLsid: bigint, endLsid: bigint, out: string): Promise<number> {
  // Open it afresh each time: the super sector (oldest lsid, checkpoint) changes as the device runs.
  const ldev = await LogDevice.open(ldevPath);
  try {
    const s = ldev.superSector;
    const w = await WlogWriter.create(out, { pbs: ldev.pbs, salt: s.logChecksumSalt, uuid: s.uuid, beginLsid, endLsid });
    const it = extractLogpacks(ldev, { beginLsid, endLsid });
    let packs = 0;
    let r: IteratorResult<WlogPack, ExtractRange>;
    while (!(r = await it.next()).done) {
      await w.writePack(r.value.header, r.value.ios);
      packs++;
    }
    await w.close();
    if (r.value.beginLsid !== beginLsid || r.value.endLsid !== endLsid) {
      throw r.value.invalid ?? new Error(`extracted [${r.value.beginLsid}, ${r.value.endLsid}) (${r.value.stoppedBy}), wanted [${beginLsid}, ${endLsid})`);
    }
    return packs;
  } finally {
    await ldev.close();
  }
}

/** Run the whole pipeline in `opts.dir`; see the module comment. */
export async function runPipeline(opts: PipelineOptions): Promise<PipelineSummary> {
  const rounds = opts.rounds ?? 5;
  const restoreAt = opts.restore ?? Math.ceil(rounds / 2);
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`rounds must be a positive integer, not ${rounds}`);
  if (!Number.isInteger(restoreAt) || restoreAt < 1 || restoreAt > rounds) throw new RangeError(`the snapshot to restore must be in 1..${rounds}, not ${restoreAt}`);
  const deviceBytes = opts.deviceBytes ?? 16 * MiB;
  const logBytes = opts.logBytes ?? 4 * MiB;
  const say = opts.say ?? (() => {});
  const { dir } = opts;
  const work = new Workload(opts.seed ?? 1, deviceBytes);

  // -- 1. the device --------------------------------------------------------------------------
  await mkdir(dir, { recursive: true });
  const ldevPath = join(dir, 'ldev'), ddevPath = join(dir, 'ddev');
  await makeFile(ddevPath, deviceBytes);
  await makeFile(ldevPath, logBytes);
  // pbs 4096 as a kernel walb device on a 4Kn disk; files would default to 512.
  const sup = await formatLdev(ldevPath, ddevPath, { pbs: PBS, name: 'custom-pipeline' });
  // errorBeforeOverflow: a write that would overwrite logs not yet extracted fails (ENOSPC), so a
  // pipeline that forgets to free the ring stops loudly instead of losing logs.
  const dev = await CaptureDevice.open(ldevPath, ddevPath, { errorBeforeOverflow: true, checkpointIntervalMs: 1000 });
  try {
    const sock = join(dir, 'nbd.sock');
    dev.serve({ unix: sock });
    const uri = unixUri(sock);
    const ringBufferPb = sup.ringBufferSize;
    // The writes are sized by the ring: everything written between two frees must fit in it, with
    // room for the logpack headers and the padding at the ring's end. (The initial data and the
    // writes during the base copy are freed together, once the copy is made.)
    const ringBytes = Number(ringBufferPb) * PBS;
    say(`device     ${size(deviceBytes)} data, ${size(logBytes)} log (ring of ${ringBufferPb} blocks of ${PBS} B), served at ${uri}`);

    // -- 2. initial data and the base image -----------------------------------------------------
    const init = work.initial(ringBytes * 0.375);
    await qemuIo(uri, init.commands);
    // The copy is taken while another client writes, as a real backup would be. Everything below
    // the data device's written lsid is in the data device file before the copy starts; anything
    // later may or may not be in it, and the logs from that lsid on overwrite it either way. (The
    // permanent lsid can trail the written one: the log of an unflushed write is not durable yet.)
    const during = work.round(6, ringBytes * 0.25);
    const before = dev.lsids().latest;
    let writing = true;
    const writer = qemuIo(uri, during.commands).finally(() => { writing = false; });
    writer.catch(() => {}); // awaited below; not an unhandled rejection while the copy runs
    // Start the copy once the writer's first IO is logged, so that the two really overlap.
    while (writing && dev.lsids().latest === before) await new Promise((r) => setTimeout(r, 1));
    const l0 = dev.lsids();
    const baseLsid = l0.written < l0.permanent ? l0.written : l0.permanent;
    const basePath = join(dir, 'base.img');
    await copyFile(ddevPath, basePath);
    const latestAfterCopy = dev.lsids().latest;
    await writer;
    // The base holds everything before baseLsid: those logs are not needed any more.
    await freeLog(dev, baseLsid);
    say(`base       qemu-io wrote ${init.commands.length} IOs (${size(init.bytes)}); ddev copied to base.img while another qemu-io wrote ${during.commands.length} IOs (logged up to lsid ${latestAfterCopy} when the copy ended); logs kept from lsid ${baseLsid}`);

    // -- 3. rounds: write, wait for permanent, extract, convert, free -------------------------------
    const diffs: DiffSummary[] = [];
    let last = baseLsid;
    let expected = '';
    let expectedSha = '';
    for (let seq = 1; seq <= rounds; seq++) {
      const round = work.round(12, ringBytes * 0.375);
      await qemuIo(uri, round.commands);
      // A snapshot: the lsid after every write so far. Its logs are safe to read once permanent
      // (durable on the log device) has reached it.
      const snapLsid = dev.lsids().latest;
      await dev.waitPermanent(snapLsid);
      // What the device holds at the snapshot, for the check at the end.
      const image = join(dir, 'device', `${String(seq).padStart(4, '0')}.img`);
      await mkdir(join(dir, 'device'), { recursive: true });
      await nbdcopy(uri, image);
      const deviceSha256 = await sha256(image);
      if (seq === restoreAt) { expected = image; expectedSha = deviceSha256; } else await rm(image);

      const folder = join(dir, 'diffs', String(seq).padStart(4, '0'));
      await mkdir(folder, { recursive: true });
      const wlog = join(folder, 'logs.wlog');
      const wdiff = join(folder, 'diff.wdiff');
      const packs = await extractRange(ldevPath, last, snapLsid, wlog);
      const conv = await convertWlogs([wlog], wdiff);
      // The wdiff is what is kept: sorted, overlaps resolved, compressed.
      await rm(wlog);
      const d: DiffSummary = {
        seq, folder, wdiff, beginLsid: last, endLsid: snapLsid, packs, writes: round.commands.length, bytesWritten: round.bytes,
        records: conv.records, wdiffBytes: (await stat(wdiff)).size, deviceSha256,
      };
      await writeFile(join(folder, 'meta.json'), JSON.stringify({ seq, beginLsid: String(last), endLsid: String(snapLsid), packs, records: d.records, deviceSha256 }, null, 2) + '\n');
      diffs.push(d);
      await freeLog(dev, snapLsid);
      say(`round ${seq}    ${round.commands.length} writes (${size(round.bytes)}); logs [${last}, ${snapLsid}) ${packs} packs -> diffs/${String(seq).padStart(4, '0')}/diff.wdiff ${d.records} records ${size(d.wdiffBytes)}; ring freed to ${snapLsid}`);
      last = snapLsid;
    }
    const ringWraps = Number(last / ringBufferPb);
    say(`log        ${last} blocks logged through a ring of ${ringBufferPb}: it wrapped ${ringWraps} time${ringWraps === 1 ? '' : 's'}`);

    // -- 4. restore and verify ----------------------------------------------------------------------
    const chain = diffs.slice(0, restoreAt).map((d) => d.wdiff);
    const restoreDir = join(dir, 'restored');
    await mkdir(restoreDir, { recursive: true });
    const checks: RestoreCheck[] = [];
    const check = async (method: RestoreCheck['method'], path: string) => {
      checks.push({ method, path, sha256: await sha256(path), firstDifference: await firstDifference(path, expected) });
    };

    // a. Read base + chain as one image, without writing anything but the output.
    const virt = join(restoreDir, 'virtual.img');
    const v = await VirtualFullImage.open(basePath, chain);
    try {
      const fh = await open(virt, 'w');
      try { for await (const b of v.stream()) await fh.write(b); } finally { await fh.close(); }
    } finally { await v.close(); }
    await check('virtual-full-image', virt);

    // b. Apply the chain onto a copy of the base. 'zero' reads a DISCARD as the virtual image does
    //    (the default, 'ignore', leaves the old data, as walb-tools' wdiff-redo).
    const applied = join(restoreDir, 'applied.img');
    await copyFile(basePath, applied);
    await applyWdiffs(applied, chain, { discard: 'zero' });
    await check('apply-onto-copy', applied);

    // c. Merge the chain into one wdiff (what an archive does to keep its chain short) and read it.
    const merged = join(restoreDir, 'merged.wdiff');
    await mergeWdiffs(chain, merged);
    const mergedImg = join(restoreDir, 'merged.img');
    const m = await VirtualFullImage.open(basePath, [merged]);
    try {
      const fh = await open(mergedImg, 'w');
      try { for await (const b of m.stream()) await fh.write(b); } finally { await fh.close(); }
    } finally { await m.close(); }
    await check('merged-diff', mergedImg);

    const verified = checks.every((c) => c.firstDifference === null);
    say(`restore    snapshot ${restoreAt} (lsid ${diffs[restoreAt - 1].endLsid}) = base.img + diffs 1..${restoreAt}`);
    for (const c of checks) {
      say(`  ${c.method.padEnd(19)} ${c.firstDifference === null ? 'identical to' : `differs at byte ${c.firstDifference} from`} the device as nbdcopy read it (sha256 ${c.sha256.slice(0, 16)}…)`);
    }
    say(verified ? 'verified   every restore equals the device at that snapshot, byte for byte' : 'FAILED     a restore differs from the device');

    return {
      dir, uri, pbs: PBS, deviceBytes, logBytes, ringBufferPb,
      base: { path: basePath, lsid: baseLsid, bytesWrittenDuringCopy: during.bytes, latestAfterCopy },
      diffs, endLsid: last, ringWraps,
      restore: { snapshot: restoreAt, lsid: diffs[restoreAt - 1].endLsid, expected, expectedSha256: expectedSha, checks },
      verified,
    };
  } finally {
    await dev.close();
  }
}
