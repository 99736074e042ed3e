// wdevc's kernel-device commands without the walb module: each fails with exit 1 and a message
// naming the missing device node (a typed JSON error under --json); every one has --help. Run in
// process through runWdevc (the same app the bin runs).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { runWdevc } from '../src/index.ts';

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough(), stderr = new PassThrough();
  let out = '', err = '';
  stdout.on('data', (d) => { out += d; });
  stderr.on('data', (d) => { err += d; });
  const code = await runWdevc(argv, { stdout: stdout as never, stderr: stderr as never });
  return { code, out, err };
}

const K = suite('wdevc kernel commands');
const WDEV = '/dev/walb/nonexistent-vol';
const cases: string[][] = [
  ['get-version'], ['list'], ['create-wdev', '/dev/null', '/dev/null'], ['delete-wdev', WDEV],
  ['set-checkpoint-interval', WDEV, '1000'], ['get-checkpoint-interval', WDEV], ['force-checkpoint', WDEV],
  ['set-oldest-lsid', WDEV, '100'], ['get-oldest-lsid', WDEV], ['get-written-lsid', WDEV], ['get-permanent-lsid', WDEV],
  ['get-completed-lsid', WDEV], ['get-log-usage', WDEV], ['get-log-capacity', WDEV], ['is-flush-capable', WDEV],
  ['resize', WDEV], ['is-log-overflow', WDEV], ['reset-wal', WDEV], ['clear-wal', WDEV], ['freeze', WDEV, '5'],
  ['melt', WDEV], ['is-frozen', WDEV], ['is-flozen', WDEV],
];
(existsSync('/dev/walb/control') ? K.skip : K)('without the module: exit 1, the missing node named, typed JSON error', async () => {
  for (const argv of cases) {
    const r = await run(argv);
    assert.is(r.code, 1, argv.join(' '));
    assert.match(r.err, /walb kernel module is not loaded/, argv.join(' '));
    // Control commands (delete-wdev too) need /dev/walb/control; device commands their device.
    const onDevice = argv[1]?.startsWith('/dev/walb/') && argv[0] !== 'delete-wdev';
    assert.ok(r.err.includes(onDevice ? argv[1] : '/dev/walb/control'), `${argv.join(' ')}: ${r.err}`);
    const j = await run(['--json', ...argv]);
    assert.is(JSON.parse(j.err.trim()).code, 'ERR_WALB_NO_MODULE', argv.join(' '));
  }
});
K('every command has --help; bad arguments are usage errors', async () => {
  for (const argv of cases) {
    const r = await run([argv[0], '--help']);
    assert.is(r.code, 0, argv[0]);
    assert.ok(r.out.includes(argv[0]), argv[0]);
  }
  assert.is((await run(['set-oldest-lsid', WDEV, 'minus-one'])).code, 2);
  assert.is((await run(['get-oldest-lsid'])).code, 2);
});
K.run();
