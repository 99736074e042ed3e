/**
 * `@walbjs/cli`: the `walb` and `wdevc` command-line programs over the walbjs SDK, and the
 * functions that run them, so another program can embed the CLIs (or a test can drive them)
 * without spawning a process.
 *
 * - {@link runWalb}: `walb wlog show|verify|gen|cat|restore`,
 *   `walb wdiff show|from-wlog|merge|apply|virt-cat|from-image`, `walb ldev info`.
 * - {@link runWdevc}: `wdevc format-ldev` and the kernel-device commands (`create-wdev`, `get-oldest-lsid`, …).
 * - {@link ExitCode}: 0 ok, 1 failed, 2 usage error, 130 interrupted.
 * - Value parsers shared with the commands: {@link parseLsid}, {@link parseSize}.
 * - {@link toJson}: the JSON convention of `--json` output (64-bit values as decimal strings).
 *
 * @example
 * import { runWalb } from '@walbjs/cli';
 * const code = await runWalb(['wlog', 'verify', 'a.wlog', '--json']);
 *
 * @packageDocumentation
 */
import { runApp, type AppSpec } from './app.ts';
import { walbCommands } from './commands/walb.ts';
import { wdevcCommands } from './commands/wdevc/index.ts';
import type { CliIo } from './util/io.ts';

export { ExitCode, UsageError, errorToJson, type JsonError } from './util/errors.ts';
export type { CliIo, CliWritable } from './util/io.ts';
export { toJson } from './util/json.ts';
export { parseLsid, parseSigned64, parseSize, formatBytes } from './util/parse.ts';
export { VERSION } from './version.ts';
export { runWalbc } from './commands/walbc/index.ts';
export { runDaemon, type DaemonKind } from './commands/daemon/run-daemon.ts';

/** The `walb` program: wlog file and log-device tools. */
const WALB: AppSpec = {
  name: 'walb',
  describe: 'WalB log tools: read, check, generate, extract and restore wlogs; show, convert, merge and apply '
    + 'wdiffs; inspect log devices.',
  commands: walbCommands,
  epilogue: 'Exit codes: 0 ok, 1 operation failed, 2 usage error. --json output writes 64-bit values '
    + '(lsids, offsets) as decimal strings.',
};

/** The `wdevc` program: walb device control. */
const WDEVC: AppSpec = {
  name: 'wdevc',
  describe: 'WalB device control: format log devices, and drive kernel walb devices (ioctls of the walb module).',
  commands: wdevcCommands,
  epilogue: 'Exit codes: 0 ok, 1 operation failed, 2 usage error.',
};

/**
 * Run `walb` with `argv` (the arguments after the program name) and return its exit code:
 * 0 ok, 1 the operation failed, 2 usage error. It never calls `process.exit`.
 *
 * @param argv e.g. `['wlog', 'show', '--stat', 'a.wlog']`.
 * @param io streams to use instead of the process's (stdin for `-` inputs, stdout for results and
 *   help, stderr for errors and progress).
 *
 * @example
 * process.exitCode = await runWalb(process.argv.slice(2));
 */
export function runWalb(argv: readonly string[], io?: Partial<CliIo>): Promise<number> {
  return runApp(WALB, argv, io);
}

/**
 * Run `wdevc` with `argv` (the arguments after the program name) and return its exit code,
 * as {@link runWalb}.
 *
 * @example
 * const code = await runWdevc(['format-ldev', 'ldev.img', 'ddev.img', '-n', 'vol0']);
 */
export function runWdevc(argv: readonly string[], io?: Partial<CliIo>): Promise<number> {
  return runApp(WDEVC, argv, io);
}
