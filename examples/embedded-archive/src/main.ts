/**
 * embedded-archive: the walb archive role inside another Node program, fed a full image and
 * wdiffs in-process, restoring a gid checked byte for byte, then serving peers on loopback.
 *
 *   embedded-archive [--json] [--diffs N] [--restore GID] [--seed S] [--dir DIR]
 *
 * Exit codes: 0 verified; 3 a restored image differs from what the diffs describe; 2 a wrong
 * command line; 1 anything unexpected.
 *
 * @module
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runEmbeddedArchive, type EmbeddedSummary } from './archive.ts';

const USAGE = `usage: embedded-archive [--json] [--diffs N] [--restore GID] [--seed S] [--dir DIR]

Runs an ArchiveDaemon in this process: full-sync of a generated image (gid 0), N wdiffs made from
generated logs (gid 1..N) sent with wdiff-transfer, get restorable, restore GID, and a check against
the base with the diffs applied; then the same daemon listens on loopback and a Controller reads it.
  --json          print a JSON summary instead of the narration (bigints as decimal strings)
  --diffs N       diffs to send (default 3)
  --restore GID   the gid to restore, 0..N (default: the middle one)
  --seed S        seed of the image and the logs (default 1)
  --dir DIR       work in DIR (created, must be empty) and keep it; default: a temporary folder, removed`;

const EXIT_USAGE = 2;
const EXIT_MISMATCH = 3;

function fail(line: string, code: number): void {
  process.stderr.write(`embedded-archive: ${line}\n`);
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
function toJson(s: EmbeddedSummary): string {
  return JSON.stringify(s, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

async function main(argv: string[]): Promise<void> {
  let json = false;
  let diffs: number | undefined, restore: number | undefined, seed: number | undefined, dir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') json = true;
    else if (a === '-h' || a === '--help') { process.stdout.write(USAGE + '\n'); return; }
    else if (a === '--diffs') { if ((diffs = intArg(a, argv[++i], 1)) === undefined) return; }
    else if (a === '--restore') { if ((restore = intArg(a, argv[++i], 0)) === undefined) return; }
    else if (a === '--seed') { if ((seed = intArg(a, argv[++i], 0)) === undefined) return; }
    else if (a === '--dir') {
      dir = argv[++i];
      if (!dir) return fail(`--dir needs a folder\n${USAGE}`, EXIT_USAGE);
    } else return fail(`unknown argument ${a}\n${USAGE}`, EXIT_USAGE);
  }
  if (restore !== undefined && restore > (diffs ?? 3)) return fail(`--restore ${restore} is beyond the ${diffs ?? 3} diffs`, EXIT_USAGE);
  if (dir !== undefined) {
    dir = resolve(dir);
    const present = await readdir(dir).catch(() => []);
    if (present.length) return fail(`${dir} is not empty`, EXIT_USAGE);
  }
  const work = dir ?? (await mkdtemp(join(tmpdir(), 'walb-embedded-archive-')));
  try {
    const s = await runEmbeddedArchive({ dir: work, diffs, restore, seed, say: json ? undefined : print });
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
