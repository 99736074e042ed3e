// End-to-end tests of the custom pipeline: each case runs it as a real process (from source, through
// tsx, exactly as its `start` script does), with a real NBD client writing to the userspace walb
// device it hosts, and checks that the restore it verified is the device's image at that snapshot.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openWdiff } from '@walbjs/diff';
import { LogDevice, uuidToHex } from '@walbjs/log-format';

const here = dirname(fileURLToPath(import.meta.url));
const PKG = resolve(here, '..');
const MAIN = join(PKG, 'src/main.ts');
const TMP = mkdtempSync(join(tmpdir(), 'walbjs-pipeline-test-'));

test.after(() => {
  rmSync(TMP, { recursive: true, force: true });
});

interface Run { code: number | null; out: string; err: string }

/** Run the program as its `start` script does, from the example's folder. */
function pipeline(...args: string[]): Promise<Run> {
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
  ringBufferPb: string;
  base: { path: string; lsid: string; bytesWrittenDuringCopy: number; latestAfterCopy: string };
  diffs: { seq: number; folder: string; wdiff: string; beginLsid: string; endLsid: string; packs: number; records: number; wdiffBytes: number; deviceSha256: string }[];
  endLsid: string;
  ringWraps: number;
  restore: { snapshot: number; lsid: string; expectedSha256: string; checks: { method: string; sha256: string; firstDifference: number | null }[] };
  verified: boolean;
}

function checkSummary(j: Json, rounds: number, snapshot: number): void {
  assert.is(j.verified, true);
  assert.is(j.diffs.length, rounds);
  assert.is(j.restore.snapshot, snapshot);
  // The chain of logs is contiguous from the base's lsid: nothing lost, nothing twice.
  let lsid = BigInt(j.base.lsid);
  assert.ok(j.base.bytesWrittenDuringCopy > 0);
  assert.ok(BigInt(j.base.latestAfterCopy) >= lsid, 'the writer had begun when the copy ended');
  for (const d of j.diffs) {
    assert.is(BigInt(d.beginLsid), lsid, `diff ${d.seq} starts where the previous one ended`);
    assert.ok(BigInt(d.endLsid) > lsid, `diff ${d.seq} holds logs`);
    assert.ok(d.packs > 0 && d.records > 0 && d.wdiffBytes > 0, `diff ${d.seq}`);
    lsid = BigInt(d.endLsid);
  }
  assert.is(BigInt(j.endLsid), lsid);
  // Every snapshot is a different image, so matching the chosen one means something.
  assert.is(new Set(j.diffs.map((d) => d.deviceSha256)).size, rounds);
  assert.is(j.restore.lsid, j.diffs[snapshot - 1].endLsid);
  assert.is(j.restore.expectedSha256, j.diffs[snapshot - 1].deviceSha256);
  assert.equal(j.restore.checks.map((c) => c.method), ['virtual-full-image', 'apply-onto-copy', 'merged-diff']);
  for (const c of j.restore.checks) {
    assert.is(c.firstDifference, null, c.method);
    assert.is(c.sha256, j.restore.expectedSha256, c.method);
  }
}

test('default run: narration, exit 0, verified, the ring wrapped', async () => {
  const r = await pipeline();
  assert.is(r.code, 0, `exit ${r.code}; stderr: ${r.err}`);
  assert.is(r.err, '');
  assert.match(r.out, /^device +16 MiB data, 4 MiB log/m);
  assert.match(r.out, /^round 5 /m);
  assert.match(r.out, /it wrapped [1-9]\d* times?$/m);
  assert.match(r.out, /^verified +every restore equals the device/m);
});

test('--json --rounds 4 --restore 4: the summary holds together', async () => {
  const r = await pipeline('--json', '--rounds', '4', '--restore', '4', '--seed', '3');
  assert.is(r.code, 0, `exit ${r.code}; stderr: ${r.err}`);
  const j = JSON.parse(r.out) as Json;
  checkSummary(j, 4, 4);
  // The temporary work folder is gone.
  assert.not.ok(existsSync(j.dir));
});

test('--dir keeps the work: one folder per diff, the wdiffs carry the device uuid', async () => {
  const dir = join(TMP, 'work');
  const r = await pipeline('--json', '--rounds', '3', '--restore', '1', '--dir', dir);
  assert.is(r.code, 0, `exit ${r.code}; stderr: ${r.err}`);
  const j = JSON.parse(r.out) as Json;
  checkSummary(j, 3, 1);
  assert.equal(readdirSync(join(dir, 'diffs')), ['0001', '0002', '0003']);
  const ldev = await LogDevice.open(join(dir, 'ldev'));
  const uuid = uuidToHex(ldev.superSector.uuid);
  // Every extracted log was freed: the ring's oldest lsid is the end of the last diff.
  assert.is(ldev.superSector.oldestLsid, BigInt(j.endLsid));
  await ldev.close();
  for (const d of j.diffs) {
    assert.equal(readdirSync(d.folder).sort(), ['diff.wdiff', 'meta.json'], 'the wlog is not kept');
    const meta = JSON.parse(readFileSync(join(d.folder, 'meta.json'), 'utf8')) as { beginLsid: string; endLsid: string };
    assert.equal([meta.beginLsid, meta.endLsid], [d.beginLsid, d.endLsid]);
    const w = await openWdiff(d.wdiff);
    assert.is(uuidToHex(w.header.uuid), uuid, `diff ${d.seq}`);
    await w.close();
  }
  // A non-empty folder is refused.
  const again = await pipeline('--dir', dir);
  assert.is(again.code, 2);
  assert.match(again.err, /is not empty/);
});

test('command line: usage errors exit 2, --help exits 0', async () => {
  const bad = await pipeline('--rounds', '2', '--restore', '3');
  assert.is(bad.code, 2);
  assert.match(bad.err, /--restore 3 is beyond the 2 rounds/);
  const unknown = await pipeline('--bogus');
  assert.is(unknown.code, 2);
  assert.match(unknown.err, /unknown argument --bogus/);
  const zero = await pipeline('--rounds', '0');
  assert.is(zero.code, 2);
  const help = await pipeline('--help');
  assert.is(help.code, 0);
  assert.match(help.out, /^usage: custom-pipeline/);
});

test.run();
