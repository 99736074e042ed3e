#!/usr/bin/env node
// Runs every test file of the workspace, each in its own Node process (so a file that fails to load
// or crashes is counted, not lost), and ends with one line: "N passed, N failed".
//
// usage: node tools/test.mjs [filter...]   (a filter is a substring of the test file path)
import { spawn } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cpus } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function testFiles() {
  const out = [];
  for (const group of ['packages', 'examples']) {
    const gdir = join(root, group);
    if (!existsSync(gdir)) continue;
    for (const pkg of readdirSync(gdir)) {
      const tdir = join(gdir, pkg, 'test');
      if (!existsSync(tdir) || !statSync(tdir).isDirectory()) continue;
      const walk = (d) => {
        for (const f of readdirSync(d).sort()) {
          const p = join(d, f);
          if (statSync(p).isDirectory()) walk(p);
          else if (/\.test\.(ts|mjs|js)$/.test(f)) out.push(p);
        }
      };
      walk(tdir);
    }
  }
  return out.filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
}

const strip = (s) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', file], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (d) => { text += d; });
    child.stderr.on('data', (d) => { text += d; });
    const timeoutMs = Number(process.env.WALB_TEST_TIMEOUT_MS ?? 20 * 60_000);
    const timer = setTimeout(() => { text += `\n[test runner] timed out after ${timeoutMs} ms, killed\n`; child.kill('SIGKILL'); }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const clean = strip(text);
      const num = (label) => {
        const m = [...clean.matchAll(new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'gm'))];
        return m.length ? Number(m[m.length - 1][1]) : undefined;
      };
      const total = num('Total');
      const passed = num('Passed');
      const skipped = num('Skipped') ?? 0;
      let failed;
      let note = '';
      if (total === undefined || passed === undefined) {
        failed = 1;
        note = 'no summary: the file failed to load or crashed';
      } else {
        failed = total - passed;
        if (total === 0 && skipped === 0) { failed = 1; note = 'the file ran no tests'; }
        else if (total === 0) note = `${skipped} skipped`;
        else if (code !== 0 && failed === 0) { failed = 1; note = `exited with ${signal ?? code} after its tests`; }
      }
      resolve({ file, passed: passed ?? 0, failed, text: clean, note, ms: Date.now() - started, code });
    });
  });
}

// Every package and every example with a tsconfig.json is also type-checked (sources, tests and
// benchmarks), one test per package or example.
function typecheckTargets() {
  const out = [];
  for (const group of ['packages', 'examples']) {
    const gdir = join(root, group);
    if (!existsSync(gdir)) continue;
    for (const pkg of readdirSync(gdir).sort()) {
      const cfg = join(gdir, pkg, 'tsconfig.json');
      if (existsSync(cfg)) out.push(cfg);
    }
  }
  return out.filter((f) => filters.length === 0 || filters.some((s) => f.includes(s) || 'typecheck'.includes(s)));
}

function runTypecheck(cfg) {
  return new Promise((resolve) => {
    const started = Date.now();
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const child = spawn(process.execPath, [tsc, '-p', cfg, '--noEmit', '--pretty', 'false'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d) => { text += d; });
    child.stderr.on('data', (d) => { text += d; });
    child.on('close', (code) => {
      const ok = code === 0;
      resolve({ file: cfg, passed: ok ? 1 : 0, failed: ok ? 0 : 1, text, note: ok ? '' : 'type errors', ms: Date.now() - started, code });
    });
  });
}

const files = testFiles();
if (files.length === 0 && typecheckTargets().length === 0) {
  console.log('no test files found');
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const jobs = Math.max(1, Number(process.env.WALB_TEST_JOBS ?? Math.min(2, cpus().length)));
const tasks = [...typecheckTargets().map((f) => () => runTypecheck(f)), ...files.map((f) => () => runFile(f))];
let next = 0;
let passed = 0;
let failed = 0;
const results = [];
async function worker() {
  while (next < tasks.length) {
    const r = await tasks[next++]();
    results.push(r);
    passed += r.passed;
    failed += r.failed;
    const rel = relative(root, r.file) + (r.file.endsWith('tsconfig.json') ? ' (typecheck)' : '');
    const status = r.failed ? 'FAIL' : 'ok  ';
    process.stdout.write(`\n── ${status} ${rel}  (${r.passed} passed, ${r.failed} failed, ${(r.ms / 1000).toFixed(1)} s)\n`);
    if (r.failed || process.env.WALB_TEST_VERBOSE) process.stdout.write(r.text.trimEnd() + '\n');
    if (r.note) process.stdout.write(`   ${r.note}\n`);
  }
}
await Promise.all(Array.from({ length: jobs }, worker));
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
