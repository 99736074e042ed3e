/**
 * `walb wlog show [--head] [--pack] [--stat] FILE|-`: dump a wlog as `wlog-show` does.
 *
 * @module
 */
import type { Argv, CommandModule } from 'yargs';
import {
  LogStatistics, WlogReader, formatLogStat, formatLogpack, formatWlogHeader,
} from '@walbjs/log-format';
import type { GlobalArgs } from '../../app.ts';
import { LineWriter, ioOf, writeTo } from '../../util/io.ts';
import { openInput } from '../../util/input.ts';
import { toJson } from '../../util/json.ts';
import { startProgress } from '../../util/progress.ts';
import { logStatView, wlogHeaderView, wlogPackView } from '../../util/views.ts';

/** Arguments of `wlog show`. */
export interface WlogShowArgs extends GlobalArgs {
  /** Input path or `-`. */
  file: string;
  /** Print the file header line. */
  head: boolean;
  /** Print every pack and its records. */
  pack: boolean;
  /** Print the statistics. */
  stat: boolean;
}

/** `walb wlog show`. */
export const wlogShowCommand: CommandModule<GlobalArgs, WlogShowArgs> = {
  command: 'show <file>',
  describe: 'Print a wlog: its header, packs and statistics (as wlog-show)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'wlog file, or - for stdin' })
      // A lone `-` (stdin) is kept as the value only when the positional takes exactly one argument.
      .nargs('file', 1)
      .option('head', { type: 'boolean', default: false, describe: 'Print the file header (wlog_h line)' })
      .option('pack', { type: 'boolean', default: false, describe: 'Print each logpack (wlog_p line) and its records (wlog_r lines)' })
      .option('stat', { type: 'boolean', default: false, describe: 'Print statistics (bgnLsid endLsid reallyEndLsid nrPacks normalLb discardLb paddingPb)' })
      .example('$0 wlog show --stat a.wlog', 'statistics only')
      .example('cat a.wlog | $0 wlog show --pack -', 'packs, from stdin')
      .epilogue('Without --head, --pack or --stat all three are printed. With --json: one document '
        + '{type:"wlog", header, packs (only with --pack), stat}; lsids are decimal strings.'),
  handler: async (args) => {
    const io = ioOf(args);
    const all = !args.head && !args.pack && !args.stat;
    const input = await openInput(args.file, io);
    const r = await WlogReader.open(input.src, { strict: true, source: input.source });
    const st = new LogStatistics(r.header.beginLsid, r.header.endLsid, r.pbs);
    const progress = await startProgress(io, { label: 'reading', total: input.size, json: args.json });
    const out = new LineWriter(io.stdout);
    try {
      if (args.json) {
        const packs: unknown[] = [];
        for await (const p of r) {
          if (args.pack) packs.push(wlogPackView(p));
          st.update(p.header);
          progress.update(p.offset);
        }
        progress.stop();
        const doc = {
          type: 'wlog',
          source: input.source,
          header: wlogHeaderView(r.header),
          ...(args.pack ? { packs } : {}),
          stat: logStatView(st.value),
        };
        await writeTo(io.stdout, toJson(doc) + '\n');
        return;
      }
      if (all || args.head) await out.line(formatWlogHeader(r.header));
      for await (const p of r) {
        if (all || args.pack) await out.line(formatLogpack(p.header));
        st.update(p.header);
        progress.update(p.offset);
      }
      progress.stop();
      if (all || args.stat) await out.line(formatLogStat(st.value));
    } finally {
      progress.stop();
      // What was read before an error is still printed, as the original does.
      await out.flush();
      await r.close();
    }
  },
};
