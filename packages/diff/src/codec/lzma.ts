/**
 * Compression type 3: an **.xz stream** with a CRC64 check, as `lzma_easy_buffer_encode(preset =
 * level or 6, LZMA_CHECK_CRC64)` writes, decoded like `lzma_stream_buffer_decode` does. Backed by
 * liblzma 5.2 through `lzma-native`, whose package carries prebuilt binaries (no compilation at
 * install; its install script is not needed).
 *
 * The package's native coder is driven directly: synchronously for the `…Sync` methods, on the
 * libuv thread pool for the others. Before decoding, `walkXz` checks the container and adds
 * up the sizes its LZMA2 chunks declare; unless that equals the record size the input is refused,
 * so liblzma can never produce more than the record. A memory limit caps the dictionary it may
 * allocate.
 *
 * @module
 */
import { CompressionType, codecLevel } from '../compression.ts';
import { CodecError } from './errors.ts';
import { loadOnce } from './load.ts';
import { asBuffer, checkOrigSize, decodeError, exactSize, wrapError, type Codec } from './types.ts';
import { walkXz } from './xz-walk.ts';

const INFO = { codec: 'lzma', type: CompressionType.LZMA };

/** liblzma memory limit for decoding: enough for preset 9 (64 MiB dictionary). */
export const XZ_DECODER_MEMLIMIT = 128 * 1024 * 1024;
const LZMA_CHECK_CRC64 = 4;
const LZMA_CONCATENATED = 0x08;

type BufferHandler = (buf: Buffer | null | undefined, processed: number | undefined, err: Error | null | undefined) => void;

/** The native coder object of `lzma-native` (the methods used here). */
interface NativeStream {
  easyEncoder_(preset: number, check: number): void;
  streamDecoder_(memlimit: number, flags: number): void;
  setBufsize(size: number): number;
  code(chunk: Buffer | null, async: boolean): void;
  bufferHandler: BufferHandler;
}

interface LzmaNative {
  Stream: new () => NativeStream;
  asyncCodeAvailable?: boolean;
}

const loadNative = loadOnce('lzma-native', (req) => {
  const m = req('lzma-native') as LzmaNative;
  if (typeof m.Stream !== 'function') throw new Error('lzma-native: no native Stream class');
  return m;
});

function native(op: 'compress' | 'decompress', input: Uint8Array, origSize?: number): LzmaNative {
  const loaded = loadNative();
  if (!loaded.ok) {
    throw new CodecError(
      { codec: INFO.codec, type: INFO.type, operation: op, inputSize: input.length, origSize },
      `lzma-native is not available: ${loaded.error}`,
    );
  }
  return loaded.value;
}

/** A coder run in progress: collects output until the end of the stream or an error. */
class Run {
  readonly chunks: Buffer[] = [];
  size = 0;
  done = false;
  error: Error | undefined;
  onSettle: (() => void) | undefined;

  handler: BufferHandler = (buf, _processed, err) => {
    if (this.done) return;
    if (err) {
      this.error = err;
      this.finish();
    } else if (buf === null) {
      this.finish();
    } else if (buf) {
      this.chunks.push(buf);
      this.size += buf.length;
    }
  };

  private finish(): void {
    this.done = true;
    this.onSettle?.();
  }

  result(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
  }
}

// Native coders being run asynchronously, kept reachable until they settle.
const pending = new Set<NativeStream>();

function runSync(stream: NativeStream, input: Uint8Array): Buffer {
  const run = new Run();
  stream.bufferHandler = run.handler;
  stream.code(asBuffer(input), false);
  if (!run.done) stream.code(null, false);
  if (run.error) throw run.error;
  if (!run.done) throw new Error('liblzma did not reach the end of the stream');
  return run.result();
}

function runAsync(stream: NativeStream, input: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const run = new Run();
    pending.add(stream);
    run.onSettle = () => {
      pending.delete(stream);
      if (run.error) reject(run.error);
      else resolve(run.result());
    };
    // The finishing call is queued only once the input has been consumed: two queued workers could
    // otherwise take the coder's lock in either order.
    let finishing = false;
    stream.bufferHandler = (buf, processed, err) => {
      run.handler(buf, processed, err);
      if (!run.done && !finishing && processed !== undefined) {
        finishing = true;
        try {
          stream.code(null, true);
        } catch (e) {
          run.handler(null, undefined, e instanceof Error ? e : new Error(String(e)));
        }
      }
    };
    try {
      stream.code(asBuffer(input), true);
    } catch (e) {
      pending.delete(stream);
      reject(e);
    }
  });
}

function encoder(lib: LzmaNative, data: Uint8Array, level: number): NativeStream {
  const preset = codecLevel(CompressionType.LZMA, level) as number;
  try {
    const s = new lib.Stream();
    s.easyEncoder_(preset, LZMA_CHECK_CRC64);
    s.setBufsize(Math.max(4096, Math.min(data.length + 1024, 64 * 1024 * 1024)));
    return s;
  } catch (e) {
    throw wrapError(INFO, 'compress', data, undefined, e);
  }
}

/** Validate the container and the declared size; returns a ready decoder. */
function decoder(lib: LzmaNative, stored: Uint8Array, origSize: number): NativeStream {
  checkOrigSize(INFO, stored, origSize);
  let declared: number;
  try {
    declared = walkXz(stored).uncompressedSize;
  } catch (e) {
    throw wrapError(INFO, 'decompress', stored, origSize, e);
  }
  if (declared !== origSize) throw decodeError(INFO, stored, origSize, `its LZMA2 chunks hold ${declared} bytes`);
  try {
    const s = new lib.Stream();
    s.streamDecoder_(XZ_DECODER_MEMLIMIT, LZMA_CONCATENATED);
    s.setBufsize(Math.max(4096, origSize + 1));
    return s;
  } catch (e) {
    throw wrapError(INFO, 'decompress', stored, origSize, e);
  }
}

function canRunAsync(lib: LzmaNative): boolean {
  return lib.asyncCodeAvailable !== false;
}

/** The .xz codec of compression type 3. Its methods throw a {@link CodecError} if `lzma-native` does not load. */
export const lzmaCodec: Codec = Object.freeze({
  type: CompressionType.LZMA,
  name: 'lzma',
  impl: 'lzma-native (liblzma)',
  compressSync(data: Uint8Array, level: number): Buffer {
    const lib = native('compress', data);
    const s = encoder(lib, data, level);
    try {
      return runSync(s, data);
    } catch (e) {
      throw wrapError(INFO, 'compress', data, undefined, e);
    }
  },
  decompressSync(stored: Uint8Array, origSize: number): Buffer {
    const lib = native('decompress', stored, origSize);
    const s = decoder(lib, stored, origSize);
    let out: Buffer;
    try {
      out = runSync(s, stored);
    } catch (e) {
      throw wrapError(INFO, 'decompress', stored, origSize, e);
    }
    return exactSize(INFO, stored, origSize, out);
  },
  async compress(data: Uint8Array, level: number): Promise<Buffer> {
    const lib = native('compress', data);
    const s = encoder(lib, data, level);
    try {
      return canRunAsync(lib) ? await runAsync(s, data) : runSync(s, data);
    } catch (e) {
      throw wrapError(INFO, 'compress', data, undefined, e);
    }
  },
  async decompress(stored: Uint8Array, origSize: number): Promise<Buffer> {
    const lib = native('decompress', stored, origSize);
    const s = decoder(lib, stored, origSize);
    let out: Buffer;
    try {
      out = canRunAsync(lib) ? await runAsync(s, stored) : runSync(s, stored);
    } catch (e) {
      throw wrapError(INFO, 'decompress', stored, origSize, e);
    }
    return exactSize(INFO, stored, origSize, out);
  },
});
