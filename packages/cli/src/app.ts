/**
 * The yargs application shared by `walb` and `wdevc`: global `--json`, strict parsing, help and
 * version, and the mapping of outcomes to exit codes (0 ok, 1 failed, 2 usage).
 *
 * @module
 */
import yargs, { type Argv, type CommandModule } from 'yargs';
import { ExitCode, UsageError, reportError } from './util/errors.ts';
import { IO_KEY, resolveIo, writeTo, type CliIo } from './util/io.ts';
import { VERSION } from './version.ts';

/** Options every command has. */
export interface GlobalArgs {
  /** Machine-readable output. */
  json: boolean;
}

/** What makes one CLI program. */
export interface AppSpec {
  /** Program name, used in usage text and error messages. */
  name: string;
  /** One line describing the program. */
  describe: string;
  /** Its top-level commands. */
  commands: readonly CommandModule<any, any>[];
  /** Text after the command list in `--help`. */
  epilogue?: string;
}

/**
 * What a lone `-` (stdin or stdout) stands for while yargs parses: its parser takes a lone `-` for
 * a group of short options, which drops it from a variadic positional (`from-wlog -` saw no input
 * at all) and empties a single one. No file name holds a NUL byte, so this one cannot clash.
 */
const DASH = '\0-';

/** `argv` with each lone `-` as {@link DASH}. */
function protectDashes(argv: readonly string[]): string[] {
  const out: string[] = [];
  let rest = false;
  for (const a of argv) {
    out.push(!rest && a === '-' ? DASH : a);
    if (a === '--') rest = true;
  }
  return out;
}

/** Every {@link DASH} in the parsed arguments back to `-`, in place. */
function restoreDashes(args: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(args)) {
    if (v === DASH) args[k] = '-';
    else if (Array.isArray(v) && v.includes(DASH)) args[k] = v.map((x) => (x === DASH ? '-' : x));
  }
}

/** The options of the command being run, recorded by its builder. */
interface CommandOptions {
  /** Every name and alias, in the forms given and camel-cased. */
  known: Set<string>;
  /** The boolean options, with their aliases. */
  booleans: Set<string>;
}

const camel = (k: string) => k.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

/** The {@link CommandOptions} of a built command. */
function optionsOf(y: Argv<unknown>): CommandOptions {
  // getOptions is yargs's, left out of its type declarations.
  const o = (y as unknown as { getOptions(): { key: Record<string, unknown>; alias: Record<string, string[]>; boolean: string[] } }).getOptions();
  const withAliases = (names: Iterable<string>) => {
    const out = new Set<string>();
    for (const n of names) for (const a of [n, ...(o.alias[n] ?? [])]) out.add(a).add(camel(a));
    return out;
  };
  const known = withAliases(Object.keys(o.key));
  for (const k of ['help', 'h', 'version']) known.add(k);
  return { known, booleans: withAliases(o.boolean) };
}

/**
 * `c` with a builder that records in `seen` the options of the command that runs: the innermost
 * one, whose builder adds no subcommands. A group's subcommands are wrapped as it adds them.
 */
function watched(c: CommandModule<any, any>, seen: { options?: CommandOptions }): CommandModule<any, any> {
  const build = c.builder;
  return {
    ...c,
    builder: (y: Argv<any>) => {
      let nested = false;
      const add = y.command.bind(y) as (...a: unknown[]) => Argv<any>;
      const shadow = y as unknown as { command?: unknown };
      shadow.command = (m: unknown, ...rest: unknown[]) => {
        nested = true;
        return add(m !== null && typeof m === 'object' && 'command' in m ? watched(m as CommandModule<any, any>, seen) : m, ...rest);
      };
      let r: Argv<any>;
      try {
        r = typeof build === 'function' ? ((build(y) as Argv<any> | undefined) ?? y) : y.options(build ?? {});
      } finally {
        delete shadow.command;
      }
      if (!nested) seen.options = optionsOf(r);
      return r;
    },
  };
}

/** The `--name` and `-x` options in `argv` (before `--`), with the value given after `=` if any. */
function optionWords(argv: readonly string[]): Array<{ name: string; value?: string }> {
  const out: Array<{ name: string; value?: string }> = [];
  for (const a of argv) {
    if (a === '--') break;
    const m = /^--?([A-Za-z][^=]*)(?:=(.*))?$/s.exec(a);
    if (m) out.push(m[2] === undefined ? { name: m[1] } : { name: m[1], value: m[2] });
  }
  return out;
}

/** The options of `argv` that `opts` does not know (a `no-` prefix negates a boolean). */
function unknownOptions(argv: readonly string[], opts: CommandOptions): string[] {
  return optionWords(argv)
    .map((w) => w.name)
    .filter((n) => !opts.known.has(n) && !(n.startsWith('no-') && opts.booleans.has(n.slice(3))));
}

let prepare: ((command: readonly string[]) => Promise<void>) | undefined;
let prepared: Promise<void> | undefined;

/**
 * Have `fn` run once, before the first command of this process runs (after its arguments have
 * passed validation), with the command's words (`['wdiff', 'apply']`): never for `--help`,
 * `--version` or a usage error, which then load nothing they do not show. The bins set up the
 * native addon this way.
 */
export function useCommandPreparation(fn: ((command: readonly string[]) => Promise<void>) | undefined): void {
  prepare = fn;
  prepared = undefined;
}

/** Build the yargs instance for `spec` (not yet parsed). */
export function buildApp(spec: AppSpec, argv: readonly string[]): Argv<GlobalArgs> {
  const seen: { options?: CommandOptions } = {};
  let y = yargs(protectDashes(argv))
    .middleware((args) => restoreDashes(args as Record<string, unknown>), true)
    .middleware(() => {
      // yargs reads `--stat=maybe` as false: a value for a boolean must be true or false.
      if (!seen.options) return;
      for (const w of optionWords(argv)) {
        if (w.value !== undefined && seen.options.booleans.has(w.name) && w.value !== 'true' && w.value !== 'false') {
          throw new UsageError(`invalid --${w.name}=${w.value}: --${w.name} is a flag (give it alone, or =true / =false)`);
        }
      }
    })
    // yargs runs global middleware for a top-level --help or --version too.
    .middleware((a) => (prepare && !a.help && !a.version ? (prepared ??= prepare(a._.map(String))) : undefined))
    .scriptName(spec.name)
    .usage(`${spec.name} <command> [options]\n\n${spec.describe}`)
    .option('json', {
      type: 'boolean',
      default: false,
      global: true,
      describe: 'Machine-readable output: one JSON document on stdout, errors as JSON on stderr',
    });
  for (const c of spec.commands) y = y.command(watched(c, seen));
  y = y
    .demandCommand(1, 'Missing command.')
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .version(VERSION)
    .wrap(Math.min(100, y.terminalWidth()))
    .exitProcess(false)
    .fail((msg, err) => {
      // Called for command-line problems only (unknown command or option, missing or bad value);
      // errors of a running command reach `runApp` directly.
      if (err && !(err instanceof UsageError) && err.name !== 'YError') throw err;
      let text = msg ?? err?.message ?? 'usage error';
      // An unknown option takes the next word as its value (`show --bogus x.wlog`), so yargs finds a
      // positional missing before it gets to the unknown option: report the option, the cause.
      if (seen.options && /^(Not enough non-option arguments|Missing required argument)/.test(text)) {
        const unknown = unknownOptions(argv, seen.options);
        if (unknown.length > 0) text = `Unknown argument${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`;
      }
      // yargs' suggestion alone does not say what went wrong.
      if (/^Did you mean /.test(text)) text = `Unknown command. ${text}`;
      throw new UsageError(text.replaceAll(DASH, '-'));
    });
  if (spec.epilogue) y = y.epilogue(spec.epilogue);
  return y as Argv<GlobalArgs>;
}

/**
 * Parse `argv` and run the chosen command; return the exit code. Never exits the process.
 * Help and version text go to `io.stdout`; errors to `io.stderr` (`<name>: message`, or a JSON
 * error object under `--json`).
 */
export async function runApp(spec: AppSpec, argv: readonly string[], ioIn?: Partial<CliIo>): Promise<number> {
  const io = resolveIo(ioIn);
  const json = argv.includes('--json') && !argv.includes('--no-json');
  let text = '';
  try {
    await buildApp(spec, argv).parseAsync(protectDashes(argv), { [IO_KEY]: io }, (_err, _args, output) => {
      text = output;
    });
    if (text) await writeTo(io.stdout, text.endsWith('\n') ? text : text + '\n');
    return ExitCode.OK;
  } catch (e) {
    return reportError(io, spec.name, e, json);
  }
}
