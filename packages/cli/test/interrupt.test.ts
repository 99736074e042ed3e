// An interrupted command (SIGINT, SIGTERM) leaves no partial output behind and exits 128 + the
// signal number: both ways outputs are written (a path handed to the SDK, a sink the CLI writes).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '../../..');
const BIN = join(here, '../src/bin/walb.ts');
const TMP = mkdtempSync(join(tmpdir(), 'walbjs-interrupt-test-'));
process.on('exit', () => rmSync(TMP, { recursive: true, force: true }));
const tmp = (name: string) => join(TMP, name);

function walb(args: string[]): Promise<number | null> {
  return new Promise((res, rej) => {
    const c = spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', BIN, ...args], { cwd: ROOT, stdio: 'ignore' });
    c.on('error', rej);
    c.on('close', (code) => res(code));
  });
}

/** `out` and the temporary files a wdiff writer writes beside it until it renames one over it. */
function outputsOf(out: string): string[] {
  const name = basename(out);
  return readdirSync(dirname(out)).filter((f) => f === name || (f.startsWith(`.${name}.`) && f.endsWith('.part'))).map((f) => join(dirname(out), f));
}

/**
 * Run `walb args`, send `signal` once `out` (or its temporary file) has data, and return the exit
 * code and whether the signal went out before the command had finished on its own.
 */
function interrupt(args: string[], out: string, signal: NodeJS.Signals): Promise<{ code: number | null; sent: boolean }> {
  return new Promise((res, rej) => {
    const c = spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', BIN, ...args], { cwd: ROOT, stdio: 'ignore' });
    let sent = false;
    const poll = setInterval(() => {
      if (!sent && outputsOf(out).some((p) => existsSync(p) && statSync(p).size > 0)) { sent = true; c.kill(signal); }
    }, 5);
    c.on('error', rej);
    c.on('close', (code) => { clearInterval(poll); res({ code, sent }); });
  });
}

test('from-wlog interrupted while writing: exit 130, no output file', async () => {
  const wlog = tmp('big.wlog');
  assert.is(await walb(['wlog', 'gen', '-o', wlog, '--seed', '5', '--size', '64M', '--total', '24M', '--max-io-size', '256K']), 0);
  // xz at its highest level runs at a few MB/s here: the signal comes long before the end.
  const out = tmp('out.wdiff');
  const r = await interrupt(['wdiff', 'from-wlog', '--indexed', '--cmpr', 'lzma:9', wlog, '-o', out], out, 'SIGINT');
  assert.ok(r.sent, 'the conversion ended before it could be interrupted');
  assert.is(r.code, 130);
  assert.equal(outputsOf(out), [], 'the partial output is still there');
});

test('wlog gen (written through a sink) interrupted: exit 143 for SIGTERM, no output file', async () => {
  const out = tmp('gen.wlog');
  const r = await interrupt(['wlog', 'gen', '-o', out, '--seed', '6', '--size', '1G', '--total', '1G'], out, 'SIGTERM');
  assert.ok(r.sent, 'the generation ended before it could be interrupted');
  assert.is(r.code, 143);
  assert.equal(outputsOf(out), [], 'the partial output is still there');
});

test('an interrupt after the new output replaced the old one leaves the new one (it removed both)', async () => {
  const out = tmp('replaced.wdiff');
  const script = tmp('replace-then-interrupt.mts');
  // The SDK has renamed the complete file over `out` and is still syncing its folder when SIGINT
  // comes: writeOutput's cleanup saw a file written since the start and removed it.
  writeFileSync(out, 'OLD');
  writeFileSync(script, [
    `import { renameSync, writeFileSync } from 'node:fs';`,
    `import { writeOutput } from ${JSON.stringify(join(here, '../src/commands/wdiff/common.ts'))};`,
    `import { resolveIo } from ${JSON.stringify(join(here, '../src/util/io.ts'))};`,
    `await writeOutput(resolveIo(), ${JSON.stringify(out)}, { label: 'x', json: true }, async (sink) => {`,
    `  writeFileSync(sink + '.tmp', 'NEW'); renameSync(sink + '.tmp', sink);`,
    `  process.kill(process.pid, 'SIGINT');`,
    `  await new Promise((r) => setTimeout(r, 2000));`,
    `});`,
  ].join('\n'));
  const code = await new Promise<number | null>((res, rej) => {
    const c = spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', script], { cwd: ROOT, stdio: 'ignore' });
    c.on('error', rej);
    c.on('close', res);
  });
  assert.is(code, 130);
  assert.is(readFileSync(out, 'utf8'), 'NEW');
});

test.run();
