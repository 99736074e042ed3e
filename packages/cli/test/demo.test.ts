// `walb demo` as a user runs it (a real process, from source): every check passes, in the
// file-system mode where the machine allows it and in the block mode everywhere.
import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { filesystemSupport } from '../src/demo/fs-workload.ts';

const run = promisify(execFile);
const PKG = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const D = suite('walb demo');

async function demo(mode: string): Promise<{ ok: boolean; mode: string; checks: Array<{ name: string; ok: boolean }>; snapshots: unknown[] }> {
  const { stdout } = await run(process.execPath, ['--conditions=walb-source', '--import', 'tsx', join(PKG, 'src/bin/walb.ts'), 'demo', '--json', '--mode', mode, '--size', '128M', '--log-size', '64M'], { timeout: 300_000, maxBuffer: 1 << 24 });
  return JSON.parse(stdout);
}

D('block mode: restores equal the device at both snapshots', async () => {
  const r = await demo('block');
  assert.is((r as { type?: string }).type, 'demo');
  assert.is(r.mode, 'block');
  assert.ok(r.ok, JSON.stringify(r.checks));
  assert.is(r.snapshots.length, 2);
  assert.ok(r.checks.filter((c) => /equals the device/.test(c.name)).length === 2);
});

const fs = await filesystemSupport();
if (fs.ok) {
  D('file-system mode: ext4 restored images hold the same files', async () => {
    const r = await demo('filesystem');
    assert.is(r.mode, 'filesystem');
    assert.ok(r.ok, JSON.stringify(r.checks));
    assert.ok(r.checks.filter((c) => /^files of restored/.test(c.name) && c.ok).length === 2);
  });
} else {
  console.log(`  walb demo: file-system mode not tested here: ${fs.why}`);
}

D.run();
