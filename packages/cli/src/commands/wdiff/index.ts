/**
 * `walb wdiff <command>`: wdiff file tools.
 *
 * @module
 */
import { commandGroup } from '../group.ts';
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
export const wdiffCommand = commandGroup('wdiff', 'wdiff files: show, convert from wlogs or images, merge, apply, read as a virtual full image', wdiffCommands);
