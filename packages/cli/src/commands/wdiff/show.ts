/**
 * `walb wdiff show [--stat] [--csum] [--nohead] [--norec] [--addr LB] FILE...`: dump wdiffs as
 * `wdiff-show` does.
 *
 * @module
 */
import { stat as fsStat } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { openInput } from '@walbjs/log-format';
import type { DiffFileHeader, DiffIndexSuper, DiffRecord, DiffStat, IndexedDiffRecord, SortedDiffEntry, SortedRecordRef } from '@walbjs/diff';
import type { GlobalArgs } from '../../app.ts';
import { LineWriter, ioOf, writeTo, type CliIo } from '../../util/io.ts';
import { toJson } from '../../util/json.ts';
import { parseUint } from '../../util/parse.ts';
import { UsageError } from '../../util/errors.ts';
import { startProgress, type Progress } from '../../util/progress.ts';
import { isFileOrDevice, loadSdk, type DiffSdk } from './common.ts';

/** Arguments of `wdiff show`. */
export interface WdiffShowArgs extends GlobalArgs {
  /** wdiff paths. */
  files: string[];
  /** Print the statistics of all files at the end. */
  stat: boolean;
  /** Verify every record's data (sorted) or image (indexed) checksum and decompress it. */
  csum: boolean;
  /** Leave out the header block. */
  nohead: boolean;
  /** Leave out the record lines. */
  norec: boolean;
  /** Print only the records covering this LB. */
  addr?: number;
}

/** `walb wdiff show`. */
export const wdiffShowCommand: CommandModule<GlobalArgs, WdiffShowArgs> = {
  command: 'show <files..>',
  describe: 'Print wdiffs: header, records and statistics (as wdiff-show)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('files', { type: 'string', array: true, demandOption: true, describe: 'wdiff files (sorted or indexed), or - for a sorted one on stdin' })
      .option('stat', { type: 'boolean', default: false, describe: 'Print the statistics of all the files at the end (8 wdiff_stat lines)' })
      .option('csum', { type: 'boolean', default: false, describe: 'Verify every data/image checksum and decompress every image; exit 1 at the first bad one' })
      .option('nohead', { type: 'boolean', default: false, describe: 'Do not print the header block of each file' })
      .option('norec', { type: 'boolean', default: false, describe: 'Do not print the records' })
      .option('addr', { type: 'string', describe: 'Print only the records covering this address (LB)', coerce: (v: string) => parseUint(v, 'address') })
      .example('$0 wdiff show a.wdiff', 'header block, then one line per record')
      .example('$0 wdiff show --stat --nohead --norec *.wdiff', 'statistics of several files')
      .example('cat a.wdiff | $0 wdiff show -', 'a sorted wdiff from stdin')
      .epilogue('Sorted records: wdiff_sorted_rec: addr blks cmpr offset size csum ZD. Indexed records: '
        + 'wdiff_indexed_rec: addr blks cmpr offset size orig io_off io_csum rec_csum ZD. '
        + 'With --json: {type:"wdiff-show", files:[{source, format, header, indexSuper?, records?, stat}], stat}; '
        + 'records are left out with --norec.'),
  handler: async (args) => {
    const io = ioOf(args);
    const d = await loadSdk();
    const sizes = await Promise.all(args.files.map(async (f) => {
      try {
        const st = await fsStat(f);
        return st.isFile() ? st.size : 0;
      } catch {
        return 0; // The reader reports a missing file with its own error.
      }
    }));
    const progress = await startProgress(io, {
      label: args.csum ? 'verifying' : 'reading', total: sizes.reduce((a, b) => a + b, 0), json: args.json,
    });
    const total = d.emptyDiffStat();
    total.wdiffNr = args.files.length;
    const out = new LineWriter(io.stdout);
    const files: unknown[] = [];
    const ctx: ShowContext = { d, io, args, out, progress, total, base: 0 };
    try {
      for (let i = 0; i < args.files.length; i++) {
        files.push(await showFile(ctx, args.files[i]));
        ctx.base += sizes[i];
      }
      progress.stop();
      if (args.json) {
        await writeTo(io.stdout, toJson({ type: 'wdiff-show', ...(args.csum ? { verified: true } : {}), files, stat: total }) + '\n');
        return;
      }
      if (args.stat) await out.line(d.formatDiffStat(total));
    } finally {
      progress.stop();
      // What was read before an error is still printed, as the original does.
      await out.flush();
    }
  },
};

interface ShowContext {
  d: DiffSdk;
  io: CliIo;
  args: WdiffShowArgs;
  out: LineWriter;
  progress: Progress;
  /** Statistics of every file. */
  total: DiffStat;
  /** Bytes of the files before this one (for progress). */
  base: number;
}

/** The 32-byte file header, read and checked, to tell the format. */
async function readHeader(d: DiffSdk, path: string): Promise<DiffFileHeader> {
  const fh = await openInput(path);
  try {
    const b = Buffer.alloc(d.WALB_DIFF_FILE_HEADER_SIZE);
    const { bytesRead } = await fh.read(b, 0, b.length, 0);
    return d.decodeDiffFileHeader(b.subarray(0, bytesRead), 0, { source: path });
  } finally {
    await fh.close();
  }
}

/** Fill in where an error happened when the SDK did not know (a codec error knows no file). */
function located(d: DiffSdk, e: unknown, source: string, offset: number): unknown {
  if (e instanceof d.WdiffFormatError) e.locate({ source, offset });
  return e;
}

/** Print (or collect for JSON) one file; returns its JSON view. */
async function showFile(ctx: ShowContext, path: string): Promise<unknown> {
  const { d, args } = ctx;
  // stdin, and a pipe given by its path (`<(…)`), are read as they come: a sorted wdiff, whose
  // header its reader reads (an indexed one keeps its index at the end, and the reader says it
  // wants a file).
  const stdin = path === '-';
  const stream = stdin || !(await isFileOrDevice(path));
  let header = stream ? undefined : await readHeader(d, path);
  const indexed = header?.type === d.WALB_DIFF_TYPE_INDEXED;
  let sorted: AsyncIterable<SortedRecordRef | SortedDiffEntry> | undefined;
  if (!indexed && !stream && !args.csum) {
    // Listed without --csum, a file is read by its pack headers alone: the data are read only to
    // be checked (a stream cannot skip them).
    sorted = (await d.openSortedRecords(path)).records;
  } else if (!indexed) {
    const r = await d.SortedDiffReader.open(stdin ? ctx.io.stdin : path, { verifyData: args.csum, source: stdin ? '<stdin>' : path }).catch((e: unknown) => {
      // Only an indexed header: another bad version (a stream of zeros, say) keeps its own error.
      if (stream && e instanceof d.UnsupportedVersionError && /an indexed wdiff where/.test(e.message)) throw new UsageError(`an indexed wdiff cannot be read from ${stdin ? 'stdin' : 'a pipe'} (its index lies at its end): give the file's path`);
      throw e;
    });
    header ??= r.header;
    sorted = r;
  }
  // Read above from the file, or by the reader of stdin.
  const head = header!;
  if (!args.json && !args.nohead) await ctx.out.line(d.formatDiffFileHeader(head));
  const own = d.emptyDiffStat();
  own.wdiffNr = 1;
  const records: unknown[] = [];
  const wanted = (r: { ioAddress: number; ioBlocks: number }) =>
    !args.norec && (args.addr === undefined || (r.ioAddress <= args.addr && args.addr < r.ioAddress + r.ioBlocks));
  let indexSuper: DiffIndexSuper | undefined;
  if (indexed) {
    const r = await d.IndexedDiffReader.open(path);
    try {
      indexSuper = r.indexSuper;
      const fileSize = indexSuper.indexOffset;
      // By every field of the stored image: a record may share another's offset with another
      // size or checksum, and then has its own image to check.
      const checked = new Set<string>();
      const imageKey = (rec: { dataOffset: number; dataSize: number; compressionType: number; origBlocks: number; ioChecksum: number }) =>
        `${rec.dataOffset}:${rec.dataSize}:${rec.compressionType}:${rec.origBlocks}:${rec.ioChecksum}`;
      let i = 0;
      for (const rec of r.records()) {
        if (args.csum && d.recordKind(rec.flags) === 'normal' && !checked.has(imageKey(rec))) {
          // The reader checks io_checksum (a typed error naming the offset); then decompress.
          const img = await r.image(rec);
          try {
            await d.imageBytes(img);
          } catch (e) {
            throw located(d, e, path, rec.dataOffset);
          }
          checked.add(imageKey(rec));
        }
        // The original counts no data size for indexed records.
        d.addToDiffStat(own, rec, 0);
        d.addToDiffStat(ctx.total, rec, 0);
        if (wanted(rec)) {
          if (args.json) records.push(indexedRecordView(d, rec));
          else await ctx.out.line(d.formatIndexedRecord(rec));
        }
        if (++i % 1024 === 0) ctx.progress.update(ctx.base + Math.floor((fileSize * i) / r.size));
      }
    } finally {
      await r.close();
    }
  } else {
    for await (const e of sorted!) {
      const rec = e.record;
      if ('io' in e && args.csum && e.io.kind === 'normal') {
        try {
          await d.ioBytes(e.io);
        } catch (err) {
          throw located(d, err, path, e.dataOffset);
        }
      }
      d.addToDiffStat(own, rec, rec.dataSize);
      d.addToDiffStat(ctx.total, rec, rec.dataSize);
      if (wanted(rec)) {
        if (args.json) records.push(sortedRecordView(d, rec));
        else await ctx.out.line(d.formatSortedRecord(rec));
      }
      ctx.progress.update(ctx.base + e.dataOffset);
    }
  }
  return {
    source: path,
    format: indexed ? 'indexed' : 'sorted',
    header: headerView(head),
    ...(indexSuper ? { indexSuper: { ...indexSuper } } : {}),
    ...(args.norec ? {} : { records }),
    stat: own,
  };
}

function cmprName(d: DiffSdk, t: number): string | number {
  return d.isCompressionType(t) ? d.compressionTypeName(t) : t;
}

/** A wdiff file header as JSON. */
function headerView(h: DiffFileHeader) {
  return { checksum: h.checksum >>> 0, version: h.version, type: h.type, uuid: h.uuid };
}

/** A sorted record as JSON (`dataOffset` is relative to the end of its pack header, as stored). */
function sortedRecordView(d: DiffSdk, r: DiffRecord) {
  return {
    ioAddress: r.ioAddress,
    ioBlocks: r.ioBlocks,
    kind: d.recordKind(r.flags),
    flags: r.flags,
    compression: cmprName(d, r.compressionType),
    dataOffset: r.dataOffset,
    dataSize: r.dataSize,
    checksum: r.checksum >>> 0,
  };
}

/** An indexed record as JSON (`dataOffset` is the file offset of its image). */
function indexedRecordView(d: DiffSdk, r: IndexedDiffRecord) {
  return {
    ioAddress: r.ioAddress,
    ioBlocks: r.ioBlocks,
    kind: d.recordKind(r.flags),
    flags: r.flags,
    compression: cmprName(d, r.compressionType),
    dataOffset: r.dataOffset,
    dataSize: r.dataSize,
    origBlocks: r.origBlocks,
    ioOffset: r.ioOffset,
    ioChecksum: r.ioChecksum >>> 0,
    recChecksum: r.recChecksum >>> 0,
  };
}
