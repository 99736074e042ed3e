// A wlog file cut while `walb wdiff from-wlog` converts it: the conversion reads the log through
// mappings of it (native-walb), where a page past the new end would raise SIGBUS. The real CLI,
// a real file cut by another process while the walks run: a typed error, no signal, no output.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeGeneratedWlog } from '@walbjs/log-format';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '../../..');
const BIN = join(here, '../src/bin/walb.ts');
const TMP = mkdtempSync(join(tmpdir(), 'walbjs-wlog-cut-test-'));
const tmp = (name: string) => join(TMP, name);
test.after(() => rmSync(TMP, { recursive: true, force: true }));

interface Outcome { code: number | null; signal: NodeJS.Signals | null; err: string; cutAfterMs: number }

/**
 * Convert `wlog` to `out` (indexed) with the real CLI, and cut the log to `cutTo` bytes `delayMs`
 * after the output's temporary file appears (the look at the headers is done then, and the walks
 * over the data begin).
 */
function convertWhileCut(wlog: string, out: string, cutTo: number, delayMs: number): Promise<Outcome> {
  return new Promise((res, rej) => {
    const started = Date.now();
    let cutAt = -1;
    const w = watch(TMP, (_ev, name) => {
      if (cutAt >= 0 || !name?.startsWith('.out-')) return;
      cutAt = 0;
      setTimeout(() => { truncateSync(wlog, cutTo); cutAt = Date.now() - started; }, delayMs);
    });
    const c = spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', BIN, 'wdiff', 'from-wlog', '--indexed', wlog, '-o', out], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    const err: Buffer[] = [];
    c.stderr!.on('data', (d: Buffer) => err.push(d));
    c.on('error', rej);
    c.on('close', (code, signal) => { w.close(); res({ code, signal, err: Buffer.concat(err).toString(), cutAfterMs: cutAt }); });
  });
}

test('a wlog cut while it is converted: a typed error naming it, no signal, no output left', async () => {
  const master = tmp('master.wlog');
  // Compressible data in IOs of 4 KiB to 256 KiB: a few hundred MiB walk in a few dozen stretches.
  await writeGeneratedWlog(master, { seed: 11, pbs: 4096, totalBytes: 320 << 20, deviceBytes: 1 << 30, minIoBytes: 4096, maxIoBytes: 256 << 10, discard: false, padding: false, allZero: false, randomData: false });
  let cutInside = 0;
  for (const delayMs of [2, 8, 20, 40]) {
    const wlog = tmp(`cut-${delayMs}.wlog`), out = tmp(`out-${delayMs}.wdiff`);
    copyFileSync(master, wlog);
    readFileSync(wlog);
    // Cut a few MiB in: past it, every stretch the walks map loses its pages.
    const r = await convertWhileCut(wlog, out, (3 << 20) + 512, delayMs);
    assert.is(r.signal, null, `killed by ${r.signal} (cut ${r.cutAfterMs} ms in): ${r.err}`);
    if (r.code === 0) continue; // the conversion ended before the cut
    cutInside++;
    assert.is(r.code, 1, r.err);
    assert.match(r.err, wlog);
    assert.match(r.err, /the file shrank from \d+ to 3146240 bytes while it was read: .*input ended/);
    assert.not.match(r.err, /\n\s+at /, 'a stack trace');
    assert.ok(!existsSync(out), 'an output of the part before the cut');
    rmSync(wlog);
  }
  // At least one cut fell inside the walks (each attempt gives the walks 2 to 40 ms' head start).
  assert.ok(cutInside > 0, 'every conversion ended before its cut');
  assert.equal(readdirSync(TMP).filter((n) => n.includes('.part')), []);
});

test.run();
