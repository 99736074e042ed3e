// An archive whose base image is a block device (a loop device here): the full sync writes it in
// place, restores read from it, apply writes to it, and the images equal what the diffs say.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeGeneratedWlog } from '@walbjs/log-format';
import { applyWdiffs, convertWlogs } from '@walbjs/diff';
import { ArchiveDaemon, silentLogger } from '../src/index.ts';

const B = suite('archive base on a block device');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
function canUseLoop(): boolean {
  if (process.getuid?.() !== 0) return false;
  try { execFileSync('losetup', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

(canUseLoop() ? B : B.skip)('full sync, wdiffs, restore and apply on a loop device', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'walbjs-basedev-'));
  const backing = join(dir, 'backing.img');
  writeFileSync(backing, ''); truncateSync(backing, 8 << 20);
  const dev = execFileSync('losetup', ['--find', '--show', backing], { encoding: 'utf8' }).trim();
  const a = new ArchiveDaemon({ baseDir: join(dir, 'a'), logger: silentLogger });
  try {
    await a.open();
    try { await a.call('init-vol', { volId: 'v', baseDevice: backing }); assert.unreachable(); } catch (e) { assert.match((e as Error).message, /not a block device/); }
    await a.call('init-vol', { volId: 'v', baseDevice: dev });
    const SIZE = 4 << 20;
    const image = randomBytes(SIZE);
    const uuid = randomBytes(16);
    await a.call('full-sync', { volId: 'v', sizeLb: BigInt(SIZE / 512), timestamp: 1_700_000_000, uuid }, { upload: [image] as unknown as AsyncIterable<Buffer> });
    await a.call('full-sync-commit', { volId: 'v', snap: { gidB: 0n, gidE: 0n }, timestamp: 1_700_000_000 });
    assert.ok(readFileSync(dev).subarray(0, SIZE).equals(image), 'the full sync went to the device');
    const wlog = join(dir, 'a.wlog'), wdiff = join(dir, 'a.wdiff');
    await writeGeneratedWlog(wlog, { seed: 7, uuid, deviceBytes: SIZE, totalBytes: 1 << 20, pbs: 4096 });
    await convertWlogs([wlog], wdiff, { indexed: true });
    const diff = { snapB: { gidB: 0n, gidE: 0n }, snapE: { gidB: 1n, gidE: 1n }, isMergeable: true, isCompDiff: false, timestamp: 1_700_000_100, dataSize: 0n };
    await a.call('wdiff-transfer', { volId: 'v', uuid, sizeLb: BigInt(SIZE / 512), diff }, { upload: createReadStream(wdiff) as unknown as AsyncIterable<Buffer> });
    const expected = join(dir, 'expected.img');
    writeFileSync(expected, image);
    await applyWdiffs(expected, [wdiff], { discard: 'zero' });
    const want = sha(readFileSync(expected));
    const r = (await a.call('restore', { volId: 'v', gid: 1n, wait: true })) as { path: string };
    assert.is(sha(readFileSync(r.path)), want);
    await a.call('apply', { volId: 'v', gid: 1n, wait: true });
    assert.is(sha(readFileSync(dev).subarray(0, SIZE)), want, 'apply wrote the device');
    try { await a.call('resize', { volId: 'v', sizeLb: 1n << 20n }); assert.unreachable(); } catch (e) { assert.match((e as Error).message, /grow it first/); }
  } finally {
    await a.stop('force');
    execFileSync('losetup', ['-d', dev]);
    rmSync(dir, { recursive: true, force: true });
  }
});

B.run();
