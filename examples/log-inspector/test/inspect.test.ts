// End-to-end tests of the log inspector: each case runs it as a real process (from source, through
// tsx, exactly as its `start` script does) on the walb-tools 1.0.19 vectors, and checks its numbers
// against what the original tools printed (`.wlog.show.txt`, `.wlog.stat.txt`) and against what the
// library itself reads.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WlogReader, isDiscard, isPadding } from '@walbjs/log-format';

const here = dirname(fileURLToPath(import.meta.url));
const PKG = resolve(here, '..');
const ROOT = resolve(PKG, '../..');
const VEC = resolve(ROOT, '../shared/vectors/walb-tools-1.0.19');
const MAIN = join(PKG, 'src/main.ts');
const WLOG_CASES = ['w-pbs512-mixed', 'w-pbs4096-rand', 'w-pbs512-rand-nodiscard', 'w-pbs512-zeroish-big-io'];
const MiB = 1n << 20n;

const TMP = mkdtempSync(join(tmpdir(), 'walbjs-log-inspector-test-'));
const vec = (name: string) => join(VEC, name);
const tmp = (name: string) => join(TMP, name);

test.after(() => {
  rmSync(TMP, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** Run the inspector as its `start` script does, from the example's folder. */
function inspector(...args: string[]): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--conditions=walb-source', '--import', 'tsx', MAIN, ...args], {
      cwd: PKG,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, out, err }));
  });
}

/** What the JSON output holds (bigints are decimal strings). */
interface Json {
  file: string;
  source: { kind: 'wlog' | 'ldev'; [k: string]: unknown };
  pbs: number;
  salt: number;
  uuid: string;
  beginLsid: string;
  endLsid: string;
  packs: number;
  records: { total: number; normal: number; discard: number; padding: number; allZero: number };
  bytes: { normal: string; allZero: string; discard: string; padding: string; log: string };
  ioSizes: { fromBytes: string; toBytes: string; normal: number; discard: number }[];
  addressRange: { beginByte: string; endByte: string } | null;
  hotRegions: { index: string; beginByte: string; endByte: string; writes: number; bytesWritten: string }[];
}

async function inspectJson(file: string): Promise<Json> {
  const r = await inspector('--json', file);
  assert.is(r.code, 0, `exit ${r.code} on ${file}; stderr: ${r.err}`);
  assert.is(r.err, '');
  return JSON.parse(r.out) as Json;
}

/** `wlog-show -stat` lines as a map. */
function statTxt(name: string): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const line of readFileSync(vec(`${name}.wlog.stat.txt`), 'utf8').trim().split('\n')) {
    const [k, v] = line.split(' ');
    out[k] = BigInt(v);
  }
  return out;
}

interface ShowRecord { offset: bigint; ioSize: bigint; flags: string }

/** The packs and records `wlog-show -pack` printed. */
function showTxt(name: string): { packs: number; records: ShowRecord[] } {
  let packs = 0;
  const records: ShowRecord[] = [];
  for (const line of readFileSync(vec(`${name}.wlog.show.txt`), 'utf8').split('\n')) {
    if (line.startsWith('wlog_p:')) packs++;
    const m = /^wlog_r: lsid\s+\d+\s+\d+ io\s+(\d+)\s+(\d+) flags (\S{3})/.exec(line);
    if (m) records.push({ offset: BigInt(m[1]), ioSize: BigInt(m[2]), flags: m[3] });
  }
  return { packs, records };
}

/** Records by kind and all-zero normal records, as the library reads them. */
async function libraryCounts(file: string) {
  const r = await WlogReader.open(file);
  const c = { packs: 0, total: 0, normal: 0, discard: 0, padding: 0, allZero: 0, pbs: r.pbs, beginLsid: r.header.beginLsid, endLsid: 0n };
  for await (const p of r) {
    c.packs++;
    let d = 0;
    for (const rec of p.header.records) {
      c.total++;
      if (isDiscard(rec)) { c.discard++; continue; }
      const io = p.ios[d++];
      if (isPadding(rec)) { c.padding++; continue; }
      c.normal++;
      if (io.subarray(0, rec.ioSize * 512).every((b) => b === 0)) c.allZero++;
    }
  }
  c.endLsid = r.endLsid;
  return c;
}

test('--json on every wlog vector agrees with wlog-show -stat, wlog-show -pack and the library', async () => {
  await Promise.all(WLOG_CASES.map(async (name) => {
    const j = await inspectJson(vec(`${name}.wlog`));
    const st = statTxt(name);
    const show = showTxt(name);
    const lib = await libraryCounts(vec(`${name}.wlog`));
    assert.is(j.source.kind, 'wlog', name);
    assert.is(j.source.headerBeginLsid, String(st.bgnLsid), name);
    assert.is(j.source.headerEndLsid, String(st.endLsid), name);
    assert.is(j.beginLsid, String(st.bgnLsid), name);
    assert.is(j.endLsid, String(st.reallyEndLsid), name);
    assert.is(BigInt(j.packs), st.nrPacks, name);
    assert.is(j.packs, show.packs, name);
    assert.is(j.pbs, lib.pbs, name);
    assert.is(BigInt(j.bytes.normal), st.normalLb * 512n, name);
    assert.is(BigInt(j.bytes.discard), st.discardLb * 512n, name);
    assert.is(BigInt(j.bytes.padding), st.paddingPb * BigInt(j.pbs), name);
    assert.is(BigInt(j.bytes.log), (st.reallyEndLsid - st.bgnLsid) * BigInt(j.pbs), name);

    const kinds = { normal: 0, discard: 0, padding: 0 };
    for (const r of show.records) {
      if (r.flags === 'E--') kinds.normal++;
      else if (r.flags === 'E-D') kinds.discard++;
      else if (r.flags === 'EP-') kinds.padding++;
      else assert.unreachable(`${name}: flags ${r.flags}`);
    }
    assert.equal(
      { ...j.records },
      { total: show.records.length, ...kinds, allZero: lib.allZero },
      name,
    );
    assert.equal(
      { normal: j.records.normal, discard: j.records.discard, padding: j.records.padding, total: j.records.total },
      { normal: lib.normal, discard: lib.discard, padding: lib.padding, total: lib.total },
      name,
    );

    // Histogram: every normal and discard IO in exactly one bucket [2^k, 2^(k+1)).
    let n = 0, d = 0;
    for (const b of j.ioSizes) {
      assert.is(BigInt(b.toBytes), 2n * BigInt(b.fromBytes), name);
      assert.is(BigInt(b.fromBytes) & (BigInt(b.fromBytes) - 1n), 0n, `${name}: ${b.fromBytes} is a power of two`);
      n += b.normal;
      d += b.discard;
    }
    assert.is(n, kinds.normal, name);
    assert.is(d, kinds.discard, name);
    for (const r of show.records) {
      if (r.flags === 'EP-') continue;
      const bytes = r.ioSize * 512n;
      const b = j.ioSizes.find((x) => BigInt(x.fromBytes) <= bytes && bytes < BigInt(x.toBytes));
      assert.ok(b, `${name}: a bucket for ${bytes} bytes`);
    }

    // Address range over normal and discard IOs.
    const io = show.records.filter((r) => r.flags !== 'EP-');
    const lo = io.reduce((m, r) => (r.offset < m ? r.offset : m), io[0].offset) * 512n;
    const hi = io.reduce((m, r) => (r.offset + r.ioSize > m ? r.offset + r.ioSize : m), 0n) * 512n;
    assert.equal(j.addressRange, { beginByte: String(lo), endByte: String(hi) }, name);
  }));
});

test('hottest 1 MiB regions match a count made from wlog-show -pack', async () => {
  for (const name of ['w-pbs512-mixed', 'w-pbs512-zeroish-big-io']) {
    const j = await inspectJson(vec(`${name}.wlog`));
    const per = new Map<bigint, { writes: number; bytes: bigint }>();
    for (const r of showTxt(name).records) {
      if (r.flags !== 'E--') continue;
      const b = r.offset * 512n;
      const e = b + r.ioSize * 512n;
      for (let reg = b / MiB; reg * MiB < e; reg++) {
        const lo = reg * MiB > b ? reg * MiB : b;
        const hi = (reg + 1n) * MiB < e ? (reg + 1n) * MiB : e;
        const c = per.get(reg) ?? { writes: 0, bytes: 0n };
        c.writes++;
        c.bytes += hi - lo;
        per.set(reg, c);
      }
    }
    const expected = [...per.entries()]
      .sort((x, y) => (x[1].bytes !== y[1].bytes ? (x[1].bytes > y[1].bytes ? -1 : 1) : y[1].writes - x[1].writes || (x[0] < y[0] ? -1 : 1)))
      .slice(0, 10)
      .map(([reg, c]) => ({ index: String(reg), beginByte: String(reg * MiB), endByte: String((reg + 1n) * MiB), writes: c.writes, bytesWritten: String(c.bytes) }));
    assert.ok(expected.length > 0, name);
    assert.equal(j.hotRegions, expected, name);
  }
});

test('a log device image: the logs wlog-cat extracted from it, read across the ring end', async () => {
  const img = tmp('w-ldev.img');
  writeFileSync(img, gunzipSync(readFileSync(vec('w-ldev.img.gz'))));
  const [j, extracted] = await Promise.all([inspectJson(img), inspectJson(vec('w-ldev-extracted.wlog'))]);
  const info = Object.fromEntries(readFileSync(vec('w-ldev.info.txt'), 'utf8').trim().split('\n').map((l) => l.split(': ')));
  assert.is(j.source.kind, 'ldev');
  assert.is(j.source.oldestLsid, info.oldestLsid);
  assert.is(j.source.writtenLsid, info.writtenLsid);
  assert.is(j.source.ringBufferSize, info.ringBufferSize);
  assert.is(j.source.name, info.name);
  assert.is(j.source.stoppedBy, 'invalid-pack');
  assert.is(j.uuid, info.uuid);
  assert.is(j.salt, Number(info.salt));
  assert.is(j.beginLsid, info.oldestLsid);
  // The ring holds 16374 PB from lsid 14000: the logs wrap around its end.
  assert.ok(BigInt(j.endLsid) % BigInt(info.ringBufferSize) < BigInt(j.beginLsid) % BigInt(info.ringBufferSize));

  // What walb-tools' wlog-cat extracted from the same image, read by the library...
  const lib = await libraryCounts(vec('w-ldev-extracted.wlog'));
  assert.is(j.packs, lib.packs);
  assert.is(j.beginLsid, String(lib.beginLsid));
  assert.is(j.endLsid, String(lib.endLsid));
  assert.equal(j.records, { total: lib.total, normal: lib.normal, discard: lib.discard, padding: lib.padding, allZero: lib.allZero });
  // ...and by the inspector: the same statistics, only the source differs.
  assert.is(extracted.source.kind, 'wlog');
  const { file: _f1, source: _s1, ...fromLdev } = j;
  const { file: _f2, source: _s2, ...fromWlog } = extracted;
  assert.equal(fromLdev, fromWlog);
});

test('human output: an aligned table with the same numbers', async () => {
  const r = await inspector(vec('w-pbs512-mixed.wlog'));
  assert.is(r.code, 0, r.err);
  assert.is(r.err, '');
  const st = statTxt('w-pbs512-mixed');
  const lines = r.out.split('\n');
  assert.ok(lines.includes('format         wlog file'), r.out);
  assert.match(r.out, new RegExp(`^packs\\s+${st.nrPacks}$`, 'm'));
  assert.match(r.out, new RegExp(`^lsids\\s+\\[${st.bgnLsid}, ${st.reallyEndLsid}\\)`, 'm'));
  assert.match(r.out, new RegExp(`^normal\\s+173\\s+\\S+\\s+${st.normalLb * 512n}\\s`, 'm'));
  assert.match(r.out, new RegExp(`^discard\\s+50\\s+\\S+\\s+${st.discardLb * 512n}\\s`, 'm'));
  // Columns line up: in the records table every count ends under the end of "count".
  const head = lines.findIndex((l) => l.startsWith('records '));
  const countEnd = lines[head].indexOf('count') + 'count'.length;
  for (const l of lines.slice(head + 1, head + 6)) {
    const m = /^\s*[a-z][a-z -]*?\s+(\d+)/.exec(l);
    assert.ok(m, l);
    assert.is(m[0].length, countEnd, `aligned: ${JSON.stringify(l)}`);
  }
  const rank = lines.findIndex((l) => l.startsWith('rank '));
  assert.is(lines.length - 1 - rank - 1, 10, 'ten hot regions');
});

test('bad input: one line naming the file and the library error, exit 2', async () => {
  // Record data damaged in the first pack: the wlog reader verifies every checksum.
  const damaged = tmp('damaged.wlog');
  const bytes = readFileSync(vec('w-pbs512-mixed.wlog'));
  bytes[4096 + 512 + 100] ^= 0xff;
  writeFileSync(damaged, bytes);
  // Cut inside a pack.
  const cut = tmp('cut.wlog');
  writeFileSync(cut, readFileSync(vec('w-pbs512-mixed.wlog')).subarray(0, 10_000));
  // A log device whose super sector is damaged (a byte of its name).
  const ldev = tmp('damaged-ldev.img');
  const img = gunzipSync(readFileSync(vec('w-ldev.img.gz')));
  img[4096 + 41] ^= 0xff;
  writeFileSync(ldev, img);
  // Neither format.
  const junk = tmp('junk.bin');
  writeFileSync(junk, Buffer.alloc(64 << 10, 0xab));
  const missing = tmp('no-such-file.wlog');
  const cases: [string, RegExp][] = [
    [damaged, /ChecksumError \[ERR_WALB_CHECKSUM\]: log record data checksum: stored [0-9a-f]{8}, computed [0-9a-f]{8} \(at .*damaged\.wlog, offset 4608, lsid 1\)/],
    [cut, /TruncatedError \[ERR_WALB_TRUNCATED\]/],
    [ldev, /ChecksumError \[ERR_WALB_CHECKSUM\]/],
    [junk, /neither a wlog nor a log device: as a wlog, SectorTypeError \[ERR_WALB_SECTOR_TYPE\]: .*; as a log device, SectorTypeError \[ERR_WALB_SECTOR_TYPE\]/],
    [missing, /ENOENT/],
  ];
  await Promise.all(cases.map(async ([file, pattern]) => {
    for (const args of [[file], ['--json', file]]) {
      const r = await inspector(...args);
      assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code}; stderr: ${r.err}`);
      assert.is(r.out, '', file);
      const lines = r.err.trimEnd().split('\n');
      assert.is(lines.length, 1, `one line: ${r.err}`);
      assert.ok(lines[0].startsWith(`log-inspector: ${file}: `), lines[0]);
      assert.match(lines[0], pattern);
    }
  }));
  // Copying a good vector still works (the damage above was in the copies only).
  copyFileSync(vec('w-pbs4096-rand.wlog'), tmp('good.wlog'));
  assert.is((await inspector(tmp('good.wlog'))).code, 0);
});

test('command line: usage errors exit 2, --help exits 0', async () => {
  const none = await inspector();
  assert.is(none.code, 2);
  assert.match(none.err, /FILE missing/);
  const unknown = await inspector('--bogus', vec('w-pbs512-mixed.wlog'));
  assert.is(unknown.code, 2);
  assert.match(unknown.err, /unknown option --bogus/);
  const help = await inspector('--help');
  assert.is(help.code, 0);
  assert.match(help.out, /^usage: log-inspector \[--json\] FILE/);
});

test.run();
