/**
 * The shape of a codec, and the checks every implementation shares.
 *
 * @module
 */
import { CodecError, reasonOf, type CodecOperation } from './errors.ts';

/**
 * One wdiff record codec: compresses raw record data into the container walb-tools writes for its
 * compression type, and decompresses such a container back.
 *
 * Implementations are swappable with {@link registerCodec}; hot paths call the `…Sync` methods
 * when present.
 */
export interface Codec {
  /** Compression type id (`CompressionType`). */
  readonly type: number;
  /** Codec name: `none`, `gzip`, `snappy`, `lzma`, `lz4`, `zstd`. */
  readonly name: string;
  /** The library behind it, for diagnostics: for example `snappy (napi)` or `snappyjs (js)`. */
  readonly impl: string;
  /**
   * Compress one record's data.
   *
   * @param data - raw bytes
   * @param level - codec level; 0 selects the codec's default (see `codecLevel`)
   * @returns the container bytes (never aliasing `data`)
   * @throws {@link CodecError} when the library fails; `ValueOutOfRangeError` for a bad level
   */
  compress(data: Uint8Array, level: number): Promise<Buffer>;
  /**
   * Decompress one stored image.
   *
   * @param stored - the container bytes
   * @param origSize - the exact size the data must decompress to (`io_blocks × 512`)
   * @returns exactly `origSize` bytes
   * @throws {@link CodecError} for corrupt input, a size mismatch, or `origSize` out of range
   */
  decompress(stored: Uint8Array, origSize: number): Promise<Buffer>;
  /** Synchronous {@link Codec.compress}, when the library allows it. */
  compressSync?(data: Uint8Array, level: number): Buffer;
  /**
   * The container bytes when they are shorter than `data`, else `undefined`: for encoders that can
   * give up early, so an incompressible record costs no output buffer. Used by `compressOrRaw`
   * when present.
   */
  compressIfSmaller?(data: Uint8Array, level: number): Buffer | undefined;
  /** Synchronous {@link Codec.decompress}, when the library allows it. */
  decompressSync?(stored: Uint8Array, origSize: number): Buffer;
}

/**
 * Largest `origSize` a decompression accepts: 64 MiB. A record holds at most a few MiB (one pack's
 * data is capped at 32 MiB), so anything larger is a corrupt `io_blocks` and is refused before any
 * allocation.
 */
export const MAX_DECOMPRESSED_SIZE = 64 * 1024 * 1024;

/** Context of one codec call, used to build its errors. */
export interface CallInfo {
  readonly codec: string;
  readonly type: number;
}

/** A {@link CodecError} for a failed decompression of `stored` into `origSize` bytes. */
export function decodeError(c: CallInfo, stored: Uint8Array, origSize: number, reason: string, cause?: unknown): CodecError {
  return new CodecError({ codec: c.codec, type: c.type, operation: 'decompress', inputSize: stored.length, origSize, cause }, reason);
}

/** A {@link CodecError} for a failed compression of `data`. */
export function encodeError(c: CallInfo, data: Uint8Array, reason: string, cause?: unknown): CodecError {
  return new CodecError({ codec: c.codec, type: c.type, operation: 'compress', inputSize: data.length, cause }, reason);
}

/** Wrap whatever a library threw into a {@link CodecError} (kept as is when it already is one). */
export function wrapError(c: CallInfo, op: CodecOperation, input: Uint8Array, origSize: number | undefined, e: unknown): CodecError {
  if (e instanceof CodecError) return e;
  return new CodecError(
    { codec: c.codec, type: c.type, operation: op, inputSize: input.length, origSize, cause: e },
    reasonOf(e),
  );
}

/**
 * Reject an `origSize` that is not an integer in 0..{@link MAX_DECOMPRESSED_SIZE}, before anything
 * is allocated for it.
 */
export function checkOrigSize(c: CallInfo, stored: Uint8Array, origSize: number): void {
  if (!Number.isSafeInteger(origSize) || origSize < 0 || origSize > MAX_DECOMPRESSED_SIZE) {
    throw decodeError(c, stored, origSize, `decompressed size must be an integer in 0..${MAX_DECOMPRESSED_SIZE}`);
  }
}

/** Check that a decompressor produced exactly `origSize` bytes, and return them as a Buffer. */
export function exactSize(c: CallInfo, stored: Uint8Array, origSize: number, out: Uint8Array): Buffer {
  if (out.length !== origSize) {
    throw decodeError(c, stored, origSize, `decompressed to ${out.length} bytes`);
  }
  return asBuffer(out);
}

/** View `u8` as a Buffer without copying. */
export function asBuffer(u8: Uint8Array): Buffer {
  return Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

/**
 * A reproducible source of incompressible bytes for the probes an external implementation is
 * checked with before use (xorshift): each call continues where the last one stopped.
 * @internal
 */
export function probeNoise(seed: number): (n: number) => Buffer {
  let s = seed;
  return (n) => Buffer.from(Array.from({ length: n }, () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return s & 0xff; }));
}
