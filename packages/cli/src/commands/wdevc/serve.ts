/**
 * `wdevc serve LDEV DDEV (--unix PATH | --tcp HOST:PORT)`: run a userspace capture device in the
 * foreground — an NBD server whose every write is logged in the log device first.
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../../app.ts';
import { UsageError } from '../../util/errors.ts';
import { ioOf, writeTo } from '../../util/io.ts';
import { toJson } from '../../util/json.ts';
import { parseHostPort, parseUint } from '../../util/parse.ts';

/** Arguments of `wdevc serve`. */
export interface ServeArgs extends GlobalArgs {
  ldev: string;
  ddev: string;
  unix?: string;
  tcp?: string;
  'export-name': string;
  'error-before-overflow': boolean;
  'checkpoint-interval': number;
}

/** `wdevc serve`. */
export const serveCommand: CommandModule<GlobalArgs, ServeArgs> = {
  command: 'serve <ldev> <ddev>',
  describe: 'Run a userspace walb device: an NBD server that logs every write in LDEV before it reaches DDEV',
  builder: (y: Argv<GlobalArgs>) => y
    .positional('ldev', { type: 'string', demandOption: true, describe: 'Log device, formatted with format-ldev' })
    .positional('ddev', { type: 'string', demandOption: true, describe: 'Data device' })
    .option('unix', { type: 'string', describe: 'Listen on this unix socket' })
    .option('tcp', { type: 'string', describe: 'Listen on HOST:PORT (use 127.0.0.1 for loopback only; port 0: any free port)', coerce: (v: string) => parseHostPort(v, '--tcp') })
    .option('export-name', { type: 'string', default: '', describe: 'Name the device is exported under; clients asking for another are refused (default: the empty name, what clients ask for when given none)' })
    .option('error-before-overflow', { type: 'boolean', default: false, describe: 'Fail writes that would overflow the log instead of overwriting the oldest logs' })
    .option('checkpoint-interval', { type: 'string', default: '10000', describe: 'Checkpoint interval [ms]', coerce: (v: string) => parseUint(v, '--checkpoint-interval', 0xffff_ffff) })
    .example('$0 serve l.img d.img --unix /tmp/walb.sock', 'then: nbdinfo nbd+unix:///?socket=/tmp/walb.sock')
    .epilogue('Runs until SIGINT or SIGTERM, then finishes queued writes and checkpoints. With --json a line '
      + '{type:"serving", address} is printed once listening.') as Argv<ServeArgs>,
  handler: async (a) => {
    if ((a.unix === undefined) === (a.tcp === undefined)) throw new UsageError('give exactly one of --unix PATH and --tcp HOST:PORT');
    const io = ioOf(a);
    const { CaptureDevice } = await import('@walbjs/native-walb');
    const dev = await CaptureDevice.open(a.ldev, a.ddev, { errorBeforeOverflow: a['error-before-overflow'], checkpointIntervalMs: a['checkpoint-interval'] });
    let srv;
    try {
      const exportName = a['export-name'];
      srv = dev.serve(a.unix !== undefined ? { unix: a.unix, exportName } : { tcp: a.tcp!, exportName });
    } catch (e) {
      await dev.close().catch(() => {});
      throw e;
    }
    await writeTo(io.stdout, a.json ? toJson({ type: 'serving', address: srv.address }) + '\n' : `serving ${a.ldev} + ${a.ddev} on ${srv.address}\n`);
    if (a.tcp !== undefined && !isLoopback(srv.address)) {
      // NBD has no authentication here: whoever reaches the port reads and writes the device.
      const message = `${srv.address} is not a loopback address: anyone who can reach it can read and write ${a.ddev}`;
      await writeTo(io.stderr, a.json ? toJson({ type: 'warning', message }) + '\n' : `wdevc: warning: ${message}\n`);
    }
    await new Promise<void>((resolve) => {
      // The server runs on native threads, which do not keep node alive: this timer does.
      const alive = setInterval(() => {}, 1 << 30);
      const stop = () => { clearInterval(alive); resolve(); };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await dev.close();
  },
};

/** Whether a `host:port` (or `[v6]:port`) names a loopback address. */
function isLoopback(address: string): boolean {
  const host = address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
