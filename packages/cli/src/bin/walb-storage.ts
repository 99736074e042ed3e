#!/usr/bin/env node
/**
 * The `walb-storage` daemon. See `walb-storage --help`.
 *
 * @module
 */
import { runDaemon } from '../commands/daemon/run-daemon.ts';
import { main } from './main.ts';

await main((argv) => runDaemon('storage', argv), { eager: true });
