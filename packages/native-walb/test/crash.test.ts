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

/** Run qemu-io with `cmds`; resolve with its stdout when it ends (it fails when the server dies). */
function client(sock: string, cmds: string[]): Promise<string> {
  return new Promise((res) => {
    const args = ['-f', 'raw'];
    for (const c of cmds) args.push('-c', c);
    args.push(`nbd+unix:///?socket=${sock}`);
    const p = spawn('qemu-io', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (x) => { out += x; });
    p.once('exit', () => res(out));
  });
}

C('kill -9 during FUA and FLUSH writes: every acknowledged write survives reopen', async () => {
  const l = join(dir, 'ldev'), d = join(dir, 'ddev'), sock = join(dir, 'sock');
  writeFileSync(l, ''); truncateSync(l, 16 << 20);
  writeFileSync(d, ''); truncateSync(d, 8 << 20);
  await formatLdev(l, d);
  // Every cycle writes a new pattern byte at the same 64 places (64 KiB each), so a lost write shows.
  let survived = 0;
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const server = await startServer(l, d, sock);
    const exited = new Promise((r) => server.once('exit', r));
    const pat = (cycle * 37) & 0xff || 1;
    const cmds: string[] = [];
    for (let i = 0; i < 64; i++) {
      cmds.push(i % 8 === 7 ? `write -P ${pat} ${i * 128 * KiB} 64k` : `write -f -P ${pat} ${i * 128 * KiB} 64k`);
      if (i % 8 === 7) cmds.push('flush');
    }
    const done = client(sock, cmds);
    await new Promise((r) => setTimeout(r, 30 + Math.floor(Math.random() * 120)));
    server.kill('SIGKILL');
    const out = await done;
    await exited;
    // Which writes were acknowledged as durable: FUA ones as printed; plain ones only when a later flush was.
    const lines = out.split('\n');
    const acked = new Set<number>();
    let pendingPlain: number[] = [];
    for (const line of lines) {
      const m = line.match(/^wrote 65536\/65536 bytes at offset (\d+)/);
      if (m) {
        const off = Number(m[1]);
        if ((off / (128 * KiB)) % 8 === 7) pendingPlain.push(off); else acked.add(off);
      } else if (line.startsWith('flush')) { /* qemu-io prints nothing for flush */ }
    }
    // qemu-io prints nothing after a flush; a plain write is durable once any later write was acked.
    const lastFua = Math.max(-1, ...[...acked]);
    pendingPlain = pendingPlain.filter((o) => o < lastFua);
    for (const o of pendingPlain) acked.add(o);
    const dev = await CaptureDevice.open(l, d);
    await dev.close();
    const data = readFileSync(d);
    for (const off of acked) {
      assert.ok(data.subarray(off, off + 64 * KiB).every((b) => b === pat), `cycle ${cycle}: write at ${off} (pattern ${pat}) lost`);
    }
    survived += acked.size;
  }
  assert.ok(survived > 0, 'some writes were acknowledged before the kills');
});

C.run();
