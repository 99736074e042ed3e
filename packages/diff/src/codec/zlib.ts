/**
 * Compression type 1, named "gzip" by walb-tools but stored as a **zlib stream** (RFC 1950: a
 * 2-byte header, raw deflate, an Adler-32), as `compress2` writes and `uncompress` reads. Backed by
 * `node:zlib`, which wraps the same zlib.
 *
 * Decompression passes `maxOutputLength`, so a stream that inflates past the record size stops
 * there instead of growing a buffer.
 *
 * @module
 */
import { deflate, deflateSync, inflate, inflateSync, type ZlibOptions } from 'node:zlib';
import { CompressionType, codecLevel } from '../compression.ts';
import { checkOrigSize, exactSize, wrapError, type Codec } from './types.ts';

const INFO = { codec: 'gzip', type: CompressionType.GZIP };

function deflateOptions(level: number): ZlibOptions {
  // Level 0 means the codec default, Z_DEFAULT_COMPRESSION, which zlib runs as 6.
  return { level: codecLevel(CompressionType.GZIP, level) };
}

function inflateOptions(origSize: number): ZlibOptions {
  return { maxOutputLength: Math.max(1, origSize) };
}

/** The zlib-stream codec of compression type 1. */
export const zlibCodec: Codec = Object.freeze({
  type: CompressionType.GZIP,
  name: 'gzip',
  impl: 'node:zlib',
  compressSync(data: Uint8Array, level: number): Buffer {
    const opts = deflateOptions(level);
    try {
      return deflateSync(data, opts);
    } catch (e) {
      throw wrapError(INFO, 'compress', data, undefined, e);
    }
  },
  decompressSync(stored: Uint8Array, origSize: number): Buffer {
    checkOrigSize(INFO, stored, origSize);
    let out: Buffer;
    try {
      out = inflateSync(stored, inflateOptions(origSize));
    } catch (e) {
      throw wrapError(INFO, 'decompress', stored, origSize, e);
    }
    return exactSize(INFO, stored, origSize, out);
  },
  compress(data: Uint8Array, level: number): Promise<Buffer> {
    let opts: ZlibOptions;
    try {
      opts = deflateOptions(level);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      deflate(data, opts, (err, out) => (err ? reject(wrapError(INFO, 'compress', data, undefined, err)) : resolve(out)));
    });
  },
  decompress(stored: Uint8Array, origSize: number): Promise<Buffer> {
    try {
      checkOrigSize(INFO, stored, origSize);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      inflate(stored, inflateOptions(origSize), (err, out) => {
        if (err) reject(wrapError(INFO, 'decompress', stored, origSize, err));
        else {
          try {
            resolve(exactSize(INFO, stored, origSize, out));
          } catch (e) {
            reject(e);
          }
        }
      });
    });
  },
});
