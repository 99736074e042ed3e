// The crate's own unit tests (`cargo test`): the checksum's lanes and the write-buffer pool's
// bounds, which the JavaScript side cannot reach. Skipped where cargo is missing (a prebuilt addon).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const manifest = fileURLToPath(new URL('../native/Cargo.toml', import.meta.url));
const hasCargo = spawnSync('cargo', ['--version']).status === 0;

const R = suite('rust unit tests');
R('cargo test passes', () => {
  if (!hasCargo) { console.log('  (cargo not found: skipped)'); return; }
  const r = spawnSync('cargo', ['test', '--release', '--offline', '--manifest-path', manifest], { encoding: 'utf8', timeout: 300_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.is(r.status, 0, out.slice(-4000));
  const m = /test result: ok\. (\d+) passed; 0 failed/.exec(out);
  assert.ok(m && Number(m[1]) >= 4, out.slice(-2000));
});
R.run();
