/**
 * `walb wlog verify FILE|-`: read a whole wlog checking every checksum and lsid.
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import { LogStatistics, WlogReader } from '@walbjs/log-format';
import type { GlobalArgs } from '../../app.ts';
import { ioOf, writeTo } from '../../util/io.ts';
import { openInput } from '../../util/input.ts';
import { toJson } from '../../util/json.ts';
import { startProgress } from '../../util/progress.ts';
import { logStatView } from '../../util/views.ts';

/** Arguments of `wlog verify`. */
export interface WlogVerifyArgs extends GlobalArgs {
  /** Input path or `-`. */
  file: string;
}

/** `walb wlog verify`. */
export const wlogVerifyCommand: CommandModule<GlobalArgs, WlogVerifyArgs> = {
  command: 'verify <file>',
  describe: 'Check every checksum and lsid of a wlog; exit 1 naming the first problem',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'wlog file, or - for stdin' })
      // A lone `-` (stdin) is kept as the value only when the positional takes exactly one argument.
      .nargs('file', 1)
      .example('$0 wlog verify a.wlog', 'prints "a.wlog: ok, ..." or the error and its offset')
      .epilogue('With --json: {type:"verify", ok:true, source, pbs, packs, records, beginLsid, endLsid, '
        + 'stat}; a failure prints {type:"error", code, message, offset, lsid} on stderr.'),
  handler: async (args) => {
    const io = ioOf(args);
    const input = await openInput(args.file, io);
    const r = await WlogReader.open(input.src, { strict: true, verifyData: true, source: input.source });
    const st = new LogStatistics(r.header.beginLsid, r.header.endLsid, r.pbs);
    const progress = await startProgress(io, { label: 'verifying', total: input.size, json: args.json });
    let records = 0;
    try {
      for await (const p of r) {
        st.update(p.header);
        records += p.header.nRecords;
        progress.update(p.offset);
      }
    } finally {
      progress.stop();
      await r.close();
    }
    const s = st.value;
    if (args.json) {
      await writeTo(io.stdout, toJson({
        // A count of packs, each at least one block of the lsid range, stays far below 2^53: a number,
        // as records is; the stat object keeps the SDK's bigint counters.
        type: 'verify', ok: true, source: input.source, pbs: r.pbs, packs: Number(s.nrPacks), records,
        beginLsid: s.bgnLsid, endLsid: s.reallyEndLsid, stat: logStatView(s),
      }) + '\n');
      return;
    }
    await writeTo(io.stdout,
      `${input.source}: ok, pbs ${r.pbs}, ${s.nrPacks} packs, ${records} records, lsid ${s.bgnLsid} to ${s.reallyEndLsid}\n`);
  },
};
