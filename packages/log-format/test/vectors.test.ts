// The reference vectors written by walb-tools 1.0.19: we read what the original wrote, and write
// what it wrote, byte for byte.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  LogDevice, LogStatistics, WlogReader, WlogWriter, catLdev, formatLogStat, formatLogpack,
  formatSuperSector, formatWlogHeader, uuidToHex,
} from '../src/index.ts';
import { manifest, tempDir, vec, vecBytes, wlogCases } from './helpers.ts';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const allWlogs = Object.keys(manifest.files).filter((f) => f.endsWith('.wlog'));

const Files = suite('vector files');
Files('the manifest sha256 of every vector file matches (the vectors are intact)', () => {
  for (const [name, sum] of Object.entries(manifest.files)) assert.is(sha256(readFileSync(vec(name))), sum, name);
});
Files.run();

const Parse = suite('wlog parse');
for (const f of allWlogs) {
  Parse(`${f} parses completely, every checksum verified`, async () => {
    const r = await WlogReader.open(vec(f));
    let packs = 0;
    for await (const p of r) { packs++; assert.ok(p.header.records.length > 0); }
    assert.ok(r.sawEndMarker, 'end marker reached');
    assert.ok(packs > 0);
  });
}
for (const c of wlogCases) {
  Parse(`${c.name}: --stat equals .wlog.stat.txt and every record equals .wlog.show.txt`, async () => {
    const r = await WlogReader.open(vec(c.wlog));
    const st = new LogStatistics(r.header.beginLsid, r.header.endLsid, r.pbs);
    const packs: string[] = [];
    for await (const p of r) { st.update(p.header); packs.push(formatLogpack(p.header)); }
    assert.fixture(formatLogStat(st.value), readFileSync(vec(`${c.name}.wlog.stat.txt`), 'utf8').trimEnd());
    const expected = readFileSync(vec(`${c.name}.wlog.show.txt`), 'utf8').trimEnd().split('\n');
    const got = packs.join('\n').split('\n');
    assert.is(got.length, expected.length, 'line count');
    for (let i = 0; i < got.length; i++) assert.is(got[i], expected[i], `line ${i + 1}`);
  });
}
Parse('the header line is the original wlog_h format', async () => {
  const r = await WlogReader.open(vec('w-ldev-extracted.wlog'));
  assert.is(formatWlogHeader(r.header), `wlog_h: ver   2 pbs  512 salt 68715975 uuid ${uuidToHex(r.header.uuid)} lsid 14000 18446744073709551615`);
  await r.close();
});
Parse.run();

const Rewrite = suite('wlog rewrite');
for (const f of allWlogs) {
  Rewrite(`${f}: rewritten by the writer from parsed packs is byte-identical`, async () => {
    const src = readFileSync(vec(f));
    const r = await WlogReader.open(src);
    const out: Buffer[] = [];
    const w = await WlogWriter.create((b) => { out.push(Buffer.from(b)); }, r.header);
    for await (const p of r) await w.writePack(p.header, p.ios);
    await w.close();
    assert.ok(Buffer.concat(out).equals(src));
  });
}
Rewrite.run();

const Ldev = suite('log device vector');
Ldev('wldev-info of w-ldev.img equals w-ldev.info.txt', async () => {
  const t = tempDir();
  try {
    const p = join(t.dir, 'ldev.img');
    writeFileSync(p, vecBytes('w-ldev.img.gz'));
    const d = await LogDevice.open(p);
    assert.fixture(formatSuperSector(d.superSector), readFileSync(vec('w-ldev.info.txt'), 'utf8'));
    await d.close();
  } finally { t.cleanup(); }
});
Ldev('wlog cat of w-ldev.img (ring wrap, padding pack) is byte-identical to w-ldev-extracted.wlog', async () => {
  const t = tempDir();
  try {
    const p = join(t.dir, 'ldev.img');
    const out = join(t.dir, 'out.wlog');
    writeFileSync(p, vecBytes('w-ldev.img.gz'));
    const r = await catLdev(p, out);
    assert.is(r.beginLsid, 14000n);
    assert.is(r.stoppedBy, 'invalid-pack');
    assert.is(sha256(readFileSync(out)), (manifest.cases.find((c) => c.kind === 'ldev') as unknown as { extractedSha256: string }).extractedSha256);
    assert.ok(readFileSync(out).equals(readFileSync(vec('w-ldev-extracted.wlog'))));
    assert.ok(r.stat.paddingPb > 0n, 'the wrap inserted padding');
  } finally { t.cleanup(); }
});
Ldev.run();
