/**
 * Shared start-up of the bins: a closed stdout pipe (`walb ... | head`) ends the program quietly,
 * and the exit code comes from the run.
 *
 * @module
 */
import type { CliIo } from '../util/io.ts';
import { useCommandPreparation } from '../app.ts';

/**
 * Use the native addon's checksum (about twice the TypeScript one) and snappy encoder (about
 * twice the default's on incompressible records, and no buffer for them) when the addon is there,
 * its buffer alignment for read buffers (the kernel copies into aligned memory faster) and for
 * direct-IO outputs, its hole finder (images are read around the holes of sparse files), and its
 * batch store (a sorted conversion's second pass reads, compresses and sums records on the thread
 * pool) and its log walk (a conversion's reads, sums and compression of the log's IOs on the thread
 * pool) with its sweep of what later IOs of a log overwrite, and its index of indexed diffs (kept
 * and encoded outside the JavaScript heap, checked against diff's own when set), and its hole
 * punch (apply's discards in punch mode given back in one call, not a process each); without it
 * everything still works (outputs buffered, holes read, buffers unaligned, discards punched by
 * `fallocate` or `blkdiscard`).
 * `WALB_NO_NATIVE=1` keeps the defaults. Done before a command runs, not for `--help` or
 * `--version`; the diff engine's part not for the `wlog` and `ldev` commands, which do not use it
 * (loading the engine, and checking the addon's encoder and index against its own, took about
 * 35 ms here).
 */
async function accelerate(command: readonly string[] = []): Promise<void> {
  if (process.env.WALB_NO_NATIVE) return;
  try {
    const [{ loadNative }, { useBufferAlignment, useChecksumImplementation }] = await Promise.all([import('@walbjs/native-walb'), import('@walbjs/log-format')]);
    const native = loadNative();
    useChecksumImplementation(native.checksum);
    useBufferAlignment(native.alignOffset);
    if (command[0] === 'wlog' || command[0] === 'ldev') return;
    const {
      useBatchStore, useDirectWrites, useCopyPieces, useExtentSums, useHoleSeek, useLiveParts, useLogChunkScan, useNativeIndex, useNativeMerge, usePrefetch,
      usePunchHoles, useSnappyEncoder, useWritebackStart,
    } = await import('@walbjs/diff');
    useSnappyEncoder(native.snappyCompress, 'walbjs native');
    useDirectWrites(native.alignOffset);
    useHoleSeek(native.seekData);
    await useBatchStore(native.storeBatch);
    useLogChunkScan(native.scanLogChunk, native.scanLink);
    useLiveParts(native.liveParts);
    useExtentSums(native.sumExtents);
    useCopyPieces(native.copyPieces);
    useWritebackStart(native.startWriteback);
    usePrefetch(native.prefetchRanges);
    usePunchHoles(native.punchHoles);
    useNativeIndex(native);
    useNativeMerge(native);
  } catch {
    // No addon for this platform or not built: the TypeScript checksum serves.
  }
}

/**
 * Run `run` on the process's arguments and set the exit code. The native addon is set up before
 * the first command runs (see `useCommandPreparation`), or at once with `eager` (the daemons,
 * whose arguments are not parsed by the shared application).
 */
export async function main(run: (argv: readonly string[], io?: Partial<CliIo>) => Promise<number>, opts: { eager?: boolean } = {}): Promise<void> {
  if (opts.eager) await accelerate();
  else useCommandPreparation(accelerate);
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  process.exitCode = await run(process.argv.slice(2));
}
