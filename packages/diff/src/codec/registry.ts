/**
 * Which codec serves each compression type, and the record-level operations built on them.
 *
 * Defaults are chosen lazily, at the first {@link getCodec} of a type: for snappy and lz4 the
 * native library when it loads, else the pure-JS implementation. {@link registerCodec} swaps in
 * another implementation.
 *
 * @module
 */
import { CompressionType, isCompressionType, codecLevel } from '../compression.ts';
import { UnknownCompressionTypeError } from '../errors.ts';
import { CodecError } from './errors.ts';
import { lz4NativeCodec, lz4TsCodec } from './lz4.ts';
import { lzmaCodec } from './lzma.ts';
import { noneCodec } from './none.ts';
import { snappyCodecWithEncoder, snappyJsCodec, snappyNativeCodec, type SnappyEncoder } from './snappy.ts';
import { asBuffer, probeNoise, type Codec } from './types.ts';
import { zlibCodec } from './zlib.ts';
import { zstdCodec } from './zstd.ts';

const DEFAULTS: Readonly<Record<CompressionType, () => Codec>> = {
  [CompressionType.NONE]: () => noneCodec,
  [CompressionType.GZIP]: () => zlibCodec,
  [CompressionType.SNAPPY]: () => snappyNativeCodec() ?? snappyJsCodec,
  [CompressionType.LZMA]: () => lzmaCodec,
  [CompressionType.LZ4]: () => lz4NativeCodec() ?? lz4TsCodec,
  [CompressionType.ZSTD]: () => zstdCodec,
};

const active = new Map<number, Codec>();

/**
 * The codec serving compression type `type`.
 *
 * @param type - a compression type id, 0..5
 * @throws {@link UnknownCompressionTypeError} for any other value
 *
 * @example
 * getCodec(CompressionType.SNAPPY).impl // 'snappy (napi)', or 'snappyjs (js)' without the binary
 */
export function getCodec(type: number): Codec {
  if (!isCompressionType(type)) throw new UnknownCompressionTypeError(type);
  let codec = active.get(type);
  if (!codec) {
    codec = DEFAULTS[type]();
    active.set(type, codec);
  }
  return codec;
}

/**
 * The default codec of `type` (what {@link getCodec} returns unless another was registered).
 *
 * @throws {@link UnknownCompressionTypeError} for an unknown type
 */
export function defaultCodec(type: number): Codec {
  if (!isCompressionType(type)) throw new UnknownCompressionTypeError(type);
  return DEFAULTS[type]();
}

/**
 * Make `codec` serve its compression type from now on, replacing the current one.
 *
 * @throws {@link UnknownCompressionTypeError} when `codec.type` is not 0..5
 */
export function registerCodec(codec: Codec): void {
  if (!isCompressionType(codec.type)) throw new UnknownCompressionTypeError(codec.type);
  active.set(codec.type, codec);
}

/**
 * Go back to the default codec of `type`, or of every type when `type` is omitted.
 */
export function resetCodec(type?: number): void {
  if (type === undefined) active.clear();
  else active.delete(type);
}

/**
 * Compress snappy records with `encode` (for example the native addon's encoder, which skips
 * through incompressible data about twice as fast as the default and allocates nothing for it),
 * decompressing with the default codec. The encoder is checked first: its blocks of a few probes
 * (empty, short, random, repetitive, longer than one 64 KiB block) must decode back through the
 * default decoder, and an "only if smaller" answer must be shorter; one that fails is refused.
 * Its bytes may differ from walb-tools' encoder's; every snappy decoder reads them. Pass
 * `undefined` to go back to the default.
 *
 * @returns whether the encoder is now in use.
 * @example
 * import { loadNative } from '@walbjs/native-walb';
 * useSnappyEncoder(loadNative().snappyCompress, 'walbjs native');
 */
export function useSnappyEncoder(encode: SnappyEncoder | undefined, name = 'external'): boolean {
  resetCodec(CompressionType.SNAPPY);
  if (encode === undefined) return true;
  const base = getCodec(CompressionType.SNAPPY);
  if (!base.decompressSync) return false;
  const codec = snappyCodecWithEncoder(encode, base, name);
  const noise = probeNoise(0x2545f491);
  const probes = [Buffer.alloc(0), Buffer.from('w'), Buffer.alloc(4096, 7), noise(4096), Buffer.from('walbjs snappy probe '.repeat(3700)), Buffer.concat([noise(40000), Buffer.alloc(40000)])];
  try {
    for (const p of probes) {
      if (!base.decompressSync(codec.compressSync!(p, 0), p.length).equals(p)) return false;
      const small = codec.compressIfSmaller!(p, 0);
      if (small && (small.length >= p.length || !base.decompressSync(small, p.length).equals(p))) return false;
    }
  } catch {
    return false;
  }
  registerCodec(codec);
  return true;
}

/** A record's data as stored: the compression type actually used and the bytes. */
export interface StoredData {
  /** `compression_type` to write in the record: the requested one, or 0 when stored raw. */
  readonly cmpr: number;
  /** The bytes to store. When `cmpr` is 0 this is a view of the input, not a copy. */
  readonly stored: Buffer;
}

function rawResult(data: Uint8Array): StoredData {
  return { cmpr: CompressionType.NONE, stored: asBuffer(data) };
}

/**
 * Compress one record's data the way walb-tools writes it: with codec `type` at `level`, unless
 * compression fails or does not make it smaller, in which case the raw data is stored with type 0.
 *
 * @param type - compression type id
 * @param level - codec level, 0 for the codec's default
 * @param data - the record's data
 * @throws {@link UnknownCompressionTypeError} or `ValueOutOfRangeError` for a bad type or level
 *
 * @example
 * const { cmpr, stored } = await compressOrRaw(CompressionType.SNAPPY, 0, data);
 */
export async function compressOrRaw(type: number, level: number, data: Uint8Array): Promise<StoredData> {
  const codec = getCodec(type);
  codecLevel(type, level);
  if (type === CompressionType.NONE) return rawResult(data);
  if (codec.compressIfSmaller) return compressIfSmaller(codec, type, level, data);
  let out: Buffer;
  try {
    out = await codec.compress(data, level);
  } catch (e) {
    if (e instanceof CodecError) return rawResult(data);
    throw e;
  }
  return out.length < data.length ? { cmpr: type, stored: out } : rawResult(data);
}

function compressIfSmaller(codec: Codec, type: number, level: number, data: Uint8Array): StoredData {
  let out: Buffer | undefined;
  try {
    out = codec.compressIfSmaller!(data, level);
  } catch (e) {
    if (e instanceof CodecError) return rawResult(data);
    throw e;
  }
  return out && out.length < data.length ? { cmpr: type, stored: out } : rawResult(data);
}

/** Whether {@link compressOrRawSync} has a synchronous path for codec `type`. */
export function hasSyncCompress(type: number): boolean {
  const codec = getCodec(type);
  return type === CompressionType.NONE || codec.compressIfSmaller !== undefined || codec.compressSync !== undefined;
}

/**
 * Synchronous {@link compressOrRaw}, or `undefined` when the codec has no synchronous path.
 */
export function compressOrRawSync(type: number, level: number, data: Uint8Array): StoredData | undefined {
  const codec = getCodec(type);
  codecLevel(type, level);
  if (type === CompressionType.NONE) return rawResult(data);
  if (codec.compressIfSmaller) return compressIfSmaller(codec, type, level, data);
  if (!codec.compressSync) return undefined;
  let out: Buffer;
  try {
    out = codec.compressSync(data, level);
  } catch (e) {
    if (e instanceof CodecError) return rawResult(data);
    throw e;
  }
  return out.length < data.length ? { cmpr: type, stored: out } : rawResult(data);
}

/**
 * Decompress one record's stored data.
 *
 * @param cmpr - the record's `compression_type`
 * @param stored - its stored bytes
 * @param origSize - the size it must decompress to (`io_blocks × 512`), at most 64 MiB
 * @returns exactly `origSize` bytes (a view of `stored` when `cmpr` is 0)
 * @throws {@link UnknownCompressionTypeError} for an unknown `cmpr`; {@link CodecError} for
 *   corrupt data, a size mismatch, or an out-of-range `origSize`
 */
export async function decompressStored(cmpr: number, stored: Uint8Array, origSize: number): Promise<Buffer> {
  return getCodec(cmpr).decompress(stored, origSize);
}

/**
 * Synchronous {@link decompressStored}, or `undefined` when the codec has no synchronous path.
 *
 * @throws the errors of {@link decompressStored}
 */
export function decompressStoredSync(cmpr: number, stored: Uint8Array, origSize: number): Buffer | undefined {
  const codec = getCodec(cmpr);
  return codec.decompressSync ? codec.decompressSync(stored, origSize) : undefined;
}
