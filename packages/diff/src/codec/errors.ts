/**
 * The error of the codec layer: a stored image that does not decompress, does not decompress to its
 * recorded size, or cannot be handled because the library behind its codec is missing.
 *
 * @module
 */
import { WdiffFormatError, type ErrorLocation } from '../errors.ts';

/** What a codec was doing when it failed. */
export type CodecOperation = 'compress' | 'decompress' | 'load';

/** Details of a {@link CodecError}. */
export interface CodecErrorInfo {
  /** Codec name: `none`, `gzip`, `snappy`, `lzma`, `lz4` or `zstd`. */
  readonly codec: string;
  /** Compression type id of the codec. */
  readonly type: number;
  /** What failed. */
  readonly operation: CodecOperation;
  /** Bytes handed to the codec (the stored image for `decompress`, the raw data for `compress`). */
  readonly inputSize?: number;
  /** Bytes the image must decompress to (`io_blocks × 512`), for `decompress`. */
  readonly origSize?: number;
  /** The underlying exception, when a library threw. */
  readonly cause?: unknown;
}

function sizes(info: CodecErrorInfo): string {
  if (info.operation === 'decompress') {
    return ` (${info.inputSize ?? '?'} stored bytes → ${info.origSize ?? '?'} bytes expected)`;
  }
  if (info.operation === 'compress' && info.inputSize !== undefined) return ` (${info.inputSize} bytes)`;
  return '';
}

/**
 * A stored image does not decompress, or not to exactly its recorded size, or a codec cannot run
 * (its library failed to load). Code `ERR_WDIFF_CODEC`.
 *
 * @example
 * try { await decompressStored(CompressionType.SNAPPY, bytes, 4096); }
 * catch (e) { if (e instanceof CodecError) console.error(e.codec, e.origSize, e.message); }
 */
export class CodecError extends WdiffFormatError {
  /** Codec name. */
  readonly codec: string;
  /** Compression type id. */
  readonly type: number;
  /** What failed. */
  readonly operation: CodecOperation;
  /** Bytes handed to the codec, when known. */
  readonly inputSize: number | undefined;
  /** Expected decompressed size, for decompression. */
  readonly origSize: number | undefined;

  /**
   * @param info - codec, operation and sizes
   * @param reason - what went wrong, in words
   * @param loc - where in a file, when known
   */
  constructor(info: CodecErrorInfo, reason: string, loc?: ErrorLocation) {
    super('ERR_WDIFF_CODEC', `${info.codec}: cannot ${info.operation}${sizes(info)}: ${reason}`, loc);
    this.codec = info.codec;
    this.type = info.type;
    this.operation = info.operation;
    this.inputSize = info.inputSize;
    this.origSize = info.origSize;
    if (info.cause !== undefined) {
      Object.defineProperty(this, 'cause', { value: info.cause, enumerable: false, writable: true, configurable: true });
    }
  }
}

/** Short text of an unknown thrown value, for error messages. */
export function reasonOf(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}
