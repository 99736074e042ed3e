// End-to-end tests of `walb wdiff …`: the CLI runs as a real process (from source, through tsx) on
// the walb-tools 1.0.19 vectors, and its output is compared with what the original printed or with
// the sha256 of the images the original produced. Each spawn costs about a second, so checks are
// grouped per process and independent processes run in parallel.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SortedDiffWriter, parseCompressOpt } from '@walbjs/diff';
import { checksum } from '@walbjs/log-format';

const here = dirname(fileURLToPath(import.meta.url));
const PKG = resolve(here, '..');
const ROOT = resolve(here, '../../..');
const VEC = resolve(ROOT, '../shared/vectors/walb-tools-1.0.19');
const BIN = join(PKG, 'src/bin/walb.ts');

const TMP = mkdtempSync(join(tmpdir(), 'walbjs-wdiff-cli-test-'));
const tmp = (name: string) => join(TMP, name);
const vec = (name: string) => join(VEC, name);

interface Manifest {
  files: Record<string, string>;
  cases: Array<Record<string, any>>;
}
const manifest = JSON.parse(readFileSync(vec('manifest.json'), 'utf8')) as Manifest;
const wlogCase = (name: string) => manifest.cases.find((c) => c.kind === 'wlog' && c.name === name)!;
const chainCase = manifest.cases.find((c) => c.kind === 'chain')!;
const virtCase = manifest.cases.find((c) => c.kind === 'virt-full')!;

/** The mixed case's two wdiffs and the six codec ones first, then every other wdiff with a dump. */
const SHOW_FILES = [
  'w-pbs512-mixed.sorted.wdiff', 'w-pbs512-mixed.indexed.wdiff',
  ...['none', 'snappy', 'gzip', 'lzma', 'lz4', 'zstd'].map((c) => `w-cmpr-${c}.wdiff`),
];
for (const f of Object.keys(manifest.files).sort()) {
  const w = f.replace(/\.wdiff\.show\.txt$/, '.wdiff');
  if (w !== f && !SHOW_FILES.includes(w)) SHOW_FILES.push(w);
}

interface Run {
  code: number | null;
  stdout: Buffer;
  out: string;
  err: string;
}

/** Run `walb …` from source as a child process. */
function walb(...args: string[]): Promise<Run> {
  return walbFrom(undefined, ...args);
}

/** {@link walb} with its stdin redirected from the file `input` (as `walb … < input`). */
function walbFrom(input: string | undefined, ...args: string[]): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const fd = input === undefined ? undefined : openSync(input, 'r');
    const child = spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      stdio: [fd ?? 'ignore', 'pipe', 'pipe'],
    });
    if (fd !== undefined) closeSync(fd);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      const stdout = Buffer.concat(out);
      resolvePromise({ code, stdout, out: stdout.toString('utf8'), err: Buffer.concat(err).toString('utf8') });
    });
  });
}

function ok(r: Run, what: string): void {
  assert.is(r.code, 0, `${what} exited ${r.code}; stderr: ${r.err}`);
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const fileSha = (p: string) => sha256(readFileSync(p));

/** A file of `bytes` bytes, all `fill` (0: sparse). */
function image(name: string, bytes: number, fill = 0): string {
  const p = tmp(name);
  if (fill === 0) {
    writeFileSync(p, '');
    truncateSync(p, bytes);
  } else {
    writeFileSync(p, Buffer.alloc(bytes, fill));
  }
  return p;
}

/** The base image of the virt-full case, decompressed once. */
let baseImage: string | undefined;
function base(): string {
  if (baseImage === undefined) {
    baseImage = tmp('w-base.img');
    writeFileSync(baseImage, gunzipSync(readFileSync(vec(virtCase.baseGz))));
  }
  return baseImage;
}

/** Counts a `wdiff-show` text gives, as `wdiff-show -stat` would print them. */
function statFromShow(texts: string[]) {
  const s = { wdiffNr: texts.length, normalNr: 0, allZeroNr: 0, discardNr: 0, normalLb: 0, allZeroLb: 0, discardLb: 0, dataSize: 0 };
  for (const t of texts) {
    for (const line of t.split('\n')) {
      const f = line.split('\t');
      const sorted = f[0] === 'wdiff_sorted_rec:';
      if (!sorted && f[0] !== 'wdiff_indexed_rec:') continue;
      const blks = Number(f[2]);
      const zd = f[f.length - 1];
      if (zd === 'Z-') { s.allZeroNr++; s.allZeroLb += blks; }
      else if (zd === '-D') { s.discardNr++; s.discardLb += blks; }
      else { s.normalNr++; s.normalLb += blks; }
      if (sorted) s.dataSize += Number(f[5]);
    }
  }
  return s;
}

test.after(() => {
  rmSync(TMP, { recursive: true, force: true });
});

test('wdiff show prints what wdiff-show printed (every dump of the vectors); --csum; --stat; --addr; --json', async () => {
  const paths = SHOW_FILES.map(vec);
  const expected = SHOW_FILES.map((f) => readFileSync(vec(`${f}.show.txt`), 'utf8'));
  const [text, json, addr] = await Promise.all([
    walb('wdiff', 'show', '--csum', '--stat', ...paths),
    walb('wdiff', 'show', '--json', vec(SHOW_FILES[0]), vec(SHOW_FILES[1])),
    walb('wdiff', 'show', '--nohead', '--addr', '1600', vec(SHOW_FILES[0]), vec(SHOW_FILES[1])),
  ]);
  ok(text, 'show --csum --stat');
  const all = expected.join('');
  assert.ok(text.out.startsWith(all), 'header and records of every file, in order');
  // File by file, so a mismatch names the file.
  const shown = text.out.slice(0, all.length).split(/(?=^wdiff_h:$)/m);
  assert.is(shown.length, SHOW_FILES.length);
  SHOW_FILES.forEach((f, i) => assert.is(shown[i], expected[i], f));
  const statLines = text.out.slice(all.length).trimEnd().split('\n');
  assert.is(statLines.length, 8);
  for (const l of statLines) assert.match(l, /^wdiff_stat: \w+ \d+$/);
  const stat = Object.fromEntries(statLines.map((l) => l.split(' ').slice(1)).map(([k, v]) => [k, Number(v)]));
  assert.equal(stat, statFromShow(expected));
  assert.is(stat.wdiffNr, SHOW_FILES.length);
  assert.ok(SHOW_FILES.length >= 8);
  assert.ok(stat.normalNr > 0 && stat.allZeroNr > 0 && stat.discardNr > 0 && stat.dataSize > 0);

  ok(json, 'show --json');
  const doc = JSON.parse(json.out);
  assert.is(doc.type, 'wdiff-show');
  assert.equal(doc.files.map((f: any) => f.format), ['sorted', 'indexed']);
  assert.is(doc.files[0].header.uuid, '6155d8abe6b5e87fcbb0703caa0b71c0');
  assert.is(doc.files[0].records.length, expected[0].split('\n').filter((l) => l.startsWith('wdiff_sorted_rec:')).length);
  assert.is(doc.files[1].records.length, doc.files[1].indexSuper.nRecords);
  assert.equal(doc.stat, statFromShow(expected.slice(0, 2)));
  const r0 = doc.files[0].records[0];
  assert.equal([r0.ioAddress, r0.ioBlocks, r0.kind, r0.compression], [1, 5, 'normal', 'snappy']);

  ok(addr, 'show --addr');
  const covering = (t: string) => t.split('\n').filter((l) => {
    const f = l.split('\t');
    return /^wdiff_\w+_rec:$/.test(f[0]) && Number(f[1]) <= 1600 && 1600 < Number(f[1]) + Number(f[2]);
  });
  const hits = [...covering(expected[0]), ...covering(expected[1])];
  assert.is(hits.length, 2);
  assert.is(hits[0], 'wdiff_sorted_rec:\t1582\t123\tnone\t134\t0\t00000000\t-D');
  assert.is(addr.out, hits.join('\n') + '\n');
});

const hasStrace = (() => { try { execFileSync('strace', ['-V'], { stdio: 'ignore' }); return true; } catch { return false; } })();

/** Run the bin under strace (opens and syncs traced); the trace's lines. */
async function straced(name: string, args: readonly string[]): Promise<string[]> {
  const trace = tmp(`${name}.strace`);
  const r = await new Promise<{ code: number | null; err: string }>((res, rej) => {
    const child = spawn('strace', ['-f', '-qq', '-e', 'trace=openat,fdatasync,fsync', '-o', trace, process.execPath, '--conditions=walb-source', '--import', 'tsx', BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d; });
    child.on('error', rej);
    child.on('close', (code) => res({ code, err }));
  });
  assert.is(r.code, 0, `${name}: ${r.err}`);
  return readFileSync(trace, 'utf8').split('\n');
}

(hasStrace ? test : test.skip)('from-wlog and merge sync their output file before they report success (as the original)', async () => {
  const c = wlogCase('w-pbs512-mixed');
  for (const [name, args] of [
    ['from-wlog', ['wdiff', 'from-wlog', vec(c.wlog), '-o', tmp('synced.wdiff')]],
    ['merge', ['wdiff', 'merge', vec(c.sortedWdiff), vec(c.sortedWdiff), '-o', tmp('synced-m.wdiff')]],
    ['virt-cat', ['wdiff', 'virt-cat', image('synced-base.img', c.deviceBytes), vec(c.sortedWdiff), '-o', tmp('synced-v.img')]],
  ] as const) {
    const lines = await straced(name, args);
    // The fd of the last open of the output (or of the temporary file renamed over it), then a
    // data sync of that fd.
    const out = args[args.length - 1];
    const temp = `"${join(dirname(out), `.${basename(out)}.`)}`;
    const fds = lines.filter((l) => (l.includes(`"${out}"`) || l.includes(temp)) && /= \d+$/.test(l)).map((l) => /= (\d+)$/.exec(l)![1]);
    assert.ok(fds.length > 0, `${name}: no open of ${out} traced`);
    assert.ok(lines.some((l) => new RegExp(`f(data)?sync\\(${fds[fds.length - 1]}\\) += 0`).test(l)), `${name}: no fdatasync of ${out}`);
  }
});

(hasStrace ? test : test.skip)('from-wlog and merge write their output file with direct IO unless --no-direct', async () => {
  const c = wlogCase('w-pbs512-mixed');
  for (const [name, args] of [
    ['from-wlog', ['wdiff', 'from-wlog', vec(c.wlog), '--indexed']],
    ['merge', ['wdiff', 'merge', vec(c.sortedWdiff), vec(c.sortedWdiff)]],
  ] as const) {
    const direct = tmp(`${name}-direct.wdiff`), buffered = tmp(`${name}-buffered.wdiff`);
    // The output is written under a temporary name beside it (.NAME.PID-N.part), renamed at the end.
    const opensDirect = (lines: string[], out: string) => lines.some((l) => l.includes(`"${join(dirname(out), `.${basename(out)}.`)}`) && l.includes('O_DIRECT'));
    assert.ok(opensDirect(await straced(`${name}-direct`, [...args, '-o', direct]), direct), `${name}: no O_DIRECT open of the output`);
    assert.not.ok(opensDirect(await straced(`${name}-buffered`, [...args, '--no-direct', '-o', buffered]), buffered), `${name} --no-direct: an O_DIRECT open`);
    assert.ok(readFileSync(direct).equals(readFileSync(buffered)), `${name}: direct and buffered outputs differ`);
  }
});

test('from-wlog (sorted and indexed), then apply, gives the images of the original', async () => {
  const c = wlogCase('w-pbs512-mixed');
  const sorted = tmp('mixed.sorted.wdiff');
  const indexed = tmp('mixed.indexed.wdiff');
  const [s, i] = await Promise.all([
    walb('wdiff', 'from-wlog', vec(c.wlog), '-o', sorted, '--json'),
    walb('wdiff', 'from-wlog', '--indexed', vec(c.wlog), '-o', indexed),
  ]);
  ok(s, 'from-wlog');
  ok(i, 'from-wlog --indexed');
  assert.is(i.out, '');
  assert.ok(readFileSync(sorted).equals(readFileSync(vec(c.sortedWdiff))), 'the sorted wdiff is byte-identical to wlog-to-wdiff\'s');
  const doc = JSON.parse(s.out);
  assert.is(doc.type, 'wdiff-from-wlog');
  assert.is(doc.format, 'sorted');
  assert.is(doc.bytes, statSync(sorted).size);
  assert.is(doc.uuid, '6155d8abe6b5e87fcbb0703caa0b71c0');
  assert.equal([doc.beginLsid, doc.endLsid], ['0', '6152']);

  const imgS = image('mixed-s.img', c.deviceBytes);
  const imgI = image('mixed-i.img', c.deviceBytes);
  const img55 = image('mixed-55.img', c.deviceBytes, 0x55);
  const imgF = image('mixed-f.img', c.deviceBytes);
  const [a, b, z, f] = await Promise.all([
    walb('wdiff', 'apply', sorted, imgS, '--json'),
    walb('wdiff', 'apply', indexed, imgI),
    walb('wdiff', 'apply', '--discard', 'zero', '--fsync-interval', '1M', sorted, img55),
    walb('wdiff', 'apply', '--fill-holes', sorted, imgF, '--json'),
  ]);
  ok(a, 'apply sorted');
  ok(b, 'apply indexed');
  ok(z, 'apply --discard zero');
  assert.is(b.out, '');
  assert.is(fileSha(imgS), c.imageSha256AfterSortedRedo);
  assert.is(fileSha(imgI), c.imageSha256AfterIndexedRedo);
  assert.is(fileSha(img55), c.imageSha256AfterSortedRedoDiscardAsZeroOn0x55);
  const ad = JSON.parse(a.out);
  assert.is(ad.type, 'wdiff-apply');
  assert.is(ad.discard, 'ignore');
  assert.is(ad.ios, doc.records);
  // The sparse image keeps its holes under the ALLZERO records; --fill-holes writes them too.
  ok(f, 'apply --fill-holes');
  const fd = JSON.parse(f.out);
  assert.ok(ad.zeroBytesInHoles > 0, 'zeros left as holes');
  assert.is(fd.zeroBytesInHoles, 0);
  assert.is(fd.bytesWritten, ad.bytesWritten + ad.zeroBytesInHoles);
  assert.is(fileSha(imgF), c.imageSha256AfterSortedRedo);
  assert.ok(statSync(imgF).blocks > statSync(imgS).blocks, '--fill-holes allocates them');
});

test('a lone - is stdin: from-wlog converts it, show reads a sorted wdiff from it, apply copies it first, the others refuse it', async () => {
  const c = wlogCase('w-pbs512-mixed');
  const out = tmp('stdin.sorted.wdiff');
  const spool = tmp('spool');
  mkdirSync(spool);
  const cut = tmp('stdin.cut.wdiff');
  writeFileSync(cut, readFileSync(vec(c.sortedWdiff)).subarray(0, 6000));
  const [s, i, showS, showI, m, a, v, f, bad] = await Promise.all([
    walbFrom(vec(c.wlog), 'wdiff', 'from-wlog', '-', '-o', out, '--json'),
    walbFrom(vec(c.wlog), 'wdiff', 'from-wlog', '--indexed', '-', '-o', '-'),
    walbFrom(vec(c.sortedWdiff), 'wdiff', 'show', '-'),
    walbFrom(vec(c.indexedWdiff), 'wdiff', 'show', '-'),
    walbFrom(vec(c.sortedWdiff), 'wdiff', 'merge', '-', vec(c.sortedWdiff), '-o', tmp('stdin.merged.wdiff')),
    walbFrom(vec(c.sortedWdiff), 'wdiff', 'apply', '--tmp-dir', spool, '-', image('stdin.img', c.deviceBytes), '--json'),
    walbFrom(vec(c.sortedWdiff), 'wdiff', 'virt-cat', image('stdin.base', 1 << 20), '-', '-o', tmp('stdin.virt')),
    walbFrom(vec(c.sortedWdiff), 'wdiff', 'from-image', '-', '-o', tmp('stdin.full.wdiff')),
    walbFrom(cut, 'wdiff', 'apply', '--tmp-dir', spool, '-', image('stdin.bad.img', c.deviceBytes)),
  ]);
  ok(s, 'from-wlog -');
  assert.ok(readFileSync(out).equals(readFileSync(vec(c.sortedWdiff))), 'stdin converts to the bytes wlog-to-wdiff wrote');
  const doc = JSON.parse(s.out);
  assert.is(doc.uuid, '6155d8abe6b5e87fcbb0703caa0b71c0');
  assert.equal([doc.beginLsid, doc.endLsid], ['0', '6152']);
  ok(i, 'from-wlog --indexed - -o -');
  // From a file the conversion leaves out what later IOs overwrite; read once from stdin it cannot:
  // other bytes, the same image once applied.
  const fromFile = await walb('wdiff', 'from-wlog', '--indexed', vec(c.wlog), '-o', '-');
  assert.ok(i.stdout.length > 0 && fromFile.stdout.length > 0 && fromFile.stdout.length <= i.stdout.length, 'the file conversion is no larger');
  writeFileSync(tmp('stdin.indexed.wdiff'), i.stdout);
  writeFileSync(tmp('file.indexed.wdiff'), fromFile.stdout);
  for (const d of ['stdin', 'file']) {
    ok(await walb('wdiff', 'apply', tmp(`${d}.indexed.wdiff`), image(`${d}.indexed.img`, c.deviceBytes)), `apply ${d}.indexed`);
    assert.is(fileSha(tmp(`${d}.indexed.img`)), c.imageSha256AfterIndexedRedo, `${d}: the image walb-tools made`);
  }
  ok(showS, 'show -');
  assert.is(showS.out, readFileSync(vec(`${c.sortedWdiff}.show.txt`), 'utf8'));
  assert.is(showI.code, 2, showI.err);
  assert.match(showI.err, /indexed wdiff cannot be read from stdin/);
  ok(a, 'apply -');
  assert.equal(JSON.parse(a.out).wdiffs, ['-']);
  assert.is(fileSha(tmp('stdin.img')), c.imageSha256AfterSortedRedo, 'stdin applies as the file does');
  assert.is(bad.code, 1, bad.err);
  assert.match(bad.err, /at <stdin>, offset/);
  assert.is(fileSha(tmp('stdin.bad.img')), sha256(Buffer.alloc(c.deviceBytes)), 'a truncated diff from stdin changes nothing');
  assert.equal(readdirSync(spool), [], 'the copies of stdin are gone');
  for (const [r, what] of [[m, 'a merge input'], [v, 'the base or a wdiff'], [f, 'an image']] as const) {
    assert.is(r.code, 2, r.err);
    assert.ok(r.err.includes(`${what} cannot be - (stdin)`), r.err);
  }
  assert.not.ok(existsSync(tmp('stdin.merged.wdiff')) || existsSync(tmp('stdin.virt')) || existsSync(tmp('stdin.full.wdiff')), 'nothing written');
});

test('show reads a pipe given by its path (as <(…) gives) as it reads stdin', async () => {
  const c = wlogCase('w-pbs512-mixed');
  const feed = (name: string, src: string): { path: string; done: Promise<void> } => {
    const path = tmp(name);
    execFileSync('mkfifo', [path]);
    // The writer blocks until show opens the pipe; a refused pipe is drained by nobody, so the
    // writer may end with EPIPE, which is fine.
    const child = spawn('sh', ['-c', 'cat "$0" > "$1"', src, path], { stdio: 'ignore' });
    return { path, done: new Promise((res) => child.on('close', () => res())) };
  };
  const sorted = feed('pipe.sorted', vec(c.sortedWdiff));
  const s = await walb('wdiff', 'show', sorted.path);
  await sorted.done;
  ok(s, 'show <pipe>');
  assert.is(s.out, readFileSync(vec(`${c.sortedWdiff}.show.txt`), 'utf8'));
  const indexed = feed('pipe.indexed', vec(c.indexedWdiff));
  const i = await walb('wdiff', 'show', indexed.path);
  // Open the pipe for writing if the writer has not yet, so a refused read never leaves it blocked.
  closeSync(openSync(indexed.path, 'r+'));
  await indexed.done;
  assert.is(i.code, 2, i.err);
  assert.match(i.err, /indexed wdiff cannot be read from a pipe/);
  // from-wlog reads a pipe as a stream: the bytes of the file conversion.
  const wlog = feed('pipe.wlog', vec(c.wlog));
  const conv = await walb('wdiff', 'from-wlog', wlog.path, '-o', tmp('pipe.conv.wdiff'));
  await wlog.done;
  ok(conv, 'from-wlog <pipe>');
  assert.ok(readFileSync(tmp('pipe.conv.wdiff')).equals(readFileSync(vec(c.sortedWdiff))), 'a piped wlog converts to the bytes wlog-to-wdiff wrote');
  // The commands that need files refuse a pipe before they read or write anything.
  for (const [args, what] of [
    [['wdiff', 'merge', 'PIPE', vec(c.sortedWdiff), '-o', tmp('pipe.merged.wdiff')], 'a merge input'],
    [['wdiff', 'apply', 'PIPE', image('pipe.img', c.deviceBytes)], 'a wdiff'],
    [['wdiff', 'virt-cat', image('pipe.base', 1 << 20), 'PIPE', '-o', tmp('pipe.virt')], 'the base or a wdiff'],
  ] as const) {
    const fifo = tmp(`pipe.refused.${what.replaceAll(' ', '-')}`);
    execFileSync('mkfifo', [fifo]);
    const r = await walb(...args.map((x) => (x === 'PIPE' ? fifo : x)));
    assert.is(r.code, 2, r.err);
    assert.ok(r.err.includes(`${what} cannot be a pipe or other stream (${fifo})`), r.err);
  }
  assert.not.ok(existsSync(tmp('pipe.merged.wdiff')) || existsSync(tmp('pipe.virt')), 'nothing written');
  assert.is(fileSha(tmp('pipe.img')), sha256(Buffer.alloc(c.deviceBytes)), 'the image is untouched');
});

test('merge of the chain, applied with discards as zeros, gives the image of the original', async () => {
  const merged = tmp('chain-merged.wdiff');
  const m = await walb('wdiff', 'merge', ...chainCase.wdiffs.map(vec), '-o', merged, '--json');
  ok(m, 'merge');
  const doc = JSON.parse(m.out);
  assert.is(doc.type, 'wdiff-merge');
  assert.is(doc.inputs, 3);
  assert.is(doc.bytes, statSync(merged).size);
  const img = image('chain.img', chainCase.deviceBytes);
  const a = await walb('wdiff', 'apply', '--discard', 'zero', merged, img);
  ok(a, 'apply merged');
  assert.is(fileSha(img), chainCase.imageSha256AfterMergedRedoDiscardAsZero);
});

test('virt-cat of the base and the chain gives the virtual full image of the original', async () => {
  const out = tmp('virt.img');
  const [toStdout, toFile] = await Promise.all([
    walb('wdiff', 'virt-cat', base(), ...virtCase.wdiffs.map(vec), '-o', '-', '--json'),
    walb('wdiff', 'virt-cat', '--no-verify', base(), ...virtCase.wdiffs.map(vec), '-o', out),
  ]);
  ok(toStdout, 'virt-cat -o -');
  ok(toFile, 'virt-cat -o FILE');
  assert.is(sha256(toStdout.stdout), virtCase.virtFullSha256);
  assert.is(fileSha(out), virtCase.virtFullSha256);
  const doc = JSON.parse(toStdout.err);
  assert.is(doc.type, 'wdiff-virt-cat');
  assert.is(doc.bytes, toStdout.stdout.length);
});

test('an output that cannot be written: exit 1, the message and --json name the file and the system code', async () => {
  // The "full" device refuses every write with ENOSPC, as a full file system does. A node of our
  // own when we may make one, so a regression that deletes its output spares the system's.
  let full = tmp('full');
  try { execFileSync('mknod', ['-m', '666', full, 'c', '1', '7'], { stdio: 'ignore' }); } catch { full = '/dev/full'; }
  const [text, json] = await Promise.all([
    walb('wdiff', 'virt-cat', base(), ...virtCase.wdiffs.map(vec), '-o', full),
    walb('wdiff', 'from-wlog', vec('w-pbs512-mixed.wlog'), '-o', full, '--json'),
  ]);
  const where = new RegExp(`^write ${full.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} at byte \\d+: ENOSPC`);
  assert.is(text.code, 1, text.err);
  assert.match(text.err.replace(/^walb: /, ''), where);
  assert.is(json.code, 1, json.err);
  const doc = JSON.parse(json.err);
  assert.is(doc.code, 'ENOSPC');
  assert.is(doc.source, full);
  assert.match(doc.message, where);
  // A failed run removes a partial regular file it wrote, never a device given as the output.
  assert.ok(statSync(full).isCharacterDevice(), `${full} was removed`);
});

test('from-image reproduces the image; --compare gives the diff from the older one', async () => {
  // The newer image: the base with some blocks rewritten, a zeroed range and a changed last block.
  const older = base();
  const size = statSync(older).size;
  const bytes = Buffer.from(readFileSync(older));
  for (let k = 0; k < 20; k++) bytes.fill((k * 37 + 1) & 0xff, (k * 97 + 3) * 4096, (k * 97 + 3) * 4096 + 1536);
  bytes.fill(0, 3 << 20, (3 << 20) + (200 << 10));
  bytes.fill(0xab, size - 512);
  const newer = tmp('newer.img');
  writeFileSync(newer, bytes);
  const full = tmp('full.wdiff');
  const cmp = tmp('cmp.wdiff');
  const [f, c] = await Promise.all([
    walb('wdiff', 'from-image', newer, '-o', full, '--indexed', '--cmpr', 'zstd:3'),
    walb('wdiff', 'from-image', newer, '--compare', older, '-o', cmp, '--io-size', '4K', '--json'),
  ]);
  ok(f, 'from-image');
  ok(c, 'from-image --compare');
  const doc = JSON.parse(c.out);
  assert.is(doc.type, 'wdiff-from-image');
  assert.is(doc.older, older);
  assert.ok(doc.records > 0 && doc.records <= 20 + 50 + 1, `only what changed: ${doc.records} records`);
  const zero = image('from-image-zero.img', size);
  const old = tmp('from-image-older.img');
  writeFileSync(old, readFileSync(older));
  const [a, b] = await Promise.all([walb('wdiff', 'apply', full, zero), walb('wdiff', 'apply', cmp, old)]);
  ok(a, 'apply full');
  ok(b, 'apply compared');
  const want = sha256(bytes);
  assert.is(fileSha(zero), want);
  assert.is(fileSha(old), want);
});

test('a corrupted wdiff: apply exits 1 naming the offset and leaves the image as it was', async () => {
  const c = wlogCase('w-pbs512-mixed');
  // Flip a byte of the first record's data: file header 32 bytes + one 4 KiB pack header.
  const sortedBytes = Buffer.from(readFileSync(vec(c.sortedWdiff)));
  sortedBytes[32 + 4096 + 10] ^= 0xff;
  const badSorted = tmp('bad.sorted.wdiff');
  writeFileSync(badSorted, sortedBytes);
  // And a byte of an indexed file's first image (the first record's data_offset).
  const shown = readFileSync(vec(`${c.indexedWdiff}.show.txt`), 'utf8');
  const firstImage = Number(shown.split('\n').find((l) => l.startsWith('wdiff_indexed_rec:'))!.split('\t')[4]);
  const indexedBytes = Buffer.from(readFileSync(vec(c.indexedWdiff)));
  indexedBytes[firstImage + 3] ^= 0xff;
  const badIndexed = tmp('bad.indexed.wdiff');
  writeFileSync(badIndexed, indexedBytes);

  // A record whose checksum is right but whose stored bytes are not snappy (written as stored).
  const garbage = tmp('bad.codec.wdiff');
  const stored = Buffer.from('not a snappy block, whatever its checksum says'.repeat(2));
  const w = await SortedDiffWriter.create(garbage, { cmpr: parseCompressOpt('snappy') });
  await w.write({ addr: 8, blocks: 8, kind: 'normal', data: { image: { stored, cmpr: 2, blocks: 8, checksum: checksum(stored, 0) }, offsetLb: 0 } });
  await w.close();

  const img = image('bad-target.img', c.deviceBytes, 0x55);
  const before = fileSha(img);
  const [text, json, idx, csum, plain, codecShow, codecApply] = await Promise.all([
    walb('wdiff', 'apply', badSorted, img),
    walb('wdiff', 'apply', '--json', vec(c.sortedWdiff), badSorted, img),
    walb('wdiff', 'apply', badIndexed, img),
    walb('wdiff', 'show', '--csum', badSorted),
    walb('wdiff', 'show', badSorted),
    walb('wdiff', 'show', '--csum', '--json', garbage),
    walb('wdiff', 'apply', '--json', garbage, img),
  ]);
  assert.is(text.code, 1, text.err);
  assert.match(text.err, /^walb: wdiff record data checksum/);
  assert.match(text.err, /offset 4128\b/);
  assert.is(json.code, 1);
  const e = JSON.parse(json.err);
  assert.equal([e.type, e.code, e.offset, e.source], ['error', 'ERR_WDIFF_CHECKSUM', '4128', badSorted]);
  assert.is(idx.code, 1, idx.err);
  assert.match(idx.err, new RegExp(`image checksum.*offset ${firstImage}\\b`));
  assert.is(fileSha(img), before, 'the image is unchanged');
  // show --csum stops at the bad record (what came before is printed); without it the data is not checked.
  assert.is(csum.code, 1);
  assert.match(csum.err, /offset 4128\b/);
  assert.ok(csum.out.startsWith('wdiff_h:\n'));
  ok(plain, 'show without --csum');
  assert.is(plain.out, readFileSync(vec(`${c.sortedWdiff}.show.txt`), 'utf8'));
  // Data that does not decompress: a codec error, located by show --csum.
  assert.is(codecShow.code, 1);
  const ce = JSON.parse(codecShow.err);
  assert.equal([ce.code, ce.offset, ce.source], ['ERR_WDIFF_CODEC', '4128', garbage]);
  assert.is(codecApply.code, 1);
  assert.is(JSON.parse(codecApply.err).code, 'ERR_WDIFF_CODEC');
  assert.is(fileSha(img), before, 'the image is still unchanged');
});

test('a corrupted wlog: from-wlog exits 1 and leaves no output behind', async () => {
  const bytes = Buffer.from(readFileSync(vec('w-pbs512-mixed.wlog')));
  bytes[bytes.length >> 1] ^= 0xff;
  const bad = tmp('bad.wlog');
  writeFileSync(bad, bytes);
  const out = tmp('never.wdiff');
  const r = await walb('wdiff', 'from-wlog', '--indexed', bad, '-o', out, '--json');
  assert.is(r.code, 1);
  assert.match(JSON.parse(r.err).code, /^ERR_WALB_/);
  assert.not.ok(existsSync(out));
});

test('usage errors exit 2', async () => {
  const w = vec('w-chain-0.wdiff');
  const img = image('usage.img', 1 << 20);
  const cases = await Promise.all([
    walb('wdiff', 'apply', '--discard', 'trim', w, img),
    walb('wdiff', 'apply', w),
    walb('wdiff', 'merge', w, '--cmpr', 'zip', '-o', tmp('never-1.wdiff')),
    walb('wdiff', 'from-wlog', vec('w-chain-0.wlog'), '--max-io', '1000', '-o', tmp('never-2.wdiff')),
    walb('wdiff', 'from-image', img, '--io-size', '100', '-o', tmp('never-3.wdiff')),
    walb('wdiff', 'merge', w, '-o', w),
    walb('wdiff', 'show'),
  ]);
  for (const r of cases) {
    assert.is(r.code, 2, `exit ${r.code}, stderr ${r.err}`);
    assert.is(r.out, '');
  }
  assert.match(cases[0].err, /Choices: "ignore", "zero", "punch"/);
  assert.match(cases[2].err, /invalid --cmpr "zip"/);
  assert.match(cases[5].err, /is also an input/);
  for (const n of [1, 2, 3]) assert.not.ok(existsSync(tmp(`never-${n}.wdiff`)));
});

test('an output that is another name (a hard link) for an input is refused, the input untouched', async () => {
  const base = image('linked-base.img', 1 << 20);
  writeFileSync(base, Buffer.alloc(1 << 20, 0x5c));
  const link = tmp('linked-out.img');
  linkSync(base, link);
  const w = tmp('linked.wdiff');
  copyFileSync(vec('w-chain-0.wdiff'), w);
  const w2 = tmp('linked-2.wdiff');
  linkSync(w, w2);
  const cases = await Promise.all([
    walb('wdiff', 'virt-cat', base, vec('w-chain-0.wdiff'), '-o', link),
    walb('wdiff', 'merge', w, '-o', w2),
    walb('wdiff', 'apply', w, w2),
  ]);
  for (const r of cases) {
    assert.is(r.code, 2, `exit ${r.code}, stderr ${r.err}`);
    assert.match(r.err, /same file as the input/);
  }
  assert.ok(readFileSync(base).every((b) => b === 0x5c), 'the base was not written');
  assert.equal(readFileSync(w), readFileSync(vec('w-chain-0.wdiff')));
});

test('virt-cat that fails after writing part of its output leaves an earlier file of that name whole', async () => {
  // A record far into a 64 MiB base whose stored bytes are not snappy: with --no-verify the image
  // is streamed up to it before the error (the output was written in place and then removed).
  const bad = tmp('late-bad.wdiff');
  const stored = Buffer.from('not a snappy block, whatever its checksum says'.repeat(2));
  const w = await SortedDiffWriter.create(bad, { cmpr: parseCompressOpt('snappy') });
  await w.write({ addr: 120_000, blocks: 8, kind: 'normal', data: { image: { stored, cmpr: 2, blocks: 8, checksum: checksum(stored, 0) }, offsetLb: 0 } });
  await w.close();
  const base = image('late-bad-base.img', 64 << 20);
  const out = tmp('late-bad-out.img');
  writeFileSync(out, 'OLD');
  const r = await walb('wdiff', 'virt-cat', '--no-verify', base, bad, '-o', out);
  assert.is(r.code, 1, r.err);
  assert.is(readFileSync(out, 'utf8'), 'OLD');
  assert.equal(readdirSync(TMP).filter((f) => f.startsWith('.late-bad-out.img.')), [], 'a temporary file was left');
});

test('outputs to a pipe and to /dev/null: the same bytes as to a file (merge hung on a pipe, the others failed)', async () => {
  const w = vec('w-chain-0.wdiff'), wlog = vec('w-chain-0.wlog');
  const img = image('piped-src.img', 1 << 20);
  const runs: Array<[string, string[]]> = [
    ['merge', ['wdiff', 'merge', w]],
    ['merge-zstd', ['wdiff', 'merge', '--cmpr', 'zstd', w]],
    ['from-wlog', ['wdiff', 'from-wlog', wlog]],
    ['from-wlog-indexed', ['wdiff', 'from-wlog', '--indexed', wlog]],
    ['from-image', ['wdiff', 'from-image', img]],
  ];
  for (const [name, args] of runs) {
    const file = tmp(`piped-${name}.wdiff`);
    assert.is((await walb(...args, '-o', file)).code, 0, name);
    const nul = await walb(...args, '-o', '/dev/null', '--json');
    assert.is(nul.code, 0, `${name} to /dev/null: ${nul.err}`);
    const fifo = tmp(`piped-${name}.fifo`);
    execFileSync('mkfifo', [fifo]);
    const got: Buffer[] = [];
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
    reader.stdout!.on('data', (d: Buffer) => got.push(d));
    const readerDone = new Promise((res) => reader.on('close', res));
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([walb(...args, '-o', fifo, '--json'), new Promise<never>((_, rej) => { timer = setTimeout(() => { reader.kill(); rej(new Error(`${name} to a pipe did not end in 30 s`)); }, 30_000); })])
      .finally(() => clearTimeout(timer));
    // The reader ends at the writer's close, once it has read everything.
    await readerDone;
    assert.is(r.code, 0, `${name} to a pipe: ${r.err}`);
    assert.ok(Buffer.concat(got).equals(readFileSync(file)), `${name}: the pipe got ${Buffer.concat(got).length} bytes, not the file's ${statSync(file).size}`);
    assert.is(JSON.parse(r.out).bytes, statSync(file).size);
  }
});

test('--help exits 0 for every wdiff command', async () => {
  const words = [[], ['show'], ['from-wlog'], ['merge'], ['apply'], ['virt-cat'], ['from-image']];
  await Promise.all(words.map(async (w) => {
    const r = await walb('wdiff', ...w, '--help');
    const what = ['walb', 'wdiff', ...w].join(' ');
    ok(r, `${what} --help`);
    assert.ok(r.out.startsWith(what), `${what} --help prints its usage:\n${r.out}`);
    assert.match(r.out, /--json/);
    assert.is(r.err, '');
  }));
});

test.run();
