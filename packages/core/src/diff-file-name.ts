/**
 * wdiff file names of the archive (walb-tools 1.0.19 `createDiffFileName` / `parseDiffFileName`):
 *
 * ```
 * clean: YYYYMMDDhhmmss-MC-<snapB.gidB>-<snapE.gidB>.wdiff
 * dirty: YYYYMMDDhhmmss-MC-<snapB.gidB>-<snapB.gidE>-<snapE.gidB>-<snapE.gidE>.wdiff
 * ```
 *
 * The timestamp is the diff's, in UTC; `M` is `M` (mergeable) or `-`, `C` is `C` (compared diff)
 * or `-`; gids are decimal. The dirty form is used when either end is dirty.
 *
 * Parsing is stricter than the original's, because a name is both a file path and a key: exactly
 * one spelling is accepted per diff (the one {@link createDiffFileName} writes), so no two files
 * can name the same diff and nothing but these characters reaches the file system.
 *
 * @module
 */
import { DiffFileNameError, InvalidMetaError } from './errors.ts';
import { MAX_GID, MAX_TIMESTAMP, isDirtyDiff, makeMetaDiff, metaSnap, validateMetaDiff, type MetaDiff } from './meta.ts';

/** The file extension of wdiff files. */
export const WDIFF_FILE_EXTENSION = '.wdiff';
/** The shortest valid name, `len("YYYYMMDDhhmmss-MC-0-1.wdiff")` = 27. */
export const DIFF_FILE_NAME_MIN_LENGTH = 'YYYYMMDDhhmmss-MC-0-1.wdiff'.length;
/** The longest valid name: 14 + 1 + 2 + 4 × (1 + 20) + 6 = 107. */
export const DIFF_FILE_NAME_MAX_LENGTH = 14 + 1 + 2 + 4 * 21 + WDIFF_FILE_EXTENSION.length;

function pad(n: number, w: number): string {
  return String(n).padStart(w, '0');
}

/**
 * Unix seconds as `YYYYMMDDhhmmss` in UTC, the timestamp of wdiff names.
 *
 * @param ts - unix seconds, 0..253402300799 (year 9999)
 * @throws {@link InvalidMetaError} outside that range
 *
 * @example
 * formatDiffTimestamp(1540989296) // '20181031123456'
 */
export function formatDiffTimestamp(ts: number): string {
  if (!Number.isSafeInteger(ts) || ts < 0 || ts > MAX_TIMESTAMP) {
    throw new InvalidMetaError('timestamp', `${String(ts)} is not unix seconds in 1970..9999`);
  }
  const d = new Date(ts * 1000);
  return pad(d.getUTCFullYear(), 4) + pad(d.getUTCMonth() + 1, 2) + pad(d.getUTCDate(), 2) +
    pad(d.getUTCHours(), 2) + pad(d.getUTCMinutes(), 2) + pad(d.getUTCSeconds(), 2);
}

/**
 * Parse `YYYYMMDDhhmmss` (UTC) to unix seconds. The date must exist (no February 30th, no hour
 * 24, no leap second) and be in 1970..9999.
 *
 * @param text - 14 digits
 * @returns unix seconds, or `undefined` when the text is not such a timestamp
 */
export function parseDiffTimestamp(text: string): number | undefined {
  const m = /^([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})$/.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number);
  if (y < 1970) return undefined;
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const t = new Date(ms);
  // Date.UTC rolls over out-of-range fields; a real timestamp survives the round trip.
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d ||
      t.getUTCHours() !== h || t.getUTCMinutes() !== mi || t.getUTCSeconds() !== s) return undefined;
  return ms / 1000;
}

/**
 * The file name of diff `d`.
 *
 * @param d - the diff
 * @throws {@link InvalidMetaError} when `d` breaks a constraint or its timestamp is beyond year 9999
 *
 * @example
 * createDiffFileName(makeMetaDiff({ snapB: metaSnap(3n), snapE: metaSnap(5n), isMergeable: true, timestamp: 1540989296 }))
 * // '20181031123456-M--3-5.wdiff'
 */
export function createDiffFileName(d: MetaDiff): string {
  validateMetaDiff(d);
  const gids = isDirtyDiff(d) ? [d.snapB.gidB, d.snapB.gidE, d.snapE.gidB, d.snapE.gidE] : [d.snapB.gidB, d.snapE.gidB];
  return `${formatDiffTimestamp(d.timestamp)}-${d.isMergeable ? 'M' : '-'}${d.isCompDiff ? 'C' : '-'}-${gids.join('-')}${WDIFF_FILE_EXTENSION}`;
}

const NAME_RE = /^([0-9]{14})-([M-])([C-])-((?:0|[1-9][0-9]{0,19})(?:-(?:0|[1-9][0-9]{0,19})){1,3})\.wdiff$/;

/**
 * Parse a wdiff file name (a base name, not a path) back into its diff.
 *
 * @param fileName - the name
 * @param dataSize - the file's size, when known (names do not carry it), default 0n
 * @returns a validated, frozen diff
 * @throws {@link InvalidMetaError} for a bad `dataSize`; {@link DiffFileNameError} saying what is wrong: too short or long, a bad timestamp,
 *   flag character, gid (non-decimal, leading zero, beyond 2^64−1), gid count (not 2 or 4),
 *   the dirty form for a clean diff, a broken progress constraint, or a wrong extension
 *
 * @example
 * parseDiffFileName('20181031123456-M--3-5.wdiff')
 * // { snapB: |3|, snapE: |5|, isMergeable: true, isCompDiff: false, timestamp: 1540989296, dataSize: 0n }
 */
export function parseDiffFileName(fileName: string, dataSize = 0n): MetaDiff {
  if (typeof dataSize !== 'bigint' || dataSize < 0n || dataSize > MAX_GID) {
    throw new InvalidMetaError('dataSize', `${String(dataSize)} is not a u64 bigint`);
  }
  if (typeof fileName !== 'string') throw new DiffFileNameError(String(fileName), 'is not a string');
  if (fileName.length < DIFF_FILE_NAME_MIN_LENGTH) {
    throw new DiffFileNameError(fileName, `is shorter than ${DIFF_FILE_NAME_MIN_LENGTH} characters`);
  }
  if (fileName.length > DIFF_FILE_NAME_MAX_LENGTH) {
    throw new DiffFileNameError(fileName, `is longer than ${DIFF_FILE_NAME_MAX_LENGTH} characters`);
  }
  if (!fileName.endsWith(WDIFF_FILE_EXTENSION)) throw new DiffFileNameError(fileName, `does not end with ${WDIFF_FILE_EXTENSION}`);
  const m = NAME_RE.exec(fileName);
  if (!m) {
    throw new DiffFileNameError(fileName, 'is not YYYYMMDDhhmmss-[M-][C-]-gid-gid[-gid-gid].wdiff (decimal gids, no leading zeros)');
  }
  const timestamp = parseDiffTimestamp(m[1]);
  if (timestamp === undefined) throw new DiffFileNameError(fileName, `timestamp ${m[1]} is not a UTC time in 1970..9999`);
  const gids = m[4].split('-').map((g) => BigInt(g));
  if (gids.some((g) => g > MAX_GID)) throw new DiffFileNameError(fileName, 'a gid exceeds 2^64-1');
  if (gids.length !== 2 && gids.length !== 4) throw new DiffFileNameError(fileName, `has ${gids.length} gids, must have 2 or 4`);
  try {
    const [snapB, snapE] = gids.length === 2
      ? [metaSnap(gids[0]), metaSnap(gids[1])]
      : [metaSnap(gids[0], gids[1]), metaSnap(gids[2], gids[3])];
    const d = makeMetaDiff({ snapB, snapE, isMergeable: m[2] === 'M', isCompDiff: m[3] === 'C', timestamp, dataSize });
    if (gids.length === 4 && !isDirtyDiff(d)) {
      throw new DiffFileNameError(fileName, 'uses the 4-gid dirty form for a clean diff');
    }
    return d;
  } catch (err) {
    if (err instanceof DiffFileNameError) throw err;
    throw new DiffFileNameError(fileName, (err as Error).message, err);
  }
}

/**
 * Whether `fileName` is a valid wdiff file name ({@link parseDiffFileName} accepts it).
 *
 * @param fileName - a base name
 */
export function isDiffFileName(fileName: string): boolean {
  try {
    parseDiffFileName(fileName);
    return true;
  } catch (err) {
    if (err instanceof DiffFileNameError) return false;
    throw err;
  }
}
