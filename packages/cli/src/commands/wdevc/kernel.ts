/**
 * The `wdevc` commands that drive a kernel walb device, with the original's names, arguments and
 * output: each is one ioctl (through the native addon) or a short sequence of them. Without the
 * walb module they fail (exit 1) with a message naming the missing device node.
 *
 * They are declared as a table because they differ only in their arguments and the call they make.
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../../app.ts';
import { ioOf, writeTo, type CliIo } from '../../util/io.ts';
import { toJson } from '../../util/json.ts';
import { parseIntRange, parseLsid, parseUint } from '../../util/parse.ts';
import { UsageError } from '../../util/errors.ts';

type Native = typeof import('@walbjs/native-walb');
const sdk = (): Promise<Native> => import('@walbjs/native-walb');

interface KernelArgs extends GlobalArgs {
  wdev: string;
  value?: string;
  timeout?: string;
}

async function out(io: CliIo, json: boolean, type: string, value: unknown, text: string): Promise<void> {
  await writeTo(io.stdout, json ? toJson({ type, value }) + '\n' : text + '\n');
}

/** A command on one walb device, with an optional second argument. */
function wdevCommand(
  name: string, describe: string,
  run: (n: Native, wdev: string, value: string | undefined) => Promise<unknown>,
  arg?: { name: string; describe: string; optional?: boolean },
): CommandModule<GlobalArgs, KernelArgs> {
  const argPart = arg ? (arg.optional ? ` [${arg.name}]` : ` <${arg.name}>`) : '';
  return {
    command: `${name} <wdev>${argPart}`,
    describe,
    builder: (y: Argv<GlobalArgs>) => {
      let b = y.positional('wdev', { type: 'string', demandOption: true, describe: 'walb device, e.g. /dev/walb/vol0' });
      if (arg) b = b.positional(arg.name, { type: 'string', describe: arg.describe });
      return b as Argv<KernelArgs>;
    },
    handler: async (args) => {
      const io = ioOf(args);
      const v = arg ? (args as unknown as Record<string, string | undefined>)[arg.name] : undefined;
      const r = await run(await sdk(), args.wdev, v);
      if (r === undefined) { if (args.json) await out(io, true, name, null, ''); return; }
      const text = typeof r === 'boolean' ? (r ? '1' : '0') : String(r);
      await out(io, args.json, name, typeof r === 'bigint' ? r.toString() : r, text);
    },
  };
}

const lsidArg = (v: string | undefined) => parseLsid(v ?? '', 'lsid');

/** A `create-wdev` number: a 32-bit unsigned integer, as the driver's struct holds it. */
const u32Option = (name: string) => (v: string) => parseIntRange(v, name, 0, 0xffff_ffff);

/** The `create-wdev` option of each field of `struct walb_start_param`. */
const START_OPTION: Record<string, string> = {
  max_pending_mb: '--maxp', min_pending_mb: '--minp', queue_stop_timeout_ms: '--qp', max_logpack_kb: '--maxl',
  log_flush_interval_ms: '--fp', log_flush_interval_mb: '--fs', n_pack_bulk: '--bp', n_io_bulk: '--bi',
};

/** The kernel-device commands of `wdevc`. */
export const kernelCommands: CommandModule<GlobalArgs, any>[] = [
  {
    command: 'create-wdev <ldev> <ddev>',
    describe: 'Create a walb device over a log device and a data device',
    builder: (y: Argv<GlobalArgs>) => y
      .positional('ldev', { type: 'string', demandOption: true, describe: 'Log device (formatted with format-ldev)' })
      .positional('ddev', { type: 'string', demandOption: true, describe: 'Data device' })
      .option('name', { alias: 'n', type: 'string', describe: 'walb device name (default: from the super sector)' })
      .option('maxl', { type: 'string', default: '32', describe: 'Max logpack size [KiB] (0: unlimited)', coerce: u32Option('--maxl') })
      .option('maxp', { type: 'string', default: '32', describe: 'Max pending size [MiB] (2-16384)', coerce: u32Option('--maxp') })
      .option('minp', { type: 'string', default: '16', describe: 'Min pending size [MiB] (below --maxp)', coerce: u32Option('--minp') })
      .option('qp', { type: 'string', default: '100', describe: 'Queue stopping period [ms]', coerce: u32Option('--qp') })
      .option('fs', { type: 'string', default: '16', describe: 'Log flush interval size [MiB] (at most --maxp / 2)', coerce: u32Option('--fs') })
      .option('fp', { type: 'string', default: '100', describe: 'Log flush interval period [ms]', coerce: u32Option('--fp') })
      .option('bp', { type: 'string', default: '128', describe: 'Packs in a bulk', coerce: u32Option('--bp') })
      .option('bi', { type: 'string', default: '1024', describe: 'IOs in a bulk', coerce: u32Option('--bi') }),
    handler: async (a: any) => {
      const n = await sdk();
      const params = {
        name: a.name ?? '', maxLogpackKb: a.maxl, maxPendingMb: a.maxp, minPendingMb: a.minp, queueStopTimeoutMs: a.qp,
        logFlushIntervalMb: a.fs, logFlushIntervalMs: a.fp, nPackBulk: a.bp, nIoBulk: a.bi,
      };
      // The driver's rules between the options, checked before the control device is opened.
      try {
        n.validateStartParam({ ...n.DEFAULT_START_PARAM, ...params });
      } catch (e) {
        const opt = e instanceof n.ValueOutOfRangeError ? START_OPTION[e.field] : undefined;
        if (opt) throw new UsageError(`invalid ${opt}: ${e instanceof Error ? e.message : String(e)}`);
        throw e;
      }
      const r = await n.createWdev(a.ldev, a.ddev, params);
      await out(ioOf(a), a.json, 'create-wdev', r, `name ${r.name}\nmajor ${r.major}\nminor ${r.minor}`);
    },
  },
  {
    command: 'delete-wdev <wdev>',
    describe: 'Delete a walb device',
    builder: (y: Argv<GlobalArgs>) => y
      .positional('wdev', { type: 'string', demandOption: true, describe: 'walb device' })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'Delete even when it is open' }),
    handler: async (a: any) => { await (await sdk()).deleteWdev(a.wdev, a.force); },
  },
  {
    command: 'list',
    describe: 'List the walb devices',
    builder: (y: Argv<GlobalArgs>) => y,
    handler: async (a: any) => {
      const l = await (await sdk()).listWdevs();
      await out(ioOf(a), a.json, 'list', l, l.map((d) => `${d.major} ${d.minor} ${d.name}`).join('\n'));
    },
  },
  {
    command: 'get-version',
    describe: 'Version of the walb kernel module',
    builder: (y: Argv<GlobalArgs>) => y,
    handler: async (a: any) => {
      const n = await sdk();
      const v = await n.getWalbVersion();
      await out(ioOf(a), a.json, 'get-version', v, n.formatWalbVersion(v));
    },
  },
  wdevCommand('set-checkpoint-interval', 'Set the checkpoint interval', (n, w, v) => n.setCheckpointInterval(w, parseUint(v ?? '', 'interval [ms]', 86_400_000)), { name: 'ms', describe: 'Interval [ms]' }),
  wdevCommand('get-checkpoint-interval', 'Get the checkpoint interval [ms]', (n, w) => n.getCheckpointInterval(w)),
  wdevCommand('force-checkpoint', 'Checkpoint now', (n, w) => n.takeCheckpoint(w)),
  wdevCommand('set-oldest-lsid', 'Set the oldest lsid (frees the log below it)', (n, w, v) => n.setOldestLsid(w, lsidArg(v)), { name: 'lsid', describe: 'New oldest lsid' }),
  wdevCommand('get-oldest-lsid', 'Get the oldest lsid', (n, w) => n.getOldestLsid(w)),
  wdevCommand('get-written-lsid', 'Get the written lsid', (n, w) => n.getWrittenLsid(w)),
  wdevCommand('get-permanent-lsid', 'Get the permanent lsid', (n, w) => n.getPermanentLsid(w)),
  wdevCommand('get-completed-lsid', 'Get the completed lsid', (n, w) => n.getCompletedLsid(w)),
  wdevCommand('get-log-usage', 'Get the log usage [physical blocks]', (n, w) => n.getLogUsage(w)),
  wdevCommand('get-log-capacity', 'Get the log capacity [physical blocks]', (n, w) => n.getLogCapacity(w)),
  wdevCommand('is-flush-capable', 'Whether the device passes flushes down (1/0)', (n, w) => n.isFlushCapable(w)),
  wdevCommand('resize', 'Grow the device (size in LB; 0: the data device\'s size)', (n, w, v) => n.resizeWdev(w, v === undefined ? 0n : parseLsid(v, 'size [LB]')), { name: 'size', describe: 'New size [LB]', optional: true }),
  wdevCommand('is-log-overflow', 'Whether the log has overflowed (1/0)', (n, w) => n.isLogOverflow(w)),
  wdevCommand('reset-wal', 'Reset the log: new uuid and salt, every lsid 0 (to recover from an overflow)', (n, w) => n.clearLog(w)),
  wdevCommand('clear-wal', 'Drop every log: wait until written ≥ permanent, checkpoint, set oldest = permanent', async (n, w, v) => {
    const deadline = Date.now() + parseUint(v ?? '0', 'timeout [s]') * 1000;
    for (;;) {
      const [written, permanent] = [await n.getWrittenLsid(w), await n.getPermanentLsid(w)];
      if (written >= permanent) {
        await n.takeCheckpoint(w);
        await n.setOldestLsid(w, permanent);
        return undefined;
      }
      if (v !== undefined && v !== '0' && Date.now() > deadline) throw new Error(`clear-wal: written lsid ${written} did not reach permanent ${permanent} in time`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }, { name: 'timeout', describe: 'Seconds to wait (0: no limit)', optional: true }),
  wdevCommand('freeze', 'Freeze write IO (melting by itself after TIMEOUT seconds; 0: never)', (n, w, v) => n.freeze(w, parseUint(v ?? '0', 'timeout [s]', 86_400)), { name: 'timeout', describe: 'Seconds (0: no timeout)', optional: true }),
  wdevCommand('melt', 'Melt a frozen device', (n, w) => n.melt(w)),
  wdevCommand('is-frozen', 'Whether the device is frozen (1/0)', (n, w) => n.isFrozen(w)),
  wdevCommand('is-flozen', 'Same as is-frozen (the original\'s spelling)', (n, w) => n.isFrozen(w)),
];
