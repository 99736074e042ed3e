/**
 * The stored form of a normal IO for a target codec: the bytes already stored are reused when they
 * are exactly what the target wants (whole image, same codec), otherwise the IO is materialized
 * and compressed, raw when compression does not shrink it.
 *
 * @module
 */
import { checksum } from '@walbjs/log-format';
import { coversWholeImage, type DiffImage, type DiffIo } from '../algo/diff-io.ts';
import { compressOrRaw, compressOrRawSync, hasSyncCompress } from '../codec/index.ts';
import { imageDecodes, imageDecodesNow, ioBytes, ioBytesNow } from './materialize.ts';

/** A normal IO's data as it will be stored. */
export interface StoredData {
  /** Compression type of {@link stored}. */
  cmpr: number;
  /** The bytes to store. */
  stored: Buffer;
  /** Checksum (salt 0) of {@link stored}. */
  checksum: number;
  /** LB of the decompressed image. */
  blocks: number;
}

/**
 * Compute the stored form of the normal IO `io` for codec `type` at `level`. With `passRaw`, a
 * whole image stored raw is kept raw too: right when it was written with the same codec, which
 * then already found it incompressible. A whole image already in `type` is kept as it is stored;
 * when it was read from a file (its `source` set, `decodes` not) it must first decompress to its
 * size.
 *
 * @throws a codec error, located at the image, when an image read from a file does not decompress
 *   to its size.
 */
export async function storedData(io: DiffIo, type: number, level: number, passRaw = false): Promise<StoredData> {
  const now = storedDataNow(io, type, level, passRaw);
  if (now) return now;
  if (passesAsStored(io, type, passRaw)) {
    // Only an image read from a file gets here (see decodesNow).
    await imageDecodes(io.data!.image);
    return asStored(io);
  }
  const raw = (await ioBytes(io))!;
  return finish(io, compressOrRawSync(type, level, raw) ?? await compressOrRaw(type, level, raw));
}

/**
 * {@link storedData} when it needs no wait (its image at hand, a codec with a synchronous path:
 * cheaper than a trip to the thread pool); `undefined` otherwise, with nothing done.
 */
export function storedDataNow(io: DiffIo, type: number, level: number, passRaw = false): StoredData | undefined {
  if (passesAsStored(io, type, passRaw)) return decodesNow(io.data!.image) ? asStored(io) : undefined;
  if (type !== 0 && !hasSyncCompress(type)) return undefined;
  const raw = ioBytesNow(io);
  if (!raw) return undefined;
  return finish(io, type === 0 ? { cmpr: 0, stored: raw } : compressOrRawSync(type, level, raw)!);
}

/**
 * Whether `io`'s image is kept as it is stored: the whole image, already in the target's codec (or
 * raw with `passRaw`). One read from a file is first checked to decompress (see
 * {@link imageDecodesNow}): its checksum covers the stored bytes only, and a merged file may
 * replace the inputs it came from. An image compressed by this process is taken as it is.
 */
function passesAsStored(io: DiffIo, type: number, passRaw: boolean): boolean {
  const img = io.data!.image;
  return coversWholeImage(io) && (img.cmpr === type || (passRaw && img.cmpr === 0));
}

/**
 * Whether an image passed on as stored is known good without waiting: one not read from a file or
 * marked `decodes` (compressed by this process), or one checked now.
 */
function decodesNow(img: DiffImage): boolean {
  return img.source === undefined || img.decodes === true || imageDecodesNow(img) === true;
}

function asStored(io: DiffIo): StoredData {
  const img = io.data!.image;
  return { cmpr: img.cmpr, stored: img.stored, checksum: img.checksum ?? checksum(img.stored, 0), blocks: io.blocks };
}

function finish(io: DiffIo, r: { cmpr: number; stored: Buffer }): StoredData {
  const img = io.data!.image;
  // A whole image stored raw that stays raw keeps the checksum it was read (and checked) with: a
  // second pass over its bytes would find the same sum.
  const same = r.cmpr === 0 && img.cmpr === 0 && img.checksum !== undefined && coversWholeImage(io);
  return { cmpr: r.cmpr, stored: r.stored, checksum: same ? img.checksum! : checksum(r.stored, 0), blocks: io.blocks };
}

/**
 * Runs `storedData` for a stream of IOs with up to `window` compressions in flight (native codecs
 * run them on the libuv thread pool, so this uses every core) while handing results back in order.
 */
export class OrderedCompressor<T> {
  private readonly q: Array<{ item: T; io: DiffIo; d?: StoredData; p?: Promise<StoredData> }> = [];
  /**
   * @param sinkNow - the sink's synchronous form, for {@link pushNow}
   */
  constructor(private readonly type: number, private readonly level: number, private readonly window: number,
    private readonly sink: (item: T, io: DiffIo, data: StoredData | undefined) => Promise<void>, private readonly passRaw = false,
    private readonly sinkNow?: (item: T, io: DiffIo, data: StoredData | undefined) => void) {}

  /**
   * Pass `io` to the synchronous sink at once when nothing is queued before it and its stored form
   * needs no wait (see {@link storedDataNow}): no promise per IO. Returns false, with nothing done,
   * otherwise; then {@link push} it.
   */
  pushNow(item: T, io: DiffIo): boolean {
    if (this.q.length > 0 || !this.sinkNow) return false;
    let d: StoredData | undefined;
    if (io.kind === 'normal') {
      d = storedDataNow(io, this.type, this.level, this.passRaw);
      if (!d) return false;
    }
    this.sinkNow(item, io, d);
    return true;
  }

  /**
   * Queue `io` (with a caller's tag); completed items are passed to the sink in order. What needs
   * no wait is done at once and passed on as soon as nothing waits before it.
   */
  async push(item: T, io: DiffIo): Promise<void> {
    let d: StoredData | undefined, p: Promise<StoredData> | undefined;
    if (io.kind === 'normal') {
      d = storedDataNow(io, this.type, this.level, this.passRaw);
      if (!d) {
        p = storedData(io, this.type, this.level, this.passRaw);
        // Keep rejections from surfacing as unhandled before their turn comes.
        p.catch(() => {});
      }
    }
    this.q.push({ item, io, d, p });
    while (this.q.length > this.window || (this.q.length > 0 && this.q[0].p === undefined)) await this.drainOne();
  }

  private async drainOne(): Promise<void> {
    const e = this.q.shift()!;
    await this.sink(e.item, e.io, e.p ? await e.p : e.d);
  }

  /** Wait for everything queued and pass it on. */
  async flush(): Promise<void> {
    while (this.q.length) await this.drainOne();
  }
}
