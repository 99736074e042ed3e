/**
 * Inputs named on the command line: a path, or `-` for stdin.
 *
 * @module
 */
import { stat } from 'node:fs/promises';
import type { ByteSource } from '@walbjs/log-format';
import type { CliIo } from './io.ts';

/** A readable input and its name for messages. */
export interface Input {
  /** What to hand to an SDK reader. */
  src: ByteSource;
  /** `<stdin>` or the path. */
  source: string;
  /** Size in bytes when it is a regular file (for progress). */
  size?: number;
}

/** Resolve `file` (`-` = the run's stdin). */
export async function openInput(file: string, io: CliIo): Promise<Input> {
  if (file === '-') return { src: io.stdin, source: '<stdin>' };
  let size: number | undefined;
  try {
    const st = await stat(file);
    if (st.isFile()) size = st.size;
  } catch {
    // The reader reports a missing file with its own error.
  }
  return { src: file, source: file, size };
}
