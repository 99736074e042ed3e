// The applicable chain and restorable snapshots of reference §3.3.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  InvalidMetaError, applyDiffs, applyingMetaState, canMerge, formatMetaSnap, getApplicableDiffList,
  getLatestSnapshot, getRestorableList, isCleanSnap, makeMetaDiff, mergeDiffs, metaSnap, metaState,
  type MetaDiff, type RestorableSnapshot,
} from '../src/index.ts';
import { cd } from './arbitraries.ts';

const gids = (l: RestorableSnapshot[]) => l.map((r) => Number(r.gid));
const flags = (l: RestorableSnapshot[]) => l.map((r) => `${r.gid}${r.isBase ? 'b' : ''}${r.isExplicit ? 'x' : ''}`);

// The original's metaDiffManager1 case: |0| then 0->1 M, 1->2 M, 2->3 M, 3->4 (explicit 3), 4->5 M.
const chain1 = [cd(0n, 1n, true, 1000), cd(1n, 2n, true, 1001), cd(2n, 3n, true, 1002), cd(3n, 4n, false, 1003), cd(4n, 5n, true, 1004)];

test('a clean chain: explicit snapshots, all, timestamps (metaDiffManager1: 3 and 6)', () => {
  const st = metaState(metaSnap(0n), 999);
  const ex = getRestorableList(st, chain1);
  assert.equal(flags(ex), ['0b', '3x', '5x']);
  assert.equal(ex.map((r) => r.timestamp), [999, 1002, 1004]);
  const all = getRestorableList(st, chain1, { all: true });
  assert.equal(flags(all), ['0b', '1', '2', '3x', '4', '5x']);
  assert.ok(Object.isFrozen(all[0]));
  // Input order does not matter.
  assert.equal(flags(getRestorableList(st, [...chain1].reverse(), { all: true })), flags(all));
  assert.equal(formatMetaSnap(getLatestSnapshot(st, chain1)!), '|5|');
});

test('a dirty base after a full sync (metaDiffManager2: 2 and 2; without the last diff: 1 and 1)', () => {
  const st = metaState(metaSnap(0n, 10n));
  const v = [cd(0n, 5n, false, 1000), makeMetaDiff({ snapB: metaSnap(5n, 10n), snapE: metaSnap(15n, 20n), timestamp: 1001 }), cd(15n, 20n, false, 1002), cd(20n, 25n, false, 1003)];
  assert.equal(getApplicableDiffList(st.snapB, v).length, 4);
  assert.equal(flags(getRestorableList(st, v)), ['20x', '25x']);
  assert.equal(flags(getRestorableList(st, v, { all: true })), ['20x', '25x']);
  assert.equal(flags(getRestorableList(st, v.slice(0, 3))), ['20x']);
  assert.equal(flags(getRestorableList(st, v.slice(0, 3), { all: true })), ['20x']);
  // Only the dirty part: nothing is restorable yet.
  assert.equal(getRestorableList(st, v.slice(0, 2), { all: true }), []);
  assert.equal(formatMetaSnap(getLatestSnapshot(st, v.slice(0, 2))!), '|15,20|');
});

test('a base being applied: gids before the end of the apply are not restorable', () => {
  const st = applyingMetaState(metaSnap(0n), metaSnap(2n), 1001);
  assert.equal(flags(getRestorableList(st, chain1, { all: true })), ['2b', '3x', '4', '5x']);
  assert.equal(getRestorableList(st, chain1, { all: true })[0].timestamp, 1001);
  // The diffs to finish the apply are gone: nothing can be restored, no latest snapshot.
  const cut = applyingMetaState(metaSnap(0n), metaSnap(9n));
  assert.equal(getRestorableList(cut, chain1), []);
  assert.is(getLatestSnapshot(cut, chain1), undefined);
  // A merged diff overshooting the apply's end.
  const over = [cd(0n, 1n), cd(0n, 4n), cd(4n, 5n, false)];
  assert.equal(flags(getRestorableList(applyingMetaState(metaSnap(0n), metaSnap(2n)), over, { all: true })), ['4b', '5x']);
});

test('the walk takes the diff that progresses furthest, and stops at gaps', () => {
  const merged = cd(0n, 3n, true, 1002);
  const v = [cd(0n, 1n, true, 1000), cd(1n, 2n, true, 1001), merged, cd(3n, 4n, false, 1003)];
  assert.equal(getApplicableDiffList(metaSnap(0n), v), [merged, v[3]]);
  assert.equal(getApplicableDiffList(metaSnap(1n), v), [merged, v[3]]);
  assert.equal(getApplicableDiffList(metaSnap(2n), v), [merged, v[3]]);
  assert.equal(getApplicableDiffList(metaSnap(3n), v), [v[3]]);
  assert.equal(getApplicableDiffList(metaSnap(4n), v), []);
  // gap 2 -> 3 missing
  assert.equal(gids(getRestorableList(metaState(metaSnap(0n)), [cd(0n, 1n), cd(1n, 2n), cd(3n, 4n)], { all: true })), [0, 1, 2]);
  // a predicate stops the walk
  assert.equal(getApplicableDiffList(metaSnap(0n), chain1, (_d, s) => s.gidB <= 2n).length, 2);
  // a base past every diff
  assert.equal(flags(getRestorableList(metaState(metaSnap(7n)), chain1)), ['7b']);
});

test('compared diffs apply only at their exact start', () => {
  const comp = makeMetaDiff({ snapB: metaSnap(5n), snapE: metaSnap(9n, 12n), isCompDiff: true, timestamp: 50 });
  const v = [comp, cd(9n, 12n, true, 60)];
  assert.equal(flags(getRestorableList(metaState(metaSnap(5n)), v, { all: true })), ['5b', '12x']);
  assert.equal(flags(getRestorableList(metaState(metaSnap(6n)), v, { all: true })), ['6b']);
});

test('invalid input is a typed error', () => {
  const broken = { ...cd(0n, 1n), snapE: { gidB: 0n, gidE: 0n } } as MetaDiff;
  assert.throws(() => getRestorableList(metaState(metaSnap(0n)), [broken]), (e: unknown) => e instanceof InvalidMetaError);
  assert.throws(() => getRestorableList({ isApplying: false, snapB: metaSnap(1n), snapE: metaSnap(2n), timestamp: 0 }, []), (e: unknown) => e instanceof InvalidMetaError);
});

// A random archive: a contiguous chain of clean diffs 0..n with random explicit snapshots, plus
// merges of random mergeable runs (as the proxy and the worker make them).
const archiveArb = fc.record({
  n: fc.integer({ min: 1, max: 25 }),
  mergeable: fc.array(fc.boolean(), { minLength: 25, maxLength: 25 }),
  runs: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 2, max: 6 })), { maxLength: 6 }),
}).map(({ n, mergeable, runs }) => {
  const base: MetaDiff[] = [];
  for (let i = 0; i < n; i++) base.push(cd(BigInt(i), BigInt(i + 1), mergeable[i], 1000 + i));
  const merged: MetaDiff[] = [];
  for (const [start, len] of runs) {
    const s = start % n;
    const run = base.slice(s, s + len);
    if (run.length < 2) continue;
    let ok = true;
    for (let i = 1; i < run.length; i++) if (!canMerge(run[0], run[i]) || !run[i].isMergeable) ok = false;
    if (ok) merged.push(mergeDiffs(run));
  }
  return { n, base, merged };
});

test('property: listed snapshots are clean, increasing, reachable; explicit ones survive merging', () => {
  fc.assert(fc.property(archiveArb, ({ n, base, merged }) => {
    const st = metaState(metaSnap(0n));
    const allBefore = getRestorableList(st, base, { all: true });
    assert.equal(gids(allBefore), Array.from({ length: n + 1 }, (_, i) => i));
    const exBefore = getRestorableList(st, base);
    const diffs = [...base, ...merged];
    const all = getRestorableList(st, diffs, { all: true });
    const ex = getRestorableList(st, diffs);
    for (const l of [all, ex]) {
      for (let i = 1; i < l.length; i++) assert.ok(l[i].gid > l[i - 1].gid);
      for (const r of l) {
        const prefix = getApplicableDiffList(st.snapB, diffs, (_d, s) => s.gidB <= r.gid);
        const s = applyDiffs(st.snapB, prefix);
        assert.ok(isCleanSnap(s) && s.gidB === r.gid);
      }
    }
    // Non-all is a subset of all; merges only remove implicit snapshots (metaDiffManager's random test).
    assert.ok(gids(ex).every((g) => gids(all).includes(g)));
    assert.equal(gids(ex), gids(exBefore));
    assert.ok(all.length <= allBefore.length);
    assert.is(all[all.length - 1].gid, BigInt(n));
    assert.ok(all[all.length - 1].isExplicit || all.length === 1);
  }), { numRuns: 1000 });
});

test.run();
