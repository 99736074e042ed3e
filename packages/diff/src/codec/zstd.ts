/**
 * Compression type 5: one zstd frame (`ZSTD_compress`, level = level or 1, below 20), decoded like
 * `ZSTD_decompress` (one or more frames). Backed by libzstd compiled to WebAssembly
 * (`@bokuweb/zstd-wasm`, see `zstd-wasm.ts`): synchronous, no native binary, and the
 * output buffer is the record size, never a size read from the input.
 *
 * @module
 */
import { CompressionType, codecLevel } from '../compression.ts';
import { CodecError } from './errors.ts';
import { checkOrigSize, decodeError, wrapError, type Codec } from './types.ts';
import { loadZstdWasm, ZstdLibError, type ZstdWasm } from './zstd-wasm.ts';

const INFO = { codec: 'zstd', type: CompressionType.ZSTD };

let instance: ZstdWasm | undefined;
let loadError: string | undefined;

function zstd(op: 'compress' | 'decompress', input: Uint8Array, origSize?: number): ZstdWasm {
  if (!instance) {
    try {
      instance = loadZstdWasm();
      loadError = undefined;
    } catch (e) {
      loadError = e instanceof Error ? e.message : String(e);
    }
  }
  if (!instance) {
    throw new CodecError(
      { codec: INFO.codec, type: INFO.type, operation: op, inputSize: input.length, origSize },
      `zstd wasm is not available: ${loadError}`,
    );
  }
  return instance;
}

/** A call failed: unless libzstd itself reported the error, drop the instance (it may be damaged). */
function failed(e: unknown): void {
  if (!(e instanceof ZstdLibError)) instance = undefined;
}

function compressSync(data: Uint8Array, level: number): Buffer {
  const lv = codecLevel(CompressionType.ZSTD, level) as number;
  const z = zstd('compress', data);
  try {
    return z.compress(data, lv);
  } catch (e) {
    failed(e);
    throw wrapError(INFO, 'compress', data, undefined, e);
  }
}

function decompressSync(stored: Uint8Array, origSize: number): Buffer {
  checkOrigSize(INFO, stored, origSize);
  if (stored.length === 0) throw decodeError(INFO, stored, origSize, 'no frame');
  const z = zstd('decompress', stored, origSize);
  try {
    return z.decompress(stored, origSize);
  } catch (e) {
    failed(e);
    throw wrapError(INFO, 'decompress', stored, origSize, e);
  }
}

/** The zstd codec of compression type 5. */
export const zstdCodec: Codec = Object.freeze({
  type: CompressionType.ZSTD,
  name: 'zstd',
  impl: '@bokuweb/zstd-wasm (wasm)',
  compressSync,
  decompressSync,
  async compress(data: Uint8Array, level: number): Promise<Buffer> {
    return compressSync(data, level);
  },
  async decompress(stored: Uint8Array, origSize: number): Promise<Buffer> {
    return decompressSync(stored, origSize);
  },
});
