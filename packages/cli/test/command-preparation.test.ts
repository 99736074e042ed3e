// The bins set up the native addon before a command runs, through `useCommandPreparation`: never
// for --help, --version or a usage error (they would load the addon and the diff engine for
// nothing), once for a command, told the command's words (wlog and ldev commands leave the diff
// engine out).
import { PassThrough } from 'node:stream';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { useChecksumImplementation } from '@walbjs/log-format';
import { useCommandPreparation } from '../src/app.ts';
import { runWalb, runWdevc } from '../src/index.ts';

const VEC = resolve(fileURLToPath(import.meta.url), '../../../../../shared/vectors/walb-tools-1.0.19');

/** Run `walb` (or `wdevc`) in process with a fresh preparation; what it was called with, and the exit code. */
async function prepared(argv: string[], program = runWalb): Promise<{ calls: string[][]; code: number }> {
  const calls: string[][] = [];
  useCommandPreparation(async (command) => { calls.push([...command]); });
  try {
    const code = await program(argv, { stdout: new PassThrough(), stderr: new PassThrough() });
    return { calls, code };
  } finally {
    useCommandPreparation(undefined);
  }
}

test('help, version and usage errors prepare nothing', async () => {
  for (const argv of [['--help'], ['-h'], ['--version'], ['wdiff', '--help'], ['wdiff', 'apply', '--help'], [], ['wdiff'], ['wdiff', 'show', '--bogus', 'x'], ['no-such-command']]) {
    const r = await prepared(argv);
    assert.equal(r.calls, [], `walb ${argv.join(' ')}: prepared`);
    assert.ok(r.code === 0 || r.code === 2, `walb ${argv.join(' ')}: exit ${r.code}`);
  }
  assert.equal((await prepared(['--help'], runWdevc)).calls, []);
});

test('a command is prepared once, before it runs, told its words', async () => {
  const ok = await prepared(['wlog', 'show', '--stat', `${VEC}/w-pbs512-mixed.wlog`]);
  assert.is(ok.code, 0);
  assert.equal(ok.calls, [['wlog', 'show']]);
  // A command that fails once running was prepared all the same.
  const failed = await prepared(['wdiff', 'show', '/nonexistent/walbjs-test.wdiff']);
  assert.is(failed.code, 1);
  assert.equal(failed.calls, [['wdiff', 'show']]);
});

test('the command runs once its preparation has ended', async () => {
  // The preparation puts a counting checksum in place after a wait: the command's checks count
  // only if it waited for that.
  let sums = 0;
  const counting = (b: Uint8Array, salt: number) => {
    sums++;
    // The WalB sum, written out here: `checksum` itself would call back into this one.
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let s = salt | 0, i = 0;
    for (; i + 4 <= b.byteLength; i += 4) s = (s + dv.getInt32(i, true)) | 0;
    let tail = 0;
    for (let k = 0; i + k < b.byteLength; k++) tail |= b[i + k] << (8 * k);
    return (-((s + tail) | 0)) >>> 0;
  };
  useCommandPreparation(async () => {
    await new Promise((r) => setTimeout(r, 30));
    assert.ok(useChecksumImplementation(counting), 'the counting sum passed the probe');
  });
  try {
    assert.is(await runWalb(['wlog', 'verify', `${VEC}/w-pbs512-mixed.wlog`], { stdout: new PassThrough(), stderr: new PassThrough() }), 0);
  } finally {
    useCommandPreparation(undefined);
    useChecksumImplementation(undefined);
  }
  assert.ok(sums > 3, `checksums counted: ${sums}`);
});

test('a preparation that fails fails the command', async () => {
  useCommandPreparation(async () => { throw new Error('prepare failed'); });
  const stderr = new PassThrough();
  let err = '';
  stderr.on('data', (d: Buffer) => { err += d.toString(); });
  try {
    assert.is(await runWalb(['wlog', 'show', `${VEC}/w-pbs512-mixed.wlog`], { stdout: new PassThrough(), stderr }), 1);
  } finally {
    useCommandPreparation(undefined);
  }
  assert.match(err, /prepare failed/);
});

test.run();
