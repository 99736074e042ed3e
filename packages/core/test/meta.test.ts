// The gid algebra of reference §3.1 and §3.3: unit tests from the rules, then properties.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  InvalidMetaError, MetaParseError, NotApplicableError, NotMergeableError, WalbCoreError, applyDiff,
  applyDiffs, applyingMetaState, beginApplying, canApply, canApplyToState, canMerge, compareSnap, contains,
  endApplying, formatMetaDiff, formatMetaSnap, formatMetaState, getMaxProgressDiff, getRelation,
  isCleanDiff, isCleanSnap, isDirtyDiff, isDirtySnap, makeMetaDiff, mergeDiff, mergeDiffs, metaSnap,
  metaState, parseMetaSnap, parseMetaState, snapEquals, validateMetaDiff, type MetaDiff, type MetaSnap,
} from '../src/index.ts';
import { cd, diffArb, plain, smallSnapArb, snapArb } from './arbitraries.ts';

const typed = (cls: abstract new (...a: never[]) => unknown) => (e: unknown) => e instanceof cls && e instanceof WalbCoreError;
const S = (b: number, e = b) => metaSnap(BigInt(b), BigInt(e));
const D = (b: MetaSnap, e: MetaSnap, o: Partial<Pick<MetaDiff, 'isMergeable' | 'isCompDiff' | 'timestamp'>> = {}) =>
  makeMetaDiff({ snapB: b, snapE: e, isMergeable: o.isMergeable ?? true, isCompDiff: o.isCompDiff ?? false, timestamp: o.timestamp ?? 0 });

test('MetaSnap: clean/dirty, validation, text form', () => {
  assert.ok(isCleanSnap(S(3)));
  assert.ok(isDirtySnap(S(3, 5)));
  assert.is(formatMetaSnap(S(3)), '|3|');
  assert.is(formatMetaSnap(S(3, 5)), '|3,5|');
  assert.ok(snapEquals(parseMetaSnap('|3,5|'), S(3, 5)));
  assert.ok(snapEquals(parseMetaSnap('|18446744073709551615|'), metaSnap((1n << 64n) - 1n)));
  assert.throws(() => metaSnap(5n, 3n), typed(InvalidMetaError));
  assert.throws(() => metaSnap(-1n), typed(InvalidMetaError));
  assert.throws(() => metaSnap(1n << 64n), typed(InvalidMetaError));
  assert.throws(() => metaSnap(3 as unknown as bigint), typed(InvalidMetaError));
  for (const bad of ['', '|', '||', '|3', '3|', '|03|', '|3,|', '|5,3|', '| 3|', '|3,5,7|', '|18446744073709551616|', '|-1|']) {
    assert.throws(() => parseMetaSnap(bad), typed(MetaParseError), bad);
  }
  assert.ok(compareSnap(S(1, 5), S(2, 2)) < 0);
  assert.ok(compareSnap(S(2, 5), S(2, 3)) > 0);
  assert.is(compareSnap(S(2, 5), S(2, 5)), 0);
  assert.ok(Object.isFrozen(S(1)));
});

test('MetaDiff: progress constraints and flags', () => {
  const d = D(S(3), S(5), { timestamp: 1540989296 });
  assert.ok(isCleanDiff(d));
  assert.ok(isDirtyDiff(D(S(3), S(5, 7))));
  assert.ok(isDirtyDiff(D(S(3, 4), S(5))));
  assert.throws(() => D(S(5), S(5)), (e: unknown) => e instanceof InvalidMetaError && e.field === 'progress');
  assert.throws(() => D(S(5), S(3)), (e: unknown) => e instanceof InvalidMetaError && e.field === 'progress');
  assert.throws(() => D(S(3, 9), S(5, 8)), (e: unknown) => e instanceof InvalidMetaError && e.field === 'progress');
  assert.throws(() => D(S(3), S(5), { timestamp: -1 }), typed(InvalidMetaError));
  assert.throws(() => D(S(3), S(5), { timestamp: 1.5 }), typed(InvalidMetaError));
  assert.throws(() => makeMetaDiff({ snapB: S(3), snapE: S(5), dataSize: -1n }), typed(InvalidMetaError));
  assert.throws(() => validateMetaDiff({ ...d, isMergeable: 1 as unknown as boolean }), typed(InvalidMetaError));
  const def = makeMetaDiff({ snapB: S(0), snapE: S(1) });
  assert.equal([def.isMergeable, def.isCompDiff, def.timestamp, def.dataSize], [false, false, 0, 0n]);
  assert.is(formatMetaDiff(makeMetaDiff({ snapB: S(3), snapE: S(5), isMergeable: true, timestamp: 1540989296, dataSize: 4096n })),
    '|3|-->|5| M- 2018-10-31T12:34:56 4096');
  assert.is(formatMetaDiff(makeMetaDiff({ snapB: S(0, 10), snapE: S(5, 10), isCompDiff: true })), '|0,10|-->|5,10| -C 1970-01-01T00:00:00 0');
});

test('getRelation: every row of the §3.3 table', () => {
  // compDiff: applicable iff d.B.gidB == s.gidB, whatever s.gidE and d.E are.
  const c = D(S(5, 6), S(9, 12), { isCompDiff: true });
  assert.is(getRelation(S(5), c), 'APPLICABLE');
  assert.is(getRelation(S(5, 20), c), 'APPLICABLE');
  assert.is(getRelation(S(4), c), 'NOT_APPLICABLE');
  assert.is(getRelation(S(6), c), 'NOT_APPLICABLE');
  const d = D(S(3), S(7));
  assert.is(getRelation(S(2), d), 'TOO_NEW');
  assert.is(getRelation(S(7), d), 'TOO_OLD');
  assert.is(getRelation(S(9, 9), d), 'TOO_OLD');
  assert.is(getRelation(S(3), d), 'APPLICABLE');
  assert.is(getRelation(S(5), d), 'APPLICABLE'); // overlap is fine
  assert.is(getRelation(S(6, 30), d), 'APPLICABLE');
  // Dirty diffs follow the same rule (1.0.19 no longer special-cases them).
  assert.is(getRelation(S(4), D(S(3, 4), S(6, 8))), 'APPLICABLE');
  assert.ok(canApply(S(3), d));
});

test('applyDiff: clean keeps the dirt of the snapshot, dirty takes d.E', () => {
  assert.ok(snapEquals(applyDiff(S(3), D(S(3), S(5))), S(5)));
  assert.ok(snapEquals(applyDiff(S(3, 9), D(S(2), S(5))), S(5, 9)));
  assert.ok(snapEquals(applyDiff(S(3, 4), D(S(2), S(5))), S(5)));
  assert.ok(snapEquals(applyDiff(S(3, 20), D(S(3, 4), S(6, 8))), S(6, 8)));
  assert.ok(snapEquals(applyDiff(S(0, 10), D(S(0), S(5))), S(5, 10)));
  assert.throws(() => applyDiff(S(2), D(S(3), S(5))), (e: unknown) => e instanceof NotApplicableError && e.relation === 'TOO_NEW');
  assert.throws(() => applyDiff(S(5), D(S(3), S(5))), (e: unknown) => e instanceof NotApplicableError && e.relation === 'TOO_OLD');
  assert.ok(snapEquals(applyDiffs(S(0), [cd(0n, 1n), cd(1n, 3n), cd(2n, 4n)]), S(4)));
  assert.throws(() => applyDiffs(S(0), [cd(0n, 1n), cd(2n, 3n)]), typed(NotApplicableError));
});

test('canMerge / mergeDiff: the §3.3 rules', () => {
  const d0 = D(S(0), S(5), { isMergeable: false, timestamp: 10 });
  const d1 = D(S(3), S(8), { timestamp: 20 });
  assert.ok(canMerge(d0, d1));
  const m = mergeDiff(d0, d1);
  assert.equal(plain(m), plain(makeMetaDiff({ snapB: S(0), snapE: S(8), isMergeable: false, timestamp: 20 })));
  assert.not.ok(canMerge(d0, D(S(3), S(8), { isMergeable: false })), 'd1 not mergeable');
  assert.not.ok(canMerge(d0, D(S(6), S(8))), 'gap');
  assert.not.ok(canMerge(d0, D(S(1), S(5))), 'no progress');
  assert.not.ok(canMerge(D(S(2), S(5)), D(S(1), S(8))), 'd1 starts before d0');
  assert.ok(canMerge(d0, D(S(5), S(6))), 'touching');
  assert.ok(canMerge(d0, D(S(0), S(6))), 'same start');
  assert.not.ok(canMerge(D(S(0), S(5), { isCompDiff: true }), d1), 'compDiff d0');
  assert.not.ok(canMerge(d0, D(S(3), S(8), { isCompDiff: true })), 'compDiff d1');
  // A clean d1 keeps d0's dirty end; a dirty d1 gives its own end.
  assert.ok(snapEquals(mergeDiff(D(S(0), S(5, 9)), D(S(5), S(7))).snapE, S(7, 9)));
  assert.ok(snapEquals(mergeDiff(D(S(0), S(5, 9)), D(S(5), S(12))).snapE, S(12)));
  assert.ok(snapEquals(mergeDiff(D(S(0), S(5, 9)), D(S(5, 6), S(7, 8))).snapE, S(7, 8)));
  assert.throws(() => mergeDiff(d0, D(S(6), S(8))), typed(NotMergeableError));
  // Stricter than the original: the merge would be |6,10|-->|9|, breaking the progress constraint.
  assert.not.ok(canMerge(D(S(6, 10), S(8, 10)), D(S(8, 9), S(9))));
  assert.throws(() => mergeDiff(D(S(6, 10), S(8, 10)), D(S(8, 9), S(9))), typed(NotMergeableError));
  assert.throws(() => mergeDiffs([]), typed(NotMergeableError));
  assert.equal(plain(mergeDiffs([cd(0n, 1n, false, 1), cd(1n, 2n, true, 2), cd(2n, 3n, true, 3)])), plain(cd(0n, 3n, false, 3)));
});

test('contains and getMaxProgressDiff', () => {
  assert.ok(contains(cd(0n, 10n), cd(3n, 5n)));
  assert.ok(contains(cd(0n, 10n), cd(0n, 10n)));
  assert.not.ok(contains(cd(1n, 10n), cd(0n, 5n)));
  assert.not.ok(contains(cd(0n, 9n), cd(3n, 10n)));
  const a = cd(0n, 5n), b = cd(2n, 5n), c = cd(1n, 4n), b2 = cd(2n, 5n, false);
  assert.is(getMaxProgressDiff([a, b, c]), b);
  assert.is(getMaxProgressDiff([c, a]), a);
  assert.is(getMaxProgressDiff([b, b2]), b, 'first on a full tie');
  assert.is(getMaxProgressDiff([b2, b]), b2);
  assert.throws(() => getMaxProgressDiff([]), typed(InvalidMetaError));
});

test('MetaState: forms, begin/end applying (the original\'s metaDiffManager2 case)', () => {
  const st = metaState(S(0, 10));
  assert.is(formatMetaState(st), '<|0,10|>');
  const v = [cd(0n, 5n, false, 1000), D(S(5, 10), S(15, 20), { isMergeable: false, timestamp: 1001 }), cd(15n, 20n, false, 1002), cd(20n, 25n, false, 1003)];
  const a = beginApplying(st, v);
  assert.is(formatMetaState(a), '<|0,10|-->|25|>');
  assert.is(a.timestamp, 1003);
  assert.equal(plain(beginApplying(a, v)), plain(a));
  const e = endApplying(st, v);
  assert.is(formatMetaState(e), '<|25|>');
  assert.equal(plain(endApplying(a, v)), plain(e));
  assert.ok(canApplyToState(a, v));
  assert.not.ok(canApplyToState(a, v.slice(0, 3)), 'stops before the apply in progress ends');
  assert.throws(() => endApplying(a, v.slice(0, 3)), typed(NotApplicableError));
  assert.is(endApplying(st, []), st);
  assert.throws(() => applyingMetaState(S(5), S(5)), typed(InvalidMetaError));
  assert.throws(() => applyingMetaState(S(6), S(5)), typed(InvalidMetaError));
  assert.throws(() => metaState(S(1), -5), typed(InvalidMetaError));
  assert.equal(plain(parseMetaState('<|0,10|-->|25|>', 1003)), plain(a));
  assert.equal(plain(parseMetaState('<|25|>', 1003)), plain(e));
  for (const bad of ['', '<>', '<|1|', '|1|', '<|1|-->>', '<|5|-->|5|>', '<|5|-->|3|>', '<|1|>x', '<|1|--|2|>']) {
    assert.throws(() => parseMetaState(bad), typed(MetaParseError), bad);
  }
});

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

test('property: text forms round trip', () => {
  fc.assert(fc.property(snapArb, (s) => { assert.ok(snapEquals(parseMetaSnap(formatMetaSnap(s)), s)); }));
  fc.assert(fc.property(diffArb(), (d) => {
    const st = applyingMetaState(d.snapB, d.snapE, d.timestamp);
    assert.equal(plain(parseMetaState(formatMetaState(st), d.timestamp)), plain(st));
  }));
});

test('property: an applicable diff always progresses, and the result is valid', () => {
  fc.assert(fc.property(smallSnapArb, diffArb({ small: true, comp: true }), (s, d) => {
    if (!canApply(s, d)) return;
    const r = applyDiff(s, d);
    assert.ok(r.gidB > s.gidB);
    assert.is(r.gidB, d.snapE.gidB);
  }), { numRuns: 3000 });
});

test('property: merge is associative for clean diffs and for contiguous chains, where every merge is allowed', () => {
  const clean = diffArb({ small: true }).filter(isCleanDiff);
  const same = (x: MetaDiff, y: MetaDiff) => assert.equal(plain(x), plain(y));
  const check = (d0: MetaDiff, d1: MetaDiff, d2: MetaDiff) => {
    if (!canMerge(d0, d1) || !canMerge(d1, d2)) return false;
    const l = mergeDiff(d0, d1);
    const r = mergeDiff(d1, d2);
    // Where the inner merges are allowed, the outer ones are allowed on both sides together.
    assert.is(canMerge(l, d2), canMerge(d0, r));
    if (!canMerge(l, d2)) return false;
    same(mergeDiff(l, d2), mergeDiff(d0, r));
    return true;
  };
  let hits = 0;
  fc.assert(fc.property(clean, clean, clean, (a, b, c) => { if (check(a, b, c)) hits++; }), { numRuns: 20000 });
  assert.ok(hits > 50, `only ${hits} mergeable triples`);
  // Contiguous chains: each diff starts where the previous ends (any cleanliness).
  const chain = fc.tuple(smallSnapArb, fc.array(fc.tuple(fc.bigInt({ min: 1n, max: 4n }), fc.bigInt({ min: 0n, max: 3n }), fc.boolean(), fc.boolean()), { minLength: 3, maxLength: 3 }))
    .map(([s0, steps]) => {
      const out: MetaDiff[] = [];
      let s = s0;
      for (const [step, w, cleanE, m] of steps) {
        const gB = s.gidB + step;
        const gE = gB > s.gidE ? gB : s.gidE;
        const e = cleanE && gE === gB ? metaSnap(gB) : metaSnap(gB, gE + w);
        out.push(makeMetaDiff({ snapB: s, snapE: e, isMergeable: m }));
        s = e;
      }
      return out;
    });
  hits = 0;
  fc.assert(fc.property(chain, ([a, b, c]) => { if (check(a, b, c)) hits++; }), { numRuns: 5000 });
  assert.ok(hits > 50, `only ${hits} mergeable chains`);
});

test('merge is not associative in general (the original\'s rule): a pinned counterexample', () => {
  // d2 is dirty only at its start; merged into d1 first, that dirt disappears.
  const d0 = D(S(0), S(1, 4)), d1 = D(S(0), S(2)), d2 = D(S(0, 1), S(3));
  const l = mergeDiff(mergeDiff(d0, d1), d2);
  const r = mergeDiff(d0, mergeDiff(d1, d2));
  assert.is(formatMetaSnap(l.snapE), '|3|');
  assert.is(formatMetaSnap(r.snapE), '|3,4|');
});

test('property: applying d0 then d1 vs applying merge(d0, d1)', () => {
  let hits = 0;
  fc.assert(fc.property(smallSnapArb, diffArb({ small: true }), diffArb({ small: true }), (s, d0, d1) => {
    if (!canMerge(d0, d1) || !canApply(s, d0)) return;
    hits++;
    const s1 = applyDiff(s, d0);
    assert.ok(canApply(s1, d1), 'd1 applies after d0');
    const seq = applyDiff(s1, d1);
    const m = mergeDiff(d0, d1);
    assert.ok(canApply(s, m), 'the merged diff applies where d0 did');
    const merged = applyDiff(s, m);
    // Same resulting gid always; the same snapshot when s or both diffs are clean;
    // otherwise the merged result is never cleaner.
    assert.is(merged.gidB, seq.gidB);
    if (isCleanSnap(s) || (isCleanDiff(d0) && isCleanDiff(d1))) assert.ok(snapEquals(merged, seq));
    assert.ok(merged.gidE >= seq.gidE);
  }), { numRuns: 20000 });
  assert.ok(hits > 100, `only ${hits} cases`);
});

test('property: merging never throws where canMerge holds, and the result contains both', () => {
  fc.assert(fc.property(diffArb({ small: true, comp: true }), diffArb({ small: true, comp: true }), (d0, d1) => {
    if (!canMerge(d0, d1)) {
      assert.throws(() => mergeDiff(d0, d1), typed(NotMergeableError));
      return;
    }
    const m = mergeDiff(d0, d1);
    validateMetaDiff(m);
    assert.ok(contains(m, d0));
    assert.ok(contains(m, d1));
  }), { numRuns: 5000 });
});

test.run();
