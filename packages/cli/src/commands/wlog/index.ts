/**
 * `walb wlog <command>`: wlog file tools.
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../../app.ts';
import { wlogCatCommand } from './cat.ts';
import { wlogGenCommand } from './gen.ts';
import { wlogRestoreCommand } from './restore.ts';
import { wlogShowCommand } from './show.ts';
import { wlogVerifyCommand } from './verify.ts';

/** The subcommands of `walb wlog`. */
export const wlogCommands = [wlogShowCommand, wlogVerifyCommand, wlogGenCommand, wlogCatCommand, wlogRestoreCommand] as const;

/** `walb wlog`. */
export const wlogCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'wlog <command>',
  describe: 'wlog files: show, verify, generate, extract from and restore into log devices',
  builder: (y: Argv<GlobalArgs>) => {
    for (const c of wlogCommands) y = y.command(c as CommandModule<GlobalArgs, any>);
    return y.demandCommand(1, 'Missing wlog command.');
  },
  handler: () => {},
};
