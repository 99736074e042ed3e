#!/usr/bin/env node
/**
 * The `walb-archive` daemon. See `walb-archive --help`.
 *
 * @module
 */
import { runDaemon } from '../commands/daemon/run-daemon.ts';
import { main } from './main.ts';

await main((argv) => runDaemon('archive', argv), { eager: true });
