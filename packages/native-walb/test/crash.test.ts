// Crash safety of the userspace capture device: a serving process is killed with SIGKILL while an
// NBD client writes with FUA and FLUSH; after reopening (which redoes the log), every write whose
// durability was acknowledged is on the data device. Many cycles, random kill points.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatLdev } from '@walbjs/log-format';
import { CaptureDevice } from '../src/index.ts';

const C = suite('crash safety');
const dir = mkdtempSync(join(tmpdir(), 'walbjs-crash-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const WDEVC = join(REPO, 'packages/cli/src/bin/wdevc.ts');
const CYCLES = Number(process.env.WALB_CRASH_CYCLES ?? 6);
const KiB = 1024;

function startServer(l: string, d: string, sock: string): Promise<ReturnType<typeof spawn>> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', WDEVC, 'serve', l, d, '--unix', sock, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (x) => { err += x; });
    p.stdout!.once('data', () => res(p));
    p.once('exit', (code) => rej(new Error(`server exited (${code}): ${err}`)));
  });
}

/**
 * Run qemu-io with `cmds`: `started` resolves at its first acknowledged write, `done` with its
 * whole output when it ends (it fails when the server dies).
 */
function client(sock: string, cmds: string[]): { started: Promise<void>; done: Promise<string> } {
  const args = ['-f', 'raw'];
  for (const c of cmds) args.push('-c', c);
  args.push(`nbd+unix:///?socket=${sock}`);
  // Line-buffered, so each acknowledgement is seen when it happens.
  const p = spawn('stdbuf', ['-oL', 'qemu-io', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let first: () => void = () => {};
  const started = new Promise<void>((r) => { first = r; });
  p.stdout!.on('data', (x) => { out += x; if (out.includes('wrote ')) first(); });
  const done = new Promise<string>((res) => p.once('exit', () => { first(); res(out); }));
  return { started, done };
}

C('kill -9 during FUA and FLUSH writes: every acknowledged write survives reopen', async () => {
  const l = join(dir, 'ldev'), d = join(dir, 'ddev'), sock = join(dir, 'sock');
  writeFileSync(l, ''); truncateSync(l, 16 << 20);
  writeFileSync(d, ''); truncateSync(d, 8 << 20);
  await formatLdev(l, d);
  // Every cycle writes a new pattern byte at the same 64 places (64 KiB each, four rounds), so a
  // lost write shows.
  let survived = 0;
  let cutShort = 0;
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const server = await startServer(l, d, sock);
    const exited = new Promise((r) => server.once('exit', r));
    const pat = (cycle * 37) & 0xff || 1;
    const cmds: string[] = [];
    for (let i = 0; i < 64 * 4; i++) {
      const off = (i % 64) * 128 * KiB;
      cmds.push(i % 8 === 7 ? `write -P ${pat} ${off} 64k` : `write -f -P ${pat} ${off} 64k`);
      if (i % 8 === 7) cmds.push('flush');
    }
    const c = client(sock, cmds);
    // Kill in the middle of the load: after the first acknowledged write, at a random moment.
    await c.started;
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 60)));
    server.kill('SIGKILL');
    const out = await c.done;
    if ((out.match(/^wrote /gm) ?? []).length < 64 * 4) cutShort++;
    await exited;
    // Which writes were acknowledged as durable. qemu-io runs its commands in order, so the k-th
    // 'wrote' line is the k-th write: a FUA write is durable once acknowledged; a plain write once
    // the flush after it returned, which the next acknowledged write proves.
    const ackedWrites = (out.match(/^wrote 65536\/65536 bytes at offset \d+/gm) ?? []).length;
    const acked = new Set<number>();
    for (let k = 0; k < ackedWrites; k++) {
      const plain = k % 8 === 7;
      if (!plain || k + 1 < ackedWrites) acked.add((k % 64) * 128 * KiB);
    }
    const dev = await CaptureDevice.open(l, d);
    await dev.close();
    const data = readFileSync(d);
    for (const off of acked) {
      assert.ok(data.subarray(off, off + 64 * KiB).every((b) => b === pat), `cycle ${cycle}: write at ${off} (pattern ${pat}) lost`);
    }
    survived += acked.size;
  }
  assert.ok(survived > 0, 'some writes were acknowledged before the kills');
  assert.ok(cutShort > 0, 'the kills landed in the middle of the load');
});

C.run();
