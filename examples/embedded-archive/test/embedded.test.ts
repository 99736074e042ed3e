// End-to-end tests of the embedded archive example: each case runs it as a real process (from
// source, through tsx, exactly as its `start` script does) and checks what it reports; the archive
// folder it leaves with --dir is then opened by another ArchiveDaemon, as a restart would.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ArchiveDaemon, silentLogger, type Restorable } from '@walbjs/core';

const here = dirname(fileURLToPath(import.meta.url));
const PKG = resolve(here, '..');
const MAIN = join(PKG, 'src/main.ts');
const TMP = mkdtempSync(join(tmpdir(), 'walbjs-embedded-archive-test-'));

test.after(() => {
  rmSync(TMP, { recursive: true, force: true });
});

interface Run { code: number | null; out: string; err: string }

/** Run the program as its `start` script does, from the example's folder. */
function example(...args: string[]): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', MAIN, ...args], {
      cwd: PKG,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, out, err }));
  });
}

/** The JSON summary (bigints are decimal strings). */
interface Json {
  dir: string;
  base: { sha256: string; bytesReceived: string };
  sizeBytes: number;
  diffs: { gid: string; line: string; name: string; records: number; wdiffBytes: number }[];
  refused: { code: string; reason: string };
  restorable: string[];
  restore: { gid: string; path: string; sha256: string; expectedSha256: string; identical: boolean };
  served: { address: string; restorable: string[]; virtFullScan: { gid: string; sha256: string; expectedSha256: string; identical: boolean } };
  daemonEvents: string[];
  verified: boolean;
}

function checkSummary(j: Json, diffs: number, gid: number): void {
  const gids = Array.from({ length: diffs + 1 }, (_, i) => String(i));
  assert.is(j.verified, true);
  assert.is(j.base.bytesReceived, String(j.sizeBytes));
  assert.is(j.diffs.length, diffs);
  j.diffs.forEach((d, i) => {
    assert.is(d.gid, String(i + 1));
    // The archive names a diff by its end time and gids, as walb-tools does.
    assert.match(d.name, new RegExp(`^\\d{14}----${i}-${i + 1}\\.wdiff$`));
    assert.ok(d.line.startsWith(`|${i}|-->|${i + 1}| --`), d.line);
  });
  assert.equal(j.refused, { ...j.refused, code: 'ERR_WALB_REFUSED', reason: 'too-old-diff' });
  assert.equal(j.restorable, gids);
  assert.equal(j.served.restorable, gids);
  assert.is(j.restore.gid, String(gid));
  assert.is(j.restore.identical, true);
  assert.is(j.restore.sha256, j.restore.expectedSha256);
  assert.is(j.served.virtFullScan.gid, String(diffs));
  assert.is(j.served.virtFullScan.identical, true);
  assert.is(j.served.virtFullScan.sha256, j.served.virtFullScan.expectedSha256);
  // Restoring the base gives the base; any later gid gives something else (the diffs changed it).
  if (gid === 0) assert.is(j.restore.sha256, j.base.sha256);
  else assert.is.not(j.restore.sha256, j.base.sha256);
  // The daemon's logs reached the embedding program's logger.
  assert.is(j.daemonEvents.filter((e) => e.startsWith('info wdiff-received ')).length, diffs);
  assert.ok(j.daemonEvents.some((e) => e.startsWith('info listening address=127.0.0.1:')), j.daemonEvents.join('\n'));
}

test('default run: narration, exit 0, verified', async () => {
  const r = await example();
  assert.is(r.code, 0, `exit ${r.code}; stderr: ${r.err}`);
  assert.is(r.err, '');
  assert.match(r.out, /^full sync +8388608 bytes uploaded/m);
  assert.match(r.out, /^diff 3 +logs \[\d+, \d+\) -> \d+ records, \d+ bytes; wdiff-transfer \|2\|-->\|3\| /m);
  assert.match(r.out, /^refused +diff \|0\|-->\|1\| again: ERR_WALB_REFUSED \(too-old-diff: /m);
  assert.match(r.out, /^restorable gids 0, 1, 2, 3$/m);
  assert.match(r.out, /^restore +gid 2 -> .*: identical to base \+ diffs 1\.\.2/m);
  assert.match(r.out, /^verified +the archive restored exactly/m);
});

test('--json: restoring the base (gid 0) and the newest gid', async () => {
  for (const [diffs, gid, seed] of [[4, 0, 5], [2, 2, 9]] as const) {
    const r = await example('--json', '--diffs', String(diffs), '--restore', String(gid), '--seed', String(seed));
    assert.is(r.code, 0, `exit ${r.code}; stderr: ${r.err}`);
    const j = JSON.parse(r.out) as Json;
    checkSummary(j, diffs, gid);
    assert.not.ok(existsSync(j.dir), 'the temporary folder is removed');
  }
});

test('--dir keeps the archive: another ArchiveDaemon opens it as it was left', async () => {
  const dir = join(TMP, 'work');
  const r = await example('--json', '--restore', '1', '--dir', dir);
  assert.is(r.code, 0, `exit ${r.code}; stderr: ${r.err}`);
  const j = JSON.parse(r.out) as Json;
  checkSummary(j, 3, 1);
  const vol = join(dir, 'archive', 'vol0');
  const files = readdirSync(vol);
  assert.ok(files.includes('base.img'), files.join(' '));
  for (const d of j.diffs) assert.ok(files.includes(d.name), d.name);
  assert.equal(readdirSync(join(vol, 'restored')), ['1.img']);

  const again = new ArchiveDaemon({ baseDir: join(dir, 'archive'), logger: silentLogger });
  await again.start();
  try {
    assert.is(await again.call('get', { target: 'state', volId: 'vol0' }), 'Archived');
    const rs = (await again.call('get', { target: 'restorable', volId: 'vol0' })) as Restorable[];
    assert.equal(rs.map((x) => String(x.gid)), j.restorable);
    assert.equal(await again.call('get', { target: 'restored', volId: 'vol0' }), [1n]);
  } finally {
    await again.stop('force');
  }

  const refused = await example('--dir', dir);
  assert.is(refused.code, 2);
  assert.match(refused.err, /is not empty/);
});

test('command line: usage errors exit 2, --help exits 0', async () => {
  const bad = await example('--diffs', '2', '--restore', '3');
  assert.is(bad.code, 2);
  assert.match(bad.err, /--restore 3 is beyond the 2 diffs/);
  const unknown = await example('--bogus');
  assert.is(unknown.code, 2);
  assert.match(unknown.err, /unknown argument --bogus/);
  const help = await example('--help');
  assert.is(help.code, 0);
  assert.match(help.out, /^usage: embedded-archive/);
});

test.run();
