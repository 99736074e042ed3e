#!/usr/bin/env node
/**
 * The `wdevc` command: walb device control. See `wdevc --help`.
 *
 * @module
 */
import { runWdevc } from '../programs.ts';
import { main } from './main.ts';

await main(runWdevc);
