/**
 * log-inspector: per-record statistics of a wlog file or a log device image.
 *
 *   log-inspector [--json] FILE
 *
 * Exit codes: 0 success; 2 bad input (a file the library rejects, an unreadable path) or a wrong
 * command line; 1 anything unexpected.
 *
 * @module
 */
import { WalbFormatError } from '@walbjs/log-format';
import { UnrecognisedInputError, describe, inspect } from './inspect.ts';
import { toJson, toText } from './report.ts';

const USAGE = `usage: log-inspector [--json] FILE

Statistics of a wlog file or of a log device (image file or block device): packs, records by kind,
IO sizes, the address range touched, the lsid range and the ten most-written 1 MiB regions.
  --json   print the statistics as JSON (bigints as decimal strings)`;

const EXIT_BAD_INPUT = 2;

function fail(line: string, code: number): void {
  process.stderr.write(`log-inspector: ${line}\n`);
  process.exitCode = code;
}

/** The one-line message for an error while reading `file`, and the exit code it means. */
function explain(file: string, e: unknown): [string, number] {
  if (e instanceof WalbFormatError) return [`${file}: ${describe(e)}`, EXIT_BAD_INPUT];
  if (e instanceof UnrecognisedInputError) return [`${file}: ${e.message}`, EXIT_BAD_INPUT];
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (e instanceof Error && typeof code === 'string' && code.startsWith('E')) return [`${file}: ${e.message}`, EXIT_BAD_INPUT];
  if (e instanceof Error && /neither a regular file nor a block device/.test(e.message)) return [`${file}: ${e.message}`, EXIT_BAD_INPUT];
  return [`${file}: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`.replace(/\n\s*/g, ' | '), 1];
}

async function main(argv: string[]): Promise<void> {
  let json = false;
  const files: string[] = [];
  for (const a of argv) {
    if (a === '--json') json = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE + '\n');
      return;
    } else if (a.startsWith('-') && a !== '-') return fail(`unknown option ${a}\n${USAGE}`, EXIT_BAD_INPUT);
    else files.push(a);
  }
  if (files.length !== 1) return fail(`${files.length ? 'one FILE only' : 'FILE missing'}\n${USAGE}`, EXIT_BAD_INPUT);
  const file = files[0];
  if (file === '-') return fail('reading from stdin is not supported: name a file or a device', EXIT_BAD_INPUT);
  let report: string;
  try {
    const x = await inspect(file);
    report = json ? toJson(x) : toText(x);
  } catch (e) {
    const [line, code] = explain(file, e);
    return fail(line, code);
  }
  process.stdout.write(report + '\n');
}

// `log-inspector … | head` closes the pipe early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

await main(process.argv.slice(2));
