// Apply onto a real block device (a loop device): it is opened exclusively, so a device that is
// mounted or claimed by another program is refused with nothing written; discards punched with
// blkdiscard work while apply holds the device; the result equals the same apply on a file, also
// with the records copied by pieces.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeGeneratedWlog } from '@walbjs/log-format';
import { loadNative } from '@walbjs/native-walb';
import { SortedDiffWriter, applyWdiffs, convertWlogs, useCopyPieces } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const A = suite('apply onto a block device');

function canUseLoop(): boolean {
  if (process.getuid?.() !== 0) return false;
  try { execFileSync('losetup', ['--version'], { stdio: 'ignore' }); execFileSync('blkdiscard', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

(canUseLoop() ? A : A.skip)('a claimed device is refused untouched; punch works while apply holds it; same bytes as a file', async () => {
  const t = tempDir();
  const backing = join(t.dir, 'backing.img');
  writeFileSync(backing, Buffer.alloc(8 << 20, 0xa5));
  const dev = execFileSync('losetup', ['--find', '--show', backing], { encoding: 'utf8' }).trim();
  try {
    const wlog = join(t.dir, 'w.wlog');
    await writeGeneratedWlog(wlog, { seed: 21, pbs: 4096, totalBytes: 2 << 20, deviceBytes: 8 << 20, maxDiscardBytes: 256 << 10 });
    const wdiff = join(t.dir, 'w.wdiff');
    await convertWlogs([wlog], wdiff);
    // Another holder of the device (as a mounted file system is): apply is refused, nothing written.
    const held = openSync(dev, constants.O_RDONLY | constants.O_EXCL);
    let code: string | undefined;
    try { await applyWdiffs(dev, [wdiff], { discard: 'punch' }); } catch (e) { code = (e as { code?: string }).code; } finally { closeSync(held); }
    assert.is(code, 'EBUSY');
    assert.ok(readFileSync(backing).equals(Buffer.alloc(8 << 20, 0xa5)), 'the claimed device was written');
    // Free: applied, discards punched (a loop device's discard zeroes), as on a file with zeros.
    await applyWdiffs(dev, [wdiff], { discard: 'punch' });
    execFileSync('sync');
    const file = join(t.dir, 'file.img');
    writeFileSync(file, Buffer.alloc(8 << 20, 0xa5));
    await applyWdiffs(file, [wdiff], { discard: 'zero' });
    assert.ok(readFileSync(dev).equals(readFileSync(file)), 'the device differs from the same apply on a file');
    // Again with the records copied by pieces (the native copyPieces writes to the device).
    writeFileSync(dev, Buffer.alloc(8 << 20, 0xa5));
    useCopyPieces(loadNative().copyPieces);
    try { await applyWdiffs(dev, [wdiff], { discard: 'punch' }); } finally { useCopyPieces(undefined); }
    execFileSync('sync');
    assert.ok(readFileSync(dev).equals(readFileSync(file)), 'copied by pieces, the device differs from the same apply on a file');
    // A discard of 3 MiB written as zeros by pieces: the device zeroes the range itself.
    const big = join(t.dir, 'big-discard.wdiff');
    const w = await SortedDiffWriter.create(big);
    await w.write({ addr: 1, blocks: (3 << 20) / 512, kind: 'discard' });
    await w.close();
    writeFileSync(dev, Buffer.alloc(8 << 20, 0xa5));
    useCopyPieces(loadNative().copyPieces);
    try { await applyWdiffs(dev, [big], { discard: 'zero' }); } finally { useCopyPieces(undefined); }
    execFileSync('sync');
    const want = Buffer.alloc(8 << 20, 0xa5);
    want.fill(0, 512, 512 + (3 << 20));
    assert.ok(readFileSync(dev).equals(want), 'a large discard written as zeros on the device');
  } finally {
    execFileSync('losetup', ['-d', dev]);
    t.cleanup();
  }
});

A.run();
