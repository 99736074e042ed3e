// `walb wlog restore` end to end, as a real process: a wlog on stdin is checked whole before the
// log device is touched (its temporary copy removed on every exit), and `-s` (--ddev-lb) leaves a
// log whose every logpack reads back.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LOG_RECORD_DISCARD, LOG_RECORD_PADDING, WlogReader, type WlogPack } from '@walbjs/log-format';
import { sparseFile } from './helpers.ts';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '../../..');
const BINS = { walb: join(here, '../src/bin/walb.ts'), wdevc: join(here, '../src/bin/wdevc.ts') };

const TMP = mkdtempSync(join(tmpdir(), 'walbjs-restore-test-'));
const tmp = (name: string) => join(TMP, name);
test.after(() => rmSync(TMP, { recursive: true, force: true }));

interface Run { code: number | null; out: string; err: string }

function start(bin: keyof typeof BINS, args: string[]): ChildProcess {
  return spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', BINS[bin], ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Run a bin from source; `input` is fed to its stdin. */
function run(bin: keyof typeof BINS, args: string[], input?: Buffer): Promise<Run> {
  return new Promise((res, rej) => {
    const c = start(bin, args);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout!.on('data', (d: Buffer) => out.push(d));
    c.stderr!.on('data', (d: Buffer) => err.push(d));
    c.stdin!.on('error', () => { /* it may exit before reading all of its input */ });
    c.stdin!.end(input);
    c.on('error', rej);
    c.on('close', (code) => res({ code, out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString() }));
  });
}
const walb = (args: string[], input?: Buffer) => run('walb', args, input);

function ok(r: Run, what: string): void {
  assert.is(r.code, 0, `${what} exited ${r.code}: ${r.err}`);
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A new log device of `bytes` with 512-byte blocks, for a data device of 64 MiB. */
async function newLdev(name: string, bytes = 4 << 20): Promise<string> {
  const ldev = sparseFile(tmp(`${name}-ldev.img`), bytes);
  const ddev = sparseFile(tmp(`${name}-ddev.img`), 64 << 20);
  ok(await run('wdevc', ['format-ldev', '--pbs', '512', ldev, ddev]), 'format-ldev');
  return ldev;
}

/** A new empty folder for the copies of stdin. */
function spoolDir(name: string): string {
  const d = tmp(`${name}-spool`);
  mkdirSync(d);
  return d;
}

async function gen(name: string, ...args: string[]): Promise<string> {
  const p = tmp(`${name}.wlog`);
  ok(await walb(['wlog', 'gen', '-o', p, ...args]), 'gen');
  return p;
}

test('a corrupt wlog on stdin is refused with the log device byte-identical, and no copy left', async () => {
  const src = await gen('corrupt', '--seed', '12', '-s', '16M', '-z', '1M');
  const b = readFileSync(src);
  // The data of one of the last packs: the packs before it are valid.
  b[b.length - 2048] ^= 0xff;
  const ldev = await newLdev('corrupt');
  const spool = spoolDir('corrupt');
  const before = sha256(ldev);
  const r = await walb(['wlog', 'restore', ldev, '-', '--tmp-dir', spool], b);
  assert.is(r.code, 1, r.err);
  assert.match(r.err, /checksum/);
  assert.ok(!r.err.includes(spool), `the error names the temporary copy: ${r.err}`);
  assert.is(sha256(ldev), before, 'the log device changed');
  assert.equal(readdirSync(spool), [], 'the copy of stdin is left behind');
  // So is one cut short, and one too large for the ring.
  const cut = await walb(['wlog', 'restore', ldev, '-', '--tmp-dir', spool], readFileSync(src).subarray(0, b.length - 3000));
  assert.is(cut.code, 1, cut.err);
  const big = await gen('big', '--seed', '13', '-s', '16M', '-z', '6M');
  const large = await walb(['wlog', 'restore', ldev, '-', '--tmp-dir', spool], readFileSync(big));
  assert.is(large.code, 1, large.err);
  assert.match(large.err, /do not fit a ring/);
  assert.is(sha256(ldev), before, 'the log device changed');
  assert.equal(readdirSync(spool), [], 'a copy of stdin is left behind');
});

test('a valid wlog on stdin restores exactly as the same file does', async () => {
  const src = await gen('valid', '--seed', '14', '-s', '16M', '-z', '1M');
  const [a, b] = await Promise.all([newLdev('valid-a'), newLdev('valid-b')]);
  const spool = spoolDir('valid');
  // Across the ring end (4 MiB of 512-byte blocks: a ring of 8182), with its padding pack.
  const args = ['-d', '7800', '--verify', '--json'];
  const fromFile = await walb(['wlog', 'restore', a, src, ...args]);
  ok(fromFile, 'restore from the file');
  const fromStdin = await walb(['wlog', 'restore', b, '-', '--tmp-dir', spool, ...args], readFileSync(src));
  ok(fromStdin, 'restore from stdin');
  assert.is(JSON.parse(fromStdin.out).paddingPacks, 1);
  assert.is(fromStdin.out, fromFile.out);
  // Formatted apart, the devices had a uuid and a salt each: the restore sets both from the wlog.
  assert.is(sha256(b), sha256(a), 'the two restores differ');
  assert.equal(readdirSync(spool), [], 'the copy of stdin is left behind');
});

test('interrupted while it takes in stdin: exit 130, the copy removed, the log device unchanged', async () => {
  const src = readFileSync(await gen('intr', '--seed', '15', '-s', '16M', '-z', '1M'));
  const ldev = await newLdev('intr');
  const spool = spoolDir('intr');
  const before = sha256(ldev);
  const c = start('walb', ['wlog', 'restore', ldev, '-', '--tmp-dir', spool]);
  const closed = new Promise<number | null>((res) => c.on('close', res));
  try {
    c.stdin!.on('error', () => {});
    // Half the wlog, and stdin left open: the command waits for the rest.
    c.stdin!.write(src.subarray(0, src.length >> 1));
    const copied = () => under(spool).some((f) => f.endsWith('.wlog'));
    for (let i = 0; i < 400 && !copied(); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(copied(), 'no copy of stdin was made');
    c.kill('SIGINT');
    assert.is(await closed, 130);
  } finally {
    // A failed check leaves it waiting for the rest of stdin.
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await closed;
    }
  }
  assert.equal(readdirSync(spool), [], 'the copy of stdin is left behind');
  assert.is(sha256(ldev), before, 'the log device changed');
});

/** Everything under `dir`, at any depth. */
function under(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String);
}

async function packsOf(path: string): Promise<WlogPack[]> {
  const r = await WlogReader.open(path);
  const out: WlogPack[] = [];
  for await (const p of r) out.push(p);
  return out;
}

/** The normal IOs of `packs` that end within `ddevLb` LB: address, size, checksum and data. */
function iosWithin(packs: WlogPack[], ddevLb: bigint): string[] {
  const out: string[] = [];
  for (const p of packs) {
    let i = 0;
    for (const r of p.header.records) {
      if (r.flags & LOG_RECORD_DISCARD) continue;
      const io = p.ios[i++];
      if (r.flags & LOG_RECORD_PADDING || r.offset + BigInt(r.ioSize) > ddevLb) continue;
      out.push(`${r.offset}+${r.ioSize}:${r.checksum}:${createHash('sha256').update(io.subarray(0, r.ioSize * 512)).digest('hex')}`);
    }
  }
  return out;
}

test('--ddev-lb: every logpack of the log reads back (one padding record each), the IOs within intact', async () => {
  // IOs over 64 MiB, clipped to the first 16: most packs have several IOs beyond.
  const src = await gen('clip', '--seed', '16', '-s', '64M', '-z', '2M', '--max-io-size', '16K');
  const ldev = await newLdev('clip', 8 << 20);
  const ddevLb = (16n << 20n) / 512n;
  const r = await walb(['wlog', 'restore', ldev, src, '-s', String(ddevLb), '-d', '15000', '--json']);
  ok(r, 'restore');
  const res = JSON.parse(r.out);
  const out = tmp('clip-out.wlog');
  const c = await walb(['wlog', 'cat', ldev, '-o', out, '--json']);
  ok(c, 'cat');
  const cat = JSON.parse(c.out);
  // Extraction goes on to the block after the last pack, invalidated by the restore.
  assert.is(cat.stoppedBy, 'invalid-pack');
  assert.is(cat.endLsid, res.endLsid, `extraction stopped early: ${cat.invalid}`);
  const [s, g] = await Promise.all([packsOf(src), packsOf(out)]);
  assert.is(g.length, s.length + res.paddingPacks);
  for (const p of g) assert.ok(p.header.records.filter((x) => x.flags & LOG_RECORD_PADDING).length <= 1);
  const within = iosWithin(s, ddevLb);
  assert.ok(within.length > 20 && within.length < iosWithin(s, 1n << 40n).length / 2, 'the test needs IOs on both sides of the device end');
  assert.equal(iosWithin(g, ddevLb), within);
  assert.equal(iosWithin(g, 1n << 40n), within, 'an IO beyond the device was restored');
  // -s 0 is the original's default: no clipping at all.
  const [plain, zero] = await Promise.all([newLdev('clip-none', 8 << 20), newLdev('clip-zero', 8 << 20)]);
  ok(await walb(['wlog', 'restore', plain, src]), 'restore without -s');
  ok(await walb(['wlog', 'restore', zero, src, '-s', '0']), 'restore with -s 0');
  assert.is(sha256(zero), sha256(plain));
});

test.run();
