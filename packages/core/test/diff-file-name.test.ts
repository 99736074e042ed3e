// wdiff file names of reference §3.2.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  DIFF_FILE_NAME_MAX_LENGTH, DIFF_FILE_NAME_MIN_LENGTH, DiffFileNameError, InvalidMetaError, MAX_TIMESTAMP,
  WalbCoreError, createDiffFileName, formatDiffTimestamp, isDiffFileName, makeMetaDiff, metaSnap,
  parseDiffFileName, parseDiffTimestamp,
} from '../src/index.ts';
import { diffArb, plain } from './arbitraries.ts';

const typed = (cls: abstract new (...a: never[]) => unknown) => (e: unknown) => e instanceof cls && e instanceof WalbCoreError;
const TS = 1540989296; // 2018-10-31T12:34:56Z

test('clean and dirty forms, flags, UTC timestamp', () => {
  const clean = makeMetaDiff({ snapB: metaSnap(3n), snapE: metaSnap(5n), isMergeable: true, timestamp: TS });
  assert.is(createDiffFileName(clean), '20181031123456-M--3-5.wdiff');
  const comp = makeMetaDiff({ snapB: metaSnap(3n), snapE: metaSnap(5n), isCompDiff: true, timestamp: TS });
  assert.is(createDiffFileName(comp), '20181031123456--C-3-5.wdiff');
  const both = makeMetaDiff({ snapB: metaSnap(0n), snapE: metaSnap(1n), isMergeable: true, isCompDiff: true, timestamp: 0 });
  assert.is(createDiffFileName(both), '19700101000000-MC-0-1.wdiff');
  // Dirty at either end gives the 4-gid form.
  const dirtyE = makeMetaDiff({ snapB: metaSnap(0n), snapE: metaSnap(5n, 10n), timestamp: TS });
  assert.is(createDiffFileName(dirtyE), '20181031123456----0-0-5-10.wdiff');
  const dirtyB = makeMetaDiff({ snapB: metaSnap(5n, 10n), snapE: metaSnap(15n, 20n), timestamp: TS });
  assert.is(createDiffFileName(dirtyB), '20181031123456----5-10-15-20.wdiff');
  const big = makeMetaDiff({ snapB: metaSnap(0n), snapE: metaSnap((1n << 64n) - 1n), timestamp: MAX_TIMESTAMP });
  assert.is(createDiffFileName(big), '99991231235959----0-18446744073709551615.wdiff');
  for (const d of [clean, comp, both, dirtyE, dirtyB, big]) {
    assert.equal(plain(parseDiffFileName(createDiffFileName(d))), plain(d));
  }
  assert.is(parseDiffFileName('20181031123456-M--3-5.wdiff', 1234n).dataSize, 1234n);
  assert.ok(Object.isFrozen(parseDiffFileName('20181031123456-M--3-5.wdiff')));
});

test('minimum and maximum length', () => {
  assert.is(DIFF_FILE_NAME_MIN_LENGTH, 27);
  assert.is('YYYYMMDDhhmmss-MC-0-1.wdiff'.length, 27);
  assert.ok(isDiffFileName('20181031123456-M--0-1.wdiff'));
  assert.throws(() => parseDiffFileName('2018103112345-M--0-1.wdiff'), (e: unknown) => e instanceof DiffFileNameError && /shorter/.test(e.message));
  const longest = `20181031123456-M--${'18446744073709551613'}-${'18446744073709551614'}-${'18446744073709551614'}-${'18446744073709551615'}.wdiff`;
  assert.is(longest.length, DIFF_FILE_NAME_MAX_LENGTH);
  assert.ok(isDiffFileName(longest));
  assert.throws(() => parseDiffFileName('0' + longest), typed(DiffFileNameError));
});

test('strict parsing: every malformed name is a typed error', () => {
  const bad = [
    '',
    '20181031123456-M--3-5.wdif',
    '20181031123456-M--3-5.wdiff.tmp',
    '20181031123456-M--3-5.WDIFF',
    '20181031123456-X--3-5.wdiff',   // flag must be M or -
    '20181031123456-MX-3-5.wdiff',   // flag must be C or -
    '20181031123456_M--3-5.wdiff',
    '20181031123456-M-_3-5.wdiff',
    '2018103112345a-M--3-5.wdiff',
    '20181331123456-M--3-5.wdiff',   // month 13
    '20180230123456-M--3-5.wdiff',   // Feb 30th
    '20181031243456-M--3-5.wdiff',   // hour 24
    '20181031123460-M--3-5.wdiff',   // second 60
    '19691231235959-M--3-5.wdiff',   // before 1970
    '20181031123456-M--03-5.wdiff',  // leading zero
    '20181031123456-M--3-+5.wdiff',
    '20181031123456-M---3-5.wdiff',
    '20181031123456-M--3--5.wdiff',
    '20181031123456-M--3-5-.wdiff',
    '20181031123456-M--3.wdiff0000',
    '20181031123456-M--3-5-7.wdiff',  // 3 gids
    '20181031123456-M--1-2-3-4-5.wdiff', // 5 gids
    '20181031123456-M--5-3.wdiff',   // no progress
    '20181031123456-M--3-3.wdiff',
    '20181031123456-M--3-2-5-6.wdiff', // gidB > gidE
    '20181031123456-M--3-9-5-8.wdiff', // snapB.gidE > snapE.gidE
    '20181031123456-M--3-3-5-5.wdiff', // dirty form of a clean diff
    '20181031123456-M--0-18446744073709551616.wdiff',
    '20181031123456-M--0-99999999999999999999.wdiff',
    '../20181031123456-M--3-5.wdiff',
    '20181031123456-M--3-5.wdiff/..',
    ' 20181031123456-M--3-5.wdiff',
    '２0181031123456-M--3-5.wdiff',
  ];
  for (const n of bad) {
    assert.throws(() => parseDiffFileName(n), (e: unknown) => e instanceof DiffFileNameError && e.code === 'ERR_WALB_DIFF_FILE_NAME' && e.fileName === n, n);
    assert.not.ok(isDiffFileName(n), n);
  }
  assert.throws(() => parseDiffFileName(42 as unknown as string), typed(DiffFileNameError));
  assert.throws(() => parseDiffFileName('20181031123456-M--3-5.wdiff', -1n), typed(InvalidMetaError));
});

test('timestamps', () => {
  assert.is(formatDiffTimestamp(0), '19700101000000');
  assert.is(formatDiffTimestamp(TS), '20181031123456');
  assert.is(formatDiffTimestamp(951782400), '20000229000000');
  assert.is(parseDiffTimestamp('20000229000000'), 951782400);
  assert.is(parseDiffTimestamp('19000229000000'), undefined);
  assert.is(parseDiffTimestamp('2018103112345'), undefined);
  assert.throws(() => formatDiffTimestamp(MAX_TIMESTAMP + 1), typed(InvalidMetaError));
  assert.throws(() => formatDiffTimestamp(-1), typed(InvalidMetaError));
  assert.throws(() => createDiffFileName(makeMetaDiff({ snapB: metaSnap(0n), snapE: metaSnap(1n), timestamp: MAX_TIMESTAMP + 1 })), typed(InvalidMetaError));
  fc.assert(fc.property(fc.integer({ min: 0, max: MAX_TIMESTAMP }), (t) => { assert.is(parseDiffTimestamp(formatDiffTimestamp(t)), t); }));
});

test('property: parse(create(x)) == x for every valid diff (dataSize aside, which names do not carry)', () => {
  fc.assert(fc.property(diffArb({ comp: true }), (d) => {
    const name = createDiffFileName(d);
    assert.ok(name.length >= DIFF_FILE_NAME_MIN_LENGTH && name.length <= DIFF_FILE_NAME_MAX_LENGTH);
    assert.equal(plain(parseDiffFileName(name, d.dataSize)), plain(d));
  }), { numRuns: 5000 });
});

test('fuzz: arbitrary and mutated names parse to a diff that re-creates the same name, or throw a typed error', () => {
  const check = (n: string) => {
    try {
      const d = parseDiffFileName(n);
      assert.is(createDiffFileName(d), n);
    } catch (e) {
      if (!(e instanceof DiffFileNameError)) throw e;
    }
  };
  fc.assert(fc.property(fc.string({ maxLength: 120 }), check), { numRuns: 3000 });
  const piece = fc.constantFrom('-', '0', '1', '9', 'M', 'C', '.wdiff', '18446744073709551616', '', 'x', '/');
  fc.assert(fc.property(diffArb({ small: true, comp: true }), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), piece), { maxLength: 4 }), (d, muts) => {
    let n = createDiffFileName(d);
    for (const [pos, del, ins] of muts) {
      const p = pos % (n.length + 1);
      n = n.slice(0, p) + ins + n.slice(p + del);
    }
    check(n);
  }), { numRuns: 5000 });
});

test.run();
