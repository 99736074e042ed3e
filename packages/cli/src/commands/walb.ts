/**
 * The commands of `walb`.
 *
 * @module
 */
import { ldevCommand } from './ldev/index.ts';
import { wdiffCommand } from './wdiff/index.ts';
import { wlogCommand } from './wlog/index.ts';
import { demoCommand } from './demo/demo.ts';

/** Every top-level `walb` command. */
export const walbCommands = [wlogCommand, wdiffCommand, ldevCommand, demoCommand] as const;
