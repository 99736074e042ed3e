// A wdiff written to a path appears there only once it is complete: a failure (a corrupt input
// found halfway) or an exit before the end leaves the path as it was, with no temporary file
// beside it and no file descriptor left open; a success replaces an earlier file whole, keeping
// its mode, and writes through a symbolic link to its target.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { ChecksumError, convertWlogs, imageToWdiff, mergeWdiffs, openWdiff } from '../src/index.ts';
import { makeImage, tempDir, vec } from './helpers.ts';

const t = tempDir();
process.on('exit', () => t.cleanup());
const P = suite('output place');

const EARLIER = Buffer.from('an earlier file that must survive a failed run\n');
const openFds = () => readdirSync('/proc/self/fd').length;
const leftovers = () => readdirSync(t.dir).filter((f) => f.endsWith('.part'));

/** A copy of vector `name` with one byte flipped at `at` (a fraction of its size). */
function corrupt(name: string, at: number): string {
  const b = readFileSync(vec(name));
  const p = join(t.dir, `bad-${name}`);
  b[Math.floor(b.length * at)] ^= 0x10;
  writeFileSync(p, b);
  return p;
}

async function failsWithChecksum(fn: () => Promise<unknown>): Promise<void> {
  try { await fn(); } catch (e) { assert.instance(e, ChecksumError); return; }
  assert.unreachable('did not throw');
}

P('a merge that meets a corrupt input leaves an earlier file whole, nothing beside it, no descriptor open', async () => {
  const bad = corrupt('w-chain-1.wdiff', 0.7);
  const fds = openFds();
  for (const indexed of [false, true]) {
    const out = join(t.dir, `merged-${indexed}.wdiff`);
    writeFileSync(out, EARLIER);
    await failsWithChecksum(() => mergeWdiffs([vec('w-chain-0.wdiff'), bad], out, { indexed }));
    assert.ok(readFileSync(out).equals(EARLIER), `indexed=${indexed}: the earlier file changed`);
  }
  assert.equal(leftovers(), []);
  assert.is(openFds(), fds);
});

P('a conversion of a corrupt log leaves no complete-looking diff of part of it', async () => {
  const bad = corrupt('w-chain-0.wlog', 0.8);
  for (const indexed of [false, true]) {
    const out = join(t.dir, `conv-${indexed}.wdiff`);
    writeFileSync(out, EARLIER);
    try { await convertWlogs([bad], out, { indexed }); assert.unreachable('did not throw'); } catch (e) { assert.instance(e, Error); }
    assert.ok(readFileSync(out).equals(EARLIER), `indexed=${indexed}: the earlier file changed`);
    // From a stream too (read once, no check before writing).
    try { await convertWlogs([readFileSync(bad)], out, { indexed }); assert.unreachable('did not throw'); } catch (e) { assert.instance(e, Error); }
    assert.ok(readFileSync(out).equals(EARLIER), `indexed=${indexed}, stream: the earlier file changed`);
  }
  assert.equal(leftovers(), []);
});

P('a success replaces an earlier file whole and keeps its mode; a symbolic link keeps pointing at the new file', async () => {
  const out = join(t.dir, 'replaced.wdiff');
  writeFileSync(out, Buffer.alloc(10 << 20, 7));
  chmodSync(out, 0o600);
  await mergeWdiffs([vec('w-chain-0.wdiff'), vec('w-chain-1.wdiff')], out);
  assert.is(statSync(out).mode & 0o777, 0o600);
  const d = await openWdiff(out);
  await d.close();
  assert.ok(statSync(out).size < 10 << 20, 'the earlier bytes are gone, not overwritten in part');

  const target = join(t.dir, 'target.wdiff'), link = join(t.dir, 'link.wdiff');
  writeFileSync(target, EARLIER);
  symlinkSync(target, link);
  await imageToWdiff(makeImage(t.dir, 'img', 1 << 20, 0x5a), link);
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.is(readlinkSync(link), target);
  assert.ok(!readFileSync(target).equals(EARLIER));
  assert.equal(leftovers(), []);
});

P('a device is written in place', async () => {
  await mergeWdiffs([vec('w-chain-0.wdiff')], '/dev/null');
  assert.ok(statSync('/dev/null').isCharacterDevice());
});

P('a process that exits before the end leaves neither the output nor its temporary file', () => {
  const out = join(t.dir, 'exited.wdiff');
  const script = join(t.dir, 'exit-run.mts');
  writeFileSync(script, `import { imageToWdiff } from ${JSON.stringify(fileURLToPath(new URL('../src/index.ts', import.meta.url)))};
await imageToWdiff(process.argv[2], process.argv[3], { ioBytes: 4096, onProgress: () => process.exit(3) });
`);
  const img = makeImage(t.dir, 'big-img', 16 << 20, 0x33);
  const r = spawnSync(process.execPath, ['--conditions=walb-source', '--import', 'tsx', script, img, out], { encoding: 'utf8' });
  assert.is(r.status, 3, r.stderr);
  assert.equal(readdirSync(t.dir).filter((f) => f.includes('exited')), []);
});

(process.getuid?.() === 0 ? P : P.skip)('a writable file in a folder this process may not write in is written in place', async () => {
  // As another user (root may write anywhere): the folder is read-only, the file is not.
  const dir = join(t.dir, 'ro');
  mkdirSync(dir, { mode: 0o777 });
  const out = join(dir, 'x.wdiff');
  writeFileSync(out, EARLIER);
  chmodSync(out, 0o666);
  chmodSync(dir, 0o555);
  chmodSync(t.dir, 0o755);
  const script = join(t.dir, 'ro-run.mts');
  writeFileSync(script, `import { mergeWdiffs } from ${JSON.stringify(fileURLToPath(new URL('../src/index.ts', import.meta.url)))};
await mergeWdiffs([process.argv[2]], process.argv[3]);
`);
  chmodSync(script, 0o644);
  try {
    const r = spawnSync(process.execPath, ['--conditions=walb-source', '--import', 'tsx', script, vec('w-chain-0.wdiff'), out], { uid: 65534, gid: 65534, encoding: 'utf8', env: { ...process.env, HOME: t.dir } });
    assert.is(r.status, 0, r.stderr);
    await (await openWdiff(out)).close();
    assert.equal(readdirSync(dir), ['x.wdiff']);
  } finally {
    chmodSync(dir, 0o755);
  }
});

P('an output in a folder that does not exist names the path given', async () => {
  const out = join(t.dir, 'no-such-folder', 'x.wdiff');
  try { await mergeWdiffs([vec('w-chain-0.wdiff')], out); assert.unreachable('did not throw'); } catch (e) {
    assert.is((e as NodeJS.ErrnoException).code, 'ENOENT');
    assert.match((e as Error).message, out);
  }
});

P.run();
