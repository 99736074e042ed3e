/**
 * A command group (`walb wlog …`, `walb wdiff …`): a name whose subcommands do the work.
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../app.ts';

/** The yargs command of group `name` over `commands`; running it without a subcommand is a usage error. */
export function commandGroup(name: string, describe: string, commands: readonly CommandModule<GlobalArgs, any>[]): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    // No `<command>` positional: it would take an unknown subcommand as its value, and the error
    // would then be a missing command instead of an unknown one.
    command: name,
    describe,
    builder: (y: Argv<GlobalArgs>) => {
      y = y.usage(`$0 ${name} <command>\n\n${describe}`);
      for (const c of commands) y = y.command(c);
      return y.demandCommand(1, `Missing ${name} command.`);
    },
    handler: () => {},
  };
}
