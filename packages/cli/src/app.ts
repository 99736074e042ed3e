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

/** Build the yargs instance for `spec` (not yet parsed). */
export function buildApp(spec: AppSpec, argv: readonly string[]): Argv<GlobalArgs> {
  let y = yargs(protectDashes(argv))
    .middleware((args) => restoreDashes(args as Record<string, unknown>), true)
    .scriptName(spec.name)
    .usage(`${spec.name} <command> [options]\n\n${spec.describe}`)
    .option('json', {
      type: 'boolean',
      default: false,
      global: true,
      describe: 'Machine-readable output: one JSON document on stdout, errors as JSON on stderr',
    });
  for (const c of spec.commands) y = y.command(c);
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
      throw new UsageError((msg ?? err?.message ?? 'usage error').replaceAll(DASH, '-'));
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
