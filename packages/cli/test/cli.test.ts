// End-to-end tests of `walb` and `wdevc`: every case runs the CLI as a real process (from source,
// through tsx) and compares its output with what walb-tools 1.0.19 printed for the same input.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runWalb } from '../src/index.ts';
import { sparseFile } from './helpers.ts';

const here = dirname(fileURLToPath(import.meta.url));
const PKG = resolve(here, '..');
const ROOT = resolve(here, '../../..');
const VEC = resolve(ROOT, '../shared/vectors/walb-tools-1.0.19');
const BINS = { walb: join(PKG, 'src/bin/walb.ts'), wdevc: join(PKG, 'src/bin/wdevc.ts') };
const WLOG_CASES = ['w-pbs512-mixed', 'w-pbs4096-rand', 'w-pbs512-rand-nodiscard', 'w-pbs512-zeroish-big-io'];

const TMP = mkdtempSync(join(tmpdir(), 'walbjs-cli-test-'));
const tmp = (name: string) => join(TMP, name);
const vec = (name: string) => join(VEC, name);

interface Run {
  code: number | null;
  stdout: Buffer;
  out: string;
  err: string;
}

/** Run a bin from source as a child process; `input` is fed to its stdin. */
function run(bin: keyof typeof BINS, args: string[], input?: Buffer): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', BINS[bin], ...args], {
      cwd: ROOT,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.stdin.on('error', () => { /* the child may exit before reading all of its input */ });
    child.stdin.end(input);
    child.on('close', (code) => {
      const stdout = Buffer.concat(out);
      resolvePromise({ code, stdout, out: stdout.toString('utf8'), err: Buffer.concat(err).toString('utf8') });
    });
  });
}
const walb = (...args: string[]) => run('walb', args);
const wdevc = (...args: string[]) => run('wdevc', args);

function ok(r: Run, what: string): void {
  assert.is(r.code, 0, `${what} exited ${r.code}; stderr: ${r.err}`);
}

/** The ldev image of the vectors, decompressed once. */
let ldevImage: string | undefined;
function ldevCopy(name: string): string {
  if (ldevImage === undefined) {
    ldevImage = tmp('w-ldev.img');
    writeFileSync(ldevImage, gunzipSync(readFileSync(vec('w-ldev.img.gz'))));
  }
  const p = tmp(name);
  writeFileSync(p, readFileSync(ldevImage));
  return p;
}

const sparse = (name: string, bytes: number): string => sparseFile(tmp(name), bytes);

test.after(() => {
  rmSync(TMP, { recursive: true, force: true });
});

test('wlog show --stat prints what wlog-show -stat printed', async () => {
  await Promise.all(WLOG_CASES.map(async (c) => {
    const r = await walb('wlog', 'show', '--stat', vec(`${c}.wlog`));
    ok(r, c);
    assert.is(r.out, readFileSync(vec(`${c}.wlog.stat.txt`), 'utf8'), c);
  }));
});

test('wlog show --pack prints what wlog-show -pack printed', async () => {
  await Promise.all(WLOG_CASES.map(async (c) => {
    const r = await walb('wlog', 'show', '--pack', vec(`${c}.wlog`));
    ok(r, c);
    assert.is(r.out, readFileSync(vec(`${c}.wlog.show.txt`), 'utf8'), c);
  }));
});

test('wlog show without a selection prints the header line, the packs, then the statistics', async () => {
  const c = 'w-pbs512-mixed';
  const [all, head] = await Promise.all([walb('wlog', 'show', vec(`${c}.wlog`)), walb('wlog', 'show', '--head', vec(`${c}.wlog`))]);
  ok(all, 'show');
  ok(head, 'show --head');
  assert.match(head.out, /^wlog_h: ver   2 pbs  512 salt [0-9a-f]{8} uuid [0-9a-f]{32} lsid 0 18446744073709551615\n$/);
  const expected = head.out + readFileSync(vec(`${c}.wlog.show.txt`), 'utf8') + readFileSync(vec(`${c}.wlog.stat.txt`), 'utf8');
  assert.is(all.out, expected);
});

test('wlog show - reads stdin', async () => {
  const c = 'w-pbs4096-rand';
  const r = await run('walb', ['wlog', 'show', '--stat', '-'], readFileSync(vec(`${c}.wlog`)));
  ok(r, 'show -');
  assert.is(r.out, readFileSync(vec(`${c}.wlog.stat.txt`), 'utf8'));
});

test('wlog show --json: one document, lsids as decimal strings', async () => {
  const c = 'w-pbs512-mixed';
  const [plain, withPacks] = await Promise.all([
    walb('wlog', 'show', '--json', vec(`${c}.wlog`)),
    walb('wlog', 'show', '--json', '--pack', vec(`${c}.wlog`)),
  ]);
  ok(plain, 'show --json');
  ok(withPacks, 'show --json --pack');
  const doc = JSON.parse(plain.out);
  assert.is(doc.type, 'wlog');
  assert.is(doc.header.beginLsid, '0');
  assert.is(doc.header.endLsid, '18446744073709551615');
  assert.is(doc.header.physicalBs, 512);
  assert.match(doc.header.uuid, /^[0-9a-f]{32}$/);
  assert.is(doc.packs, undefined);
  const statLines = readFileSync(vec(`${c}.wlog.stat.txt`), 'utf8').trim().split('\n');
  for (const line of statLines) {
    const [k, v] = line.split(' ');
    assert.is(doc.stat[k], v, k);
  }
  const full = JSON.parse(withPacks.out);
  assert.is(full.packs.length, Number(full.stat.nrPacks));
  const rec = full.packs[0].records[0];
  assert.type(rec.lsid, 'string');
  assert.type(rec.offset, 'string');
  assert.is(full.packs[0].logpackLsid, '0');
  assert.is(full.packs[0].offset, 4096);
});

test('wlog verify accepts a vector and reports a corrupted copy with its offset', async () => {
  const c = 'w-pbs512-mixed';
  const good = await walb('wlog', 'verify', vec(`${c}.wlog`));
  ok(good, 'verify');
  assert.match(good.out, /ok, pbs 512, 38 packs, \d+ records, lsid 0 to 6152/);

  // Flip one byte of the first record's data: header 4096 bytes + one 512-byte pack header block.
  const bytes = readFileSync(vec(`${c}.wlog`));
  bytes[4096 + 512 + 10] ^= 0xff;
  const bad = tmp('corrupt.wlog');
  writeFileSync(bad, bytes);
  const [text, json] = await Promise.all([walb('wlog', 'verify', bad), walb('wlog', 'verify', '--json', bad)]);
  assert.is(text.code, 1);
  assert.is(text.out, '');
  assert.match(text.err, /^walb: log record data checksum/);
  assert.match(text.err, /offset 4608/);
  assert.match(text.err, /lsid 1\b/);
  assert.is(json.code, 1);
  const e = JSON.parse(json.err);
  assert.is(e.type, 'error');
  assert.is(e.code, 'ERR_WALB_CHECKSUM');
  assert.is(e.offset, '4608');
  assert.is(e.lsid, '1');
});

test('wlog verify --json summary; a truncated log fails', async () => {
  const c = 'w-pbs4096-rand';
  const r = await walb('wlog', 'verify', '--json', vec(`${c}.wlog`));
  ok(r, 'verify --json');
  const doc = JSON.parse(r.out);
  assert.is(doc.type, 'verify');
  assert.is(doc.ok, true);
  assert.is(doc.pbs, 4096);
  assert.is(doc.beginLsid, '0');
  assert.is(doc.endLsid, '770');
  const cut = tmp('cut.wlog');
  writeFileSync(cut, readFileSync(vec(`${c}.wlog`)).subarray(0, 4096 + 4096 * 5 + 100));
  const t = await walb('wlog', 'verify', cut);
  assert.is(t.code, 1);
  assert.match(t.err, /^walb: /);
});

test('wlog gen: verifiable output, the same seed gives the same bytes', async () => {
  const a = tmp('gen-a.wlog');
  const b = tmp('gen-b.wlog');
  const c = tmp('gen-c.wlog');
  const [ra, rb, rc] = await Promise.all([
    walb('wlog', 'gen', '--seed', '42', '-z', '512K', '-o', a),
    walb('wlog', 'gen', '--seed', '42', '-z', '512K', '-o', b, '--json'),
    walb('wlog', 'gen', '--seed', '43', '-z', '512K', '-b', '4096', '--no-discard', '--no-rand', '-o', c),
  ]);
  ok(ra, 'gen a');
  ok(rb, 'gen b');
  ok(rc, 'gen c');
  assert.is(ra.out, '');
  assert.ok(readFileSync(a).equals(readFileSync(b)), 'same seed, same bytes');
  assert.not.ok(readFileSync(a).equals(readFileSync(c)));
  const info = JSON.parse(rb.out);
  assert.is(info.type, 'wlog-gen');
  assert.is(info.seed, 42);
  assert.is(info.bytes, statSync(b).size);
  assert.type(info.endLsid, 'string');
  const [va, vc] = await Promise.all([walb('wlog', 'verify', '--json', a), walb('wlog', 'verify', '--json', c)]);
  ok(va, 'verify a');
  ok(vc, 'verify c');
  assert.is(JSON.parse(va.out).endLsid, info.endLsid);
  assert.is(JSON.parse(vc.out).pbs, 4096);
  const stat = await walb('wlog', 'show', '--stat', c);
  assert.match(stat.out, /discardLb 0\n/);
});

test('wlog gen -o - writes the log to stdout', async () => {
  const g = await walb('wlog', 'gen', '--seed', '9', '-z', '128K', '-o', '-');
  ok(g, 'gen -o -');
  const v = await run('walb', ['wlog', 'verify', '-'], g.stdout);
  ok(v, 'verify -');
  assert.match(v.out, /^<stdin>: ok/);
});

test('wlog cat extracts what wlog-cat extracted from the ldev image', async () => {
  const ldev = ldevCopy('cat.img');
  const out = tmp('extracted.wlog');
  const [r, j] = await Promise.all([
    walb('wlog', 'cat', ldev, '-o', out),
    walb('wlog', 'cat', ldev, '-o', tmp('extracted2.wlog'), '--json'),
  ]);
  ok(r, 'cat');
  assert.ok(readFileSync(out).equals(readFileSync(vec('w-ldev-extracted.wlog'))), 'byte-identical to wlog-cat');
  ok(j, 'cat --json');
  const doc = JSON.parse(j.out);
  assert.is(doc.type, 'wlog-cat');
  assert.is(doc.beginLsid, '14000');
  assert.is(doc.stoppedBy, 'invalid-pack');
  assert.is(doc.endLsid, doc.stat.reallyEndLsid);
  assert.is(doc.bytes, statSync(out).size);
});

test('ldev info prints what wldev-info printed', async () => {
  const ldev = ldevCopy('info.img');
  const [r, j] = await Promise.all([walb('ldev', 'info', ldev), walb('ldev', 'info', '--json', ldev)]);
  ok(r, 'ldev info');
  assert.is(r.out, readFileSync(vec('w-ldev.info.txt'), 'utf8'));
  const doc = JSON.parse(j.out);
  assert.is(doc.type, 'super-sector');
  assert.is(doc.ringBufferSize, '16374');
  assert.is(doc.oldestLsid, '14000');
  assert.is(doc.uuid, '3762bf1c0682c1b5e0e9bf9c7a55afd7');
});

test('wdevc format-ldev formats image files; ldev info shows the result', async () => {
  const ldev = sparse('fmt-ldev.img', 8 << 20);
  const ddev = sparse('fmt-ddev.img', 32 << 20);
  const f = await wdevc('format-ldev', ldev, ddev, '-n', 'vol0');
  ok(f, 'format-ldev');
  assert.is(f.out, '');
  const r = await walb('ldev', 'info', ldev);
  ok(r, 'ldev info');
  const fields = Object.fromEntries(r.out.trim().split('\n').map((l) => l.split(': ')));
  // A log in a file gets 4 KiB blocks (FILE_LOG_PBS): the 8 MiB file holds 2048 of them, less
  // the super sectors and the block before them.
  assert.is(fields.pbs, '4096');
  assert.is(fields.ringBufferSize, '2045');
  assert.is(fields.deviceSize, String((32 << 20) / 512));
  assert.is(fields.name, 'vol0');
  assert.is(fields.oldestLsid, '0');
  assert.is(fields.writtenLsid, '0');
  assert.is(fields.ringBufferOffset, '3');
  const j = await wdevc('format-ldev', '--json', '--pbs', '4096', ldev, ddev);
  ok(j, 'format-ldev --json');
  const doc = JSON.parse(j.out);
  assert.is(doc.physicalBs, 4096);
  assert.is(doc.ringBufferSize, String((8 << 20) / 4096 - 3));
});

test('format-ldev and wlog restore refuse a log device a capture device has open, and change nothing', async () => {
  const ldev = sparse('busy-ldev.img', 8 << 20);
  const ddev = sparse('busy-ddev.img', 16 << 20);
  const src = tmp('busy.wlog');
  ok(await wdevc('format-ldev', ldev, ddev), 'format');
  ok(await walb('wlog', 'gen', '--seed', '4', '-s', '16M', '-z', '256K', '-o', src), 'gen');
  const { CaptureDevice } = await import('@walbjs/native-walb');
  const dev = await CaptureDevice.open(ldev, ddev);
  const before = readFileSync(ldev);
  try {
    for (const r of [await wdevc('format-ldev', ldev, ddev), await walb('wlog', 'restore', ldev, src)]) {
      assert.is(r.code, 1, r.err);
      assert.match(r.err, /in use by a capture device/);
    }
    assert.ok(readFileSync(ldev).equals(before), 'the log device changed');
  } finally {
    await dev.close();
  }
  ok(await wdevc('format-ldev', ldev, ddev), 'format once the device is closed');
});

test('wlog cat and wlog restore refuse the log device as their own other file (exit 2), changing nothing', async () => {
  const ldev = sparse('self-ldev.img', 8 << 20);
  const ddev = sparse('self-ddev.img', 16 << 20);
  ok(await wdevc('format-ldev', ldev, ddev), 'format');
  const before = readFileSync(ldev);
  for (const r of [await walb('wlog', 'cat', ldev, '-o', ldev), await walb('wlog', 'restore', ldev, ldev)]) {
    assert.is(r.code, 2, r.err);
    assert.match(r.err, /is also an input/);
  }
  assert.ok(readFileSync(ldev).equals(before), 'the log device changed');
});

test('wlog restore then wlog cat gives the log back, across the ring end', async () => {
  const ldev = sparse('rst-ldev.img', 8 << 20);
  const ddev = sparse('rst-ddev.img', 16 << 20);
  const src = tmp('rst-src.wlog');
  const [f, g] = await Promise.all([
    wdevc('format-ldev', '--pbs', '512', ldev, ddev),
    walb('wlog', 'gen', '--seed', '3', '-s', '16M', '-z', '1M', '-o', src),
  ]);
  ok(f, 'format');
  ok(g, 'gen');
  const neg = await walb('wlog', 'restore', ldev, src, '-d', '-1');
  assert.is(neg.code, 2, 'a shift below lsid 0 is refused before anything is written');
  assert.match(neg.err, /out of range/);
  const r = await walb('wlog', 'restore', ldev, src, '-d', '16000', '--verify', '--json');
  ok(r, 'restore');
  const res = JSON.parse(r.out);
  assert.is(res.type, 'wlog-restore');
  assert.is(res.beginLsid, '16000');
  assert.ok(res.paddingPacks >= 1, 'the log wrapped around the ring end');
  const text = await run('walb', ['wlog', 'restore', ldev, '-'], readFileSync(src));
  ok(text, 'restore from stdin');
  assert.match(text.out, /^restored lsid 0 to \d+\n$/);
  const r2 = await walb('wlog', 'restore', ldev, src, '-d', '16000');
  ok(r2, 'restore again');
  const out = tmp('rst-out.wlog');
  const c = await walb('wlog', 'cat', ldev, '-o', out, '--json');
  ok(c, 'cat');
  const [a, b] = await Promise.all([walb('wlog', 'show', '--json', src), walb('wlog', 'show', '--json', out)]);
  const sa = JSON.parse(a.out).stat;
  const sb = JSON.parse(b.out).stat;
  assert.is(sb.bgnLsid, '16000');
  assert.is(sb.normalLb, sa.normalLb);
  assert.is(sb.discardLb, sa.discardLb);
  assert.is(BigInt(sb.paddingPb) > BigInt(sa.paddingPb), true, 'the ring-end padding pack is in the extracted log');
});

test('--help exits 0 for every command', async () => {
  const cases: [keyof typeof BINS, string[]][] = [
    ['walb', []], ['walb', ['wlog']], ['walb', ['ldev']],
    ['walb', ['wlog', 'show']], ['walb', ['wlog', 'verify']], ['walb', ['wlog', 'gen']],
    ['walb', ['wlog', 'cat']], ['walb', ['wlog', 'restore']], ['walb', ['ldev', 'info']],
    ['wdevc', []], ['wdevc', ['format-ldev']],
  ];
  await Promise.all(cases.map(async ([bin, words]) => {
    const r = await run(bin, [...words, '--help']);
    const what = [bin, ...words].join(' ');
    ok(r, `${what} --help`);
    assert.ok(r.out.startsWith(what), `${what} --help prints its usage:\n${r.out}`);
    assert.match(r.out, /--json/);
    assert.is(r.err, '');
  }));
});

test('usage errors exit 2', async () => {
  const [unknown, noWlogCmd, badLsid, hugeLsid, noOut, badSize, extra, badPbs, wdevcUnknown] = await Promise.all([
    walb('frobnicate'),
    walb('wlog'),
    walb('wlog', 'cat', 'x.img', '-o', 'y.wlog', '-b', 'abc'),
    walb('wlog', 'cat', 'x.img', '-o', 'y.wlog', '-e', '18446744073709551616', '--json'),
    walb('wlog', 'gen'),
    walb('wlog', 'gen', '-o', tmp('never.wlog'), '-s', '12Q'),
    walb('wlog', 'show', '--stat', '--bogus', vec('w-pbs512-mixed.wlog')),
    walb('wlog', 'gen', '-o', tmp('never.wlog'), '--pbs', '1000'),
    wdevc('create-nothing'),
  ]);
  for (const [name, r] of Object.entries({ unknown, noWlogCmd, badLsid, hugeLsid, noOut, badSize, extra, badPbs, wdevcUnknown })) {
    assert.is(r.code, 2, `${name}: exit ${r.code}, stderr ${r.err}`);
    assert.is(r.out, '', name);
  }
  assert.match(unknown.err, /^walb: Unknown argument: frobnicate/);
  assert.match(badLsid.err, /^walb: invalid begin lsid "abc"/);
  const e = JSON.parse(hugeLsid.err);
  assert.equal([e.type, e.code], ['error', 'ERR_USAGE']);
  assert.match(e.message, /18446744073709551615/);
  assert.match(badSize.err, /invalid device size "12Q"/);
  assert.match(wdevcUnknown.err, /^wdevc: /);
  assert.throws(() => statSync(tmp('never.wlog')));
});

test('a missing input exits 1 with the error on stderr', async () => {
  const [text, json] = await Promise.all([
    walb('ldev', 'info', tmp('no-such.img')),
    walb('wlog', 'show', '--json', tmp('no-such.wlog')),
  ]);
  assert.is(text.code, 1);
  assert.match(text.err, /^walb: ENOENT/);
  assert.is(json.code, 1);
  assert.is(JSON.parse(json.err).code, 'ENOENT');
});

test('runWalb runs in-process with the streams it is given', async () => {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on('data', (d: Buffer) => chunks.push(d));
  const code = await runWalb(['wlog', 'show', '--stat', vec('w-pbs512-rand-nodiscard.wlog')], { stdout, stderr });
  assert.is(code, 0);
  assert.is(Buffer.concat(chunks).toString(), readFileSync(vec('w-pbs512-rand-nodiscard.wlog.stat.txt'), 'utf8'));
  const errs: Buffer[] = [];
  stderr.on('data', (d: Buffer) => errs.push(d));
  assert.is(await runWalb(['wlog', 'show', '--no-such-flag', 'x'], { stdout, stderr }), 2);
  assert.match(Buffer.concat(errs).toString(), /Unknown argument/);
});

test.run();
