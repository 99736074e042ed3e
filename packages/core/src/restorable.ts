/**
 * Walking the chain of diffs of an archive (walb-tools 1.0.19 `MetaDiffManager`): which diffs apply
 * from a snapshot, in which order, and which snapshots can be restored.
 *
 * @module
 */
import {
  applyDiff, canApply, getMaxProgressDiff, isCleanSnap, validateMetaDiff, validateMetaState,
  type MetaDiff, type MetaSnap, type MetaState,
} from './meta.ts';

/**
 * The applicable chain from `snap`: repeatedly pick, among the diffs applicable to the current
 * snapshot, the one that progresses furthest ({@link getMaxProgressDiff}; on a full tie the
 * earliest in `diffs`), apply it, and continue until no diff applies or `pred` refuses one.
 *
 * @param snap - the start snapshot
 * @param diffs - the available diffs, in any order
 * @param pred - called with each picked diff and the snapshot after it; returning false stops the
 *   walk before that diff
 * @returns the diffs in application order
 * @throws {@link InvalidMetaError} when a diff breaks its own constraints
 */
export function getApplicableDiffList(
  snap: MetaSnap,
  diffs: readonly MetaDiff[],
  pred: (d: MetaDiff, after: MetaSnap) => boolean = () => true,
): MetaDiff[] {
  diffs.forEach(validateMetaDiff);
  // Sweep by snapB.gidB: the current gid only grows, so a diff joins the active set once its start
  // is reached and leaves it for good once it can no longer apply.
  const order = diffs.map((d, i) => ({ d, i })).sort((a, b) =>
    a.d.snapB.gidB < b.d.snapB.gidB ? -1 : a.d.snapB.gidB > b.d.snapB.gidB ? 1 : a.i - b.i);
  let next = 0;
  let active: Array<{ d: MetaDiff; i: number }> = [];
  let s = snap;
  const out: MetaDiff[] = [];
  for (;;) {
    while (next < order.length && order[next].d.snapB.gidB <= s.gidB) active.push(order[next++]);
    const g = s.gidB;
    active = active.filter(({ d }) => (d.isCompDiff ? d.snapB.gidB >= g : d.snapE.gidB > g));
    const candidates = active.filter(({ d }) => canApply(s, d)).sort((a, b) => a.i - b.i).map(({ d }) => d);
    if (candidates.length === 0) break;
    const d = getMaxProgressDiff(candidates);
    const after = applyDiff(s, d);
    if (!pred(d, after)) break;
    out.push(d);
    s = after;
  }
  return out;
}

/** One restorable snapshot found by {@link getRestorableList}. */
export interface RestorableSnapshot {
  /** The clean snapshot's gid. */
  readonly gid: bigint;
  /** Unix seconds of the snapshot. */
  readonly timestamp: number;
  /**
   * Whether the snapshot is explicit: it is the last one, or the next diff is not mergeable (so
   * merging will keep it). Always false for the starting state, as the original reports it.
   */
  readonly isExplicit: boolean;
  /** True for the starting state (the base, or where the apply in progress ends). */
  readonly isBase: boolean;
}

/** Options of {@link getRestorableList}. */
export interface RestorableListOptions {
  /** List implicit snapshots too (`walbc get restorable VOL all`). Default false. */
  all?: boolean;
}

/**
 * The snapshots that can be restored from a base image and its diffs (reference §3.3): walk the
 * applicable chain ({@link getApplicableDiffList}) from the base; every clean state on the way is
 * restorable; a state is explicit when it is the last one or the next diff is not mergeable. Without
 * `all`, only explicit states are listed, but the starting state always is when clean (as in the
 * original, with `isExplicit` false).
 *
 * When the base is being applied (`<B-->E>`), gids before E are not restorable any more (the image
 * is partly past them): the walk starts where the chain first reaches E's gid. If the diffs do not
 * reach it, nothing is restorable. (The original lists B in that case; it cannot be restored.)
 *
 * @param base - the state of the base image
 * @param diffs - the archive's diffs, in any order
 * @param options - see {@link RestorableListOptions}
 * @returns restorable snapshots in increasing gid order
 * @throws {@link InvalidMetaError} when the state or a diff breaks its constraints
 *
 * @example
 * getRestorableList(metaState(metaSnap(0n)), diffs, { all: true })
 * // [{ gid: 0n, isBase: true, … }, { gid: 3n, isExplicit: false, … }, { gid: 5n, isExplicit: true, … }]
 */
export function getRestorableList(
  base: MetaState,
  diffs: readonly MetaDiff[],
  options: RestorableListOptions = {},
): RestorableSnapshot[] {
  validateMetaState(base);
  const all = options.all ?? false;
  const chain = getApplicableDiffList(base.snapB, diffs);
  let s = base.snapB;
  let ts = base.timestamp;
  let i = 0;
  if (base.isApplying) {
    while (i < chain.length && s.gidB < base.snapE.gidB) {
      s = applyDiff(s, chain[i]);
      ts = chain[i].timestamp;
      i++;
    }
    if (s.gidB < base.snapE.gidB) return [];
  }
  const out: RestorableSnapshot[] = [];
  if (isCleanSnap(s)) out.push(Object.freeze({ gid: s.gidB, timestamp: ts, isExplicit: false, isBase: true }));
  for (; i < chain.length; i++) {
    const d = chain[i];
    s = applyDiff(s, d);
    const isExplicit = i + 1 === chain.length || !chain[i + 1].isMergeable;
    if (isCleanSnap(s) && (all || isExplicit)) {
      out.push(Object.freeze({ gid: s.gidB, timestamp: d.timestamp, isExplicit, isBase: false }));
    }
  }
  return out;
}

/**
 * The latest snapshot reachable from a base: the base's snapshot after the whole applicable chain
 * (clean or dirty). For a state being applied, at least its snapE must be reached.
 *
 * @param base - the state of the base image
 * @param diffs - the archive's diffs
 * @returns the snapshot, or `undefined` when an apply in progress cannot be finished with `diffs`
 * @throws {@link InvalidMetaError} when the state or a diff breaks its constraints
 */
export function getLatestSnapshot(base: MetaState, diffs: readonly MetaDiff[]): MetaSnap | undefined {
  validateMetaState(base);
  let s = base.snapB;
  for (const d of getApplicableDiffList(base.snapB, diffs)) s = applyDiff(s, d);
  if (base.isApplying && s.gidB < base.snapE.gidB) return undefined;
  return s;
}
