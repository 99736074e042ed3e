// The userspace capture device against real NBD clients (qemu-io, nbdinfo, nbdcopy): writes and
// reads through NBD, and the log it keeps replays onto the data device's earlier content to the
// device's content, byte for byte. Needs qemu-utils and libnbd-bin (installed by tools/setup.sh).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogDevice, extractLogpacks, formatLdev, hasData, isDiscard, isPadding } from '@walbjs/log-format';
import { CaptureDevice } from '../src/index.ts';

const C = suite('userspace capture device');
const dir = mkdtempSync(join(tmpdir(), 'walbjs-capture-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const uri = (sock: string) => `nbd+unix:///?socket=${sock}`;
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

async function fresh(name: string, ldevBytes = 64 << 20, ddevBytes = 32 << 20) {
  const l = join(dir, `${name}.ldev`), d = join(dir, `${name}.ddev`);
  writeFileSync(l, ''); truncateSync(l, ldevBytes);
  writeFileSync(d, ''); truncateSync(d, ddevBytes);
  await formatLdev(l, d);
  return { l, d, sock: join(dir, `${name}.sock`) };
}

/** Replay the device's log, in order, onto `image` (discards ignored, as wlog-redo). */
async function replay(ldev: string, image: Buffer): Promise<number> {
  const dev = await LogDevice.open(ldev);
  let n = 0;
  for await (const p of extractLogpacks(dev, { force: true })) {
    let k = 0;
    for (const r of p.header.records) {
      const io = hasData(r) ? p.ios[k++] : undefined;
      if (isPadding(r) || isDiscard(r)) continue;
      image.set(io!.subarray(0, r.ioSize * 512), Number(r.offset) * 512);
      n++;
    }
  }
  await dev.close();
  return n;
}

C('qemu-io patterns and nbdinfo through the device; the log replays to the device content', async () => {
  const f = await fresh('qemu');
  const dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  try {
    const info = run('nbdinfo', ['--json', uri(f.sock)]);
    assert.is(JSON.parse(info).exports[0]['export-size'], 32 << 20);
    const out = run('qemu-io', ['-f', 'raw',
      '-c', 'write -P 0xab 0 1M', '-c', 'write -P 0xcd -f 4096 64k', '-c', 'write -z 512k 128k', '-c', 'discard 2M 1M',
      '-c', 'write -P 0x11 31M 1M', '-c', 'flush',
      '-c', 'read -P 0xab 0 4096', '-c', 'read -P 0xcd 4096 64k', '-c', 'read -P 0 512k 128k', '-c', 'read -P 0x11 31M 1M',
      uri(f.sock)]);
    assert.not.match(out, /fail|error/i, out);
    assert.is(out.match(/^read /gm)?.length, 4);
  } finally {
    await dev.close();
  }
  const l = (await CaptureDevice.open(f.l, f.d));
  const lsids = l.lsids();
  await l.close();
  assert.ok(lsids.written > 0n);
  const replayed = Buffer.alloc(32 << 20);
  assert.is(await replay(f.l, replayed), 4, "four data writes logged");
  const ddev = readFileSync(f.d);
  // The discarded range keeps whatever the device holds; compare everything else.
  replayed.set(ddev.subarray(2 << 20, 3 << 20), 2 << 20);
  assert.ok(replayed.equals(ddev), 'replaying the log onto zeros gives the device content');
});

C('nbdcopy a random image in and out: byte-identical', async () => {
  const f = await fresh('copy');
  const img = join(dir, 'random.img'), back = join(dir, 'back.img');
  writeFileSync(img, randomBytes(32 << 20));
  const dev = await CaptureDevice.open(f.l, f.d, { maxLogpackKb: 4096 });
  dev.serve({ unix: f.sock });
  try {
    run('nbdcopy', [img, uri(f.sock)]);
    run('nbdcopy', [uri(f.sock), back]);
    assert.ok(readFileSync(back).equals(readFileSync(img)));
    const l = await dev.waitPermanent(dev.lsids().latest);
    assert.ok(l.permanent >= l.written || l.permanent === l.latest);
  } finally {
    await dev.close();
  }
  const replayed = Buffer.alloc(32 << 20);
  await replay(f.l, replayed);
  assert.ok(replayed.equals(readFileSync(img)), 'the log holds every write');
});

C('reopen redoes the log from written_lsid; a corrupted super sector is a typed error at open', async () => {
  const f = await fresh('redo');
  let dev = await CaptureDevice.open(f.l, f.d);
  dev.serve({ unix: f.sock });
  run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a -f 0 256k', uri(f.sock)]);
  await dev.close();
  // Forget the data device's content: redo must bring it back from the log.
  const l0 = readFileSync(f.l);
  writeFileSync(f.d, Buffer.alloc(32 << 20));
  const sb = Buffer.from(l0.subarray(4096, 4096 + 512));
  sb.writeBigUInt64LE(0n, 88); // written_lsid back to 0
  sb.writeUInt32LE(0, 4);
  let s = 0; for (let i = 0; i < 512; i += 4) s = (s + sb.readUInt32LE(i)) | 0;
  sb.writeUInt32LE((-s) >>> 0, 4);
  const l1 = Buffer.from(l0); sb.copy(l1, 4096); writeFileSync(f.l, l1);
  dev = await CaptureDevice.open(f.l, f.d);
  await dev.close();
  assert.ok(readFileSync(f.d).subarray(0, 256 << 10).every((b) => b === 0x5a), 'redo restored the data');
  const bad = Buffer.from(l1); bad[4096 + 200] ^= 1; writeFileSync(f.l, bad);
  try { await CaptureDevice.open(f.l, f.d); assert.unreachable(); } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_WALB_CAPTURE_CHECKSUM');
    assert.match((e as Error).message, /offset 4096/);
  }
});

C.run();
