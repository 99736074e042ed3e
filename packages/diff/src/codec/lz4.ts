/**
 * Compression type 4: a raw LZ4 block (`LZ4_compress_default` / `LZ4_decompress_safe`): no frame
 * and no size field; the decompressed size is the record's `io_blocks × 512`.
 *
 * - `lz4-napi` (Rust `lz4_flex` with its safe decoder, a prebuilt binary in an optional
 *   dependency) when it loads. Its format puts a u32-LE decompressed size before the block: the
 *   codec strips it after compression and writes the record size there before decompression, so
 *   the library allocates exactly the record size.
 * - The TypeScript block codec (`lz4CompressBlock`, `lz4DecodeBlockInto`) otherwise.
 *   It runs at roughly 35–90 % of the native speed depending on the data, and its encoder writes
 *   exactly the bytes of liblz4's `LZ4_compress_default` (what walb-tools writes): register
 *   {@link lz4TsCodec} when output must match walb-tools byte for byte.
 *
 * @module
 */
import { CompressionType, codecLevel } from '../compression.ts';
import { loadOnce } from './load.ts';
import { lz4CompressBlock, lz4DecodeBlockInto } from './lz4-block.ts';
import { asBuffer, checkOrigSize, decodeError, exactSize, wrapError, type Codec } from './types.ts';

const INFO = { codec: 'lz4', type: CompressionType.LZ4 };

/** Records from this size on go to the libuv thread pool in the asynchronous methods. */
const ASYNC_MIN = 256 * 1024;

interface Lz4Native {
  compressSync(input: Buffer): Buffer;
  uncompressSync(input: Uint8Array): Buffer;
  compress(input: Uint8Array): Promise<Buffer>;
  uncompress(input: Uint8Array): Promise<Buffer>;
}

const loadNative = loadOnce('lz4-napi', (req) => {
  const m = req('lz4-napi') as Lz4Native;
  const probe = Buffer.from('walbjs lz4 probe, walbjs lz4 probe, walbjs lz4 probe');
  const c = m.compressSync(probe);
  if (c.readUInt32LE(0) !== probe.length || !m.uncompressSync(c).equals(probe)) throw new Error('lz4-napi: self-test failed');
  return m;
});

function checkInput(stored: Uint8Array, origSize: number): void {
  checkOrigSize(INFO, stored, origSize);
  if (stored.length === 0) throw decodeError(INFO, stored, origSize, 'empty block');
}

function decodeTs(stored: Uint8Array, origSize: number): Buffer {
  checkInput(stored, origSize);
  const out = Buffer.allocUnsafe(origSize);
  let n: number;
  try {
    n = lz4DecodeBlockInto(stored, out);
  } catch (e) {
    throw wrapError(INFO, 'decompress', stored, origSize, e);
  }
  // Every byte below n was written; a shorter result is rejected, so no uninitialised byte escapes.
  return exactSize(INFO, stored, origSize, out.subarray(0, n));
}

function compressTs(data: Uint8Array, level: number): Buffer {
  codecLevel(CompressionType.LZ4, level);
  return lz4CompressBlock(data);
}

/** The pure-TypeScript LZ4 block codec. */
export const lz4TsCodec: Codec = Object.freeze({
  type: CompressionType.LZ4,
  name: 'lz4',
  impl: 'lz4 block (ts)',
  compressSync: compressTs,
  decompressSync: decodeTs,
  async compress(data: Uint8Array, level: number): Promise<Buffer> {
    return compressTs(data, level);
  },
  async decompress(stored: Uint8Array, origSize: number): Promise<Buffer> {
    return decodeTs(stored, origSize);
  },
});

/** `stored` behind a u32-LE size field, the input `lz4_flex::decompress_size_prepended` wants. */
function withSizePrefix(stored: Uint8Array, origSize: number): Buffer {
  const input = Buffer.allocUnsafe(stored.length + 4);
  input.writeUInt32LE(origSize, 0);
  input.set(stored, 4);
  return input;
}

/** The block inside `lz4_flex::compress_prepend_size` output. */
function stripSizePrefix(data: Uint8Array, out: Buffer): Buffer {
  if (out.length < 4 || out.readUInt32LE(0) !== data.length) {
    throw wrapError(INFO, 'compress', data, undefined, new Error('lz4-napi output lacks its size prefix'));
  }
  return out.subarray(4);
}

/**
 * The LZ4 codec backed by `lz4-napi`, or `undefined` when its binary does not load (see
 * `codecLoadFailures`).
 */
export function lz4NativeCodec(): Codec | undefined {
  const loaded = loadNative();
  if (!loaded.ok) return undefined;
  const native = loaded.value;

  const compressSync = (data: Uint8Array, level: number): Buffer => {
    codecLevel(CompressionType.LZ4, level);
    let out: Buffer;
    try {
      out = native.compressSync(asBuffer(data));
    } catch (e) {
      throw wrapError(INFO, 'compress', data, undefined, e);
    }
    return stripSizePrefix(data, out);
  };
  const decompressSync = (stored: Uint8Array, origSize: number): Buffer => {
    checkInput(stored, origSize);
    let out: Buffer;
    try {
      out = native.uncompressSync(withSizePrefix(stored, origSize));
    } catch (e) {
      throw wrapError(INFO, 'decompress', stored, origSize, e);
    }
    return exactSize(INFO, stored, origSize, out);
  };

  return Object.freeze({
    type: CompressionType.LZ4,
    name: 'lz4',
    impl: 'lz4-napi (napi)',
    compressSync,
    decompressSync,
    async compress(data: Uint8Array, level: number): Promise<Buffer> {
      if (data.length < ASYNC_MIN) return compressSync(data, level);
      codecLevel(CompressionType.LZ4, level);
      let out: Buffer;
      try {
        out = await native.compress(data);
      } catch (e) {
        throw wrapError(INFO, 'compress', data, undefined, e);
      }
      return stripSizePrefix(data, out);
    },
    async decompress(stored: Uint8Array, origSize: number): Promise<Buffer> {
      if (origSize < ASYNC_MIN) return decompressSync(stored, origSize);
      checkInput(stored, origSize);
      let out: Buffer;
      try {
        out = await native.uncompress(withSizePrefix(stored, origSize));
      } catch (e) {
        throw wrapError(INFO, 'decompress', stored, origSize, e);
      }
      return exactSize(INFO, stored, origSize, out);
    },
  });
}
