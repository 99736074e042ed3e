/**
 * JSON output. 64-bit values (lsids, offsets, sizes in LB or PB, anything that is a `bigint` in the
 * SDK) are written as decimal strings, so no precision is lost; other numbers stay numbers.
 * Byte arrays (uuids) are written as lowercase hex.
 *
 * @module
 */

function replacer(this: unknown, key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  // A Buffer has already been through its toJSON ({type:'Buffer', data}) here: look at the holder's own value.
  const raw = (this as Record<string, unknown>)[key];
  if (raw instanceof Uint8Array) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('hex');
  return value;
}

/**
 * `JSON.stringify` that writes bigints as decimal strings and byte arrays as hex, on one line.
 *
 * @example
 * toJson({ lsid: 2n ** 64n - 1n }) // '{"lsid":"18446744073709551615"}'
 */
export function toJson(value: unknown): string {
  return JSON.stringify(value, replacer);
}
