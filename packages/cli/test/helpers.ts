// Shared set-up of the CLI tests.
import { truncateSync, writeFileSync } from 'node:fs';

/** An all-zero sparse file of `bytes` at `path` (a log or data device image). */
export function sparseFile(path: string, bytes: number): string {
  writeFileSync(path, '');
  truncateSync(path, bytes);
  return path;
}
