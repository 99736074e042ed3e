// `walb wdiff` on crafted bad files, as a real process: `show --csum` checks every stored image an
// index record names (not only the first at each offset); `virt-cat` refuses a wdiff that writes
// beyond the base before writing anything; a merge that meets a corrupt input leaves an earlier
// output file as it was.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IndexedDiffReader, WALB_INDEXED_DIFF_RECORD_SIZE, decodeDiffPackHeader, encodeDiffPackHeader, encodeIndexedDiffRecord, recordKind } from '@walbjs/diff';
import { checksum } from '@walbjs/log-format';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '../../..');
const VEC = resolve(ROOT, '../shared/vectors/walb-tools-1.0.19');
const BIN = join(here, '..', 'src/bin/walb.ts');
const TMP = mkdtempSync(join(tmpdir(), 'walbjs-wdiff-bad-'));
process.on('exit', () => rmSync(TMP, { recursive: true, force: true }));
const vec = (name: string) => join(VEC, name);
const INDEX_SUPER_BYTES = 24;

function walb(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--conditions=walb-source', '--import', 'tsx', BIN, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('show --csum checks an image that shares its offset with an earlier, shorter one', async () => {
  // A later record names the first bytes of an earlier compressed image, with their own right
  // checksum: they do not decompress to its size.
  const name = 'w-pbs512-mixed.indexed.wdiff';
  const r = await IndexedDiffReader.open(vec(name));
  const bytes = readFileSync(vec(name));
  let done = false;
  try {
    for (let k = 0; k < r.size && !done; k++) {
      const a = r.record(k);
      if (recordKind(a.flags) !== 'normal' || a.compressionType === 0 || a.dataSize < 16) continue;
      for (let j = k + 1; j < r.size; j++) {
        const b = { ...r.record(j) };
        if (recordKind(b.flags) !== 'normal' || b.dataOffset === a.dataOffset) continue;
        b.dataOffset = a.dataOffset;
        b.dataSize = a.dataSize - 8;
        b.compressionType = a.compressionType;
        b.ioChecksum = checksum(bytes.subarray(b.dataOffset, b.dataOffset + b.dataSize), 0);
        encodeIndexedDiffRecord(b, bytes, bytes.length - INDEX_SUPER_BYTES - (r.size - j) * WALB_INDEXED_DIFF_RECORD_SIZE);
        done = true;
        break;
      }
    }
  } finally {
    await r.close();
  }
  assert.ok(done, 'no record to rewrite');
  const bad = join(TMP, 'prefix.wdiff');
  writeFileSync(bad, bytes);
  const s = walb('wdiff', 'show', '--csum', '--json', bad);
  assert.is(s.status, 1, s.stdout.slice(0, 200));
  assert.match(s.stderr, /ERR_WDIFF_CODEC|decompress/);
});

test('show of a stream of zeros reports its bad header, not an indexed wdiff', () => {
  const s = walb('wdiff', 'show', '/dev/zero');
  assert.is(s.status, 1, s.stderr);
  assert.match(s.stderr, /wdiff version 0/);
  assert.not.match(s.stderr, /indexed/);
});

test('virt-cat refuses a wdiff of a larger device than the base, before writing', () => {
  const virt = (JSON.parse(readFileSync(vec('manifest.json'), 'utf8')) as { cases: Array<Record<string, any>> }).cases.find((c) => c.kind === 'virt-full')!;
  const base = join(TMP, 'small-base.img');
  writeFileSync(base, gunzipSync(readFileSync(vec(virt.baseGz))).subarray(0, 1 << 20));
  const out = join(TMP, 'virt.img');
  const s = walb('wdiff', 'virt-cat', '--json', base, ...virt.wdiffs.map(vec), '-o', out);
  assert.is(s.status, 1, s.stderr);
  assert.match(s.stderr, /ERR_WDIFF_RANGE/);
  assert.not.ok(existsSync(out), 'an output was left');
});

test('a merge that meets a corrupt input leaves an earlier output file as it was', () => {
  const b = readFileSync(vec('w-chain-1.wdiff'));
  b[Math.floor(b.length * 0.7)] ^= 0x10;
  const bad = join(TMP, 'bad-chain-1.wdiff');
  writeFileSync(bad, b);
  const out = join(TMP, 'kept.wdiff');
  writeFileSync(out, 'keep me\n');
  for (const extra of [[], ['--indexed']]) {
    const s = walb('wdiff', 'merge', ...extra, vec('w-chain-0.wdiff'), bad, '-o', out);
    assert.is(s.status, 1, s.stderr);
    assert.is(readFileSync(out, 'utf8'), 'keep me\n');
  }
});

test('a merge refuses a record that sums right but does not decompress, rather than pass it on', () => {
  // The vectors' zstd diff, its first record's stored bytes zeroed and its sum made right again:
  // merged into zstd, that record would be copied as it is stored.
  const b = Buffer.from(readFileSync(vec('w-cmpr-zstd.wdiff')));
  const pack = decodeDiffPackHeader(b, 32);
  const r = pack.records.find((x) => x.compressionType !== 0 && x.dataSize > 4)!;
  const at = 32 + 4096 + r.dataOffset;
  const data = b.subarray(at, at + r.dataSize).fill(0);
  r.checksum = checksum(data, 0);
  encodeDiffPackHeader(pack).copy(b, 32);
  const bad = join(TMP, 'undecodable-zstd.wdiff');
  writeFileSync(bad, b);
  const out = join(TMP, 'never.wdiff');
  for (const extra of [[], ['--indexed']]) {
    const s = walb('wdiff', 'merge', '--json', '--cmpr', 'zstd', ...extra, bad, '-o', out);
    assert.is(s.status, 1, s.stdout + s.stderr);
    // With --json the error is one JSON line on stderr.
    const e = JSON.parse(s.stderr.trim().split('\n').pop()!) as { code: string; source: string; offset: string };
    assert.is(e.code, 'ERR_WDIFF_CODEC', s.stderr);
    assert.is(e.source, bad);
    assert.is(e.offset, String(at));
    assert.not.ok(existsSync(out), 'no output');
  }
});

test.run();
