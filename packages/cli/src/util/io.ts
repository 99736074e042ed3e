/**
 * The streams a command talks to. The bins use the process's; a program embedding the CLI may pass
 * its own (see `runWalb`).
 *
 * @module
 */

/** A writable stream that may be a terminal. */
export type CliWritable = NodeJS.WritableStream & { isTTY?: boolean };

/** Standard streams of one CLI run. */
export interface CliIo {
  /** Where `-` inputs are read from. */
  stdin: NodeJS.ReadableStream;
  /** Data and results (text, JSON, or a binary log with `-o -`). */
  stdout: CliWritable;
  /** Errors, progress and `--verbose` notes. */
  stderr: CliWritable;
}

/** Key under which the run's {@link CliIo} travels in the yargs arguments (not visible as an option). */
export const IO_KEY: unique symbol = Symbol('walbjs.cli.io');

/** The {@link CliIo} of a run: the one passed to the app, else the process's streams. */
export function ioOf(argv: object): CliIo {
  const io = (argv as { [IO_KEY]?: CliIo })[IO_KEY];
  return io ?? { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
}

/** Fill in the process's streams for any stream not given. */
export function resolveIo(io: Partial<CliIo> = {}): CliIo {
  return { stdin: io.stdin ?? process.stdin, stdout: io.stdout ?? process.stdout, stderr: io.stderr ?? process.stderr };
}

/** Write `data` and wait until the stream accepts more (honours back-pressure). */
export function writeTo(w: NodeJS.WritableStream, data: string | Uint8Array): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    w.once('error', onError);
    const ok = w.write(data, (e?: Error | null) => {
      if (e) {
        w.off('error', onError);
        reject(e);
      }
    });
    if (ok) {
      w.off('error', onError);
      resolve();
    } else {
      w.once('drain', () => {
        w.off('error', onError);
        resolve();
      });
    }
  });
}

/**
 * Collects text lines and writes them in large pieces (a `wlog show --pack` of a big log has
 * millions of lines).
 */
export class LineWriter {
  private buf: string[] = [];
  private size = 0;
  constructor(private readonly out: NodeJS.WritableStream, private readonly limit = 1 << 16) {}

  /** Queue one line (a newline is added). */
  async line(text: string): Promise<void> {
    this.buf.push(text, '\n');
    this.size += text.length + 1;
    if (this.size >= this.limit) await this.flush();
  }

  /** Write out what is queued. */
  async flush(): Promise<void> {
    if (this.size === 0) return;
    const s = this.buf.join('');
    this.buf = [];
    this.size = 0;
    await writeTo(this.out, s);
  }
}
