/**
 * `walb demo`: run the end-to-end demo (see `pnpm demo`).
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../../app.ts';
import { ioOf, writeTo } from '../../util/io.ts';
import { toJson } from '../../util/json.ts';
import { parseSize, parseUint } from '../../util/parse.ts';

/** Arguments of `walb demo`. */
export interface DemoArgs extends GlobalArgs {
  mode: 'auto' | 'filesystem' | 'block';
  size: string;
  'log-size': string;
  keep: boolean;
  seed: number;
}

/** Thrown so the exit code says the demo failed (the narration already said why). */
class DemoFailed extends Error {}

/** `walb demo`. */
export const demoCommand: CommandModule<GlobalArgs, DemoArgs> = {
  command: 'demo',
  describe: 'Run the end-to-end demo: a userspace walb device, the three daemons, full backup, snapshots, restores checked byte for byte',
  builder: (y: Argv<GlobalArgs>) => y
    .option('mode', { choices: ['auto', 'filesystem', 'block'] as const, default: 'auto' as const, describe: 'ext4 through nbdfuse + loop (root), block writes through an NBD client, or whichever works' })
    .option('size', { type: 'string', default: '256M', describe: 'Data device size' })
    .option('log-size', { type: 'string', default: '128M', describe: 'Log device size' })
    .option('keep', { type: 'boolean', default: false, describe: 'Keep the work folder (device, daemons\' state and logs)' })
    .option('seed', { type: 'string', default: '1', describe: 'Seed of the data written (0 to 4294967295)', coerce: (v: string) => parseUint(v, '--seed', 0xffff_ffff) }) as Argv<DemoArgs>,
  handler: async (a) => {
    const io = ioOf(a);
    // Loaded here: the demo brings the whole backup system, which no other `walb` command needs.
    const { runDemo } = await import('../../demo/run-demo.ts');
    const r = await runDemo(io, { mode: a.mode, sizeBytes: parseSize(a.size, '--size'), logBytes: parseSize(a['log-size'], '--log-size'), keep: a.keep, seed: a.seed }, a.json);
    if (a.json) await writeTo(io.stdout, toJson({ type: 'demo', ...r }) + '\n');
    if (!r.ok) throw new DemoFailed(`the demo failed: ${r.checks.filter((c) => !c.ok).map((c) => c.name).join(', ')}`);
  },
};
