// Shared test helpers: where the reference vectors are, temp dirs, small corruptions.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

/** The repository root. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** The walb-tools 1.0.19 reference vectors (CI has ../shared beside the repo). */
export const VECTORS = resolve(REPO, '../shared/vectors/walb-tools-1.0.19');

/** Path of one vector file. */
export const vec = (name: string): string => join(VECTORS, name);
/** Bytes of one vector file (gunzipped when its name ends in .gz). */
export const vecBytes = (name: string): Buffer => {
  const b = readFileSync(vec(name));
  return name.endsWith('.gz') ? gunzipSync(b) : b;
};

/** The manifest's wlog cases. */
export interface WlogCase { name: string; wlog: string; deviceBytes: number }
export const manifest = JSON.parse(readFileSync(vec('manifest.json'), 'utf8')) as {
  files: Record<string, string>;
  cases: Array<Record<string, unknown> & { kind: string }>;
};
export const wlogCases = manifest.cases.filter((c) => c.kind === 'wlog') as unknown as WlogCase[];

/** A fresh temporary directory and its remover. */
export function tempDir(prefix = 'walbjs-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
