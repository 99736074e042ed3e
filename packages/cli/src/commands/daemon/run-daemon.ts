/**
 * The daemons `walb-storage`, `walb-proxy` and `walb-archive`: each parses its options, starts
 * the role from `@walbjs/core`, prints one line saying where it listens (JSON with `--json`, so a
 * supervisor or test learns a port chosen by the system), and runs until SIGINT (graceful),
 * SIGTERM (force, as the original) or a `shutdown` command.
 *
 * @module
 */
import { createWriteStream, openSync, type WriteStream } from 'node:fs';
import type { Argv } from 'yargs';
import yargs from 'yargs';
import { ArchiveDaemon, Daemon, ProxyDaemon, StorageDaemon, jsonLogger, parseServerAddress, type DaemonOptions } from '@walbjs/core';
import { reportError, ExitCode, UsageError } from '../../util/errors.ts';
import { resolveIo, writeTo } from '../../util/io.ts';
import { parseDecimal, parseIntRange, parsePort, parseSize } from '../../util/parse.ts';
import { toJson } from '../../util/json.ts';
import { VERSION } from '../../version.ts';

/** Which daemon. */
export type DaemonKind = 'storage' | 'proxy' | 'archive';

function hostPort(text: string, what: string): { host: string; port: number } {
  const a = parseServerAddressSafe(text, what);
  if (!('host' in a)) throw new UsageError(`${what}: ${text} must be host:port`);
  return a;
}

function parseServerAddressSafe(text: string, what: string) {
  try { return parseServerAddress(text); } catch (e) { throw new UsageError(`${what}: ${(e as Error).message}`); }
}

/** A parser of a duration option in seconds (fractions allowed: `--delay 0.2`). */
const seconds = (what: string) => (v: string) => parseDecimal(v, what);

/**
 * Open the `--log` file for appending now, so that a path that cannot be written is reported as a
 * typed error naming the option and the path (a stream opened lazily dies later with an
 * unhandled error event).
 */
function openLog(path: string): WriteStream {
  let fd: number;
  try {
    fd = openSync(path, 'a');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw Object.assign(new Error(`cannot open the --log file ${path}: ${err.message}`), { code: err.code ?? 'ERR_FAILED', path });
  }
  return createWriteStream(path, { fd });
}

function common(y: Argv): Argv {
  return y
    .option('base-dir', { alias: 'b', type: 'string', demandOption: true, describe: 'Folder of the daemon\'s state' })
    .option('port', { alias: 'p', type: 'string', default: '0', describe: 'TCP port (0: any free port, printed at start)', coerce: (v: string) => parsePort(v, '--port (-p)', true) })
    .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to listen on (loopback by default)' })
    .option('unix', { type: 'string', describe: 'Listen on a unix socket instead of TCP' })
    .option('id', { type: 'string', describe: 'Node id shown in status and logs' })
    .option('log', { alias: 'l', type: 'string', describe: 'Write the structured log (JSON lines) to this file instead of stderr' })
    .option('log-level', { choices: ['debug', 'info', 'warn', 'error'] as const, default: 'info' as const })
    .option('json', { type: 'boolean', default: false, describe: 'Print the start line as JSON' });
}

/** Run one daemon with the process's arguments; resolves with the exit code when it stops. */
export async function runDaemon(kind: DaemonKind, argv: readonly string[]): Promise<number> {
  const io = resolveIo();
  const name = `walb-${kind}`;
  let y = common(yargs([...argv]).scriptName(name).usage(`${name} -b DIR [-p PORT] [options]\n\nThe walbjs ${kind} daemon.`));
  if (kind === 'storage') {
    y = y.option('archive', { type: 'string', describe: 'host:port of the archive that receives full backups' })
      .option('proxy', { type: 'string', describe: 'host:port[,host:port...] of the proxies, tried in order' })
      .option('max-wlog-send-mb', { alias: 'wl', type: 'string', default: '128', describe: 'Largest log transfer [MiB]', coerce: (v: string) => parseIntRange(v, '--max-wlog-send-mb (--wl)', 1) })
      .option('snapintvl', { type: 'string', default: '10', describe: 'Implicit snapshot interval [s]', coerce: seconds('--snapintvl') })
      .option('delay', { type: 'string', default: '1', describe: 'First retry delay [s]', coerce: seconds('--delay') })
      .option('maxdelay', { type: 'string', default: '300', describe: 'Longest retry delay [s]', coerce: seconds('--maxdelay') });
  } else if (kind === 'proxy') {
    y = y.option('max-wdiff-send-mb', { alias: 'wd', type: 'string', default: '128', describe: 'Largest merged diff sent at once [MiB]', coerce: (v: string) => parseIntRange(v, '--max-wdiff-send-mb (--wd)', 1) })
      .option('max-wdiff-send-nr', { alias: 'wn', type: 'string', default: '1000', describe: 'Most diffs merged into one send', coerce: (v: string) => parseIntRange(v, '--max-wdiff-send-nr (--wn)', 1) })
      .option('retry-timeout', { alias: 'rto', type: 'string', default: '1800', describe: 'Give up on a failing archive after [s]', coerce: seconds('--retry-timeout (--rto)') })
      .option('delay', { type: 'string', default: '1', describe: 'First retry delay [s]', coerce: seconds('--delay') })
      .option('maxdelay', { type: 'string', default: '300', describe: 'Longest retry delay [s]', coerce: seconds('--maxdelay') });
  } else {
    y = y.option('discard', { choices: ['ignore', 'zero', 'punch'] as const, default: 'zero' as const, describe: 'What apply does with DISCARD records' })
      .option('fsync-interval', { alias: 'fi', type: 'string', default: '1G', describe: 'fsync the base every this many bytes while applying (suffixes k, m, g)', coerce: (v: string) => parseSize(v, '--fsync-interval (--fi)') })
      .option('autoresize', { type: 'boolean', default: false, describe: 'Grow the base when a larger volume arrives' });
  }
  y = y.strict().help().alias('h', 'help').version(VERSION).exitProcess(false).fail((msg, err) => {
    // A value parser's UsageError reaches here wrapped in a YError: either way it is a usage error.
    if (err && !(err instanceof UsageError) && err.name !== 'YError') throw err;
    throw new UsageError(msg ?? err?.message ?? 'usage error');
  });
  let a: Record<string, unknown>;
  let helpText = '';
  try {
    a = await y.parseAsync([...argv], {}, (_e, _a, out) => { helpText = out; }) as Record<string, unknown>;
  } catch (e) {
    return reportError(io, name, e, argv.includes('--json'));
  }
  if (helpText) { await writeTo(io.stdout, helpText + '\n'); return ExitCode.OK; }
  let d: Daemon;
  try {
    const out = a.log !== undefined ? openLog(String(a.log)) : process.stderr;
    const base: DaemonOptions = {
      baseDir: String(a['base-dir']), host: String(a.host), port: Number(a.port), unix: a.unix as string | undefined,
      nodeId: a.id as string | undefined, logger: jsonLogger(name, out, a['log-level'] as 'info'),
    };
    if (kind === 'storage') {
      d = new StorageDaemon({
        ...base,
        archive: a.archive ? hostPort(String(a.archive), '--archive') : undefined,
        proxies: a.proxy ? String(a.proxy).split(',').map((s) => hostPort(s, '--proxy')) : [],
        maxWlogSendMb: Number(a['max-wlog-send-mb']), implicitSnapshotSec: Number(a.snapintvl),
        retryDelayMs: Number(a.delay) * 1000, maxRetryDelayMs: Number(a.maxdelay) * 1000,
      });
    } else if (kind === 'proxy') {
      d = new ProxyDaemon({
        ...base, maxWdiffSendMb: Number(a['max-wdiff-send-mb']), maxWdiffSendNr: Number(a['max-wdiff-send-nr']),
        retryTimeoutSec: Number(a['retry-timeout']), retryDelayMs: Number(a.delay) * 1000, maxRetryDelayMs: Number(a.maxdelay) * 1000,
      });
    } else {
      d = new ArchiveDaemon({ ...base, discard: a.discard as 'zero', fsyncIntervalBytes: Number(a['fsync-interval']), autoResize: Boolean(a.autoresize) });
    }
    await d.start();
  } catch (e) {
    return reportError(io, name, e, Boolean(a.json));
  }
  await writeTo(io.stdout, a.json ? toJson({ type: 'listening', daemon: name, address: d.address, pid: process.pid }) + '\n' : `${name} listening on ${d.address}\n`);
  const mode = await new Promise<'graceful' | 'force'>((resolve) => {
    const alive = setInterval(() => {}, 1 << 30);
    const done = (m: 'graceful' | 'force') => { clearInterval(alive); resolve(m); };
    process.once('SIGINT', () => done('graceful'));
    process.once('SIGTERM', () => done('force'));
    d.once('shutdown', done);
  });
  await d.stop(mode);
  return ExitCode.OK;
}
