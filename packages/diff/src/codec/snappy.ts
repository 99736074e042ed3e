/**
 * Compression type 2: a raw snappy block (`snappy_compress`; no framing), whose first bytes are a
 * varint of the decompressed size.
 *
 * - `snappy` (napi-rs, a prebuilt binary in an optional dependency) when it loads. Its results
 *   are requested as copied buffers (`copyOutputData`): external buffers, its default, cost a
 *   finalizer each and made it 3–5× slower on records of 4–64 KiB.
 * - Otherwise `snappyjs` (pure JS) compresses and a bounds-checked TypeScript decoder
 *   (`snappyDecodeInto`) decompresses.
 *
 * Both encoders reproduce walb-tools' bytes on its reference vectors (they can differ from each
 * other on rare inputs; either output is a valid block). Before any decoder runs, the size varint
 * must equal the record size, so nothing is allocated from a size the input chose.
 *
 * @module
 */
import { CompressionType, codecLevel } from '../compression.ts';
import { loadOnce } from './load.ts';
import { readSnappyPreamble, snappyDecodeInto } from './snappy-block.ts';
import { asBuffer, checkOrigSize, decodeError, exactSize, wrapError, type Codec } from './types.ts';

const INFO = { codec: 'snappy', type: CompressionType.SNAPPY };

/** Records from this size on go to the libuv thread pool in the asynchronous methods. */
const ASYNC_MIN = 256 * 1024;

interface SnappyNative {
  compressSync(input: Uint8Array, opts?: { copyOutputData?: boolean }): Buffer;
  uncompressSync(input: Uint8Array, opts: { asBuffer: true; copyOutputData?: boolean }): Buffer;
  compress(input: Uint8Array, opts?: { copyOutputData?: boolean }): Promise<Buffer>;
  uncompress(input: Uint8Array, opts: { asBuffer: true; copyOutputData?: boolean }): Promise<Buffer>;
}

const ENC_OPTS = { copyOutputData: true } as const;
const DEC_OPTS = { asBuffer: true, copyOutputData: true } as const;

interface SnappyJs {
  compress(input: Buffer): Buffer;
}

const loadNative = loadOnce('snappy', (req) => {
  const m = req('snappy') as SnappyNative;
  const probe = Buffer.from('walbjs snappy probe walbjs snappy probe');
  if (!m.uncompressSync(m.compressSync(probe, ENC_OPTS), DEC_OPTS).equals(probe)) throw new Error('snappy: self-test failed');
  return m;
});

const loadJs = loadOnce('snappyjs', (req) => req('snappyjs') as SnappyJs);

/** Check the size varint against `origSize`; returns the offset where the elements begin. */
function checkPreamble(stored: Uint8Array, origSize: number): number {
  checkOrigSize(INFO, stored, origSize);
  const pre = readSnappyPreamble(stored);
  if (!pre) throw decodeError(INFO, stored, origSize, 'malformed length header');
  if (pre.length !== origSize) throw decodeError(INFO, stored, origSize, `length header says ${pre.length} bytes`);
  return pre.headerSize;
}

/** Decode with the TypeScript decoder, after the preamble check. */
function decodeTs(stored: Uint8Array, origSize: number, start: number): Buffer {
  const out = Buffer.allocUnsafe(origSize);
  try {
    snappyDecodeInto(stored, start, out); // fills every byte or throws
  } catch (e) {
    throw wrapError(INFO, 'decompress', stored, origSize, e);
  }
  return out;
}

function compressJs(data: Uint8Array, level: number): Buffer {
  codecLevel(CompressionType.SNAPPY, level);
  const js = loadJs();
  if (!js.ok) throw wrapError(INFO, 'compress', data, undefined, new Error(`snappyjs unavailable: ${js.error}`));
  try {
    return asBuffer(js.value.compress(asBuffer(data)));
  } catch (e) {
    throw wrapError(INFO, 'compress', data, undefined, e);
  }
}

/** The pure-JS snappy codec: `snappyjs` compression, TypeScript decoding. */
export const snappyJsCodec: Codec = Object.freeze({
  type: CompressionType.SNAPPY,
  name: 'snappy',
  impl: 'snappyjs (js)',
  compressSync: compressJs,
  decompressSync(stored: Uint8Array, origSize: number): Buffer {
    return decodeTs(stored, origSize, checkPreamble(stored, origSize));
  },
  async compress(data: Uint8Array, level: number): Promise<Buffer> {
    return compressJs(data, level);
  },
  async decompress(stored: Uint8Array, origSize: number): Promise<Buffer> {
    return decodeTs(stored, origSize, checkPreamble(stored, origSize));
  },
});

/**
 * The snappy codec backed by the native `snappy` package, or `undefined` when its binary does not
 * load (see `codecLoadFailures`).
 */
export function snappyNativeCodec(): Codec | undefined {
  const loaded = loadNative();
  if (!loaded.ok) return undefined;
  const native = loaded.value;

  const compressSync = (data: Uint8Array, level: number): Buffer => {
    codecLevel(CompressionType.SNAPPY, level);
    try {
      return native.compressSync(data, ENC_OPTS);
    } catch (e) {
      throw wrapError(INFO, 'compress', data, undefined, e);
    }
  };
  const decompressSync = (stored: Uint8Array, origSize: number): Buffer => {
    checkPreamble(stored, origSize);
    let out: Buffer;
    try {
      out = native.uncompressSync(stored, DEC_OPTS);
    } catch (e) {
      throw wrapError(INFO, 'decompress', stored, origSize, e);
    }
    return exactSize(INFO, stored, origSize, out);
  };

  return Object.freeze({
    type: CompressionType.SNAPPY,
    name: 'snappy',
    impl: 'snappy (napi)',
    compressSync,
    decompressSync,
    async compress(data: Uint8Array, level: number): Promise<Buffer> {
      if (data.length < ASYNC_MIN) return compressSync(data, level);
      codecLevel(CompressionType.SNAPPY, level);
      try {
        return await native.compress(data, ENC_OPTS);
      } catch (e) {
        throw wrapError(INFO, 'compress', data, undefined, e);
      }
    },
    async decompress(stored: Uint8Array, origSize: number): Promise<Buffer> {
      if (origSize < ASYNC_MIN) return decompressSync(stored, origSize);
      checkPreamble(stored, origSize);
      let out: Buffer;
      try {
        out = await native.uncompress(stored, DEC_OPTS);
      } catch (e) {
        throw wrapError(INFO, 'decompress', stored, origSize, e);
      }
      return exactSize(INFO, stored, origSize, out);
    },
  });
}

/**
 * An encoder of raw snappy blocks from elsewhere (the native addon's, see `useSnappyEncoder`): the
 * block of `data`, or with `onlyIfSmaller` null when it would not be shorter than `data`.
 */
export type SnappyEncoder = (data: Uint8Array, onlyIfSmaller: boolean) => Buffer | null;

/**
 * The snappy codec compressing with `encode` and decompressing with `base` (the default codec's
 * checked decoder).
 */
export function snappyCodecWithEncoder(encode: SnappyEncoder, base: Codec, name: string): Codec {
  const compressSync = (data: Uint8Array, level: number): Buffer => {
    codecLevel(CompressionType.SNAPPY, level);
    let out: Buffer | null;
    try {
      out = encode(data, false);
    } catch (e) {
      throw wrapError(INFO, 'compress', data, undefined, e);
    }
    if (!out) throw wrapError(INFO, 'compress', data, undefined, new Error(`${name} encoder returned nothing`));
    return out;
  };
  return Object.freeze({
    type: CompressionType.SNAPPY,
    name: 'snappy',
    impl: `${name} encoder, ${base.impl} decoder`,
    compressSync,
    compressIfSmaller(data: Uint8Array, level: number): Buffer | undefined {
      codecLevel(CompressionType.SNAPPY, level);
      try {
        return encode(data, true) ?? undefined;
      } catch (e) {
        throw wrapError(INFO, 'compress', data, undefined, e);
      }
    },
    async compress(data: Uint8Array, level: number): Promise<Buffer> {
      return compressSync(data, level);
    },
    decompress: (stored: Uint8Array, origSize: number) => base.decompress(stored, origSize),
    decompressSync: base.decompressSync ? (stored: Uint8Array, origSize: number) => base.decompressSync!(stored, origSize) : undefined,
  });
}
