/**
 * Shared start-up of the bins: a closed stdout pipe (`walb ... | head`) ends the program quietly,
 * and the exit code comes from the run.
 *
 * @module
 */
import type { CliIo } from '../util/io.ts';

/** Run `run` on the process's arguments and set the exit code. */
export async function main(run: (argv: readonly string[], io?: Partial<CliIo>) => Promise<number>): Promise<void> {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  process.exitCode = await run(process.argv.slice(2));
}
