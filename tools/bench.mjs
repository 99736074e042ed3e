#!/usr/bin/env node
// Runs every package's benchmarks (packages/*/bench/*.bench.ts), each in its own process, and prints
// one table. A benchmark prints result rows as lines `BENCH {json}` with the fields
// {name, value, unit, reference?, refValue?, ratio?, goal?, note?}.
//
// usage: node tools/bench.mjs [filter...]
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
const files = [];
for (const pkg of readdirSync(join(root, 'packages')).sort()) {
  const d = join(root, 'packages', pkg, 'bench');
  if (!existsSync(d)) continue;
  for (const f of readdirSync(d).sort()) if (/\.bench\.(ts|mjs)$/.test(f)) files.push(join(d, f));
}
const chosen = files.filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (chosen.length === 0) { console.log('no benchmarks found'); process.exit(1); }

const rows = [];
let failures = 0;
for (const file of chosen) {
  const rel = relative(root, file);
  process.stderr.write(`running ${rel} …\n`);
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', '--expose-gc', file], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('BENCH ')) rows.push({ file: rel, ...JSON.parse(line.slice(6)) });
        else process.stderr.write(line + '\n');
      }
    });
    child.on('close', resolve);
  });
  if (code !== 0) { failures++; process.stderr.write(`${rel} exited with ${code}\n`); }
}

const fmt = (v) => (typeof v === 'number' ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)) : (v ?? ''));
const header = ['benchmark', 'value', 'unit', 'reference', 'ratio', 'goal'];
const table = rows.map((r) => [r.name, fmt(r.value), r.unit ?? '', r.reference ? `${r.reference}${r.refValue !== undefined ? ` (${fmt(r.refValue)})` : ''}` : '', r.ratio !== undefined ? `${fmt(r.ratio)}×` : '', r.goal ?? '']);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => String(t[i]).length)));
const line = (cells) => '| ' + cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ') + ' |';
console.log(line(header));
console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
for (const t of table) console.log(line(t));
for (const r of rows.filter((x) => x.note)) console.log(`* ${r.name}: ${r.note}`);
process.exit(failures ? 1 : 0);
