// The bins as a user runs them: the built files (`pnpm build`), which carry yargs and cli-progress
// inside and load the walbjs packages and every codec's npm package from where they are
// installed. Every other test runs the sources through tsx.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const PKG = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const VEC = resolve(PKG, '../../../shared/vectors/walb-tools-1.0.19');
const pkg = JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
const TMP = mkdtempSync(join(tmpdir(), 'walbjs-built-bins-'));

function bin(name: string, args: string[]): { code: number | null; out: string; err: string } {
  const path = join(PKG, pkg.bin[name]);
  assert.ok(existsSync(path), `${path} is missing: run pnpm build first`);
  const r = spawnSync(process.execPath, [path, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('every bin starts: --version and --help', () => {
  for (const name of Object.keys(pkg.bin)) {
    const v = bin(name, ['--version']);
    assert.is(v.code, 0, `${name} --version: ${v.err}`);
    assert.is(v.out.trim(), pkg.version, name);
    const h = bin(name, ['--help']);
    assert.is(h.code, 0, `${name} --help: ${h.err}`);
    assert.ok(h.out.includes(name), `${name} --help names it:\n${h.out}`);
  }
  const u = bin('walb', ['wdiff', 'no-such-command']);
  assert.is(u.code, 2);
  assert.match(u.err, /Unknown/);
});

test('walb converts a walb-tools log with every codec and applies it to the image walb-tools made', () => {
  const manifest = JSON.parse(readFileSync(join(VEC, 'manifest.json'), 'utf8')) as { cases: Array<{ kind: string; name: string; wlog: string; deviceBytes: number; imageSha256AfterSortedRedo: string }> };
  const c = manifest.cases.find((x) => x.kind === 'wlog' && x.name === 'w-pbs512-mixed')!;
  for (const cmpr of ['none', 'gzip', 'snappy', 'lzma', 'lz4', 'zstd']) {
    const wdiff = join(TMP, `${cmpr}.wdiff`), img = join(TMP, `${cmpr}.img`);
    const conv = bin('walb', ['wdiff', 'from-wlog', '--indexed', '--cmpr', cmpr, join(VEC, c.wlog), '-o', wdiff, '--json']);
    assert.is(conv.code, 0, `${cmpr}: ${conv.err}`);
    writeFileSync(img, '');
    truncateSync(img, c.deviceBytes);
    const apply = bin('walb', ['wdiff', 'apply', wdiff, img]);
    assert.is(apply.code, 0, `${cmpr} apply: ${apply.err}`);
    assert.is(createHash('sha256').update(readFileSync(img)).digest('hex'), c.imageSha256AfterSortedRedo, cmpr);
  }
});

test('walb draws its progress bar on a terminal', () => {
  // script(1) gives the command a pseudo-terminal: the bar's module (CommonJS, bundled) asks for
  // node's own modules as it loads.
  const out = join(TMP, 'tty.wdiff');
  const cmd = [process.execPath, join(PKG, pkg.bin.walb), 'wdiff', 'from-wlog', join(VEC, 'w-pbs512-mixed.wlog'), '-o', out].map((a) => `'${a}'`).join(' ');
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8' });
  assert.is(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /converting/);
  assert.match(r.stdout, /converted: \d+ IOs/);
});

test.after(() => rmSync(TMP, { recursive: true, force: true }));
test.run();
