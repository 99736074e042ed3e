import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  COMPRESSION_NAMES, COMPRESSION_TYPE_COUNT, COMPRESS_OPT_MAX_LEVEL, COMPRESS_OPT_MAX_NUM_CPU,
  CompressionType, DEFAULT_COMPRESS_OPT, ParseError, UnknownCompressionTypeError, ValueOutOfRangeError,
  WdiffFormatError, codecLevel, codecLevelRange, compressionTypeName, formatCompressOpt,
  isCompressionType, makeCompressOpt, parseCompressOpt, parseCompressionType, validateCompressOpt,
  type CompressOpt,
} from '../src/index.ts';

const isTyped = (cls: abstract new (...a: never[]) => unknown) => (e: unknown) => e instanceof cls && e instanceof WdiffFormatError;

test('type ids and names of reference §4.5/§4.6', () => {
  assert.equal({ ...CompressionType }, { NONE: 0, GZIP: 1, SNAPPY: 2, LZMA: 3, LZ4: 4, ZSTD: 5 });
  assert.equal([...COMPRESSION_NAMES], ['none', 'snappy', 'gzip', 'lzma', 'lz4', 'zstd']);
  assert.is(COMPRESSION_TYPE_COUNT, 6);
  const pairs: Array<[number, string]> = [[0, 'none'], [1, 'gzip'], [2, 'snappy'], [3, 'lzma'], [4, 'lz4'], [5, 'zstd']];
  for (const [id, name] of pairs) {
    assert.is(compressionTypeName(id), name);
    assert.is(parseCompressionType(name), id);
    assert.ok(isCompressionType(id));
  }
  for (const bad of [-1, 6, 255, 1.5, Number.NaN]) {
    assert.not.ok(isCompressionType(bad));
    assert.throws(() => compressionTypeName(bad), isTyped(UnknownCompressionTypeError));
  }
  for (const bad of ['', 'Snappy', 'SNAPPY', 'xz', 'zlib', ' gzip', 'gzip ', 'lz4\n']) {
    assert.throws(() => parseCompressionType(bad), isTyped(UnknownCompressionTypeError));
  }
});

test('default option is snappy:0:1', () => {
  assert.equal({ ...DEFAULT_COMPRESS_OPT }, { type: CompressionType.SNAPPY, level: 0, numCpu: 1 });
  assert.is(formatCompressOpt(DEFAULT_COMPRESS_OPT), 'snappy:0:1');
  assert.ok(Object.isFrozen(DEFAULT_COMPRESS_OPT));
  assert.equal({ ...makeCompressOpt() }, { ...DEFAULT_COMPRESS_OPT });
});

test('parse: full form, and the optional fields default to level 0 and one thread', () => {
  assert.equal({ ...parseCompressOpt('snappy:0:1') }, { type: 2, level: 0, numCpu: 1 });
  assert.equal({ ...parseCompressOpt('lzma:9:1') }, { type: 3, level: 9, numCpu: 1 });
  assert.equal({ ...parseCompressOpt('gzip:9:4') }, { type: 1, level: 9, numCpu: 4 });
  assert.equal({ ...parseCompressOpt('none:9:1') }, { type: 0, level: 9, numCpu: 1 });
  assert.equal({ ...parseCompressOpt('zstd') }, { type: 5, level: 0, numCpu: 1 });
  assert.equal({ ...parseCompressOpt('lz4:3') }, { type: 4, level: 3, numCpu: 1 });
  assert.equal({ ...parseCompressOpt('zstd:07:255') }, { type: 5, level: 7, numCpu: 255 });
  assert.ok(Object.isFrozen(parseCompressOpt('zstd')));
});

test('parse: bad inputs give typed errors (the original\'s host_info_test cases included)', () => {
  const cases: Array<[string, abstract new (...a: never[]) => unknown]> = [
    ['xxx:9:1', UnknownCompressionTypeError],
    ['snappy:10:1', ValueOutOfRangeError],
    ['snappy:9:0', ValueOutOfRangeError],
    ['snappy:0:256', ValueOutOfRangeError],
    ['zstd:19:1', ValueOutOfRangeError],
    ['', ParseError],
    [':0:1', ParseError],
    ['snappy:', ParseError],
    ['snappy::1', ParseError],
    ['snappy:0:', ParseError],
    ['snappy:0:1:', ParseError],
    ['snappy:0:1:2', ParseError],
    ['snappy:-1:1', ParseError],
    ['snappy:+1:1', ParseError],
    ['snappy:1.0:1', ParseError],
    ['snappy:0x1:1', ParseError],
    ['snappy: 1:1', ParseError],
    ['snappy:0:1 ', ParseError],
    ['snappy:0:1000', ParseError],
    ['snappy:0:٣', ParseError],
    ['SNAPPY:0:1', UnknownCompressionTypeError],
  ];
  for (const [text, cls] of cases) {
    assert.throws(() => parseCompressOpt(text), isTyped(cls), text);
  }
  try { parseCompressOpt('snappy:10:1'); } catch (e) {
    assert.instance(e, ValueOutOfRangeError);
    assert.is((e as ValueOutOfRangeError).field, 'level');
    assert.is((e as ValueOutOfRangeError).code, 'ERR_WDIFF_RANGE');
  }
  try { parseCompressOpt('a:b:c:d'); } catch (e) {
    assert.is((e as ParseError).input, 'a:b:c:d');
    assert.is((e as ParseError).code, 'ERR_WDIFF_PARSE');
  }
  assert.throws(() => parseCompressOpt(5 as unknown as string), isTyped(ParseError));
});

test('validate and format reject invalid option objects', () => {
  const bad: CompressOpt[] = [
    { type: 6 as CompressOpt['type'], level: 0, numCpu: 1 },
    { type: 2, level: 10, numCpu: 1 },
    { type: 2, level: -1, numCpu: 1 },
    { type: 2, level: 0.5, numCpu: 1 },
    { type: 2, level: 0, numCpu: 0 },
    { type: 2, level: 0, numCpu: 256 },
  ];
  for (const o of bad) {
    assert.throws(() => validateCompressOpt(o), (e: unknown) => e instanceof WdiffFormatError);
    assert.throws(() => formatCompressOpt(o), (e: unknown) => e instanceof WdiffFormatError);
  }
});

const optArb = fc.record({
  type: fc.integer({ min: 0, max: 5 }) as fc.Arbitrary<CompressOpt['type']>,
  level: fc.integer({ min: 0, max: COMPRESS_OPT_MAX_LEVEL }),
  numCpu: fc.integer({ min: 1, max: COMPRESS_OPT_MAX_NUM_CPU }),
});

test('property: parse(format(x)) == x, and format(parse(s)) is the canonical 3-field form', () => {
  fc.assert(fc.property(optArb, (o) => {
    const s = formatCompressOpt(o);
    assert.equal({ ...parseCompressOpt(s) }, { ...o });
    assert.is(s.split(':').length, 3);
  }));
  // Short forms parse to the same value as their canonical form.
  fc.assert(fc.property(optArb, fc.integer({ min: 1, max: 3 }), (o, n) => {
    const name = compressionTypeName(o.type);
    const text = n === 1 ? name : n === 2 ? `${name}:${o.level}` : `${name}:${o.level}:${o.numCpu}`;
    const p = parseCompressOpt(text);
    assert.equal({ ...parseCompressOpt(formatCompressOpt(p)) }, { ...p });
  }));
});

test('property: arbitrary strings parse or throw a typed error, never anything else', () => {
  const piece = fc.oneof(fc.constantFrom(...COMPRESSION_NAMES, ':', '0', '9', '10', '255', '256', '-', ' '), fc.string({ maxLength: 4 }));
  fc.assert(fc.property(fc.array(piece, { maxLength: 7 }).map((a) => a.join('')), (s) => {
    try {
      const o = parseCompressOpt(s);
      validateCompressOpt(o);
    } catch (e) {
      if (!(e instanceof WdiffFormatError)) throw e;
    }
  }), { numRuns: 2000 });
});

test('codec levels: 0 is the codec default, zstd < 20, gzip 0..9', () => {
  assert.is(codecLevel(CompressionType.GZIP, 0), 6);
  assert.is(codecLevel(CompressionType.GZIP, 1), 1);
  assert.is(codecLevel(CompressionType.GZIP, 9), 9);
  assert.throws(() => codecLevel(CompressionType.GZIP, 10), isTyped(ValueOutOfRangeError));
  assert.is(codecLevel(CompressionType.LZMA, 0), 6);
  assert.is(codecLevel(CompressionType.LZMA, 2), 2);
  assert.is(codecLevel(CompressionType.ZSTD, 0), 1);
  assert.is(codecLevel(CompressionType.ZSTD, 19), 19);
  assert.throws(() => codecLevel(CompressionType.ZSTD, 20), isTyped(ValueOutOfRangeError));
  for (const t of [CompressionType.NONE, CompressionType.SNAPPY, CompressionType.LZ4]) {
    assert.is(codecLevel(t, 0), undefined);
    assert.is(codecLevel(t, 9), undefined);
    assert.is(codecLevelRange(t).defaultLevel, undefined);
  }
  assert.throws(() => codecLevel(7, 0), isTyped(UnknownCompressionTypeError));
  assert.throws(() => codecLevel(CompressionType.GZIP, -1), isTyped(ValueOutOfRangeError));
  // Every valid CompressOpt has a codec level.
  fc.assert(fc.property(optArb, (o) => { codecLevel(o.type, o.level); }));
});

test('error vocabulary: names, codes and locate()', () => {
  const e = new ValueOutOfRangeError('n_records', 200, 'exceeds 127');
  assert.is(e.name, 'ValueOutOfRangeError');
  assert.is(e.message, 'n_records: 200 exceeds 127');
  e.locate({ offset: 32, source: 'a.wdiff' });
  assert.is(e.message, 'n_records: 200 exceeds 127 (at a.wdiff, offset 32)');
  e.locate({ offset: 99 });
  assert.is(e.offset, 32);
  assert.is(new UnknownCompressionTypeError(9).code, 'ERR_WDIFF_COMPRESSION_TYPE');
  assert.instance(new ParseError('x', 'bad'), Error);
});

test.run();
