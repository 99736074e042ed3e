/**
 * Exit codes and error reporting shared by every command.
 *
 * @module
 */
import { WalbFormatError } from '@walbjs/log-format';
import type { CliIo } from './io.ts';
import { toJson } from './json.ts';

/**
 * Exit codes of `walb` and `wdevc`. Any other non-zero code also means failure.
 *
 * | code | meaning |
 * |---|---|
 * | 0 | success |
 * | 1 | the operation failed (corrupt input, I/O error, ...) |
 * | 2 | usage error: unknown command or option, bad or missing value |
 * | 130 | interrupted (SIGINT) |
 */
export const ExitCode = {
  /** Success. */
  OK: 0,
  /** The operation failed. */
  FAILED: 1,
  /** The command line was wrong. */
  USAGE: 2,
  /** Interrupted by SIGINT. */
  INTERRUPTED: 130,
} as const;

/**
 * A command-line mistake (bad value, missing or conflicting option): exits with
 * {@link ExitCode.USAGE}. Value parsers and handlers throw it.
 */
export class UsageError extends Error {
  /** The exit code, always 2. */
  readonly exitCode = ExitCode.USAGE;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The machine-readable error object printed on stderr under `--json`. */
export interface JsonError {
  /** Discriminator. */
  type: 'error';
  /**
   * `ERR_USAGE`, a `WalbFormatError` code such as `ERR_WALB_CHECKSUM`, a `WdiffFormatError` code such
   * as `ERR_WDIFF_CHECKSUM`, the code a daemon refused a request with (`ERR_WALB_STATE`), a Node code
   * such as `ENOENT`, or `ERR_FAILED`.
   */
  code: string;
  /** Human-readable message (the same text as without `--json`). */
  message: string;
  /** Byte offset in the input, for format errors that know it (a decimal string). */
  offset?: string;
  /** lsid concerned, for format errors that know it (a decimal string). */
  lsid?: string;
  /** File named by the error: the input of a format error, the file of a system error. */
  source?: string;
}

/**
 * Whether `e` is a `WdiffFormatError` of `@walbjs/diff` (its codes start with `ERR_WDIFF_`). Told by
 * shape rather than class so that commands which never touch a wdiff do not load that package.
 */
function isWdiffFormatError(e: unknown): e is Error & { code: string; offset?: number | bigint; source?: string } {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && typeof code === 'string' && code.startsWith('ERR_WDIFF_');
}

/**
 * The code a daemon answered with, when `e` is a `RemoteError` of `@walbjs/core` (told by shape,
 * as above): its own code is only `ERR_WALB_REMOTE`, which says where the error came from, not
 * what it is. Undefined when the daemon sent no code (core then records `ERR_UNKNOWN`).
 */
function remoteCodeOf(e: unknown): string | undefined {
  const x = e as { code?: unknown; remoteCode?: unknown } | null;
  if (!(e instanceof Error) || x?.code !== 'ERR_WALB_REMOTE' || typeof x.remoteCode !== 'string') return undefined;
  return x.remoteCode === '' || x.remoteCode === 'ERR_UNKNOWN' ? undefined : x.remoteCode;
}

/** The {@link JsonError} describing `e`. */
export function errorToJson(e: unknown): JsonError {
  if (e instanceof UsageError) return { type: 'error', code: 'ERR_USAGE', message: e.message };
  if (e instanceof WalbFormatError) {
    const out: JsonError = { type: 'error', code: e.code, message: e.message };
    if (e.offset !== undefined) out.offset = String(e.offset);
    if (e.lsid !== undefined) out.lsid = String(e.lsid);
    if (e.source !== undefined) out.source = e.source;
    return out;
  }
  if (isWdiffFormatError(e)) {
    const out: JsonError = { type: 'error', code: e.code, message: e.message };
    if (e.offset !== undefined) out.offset = String(e.offset);
    if (e.source !== undefined) out.source = e.source;
    return out;
  }
  const remote = remoteCodeOf(e);
  if (remote !== undefined) return { type: 'error', code: remote, message: (e as Error).message };
  if (e instanceof Error) {
    const { code, path } = e as NodeJS.ErrnoException;
    const out: JsonError = { type: 'error', code: typeof code === 'string' ? code : 'ERR_FAILED', message: e.message };
    // A system error names its file in `path`.
    if (typeof path === 'string') out.source = path;
    return out;
  }
  return { type: 'error', code: 'ERR_FAILED', message: String(e) };
}

/** The exit code for an error: its `exitCode` when it carries one, else {@link ExitCode.FAILED}. */
export function exitCodeOf(e: unknown): number {
  const c = (e as { exitCode?: unknown } | null)?.exitCode;
  return typeof c === 'number' && Number.isInteger(c) && c > 0 ? c : ExitCode.FAILED;
}

/**
 * Print an error on stderr: `<prog>: <message>`, or under `--json` one {@link JsonError} line.
 * A usage error gets a hint to `--help`. Returns the exit code to use.
 */
export function reportError(io: CliIo, prog: string, e: unknown, json: boolean): number {
  const code = exitCodeOf(e);
  if (json) {
    io.stderr.write(toJson(errorToJson(e)) + '\n');
  } else {
    const msg = e instanceof Error ? e.message : String(e);
    io.stderr.write(`${prog}: ${msg}\n`);
    if (e instanceof UsageError) io.stderr.write(`Try '${prog} --help' for usage.\n`);
  }
  return code;
}
