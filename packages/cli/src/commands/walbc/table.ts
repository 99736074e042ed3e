/**
 * The `walbc` command table: the original's command names and positional arguments, mapped to the
 * named parameters of the walbjs protocol. One entry per command; `get` targets have their own
 * table of positional names.
 *
 * @module
 */
import { UsageError } from '../../util/errors.ts';
import { parseSize } from '../../util/parse.ts';

/** How a positional argument becomes a parameter. */
type Arg = [name: string, kind: 'str' | 'u64' | 'size-lb' | 'flag-all' | 'int', optional?: boolean, choices?: readonly string[]];

/** A walbc command. */
export interface WalbcCommand {
  /** Positional arguments, in order. */
  args: Arg[];
  /** Usage text of the arguments. */
  usage: string;
  /** What it does. */
  describe: string;
  /** Rewrite the params before sending (for commands whose words select a mode). */
  shape?: (p: Record<string, unknown>, rest: string[]) => Record<string, unknown>;
  /** An asynchronous action: `--wait` makes the daemon answer when it is done. */
  async?: boolean;
  /** The text output, when not the default rendering of the result. */
  text?: (result: unknown) => string;
}

const VOL: Arg = ['volId', 'str'];

/** Every walbc command but `get` and the local ones. */
export const WALBC_COMMANDS: Record<string, WalbcCommand> = {
  status: { args: [['volId', 'str', true]], usage: '[volId]', describe: 'Status of a volume, or of the daemon' },
  version: { args: [], usage: '', describe: 'Version of the daemon' },
  shutdown: { args: [['mode', 'str', true, ['graceful', 'force']]], usage: '[graceful|force]', describe: 'Stop the daemon' },
  'init-vol': {
    args: [VOL, ['wdevPath', 'str', true]], usage: 'volId [path]', describe: 'Create a volume (storage: the walb device, a userspace device folder or /dev/walb/NAME; archive: an optional block device for the base image)',
    // walbc does not know which daemon it talks to: the path goes under both names, each daemon reads its own.
    shape: (p) => (p.wdevPath === undefined ? p : { ...p, baseDevice: p.wdevPath }),
  },
  'clear-vol': { args: [VOL], usage: 'volId', describe: 'Remove a volume' },
  'reset-vol': { args: [VOL, ['gid', 'u64', true]], usage: 'volId [gid]', describe: 'Back to SyncReady (storage: clears the log)' },
  start: { args: [VOL, ['mode', 'str', true, ['target', 'standby']]], usage: 'volId [target|standby]', describe: 'Start a volume' },
  stop: { args: [VOL, ['mode', 'str', true, ['graceful', 'force', 'empty']]], usage: 'volId [graceful|force|empty]', describe: 'Stop a volume' },
  snapshot: { args: [VOL], usage: 'volId', describe: 'Storage: take an explicit snapshot; prints its gid', text: (r) => String((r as { gid: bigint }).gid) },
  'full-bkp': { args: [VOL, ['bulkSize', 'size-lb', true]], usage: 'volId [bulkSize]', describe: 'Storage: dirty full backup to the archive', async: true },
  kick: { args: [['volId', 'str', true], ['archId', 'str', true]], usage: '[volId [archId]]', describe: 'Run pending transfers now' },
  restore: { args: [VOL, ['gid', 'u64']], usage: 'volId gid', describe: 'Archive: restore a clean snapshot as an image', async: true },
  'del-restored': { args: [VOL, ['gid', 'u64']], usage: 'volId gid', describe: 'Archive: remove a restored image' },
  apply: { args: [VOL, ['gid', 'u64']], usage: 'volId gid', describe: 'Archive: apply the diffs up to gid to the base', async: true },
  merge: {
    args: [VOL, ['gidB', 'u64'], ['mode', 'str', false, ['size', 'gid']], ['bound', 'str']], usage: 'volId gidB (size MiB | gid gidE)', describe: 'Archive: merge mergeable diffs', async: true,
    shape: (p) => {
      const { mode, bound, ...rest } = p as { mode: string; bound: string };
      if (mode === 'size') return { ...rest, maxSizeMb: num(bound, 'size') };
      if (mode === 'gid') return { ...rest, gidE: u64(bound, 'gidE') };
      throw new UsageError('merge: the third argument is size or gid');
    },
  },
  'gc-diff': { args: [VOL], usage: 'volId', describe: 'Archive: delete diffs the base cannot reach' },
  resize: { args: [VOL, ['sizeLb', 'size-lb']], usage: 'volId size', describe: 'Grow a volume (size in bytes, K/M/G/T suffixes)' },
  bhash: { args: [VOL, ['gid', 'u64']], usage: 'volId gid', describe: 'Archive: sha256 of the image at gid' },
  'archive-info': {
    args: [['op', 'str', false, ['add', 'update', 'delete', 'get', 'list']], VOL, ['archId', 'str', true], ['addr', 'str', true], ['cmpr', 'str', true], ['delaySec', 'int', true]],
    usage: '(add|update volId archId addr:port [type:level] [delaySec] | delete|get volId archId | list volId)', describe: 'Proxy: the archives of a volume',
  },
};

/** `get` targets: their positional arguments after the target word. */
export const GET_TARGETS: Record<string, Arg[]> = {
  state: [VOL], 'host-type': [], vol: [], pid: [], 'latest-snap': [VOL],
  'is-overflow': [VOL], 'log-usage': [VOL], 'log-capacity': [VOL], uuid: [VOL], lsids: [VOL], progress: [VOL], export: [VOL], 'wdev-path': [VOL],
  'is-wdiff-send-error': [VOL, ['archId', 'str']], 'wdiff-send-error': [VOL, ['archId', 'str']], 'proxy-diff': [VOL, ['archId', 'str', true]], 'archive-info': [VOL],
  diff: [VOL, ['gidB', 'u64', true], ['gidE', 'u64', true]], 'applicable-diff': [VOL, ['maxGid', 'u64', true]],
  'num-diff': [VOL], 'total-diff-size': [VOL], restorable: [VOL, ['all', 'flag-all', true]], restored: [VOL], 'restored-path': [VOL, ['gid', 'u64']],
  base: [VOL], 'vol-size': [VOL], 'archive-uuid': [VOL], 'exists-base-image': [VOL],
  'num-action': [VOL, ['action', 'str']], 'all-actions': [VOL],
};

function u64(s: string, what: string): bigint {
  if (!/^\d{1,20}$/.test(s) || BigInt(s) >= 1n << 64n) throw new UsageError(`${what}: ${JSON.stringify(s)} is not an integer in 0..2^64-1`);
  return BigInt(s);
}

function num(s: string, what: string): number {
  if (!/^\d{1,15}$/.test(s)) throw new UsageError(`${what}: ${JSON.stringify(s)} is not a non-negative integer`);
  return Number(s);
}

/** Turn positional words into named parameters. */
export function bindArgs(cmd: string, spec: Arg[], words: string[]): Record<string, unknown> {
  const p: Record<string, unknown> = {};
  if (words.length > spec.length) throw new UsageError(`${cmd}: too many arguments (${words.slice(spec.length).join(' ')})`);
  spec.forEach(([name, kind, optional, choices], i) => {
    const w = words[i];
    if (w === undefined) {
      if (!optional) throw new UsageError(`${cmd}: missing argument ${name}`);
      return;
    }
    // Checked here so that a typo is a usage error before anything is sent to the daemon.
    if (choices && !choices.includes(w)) throw new UsageError(`${cmd}: ${name} must be ${choices.join(', ')}; got ${JSON.stringify(w)}`);
    if (kind === 'u64') p[name] = u64(w, name);
    else if (kind === 'int') p[name] = num(w, name);
    // Given in bytes, sent in LB: the message names what the user typed (a size), not the field.
    else if (kind === 'size-lb') p[name] = BigInt(parseSize(w, `${cmd} ${name.replace(/Lb$/, '')}`)) / 512n;
    else if (kind === 'flag-all') { if (w !== 'all') throw new UsageError(`${cmd}: expected "all", got ${JSON.stringify(w)}`); p[name] = true; }
    else p[name] = w;
  });
  return p;
}

/** The usage text of positional arguments: `volId [gid]`. */
export function argsUsage(spec: Arg[]): string {
  return spec.map(([name, , optional, choices]) => {
    const word = choices ? choices.join('|') : name;
    return optional ? `[${word}]` : word;
  }).join(' ');
}
