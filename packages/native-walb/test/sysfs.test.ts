import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  InvalidDeviceNameError, LSIDS_LINE_NAMES, SysfsFormatError, WALB_CONTROL_PATH, WALB_SYSFS_ATTRIBUTES,
  WalbAbiError, checkLsidOrder, formatLsids, lsidOrderViolation, parseDevNumber, parseLsids,
  parseSysfsUuid, sysfsAttributePath, sysfsWalbDir, wdevPath, wldevPath, type WalbLsids, type WalbSysfsAttribute,
} from '../src/index.ts';

const typed = (cls: abstract new (...a: never[]) => unknown) => (e: unknown) => e instanceof cls && e instanceof WalbAbiError;

// Byte for byte what walb-driver 1.5.1 module/sysfs.c writes.
const KERNEL_LSIDS =
  'latest       1234\n' +
  'completed    1234\n' +
  'flush        1200\n' +
  'permanent    1200\n' +
  'written      1100\n' +
  'prev_written 1000\n' +
  'oldest       900\n';
const L: WalbLsids = { latest: 1234n, completed: 1234n, flush: 1200n, permanent: 1200n, written: 1100n, prevWritten: 1000n, oldest: 900n };

test('paths of §5.1', () => {
  assert.is(WALB_CONTROL_PATH, '/dev/walb/control');
  assert.is(wdevPath('vol0'), '/dev/walb/vol0');
  assert.is(wldevPath('vol0'), '/dev/walb/Lvol0');
  assert.is(sysfsWalbDir('vol0'), '/sys/block/walb!vol0/walb');
  assert.is(sysfsAttributePath('vol0', 'lsids'), '/sys/block/walb!vol0/walb/lsids');
  assert.equal([...WALB_SYSFS_ATTRIBUTES], ['ldev', 'ddev', 'lsids', 'name', 'uuid', 'log_capacity', 'log_usage', 'status', 'support_flush', 'support_fua', 'support_discard']);
  for (const bad of ['../../etc', 'a/b', '', 'x y']) {
    assert.throws(() => wdevPath(bad), typed(InvalidDeviceNameError));
    assert.throws(() => sysfsAttributePath(bad, 'lsids'), typed(InvalidDeviceNameError));
  }
  assert.throws(() => sysfsAttributePath('vol0', '../uevent' as WalbSysfsAttribute), typed(SysfsFormatError));
});

test('lsids: the kernel text parses; format reproduces it exactly', () => {
  assert.equal(parseLsids(KERNEL_LSIDS), L);
  assert.is(formatLsids(L), KERNEL_LSIDS);
  assert.equal(LSIDS_LINE_NAMES.map(([n]) => n), ['latest', 'completed', 'flush', 'permanent', 'written', 'prev_written', 'oldest']);
  // Tabs, CRLF, blank lines and the older driver's extra "submitted" line are accepted.
  const loose = 'submitted\t5\r\n\r\n' + KERNEL_LSIDS.replaceAll('\n', '\r\n').replace('latest       ', 'latest\t');
  assert.equal(parseLsids(loose), L);
  const max = '18446744073709551615';
  assert.is(parseLsids(KERNEL_LSIDS.replace('900', max)).oldest, (1n << 64n) - 1n);
});

test('lsids: malformed texts are typed errors naming the line', () => {
  const cases: Array<[string, number | undefined]> = [
    ['', undefined],
    [KERNEL_LSIDS.replace('oldest       900\n', ''), undefined],
    [KERNEL_LSIDS + 'oldest 1\n', 8],
    [KERNEL_LSIDS.replace('1100', '-1'), 5],
    [KERNEL_LSIDS.replace('1100', '0x10'), 5],
    [KERNEL_LSIDS.replace('1100', '11 00'), 5],
    [KERNEL_LSIDS.replace('900', '18446744073709551616'), 7],
    [KERNEL_LSIDS.replace('900', '1'.repeat(21)), 7],
    [KERNEL_LSIDS.replace('written      1100', 'written'), 5],
    ['junk\n' + KERNEL_LSIDS, 1],
    ['submitted x\n' + KERNEL_LSIDS, 1],
  ];
  for (const [text, line] of cases) {
    try {
      parseLsids(text);
      assert.unreachable(JSON.stringify(text));
    } catch (e) {
      assert.ok(e instanceof SysfsFormatError, String(e));
      assert.is((e as SysfsFormatError).code, 'ERR_WALB_ABI_SYSFS');
      assert.is((e as SysfsFormatError).line, line, JSON.stringify(text));
    }
  }
  assert.throws(() => parseLsids('x'.repeat(5000)), typed(SysfsFormatError));
  assert.throws(() => parseLsids(undefined as unknown as string), typed(SysfsFormatError));
});

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const lsidsArb: fc.Arbitrary<WalbLsids> = fc.record({
  latest: u64, completed: u64, flush: u64, permanent: u64, written: u64, prevWritten: u64, oldest: u64,
});

test('property: parse(format(l)) == l', () => {
  fc.assert(fc.property(lsidsArb, (l) => { assert.equal(parseLsids(formatLsids(l)), { ...l }); }));
});

test('fuzz: arbitrary strings give a typed error or a result, never a crash', () => {
  const check = (s: string) => {
    try {
      const r = parseLsids(s);
      for (const [, k] of LSIDS_LINE_NAMES) assert.is(typeof r[k], 'bigint');
    } catch (e) {
      if (!(e instanceof SysfsFormatError)) throw e;
    }
  };
  fc.assert(fc.property(fc.string({ maxLength: 300 }), check), { numRuns: 3000 });
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), check), { numRuns: 1000 });
  // Mutations of a valid text: line shuffles, deletions and insertions of separators and digits.
  const piece = fc.constantFrom(' ', '\t', '\n', '\r\n', '0', '9', 'latest', 'oldest', 'prev_written', '-', '\0', '18446744073709551616');
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), piece), { maxLength: 6 }), (muts) => {
    let s = KERNEL_LSIDS;
    for (const [pos, del, ins] of muts) {
      const p = pos % (s.length + 1);
      s = s.slice(0, p) + ins + s.slice(p + del);
    }
    check(s);
  }), { numRuns: 3000 });
});

test('lsid order of §5.3', () => {
  assert.is(lsidOrderViolation(L), undefined);
  assert.is(checkLsidOrder(L), L);
  assert.is(lsidOrderViolation({ ...L, written: 1201n }), 'written (1201) > permanent (1200)');
  assert.is(lsidOrderViolation({ ...L, oldest: 1001n }), 'oldest (1001) > prev_written (1000)');
  assert.is(lsidOrderViolation({ ...L, latest: 1000n }), 'completed (1234) > latest (1000)');
  assert.throws(() => checkLsidOrder({ ...L, flush: 1300n }), typed(SysfsFormatError));
  const zero = { latest: 0n, completed: 0n, flush: 0n, permanent: 0n, written: 0n, prevWritten: 0n, oldest: 0n };
  assert.is(lsidOrderViolation(zero), undefined);
});

test('ldev/ddev and uuid attributes', () => {
  assert.equal(parseDevNumber('253:4\n'), { major: 253, minor: 4 });
  assert.equal(parseDevNumber('8:0', 'ddev'), { major: 8, minor: 0 });
  for (const bad of ['', '253', '253:', ':4', '253:4:1', 'a:b', ' 253:4', '253:4\n\n', '99999999999:0', '4294967296:0']) {
    assert.throws(() => parseDevNumber(bad), typed(SysfsFormatError), bad);
  }
  const bytes = Array.from({ length: 16 }, (_, i) => i * 17);
  const kernel = bytes.map((b) => b.toString(16).toUpperCase().padStart(2, '0') + ' ').join('') + '\n';
  assert.equal([...parseSysfsUuid(kernel)], bytes);
  assert.equal([...parseSysfsUuid(Buffer.from(bytes).toString('hex'))], bytes);
  for (const bad of ['', '00 11', kernel.replace('FF', 'GG'), '0'.repeat(31), '0'.repeat(33)]) {
    assert.throws(() => parseSysfsUuid(bad), typed(SysfsFormatError));
  }
});

test.run();
