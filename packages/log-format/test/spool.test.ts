import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spoolStream } from '../src/index.ts';

const TMP = mkdtempSync(join(tmpdir(), 'walbjs-spool-test-'));
test.after(() => rmSync(TMP, { recursive: true, force: true }));

test('a stream is copied whole into a private folder, with its progress, and removed on request', async () => {
  const parts = [Buffer.alloc(1000, 1), Buffer.alloc(70000, 2), Buffer.alloc(5, 3)];
  const seen: number[] = [];
  let folderSeen: string | undefined;
  const s = await spoolStream(Readable.from(parts), {
    dir: TMP, prefix: 'walbjs-test-', fileName: 'in.bin',
    onFolder: (f) => { folderSeen = f; assert.ok(existsSync(f)); assert.equal(seen, []); },
    onBytes: (n) => seen.push(n),
  });
  assert.is(s.folder, folderSeen);
  assert.is(dirname(s.path), s.folder);
  assert.is(basename(s.path), 'in.bin');
  assert.ok(basename(s.folder).startsWith('walbjs-test-'));
  assert.ok(readFileSync(s.path).equals(Buffer.concat(parts)));
  assert.is(statSync(s.path).mode & 0o777, 0o600);
  assert.is(statSync(s.folder).mode & 0o077, 0);
  assert.equal(seen, [1000, 71000, 71005]);
  await s.remove();
  assert.ok(!existsSync(s.folder));
});

test('a stream that fails midway leaves no folder behind and its error goes to the caller', async () => {
  async function* failing() {
    yield Buffer.alloc(4096, 7);
    throw new Error('the sender went away');
  }
  let folder = '';
  try {
    await spoolStream(failing(), { dir: TMP, prefix: 'walbjs-fail-', onFolder: (f) => { folder = f; } });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, 'the sender went away');
  }
  assert.ok(folder !== '' && !existsSync(folder));
  assert.equal(readdirSync(TMP).filter((n) => n.startsWith('walbjs-fail-')), []);
});

test.run();
