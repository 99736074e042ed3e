#!/usr/bin/env node
/**
 * The `walb` command: wlog file and log-device tools. See `walb --help`.
 *
 * @module
 */
import { runWalb } from '../programs.ts';
import { main } from './main.ts';

await main(runWalb);
