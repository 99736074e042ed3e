/**
 * Message payloads: JSON, with bigints (lsids, gids, addresses) carried exactly as
 * `{"$bigint":"<decimal>"}` and byte arrays as `{"$bytes":"<base64>"}`.
 *
 * @module
 */
import { ProtocolError } from '../errors.ts';

/** Encode a message body. */
export function encodeMessage(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value, (_k, v) => {
    if (typeof v === 'bigint') return { $bigint: v.toString() };
    if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('base64') };
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      return { $bytes: Buffer.from((v as { data: number[] }).data).toString('base64') };
    }
    return v;
  }), 'utf8');
}

/**
 * Decode a message body.
 *
 * @throws {@link ProtocolError} when it is not valid JSON.
 */
export function decodeMessage(b: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8'), (_k, v) => {
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        const keys = Object.keys(v);
        if (keys.length === 1 && keys[0] === '$bigint' && typeof v.$bigint === 'string' && /^-?\d+$/.test(v.$bigint)) return BigInt(v.$bigint);
        if (keys.length === 1 && keys[0] === '$bytes' && typeof v.$bytes === 'string') return Buffer.from(v.$bytes, 'base64');
      }
      return v;
    });
  } catch (e) {
    throw new ProtocolError(`message is not valid JSON: ${(e as Error).message}`);
  }
}
