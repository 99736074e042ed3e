/**
 * Typed access to a request's parameters: every field is checked for presence, type and range
 * before a command looks at it, and a bad one is a {@link BadRequestError} naming the field.
 *
 * @module
 */
import { BadRequestError } from '../errors.ts';
import { validateArchiveId, validateVolId } from './names.ts';
import type { MetaDiff, MetaSnap } from '../meta.ts';
import { validateMetaDiff, validateMetaSnap } from '../meta.ts';
import { WalbCoreError } from '../errors.ts';

/** A request's parameters, checked field by field. */
export class Params {
  private readonly o: Record<string, unknown>;

  constructor(private readonly command: string, raw: unknown) {
    if (raw === undefined || raw === null) raw = {};
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new BadRequestError(`${command}: parameters must be an object`);
    this.o = raw as Record<string, unknown>;
  }

  private bad(field: string, want: string): never {
    throw new BadRequestError(`${this.command}: parameter ${field} must be ${want}`);
  }

  /** Whether the field is present. */
  has(field: string): boolean {
    return this.o[field] !== undefined && this.o[field] !== null;
  }

  /** The volume id (field `volId`), validated as a name. */
  volId(): string {
    return validateVolId(this.o.volId);
  }

  /** An archive id field, validated as a name. */
  archiveId(field = 'archId'): string {
    return validateArchiveId(this.o[field]);
  }

  /** A string of at most `max` characters. */
  str(field: string, max = 4096): string {
    const v = this.o[field];
    if (typeof v !== 'string' || v.length > max) this.bad(field, `a string of at most ${max} characters`);
    return v;
  }

  /** An optional string. */
  optStr(field: string, max = 4096): string | undefined {
    return this.has(field) ? this.str(field, max) : undefined;
  }

  /** One of the given words. */
  oneOf<T extends string>(field: string, words: readonly T[], dflt?: T): T {
    if (!this.has(field) && dflt !== undefined) return dflt;
    const v = this.o[field];
    if (typeof v !== 'string' || !(words as readonly string[]).includes(v)) this.bad(field, `one of ${words.join(', ')}`);
    return v as T;
  }

  /** A non-negative integer below 2^64 (given as a bigint, a safe integer, or a decimal string). */
  u64(field: string, dflt?: bigint): bigint {
    if (!this.has(field)) {
      if (dflt !== undefined) return dflt;
      this.bad(field, 'given');
    }
    const v = this.o[field];
    let b: bigint | undefined;
    if (typeof v === 'bigint') b = v;
    else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
    else if (typeof v === 'string' && /^\d{1,20}$/.test(v)) b = BigInt(v);
    if (b === undefined || b < 0n || b >= 1n << 64n) this.bad(field, 'an integer in 0..2^64-1');
    return b;
  }

  /** A safe non-negative integer no larger than `max`. */
  int(field: string, max: number, dflt?: number): number {
    if (!this.has(field) && dflt !== undefined) return dflt;
    const b = this.u64(field);
    if (b > BigInt(max)) this.bad(field, `at most ${max}`);
    return Number(b);
  }

  /** A boolean (default when absent). */
  bool(field: string, dflt = false): boolean {
    if (!this.has(field)) return dflt;
    const v = this.o[field];
    if (typeof v !== 'boolean') this.bad(field, 'true or false');
    return v;
  }

  /** 16 bytes (a uuid). */
  uuid(field = 'uuid'): Buffer {
    const v = this.o[field];
    if (!(v instanceof Uint8Array) || v.byteLength !== 16) this.bad(field, '16 bytes');
    return Buffer.from(v);
  }

  /** A MetaSnap `{gidB, gidE}`. */
  snap(field: string): MetaSnap {
    const v = this.o[field] as { gidB?: unknown; gidE?: unknown } | undefined;
    if (!v || typeof v !== 'object') this.bad(field, 'a snapshot {gidB, gidE}');
    const sub = new Params(`${this.command}.${field}`, v);
    return this.guard(field, () => validateMetaSnap({ gidB: sub.u64('gidB'), gidE: sub.u64('gidE') }));
  }

  /** A MetaDiff. */
  diff(field: string): MetaDiff {
    const v = this.o[field];
    if (!v || typeof v !== 'object') this.bad(field, 'a diff {snapB, snapE, isMergeable, isCompDiff, timestamp, dataSize}');
    const sub = new Params(`${this.command}.${field}`, v);
    return this.guard(field, () => validateMetaDiff({
      snapB: sub.snap('snapB'), snapE: sub.snap('snapE'), isMergeable: sub.bool('isMergeable'), isCompDiff: sub.bool('isCompDiff'),
      timestamp: sub.int('timestamp', 253_402_300_799, 0), dataSize: sub.u64('dataSize', 0n),
    }));
  }

  private guard<T>(field: string, f: () => T): T {
    try { return f(); } catch (e) {
      if (e instanceof BadRequestError) throw e;
      if (e instanceof WalbCoreError) throw new BadRequestError(`${this.command}: parameter ${field}: ${e.message}`);
      throw e;
    }
  }
}
