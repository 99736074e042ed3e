/**
 * `walb wlog <command>`: wlog file tools.
 *
 * @module
 */
import { commandGroup } from '../group.ts';
import { wlogCatCommand } from './cat.ts';
import { wlogGenCommand } from './gen.ts';
import { wlogRestoreCommand } from './restore.ts';
import { wlogShowCommand } from './show.ts';
import { wlogVerifyCommand } from './verify.ts';

/** The subcommands of `walb wlog`. */
export const wlogCommands = [wlogShowCommand, wlogVerifyCommand, wlogGenCommand, wlogCatCommand, wlogRestoreCommand] as const;

/** `walb wlog`. */
export const wlogCommand = commandGroup('wlog', 'wlog files: show, verify, generate, extract from and restore into log devices', wlogCommands);
