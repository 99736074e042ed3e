#!/usr/bin/env node
/**
 * The `walb-proxy` daemon. See `walb-proxy --help`.
 *
 * @module
 */
import { runDaemon } from '../commands/daemon/run-daemon.ts';
import { main } from './main.ts';

await main((argv) => runDaemon('proxy', argv), { eager: true });
