/**
 * `walb ldev info LDEV`: print the super sector of a log device (as `wldev-info`).
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import { LogDevice, formatSuperSector } from '@walbjs/log-format';
import type { GlobalArgs } from '../../app.ts';
import { ioOf, writeTo } from '../../util/io.ts';
import { toJson } from '../../util/json.ts';
import { superSectorView } from '../../util/views.ts';

/** Arguments of `ldev info`. */
export interface LdevInfoArgs extends GlobalArgs {
  /** Log device path. */
  ldev: string;
}

/** `walb ldev info`. */
export const ldevInfoCommand: CommandModule<GlobalArgs, LdevInfoArgs> = {
  command: 'info <ldev>',
  describe: 'Print the super sector of a log device (as wldev-info)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('ldev', { type: 'string', demandOption: true, describe: 'Log device (block device or image file)' })
      .example('$0 ldev info /dev/loop0', 'sectorType, pbs, salt, name, ringBufferSize, lsids, uuid ...')
      .epilogue('With --json: {type:"super-sector", path, ...fields}; 64-bit fields are decimal strings.'),
  handler: async (args) => {
    const io = ioOf(args);
    const ldev = await LogDevice.open(args.ldev);
    try {
      const s = ldev.superSector;
      await writeTo(io.stdout, args.json ? toJson({ type: 'super-sector', path: args.ldev, ...superSectorView(s) }) + '\n' : formatSuperSector(s));
    } finally {
      await ldev.close();
    }
  },
};
