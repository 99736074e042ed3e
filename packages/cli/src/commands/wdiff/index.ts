/**
 * `walb wdiff <command>`: wdiff file tools.
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../../app.ts';
import { wdiffApplyCommand } from './apply.ts';
import { wdiffFromImageCommand } from './from-image.ts';
import { wdiffFromWlogCommand } from './from-wlog.ts';
import { wdiffMergeCommand } from './merge.ts';
import { wdiffShowCommand } from './show.ts';
import { wdiffVirtCatCommand } from './virt-cat.ts';

/** The subcommands of `walb wdiff`. */
export const wdiffCommands = [
  wdiffShowCommand, wdiffFromWlogCommand, wdiffMergeCommand, wdiffApplyCommand, wdiffVirtCatCommand, wdiffFromImageCommand,
] as const;

/** `walb wdiff`. */
export const wdiffCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'wdiff <command>',
  describe: 'wdiff files: show, convert from wlogs or images, merge, apply, read as a virtual full image',
  builder: (y: Argv<GlobalArgs>) => {
    for (const c of wdiffCommands) y = y.command(c as CommandModule<GlobalArgs, any>);
    return y.demandCommand(1, 'Missing wdiff command.');
  },
  handler: () => {},
};
