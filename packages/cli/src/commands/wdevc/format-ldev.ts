/**
 * `wdevc format-ldev LDEV DDEV [-n NAME]`: write a fresh super sector (as the original's
 * `wdevc format-ldev`). Pure TypeScript: works on image files and on block devices.
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import { SUPPORTED_PBS, ValueOutOfRangeError, formatLdev, probeDevice, type FormatLdevOptions } from '@walbjs/log-format';
import type { GlobalArgs } from '../../app.ts';
import { UsageError } from '../../util/errors.ts';
import { ioOf, writeTo } from '../../util/io.ts';
import { toJson } from '../../util/json.ts';
import { superSectorView } from '../../util/views.ts';
import { refuseIfCaptured } from '../../util/in-use.ts';

/** Arguments of `wdevc format-ldev`. */
export interface FormatLdevArgs extends GlobalArgs {
  /** Log device path. */
  ldev: string;
  /** Data device path. */
  ddev: string;
  /** Device name. */
  name?: string;
  /** Physical block size. */
  pbs?: number;
}

/** `--name`, checked against the 31 bytes the super sector has room for. */
function deviceName(v: string): string {
  const n = Buffer.byteLength(v);
  if (n > 31) throw new UsageError(`invalid --name (-n) ${JSON.stringify(v)}: ${n} bytes, at most 31 fit in the super sector`);
  return v;
}

/** `wdevc format-ldev`. */
export const formatLdevCommand: CommandModule<GlobalArgs, FormatLdevArgs> = {
  command: 'format-ldev <ldev> <ddev>',
  describe: 'Format a log device for a data device: new uuid and salt, empty ring buffer',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('ldev', { type: 'string', demandOption: true, describe: 'Log device to format (block device or image file)' })
      .positional('ddev', { type: 'string', demandOption: true, describe: 'Data device (its size is recorded in the super sector)' })
      .option('name', { alias: 'n', type: 'string', describe: 'Device name stored in the super sector (at most 31 bytes)', coerce: deviceName })
      .option('pbs', { type: 'number', choices: [...SUPPORTED_PBS], describe: 'Physical block size (default: a block device\'s own, 4096 for a file)' })
      .example('$0 format-ldev /dev/vg0/log /dev/vg0/data -n vol0', '')
      .example('truncate -s 8M l.img; truncate -s 32M d.img; $0 format-ldev l.img d.img', 'image files')
      .epilogue('Prints nothing; with --json: {type:"super-sector", path, ...fields} of the sector written.'),
  handler: async (args) => {
    await refuseIfCaptured(args.ldev);
    const io = ioOf(args);
    const opts: FormatLdevOptions = {};
    if (args.name !== undefined) opts.name = args.name;
    if (args.pbs !== undefined) opts.pbs = args.pbs;
    // A super sector saying the device holds nothing makes a walb device no one can write to.
    const ddev = await probeDevice(args.ddev);
    if (ddev.sizeBytes < 512n) {
      throw new ValueOutOfRangeError('ddev', `${args.ddev} holds ${ddev.sizeBytes} bytes: a data device needs at least one 512-byte block`, { source: args.ddev });
    }
    const s = await formatLdev(args.ldev, args.ddev, opts);
    if (args.json) await writeTo(io.stdout, toJson({ type: 'super-sector', path: args.ldev, ...superSectorView(s) }) + '\n');
  },
};
