/**
 * The frame of the walbjs protocol: every message between controller and daemons, and between
 * daemons, travels in one. Little-endian, 24-byte header, payload checksummed with xxHash64.
 *
 * | off | size | field |
 * |---|---|---|
 * | 0 | 4 | magic `WJS1` (0x3153_4a57 as a u32 LE) |
 * | 4 | 1 | version (1) |
 * | 5 | 1 | type: 1 request, 2 response, 3 error, 4 chunk, 5 end, 6 ping, 7 pong |
 * | 6 | 2 | flags (0) |
 * | 8 | 4 | request id (the request a response, error, chunk or end belongs to) |
 * | 12 | 4 | payload length (at most the receiver's frame limit) |
 * | 16 | 8 | xxHash64 (seed 0) of the payload |
 *
 * The frame does not care what carries it (TCP, a unix socket, TLS over either).
 *
 * @module
 */
import xxhash from 'xxhash-wasm';
import { ProtocolError } from '../errors.ts';

/** `WJS1`. */
export const FRAME_MAGIC = 0x3153_4a57;
/** Protocol version. */
export const PROTOCOL_VERSION = 1;
/** Bytes of a frame header. */
export const FRAME_HEADER_SIZE = 24;
/** Default largest payload a receiver accepts (16 MiB). */
export const DEFAULT_MAX_PAYLOAD = 16 << 20;

/** Frame types. */
export const FrameType = { REQUEST: 1, RESPONSE: 2, ERROR: 3, CHUNK: 4, END: 5, PING: 6, PONG: 7 } as const;
/** A frame type id. */
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** A decoded frame. */
export interface Frame {
  type: FrameType;
  flags: number;
  requestId: number;
  payload: Buffer;
}

let hasher: Awaited<ReturnType<typeof xxhash>> | undefined;

/** Load the hash function (WebAssembly) once; every encoder and decoder needs it. */
export async function initFrames(): Promise<void> {
  hasher ??= await xxhash();
}

function h64(b: Uint8Array): bigint {
  if (!hasher) throw new Error('initFrames() must be awaited before frames are encoded or decoded');
  return hasher.h64Raw(b);
}

/** Encode one frame (header and payload, as two buffers to write in one go). */
export function encodeFrame(type: FrameType, requestId: number, payload: Uint8Array = new Uint8Array(0), flags = 0): [Buffer, Uint8Array] {
  const h = Buffer.alloc(FRAME_HEADER_SIZE);
  h.writeUInt32LE(FRAME_MAGIC, 0);
  h.writeUInt8(PROTOCOL_VERSION, 4);
  h.writeUInt8(type, 5);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(requestId >>> 0, 8);
  h.writeUInt32LE(payload.byteLength, 12);
  h.writeBigUInt64LE(h64(payload), 16);
  return [h, payload];
}

const TYPES = new Set<number>(Object.values(FrameType));

/**
 * Cuts a byte stream into frames, checking each: magic, version, type, the payload limit (checked
 * before anything is allocated) and the payload checksum.
 *
 * @example
 * const dec = new FrameDecoder();
 * socket.on('data', (chunk) => { for (const f of dec.push(chunk)) handle(f); });
 */
export class FrameDecoder {
  private parts: Buffer[] = [];
  private size = 0;
  /** Stream offset of the next frame. */
  offset = 0;

  constructor(private readonly maxPayload = DEFAULT_MAX_PAYLOAD) {}

  /**
   * Add bytes; returns the frames they complete.
   *
   * @throws {@link ProtocolError} on a malformed frame (the stream cannot be trusted after it).
   */
  push(chunk: Uint8Array): Frame[] {
    if (chunk.byteLength) { this.parts.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)); this.size += chunk.byteLength; }
    const out: Frame[] = [];
    for (;;) {
      if (this.size < FRAME_HEADER_SIZE) return out;
      const head = this.peek(FRAME_HEADER_SIZE);
      const magic = head.readUInt32LE(0);
      if (magic !== FRAME_MAGIC) throw new ProtocolError(`bad frame magic 0x${magic.toString(16)}`, this.offset);
      const version = head.readUInt8(4);
      if (version !== PROTOCOL_VERSION) throw new ProtocolError(`protocol version ${version}, this side speaks ${PROTOCOL_VERSION}`, this.offset);
      const type = head.readUInt8(5);
      if (!TYPES.has(type)) throw new ProtocolError(`unknown frame type ${type}`, this.offset);
      const len = head.readUInt32LE(12);
      if (len > this.maxPayload) throw new ProtocolError(`frame payload of ${len} bytes exceeds the limit of ${this.maxPayload}`, this.offset);
      if (this.size < FRAME_HEADER_SIZE + len) return out;
      const whole = this.take(FRAME_HEADER_SIZE + len);
      const payload = whole.subarray(FRAME_HEADER_SIZE);
      const sum = whole.readBigUInt64LE(16);
      if (h64(payload) !== sum) throw new ProtocolError('frame payload checksum mismatch', this.offset, 'ERR_WALB_PROTOCOL_CHECKSUM');
      out.push({ type: type as FrameType, flags: whole.readUInt16LE(6), requestId: whole.readUInt32LE(8), payload });
      this.offset += FRAME_HEADER_SIZE + len;
    }
  }

  /** Bytes held that do not make a whole frame yet. */
  get pending(): number {
    return this.size;
  }

  private peek(n: number): Buffer {
    if (this.parts[0].byteLength >= n) return this.parts[0].subarray(0, n);
    return Buffer.concat(this.parts, this.size).subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.size);
    const rest = all.subarray(n);
    this.parts = rest.byteLength ? [rest] : [];
    this.size = rest.byteLength;
    return all.subarray(0, n);
  }
}
