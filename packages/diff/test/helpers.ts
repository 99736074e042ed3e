// Shared test helpers: the reference vectors, temp dirs, image hashing.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const VECTORS = resolve(REPO, '../shared/vectors/walb-tools-1.0.19');
export const vec = (name: string): string => join(VECTORS, name);
export const manifest = JSON.parse(readFileSync(vec('manifest.json'), 'utf8')) as { files: Record<string, string>; cases: Array<Record<string, any>> };
export const casesOf = (kind: string) => manifest.cases.filter((c) => c.kind === kind);

export function tempDir(prefix = 'walbjs-diff-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Write an image of `bytes` filled with `fill` and return its path. */
export function makeImage(dir: string, name: string, bytes: number, fill = 0): string {
  const p = join(dir, name);
  writeFileSync(p, Buffer.alloc(bytes, fill));
  return p;
}

export const sha256File = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');
export const gunzipVec = (name: string): Buffer => gunzipSync(readFileSync(vec(name)));
