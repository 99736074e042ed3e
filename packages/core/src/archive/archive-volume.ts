/**
 * One archive volume on disk: `<base>/<volId>/` holds `state`, `base` (the image's MetaState),
 * `info` (the storage's walb uuid, the archive uuid, the size in LB), `base.img` (the base image),
 * the chain of `*.wdiff` files named as the original names them, `restored/<gid>.img`, and `tmp/`.
 *
 * @module
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createDiffFileName, isDiffFileName, parseDiffFileName } from '../diff-file-name.ts';
import { type MetaDiff, type MetaState, validateMetaState } from '../meta.ts';
import { getApplicableDiffList, getLatestSnapshot, getRestorableList } from '../restorable.ts';
import { StoreError } from '../errors.ts';
import { makeDirDurable, readJson, syncDir, writeJsonAtomic } from '../daemon/store.ts';

/** How often the diffs are listed again when one vanishes while they are listed. */
const LISTING_ATTEMPTS = 10;

/** Steady states of an archive volume (Clear: no folder). */
export type ArchiveState = 'Clear' | 'SyncReady' | 'Archived' | 'Stopped';

/** A wdiff of the chain with its file. */
export interface StoredDiff extends MetaDiff {
  /** File name inside the volume folder. */
  readonly name: string;
}

/** The persistent part of one archive volume. */
export class ArchiveVolume {
  constructor(readonly volId: string, readonly dir: string) {}

  get basePath(): string { return join(this.dir, 'base.img'); }
  get tmpDir(): string { return join(this.dir, 'tmp'); }
  get restoredDir(): string { return join(this.dir, 'restored'); }
  restoredPath(gid: bigint): string { return join(this.restoredDir, `${gid}.img`); }
  diffPath(name: string): string { return join(this.dir, name); }

  /** Whether the folder exists. */
  async exists(): Promise<boolean> {
    try { return (await stat(this.dir)).isDirectory(); } catch { return false; }
  }

  /** Create the folder in SyncReady. */
  async init(): Promise<void> {
    await makeDirDurable(this.dir);
    await mkdir(this.tmpDir, { recursive: true });
    await mkdir(this.restoredDir, { recursive: true });
    await this.setState('SyncReady');
  }

  /** Remove everything. */
  async clear(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  async state(): Promise<ArchiveState> {
    const s = await readJson<{ state?: unknown }>(join(this.dir, 'state'));
    if (!s) return (await this.exists()) ? 'SyncReady' : 'Clear';
    if (s.state !== 'SyncReady' && s.state !== 'Archived' && s.state !== 'Stopped') throw new StoreError(`${join(this.dir, 'state')}: unknown state ${String(s.state)}`);
    return s.state;
  }

  async setState(state: ArchiveState): Promise<void> {
    await writeJsonAtomic(join(this.dir, 'state'), { state });
  }

  async base(): Promise<MetaState | undefined> {
    const b = await readJson<MetaState>(join(this.dir, 'base'));
    if (!b) return undefined;
    try { return validateMetaState(b); } catch (e) { throw new StoreError(`${join(this.dir, 'base')}: ${(e as Error).message}`); }
  }

  async setBase(st: MetaState): Promise<void> {
    await writeJsonAtomic(join(this.dir, 'base'), validateMetaState(st));
  }

  async info(): Promise<{ uuid?: Buffer; archiveUuid?: Buffer; sizeLb?: bigint; baseDevice?: string }> {
    return (await readJson(join(this.dir, 'info'))) ?? {};
  }

  /** Where the base image lives: the configured block device, or `base.img` in the folder. */
  async baseImage(): Promise<{ path: string; isDevice: boolean }> {
    const dev = (await this.info()).baseDevice;
    return dev ? { path: dev, isDevice: true } : { path: this.basePath, isDevice: false };
  }

  async setInfo(info: { uuid?: Uint8Array; archiveUuid?: Uint8Array; sizeLb?: bigint; baseDevice?: string }): Promise<void> {
    await writeJsonAtomic(join(this.dir, 'info'), { ...(await this.info()), ...info });
  }

  /** Every wdiff in the folder (any order). */
  async diffs(): Promise<StoredDiff[]> {
    for (let attempt = 1; ; attempt++) {
      let names: string[];
      try { names = await readdir(this.dir); } catch { return []; }
      const out: StoredDiff[] = [];
      let vanished = false;
      for (const name of names) {
        if (!isDiffFileName(name)) continue;
        let size: bigint;
        try {
          size = BigInt((await stat(join(this.dir, name))).size);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
          vanished = true;
          continue;
        }
        out.push({ ...parseDiffFileName(name, size), name });
      }
      // A diff deleted since the listing was merged, applied or collected meanwhile. What replaced
      // it is in a fresh listing (a merge renames its result in before it deletes its inputs);
      // this one may lack it, and show a gap in the chain that is not there.
      if (!vanished || attempt >= LISTING_ATTEMPTS) return out;
    }
  }

  /** The chain of diffs applicable from the base, in order. */
  async chain(): Promise<StoredDiff[]> {
    const base = await this.base();
    if (!base) return [];
    return getApplicableDiffList(base.snapB, await this.diffs()) as StoredDiff[];
  }

  /** The latest snapshot (base + chain). */
  async latestSnap() {
    const base = await this.base();
    return base ? getLatestSnapshot(base, await this.diffs()) : undefined;
  }

  async restorable(all = false) {
    const base = await this.base();
    return base ? getRestorableList(base, await this.diffs(), { all }) : [];
  }

  /** Move a verified file into the chain under its diff's name. */
  async addDiff(tmpPath: string, d: MetaDiff): Promise<string> {
    const name = createDiffFileName(d);
    await rename(tmpPath, join(this.dir, name));
    await syncDir(this.dir);
    return name;
  }

  /** Delete diff files (durably). */
  async removeDiffs(names: readonly string[]): Promise<void> {
    for (const n of names) await rm(join(this.dir, n), { force: true });
    if (names.length) await syncDir(this.dir);
  }

  /** The gids restored (files in `restored/`). */
  async restored(): Promise<bigint[]> {
    let names: string[];
    try { names = await readdir(this.restoredDir); } catch { return []; }
    return names.filter((n) => /^\d{1,20}\.img$/.test(n)).map((n) => BigInt(n.slice(0, -4))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
