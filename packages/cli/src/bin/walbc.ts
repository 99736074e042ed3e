#!/usr/bin/env node
/**
 * The `walbc` controller. See `walbc --help`.
 *
 * @module
 */
import { runWalbc } from '../commands/walbc/index.ts';
import { main } from './main.ts';

await main(runWalbc);
