/**
 * A structural walk over an .xz file, done before liblzma sees it, written from "The .xz File
 * Format" 1.0.4 and the LZMA2 chunk layout.
 *
 * liblzma decodes a whole input in one call and keeps every output byte until it returns, and it
 * checks a block's size against the index only at the end. A small hostile stream could therefore
 * make it produce gigabytes. LZMA2, however, states the decompressed size of every chunk in the
 * chunk header, and liblzma's LZMA2 decoder never produces more than that. So this walk visits
 * every stream, block and LZMA2 chunk header (a few bytes each; chunk payloads are skipped) and adds
 * up the decompressed sizes: the exact bound of what liblzma can output, checked against the
 * record's size before decoding. Checksums are left to liblzma.
 *
 * @module
 */

const MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const FOOTER_MAGIC_0 = 0x59; // 'Y'
const FOOTER_MAGIC_1 = 0x5a; // 'Z'
const FILTER_LZMA2 = 0x21;
const FILTER_DELTA = 0x03;
/** x86, PowerPC, IA-64, ARM, ARM-Thumb, SPARC: size-preserving branch converters. */
const BCJ_FIRST = 0x04;
const BCJ_LAST = 0x09;

/** Size of the check field for each check id (0..15), per the format specification. */
const CHECK_SIZES = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];

/** What {@link walkXz} learned. */
export interface XzLayout {
  /** Total decompressed size of every stream, as declared by the LZMA2 chunk headers. */
  readonly uncompressedSize: number;
  /** Number of streams. */
  readonly streams: number;
  /** Number of blocks in all streams. */
  readonly blocks: number;
  /** The largest LZMA2 dictionary any block declares, in bytes. */
  readonly maxDictSize: number;
}

class Cursor {
  pos: number;
  constructor(readonly buf: Uint8Array, pos: number) {
    this.pos = pos;
  }

  need(n: number, what: string): void {
    if (n > this.buf.length - this.pos) throw new Error(`input ends inside ${what} at byte ${this.pos}`);
  }

  byte(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++];
  }

  /** A variable-length integer of the .xz format: 1..9 bytes, 7 bits each, minimal encoding. */
  vli(what: string): number {
    let value = 0;
    for (let i = 0; i < 9; i++) {
      const b = this.byte(what);
      value += (b & 0x7f) * 2 ** (7 * i);
      if (b < 0x80) {
        if (b === 0 && i > 0) throw new Error(`${what}: integer at byte ${this.pos - 1} is not minimally encoded`);
        if (value > Number.MAX_SAFE_INTEGER) throw new Error(`${what}: integer too large`);
        return value;
      }
    }
    throw new Error(`${what}: integer at byte ${this.pos} longer than 9 bytes`);
  }
}

function dictSizeOf(prop: number): number {
  if (prop > 40) throw new Error(`LZMA2 dictionary property ${prop} is not 0..40`);
  if (prop === 40) return 0xffffffff;
  return (2 | (prop & 1)) * 2 ** (Math.floor(prop / 2) + 11);
}

interface BlockResult {
  unpaddedSize: number;
  uncompressedSize: number;
  dictSize: number;
}

/** Walk one block whose header starts at `c.pos`; leaves `c.pos` after its check field. */
function walkBlock(c: Cursor, checkSize: number): BlockResult {
  const start = c.pos;
  const headerSize = (c.byte('block header') + 1) * 4;
  c.need(headerSize - 1, 'block header');
  const headerEnd = start + headerSize - 4; // before its CRC32
  const flags = c.byte('block flags');
  if (flags & 0x3c) throw new Error(`block at byte ${start}: reserved flag bits set`);
  const nFilters = (flags & 3) + 1;
  const declaredCompressed = flags & 0x40 ? c.vli('block compressed size') : undefined;
  const declaredUncompressed = flags & 0x80 ? c.vli('block uncompressed size') : undefined;
  let dictSize = 0;
  for (let f = 0; f < nFilters; f++) {
    const id = c.vli('filter id');
    const propSize = c.vli('filter properties size');
    c.need(propSize, 'filter properties');
    const last = f === nFilters - 1;
    if (last) {
      if (id !== FILTER_LZMA2) throw new Error(`block at byte ${start}: last filter is 0x${id.toString(16)}, not LZMA2`);
      if (propSize !== 1) throw new Error(`block at byte ${start}: LZMA2 properties are ${propSize} bytes, not 1`);
      dictSize = dictSizeOf(c.buf[c.pos]);
    } else if (id !== FILTER_DELTA && (id < BCJ_FIRST || id > BCJ_LAST)) {
      throw new Error(`block at byte ${start}: unsupported filter 0x${id.toString(16)}`);
    }
    c.pos += propSize;
    if (c.pos > headerEnd) throw new Error(`block at byte ${start}: filter flags overrun the block header`);
  }
  for (; c.pos < headerEnd; c.pos++) {
    if (c.buf[c.pos] !== 0) throw new Error(`block at byte ${start}: non-zero header padding`);
  }
  c.pos = start + headerSize; // skip the header CRC32 (liblzma verifies it)

  // LZMA2 chunks, up to and including the end marker.
  const dataStart = c.pos;
  let uncompressed = 0;
  for (;;) {
    const control = c.byte('LZMA2 chunk');
    if (control === 0x00) break;
    if (control === 0x01 || control === 0x02) {
      c.need(2, 'LZMA2 chunk header');
      const size = ((c.buf[c.pos] << 8) | c.buf[c.pos + 1]) + 1;
      c.pos += 2;
      c.need(size, 'LZMA2 uncompressed chunk');
      c.pos += size;
      uncompressed += size;
    } else if (control >= 0x80) {
      c.need(4, 'LZMA2 chunk header');
      const b = c.buf;
      const p = c.pos;
      const unpacked = (control & 0x1f) * 0x10000 + ((b[p] << 8) | b[p + 1]) + 1;
      const packed = ((b[p + 2] << 8) | b[p + 3]) + 1;
      c.pos += 4 + (control >= 0xc0 ? 1 : 0);
      c.need(packed, 'LZMA2 chunk data');
      c.pos += packed;
      uncompressed += unpacked;
    } else {
      throw new Error(`invalid LZMA2 control byte 0x${control.toString(16)} at byte ${c.pos - 1}`);
    }
  }
  const compressed = c.pos - dataStart;
  if (declaredCompressed !== undefined && declaredCompressed !== compressed) {
    throw new Error(`block at byte ${start}: header says ${declaredCompressed} compressed bytes, data has ${compressed}`);
  }
  if (declaredUncompressed !== undefined && declaredUncompressed !== uncompressed) {
    throw new Error(`block at byte ${start}: header says ${declaredUncompressed} bytes, its chunks ${uncompressed}`);
  }
  while ((c.pos - start) % 4 !== 0) {
    if (c.byte('block padding') !== 0) throw new Error(`block at byte ${start}: non-zero block padding`);
  }
  c.need(checkSize, 'block check');
  c.pos += checkSize;
  return { unpaddedSize: headerSize + compressed + checkSize, uncompressedSize: uncompressed, dictSize };
}

/** Walk one stream starting at `c.pos`; leaves `c.pos` after its footer. */
function walkStream(c: Cursor): { uncompressed: number; blocks: number; dictSize: number } {
  const start = c.pos;
  c.need(12, 'stream header');
  for (let i = 0; i < MAGIC.length; i++) {
    if (c.buf[start + i] !== MAGIC[i]) throw new Error(`no .xz magic at byte ${start}`);
  }
  const flags0 = c.buf[start + 6];
  const flags1 = c.buf[start + 7];
  if (flags0 !== 0 || (flags1 & 0xf0) !== 0) throw new Error(`unsupported stream flags at byte ${start + 6}`);
  const checkSize = CHECK_SIZES[flags1 & 0x0f];
  c.pos = start + 12;

  const blocks: BlockResult[] = [];
  while (true) {
    c.need(1, 'block or index');
    if (c.buf[c.pos] === 0x00) break; // index indicator
    blocks.push(walkBlock(c, checkSize));
  }

  // Index: its records must list exactly the blocks walked.
  const indexStart = c.pos;
  c.pos++;
  const count = c.vli('index record count');
  if (count !== blocks.length) throw new Error(`index lists ${count} blocks, the stream has ${blocks.length}`);
  for (const b of blocks) {
    const unpadded = c.vli('index unpadded size');
    const size = c.vli('index uncompressed size');
    if (unpadded !== b.unpaddedSize || size !== b.uncompressedSize) {
      throw new Error(`index record (${unpadded}, ${size}) does not match its block (${b.unpaddedSize}, ${b.uncompressedSize})`);
    }
  }
  while ((c.pos - indexStart) % 4 !== 0) {
    if (c.byte('index padding') !== 0) throw new Error('non-zero index padding');
  }
  c.need(4, 'index CRC32');
  c.pos += 4;
  const indexSize = c.pos - indexStart;

  // Footer.
  c.need(12, 'stream footer');
  const f = c.pos;
  const backward = ((c.buf[f + 4] | (c.buf[f + 5] << 8) | (c.buf[f + 6] << 16)) + c.buf[f + 7] * 0x1000000 + 1) * 4;
  if (backward !== indexSize) throw new Error(`stream footer gives index size ${backward}, the index has ${indexSize}`);
  if (c.buf[f + 8] !== flags0 || c.buf[f + 9] !== flags1) throw new Error('stream footer flags differ from the header');
  if (c.buf[f + 10] !== FOOTER_MAGIC_0 || c.buf[f + 11] !== FOOTER_MAGIC_1) throw new Error(`no footer magic at byte ${f + 10}`);
  c.pos = f + 12;

  let uncompressed = 0;
  let dictSize = 0;
  for (const b of blocks) {
    uncompressed += b.uncompressedSize;
    dictSize = Math.max(dictSize, b.dictSize);
  }
  return { uncompressed, blocks: blocks.length, dictSize };
}

/**
 * Check the structure of an .xz file (one or more streams, optionally separated or followed by
 * stream padding) and return the decompressed size its LZMA2 chunk headers declare.
 *
 * @param buf - the whole file
 * @throws Error describing the first structural problem
 */
export function walkXz(buf: Uint8Array): XzLayout {
  const c = new Cursor(buf, 0);
  let uncompressedSize = 0;
  let streams = 0;
  let blocks = 0;
  let maxDictSize = 0;
  while (c.pos < buf.length) {
    if (streams > 0 && buf[c.pos] === 0) {
      // Stream padding: null bytes in multiples of four.
      const padStart = c.pos;
      while (c.pos < buf.length && buf[c.pos] === 0) c.pos++;
      if ((c.pos - padStart) % 4 !== 0) throw new Error(`stream padding at byte ${padStart} is not a multiple of 4`);
      continue;
    }
    const s = walkStream(c);
    streams++;
    blocks += s.blocks;
    uncompressedSize += s.uncompressed;
    maxDictSize = Math.max(maxDictSize, s.dictSize);
  }
  if (streams === 0) throw new Error('empty input');
  return { uncompressedSize, streams, blocks, maxDictSize };
}
