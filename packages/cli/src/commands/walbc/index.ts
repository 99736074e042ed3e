/**
 * `walbc`: the controller CLI, with the original's invocation
 * (`walbc -a HOST -p PORT <cmd> args...`), thin over `@walbjs/core`'s {@link Controller}.
 * Every query takes `--json` (64-bit values as decimal strings). The global options may stand
 * before or after the command word; after `--` every word is the command's.
 *
 * @module
 */
import { rmSync, statSync } from 'node:fs';
import yargs from 'yargs';
import { Controller, type ServerAddress } from '@walbjs/core';
import { ExitCode, UsageError, reportError } from '../../util/errors.ts';
import { armInterrupt } from '../../util/interrupt.ts';
import { writtenSince } from '../../util/output.ts';
import { resolveIo, writeTo, type CliIo } from '../../util/io.ts';
import { toJson } from '../../util/json.ts';
import { parseDecimal, parsePort } from '../../util/parse.ts';
import { startProgress } from '../../util/progress.ts';
import { VERSION } from '../../version.ts';
import { GET_TARGETS, WALBC_COMMANDS, argsUsage, bindArgs } from './table.ts';

const EPILOGUE = `Commands:\n${Object.entries(WALBC_COMMANDS).map(([k, c]) => `  ${(k + ' ' + c.usage).padEnd(58)} ${c.describe}`).join('\n')}
  ${'get TARGET [volId] [args...]'.padEnd(58)} Query one value; targets: ${Object.keys(GET_TARGETS).join(', ')}
  ${'virt-full-scan PATH volId gid'.padEnd(58)} Archive: copy the image at gid into PATH (a file or block device) here

Each command prints its arguments with --help (walbc status --help, walbc get --help, walbc get state --help).

The options may also follow the command (walbc status vol0 --json); after -- every word is an argument (walbc status -- --json).

Exit codes: 0 ok, 1 the daemon refused or failed (its error code is printed), 2 usage error.`;

/** Print a result as text: scalars as they are, lists a line each, objects as key: value. */
function toText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v !== 'object') return String(v);
  if (Array.isArray(v)) return v.map((x) => (x && typeof x === 'object' && 'line' in x ? String((x as { line: unknown }).line) : typeof x === 'object' ? toJson(x) : String(x))).join('\n');
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  return Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k}: ${x !== null && typeof x === 'object' ? toJson(x) : String(x)}`).join('\n');
}

const HELP_HEAD = 'walbc [-a HOST] -p PORT [--json] [--timeout SEC]';

/**
 * The help of one command (`walbc status --help`): its arguments and what it does. `get` lists its
 * targets, or, given one (`get state --help`), that target's arguments.
 *
 * @throws {@link UsageError} for a command or target walbc does not know.
 */
function commandHelp(cmd: string, first: string | undefined): string {
  if (cmd === 'get') {
    const spec = first === undefined || first.startsWith('-') ? undefined : GET_TARGETS[first];
    if (spec) return `${HELP_HEAD} get ${first} ${argsUsage(spec)}`.trimEnd() + '\n\nQuery one value of the daemon.';
    if (first !== undefined && !first.startsWith('-')) throw new UsageError(`get: unknown target ${JSON.stringify(first)}; known: ${Object.keys(GET_TARGETS).join(', ')}`);
    return `${HELP_HEAD} get TARGET [volId] [args...]\n\nQuery one value of the daemon. Targets:\n`
      + Object.entries(GET_TARGETS).map(([t, spec]) => `  ${t} ${argsUsage(spec)}`.trimEnd()).join('\n');
  }
  if (cmd === 'virt-full-scan') {
    return `${HELP_HEAD} virt-full-scan PATH volId gid\n\nArchive: copy the image at gid into PATH (a file or block device) here.`;
  }
  const c = WALBC_COMMANDS[cmd];
  if (!c) throw new UsageError(`unknown command ${JSON.stringify(cmd)} (see walbc --help)`);
  const wait = c.async ? ' [--wait]' : '';
  return `${HELP_HEAD}${wait} ${cmd} ${c.usage}`.trimEnd() + `\n\n${c.describe}.`
    + (c.async ? '\n\n--wait: answer when the action is done (otherwise when it has started).' : '');
}

/** The global options, as a word after the command word may spell them; `true`: it takes a value. */
const GLOBAL_OPTIONS: Record<string, boolean> = {
  '--json': false, '--no-json': false, '--wait': false, '--no-wait': false,
  '-a': true, '--addr': true, '-p': true, '--port': true, '--timeout': true, '--to': true,
};

/**
 * Split the words from the command word on (`tail`) into the global options among them and the
 * command's words. Options after the command are global options as before it, so that
 * `walbc -p P status --json` means what it says; after `--` every word is the command's (a volume
 * may be named `--json`). `literal` is true when a `--` before the command word already ended the
 * options.
 *
 * @throws {@link UsageError} for a global option whose value is missing.
 */
function hoistGlobals(tail: readonly string[], literal: boolean): { globals: string[]; words: string[]; optionWords: number } {
  if (literal) return { globals: [], words: [...tail], optionWords: 0 };
  const globals: string[] = [];
  const words: string[] = [];
  let i = 0;
  for (; i < tail.length && tail[i] !== '--'; i++) {
    const w = tail[i];
    const name = w.includes('=') ? w.slice(0, w.indexOf('=')) : w;
    const takesValue = GLOBAL_OPTIONS[name];
    if (i === 0 || takesValue === undefined) { words.push(w); continue; }
    globals.push(w);
    if (takesValue && name === w) {
      if (i + 1 >= tail.length || tail[i + 1] === '--') throw new UsageError(`${w} needs a value`);
      globals.push(tail[++i]);
    }
  }
  const optionWords = words.length;
  return { globals, words: [...words, ...tail.slice(i + 1)], optionWords };
}

/** Parse the global options of `argv` (stopping at the command word); `help` is set for `--help` or `--version`. */
async function parseGlobals(argv: readonly string[]): Promise<{ a: Record<string, unknown> & { _: Array<string | number> }; help: string }> {
  let help = '';
  const a = await yargs([...argv]).scriptName('walbc')
    .usage('walbc -a HOST -p PORT [--json] [--wait] <cmd> [args...]\n\nDrive walbjs storage, proxy and archive daemons.')
    // An option given twice (before and after the command word, say): the later one counts.
    .parserConfiguration({ 'halt-at-non-option': true, 'duplicate-arguments-array': false })
    .option('addr', { alias: 'a', type: 'string', default: '127.0.0.1', describe: 'Daemon host (or a unix socket path)' })
    .option('port', { alias: 'p', type: 'string', describe: 'Daemon port (1-65535)', coerce: (v: string) => parsePort(v, '--port (-p)') })
    .option('json', { type: 'boolean', default: false, describe: 'Machine-readable output' })
    .option('wait', { type: 'boolean', default: false, describe: 'For restore, apply, merge, full-bkp: answer when the action is done' })
    .option('timeout', { alias: 'to', type: 'string', default: '60', describe: 'Seconds to wait for an answer', coerce: (v: string) => parseDecimal(v, '--timeout', true) })
    .epilogue(EPILOGUE).wrap(null).help().alias('h', 'help').version(VERSION).strict(false).exitProcess(false)
    .fail((msg, err) => {
      // A value parser's UsageError reaches here wrapped in a YError: either way it is a usage error.
      if (err && !(err instanceof UsageError) && err.name !== 'YError') throw err;
      throw new UsageError(msg ?? err?.message ?? 'usage error');
    })
    .parseAsync([...argv], {}, (_e, _a, out) => { help = out; });
  return { a: a as Record<string, unknown> & { _: Array<string | number> }, help };
}

/** Run `walbc` with these arguments; returns the exit code. Global options may stand anywhere before a `--`. */
export async function runWalbc(argv: readonly string[], ioIn?: Partial<CliIo>): Promise<number> {
  const io = resolveIo(ioIn);
  const dash = argv.indexOf('--');
  // Known before parsing, so that a usage error is reported in the form asked for.
  let json = (dash < 0 ? argv : argv.slice(0, dash)).includes('--json');
  try {
    const first = await parseGlobals(argv);
    if (first.help) { await writeTo(io.stdout, first.help + '\n'); return ExitCode.OK; }
    let a = first.a;
    // Parsing stopped at the command word: the rest of argv, as given, is the command's and ours to sort.
    const start = argv.length - a._.length;
    const { globals, words, optionWords } = hoistGlobals(argv.slice(start), dash >= 0 && dash < start);
    if (globals.length) a = (await parseGlobals([...argv.slice(0, start), ...globals])).a;
    json = Boolean(a.json);
    const [cmd, ...rest] = words;
    if (!cmd) throw new UsageError('missing command (see walbc --help)');
    // A command's own --help (and not a word after --).
    if (rest.slice(0, Math.max(0, optionWords - 1)).some((w) => w === '--help' || w === '-h')) {
      await writeTo(io.stdout, commandHelp(cmd, rest[0]) + '\n');
      return ExitCode.OK;
    }
    const addr = String(a.addr);
    let server: ServerAddress;
    if (addr.includes('/')) server = { path: addr };
    else {
      if (a.port === undefined) throw new UsageError('give the daemon port with -p PORT');
      server = { host: addr, port: a.port as number };
    }
    const timeoutMs = (a.timeout as number) * 1000;
    const c = new Controller({ timeoutMs });
    let result: unknown;
    let text: ((r: unknown) => string) | undefined;
    if (cmd === 'get') {
      const [target, ...targs] = rest;
      if (!target) throw new UsageError('get: missing target');
      const spec = GET_TARGETS[target];
      if (!spec) throw new UsageError(`get: unknown target ${JSON.stringify(target)}; known: ${Object.keys(GET_TARGETS).join(', ')}`);
      result = await c.get(server, target, bindArgs(`get ${target}`, spec, targs));
    } else if (cmd === 'virt-full-scan') {
      const [path, volId, gid] = rest;
      const p = bindArgs(cmd, [['path', 'str'], ['volId', 'str'], ['gid', 'u64']], rest);
      const bar = await startProgress(io, { label: `virt-full-scan ${volId} gid ${gid}`, json });
      // Interrupted, no partial image stays (a regular file only: a device given as the output stays).
      const before = statSync(path, { throwIfNoEntry: false });
      const disarm = armInterrupt(() => { if (writtenSince(before, statSync(path, { throwIfNoEntry: false }))) rmSync(path, { force: true }); });
      try { result = { bytes: await c.virtFullScan(server, String(p.volId), p.gid as bigint, path, (n) => bar.update(n)) }; } finally { disarm(); bar.stop(); }
    } else {
      const spec = WALBC_COMMANDS[cmd];
      if (!spec) throw new UsageError(`unknown command ${JSON.stringify(cmd)} (see walbc --help)`);
      let p = bindArgs(cmd, spec.args, rest);
      if (spec.shape) p = spec.shape(p, rest);
      if (spec.async && a.wait) p.wait = true;
      text = spec.text;
      result = await c.request(server, cmd, p, { timeoutMs: spec.async && a.wait ? Math.max(timeoutMs, 24 * 3600_000) : timeoutMs });
    }
    const out = json ? toJson(result) : (text ?? toText)(result);
    if (out) await writeTo(io.stdout, out + '\n');
    return ExitCode.OK;
  } catch (e) {
    return reportError(io, 'walbc', e, json);
  }
}
