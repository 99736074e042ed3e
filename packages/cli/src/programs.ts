/**
 * The `walb` and `wdevc` programs: their yargs applications and the functions that run them.
 * Kept apart from the package's entry so that the bins load what their commands need and no
 * more (the entry also exports `walbc` and the daemons, which load the whole backup system).
 *
 * @module
 */
import { runApp, type AppSpec } from './app.ts';
import { walbCommands } from './commands/walb.ts';
import { wdevcCommands } from './commands/wdevc/index.ts';
import type { CliIo } from './util/io.ts';

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
