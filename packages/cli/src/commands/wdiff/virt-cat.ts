/**
 * `walb wdiff virt-cat BASE [WDIFF...] -o OUT`: write the virtual full image, a base image with
 * wdiffs laid over it, without changing the base (as `virt-full-cat`).
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../../app.ts';
import { ioOf } from '../../util/io.ts';
import { openOutput, writeThrough } from '../../util/output.ts';
import { startProgress } from '../../util/progress.ts';
import { LB, checkOutputNotInput, loadSdk, report, requireFiles } from './common.ts';

/** Arguments of `wdiff virt-cat`. */
export interface WdiffVirtCatArgs extends GlobalArgs {
  /** Base image path. */
  base: string;
  /** wdiff paths, oldest first. */
  wdiffs: string[];
  /** Output path or `-`. */
  out: string;
  /** Check every wdiff completely before writing anything. */
  verify: boolean;
  /** Print a summary on stderr. */
  verbose: boolean;
}

/** `walb wdiff virt-cat`. */
export const wdiffVirtCatCommand: CommandModule<GlobalArgs, WdiffVirtCatArgs> = {
  command: 'virt-cat <base> [wdiffs..]',
  describe: 'Write a base image with wdiffs laid over it (as virt-full-cat)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('base', { type: 'string', demandOption: true, describe: 'Base image (file or block device)' })
      .positional('wdiffs', { type: 'string', array: true, default: [], describe: 'wdiff files, oldest first' })
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'Output image file, or - for stdout' })
      .option('verify', { type: 'boolean', default: true, describe: 'Read every wdiff through first, so a bad one stops the command before anything is written (--no-verify streams at once)' })
      .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'Print a summary on stderr' })
      .example('$0 wdiff virt-cat base.img d0.wdiff d1.wdiff -o full.img', 'the image as of d1')
      .example('$0 wdiff virt-cat base.img d0.wdiff -o - | sha256sum', 'to stdout')
      .epilogue('ALLZERO and DISCARD records read as zeros; blocks no wdiff covers come from the base. The '
        + 'output has the size of the base; a wdiff that writes beyond it is an error (ERR_WDIFF_RANGE). With --json: {type:"wdiff-virt-cat", base, wdiffs, output, bytes} '
        + '(on stderr when -o -).'),
  handler: async (args) => {
    const io = ioOf(args);
    const d = await loadSdk();
    await requireFiles([args.base, ...args.wdiffs], 'the base or a wdiff', 'they are read side by side, an indexed wdiff at random');
    await checkOutputNotInput(args.out, [args.base, ...args.wdiffs]);
    const v = await d.VirtualFullImage.open(args.base, args.wdiffs);
    const out = openOutput(args.out, io);
    const progress = await startProgress(io, { label: args.verify ? 'verifying' : 'writing', total: v.sizeBytes, json: args.json });
    try {
      await writeThrough(out, progress, async () => {
        if (args.verify) {
          // No size limit: what lies beyond the base's end is left out of the image, not an error.
          // With the image's size: a wdiff of a larger device than the base stops here, before a
          // byte is written, as apply does.
          await d.verifyWdiffs(args.wdiffs, Math.ceil(v.sizeBytes / LB), (addr) => progress.update(addr * LB));
          progress.phase('writing');
        }
        // A file write is done with its chunk before the next is asked for; stdout may still hold it.
        for await (const chunk of v.stream(undefined, { reuseBuffers: !out.isStdout })) {
          await out.sink(chunk);
          progress.update(out.bytes);
        }
      });
    } finally {
      await v.close();
    }
    await report(io, { json: args.json, verbose: args.verbose, toStdout: out.isStdout }, {
      type: 'wdiff-virt-cat', base: args.base, wdiffs: args.wdiffs, output: args.out, bytes: out.bytes,
    }, `${args.out}: ${out.bytes} bytes, ${args.base} with ${args.wdiffs.length} wdiff${args.wdiffs.length === 1 ? '' : 's'}`);
  },
};
