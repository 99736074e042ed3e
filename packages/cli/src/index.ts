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
export { runWalb, runWdevc } from './programs.ts';
export { ExitCode, UsageError, errorToJson, type JsonError } from './util/errors.ts';
export type { CliIo, CliWritable } from './util/io.ts';
export { toJson } from './util/json.ts';
export { parseLsid, parseSigned64, parseSize, formatBytes } from './util/parse.ts';
export { VERSION } from './version.ts';
export { runWalbc } from './commands/walbc/index.ts';
export { runDaemon, type DaemonKind } from './commands/daemon/run-daemon.ts';
