/**
 * `wdevc create-udev DIR --size SIZE --log-size SIZE`: make a userspace walb device folder (data
 * device, formatted log device, `device.json`) that `walb-storage` can host (`walbc init-vol VOL DIR`)
 * or `wdevc serve` can run.
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../../app.ts';
import { ioOf, writeTo } from '../../util/io.ts';
import { toJson } from '../../util/json.ts';
import { UsageError } from '../../util/errors.ts';
import { parseHostPort, parseSize } from '../../util/parse.ts';

/** Arguments of `wdevc create-udev`. */
export interface CreateUdevArgs extends GlobalArgs {
  dir: string;
  size: number;
  'log-size': number;
  pbs: number;
  name?: string;
  unix?: string;
  tcp?: string;
}

// The limits of createUserspaceDevice, checked here so that they are usage errors naming the option.
function dataSize(v: string): number {
  const n = parseSize(v, '--size');
  if (n === 0 || n % 4096 !== 0) throw new UsageError(`invalid --size ${JSON.stringify(v)}: the data device size must be a positive multiple of 4 KiB`);
  return n;
}

function logSize(v: string): number {
  const n = parseSize(v, '--log-size');
  if (n < 1 << 20) throw new UsageError(`invalid --log-size ${JSON.stringify(v)}: the log device needs at least 1 MiB`);
  return n;
}

/** `wdevc create-udev`. */
export const createUdevCommand: CommandModule<GlobalArgs, CreateUdevArgs> = {
  command: 'create-udev <dir>',
  describe: 'Create a userspace walb device folder: data device, formatted log device, device.json',
  builder: (y: Argv<GlobalArgs>) => y
    .positional('dir', { type: 'string', demandOption: true, describe: 'Folder to create' })
    .option('size', { type: 'string', demandOption: true, describe: 'Data device size (bytes, K/M/G/T suffixes; a multiple of 4K)', coerce: dataSize })
    .option('log-size', { type: 'string', demandOption: true, describe: 'Log device size (at least 1M)', coerce: logSize })
    .option('pbs', { type: 'number', choices: [512, 4096], default: 4096, describe: 'Physical block size' })
    .option('name', { alias: 'n', type: 'string', describe: 'Device name in the super sector' })
    .option('unix', { type: 'string', describe: 'NBD unix socket (default DIR/nbd.sock)' })
    .option('tcp', { type: 'string', describe: 'NBD on HOST:PORT instead', coerce: (v: string) => parseHostPort(v, '--tcp') })
    .example('$0 create-udev /var/lib/walb/dev0 --size 1G --log-size 256M', '') as Argv<CreateUdevArgs>,
  handler: async (a) => {
    // Loaded here: the backup system is needed by this command alone of `wdevc`'s.
    const { createUserspaceDevice } = await import('@walbjs/core');
    const spec = await createUserspaceDevice(a.dir, {
      sizeBytes: BigInt(a.size), logBytes: BigInt(a['log-size']), pbs: a.pbs, name: a.name, unix: a.unix, tcp: a.tcp,
    });
    await writeTo(ioOf(a).stdout, a.json ? toJson({ type: 'udev', dir: a.dir, ...spec }) + '\n' : `created ${a.dir}\n`);
  },
};
