/**
 * zstd through the WebAssembly build of libzstd shipped in `@bokuweb/zstd-wasm` (pinned to
 * 0.0.27): no install-time compilation, no platform binaries, synchronous calls, and corrupt input
 * can at worst trap inside the wasm sandbox.
 *
 * The package's own wrapper is not used: it needs an asynchronous `init()`, shares one global
 * instance, and sizes the output buffer from the frame header (an allocation chosen by the input).
 * Instead this module instantiates the package's `zstd.wasm` itself, synchronously and privately,
 * reuses one compression and one decompression context, and decompresses with the one-shot
 * `ZSTD_decompressDCtx` into a buffer of exactly the expected size, which bounds the output by
 * construction.
 *
 * The binary's exports carry minified names; the table below maps them for 0.0.27 and
 * {@link loadZstdWasm} verifies the mapping (export kinds, arities and a round trip) before use.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The parts of the WebAssembly JS API used here (the project's `lib` has no DOM typings). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: Record<string, unknown> };
  Memory: abstract new (...args: never[]) => WasmMemory;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The subset of the libzstd API used here, with wasm32 pointers and sizes as numbers. */
interface ZstdExports {
  memory: WasmMemory;
  initRuntime(): void;
  isError(code: number): number;
  compressBound(size: number): number;
  createCCtx(): number;
  createDCtx(): number;
  /** `ZSTD_compress_usingDict(cctx, dst, cap, src, size, dict, dictSize, level)`. */
  compressUsingDict(cctx: number, dst: number, cap: number, src: number, size: number, dict: number, dictSize: number, level: number): number;
  /** `ZSTD_decompress_usingDict(dctx, dst, cap, src, size, dict, dictSize)`. */
  decompressUsingDict(dctx: number, dst: number, cap: number, src: number, size: number, dict: number, dictSize: number): number;
  malloc(size: number): number;
  free(ptr: number): void;
}

/** Export name in zstd-wasm 0.0.27 → [our name, number of parameters]. */
const EXPORTS_0_0_27: Record<string, [keyof ZstdExports, number]> = {
  g: ['initRuntime', 0],
  h: ['isError', 1],
  i: ['compressBound', 1],
  j: ['createCCtx', 0],
  l: ['compressUsingDict', 8],
  n: ['createDCtx', 0],
  q: ['decompressUsingDict', 7],
  s: ['malloc', 1],
  t: ['free', 1],
};
const MEMORY_EXPORT = 'f';
const WASM_PAGE = 65536;
const MAX_HEAP = 2 * 1024 * 1024 * 1024;

/** A loaded private instance of libzstd. */
export interface ZstdWasm {
  /** Compress `data` into one zstd frame at `level` (1..19), with the content size in its header. */
  compress(data: Uint8Array, level: number): Buffer;
  /**
   * Decompress `stored` (one or more frames) into exactly `size` bytes.
   *
   * @throws Error when libzstd reports an error or the frames hold another amount of data
   */
  decompress(stored: Uint8Array, size: number): Buffer;
}

function instantiate(): ZstdExports {
  const req = createRequire(import.meta.url);
  const wasmPath = join(dirname(req.resolve('@bokuweb/zstd-wasm')), 'zstd.wasm');
  const module = new WA.Module(readFileSync(wasmPath));
  let memory: WasmMemory | undefined;

  // The five imports of the emscripten runtime: exit, keep-alive, abort, timers, heap growth.
  const imports = {
    a: {
      a: (code: number) => { throw new Error(`libzstd called exit(${code})`); },
      b: () => {},
      c: () => { throw new Error('libzstd aborted'); },
      d: () => 0,
      e: (requested: number) => {
        if (!memory) return 0;
        const want = requested >>> 0;
        if (want > MAX_HEAP) return 0;
        const have = memory.buffer.byteLength;
        const target = Math.min(MAX_HEAP, Math.max(want, Math.floor(have * 1.25)));
        try {
          memory.grow(Math.ceil((target - have) / WASM_PAGE));
          return 1;
        } catch {
          return 0;
        }
      },
    },
  };
  const instance = new WA.Instance(module, imports);
  const raw = instance.exports;
  const mem = raw[MEMORY_EXPORT];
  if (!(mem instanceof WA.Memory)) throw new Error(`zstd.wasm: export "${MEMORY_EXPORT}" is not a memory`);
  memory = mem;
  const out: Partial<ZstdExports> = { memory: mem };
  for (const [exp, [name, arity]] of Object.entries(EXPORTS_0_0_27)) {
    const fn = raw[exp];
    if (typeof fn !== 'function' || fn.length !== arity) {
      throw new Error(`zstd.wasm: export "${exp}" is not a ${arity}-argument function (expected @bokuweb/zstd-wasm 0.0.27)`);
    }
    (out as Record<string, unknown>)[name] = fn;
  }
  return out as ZstdExports;
}

/**
 * libzstd returned an error code: the input is bad, the instance is fine. Anything else thrown by
 * a call (a trap, an abort) means the instance may be damaged and must be replaced.
 */
export class ZstdLibError extends Error {}

function libError(result: number): ZstdLibError {
  // A size_t error result is (size_t)−code; ZSTD_getErrorName is not exported by this build.
  return new ZstdLibError(`libzstd error code ${(0x100000000 - (result >>> 0)) >>> 0}`);
}

function bind(z: ZstdExports): ZstdWasm {
  z.initRuntime();
  const cctx = z.createCCtx();
  const dctx = z.createDCtx();
  if (!cctx || !dctx) throw new Error('zstd.wasm: cannot create a context');

  const alloc = (n: number): number => {
    const p = z.malloc(Math.max(n, 1));
    if (!p) throw new Error(`zstd.wasm: out of memory allocating ${n} bytes`);
    return p;
  };
  const heap = () => new Uint8Array(z.memory.buffer);

  return {
    compress(data, level) {
      const cap = z.compressBound(data.length) >>> 0;
      const src = alloc(data.length);
      let dst = 0;
      try {
        dst = alloc(cap);
        heap().set(data, src);
        const r = z.compressUsingDict(cctx, dst, cap, src, data.length, 0, 0, level);
        if (z.isError(r)) throw libError(r);
        const n = r >>> 0;
        return Buffer.from(heap().subarray(dst, dst + n));
      } finally {
        if (dst) z.free(dst);
        z.free(src);
      }
    },
    decompress(stored, size) {
      const src = alloc(stored.length);
      let dst = 0;
      try {
        dst = alloc(size);
        heap().set(stored, src);
        const r = z.decompressUsingDict(dctx, dst, size, src, stored.length, 0, 0);
        if (z.isError(r)) throw libError(r);
        const n = r >>> 0;
        if (n !== size) throw new ZstdLibError(`the frames hold ${n} bytes`);
        return Buffer.from(heap().subarray(dst, dst + n));
      } finally {
        if (dst) z.free(dst);
        z.free(src);
      }
    },
  };
}

/**
 * Instantiate libzstd and check it with a round trip.
 *
 * @throws Error when the package is missing or is not the expected build
 */
export function loadZstdWasm(): ZstdWasm {
  const zstd = bind(instantiate());
  const sample = Buffer.from('walbjs zstd self-test '.repeat(40));
  const frame = zstd.compress(sample, 1);
  if (frame.readUInt32LE(0) !== 0xfd2fb528 || !zstd.decompress(frame, sample.length).equals(sample)) {
    throw new Error('zstd.wasm: self-test round trip failed');
  }
  return zstd;
}
