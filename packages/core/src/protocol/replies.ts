/**
 * What the daemons answer, checked where it is received. A reply is only known to be a JSON object
 * with a `result` when it arrives; this table says, command by command, what that result must be,
 * so that a peer that answers with a string where a gid belongs, leaves a field out, or sends an
 * object for a list fails its request with a {@link MalformedReplyError} naming the command and the
 * field, instead of handing the caller a wrong value that breaks something later.
 *
 * Results are checked for what callers rely on: the fields a command always answers, with their
 * types and ranges. Fields a command adds beyond those pass through unchecked (a newer daemon may
 * add some). u64 values come back as bigints (a safe integer is accepted and converted).
 *
 * @module
 */
import { MalformedReplyError } from '../errors.ts';
import { isValidName } from '../daemon/names.ts';
import { MAX_TIMESTAMP } from '../meta.ts';
import type { ArchiveInfo } from '../proxy/proxy-daemon.ts';

/** Checks a value found at `at` (a path such as `result[0].gid`); returns it typed, or throws. */
export type ReplyCheck<T> = (value: unknown, at: string) => T;

/** A check that failed: where, and what was wrong. {@link checkReply} turns it into the typed error. */
class Mismatch {
  constructor(readonly field: string, readonly detail: string) {}
}

const U64_MAX = (1n << 64n) - 1n;

/** A short description of a peer's value that cannot throw and never grows with the value. */
function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing (missing)';
  if (v === null) return 'null';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'bigint') return `the bigint ${v}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `the ${typeof v} ${String(v)}`;
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return `a ${typeof v === 'object' ? 'object' : typeof v}`;
}

function mismatch(at: string, expected: string, v: unknown): never {
  throw new Mismatch(at, `expected ${expected}, got ${describeValue(v)}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** A string of at most `max` characters. */
const str = (max = 4096): ReplyCheck<string> => (v, at) => (typeof v === 'string' && v.length <= max ? v : mismatch(at, `a string of at most ${max} characters`, v));

/** A volume or archive id, `[0-9A-Za-z-]{1,64}` (callers build paths and requests from it). */
const name: ReplyCheck<string> = (v, at) => (isValidName(v) ? v : mismatch(at, 'a name ([0-9A-Za-z-]{1,64})', v));

const bool: ReplyCheck<boolean> = (v, at) => (typeof v === 'boolean' ? v : mismatch(at, 'a boolean', v));

/** An integer number in 0..max. */
const int = (max = Number.MAX_SAFE_INTEGER): ReplyCheck<number> => (v, at) =>
  (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max ? v : mismatch(at, `an integer in 0..${max}`, v));

/** A u64 as a bigint; a safe integer number is taken as the same value. */
const u64: ReplyCheck<bigint> = (v, at) => {
  if (typeof v === 'bigint' && v >= 0n && v <= U64_MAX) return v;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  return mismatch(at, 'a u64 (a bigint in 0..2^64-1)', v);
};

const oneOf = <W extends string>(words: readonly W[]): ReplyCheck<W> => (v, at) =>
  ((words as readonly unknown[]).includes(v) ? (v as W) : mismatch(at, `one of ${words.join(', ')}`, v));

const exactly = <L extends string | number | boolean>(x: L): ReplyCheck<L> => (v, at) => (v === x ? x : mismatch(at, JSON.stringify(x), v));

/** A list of at most `max` items, each checked. */
const list = <T>(item: ReplyCheck<T>, max = 10_000_000): ReplyCheck<T[]> => (v, at) => {
  if (!Array.isArray(v) || v.length > max) return mismatch(at, `a list of at most ${max} items`, v);
  return v.map((x, i) => item(x, `${at}[${i}]`));
};

type Checked<S> = { [K in keyof S]: S[K] extends ReplyCheck<infer T> ? T : never };

/**
 * An object with the `required` fields and, when present, the `optional` ones, each checked;
 * any other field passes through as it came.
 */
function record<R extends Record<string, ReplyCheck<unknown>>, O extends Record<string, ReplyCheck<unknown>> = Record<never, never>>(
  required: R, optional?: O,
): ReplyCheck<Checked<R> & Partial<Checked<O>>> {
  return (v, at) => {
    if (!isPlainObject(v)) return mismatch(at, 'an object', v);
    const out: Record<string, unknown> = { ...v };
    for (const [k, check] of Object.entries(required)) out[k] = check(Object.hasOwn(v, k) ? v[k] : undefined, `${at}.${k}`);
    for (const [k, check] of Object.entries(optional ?? {})) if (Object.hasOwn(v, k) && v[k] !== undefined) out[k] = check(v[k], `${at}.${k}`);
    return out as Checked<R> & Partial<Checked<O>>;
  };
}

/** The three roles, as `version`, `status` and `get host-type` name them. */
export type HostType = 'storage' | 'proxy' | 'archive';

/** `version`. */
export interface VersionReply { version: string; hostType: HostType; nodeId: string; protocol: number }

/** `status` without a volume: the daemon and its volumes. */
export interface DaemonStatus { hostType: HostType; nodeId: string; volumes: Array<{ volId: string; state: string }> }

/** `status volId`: the volume and its state, then what its daemon adds (see the daemons' `status`). */
export interface VolumeStatus { volId: string; state: string; [field: string]: unknown }

/** A restorable snapshot as `get restorable` reports it. */
export interface Restorable { gid: bigint; timestamp: number; isExplicit: boolean; line: string }

/** `apply` with `wait`: how many diffs were applied; with any, the base now and the bytes written. */
export interface ApplyReply { applied: number; base?: string; bytesWritten?: number }

/** `merge` with `wait`: how many diffs were merged, and the merged diff's name. */
export interface MergeReply { merged: number; name: string }

const hostType = oneOf<HostType>(['storage', 'proxy', 'archive']);
const state = str(64);
const accepted = record({ accepted: exactly(true) });
const stateReply = record({ state });
const archiveInfo: ReplyCheck<ArchiveInfo> = record({ archId: name, host: str(300), port: int(65535), cmpr: str(40), delaySec: int() });

/**
 * The result each command answers with, by {@link replyKey}: `get TARGET` for a `get`,
 * `archive-info OP`, `status volId` for the status of one volume, `CMD wait` for an action run with
 * `wait: true` (without it, the action answers `{accepted: true}`). Commands not listed here
 * (`kick`, most `get` targets) answer differently on each daemon and are not checked.
 */
export const REPLY_CHECKS = {
  version: record({ version: str(64), hostType, nodeId: str(), protocol: int() }) as ReplyCheck<VersionReply>,
  status: record({ hostType, nodeId: str(), volumes: list(record({ volId: name, state })) }) as ReplyCheck<DaemonStatus>,
  'status volId': record({ volId: name, state }) as ReplyCheck<VolumeStatus>,
  shutdown: record({ accepted: bool }),
  'init-vol': stateReply,
  'clear-vol': stateReply,
  'reset-vol': stateReply,
  start: stateReply,
  stop: stateReply,
  resize: record({ sizeLb: u64 }),
  snapshot: record({ gid: u64, lsid: u64 }),
  'full-bkp': accepted,
  'full-bkp wait': record({ state, snap: str(100) }),
  restore: accepted,
  'restore wait': record({ restored: u64, path: str() }),
  'del-restored': record({ deleted: u64 }),
  apply: accepted,
  'apply wait': record({ applied: int() }, { base: str(200), bytesWritten: int() }) as ReplyCheck<ApplyReply>,
  merge: accepted,
  'merge wait': record({ merged: int(), name: str(200) }) as ReplyCheck<MergeReply>,
  'gc-diff': record({ removed: list(str(200)) }),
  bhash: record({ sha256: str(64), bytes: int() }),
  'virt-full-scan': record({ bytes: int() }),
  'archive-info list': list(archiveInfo),
  'archive-info get': archiveInfo,
  'get state': state,
  'get vol': list(name),
  'get host-type': hostType,
  'get pid': int(),
  'get restorable': list(record({ gid: u64, timestamp: int(MAX_TIMESTAMP), isExplicit: bool, line: str(200) }) as ReplyCheck<Restorable>),
  'get restored': list(u64),
  'get restored-path': str(),
} satisfies Record<string, ReplyCheck<unknown>>;

/** A key of {@link REPLY_CHECKS}. */
export type ReplyKey = keyof typeof REPLY_CHECKS;

/** The checked result of the command `K`. */
export type ReplyOf<K extends ReplyKey> = (typeof REPLY_CHECKS)[K] extends ReplyCheck<infer T> ? T : never;

/**
 * The {@link REPLY_CHECKS} key of a request, from its method and params.
 *
 * @example
 * replyKey('get', { target: 'restorable', volId: 'vol0' }) // 'get restorable'
 * replyKey('apply', { volId: 'vol0', gid: 5n, wait: true }) // 'apply wait'
 */
export function replyKey(method: string, params?: unknown): string {
  const p = isPlainObject(params) ? params : {};
  switch (method) {
    case 'get': return typeof p.target === 'string' ? `get ${p.target}` : method;
    case 'archive-info': return typeof p.op === 'string' ? `archive-info ${p.op}` : method;
    case 'status': return p.volId === undefined ? method : 'status volId';
    case 'full-bkp': case 'restore': case 'apply': case 'merge': return p.wait === true ? `${method} wait` : method;
    default: return method;
  }
}

/** The command a key stands for, as an error names it (`status`, `apply`, `get restorable`). */
function commandOf(key: string): string {
  return key.replace(/ (volId|wait)$/, '');
}

/**
 * Check the result of the command `key` and return it typed.
 *
 * @throws {@link MalformedReplyError} naming the command and the field
 * @example
 * const list = checkReply('get restorable', await conn.request('get', { target: 'restorable', volId }));
 */
export function checkReply<K extends ReplyKey>(key: K, result: unknown): ReplyOf<K> {
  const check = REPLY_CHECKS[key] as ReplyCheck<ReplyOf<K>>;
  try {
    return check(result, 'result');
  } catch (e) {
    if (e instanceof Mismatch) throw new MalformedReplyError(commandOf(key), e.field, e.detail);
    throw e;
  }
}

/**
 * Check the result of any request whose command {@link REPLY_CHECKS} knows (by
 * {@link replyKey}); any other result is returned as it came.
 *
 * @throws {@link MalformedReplyError} naming the command and the field
 */
export function checkReplyOf(method: string, params: unknown, result: unknown): unknown {
  const key = replyKey(method, params);
  return Object.hasOwn(REPLY_CHECKS, key) ? checkReply(key as ReplyKey, result) : result;
}
