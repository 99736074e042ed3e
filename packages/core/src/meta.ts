/**
 * The gid snapshot algebra of the archive (walb-tools 1.0.19 `meta.hpp`): snapshots
 * ({@link MetaSnap}), diffs between them ({@link MetaDiff}), the state of a base image
 * ({@link MetaState}), and the rules deciding when a diff applies to a snapshot and when two diffs
 * merge.
 *
 * Notation, as in the original: a snapshot is `|B|` (clean) or `|B,E|` (dirty), a diff is
 * `snapB-->snapE`, a state is `<snap>` or `<snapB-->snapE>` (being applied). Gids are u64 and
 * held as bigints; timestamps are unix seconds.
 *
 * @module
 */
import { InvalidMetaError, MetaParseError, NotApplicableError, NotMergeableError } from './errors.ts';

/** Largest gid (u64). */
export const MAX_GID = (1n << 64n) - 1n;

/**
 * A snapshot `|gidB,gidE|` (gidB ≤ gidE). Clean when gidB = gidE: the image is consistent at
 * gidB. Dirty otherwise: the image mixes states gidB..gidE and becomes consistent only at a clean
 * snapshot ≥ gidE.
 */
export interface MetaSnap {
  /** First gid the image may reflect. */
  readonly gidB: bigint;
  /** Last gid the image may reflect. */
  readonly gidE: bigint;
}

/** A diff `snapB-->snapE`: the changes that take an image at snapB to snapE. */
export interface MetaDiff {
  /** The snapshot the diff starts from. */
  readonly snapB: MetaSnap;
  /** The snapshot after applying the diff. */
  readonly snapE: MetaSnap;
  /** False when snapB is an explicit snapshot that must survive: the diff must not be merged into its predecessor. */
  readonly isMergeable: boolean;
  /** A "compared" diff made by hash replication: applies only at exactly snapB.gidB, never merges. */
  readonly isCompDiff: boolean;
  /** Unix seconds of the snapshot after applying the diff. */
  readonly timestamp: number;
  /** Size of the wdiff file in bytes (0 when unknown). */
  readonly dataSize: bigint;
}

/**
 * The state of a base image: `<snapB>`, or `<snapB-->snapE>` while diffs are being applied to it
 * (persisted so that an interrupted apply can be finished).
 */
export interface MetaState {
  /** True while diffs taking the image from snapB to snapE are being applied. */
  readonly isApplying: boolean;
  /** The snapshot of the image (before the apply in progress, if any). */
  readonly snapB: MetaSnap;
  /** The snapshot the apply in progress leads to; equal to snapB when not applying. */
  readonly snapE: MetaSnap;
  /** Unix seconds of the image's snapshot (of snapE while applying). */
  readonly timestamp: number;
}

/** How a diff relates to a snapshot ({@link getRelation}). */
export type Relation = 'APPLICABLE' | 'TOO_NEW' | 'TOO_OLD' | 'NOT_APPLICABLE';

// ---------------------------------------------------------------------------------------------
// Validation helpers
// ---------------------------------------------------------------------------------------------

function checkGid(field: string, g: bigint): void {
  if (typeof g !== 'bigint') throw new InvalidMetaError(field, `${String(g)} is not a bigint`);
  if (g < 0n || g > MAX_GID) throw new InvalidMetaError(field, `${g} is outside 0..2^64-1`);
}

function checkTimestamp(field: string, t: number): void {
  if (!Number.isSafeInteger(t) || t < 0) throw new InvalidMetaError(field, `${String(t)} is not a non-negative integer of unix seconds`);
}

// ---------------------------------------------------------------------------------------------
// MetaSnap
// ---------------------------------------------------------------------------------------------

/**
 * Check a snapshot: both gids u64 bigints, gidB ≤ gidE.
 *
 * @param s - the snapshot
 * @returns `s`
 * @throws {@link InvalidMetaError} naming the broken rule
 */
export function validateMetaSnap(s: MetaSnap): MetaSnap {
  checkGid('gidB', s.gidB);
  checkGid('gidE', s.gidE);
  if (s.gidB > s.gidE) throw new InvalidMetaError('gidE', `snapshot |${s.gidB},${s.gidE}| has gidB > gidE`);
  return s;
}

/**
 * A validated, frozen snapshot `|gidB,gidE|`; `|gid|` when `gidE` is omitted.
 *
 * @param gidB - first gid
 * @param gidE - last gid, default `gidB`
 * @throws {@link InvalidMetaError} when the gids are not u64 or gidB > gidE
 *
 * @example
 * metaSnap(5n)      // |5|
 * metaSnap(0n, 9n)  // |0,9|, dirty
 */
export function metaSnap(gidB: bigint, gidE: bigint = gidB): MetaSnap {
  return Object.freeze(validateMetaSnap({ gidB, gidE }));
}

/** Whether `s` is clean (gidB = gidE). */
export function isCleanSnap(s: MetaSnap): boolean {
  return s.gidB === s.gidE;
}

/** Whether `s` is dirty (gidB ≠ gidE). */
export function isDirtySnap(s: MetaSnap): boolean {
  return s.gidB !== s.gidE;
}

/** Whether two snapshots are equal. */
export function snapEquals(a: MetaSnap, b: MetaSnap): boolean {
  return a.gidB === b.gidB && a.gidE === b.gidE;
}

/** Order snapshots by (gidB, gidE): negative, zero or positive as in `Array.prototype.sort`. */
export function compareSnap(a: MetaSnap, b: MetaSnap): number {
  if (a.gidB !== b.gidB) return a.gidB < b.gidB ? -1 : 1;
  if (a.gidE !== b.gidE) return a.gidE < b.gidE ? -1 : 1;
  return 0;
}

/**
 * Format as the original prints: `|gid|` (clean) or `|gidB,gidE|` (dirty).
 *
 * @param s - the snapshot
 */
export function formatMetaSnap(s: MetaSnap): string {
  return isCleanSnap(s) ? `|${s.gidB}|` : `|${s.gidB},${s.gidE}|`;
}

const GID_TEXT = '(0|[1-9][0-9]{0,19})';
const SNAP_TEXT = `\\|${GID_TEXT}(?:,${GID_TEXT})?\\|`;
const SNAP_RE = new RegExp(`^${SNAP_TEXT}$`);
const STATE_RE = new RegExp(`^<${SNAP_TEXT}(?:-->${SNAP_TEXT})?>$`);

function snapFrom(input: string, b: string, e: string | undefined): MetaSnap {
  try {
    return metaSnap(BigInt(b), e === undefined ? BigInt(b) : BigInt(e));
  } catch (err) {
    throw new MetaParseError(input, (err as Error).message);
  }
}

/**
 * Parse `|gid|` or `|gidB,gidE|` (decimal gids without leading zeros).
 *
 * @param text - the text
 * @throws {@link MetaParseError} for any other text, or gids out of range or order
 */
export function parseMetaSnap(text: string): MetaSnap {
  const m = typeof text === 'string' ? SNAP_RE.exec(text) : null;
  if (!m) throw new MetaParseError(String(text), 'expected |gid| or |gidB,gidE|');
  return snapFrom(text, m[1], m[2]);
}

// ---------------------------------------------------------------------------------------------
// MetaDiff
// ---------------------------------------------------------------------------------------------

/**
 * Check a diff: valid snapshots, the progress constraints `snapB.gidB < snapE.gidB` and
 * `snapB.gidE ≤ snapE.gidE`, boolean flags, a timestamp in unix seconds and a u64 data size.
 *
 * @param d - the diff
 * @returns `d`
 * @throws {@link InvalidMetaError} naming the broken rule
 */
export function validateMetaDiff(d: MetaDiff): MetaDiff {
  validateMetaSnap(d.snapB);
  validateMetaSnap(d.snapE);
  if (d.snapB.gidB >= d.snapE.gidB) {
    throw new InvalidMetaError('progress', `${formatMetaSnap(d.snapB)}-->${formatMetaSnap(d.snapE)} needs snapB.gidB < snapE.gidB`);
  }
  if (d.snapB.gidE > d.snapE.gidE) {
    throw new InvalidMetaError('progress', `${formatMetaSnap(d.snapB)}-->${formatMetaSnap(d.snapE)} needs snapB.gidE <= snapE.gidE`);
  }
  if (typeof d.isMergeable !== 'boolean') throw new InvalidMetaError('isMergeable', 'is not a boolean');
  if (typeof d.isCompDiff !== 'boolean') throw new InvalidMetaError('isCompDiff', 'is not a boolean');
  checkTimestamp('timestamp', d.timestamp);
  if (typeof d.dataSize !== 'bigint' || d.dataSize < 0n || d.dataSize > MAX_GID) {
    throw new InvalidMetaError('dataSize', `${String(d.dataSize)} is not a u64 bigint`);
  }
  return d;
}

/** The fields of {@link makeMetaDiff}; the flags, timestamp and size are optional. */
export interface MetaDiffInit {
  /** Start snapshot. */
  snapB: MetaSnap;
  /** End snapshot. */
  snapE: MetaSnap;
  /** Default false (the original's default: an explicit snapshot). */
  isMergeable?: boolean;
  /** Default false. */
  isCompDiff?: boolean;
  /** Default 0. */
  timestamp?: number;
  /** Default 0n. */
  dataSize?: bigint;
}

/**
 * A validated, frozen diff.
 *
 * @param init - the fields
 * @throws {@link InvalidMetaError} when a constraint is broken
 *
 * @example
 * makeMetaDiff({ snapB: metaSnap(3n), snapE: metaSnap(5n), isMergeable: true, timestamp: 1540989296 })
 */
export function makeMetaDiff(init: MetaDiffInit): MetaDiff {
  const d: MetaDiff = {
    snapB: Object.freeze({ gidB: init.snapB.gidB, gidE: init.snapB.gidE }),
    snapE: Object.freeze({ gidB: init.snapE.gidB, gidE: init.snapE.gidE }),
    isMergeable: init.isMergeable ?? false,
    isCompDiff: init.isCompDiff ?? false,
    timestamp: init.timestamp ?? 0,
    dataSize: init.dataSize ?? 0n,
  };
  return Object.freeze(validateMetaDiff(d));
}

/** Whether both ends of `d` are clean. */
export function isCleanDiff(d: MetaDiff): boolean {
  return isCleanSnap(d.snapB) && isCleanSnap(d.snapE);
}

/** Whether either end of `d` is dirty. */
export function isDirtyDiff(d: MetaDiff): boolean {
  return !isCleanDiff(d);
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Largest timestamp with a 4-digit year: 9999-12-31T23:59:59Z. */
export const MAX_TIMESTAMP = 253_402_300_799;

/**
 * Unix seconds as the UTC text `YYYY-MM-DDTHH:MM:SS`.
 *
 * @param ts - unix seconds, 0..253402300799 (year 9999)
 * @throws {@link InvalidMetaError} outside that range
 */
export function formatUtcTime(ts: number): string {
  checkTimestamp('timestamp', ts);
  if (ts > MAX_TIMESTAMP) throw new InvalidMetaError('timestamp', `${ts} is after 9999-12-31T23:59:59Z`);
  const d = new Date(ts * 1000);
  return `${String(d.getUTCFullYear()).padStart(4, '0')}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}T` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
}

/**
 * Format a diff as a line of `walbc get diff`: `|B|-->|E| MC YYYY-MM-DDTHH:MM:SS dataSize`, with
 * `M`/`-` for mergeable and `C`/`-` for compared, time in UTC.
 *
 * @param d - the diff
 * @throws {@link InvalidMetaError} when the timestamp is beyond year 9999
 *
 * @example
 * formatMetaDiff(makeMetaDiff({ snapB: metaSnap(3n), snapE: metaSnap(5n), isMergeable: true, timestamp: 1540989296, dataSize: 4096n }))
 * // '|3|-->|5| M- 2018-10-31T12:34:56 4096'
 */
export function formatMetaDiff(d: MetaDiff): string {
  return `${formatMetaSnap(d.snapB)}-->${formatMetaSnap(d.snapE)} ${d.isMergeable ? 'M' : '-'}${d.isCompDiff ? 'C' : '-'} ` +
    `${formatUtcTime(d.timestamp)} ${d.dataSize}`;
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

/**
 * How diff `d` relates to snapshot `s`:
 *
 * | condition | relation |
 * |---|---|
 * | d is a compDiff | `APPLICABLE` iff `d.snapB.gidB = s.gidB`, else `NOT_APPLICABLE` |
 * | `d.snapB.gidB > s.gidB` | `TOO_NEW` |
 * | `d.snapE.gidB ≤ s.gidB` | `TOO_OLD` |
 * | otherwise | `APPLICABLE` (a diff may overlap the snapshot: re-applying blocks is idempotent) |
 *
 * @param s - the snapshot of an image
 * @param d - the diff
 */
export function getRelation(s: MetaSnap, d: MetaDiff): Relation {
  if (d.isCompDiff) return d.snapB.gidB === s.gidB ? 'APPLICABLE' : 'NOT_APPLICABLE';
  if (d.snapB.gidB > s.gidB) return 'TOO_NEW';
  if (d.snapE.gidB <= s.gidB) return 'TOO_OLD';
  return 'APPLICABLE';
}

/** Whether `d` is applicable to `s` ({@link getRelation} is `APPLICABLE`). */
export function canApply(s: MetaSnap, d: MetaDiff): boolean {
  return getRelation(s, d) === 'APPLICABLE';
}

/**
 * The snapshot after applying `d` to an image at `s`: `|d.snapE.gidB, max(d.snapE.gidB, s.gidE)|`
 * when d is clean (the image stays dirty up to what it already mixed), else `d.snapE`.
 *
 * @param s - the snapshot
 * @param d - a diff applicable to it
 * @throws {@link NotApplicableError} when `d` is not applicable to `s`
 *
 * @example
 * const d = makeMetaDiff({ snapB: metaSnap(2n), snapE: metaSnap(5n) });
 * applyDiff(metaSnap(3n, 9n), d) // |5,9|
 */
export function applyDiff(s: MetaSnap, d: MetaDiff): MetaSnap {
  const r = getRelation(s, d);
  if (r !== 'APPLICABLE') throw new NotApplicableError(`${formatMetaSnap(d.snapB)}-->${formatMetaSnap(d.snapE)} to ${formatMetaSnap(s)}`, r);
  if (isCleanDiff(d)) {
    const g = d.snapE.gidB;
    return metaSnap(g, g > s.gidE ? g : s.gidE);
  }
  return metaSnap(d.snapE.gidB, d.snapE.gidE);
}

/**
 * Apply `ds` in order.
 *
 * @param s - the start snapshot
 * @param ds - diffs, each applicable to the result of the previous ones
 * @throws {@link NotApplicableError} at the first diff that does not apply
 */
export function applyDiffs(s: MetaSnap, ds: readonly MetaDiff[]): MetaSnap {
  let cur = s;
  for (const d of ds) cur = applyDiff(cur, d);
  return cur;
}

/**
 * Whether `d1` can be merged after `d0`: d1 is mergeable, neither is a compDiff, and
 * `d0.snapB.gidB ≤ d1.snapB.gidB ≤ d0.snapE.gidB < d1.snapE.gidB`.
 *
 * One more condition than the original: when d1 is dirty (the merge then ends at d1.snapE),
 * `d0.snapB.gidE ≤ d1.snapE.gidE`, so that the merged diff keeps the progress constraint. The
 * original merges such pairs into a diff it then refuses to load (its file name does not parse).
 *
 * @param d0 - the earlier diff
 * @param d1 - the later diff
 */
export function canMerge(d0: MetaDiff, d1: MetaDiff): boolean {
  return whyNotMergeable(d0, d1) === undefined;
}

function whyNotMergeable(d0: MetaDiff, d1: MetaDiff): string | undefined {
  if (!d1.isMergeable) return 'the later diff is not mergeable (its start is an explicit snapshot)';
  if (d0.isCompDiff || d1.isCompDiff) return 'a compared diff never merges';
  if (!(d0.snapB.gidB <= d1.snapB.gidB && d1.snapB.gidB <= d0.snapE.gidB && d0.snapE.gidB < d1.snapE.gidB)) {
    return 'gids do not satisfy d0.B.B <= d1.B.B <= d0.E.B < d1.E.B';
  }
  if (!isCleanDiff(d1) && d0.snapB.gidE > d1.snapE.gidE) return 'the merged diff would end before its start (d0.B.E > d1.E.E)';
  return undefined;
}

/**
 * Merge `d1` into `d0`: snapB = d0.snapB; snapE = `|d1.snapE.gidB, max(d1.snapE.gidB, d0.snapE.gidE)|`
 * when d1 is clean, else d1.snapE; timestamp of d1; mergeability of d0; not a compDiff. The data
 * size is unknown until the merged file is written, so it is 0.
 *
 * Applying the merged diff to a snapshot gives the same gidB as applying d0 then d1, and the same
 * snapshot when that snapshot or both diffs are clean; otherwise its gidE is never smaller (a merge
 * never makes an image look cleaner than it is).
 *
 * @param d0 - the earlier diff
 * @param d1 - the later diff
 * @throws {@link NotMergeableError} when {@link canMerge} is false
 */
export function mergeDiff(d0: MetaDiff, d1: MetaDiff): MetaDiff {
  const why = whyNotMergeable(d0, d1);
  if (why !== undefined) {
    throw new NotMergeableError(
      `${formatMetaSnap(d0.snapB)}-->${formatMetaSnap(d0.snapE)} and ${formatMetaSnap(d1.snapB)}-->${formatMetaSnap(d1.snapE)}: ${why}`,
    );
  }
  let snapE: MetaSnap;
  if (isCleanDiff(d1)) {
    const g = d1.snapE.gidB;
    snapE = metaSnap(g, g > d0.snapE.gidE ? g : d0.snapE.gidE);
  } else {
    snapE = d1.snapE;
  }
  return makeMetaDiff({ snapB: d0.snapB, snapE, isMergeable: d0.isMergeable, isCompDiff: false, timestamp: d1.timestamp, dataSize: 0n });
}

/**
 * Merge a list left to right (`((d0 + d1) + d2) + …`).
 *
 * @param ds - at least one diff
 * @throws {@link NotMergeableError} at the first diff that cannot be merged, or for an empty list
 */
export function mergeDiffs(ds: readonly MetaDiff[]): MetaDiff {
  if (ds.length === 0) throw new NotMergeableError('nothing to merge: empty list');
  let m = ds[0];
  for (let i = 1; i < ds.length; i++) m = mergeDiff(m, ds[i]);
  return m;
}

/**
 * Whether `dc` covers `d` (`dc.snapB.gidB ≤ d.snapB.gidB` and `d.snapE.gidB ≤ dc.snapE.gidB`), so
 * that `d` can be deleted once `dc` exists.
 *
 * @param dc - the covering diff
 * @param d - the covered diff
 */
export function contains(dc: MetaDiff, d: MetaDiff): boolean {
  return dc.snapB.gidB <= d.snapB.gidB && d.snapE.gidB <= dc.snapE.gidB;
}

/**
 * The candidate that progresses furthest: largest snapE.gidB, then largest snapB.gidB; the first
 * such in `ds` order on a full tie. This is how the original picks among several applicable or
 * mergeable diffs.
 *
 * @param ds - candidates, at least one
 * @throws {@link InvalidMetaError} for an empty list
 */
export function getMaxProgressDiff(ds: readonly MetaDiff[]): MetaDiff {
  if (ds.length === 0) throw new InvalidMetaError('candidates', 'empty list');
  let best = ds[0];
  for (let i = 1; i < ds.length; i++) {
    const d = ds[i];
    if (d.snapE.gidB > best.snapE.gidB || (d.snapE.gidB === best.snapE.gidB && d.snapB.gidB > best.snapB.gidB)) best = d;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// MetaState
// ---------------------------------------------------------------------------------------------

/**
 * Check a state: valid snapshots and timestamp; while applying, `snapB.gidB < snapE.gidB`; when not
 * applying, snapE equals snapB.
 *
 * @param st - the state
 * @returns `st`
 * @throws {@link InvalidMetaError} naming the broken rule
 */
export function validateMetaState(st: MetaState): MetaState {
  if (typeof st.isApplying !== 'boolean') throw new InvalidMetaError('isApplying', 'is not a boolean');
  validateMetaSnap(st.snapB);
  validateMetaSnap(st.snapE);
  checkTimestamp('timestamp', st.timestamp);
  if (st.isApplying && st.snapB.gidB >= st.snapE.gidB) {
    throw new InvalidMetaError('progress', `<${formatMetaSnap(st.snapB)}-->${formatMetaSnap(st.snapE)}> needs snapB.gidB < snapE.gidB`);
  }
  if (!st.isApplying && !snapEquals(st.snapB, st.snapE)) {
    throw new InvalidMetaError('snapE', 'must equal snapB when not applying');
  }
  return st;
}

/**
 * The state `<snap>` of an image not being applied to.
 *
 * @param snap - the image's snapshot
 * @param timestamp - unix seconds of that snapshot
 * @throws {@link InvalidMetaError} for an invalid snapshot or timestamp
 */
export function metaState(snap: MetaSnap, timestamp = 0): MetaState {
  const s = metaSnap(snap.gidB, snap.gidE);
  return Object.freeze(validateMetaState({ isApplying: false, snapB: s, snapE: s, timestamp }));
}

/**
 * The state `<snapB-->snapE>` of an image while diffs are applied to it.
 *
 * @param snapB - the snapshot before the apply
 * @param snapE - the snapshot the apply leads to
 * @param timestamp - unix seconds of snapE
 * @throws {@link InvalidMetaError} unless snapB.gidB < snapE.gidB
 */
export function applyingMetaState(snapB: MetaSnap, snapE: MetaSnap, timestamp = 0): MetaState {
  return Object.freeze(validateMetaState({
    isApplying: true, snapB: metaSnap(snapB.gidB, snapB.gidE), snapE: metaSnap(snapE.gidB, snapE.gidE), timestamp,
  }));
}

/**
 * Format as the original prints: `<|B|>` or `<|B|-->|E|>`.
 *
 * @param st - the state
 */
export function formatMetaState(st: MetaState): string {
  return st.isApplying ? `<${formatMetaSnap(st.snapB)}-->${formatMetaSnap(st.snapE)}>` : `<${formatMetaSnap(st.snapB)}>`;
}

/**
 * Parse `<|B|>`, `<|B,E|>` or `<|B|-->|E|>` (each snapshot clean or dirty), as accepted by
 * `dbg-set-base`. The text carries no timestamp; `timestamp` supplies it.
 *
 * @param text - the text
 * @param timestamp - unix seconds for the state, default 0
 * @throws {@link MetaParseError} for any other text or a state breaking its constraints
 */
export function parseMetaState(text: string, timestamp = 0): MetaState {
  const m = typeof text === 'string' ? STATE_RE.exec(text) : null;
  if (!m) throw new MetaParseError(String(text), 'expected <|B|> or <|B|-->|E|>');
  const b = snapFrom(text, m[1], m[2]);
  try {
    if (m[3] === undefined) return metaState(b, timestamp);
    return applyingMetaState(b, snapFrom(text, m[3], m[4]), timestamp);
  } catch (err) {
    if (err instanceof MetaParseError) throw err;
    throw new MetaParseError(text, (err as Error).message);
  }
}

/**
 * Whether `ds` can be applied in order to the image in state `st`: each applies to the previous
 * result, starting at st.snapB, and while applying, the result reaches at least st.snapE.gidB.
 *
 * @param st - the state
 * @param ds - the diffs
 */
export function canApplyToState(st: MetaState, ds: readonly MetaDiff[]): boolean {
  let s = st.snapB;
  for (const d of ds) {
    if (!canApply(s, d)) return false;
    s = applyDiff(s, d);
  }
  return !st.isApplying || s.gidB >= st.snapE.gidB;
}

function checkApplicableToState(st: MetaState, ds: readonly MetaDiff[]): MetaSnap {
  const s = applyDiffs(st.snapB, ds);
  if (st.isApplying && s.gidB < st.snapE.gidB) {
    throw new NotApplicableError(`diffs to ${formatMetaState(st)} end at ${formatMetaSnap(s)}, before the apply in progress`, 'TOO_OLD');
  }
  return s;
}

/**
 * The state to persist before applying `ds`: `<st.snapB-->result>` with the last diff's timestamp
 * (`st` itself when `ds` is empty).
 *
 * @param st - the current state
 * @param ds - the diffs about to be applied
 * @throws {@link NotApplicableError} unless {@link canApplyToState}
 */
export function beginApplying(st: MetaState, ds: readonly MetaDiff[]): MetaState {
  const s = checkApplicableToState(st, ds);
  if (ds.length === 0) return st;
  return applyingMetaState(st.snapB, s, ds[ds.length - 1].timestamp);
}

/**
 * The state to persist after applying `ds`: `<result>` with the last diff's timestamp (`st` itself
 * when `ds` is empty).
 *
 * @param st - the state before (or during) the apply
 * @param ds - the diffs applied
 * @throws {@link NotApplicableError} unless {@link canApplyToState}
 */
export function endApplying(st: MetaState, ds: readonly MetaDiff[]): MetaState {
  const s = checkApplicableToState(st, ds);
  if (ds.length === 0) return st;
  return metaState(s, ds[ds.length - 1].timestamp);
}
