// Throughput of every record codec, one thread, on 64 MiB of semi-compressible data cut into
// records (64 KiB, and 4 KiB for the fast codecs): 4 KiB blocks rotate through random bytes, word
// text and half-filled pattern runs, which zlib level 6 shrinks about 2.5×. MiB/s are of raw data,
// best of 3 (xz: one run over 8 MiB, it is far slower). Synchronous methods, as hot paths use them.
// Size: WALB_BENCH_MIB (default 64).
import {
  getCodec, lz4TsCodec, snappyJsCodec, type Codec,
} from '../src/codec/index.ts';

const MIB = 1 << 20;
const total = Number(process.env.WALB_BENCH_MIB ?? 64) * MIB;
const emit = (row: object) => console.log('BENCH ' + JSON.stringify(row));

function makeData(size: number): Buffer {
  const buf = Buffer.alloc(size);
  let s = 0x9e3779b9;
  const rnd = () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
  const words = 'the of and block device write diff log archive proxy storage replica volume snapshot merge apply wal restore'.split(' ');
  for (let off = 0, i = 0; off < size; off += 4096, i++) {
    const blk = buf.subarray(off, Math.min(off + 4096, size));
    if (i % 3 === 0) {
      for (let k = 0; k < blk.length; k += 4) blk.writeUInt32LE(rnd(), k);
    } else if (i % 3 === 1) {
      let p = 0;
      while (p < blk.length) p += blk.write(words[rnd() % words.length] + ' ', p);
    } else {
      const v = rnd() & 0xff;
      for (let k = 0; k < blk.length / 2; k++) blk[k] = (k >> 4) & 1 ? v : k & 0xff;
    }
  }
  return buf;
}

function records(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o < data.length; o += size) out.push(data.subarray(o, o + size));
  return out;
}

function best(runs: number, fn: () => void): number {
  let t = Infinity;
  for (let i = 0; i < runs; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    const t0 = process.hrtime.bigint();
    fn();
    t = Math.min(t, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return t;
}

function bench(codec: Codec, data: Buffer, recSize: number, runs: number): void {
  const recs = records(data, recSize);
  const compressSync = codec.compressSync!.bind(codec);
  const decompressSync = codec.decompressSync!.bind(codec);
  let stored: Buffer[] = [];
  const tc = best(runs, () => { stored = recs.map((r) => compressSync(r, 0)); });
  let out = 0;
  const td = best(runs, () => { out = 0; for (let i = 0; i < stored.length; i++) out += decompressSync(stored[i], recs[i].length).length; });
  if (out !== data.length) throw new Error(`${codec.impl}: decompressed ${out} of ${data.length} bytes`);
  const ratio = data.length / stored.reduce((n, s) => n + s.length, 0);
  const mib = data.length / MIB;
  const tag = `${codec.name}, ${codec.impl}, ${recSize / 1024} KiB records`;
  const note = `ratio ${ratio.toFixed(2)}, ${mib} MiB`;
  emit({ name: `codec compress (${tag})`, value: mib / tc, unit: 'MiB/s', note });
  emit({ name: `codec decompress (${tag})`, value: mib / td, unit: 'MiB/s', note });
}

const data = makeData(total);
const small = data.subarray(0, Math.min(total, 8 * MIB));
const cases: Array<[Codec, Buffer, number, number]> = [];
for (const type of [1, 2, 4, 5]) cases.push([getCodec(type), data, 64 * 1024, 3]);
cases.push([snappyJsCodec, data, 64 * 1024, 3], [lz4TsCodec, data, 64 * 1024, 3]);
for (const codec of [getCodec(2), getCodec(4), getCodec(5), snappyJsCodec, lz4TsCodec]) cases.push([codec, data, 4096, 3]);
cases.push([getCodec(3), small, 64 * 1024, 1]);

for (const [codec, d, recSize, runs] of cases) {
  process.stderr.write(`  ${codec.impl}, ${recSize / 1024} KiB records …\n`);
  bench(codec, d, recSize, runs);
}
