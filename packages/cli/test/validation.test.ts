// Bad command lines and bad inputs across the bins, each run as a real process (from source,
// through tsx): a value out of range is a usage error (exit 2) naming its option, a path that
// cannot be used is a typed error naming it, nothing is changed, and no stack trace is printed.
// Also walbc's own help, and the code of a daemon's refusal under --json.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runWalb } from '../src/index.ts';
import { sparseFile } from './helpers.ts';

const here = dirname(fileURLToPath(import.meta.url));
const PKG = resolve(here, '..');
const ROOT = resolve(here, '../../..');
const VEC = resolve(ROOT, '../shared/vectors/walb-tools-1.0.19');
const BINS = ['walb', 'wdevc', 'walbc', 'walb-storage', 'walb-proxy', 'walb-archive'] as const;
type Bin = typeof BINS[number];

const TMP = mkdtempSync(join(tmpdir(), 'walbjs-cli-validation-'));
const tmp = (name: string) => join(TMP, name);
const vec = (name: string) => join(VEC, name);

interface Run {
  code: number | null;
  out: string;
  err: string;
}

function start(bin: Bin, args: string[]): ChildProcess {
  return spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', join(PKG, 'src/bin', `${bin}.ts`), ...args], {
    cwd: ROOT,
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Run a bin to its end; a daemon that starts after all is stopped, and `started` says so. */
function run(bin: Bin, ...args: string[]): Promise<Run & { started: boolean }> {
  return new Promise((resolvePromise, reject) => {
    const child = start(bin, args);
    let out = '';
    let err = '';
    let started = false;
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      // A daemon that was expected to refuse its options: stop it rather than wait forever.
      if (/listening/.test(out) && !started) { started = true; child.kill('SIGTERM'); }
    });
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, out, err, started }));
  });
}

/** A usage error: exit 2, nothing on stdout, the message matching `re`, no stack trace. */
function usage(r: Run, re: RegExp, what: string): void {
  assert.is(r.code, 2, `${what}: exit ${r.code}, stderr ${r.err}`);
  assert.is(r.out, '', what);
  assert.match(r.err, re, what);
  assert.not.match(r.err, /\n\s+at /, `${what}: a stack trace`);
}

/** The JSON error on stderr of a `--json` run. */
function jsonError(r: Run): { type: string; code: string; message: string; source?: string } {
  return JSON.parse(r.err.trim());
}

const sparse = (name: string, bytes: number): string => sparseFile(tmp(name), bytes);

test.after(() => {
  rmSync(TMP, { recursive: true, force: true });
});

test('daemons: an unwritable --log is a typed error naming the option and the path, no stack', async () => {
  const [text, json] = await Promise.all([
    run('walb-archive', '-b', tmp('a0'), '--log', '/nonexistent/x.log'),
    run('walb-storage', '-b', tmp('s0'), '--log', '/nonexistent/x.log', '--json'),
  ]);
  for (const r of [text, json]) {
    assert.is(r.code, 1, r.err);
    assert.not.ok(r.started);
    assert.not.match(r.err, /\n\s+at /);
  }
  assert.match(text.err, /^walb-archive: cannot open the --log file \/nonexistent\/x\.log: ENOENT/);
  const e = jsonError(json);
  assert.equal([e.type, e.code, e.source], ['error', 'ENOENT', '/nonexistent/x.log']);
  assert.match(e.message, /--log/);
});

test('daemons: bad numbers are usage errors naming the option', async () => {
  const cases: Array<[Bin, string[], RegExp]> = [
    ['walb-storage', ['--snapintvl', '-1'], /invalid --snapintvl "-1"/],
    ['walb-storage', ['--wl', 'abc'], /invalid --max-wlog-send-mb \(--wl\) "abc"/],
    ['walb-storage', ['--delay', '-5'], /invalid --delay "-5"/],
    ['walb-storage', ['-p', '99999'], /invalid --port \(-p\) "99999": a port is an integer from 0 to 65535/],
    ['walb-storage', ['-p', 'abc'], /invalid --port \(-p\) "abc"/],
    ['walb-proxy', ['--wn', '-3'], /invalid --max-wdiff-send-nr \(--wn\) "-3"/],
    ['walb-proxy', ['--rto', 'abc'], /invalid --retry-timeout \(--rto\) "abc"/],
    ['walb-archive', ['--fi', '-1'], /invalid --fsync-interval \(--fi\) "-1"/],
  ];
  const runs = await Promise.all(cases.map(([bin, args], i) => run(bin, '-b', tmp(`d${i}`), ...args)));
  runs.forEach((r, i) => {
    const [bin, args, re] = cases[i];
    usage(r, new RegExp(`^${bin}: ${re.source}`), `${bin} ${args.join(' ')}`);
    assert.not.ok(r.started);
  });
  const j = await run('walb-proxy', '-b', tmp('dj'), '--json', '--wd', '0');
  assert.is(j.code, 2);
  assert.equal([jsonError(j).code, /--max-wdiff-send-mb/.test(jsonError(j).message)], ['ERR_USAGE', true]);
});

test('walb: bad values are usage errors naming the option; nothing is written', async () => {
  const ldev = sparse('l.img', 8 << 20);
  const never = tmp('never.wlog');
  const [seed, size0, minMax, catRange, badI, statMaybe, bogusOpt, bogusCmd] = await Promise.all([
    run('walb', 'demo', '--seed', 'abc'),
    run('walb', 'wlog', 'gen', '-s', '0', '-o', never),
    run('walb', 'wlog', 'gen', '--min-io-size', '64k', '--max-io-size', '4k', '-o', never),
    run('walb', 'wlog', 'cat', ldev, '-b', '15000', '-e', '14000', '-o', never),
    run('walb', 'wlog', 'restore', ldev, vec('w-pbs512-mixed.wlog'), '-i', 'abc'),
    run('walb', 'wlog', 'show', '--stat=maybe', vec('w-pbs512-mixed.wlog')),
    run('walb', 'wlog', 'show', '--bogus', vec('w-pbs512-mixed.wlog')),
    run('walb', 'wlog', 'bogus'),
  ]);
  usage(seed, /^walb: invalid --seed "abc"/, 'demo --seed abc');
  usage(size0, /^walb: --size \(-s\) 0 is smaller than the smallest IO \(--min-io-size 512\)/, 'gen -s 0');
  usage(minMax, /^walb: --min-io-size 65536 is larger than --max-io-size 4096/, 'gen min > max');
  usage(catRange, /^walb: --begin \(-b\) 15000 is above --end \(-e\) 14000/, 'cat -b > -e');
  usage(badI, /^walb: invalid --invalid-lsid \(-i\) "abc"/, 'restore -i abc');
  assert.not.match(badI.err, /invalid invalid/);
  usage(statMaybe, /^walb: invalid --stat=maybe: --stat is a flag/, 'show --stat=maybe');
  usage(bogusOpt, /^walb: Unknown argument: bogus/, 'show --bogus FILE');
  usage(bogusCmd, /^walb: Unknown argument: bogus/, 'wlog bogus');
  assert.not.ok(existsSync(never));
  const stat = await run('walb', 'wlog', 'show', '--stat=true', vec('w-pbs512-mixed.wlog'));
  assert.is(stat.code, 0, stat.err);
  assert.is(stat.out, readFileSync(vec('w-pbs512-mixed.wlog.stat.txt'), 'utf8'));
});

test('wdiff: a directory where a file is expected is EISDIR naming it (exit 1), not "a stream"', async () => {
  const dir = tmp('a-dir');
  mkdirSync(dir);
  const w = vec('w-chain-0.wdiff');
  const img = sparse('eisdir.img', 1 << 20);
  const runs = await Promise.all([
    run('walb', 'wdiff', 'merge', dir, '-o', tmp('m.wdiff')),
    run('walb', 'wdiff', 'apply', dir, img),
    run('walb', 'wdiff', 'apply', w, dir),
    run('walb', 'wdiff', 'virt-cat', dir, w, '-o', tmp('v.img')),
    run('walb', 'wdiff', 'from-image', dir, '-o', tmp('f.wdiff')),
    run('walb', '--json', 'wdiff', 'apply', w, dir),
  ]);
  for (const r of runs.slice(0, 5)) {
    assert.is(r.code, 1, r.err);
    assert.is(r.err, `walb: EISDIR: illegal operation on a directory, open '${dir}'\n`);
  }
  const e = jsonError(runs[5]);
  assert.equal([e.code, e.source], ['EISDIR', dir]);
  for (const f of ['m.wdiff', 'v.img', 'f.wdiff']) assert.not.ok(existsSync(tmp(f)));
});

test('wdevc: bad sizes, names and addresses are usage errors; an empty data device is refused', async () => {
  const ldev = sparse('fl.img', 8 << 20);
  const ddev = sparse('fd.img', 32 << 20);
  const empty = sparse('empty.img', 0);
  const before = readFileSync(ldev);
  const [tcpBad, tcpPort, size0, longName, emptyDdev, ckpt, serveTcp] = await Promise.all([
    run('wdevc', 'create-udev', tmp('u1'), '--size', '16M', '--log-size', '8M', '--tcp', 'bogus'),
    run('wdevc', 'create-udev', tmp('u2'), '--size', '16M', '--log-size', '8M', '--tcp', '127.0.0.1:99999'),
    run('wdevc', 'create-udev', tmp('u3'), '--size', '0', '--log-size', '8M'),
    run('wdevc', 'format-ldev', ldev, ddev, '-n', 'x'.repeat(34)),
    run('wdevc', 'format-ldev', '--json', ldev, empty),
    run('wdevc', 'serve', ldev, ddev, '--tcp', '127.0.0.1:0', '--checkpoint-interval', 'abc'),
    run('wdevc', 'serve', ldev, ddev, '--tcp', '127.0.0.1:99999'),
  ]);
  usage(tcpBad, /^wdevc: invalid --tcp "bogus": expected HOST:PORT/, 'create-udev --tcp bogus');
  usage(tcpPort, /^wdevc: invalid --tcp port "99999"/, 'create-udev --tcp :99999');
  usage(size0, /^wdevc: invalid --size "0"/, 'create-udev --size 0');
  usage(longName, /^wdevc: invalid --name \(-n\) "x{34}": 34 bytes/, 'format-ldev -n 34 bytes');
  usage(ckpt, /^wdevc: invalid --checkpoint-interval "abc"/, 'serve --checkpoint-interval abc');
  usage(serveTcp, /^wdevc: invalid --tcp port "99999"/, 'serve --tcp :99999');
  for (const u of ['u1', 'u2', 'u3']) assert.not.ok(existsSync(tmp(u)), u);
  assert.is(emptyDdev.code, 1, emptyDdev.err);
  const e = jsonError(emptyDdev);
  assert.equal([e.code, e.source], ['ERR_WALB_RANGE', empty]);
  assert.match(e.message, /0 bytes/);
  assert.ok(readFileSync(ldev).equals(before), 'the log device is left as it was');
});

test('wdevc create-wdev: numbers and the driver\'s rules between them are usage errors, before the control device', async () => {
  const [word, big, maxp, minp, fs] = await Promise.all([
    run('wdevc', 'create-wdev', tmp('no-ldev'), tmp('no-ddev'), '--maxl', 'abc'),
    run('wdevc', 'create-wdev', tmp('no-ldev'), tmp('no-ddev'), '--bi', '5000000000'),
    run('wdevc', 'create-wdev', tmp('no-ldev'), tmp('no-ddev'), '--maxp', '1'),
    run('wdevc', 'create-wdev', tmp('no-ldev'), tmp('no-ddev'), '--minp', '40'),
    run('wdevc', 'create-wdev', tmp('no-ldev'), tmp('no-ddev'), '--fs', '20'),
  ]);
  usage(word, /^wdevc: invalid --maxl "abc"/, 'create-wdev --maxl abc');
  usage(big, /^wdevc: invalid --bi "5000000000"/, 'create-wdev --bi 5e9');
  usage(maxp, /^wdevc: invalid --maxp: max_pending_mb: 1 is not in 2\.\.16384/, 'create-wdev --maxp 1');
  usage(minp, /^wdevc: invalid --minp: min_pending_mb: 40/, 'create-wdev --minp 40');
  usage(fs, /^wdevc: invalid --fs: log_flush_interval_mb: 20/, 'create-wdev --fs 20');
});

test('walbc: bad --port and --timeout values, subcommand help, modes checked before connecting', async () => {
  const runs = await Promise.all([
    run('walbc', '-p', '99999', 'status'),
    run('walbc', '-p', '-1', 'status'),
    run('walbc', '-p', 'abc', 'status'),
    run('walbc', '--timeout', '-5', '-p', '1', 'status'),
    run('walbc', '--timeout', 'abc', '-p', '1', 'status'),
    // Port 1 on loopback has no daemon: reaching it would be ECONNREFUSED, exit 1.
    run('walbc', '-p', '1', 'shutdown', 'bogus'),
    run('walbc', '-p', '1', 'stop', 'vol0', 'bogus'),
    run('walbc', '-p', '1', 'start', 'vol0', 'bogus'),
  ]);
  for (const r of runs.slice(0, 3)) usage(r, /^walbc: invalid --port \(-p\) "[^"]+": a port is an integer from 1 to 65535/, 'walbc -p');
  for (const r of runs.slice(3, 5)) usage(r, /^walbc: invalid --timeout "[^"]+"/, 'walbc --timeout');
  usage(runs[5], /^walbc: shutdown: mode must be graceful, force; got "bogus"/, 'shutdown bogus');
  usage(runs[6], /^walbc: stop: mode must be graceful, force, empty; got "bogus"/, 'stop vol0 bogus');
  usage(runs[7], /^walbc: start: mode must be target, standby; got "bogus"/, 'start vol0 bogus');

  const helps = await Promise.all([
    run('walbc', 'status', '--help'),
    run('walbc', '-p', '1', 'status', '--help'),
    run('walbc', '-p', '1', 'get', '--help'),
    run('walbc', '-p', '1', 'get', 'restored-path', '-h'),
    run('walbc', 'restore', '--help'),
  ]);
  for (const r of helps) {
    assert.is(r.code, 0, r.err);
    assert.is(r.err, '');
  }
  assert.match(helps[0].out, /^walbc .* status \[volId\]\n\nStatus of a volume, or of the daemon\.\n$/);
  assert.is(helps[1].out, helps[0].out);
  assert.match(helps[2].out, /get TARGET/);
  assert.match(helps[2].out, /\n {2}restored-path volId gid\n/);
  assert.match(helps[3].out, /get restored-path volId gid\n/);
  assert.match(helps[4].out, /\[--wait\] restore volId gid\n/);
});

test('walbc --json: a daemon\'s refusal carries the daemon\'s own code', async () => {
  const d = start('walb-archive', ['-b', tmp('arch'), '-p', '0', '--json', '--log', tmp('arch.log')]);
  try {
    const line = await new Promise<string>((resolvePromise, reject) => {
      let out = '';
      d.stdout!.on('data', (b: Buffer) => { out += b.toString(); if (out.includes('\n')) resolvePromise(out.split('\n')[0]); });
      d.on('close', (code) => reject(new Error(`walb-archive exited ${code}`)));
    });
    const port = (JSON.parse(line) as { address: string }).address.split(':').pop()!;
    const [json, text] = await Promise.all([
      run('walbc', '-p', port, '--json', 'init-vol', 'bad/name'),
      run('walbc', '-p', port, 'init-vol', 'bad/name'),
    ]);
    assert.is(json.code, 1, json.err);
    const e = jsonError(json);
    assert.is(e.code, 'ERR_WALB_INVALID_NAME', json.err);
    assert.match(e.message, /bad\/name/);
    assert.is(text.code, 1);
    assert.match(text.err, /^walbc: ERR_WALB_INVALID_NAME: /);
  } finally {
    d.kill('SIGTERM');
  }
});

test('wdiff merge on a terminal leaves the final count of IOs in place of the bar', async () => {
  const wlog = vec('w-chain-0.wlog');
  const wdiff = tmp('chain0.wdiff');
  const quiet = { stdout: new PassThrough(), stderr: new PassThrough() };
  assert.is(await runWalb(['wdiff', 'from-wlog', wlog, '-o', wdiff], quiet), 0);
  const json = new PassThrough();
  const docs: Buffer[] = [];
  json.on('data', (b: Buffer) => docs.push(b));
  assert.is(await runWalb(['wdiff', 'merge', '--json', wdiff, '-o', tmp('merged-json.wdiff')], { stdout: json, stderr: new PassThrough() }), 0);
  const records = (JSON.parse(Buffer.concat(docs).toString()) as { records: number }).records;
  assert.ok(records > 0 && records < 4096, `a merge smaller than one progress step (${records} IOs)`);
  // A terminal as far as the progress bar can tell.
  const tty = Object.assign(new PassThrough(), { isTTY: true, columns: 100 });
  const err: Buffer[] = [];
  tty.on('data', (b: Buffer) => err.push(b));
  assert.is(await runWalb(['wdiff', 'merge', wdiff, '-o', tmp('merged.wdiff')], { stdout: new PassThrough(), stderr: tty }), 0);
  assert.ok(Buffer.concat(err).toString().endsWith(`merged: ${records} IOs\n`), JSON.stringify(Buffer.concat(err).toString()));
  assert.ok(statSync(tmp('merged.wdiff')).size > 0);
});

test('wlog verify --json: packs and records are numbers, lsids and stat counters strings', async () => {
  const r = await run('walb', 'wlog', 'verify', '--json', vec('w-pbs512-mixed.wlog'));
  assert.is(r.code, 0, r.err);
  const doc = JSON.parse(r.out) as Record<string, unknown> & { stat: Record<string, unknown> };
  assert.is(doc.packs, 38);
  assert.is(doc.records, 240);
  assert.is(doc.beginLsid, '0');
  assert.is(doc.endLsid, '6152');
  assert.is(doc.stat.nrPacks, '38');
});

/** Run a bin with `stdin` as its standard input: bytes through a pipe, or an open fd (a directory). */
function runWithStdin(bin: Bin, stdin: Buffer | number, ...args: string[]): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', join(PKG, 'src/bin', `${bin}.ts`), ...args], {
      cwd: ROOT,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      stdio: [typeof stdin === 'number' ? stdin : 'pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    if (typeof stdin !== 'number') {
      child.stdin!.on('error', () => { /* the child may exit before reading all of its input */ });
      child.stdin!.end(stdin);
    }
    child.on('close', (code) => resolvePromise({ code, out, err }));
  });
}

test('wlog cat and restore: -b equal to -e is a usage error naming both options, as -b above -e is', async () => {
  const ldev = sparse('eq.img', 8 << 20);
  const before = readFileSync(ldev);
  const never = tmp('eq.wlog');
  const [cat, catAbove, restore, restoreJson] = await Promise.all([
    run('walb', 'wlog', 'cat', ldev, '-b', '5', '-e', '5', '-o', never),
    run('walb', 'wlog', 'cat', ldev, '-b', '6', '-e', '5', '-o', never),
    run('walb', 'wlog', 'restore', ldev, vec('w-pbs512-mixed.wlog'), '-b', '5', '-e', '5'),
    run('walb', '--json', 'wlog', 'restore', ldev, vec('w-pbs512-mixed.wlog'), '--begin', '7', '--end', '7'),
  ]);
  usage(cat, /^walb: --begin \(-b\) 5 equals --end \(-e\) 5: the begin lsid must be below the end lsid, which is exclusive\n/, 'cat -b 5 -e 5');
  usage(catAbove, /^walb: --begin \(-b\) 6 is above --end \(-e\) 5: the begin lsid must be below/, 'cat -b 6 -e 5');
  usage(restore, /^walb: --begin \(-b\) 5 equals --end \(-e\) 5/, 'restore -b 5 -e 5');
  assert.is(restoreJson.code, 2, restoreJson.err);
  assert.equal([jsonError(restoreJson).code, /--begin \(-b\) 7 equals --end \(-e\) 7/.test(jsonError(restoreJson).message)], ['ERR_USAGE', true]);
  assert.not.ok(existsSync(never));
  assert.ok(readFileSync(ldev).equals(before), 'the log device changed');
});

test('wlog from stdin: an error past the header names <stdin>, and the lsid its message names', async () => {
  const src = readFileSync(vec('w-pbs512-mixed.wlog'));
  // The second pack's header is the first block after the first pack's data.
  const { WlogReader } = await import('@walbjs/log-format');
  const packs = [];
  for await (const p of await WlogReader.open(src)) packs.push(p);
  const badType = Buffer.from(src);
  badType[packs[1].offset + 4] ^= 1;
  // Cut inside the data of a record that is not the pack's first: its lsid is not the pack's.
  const p = packs.find((x) => x.ios.length >= 2)!;
  const cut = src.subarray(0, p.offset + 512 + p.ios[0].length + 100);
  const [plain, json, cutJson] = await Promise.all([
    runWithStdin('walb', badType, 'wlog', 'verify', '-'),
    runWithStdin('walb', badType, 'wlog', 'verify', '--json', '-'),
    runWithStdin('walb', cut, 'wlog', 'show', '--json', '-'),
  ]);
  assert.is(plain.code, 1, plain.err);
  assert.match(plain.err, new RegExp(`^walb: sector type 0x0002, expected 0x0003 \\(at <stdin>, offset ${packs[1].offset}, lsid ${packs[1].header.logpackLsid}\\)\n$`));
  assert.is(json.code, 1, json.err);
  assert.equal(jsonError(json), {
    type: 'error', code: 'ERR_WALB_SECTOR_TYPE', message: plain.err.slice('walb: '.length).trim(),
    offset: String(packs[1].offset), lsid: String(packs[1].header.logpackLsid), source: '<stdin>',
  } as unknown as ReturnType<typeof jsonError>);
  assert.is(cutJson.code, 1, cutJson.err);
  const e = jsonError(cutJson) as ReturnType<typeof jsonError> & { lsid: string };
  const named = /^data of lsid (\d+):/.exec(e.message);
  assert.ok(named, e.message);
  assert.is(e.lsid, named![1]);
  assert.is.not(e.lsid, String(p.header.logpackLsid));
  assert.is(e.source, '<stdin>');
  // In-process, stdin is a stream of the caller's, with no file descriptor: named all the same.
  const stderr = new PassThrough();
  const errs: Buffer[] = [];
  stderr.on('data', (d: Buffer) => errs.push(d));
  const code = await runWalb(['wlog', 'verify', '--json', '-'], { stdin: Readable.from([badType]), stdout: new PassThrough(), stderr });
  assert.is(code, 1);
  assert.is((JSON.parse(Buffer.concat(errs).toString().trim()) as { source?: string }).source, '<stdin>');
});

test('a directory as stdin is EISDIR naming <stdin> (exit 1), not an empty input; nothing is written', async () => {
  const dir = tmp('stdin-dir');
  mkdirSync(dir, { recursive: true });
  const ldev = sparse('stdin-dir-ldev.img', 1 << 20);
  const fmt = await run('wdevc', 'format-ldev', '--pbs', '512', ldev, sparse('stdin-dir-ddev.img', 1 << 20));
  assert.is(fmt.code, 0, fmt.err);
  const img = sparse('stdin-dir.img', 1 << 20);
  const ldevBefore = readFileSync(ldev);
  const fd = openSync(dir, 'r');
  try {
    const cases = [
      ['wlog', 'verify', '-'], ['wlog', 'show', '-'], ['wlog', 'restore', ldev, '-'],
      ['wdiff', 'show', '-'], ['wdiff', 'apply', '-', img], ['wdiff', 'from-wlog', '-', '-o', tmp('stdin-dir.wdiff')],
    ];
    const runs = await Promise.all([...cases.map((c) => runWithStdin('walb', fd, ...c)), runWithStdin('walb', fd, '--json', 'wlog', 'verify', '-')]);
    runs.slice(0, cases.length).forEach((r, i) => {
      assert.is(r.code, 1, `${cases[i].join(' ')}: ${r.err}`);
      assert.is(r.err, 'walb: EISDIR: illegal operation on a directory, read \'<stdin>\'\n', cases[i].join(' '));
    });
    const e = jsonError(runs[cases.length]);
    assert.equal([e.code, e.source], ['EISDIR', '<stdin>']);
  } finally { closeSync(fd); }
  assert.ok(readFileSync(ldev).equals(ldevBefore), 'the log device changed');
  assert.ok(readFileSync(img).equals(Buffer.alloc(1 << 20)), 'the image changed');
  assert.not.ok(existsSync(tmp('stdin-dir.wdiff')));
});

test('wdevc format-ldev --pbs 512: a device that ends before byte 8192 is read back; one without a ring of 3 PB is refused', async () => {
  const ddev = sparse('small-ddev.img', 1 << 20);
  for (const bytes of [6656, 8191]) {
    const ldev = sparse(`small-${bytes}.img`, bytes);
    const f = await run('wdevc', 'format-ldev', '--pbs', '512', ldev, ddev);
    assert.is(f.code, 0, f.err);
    const [info, cat] = await Promise.all([
      run('walb', '--json', 'ldev', 'info', ldev),
      run('walb', '--json', 'wlog', 'cat', ldev, '-o', tmp(`small-${bytes}.wlog`)),
    ]);
    assert.is(info.code, 0, info.err);
    assert.is((JSON.parse(info.out) as { ringBufferSize: string }).ringBufferSize, String(Math.floor(bytes / 512) - 10));
    assert.is(cat.code, 0, cat.err);
  }
  const tiny = sparse('small-6144.img', 6144);
  const refused = await run('wdevc', '--json', 'format-ldev', '--pbs', '512', tiny, ddev);
  assert.is(refused.code, 1, refused.err);
  const e = jsonError(refused);
  assert.equal([e.code, e.source], ['ERR_WALB_RANGE', tiny]);
  assert.match(e.message, /^ring_buffer_size: a log device of 6144 bytes leaves a ring buffer of 2 PB at 512-byte blocks; it needs at least 6656 bytes/);
  assert.ok(readFileSync(tiny).equals(Buffer.alloc(6144)), 'the refused device was written');
});

test('wdiff apply --help has a description line', async () => {
  const r = await run('walb', 'wdiff', 'apply', '--help');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^walb wdiff apply \[options\] WDIFF\.\.\. IMAGE\n\nApply wdiffs \(oldest first\) to the image given last/);
});

test.run();
