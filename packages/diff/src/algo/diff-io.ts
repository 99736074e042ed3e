/**
 * The unit the diff engine works on: one IO of a diff, its address range and its content.
 *
 * Addresses and sizes are in logical blocks (LB, 512 bytes) and held as JS numbers: the readers
 * reject any address beyond 2^53 LB (4 EiB), so no precision is ever lost.
 *
 * A normal IO's data is kept as it was stored (compressed or not) together with where the IO sits
 * inside its decompressed image, so trimming and splitting never decompress: only the writer (or
 * apply) materializes the bytes, and an untouched record can be copied through as stored.
 *
 * @module
 */
import { LOGICAL_BLOCK_SIZE } from '@walbjs/log-format';

/** Kind of an IO: data, zeros, or a discard. */
export type DiffIoKind = 'normal' | 'allzero' | 'discard';

/** The stored image an IO's data comes from. */
export interface DiffImage {
  /** The image as stored: compressed with {@link cmpr}, or raw when `cmpr` is 0 (NONE). */
  readonly stored: Buffer;
  /** Compression type id of {@link stored} (0 none, 1 gzip, 2 snappy, 3 lzma, 4 lz4, 5 zstd). */
  readonly cmpr: number;
  /** LB of the decompressed image. */
  readonly blocks: number;
  /** Checksum (salt 0) of {@link stored}, when known. */
  readonly checksum?: number;
  /** File the image was read from, for error messages. */
  readonly source?: string;
  /** Byte offset of the image in that file, for error messages. */
  readonly offset?: number;
  /**
   * The stored bytes are known to decompress to `blocks·512` bytes (they were compressed by this
   * process): a writer passes the image on as it is stored without checking that again, as it
   * does an image with no `source`.
   */
  readonly decodes?: boolean;
}

/** Where a normal IO's bytes are: a window of {@link DiffImage}. */
export interface DiffData {
  /** The image. */
  readonly image: DiffImage;
  /** LB offset of the IO inside the decompressed image. */
  readonly offsetLb: number;
}

/** One IO of a diff. `data` is present exactly when `kind` is 'normal'. */
export interface DiffIo {
  /** First LB. */
  readonly addr: number;
  /** Length in LB, > 0. */
  readonly blocks: number;
  /** Kind of the IO. */
  readonly kind: DiffIoKind;
  /** The data of a normal IO. */
  readonly data?: DiffData;
}

/** A raw (uncompressed) data image over `bytes`, which must be a whole number of LBs. */
export function rawImage(bytes: Buffer, checksum?: number): DiffImage {
  return { stored: bytes, cmpr: 0, blocks: bytes.byteLength / LOGICAL_BLOCK_SIZE, checksum };
}

/** A normal IO whose data is `bytes` (raw). */
export function normalIo(addr: number, bytes: Buffer): DiffIo {
  return { addr, blocks: bytes.byteLength / LOGICAL_BLOCK_SIZE, kind: 'normal', data: { image: rawImage(bytes), offsetLb: 0 } };
}

/** End address (exclusive) of `io`. */
export function ioEnd(io: DiffIo): number {
  return io.addr + io.blocks;
}

/**
 * The part `[from, to)` of `io` (clamped to it), or `undefined` when empty. Normal data is sliced
 * by moving the window, never by copying or decompressing.
 */
export function sliceIo(io: DiffIo, from: number, to: number): DiffIo | undefined {
  const a = Math.max(from, io.addr);
  const b = Math.min(to, io.addr + io.blocks);
  if (a >= b) return undefined;
  if (a === io.addr && b === io.addr + io.blocks) return io;
  if (io.kind !== 'normal') return { addr: a, blocks: b - a, kind: io.kind };
  return { addr: a, blocks: b - a, kind: 'normal', data: { image: io.data!.image, offsetLb: io.data!.offsetLb + (a - io.addr) } };
}

/** Whether a normal IO covers its whole stored image, so the stored bytes can be copied as they are. */
export function coversWholeImage(io: DiffIo): boolean {
  return io.kind === 'normal' && io.data!.offsetLb === 0 && io.data!.image.blocks === io.blocks;
}

/** Split `io` into pieces of at most `maxBlocks` LB, from its start (as `DiffRecord::splitAll`). */
export function splitIo(io: DiffIo, maxBlocks: number): DiffIo[] {
  if (maxBlocks <= 0 || io.blocks <= maxBlocks) return [io];
  const out: DiffIo[] = [];
  for (let a = io.addr; a < io.addr + io.blocks; a += maxBlocks) out.push(sliceIo(io, a, Math.min(a + maxBlocks, io.addr + io.blocks))!);
  return out;
}
