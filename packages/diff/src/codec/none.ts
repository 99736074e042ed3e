/**
 * Compression type 0: the stored image is the raw data.
 *
 * @module
 */
import { CompressionType, codecLevel } from '../compression.ts';
import { asBuffer, checkOrigSize, decodeError, type Codec } from './types.ts';

const INFO = { codec: 'none', type: CompressionType.NONE };

/** The `none` codec: compression copies the data; decompression checks the size and returns a view of `stored`. */
export const noneCodec: Codec = Object.freeze({
  type: CompressionType.NONE,
  name: 'none',
  impl: 'raw',
  compressSync(data: Uint8Array, level: number): Buffer {
    codecLevel(CompressionType.NONE, level);
    return Buffer.from(data);
  },
  decompressSync(stored: Uint8Array, origSize: number): Buffer {
    checkOrigSize(INFO, stored, origSize);
    if (stored.length !== origSize) throw decodeError(INFO, stored, origSize, 'raw data has another size');
    return asBuffer(stored);
  },
  async compress(data: Uint8Array, level: number): Promise<Buffer> {
    return noneCodec.compressSync!(data, level);
  },
  async decompress(stored: Uint8Array, origSize: number): Promise<Buffer> {
    return noneCodec.decompressSync!(stored, origSize);
  },
});
