/**
 * The record codecs of wdiff files: each normal record's data is compressed on its own into the
 * exact container walb-tools 1.0.19 uses for its `compression_type`:
 *
 * | type | name | container | default implementation |
 * |---|---|---|---|
 * | 0 | none | raw bytes | — |
 * | 1 | gzip | zlib stream (RFC 1950) | `node:zlib` |
 * | 2 | snappy | raw snappy block | `snappy` (napi), else `snappyjs` + a TypeScript decoder |
 * | 3 | lzma | .xz stream, CRC64 | `lzma-native` (liblzma) |
 * | 4 | lz4 | raw LZ4 block | `lz4-napi`, else a TypeScript block codec |
 * | 5 | zstd | zstd frame | libzstd in WebAssembly (`@bokuweb/zstd-wasm`) |
 *
 * Decompression is safe on hostile input: corrupt data gives a {@link CodecError}, output is
 * exactly the expected size, and nothing larger than that size is allocated for it.
 *
 * @example
 * const { cmpr, stored } = await compressOrRaw(CompressionType.ZSTD, 0, data);
 * const back = await decompressStored(cmpr, stored, data.length);
 *
 * @module
 */
export { CodecError, type CodecErrorInfo, type CodecOperation } from './errors.ts';
export { MAX_DECOMPRESSED_SIZE, type Codec } from './types.ts';
export {
  getCodec,
  defaultCodec,
  registerCodec,
  resetCodec,
  useSnappyEncoder,
  compressOrRaw,
  compressOrRawSync,
  hasSyncCompress,
  decompressStored,
  decompressStoredSync,
  type StoredData,
} from './registry.ts';
export { codecLoadFailures } from './load.ts';
export { noneCodec } from './none.ts';
export { zlibCodec } from './zlib.ts';
export { snappyNativeCodec, snappyJsCodec, snappyCodecWithEncoder, type SnappyEncoder } from './snappy.ts';
export { lzmaCodec, XZ_DECODER_MEMLIMIT } from './lzma.ts';
export { lz4NativeCodec, lz4TsCodec } from './lz4.ts';
export { zstdCodec } from './zstd.ts';
