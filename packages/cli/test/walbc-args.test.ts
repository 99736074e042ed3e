// walbc's global options (--json, --wait, -a, -p, --timeout) count wherever they stand, before or
// after the command word, against a real proxy daemon on loopback; after `--` every word is an
// argument, so a volume named like an option can still be named.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Controller, ProxyDaemon, silentLogger } from '@walbjs/core';
import { runWalbc } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'walbjs-walbc-args-'));
const WALBC = new URL('../src/bin/walbc.ts', import.meta.url).pathname;
let proxy: ProxyDaemon;
let port = '';

async function walbc(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough(), stderr = new PassThrough();
  const o: Buffer[] = [], e: Buffer[] = [];
  stdout.on('data', (b: Buffer) => o.push(b));
  stderr.on('data', (b: Buffer) => e.push(b));
  const code = await runWalbc(args, { stdout, stderr });
  return { code, out: Buffer.concat(o).toString(), err: Buffer.concat(e).toString() };
}

/** walbc as its own process, as a shell runs it. */
function walbcProcess(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', WALBC, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout.on('data', (b: Buffer) => { out += b; });
    c.stderr.on('data', (b: Buffer) => { err += b; });
    c.on('close', (code) => resolve({ code, out, err }));
  });
}

const S = suite('walbc arguments');
S.before(async () => {
  proxy = await new ProxyDaemon({ baseDir: join(dir, 'proxy'), logger: silentLogger }).start();
  port = proxy.address.slice(proxy.address.lastIndexOf(':') + 1);
  await new Controller().request({ host: '127.0.0.1', port: Number(port) }, 'archive-info', { op: 'add', volId: 'vol0', archId: 'a0', addr: '127.0.0.1:1' });
});
S.after(async () => {
  await proxy.stop('force');
  rmSync(dir, { recursive: true, force: true });
});

S('--json after the command word is the option, not a volume name', async () => {
  const before = await walbc('-p', port, '--json', 'status');
  assert.is(before.code, 0, before.err);
  const after = await walbc('-p', port, 'status', '--json');
  assert.is(after.code, 0, after.err);
  assert.equal(JSON.parse(after.out), JSON.parse(before.out));
  assert.equal((JSON.parse(after.out) as { volumes: unknown }).volumes, [{ volId: 'vol0', state: 'Stopped' }]);

  const state = await walbc('-p', port, 'get', 'state', 'vol0', '--json');
  assert.is(state.code, 0, state.err);
  assert.is(JSON.parse(state.out), 'Stopped');
  const vol = await walbc('-p', port, 'status', 'vol0', '--json');
  assert.is(vol.code, 0, vol.err);
  assert.is((JSON.parse(vol.out) as { volId: string }).volId, 'vol0');
});

S('-p, -a and --timeout after the command word too, in both spellings; the later of two counts', async () => {
  for (const args of [['status', '-p', port], ['status', `--port=${port}`], ['get', 'state', 'vol0', '-a', '127.0.0.1', '--port', port, '--timeout', '5'], ['--timeout=5', 'get', 'vol', `-p`, port, '--to', '5'], ['-p', '1', 'status', '-p', port]]) {
    const r = await walbc(...args);
    assert.is(r.code, 0, `${args.join(' ')}: ${r.err}`);
  }
  // A value that is not a port is still a usage error, wherever it stands.
  const bad = await walbc('status', '-p', 'abc');
  assert.is(bad.code, 2);
  assert.match(bad.err, /invalid --port \(-p\) "abc"/);
  const missing = await walbc('-p', port, 'status', '--timeout');
  assert.is(missing.code, 2, missing.err);
});

S('after --, every word is an argument: a volume may be named --json', async () => {
  const r = await walbc('-p', port, 'status', '--', '--json');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^volId: --json$/m);
  // The option before -- still counts.
  const j = await walbc('-p', port, '--json', 'status', '--', '--json');
  assert.is(j.code, 0, j.err);
  assert.is((JSON.parse(j.out) as { volId: string; state: string }).volId, '--json');
  const early = await walbc('-p', port, '--', 'status', '--json');
  assert.is(early.code, 0, early.err);
  assert.match(early.out, /^volId: --json$/m);
  // A command's own --help stays its help; after -- it is a word.
  const help = await walbc('-p', port, 'status', '--help');
  assert.match(help.out, /status \[volId\]/);
  const word = await walbc('-p', port, 'status', '--', '--help');
  assert.is(word.code, 0, word.err);
  assert.match(word.out, /^volId: --help$/m);
});

S('as a process: walbc -p PORT status --json', async () => {
  const r = await walbcProcess('-p', port, 'status', '--json');
  assert.is(r.code, 0, r.err);
  assert.equal((JSON.parse(r.out) as { volumes: unknown }).volumes, [{ volId: 'vol0', state: 'Stopped' }]);
});

S.run();
