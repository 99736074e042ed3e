/**
 * `walb wdiff apply [--discard ignore|zero|punch] [--fsync-interval SIZE] WDIFF... IMAGE`: apply
 * wdiffs to an image file or block device (as `wdiff-redo`).
 *
 * @module
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Argv, CommandModule } from 'yargs';
import type { ApplyOptions, ApplySummary, DiscardMode } from '@walbjs/diff';
import { probeDevice, refuseDirectoryStdin, spoolStream } from '@walbjs/log-format';
import type { GlobalArgs } from '../../app.ts';
import { UsageError } from '../../util/errors.ts';
import { armInterrupt } from '../../util/interrupt.ts';
import { ioOf, type CliIo } from '../../util/io.ts';
import { toJson } from '../../util/json.ts';
import { parseSize } from '../../util/parse.ts';
import { startProgress } from '../../util/progress.ts';
import { LB, checkOutputNotInput, loadSdk, report, requireFiles, type DiffSdk } from './common.ts';

/** What `--discard` accepts. */
export const DISCARD_MODES: readonly DiscardMode[] = ['ignore', 'zero', 'punch'];

/** Arguments of `wdiff apply` (the handler also sees them camel-cased). */
export interface WdiffApplyArgs extends GlobalArgs {
  /** The wdiffs, oldest first, then the image. */
  files: string[];
  /** What to do with DISCARD records: one of {@link DISCARD_MODES} (yargs checks the choice). */
  discard: string;
  /** Bytes between fsyncs (0: only at the end). */
  'fsync-interval'?: number;
  /** Write zeros into the holes of a sparse image too (allocating them), as walb-tools does. */
  'fill-holes': boolean;
  /** Print a summary on stderr. */
  verbose: boolean;
  /** Folder of the copy of a wdiff read from stdin (default: the system's temporary folder). */
  'tmp-dir'?: string;
}

const APPLY_DESCRIBE = 'Apply wdiffs (oldest first) to the image given last (as wdiff-redo)';

/** `walb wdiff apply`. */
export const wdiffApplyCommand: CommandModule<GlobalArgs, WdiffApplyArgs> = {
  command: 'apply <files..>',
  describe: APPLY_DESCRIBE,
  builder: (y: Argv<GlobalArgs>) =>
    y
      // A usage of its own replaces the one yargs makes, description included: it is repeated here.
      .usage(`$0 wdiff apply [options] WDIFF... IMAGE\n\n${APPLY_DESCRIBE}`)
      .positional('files', { type: 'string', array: true, demandOption: true, describe: 'WDIFF... IMAGE: the wdiffs, oldest first, then the image file or block device' })
      .option('discard', { type: 'string', default: 'ignore', choices: [...DISCARD_MODES], describe: 'DISCARD records: leave the old data, write zeros, or punch holes (discards on a block device)' })
      .option('fsync-interval', { type: 'string', describe: 'fsync after every this many bytes written (suffixes k, m, g; default 1G; 0: only at the end)', coerce: (v: string) => parseSize(v, 'fsync interval') })
      .option('fill-holes', { type: 'boolean', default: false, describe: 'Write zeros (ALLZERO records, discards as zeros) into the holes of a sparse image file too, allocating them, as wdiff-redo does; by default a hole already reads as zeros and is left as it is' })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'Print a summary on stderr' })
      .option('tmp-dir', { type: 'string', describe: 'Folder for the copy of a wdiff given as - (stdin); default: the system\'s temporary folder' })
      .example('$0 wdiff apply d0.wdiff d1.wdiff disk.img', 'two diffs, merged, onto disk.img')
      .example('cat d.wdiff | $0 wdiff apply - disk.img', 'a wdiff from stdin (copied to a temporary file first)')
      .example('$0 wdiff apply --discard zero a.wdiff /dev/vg/vol', 'discards written as zeros')
      .epilogue('Every wdiff is read through and checked first (checksums, decompression, addresses within the '
        + 'image), so a bad one leaves the image unchanged; a wdiff given as - is therefore first copied from stdin '
        + 'into a temporary file (removed at the end). With --json: {type:"wdiff-apply", image, wdiffs, '
        + 'discard, ios, bytesWritten, discardLb, zeroBytesInHoles, syncs}.'),
  handler: async (args) => {
    const io = ioOf(args);
    if (args.files.length < 2) throw new UsageError('apply needs at least one wdiff and then the image');
    const wdiffs = args.files.slice(0, -1);
    const image = args.files[args.files.length - 1];
    if (wdiffs.filter((w) => w === '-').length > 1) throw new UsageError('- (stdin) can be given once');
    await requireFiles([image], 'the image', 'it is written in place');
    // stdin (-) is the one stream apply takes, copied to a file first (below).
    await requireFiles(wdiffs.filter((w) => w !== '-'), 'a wdiff', 'it is read twice, checked whole before anything is written', 'give it as - (stdin), or save it to a file first');
    await checkOutputNotInput(image, wdiffs, 'the image');
    const d = await loadSdk();
    // The image is looked at before stdin is taken in: a wrong one fails at once.
    const total = Number((await probeDevice(image)).sizeBytes);
    // stdin is read once, and apply reads every wdiff twice (checked whole before it writes): a
    // copy in a temporary file stands for it.
    const spool = wdiffs.includes('-') ? await spoolStdin(io, args['tmp-dir'] ?? tmpdir(), args.json) : undefined;
    try {
      await applyFiles(io, args, d, image, total, spool ? wdiffs.map((w) => (w === '-' ? spool.path : w)) : wdiffs, wdiffs);
    } catch (e) {
      // An error names the copy, which is gone by the time it is read: name stdin instead.
      if (spool && e instanceof Error) {
        e.message = e.message.replaceAll(spool.path, '<stdin>');
        const x = e as { source?: unknown };
        if (x.source === spool.path) x.source = '<stdin>';
      }
      throw e;
    } finally {
      await spool?.remove();
    }
  },
};

/**
 * Apply the wdiff files `paths` to `image` (of `total` bytes), with progress and the report, which
 * names the wdiffs as they were given (`given`: `-` for stdin).
 */
async function applyFiles(io: CliIo, args: WdiffApplyArgs, d: DiffSdk, image: string, total: number, paths: string[], given: string[]): Promise<void> {
  const progress = await startProgress(io, { label: 'verifying', total, json: args.json });
  let phase: 'verify' | 'apply' = 'verify';
  const opts: ApplyOptions = {
    discard: args.discard as DiscardMode,
    keepHoles: !args['fill-holes'],
    onProgress: (addr, p) => {
      if (p !== phase) {
        phase = p;
        progress.phase('applying');
      }
      progress.update(addr * LB);
    },
  };
  const interval = args['fsync-interval'];
  if (interval !== undefined) opts.fsyncIntervalBytes = interval;
  let r: ApplySummary;
  // Interrupted while writing, the image holds part of the diffs: say so, and how to finish.
  // (Applying is idempotent: every record sets bytes, so the same apply again completes it.)
  const disarm = armInterrupt(() => {
    if (phase !== 'apply') return;
    const message = `interrupted: ${image} is partly applied; run the same apply again to complete it`;
    io.stderr.write(args.json ? toJson({ type: 'error', code: 'ERR_INTERRUPTED', message, source: image }) + '\n' : `\nwalb: ${message}\n`);
  });
  try {
    r = await d.applyWdiffs(image, paths, opts);
  } finally {
    disarm();
    progress.stop();
  }
  await report(io, { json: args.json, verbose: args.verbose, toStdout: false }, {
    type: 'wdiff-apply', image, wdiffs: given, discard: args.discard, ios: r.ios, bytesWritten: r.bytesWritten,
    discardLb: r.discardLb, zeroBytesInHoles: r.zeroBytesInHoles, syncs: r.syncs,
  }, `${image}: applied ${given.length} wdiff${given.length > 1 ? 's' : ''}, ${r.ios} IOs, ${r.bytesWritten} bytes written${r.zeroBytesInHoles ? ` (${r.zeroBytesInHoles} bytes of zeros left as holes)` : ''}, ${r.discardLb} LB discarded (${args.discard})`);
}

/**
 * Copy stdin into a file of a new temporary folder in `dir`, with progress; removed by `remove`
 * (also when the command is interrupted).
 */
async function spoolStdin(io: CliIo, dir: string, json: boolean): Promise<{ path: string; remove: () => Promise<void> }> {
  // A directory would be copied as an empty file, and reported as an empty wdiff.
  await refuseDirectoryStdin(io.stdin);
  let disarm = () => {};
  const progress = await startProgress(io, { label: 'receiving', json });
  try {
    const s = await spoolStream(io.stdin, {
      dir, prefix: 'walbjs-apply-', fileName: 'stdin.wdiff',
      onFolder: (folder) => { disarm = armInterrupt(() => rmSync(folder, { recursive: true, force: true })); },
      onBytes: (n) => progress.update(n),
    });
    return { path: s.path, remove: async () => { disarm(); await s.remove(); } };
  } catch (e) {
    disarm();
    throw e;
  } finally {
    progress.stop();
  }
}
