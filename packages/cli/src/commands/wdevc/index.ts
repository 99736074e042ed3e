/**
 * The commands of `wdevc`. Commands that drive a kernel walb device (ioctls through the native
 * addon) join this list as they are written, each in its own file here.
 *
 * @module
 */
import { formatLdevCommand } from './format-ldev.ts';
import { kernelCommands } from './kernel.ts';
import { serveCommand } from './serve.ts';
import { createUdevCommand } from './create-udev.ts';

/** Every `wdevc` command. */
export const wdevcCommands = [formatLdevCommand, createUdevCommand, serveCommand, ...kernelCommands] as const;
