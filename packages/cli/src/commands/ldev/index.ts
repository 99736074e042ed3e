/**
 * `walb ldev <command>`: log device tools that need no kernel module.
 *
 * @module
 */
import { commandGroup } from '../group.ts';
import { ldevInfoCommand } from './info.ts';

/** The subcommands of `walb ldev`. */
export const ldevCommands = [ldevInfoCommand] as const;

/** `walb ldev`. */
export const ldevCommand = commandGroup('ldev', 'Log devices (ring buffers of logpacks): inspect the super sector', ldevCommands);
