// Little-endian field access on any Uint8Array (Buffers from pools have arbitrary offsets).

/** @internal */
export function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Format a 16-byte uuid as 32 lowercase hex chars, as walb-tools prints it. */
export function uuidToHex(uuid: Uint8Array): string {
  let s = '';
  for (const b of uuid) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Parse 32 hex chars into a 16-byte uuid. */
export function uuidFromHex(hex: string): Uint8Array {
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new TypeError(`uuid must be 32 hex characters: ${JSON.stringify(hex)}`);
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** @internal Eight lowercase hex digits, as `%08x`. */
export function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}
