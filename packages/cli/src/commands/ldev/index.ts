/**
 * `walb ldev <command>`: log device tools that need no kernel module.
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../../app.ts';
import { ldevInfoCommand } from './info.ts';

/** The subcommands of `walb ldev`. */
export const ldevCommands = [ldevInfoCommand] as const;

/** `walb ldev`. */
export const ldevCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'ldev <command>',
  describe: 'Log devices (ring buffers of logpacks): inspect the super sector',
  builder: (y: Argv<GlobalArgs>) => {
    for (const c of ldevCommands) y = y.command(c as CommandModule<GlobalArgs, any>);
    return y.demandCommand(1, 'Missing ldev command.');
  },
  handler: () => {},
};
