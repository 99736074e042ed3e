// The walb kernel ABI pinned against reference/walb.md §5.2–5.3 (sizes, offsets, ioctl numbers,
// command ids, start-param rules).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  DEFAULT_START_PARAM, DISK_NAME_LEN, IOC_READ, IOC_WRITE, InvalidDeviceNameError, MAX_PENDING_MB,
  TruncatedError, ValueOutOfRangeError, WALB_CTL_COMMANDS, WALB_CTL_DATA_LAYOUT, WALB_CTL_DATA_SIZE,
  WALB_CTL_LAYOUT, WALB_CTL_SIZE, WALB_DEV_NAME_MAX_LEN, WALB_DISK_DATA_LAYOUT, WALB_DISK_DATA_SIZE,
  WALB_DYNAMIC_MINOR, WALB_IOCTL_CONTROL, WALB_IOCTL_ID, WALB_IOCTL_VERSION, WALB_IOCTL_WDEV,
  WALB_START_PARAM_LAYOUT, WALB_START_PARAM_SIZE, WalbAbiError, WalbCtlCommand, decodeIoctl,
  decodeStartParam, decodeWalbCtl, decodeWalbCtlData, decodeWalbDiskDataList, decodeWalbVersion,
  encodeMinorRange, encodeStartParam, encodeWalbCtl, encodeWalbCtlData, encodeWalbDiskData,
  formatWalbVersion, io, ioc, ior, iow, iowr, makeStartParam, makeWalbCtl, validateStartParam,
  validateWdevName, walbCtlCommandInfo, walbCtlRequest, type StartParam, type WalbCtl, type WalbCtlData,
} from '../src/index.ts';

const typed = (cls: abstract new (...a: never[]) => unknown) => (e: unknown) => e instanceof cls && e instanceof WalbAbiError;
const plain = <T extends object>(o: T): T => JSON.parse(JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)));

test('ioctl numbers of §5.2', () => {
  assert.is(WALB_IOCTL_ID, 0xfe);
  assert.is(WALB_IOCTL_VERSION, 0x8004fe00);
  assert.is(WALB_IOCTL_CONTROL, 0xc078fe01);
  assert.is(WALB_IOCTL_WDEV, 0xc078fe02);
  assert.equal(decodeIoctl(WALB_IOCTL_VERSION), { dir: IOC_READ, type: 0xfe, nr: 0, size: 4 });
  assert.equal(decodeIoctl(WALB_IOCTL_CONTROL), { dir: IOC_READ | IOC_WRITE, type: 0xfe, nr: 1, size: 120 });
  assert.equal(decodeIoctl(WALB_IOCTL_WDEV), { dir: IOC_READ | IOC_WRITE, type: 0xfe, nr: 2, size: 120 });
});

test('ioctl encoding: well-known Linux requests and round trip', () => {
  // BLKGETSIZE64 = _IOR(0x12, 114, size_t) and BLKDISCARD = _IO(0x12, 119), FIFREEZE = _IOWR('X', 119, int).
  assert.is(ior(0x12, 114, 8), 0x80081272);
  assert.is(io(0x12, 119), 0x1277);
  assert.is(iowr(0x58, 119, 4), 0xc0045877);
  assert.is(iow(0x58, 1, 4), 0x40045801);
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 16383 }),
    (dir, type, nr, size) => {
      const n = ioc(dir, type, nr, size);
      assert.ok(n >= 0 && n <= 0xffffffff);
      assert.equal(decodeIoctl(n), { dir, type, nr, size });
    },
  ));
  for (const args of [[4, 0, 0, 0], [0, 256, 0, 0], [0, 0, 256, 0], [0, 0, 0, 16384], [0, -1, 0, 0], [0, 0, 1.5, 0]] as Array<[number, number, number, number]>) {
    assert.throws(() => ioc(...args), typed(ValueOutOfRangeError));
  }
  assert.throws(() => decodeIoctl(-1), typed(ValueOutOfRangeError));
  assert.throws(() => decodeIoctl(2 ** 32), typed(ValueOutOfRangeError));
});

test('struct sizes and offsets of §5.2', () => {
  assert.is(WALB_CTL_SIZE, 120);
  assert.is(WALB_CTL_DATA_SIZE, 48);
  assert.is(WALB_START_PARAM_SIZE, 64);
  assert.is(WALB_DISK_DATA_SIZE, 40);
  assert.is(WALB_CTL_LAYOUT.size, 120);
  assert.is(WALB_CTL_DATA_LAYOUT.size, 48);
  assert.is(WALB_START_PARAM_LAYOUT.size, 64);
  assert.is(WALB_DISK_DATA_LAYOUT.size, 40);
  const at = (l: { fields: Record<string, { offset: number; size: number }> }) =>
    Object.fromEntries(Object.entries(l.fields).map(([k, v]) => [k, [v.offset, v.size]]));
  assert.equal(at(WALB_CTL_LAYOUT), {
    command: [0, 4], val_int: [4, 4], val_u64: [8, 8], val_u32: [16, 4], error: [20, 4], u2k: [24, 48], k2u: [72, 48],
  });
  assert.equal(at(WALB_CTL_DATA_LAYOUT), {
    wmajor: [0, 4], wminor: [4, 4], lmajor: [8, 4], lminor: [12, 4], dmajor: [16, 4], dminor: [20, 4],
    buf_size: [24, 8], buf: [32, 8], kbuf: [40, 8],
  });
  assert.equal(at(WALB_START_PARAM_LAYOUT), {
    name: [0, 32], max_pending_mb: [32, 4], min_pending_mb: [36, 4], queue_stop_timeout_ms: [40, 4],
    max_logpack_kb: [44, 4], log_flush_interval_ms: [48, 4], log_flush_interval_mb: [52, 4], n_pack_bulk: [56, 4],
    n_io_bulk: [60, 4],
  });
  assert.equal(at(WALB_DISK_DATA_LAYOUT), { name: [0, 32], major: [32, 4], minor: [36, 4] });
  assert.is(DISK_NAME_LEN, 32);
  assert.is(WALB_DEV_NAME_MAX_LEN, 25);
  assert.is(WALB_DYNAMIC_MINOR, 0xffffffff);
  assert.is(MAX_PENDING_MB, 16384);
});

test('command ids and names of §5.3', () => {
  const expected: Array<[number, string, string]> = [
    [1, 'START_DEV', 'control'], [2, 'STOP_DEV', 'control'], [3, 'GET_MAJOR', 'control'], [4, 'LIST_DEV', 'control'],
    [5, 'NUM_OF_DEV', 'control'], [6, 'GET_OLDEST_LSID', 'wdev'], [7, 'SET_OLDEST_LSID', 'wdev'], [8, 'STATUS', 'wdev'],
    [16, 'GET_CHECKPOINT_INTERVAL', 'wdev'], [17, 'TAKE_CHECKPOINT', 'wdev'], [18, 'SET_CHECKPOINT_INTERVAL', 'wdev'],
    [19, 'GET_WRITTEN_LSID', 'wdev'], [20, 'GET_PERMANENT_LSID', 'wdev'], [21, 'GET_COMPLETED_LSID', 'wdev'],
    [22, 'GET_LOG_USAGE', 'wdev'], [23, 'GET_LOG_CAPACITY', 'wdev'], [24, 'IS_FLUSH_CAPABLE', 'wdev'], [25, 'RESIZE', 'wdev'],
    [26, 'CLEAR_LOG', 'wdev'], [27, 'IS_LOG_OVERFLOW', 'wdev'], [28, 'FREEZE', 'wdev'], [29, 'MELT', 'wdev'], [30, 'IS_FROZEN', 'wdev'],
  ];
  for (const [id, name, target] of expected) {
    assert.is((WalbCtlCommand as Record<string, number>)[name], id, name);
    const info = walbCtlCommandInfo(id);
    assert.is(info.name, name);
    assert.is(info.target, target);
    assert.is(info.served, id !== 8);
    assert.is(walbCtlRequest(id), target === 'control' ? WALB_IOCTL_CONTROL : WALB_IOCTL_WDEV);
  }
  assert.is(WALB_CTL_COMMANDS.length, 30);
  WALB_CTL_COMMANDS.forEach((c, i) => assert.is(c.id, i + 1));
  for (let id = 9; id <= 15; id++) {
    assert.ok(walbCtlCommandInfo(id).name.includes('SNAPSHOT'));
    assert.is(walbCtlCommandInfo(id).served, false);
  }
  for (const bad of [0, 31, -1, 1.5]) assert.throws(() => walbCtlCommandInfo(bad), typed(ValueOutOfRangeError));
});

test('driver version u32', () => {
  assert.equal(decodeWalbVersion(0x010501), { major: 1, minor: 5, patch: 1 });
  assert.is(formatWalbVersion(0x010501), '1.5.1');
  assert.is(formatWalbVersion({ major: 1, minor: 4, patch: 12 }), '1.4.12');
  assert.throws(() => decodeWalbVersion(0x01000000), typed(ValueOutOfRangeError));
});

test('start params: wdevc defaults of §5.2 and their byte image', () => {
  assert.equal({ ...DEFAULT_START_PARAM }, {
    name: '', maxPendingMb: 32, minPendingMb: 16, queueStopTimeoutMs: 100, maxLogpackKb: 32,
    logFlushIntervalMs: 100, logFlushIntervalMb: 16, nPackBulk: 128, nIoBulk: 1024,
  });
  validateStartParam(DEFAULT_START_PARAM);
  const b = Buffer.from(encodeStartParam(makeStartParam({ name: 'vol0' })));
  assert.is(b.length, 64);
  assert.is(b.subarray(0, 5).toString('latin1'), 'vol0\0');
  assert.ok(b.subarray(4, 32).every((x) => x === 0));
  assert.equal([32, 36, 40, 44, 48, 52, 56, 60].map((o) => b.readUInt32LE(o)), [32, 16, 100, 32, 100, 16, 128, 1024]);
  assert.equal(decodeStartParam(b), { ...DEFAULT_START_PARAM, name: 'vol0' });
});

test('start params: the bounds of §5.2 are enforced, field named', () => {
  const bad: Array<[Partial<StartParam>, string]> = [
    [{ maxPendingMb: 1, minPendingMb: 0, logFlushIntervalMb: 0 }, 'max_pending_mb'],
    [{ maxPendingMb: 16385 }, 'max_pending_mb'],
    [{ minPendingMb: 0 }, 'min_pending_mb'],
    [{ minPendingMb: 32 }, 'min_pending_mb'],
    [{ queueStopTimeoutMs: 0 }, 'queue_stop_timeout_ms'],
    [{ logFlushIntervalMb: 17 }, 'log_flush_interval_mb'],
    [{ nPackBulk: 0 }, 'n_pack_bulk'],
    [{ nIoBulk: 0 }, 'n_io_bulk'],
    [{ nIoBulk: 2 ** 32 }, 'n_io_bulk'],
    [{ logFlushIntervalMs: -1 }, 'log_flush_interval_ms'],
    [{ maxLogpackKb: 0.5 }, 'max_logpack_kb'],
  ];
  for (const [o, field] of bad) {
    assert.throws(() => makeStartParam(o), (e: unknown) => e instanceof ValueOutOfRangeError && e.field === field, field);
  }
  // Edges that are valid.
  makeStartParam({ maxPendingMb: 2, minPendingMb: 1, logFlushIntervalMb: 1 });
  makeStartParam({ maxPendingMb: 16384, minPendingMb: 16383, logFlushIntervalMb: 8192 });
  makeStartParam({ maxLogpackKb: 0, logFlushIntervalMs: 0, logFlushIntervalMb: 0 });
  makeStartParam({ name: 'a'.repeat(25) });
  assert.throws(() => makeStartParam({ name: 'a'.repeat(26) }), typed(InvalidDeviceNameError));
  assert.throws(() => makeStartParam({ name: '../x' }), typed(InvalidDeviceNameError));
});

test('device names', () => {
  for (const ok of ['0', 'vol0', 'wdev-a_b.c', 'A'.repeat(25)]) assert.is(validateWdevName(ok), ok);
  for (const bad of ['', '.', '..', 'a/b', 'a!b', 'a b', 'x\n', 'é', 'a\0', 'A'.repeat(26)]) {
    assert.throws(() => validateWdevName(bad), typed(InvalidDeviceNameError), JSON.stringify(bad));
  }
});

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const i32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const ctlDataArb: fc.Arbitrary<WalbCtlData> = fc.record({
  wmajor: u32, wminor: u32, lmajor: u32, lminor: u32, dmajor: u32, dminor: u32, bufSize: u64, buf: u64, kbuf: u64,
});
const ctlArb: fc.Arbitrary<WalbCtl> = fc.record({
  command: i32, valInt: i32, valU64: u64, valU32: u32, error: i32, u2k: ctlDataArb, k2u: ctlDataArb,
});
const nameArb = fc.stringMatching(/^[\x21-\x7e]{0,31}$/);

test('walb_ctl: byte positions of every field', () => {
  const ctl = makeWalbCtl(WalbCtlCommand.START_DEV, {
    valInt: -2, valU64: 0x1122334455667788n, valU32: 0xdeadbeef, error: -8,
    u2k: { wmajor: 1, wminor: WALB_DYNAMIC_MINOR, lmajor: 3, lminor: 4, dmajor: 5, dminor: 6, bufSize: 64n, buf: 0x7fff00001000n },
    k2u: { bufSize: 64n, buf: 0x7fff00002000n, kbuf: 9n },
  });
  const b = Buffer.from(encodeWalbCtl(ctl));
  assert.is(b.length, 120);
  assert.is(b.readInt32LE(0), 1);
  assert.is(b.readInt32LE(4), -2);
  assert.is(b.readBigUInt64LE(8), 0x1122334455667788n);
  assert.is(b.readUInt32LE(16), 0xdeadbeef);
  assert.is(b.readInt32LE(20), -8);
  assert.equal([24, 28, 32, 36, 40, 44].map((o) => b.readUInt32LE(o)), [1, 0xffffffff, 3, 4, 5, 6]);
  assert.is(b.readBigUInt64LE(48), 64n);
  assert.is(b.readBigUInt64LE(56), 0x7fff00001000n);
  assert.is(b.readBigUInt64LE(64), 0n);
  assert.equal([72, 76, 80, 84, 88, 92].map((o) => b.readUInt32LE(o)), [0, 0, 0, 0, 0, 0]);
  assert.is(b.readBigUInt64LE(96), 64n);
  assert.is(b.readBigUInt64LE(104), 0x7fff00002000n);
  assert.is(b.readBigUInt64LE(112), 9n);
  assert.equal(plain(decodeWalbCtl(b)), plain(ctl));
  assert.equal(plain(decodeWalbCtlData(b, 24)), plain(ctl.u2k));
  assert.equal(plain(decodeWalbCtlData(encodeWalbCtlData(ctl.k2u))), plain(ctl.k2u));
});

test('property: walb_ctl and walb_start_param round trip, also at an offset', () => {
  fc.assert(fc.property(ctlArb, fc.integer({ min: 0, max: 16 }), (ctl, off) => {
    const buf = Buffer.alloc(off + 120 + 3, 0xaa);
    encodeWalbCtl(ctl, buf, off);
    assert.ok(buf.subarray(0, off).every((x) => x === 0xaa));
    assert.ok(buf.subarray(off + 120).every((x) => x === 0xaa));
    assert.equal(plain(decodeWalbCtl(buf, off)), plain(ctl));
  }));
  const spArb: fc.Arbitrary<StartParam> = fc.record({
    name: nameArb, maxPendingMb: u32, minPendingMb: u32, queueStopTimeoutMs: u32, maxLogpackKb: u32,
    logFlushIntervalMs: u32, logFlushIntervalMb: u32, nPackBulk: u32, nIoBulk: u32,
  });
  fc.assert(fc.property(spArb, (p) => {
    assert.equal(decodeStartParam(encodeStartParam(p)), { ...p });
  }));
});

test('encode rejects values that do not fit, decode rejects short buffers', () => {
  const base = makeWalbCtl(WalbCtlCommand.RESIZE);
  const badCtl: Array<Partial<WalbCtl>> = [
    { command: 2 ** 31 }, { valInt: -(2 ** 31) - 1 }, { valU64: -1n }, { valU64: 1n << 64n }, { valU32: 2 ** 32 },
    { error: 0.5 }, { u2k: { ...base.u2k, wminor: -1 } }, { k2u: { ...base.k2u, buf: 1n << 64n } },
    { valU64: 5 as unknown as bigint },
  ];
  for (const o of badCtl) assert.throws(() => encodeWalbCtl({ ...base, ...o }), typed(ValueOutOfRangeError), JSON.stringify(Object.keys(o)));
  assert.throws(() => encodeStartParam({ ...DEFAULT_START_PARAM, name: 'x'.repeat(32) }), typed(ValueOutOfRangeError));
  assert.throws(() => encodeStartParam({ ...DEFAULT_START_PARAM, name: 'a\0b' }), typed(ValueOutOfRangeError));
  encodeStartParam({ ...DEFAULT_START_PARAM, name: 'x'.repeat(31) });
  assert.throws(() => decodeWalbCtl(Buffer.alloc(119)), typed(TruncatedError));
  assert.throws(() => decodeWalbCtl(Buffer.alloc(120), 1), typed(TruncatedError));
  assert.throws(() => decodeStartParam(Buffer.alloc(63)), typed(TruncatedError));
  assert.throws(() => decodeWalbCtlData(Buffer.alloc(47)), typed(TruncatedError));
  assert.throws(() => encodeWalbCtl(base, Buffer.alloc(100)), typed(TruncatedError));
  assert.throws(() => decodeWalbCtl(Buffer.alloc(200), -1), typed(ValueOutOfRangeError));
  const noNul = Buffer.alloc(64, 0x41);
  assert.throws(() => decodeStartParam(noNul), typed(ValueOutOfRangeError));
  assert.throws(() => makeWalbCtl(99), typed(ValueOutOfRangeError));
});

test('LIST_DEV: disk data list and minor range', () => {
  const list = [{ name: 'vol0', major: 252, minor: 0 }, { name: 'x'.repeat(25), major: 252, minor: 2 }];
  const buf = Buffer.alloc(2 * 40);
  list.forEach((d, i) => encodeWalbDiskData(d, buf, i * 40));
  assert.is(buf.readUInt32LE(32), 252);
  assert.is(buf.readUInt32LE(40 + 36), 2);
  assert.equal(decodeWalbDiskDataList(buf, 2), list);
  assert.equal(decodeWalbDiskDataList(buf, 0), []);
  assert.throws(() => decodeWalbDiskDataList(buf, 3), typed(TruncatedError));
  assert.throws(() => decodeWalbDiskDataList(buf, -1), typed(ValueOutOfRangeError));
  const r = Buffer.from(encodeMinorRange(0, 64));
  assert.equal([r.readUInt32LE(0), r.readUInt32LE(4)], [0, 64]);
  assert.throws(() => encodeMinorRange(5, 4), typed(ValueOutOfRangeError));
  assert.throws(() => encodeMinorRange(0, 2 ** 32), typed(ValueOutOfRangeError));
});

test('property: decoding arbitrary bytes never crashes', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 200 }), (bytes, off) => {
    for (const f of [() => decodeWalbCtl(bytes, off), () => decodeStartParam(bytes, off), () => decodeWalbCtlData(bytes, off), () => decodeWalbDiskDataList(bytes, 2, off)]) {
      try { f(); } catch (e) { if (!(e instanceof WalbAbiError)) throw e; }
    }
  }), { numRuns: 2000 });
});

test.run();
