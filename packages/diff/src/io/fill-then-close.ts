/**
 * The one way a diff is written to a writer it was given: fill it, close it, and abandon it on a
 * failure.
 *
 * @module
 */
import type { IndexedDiffWriter } from './indexed-writer.ts';
import type { SortedDiffWriter, WriteSummary } from './sorted-writer.ts';

/**
 * Run `fill`, then close `w`; on a failure abandon it (a file output keeps what it had: a closed
 * writer would leave a complete-looking diff of part of the input) and rethrow.
 */
export async function fillThenClose(w: SortedDiffWriter | IndexedDiffWriter, fill: () => Promise<void>): Promise<WriteSummary> {
  try {
    await fill();
    return await w.close();
  } catch (e) {
    await w.abort();
    throw e;
  }
}
