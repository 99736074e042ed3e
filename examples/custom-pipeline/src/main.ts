/**
 * custom-pipeline: continuous backup of a userspace walb device, composed by hand from
 * `@walbjs/native-walb`, `@walbjs/log-format` and `@walbjs/diff` (no daemons), ending with a
 * restore checked byte for byte against the device.
 *
 *   custom-pipeline [--json] [--rounds N] [--restore K] [--seed S] [--dir DIR]
 *
 * Exit codes: 0 verified; 3 a restore differs from the device; 2 a wrong command line or a missing
 * tool (qemu-io, nbdcopy); 1 anything unexpected.
 *
 * @module
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hasProgram } from './nbd.ts';
import { runPipeline, type PipelineSummary } from './pipeline.ts';

const USAGE = `usage: custom-pipeline [--json] [--rounds N] [--restore K] [--seed S] [--dir DIR]

Creates a userspace walb device, writes to it over NBD with qemu-io, copies its data device as a
base image, then each round extracts the new logs into a wdiff and frees the log ring; finally
restores snapshot K (base + diffs 1..K) and compares it with what the device held then.
  --json        print a JSON summary instead of the narration (bigints as decimal strings)
  --rounds N    rounds of writes, one wdiff each (default 5)
  --restore K   the snapshot to restore, 1..N (default: the middle one)
  --seed S      seed of the writes (default 1)
  --dir DIR     work in DIR (created, must be empty) and keep it; default: a temporary folder, removed`;

const EXIT_USAGE = 2;
const EXIT_MISMATCH = 3;

function fail(line: string, code: number): void {
  process.stderr.write(`custom-pipeline: ${line}\n`);
  process.exitCode = code;
}

function intArg(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined || !/^\d+$/.test(v) || Number(v) < min) {
    fail(`${name} needs an integer ≥ ${min}\n${USAGE}`, EXIT_USAGE);
    return undefined;
  }
  return Number(v);
}

/** The summary as JSON: bigints as decimal strings. */
function toJson(s: PipelineSummary): string {
  return JSON.stringify(s, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

async function main(argv: string[]): Promise<void> {
  let json = false;
  let rounds: number | undefined, restore: number | undefined, seed: number | undefined, dir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') json = true;
    else if (a === '-h' || a === '--help') { process.stdout.write(USAGE + '\n'); return; }
    else if (a === '--rounds') { if ((rounds = intArg(a, argv[++i], 1)) === undefined) return; }
    else if (a === '--restore') { if ((restore = intArg(a, argv[++i], 1)) === undefined) return; }
    else if (a === '--seed') { if ((seed = intArg(a, argv[++i], 0)) === undefined) return; }
    else if (a === '--dir') {
      dir = argv[++i];
      if (!dir) return fail(`--dir needs a folder\n${USAGE}`, EXIT_USAGE);
    } else return fail(`unknown argument ${a}\n${USAGE}`, EXIT_USAGE);
  }
  if (restore !== undefined && restore > (rounds ?? 5)) return fail(`--restore ${restore} is beyond the ${rounds ?? 5} rounds`, EXIT_USAGE);
  for (const tool of ['qemu-io', 'nbdcopy']) {
    if (!(await hasProgram(tool))) return fail(`${tool} is not on the PATH (qemu-utils and libnbd-bin on Debian)`, EXIT_USAGE);
  }
  if (dir !== undefined) {
    dir = resolve(dir);
    const present = await readdir(dir).catch(() => []);
    if (present.length) return fail(`${dir} is not empty`, EXIT_USAGE);
  }
  // A short path: the NBD unix socket lives in it, and socket paths are limited to 107 bytes.
  const work = dir ?? (await mkdtemp(join(tmpdir(), 'walb-pipeline-')));
  try {
    const s = await runPipeline({ dir: work, rounds, restore, seed, say: json ? undefined : print });
    if (json) print(toJson(s));
    if (!s.verified) process.exitCode = EXIT_MISMATCH;
  } finally {
    if (dir === undefined) await rm(work, { recursive: true, force: true });
  }
}

// `… | head` closes the pipe early: stop printing, but run to the end so the device, the daemon
// and the temporary folder are closed and removed properly.
let stdoutOpen = true;
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  stdoutOpen = false;
});
function print(text: string): void {
  if (stdoutOpen) process.stdout.write(text + '\n');
}

try {
  await main(process.argv.slice(2));
} catch (e) {
  fail(`unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, 1);
}
