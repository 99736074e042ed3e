// fast-check arbitraries of the gid algebra, shared by the core tests.
import fc from 'fast-check';
import { MAX_TIMESTAMP, makeMetaDiff, metaSnap, type MetaDiff, type MetaSnap } from '../src/index.ts';

/** Small gids collide often, which is where the rules have their cases; now and then a huge one. */
export const gidArb: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 8, arbitrary: fc.bigInt({ min: 0n, max: 12n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) },
);

/** Any valid snapshot. */
export const snapArb: fc.Arbitrary<MetaSnap> = fc.tuple(gidArb, gidArb).map(([a, b]) => (a <= b ? metaSnap(a, b) : metaSnap(b, a)));

/** Small snapshots only (0..12), clean about half of the time. */
export const smallSnapArb: fc.Arbitrary<MetaSnap> = fc.tuple(fc.bigInt({ min: 0n, max: 12n }), fc.bigInt({ min: 0n, max: 4n }), fc.boolean())
  .map(([b, w, clean]) => metaSnap(b, clean ? b : b + w));

export const tsArb = fc.integer({ min: 0, max: MAX_TIMESTAMP });

/** Any valid diff (the progress constraints hold by construction). */
export function diffArb(opts: { small?: boolean; comp?: boolean } = {}): fc.Arbitrary<MetaDiff> {
  const base = opts.small ? smallSnapArb : snapArb;
  const step = opts.small ? fc.bigInt({ min: 1n, max: 5n }) : fc.oneof(fc.bigInt({ min: 1n, max: 5n }), fc.bigInt({ min: 1n, max: 1n << 40n }));
  const widen = opts.small ? fc.bigInt({ min: 0n, max: 4n }) : fc.bigInt({ min: 0n, max: 1n << 20n });
  return fc.record({
    b: base, step, widen, cleanE: fc.boolean(), isMergeable: fc.boolean(),
    isCompDiff: opts.comp ? fc.boolean() : fc.constant(false), timestamp: tsArb,
    dataSize: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  }).filter(({ b, step, widen }) => (b.gidB + step > b.gidE ? b.gidB + step : b.gidE) + widen <= (1n << 64n) - 1n)
    .map(({ b, step, widen, cleanE, isMergeable, isCompDiff, timestamp, dataSize }) => {
      const eB = b.gidB + step;
      const eE0 = eB > b.gidE ? eB : b.gidE;
      const snapE = cleanE && eE0 === eB ? metaSnap(eB) : metaSnap(eB, eE0 + widen);
      return makeMetaDiff({ snapB: b, snapE, isMergeable, isCompDiff, timestamp, dataSize });
    });
}

/** A clean diff |b|-->|e|. */
export function cd(b: bigint, e: bigint, isMergeable = true, timestamp = 0): MetaDiff {
  return makeMetaDiff({ snapB: metaSnap(b), snapE: metaSnap(e), isMergeable, timestamp });
}

/** Plain object form, for deep equality of frozen records. */
export const plain = <T>(o: T): T => JSON.parse(JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)));
