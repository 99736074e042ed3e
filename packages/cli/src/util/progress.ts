/**
 * A progress bar on stderr, drawn only when stderr is a terminal and the output is not JSON, so
 * pipes, logs and machine consumers never see it.
 *
 * @module
 */
import type { CliIo } from './io.ts';
import { formatBytes } from './parse.ts';

/** A running progress display. */
export interface Progress {
  /** Set the current amount (bytes, or what {@link ProgressOptions.unit} counts). */
  update(value: number): void;
  /**
   * Start a new phase on the same bar (`verifying`, then `applying`): a new label, the amount back
   * to 0, and a new total when given (for a bar that was started with a total).
   */
  phase(label: string, total?: number): void;
  /** Remove the bar. */
  stop(): void;
  /**
   * Remove the bar and leave `text` in its place: the final amount, for a bar that is updated
   * only now and then (every 4096 IOs) and would otherwise never show it.
   */
  finish(text: string): void;
}

/** Options of {@link startProgress}. */
export interface ProgressOptions {
  /** Text before the bar. */
  label: string;
  /** Total bytes, when known; without it only the amount done is shown. */
  total?: number;
  /** `--json` is on: no bar. */
  json: boolean;
  /** How to print an amount (default: bytes, 1024-based; a count of IOs passes its own). */
  unit?: (n: number) => string;
}

const NONE: Progress = { update() {}, phase() {}, stop() {}, finish() {} };

/** Whether a bar would be drawn for this run. */
export function progressEnabled(io: CliIo, json: boolean): boolean {
  return !json && io.stderr.isTTY === true;
}

/**
 * Start a progress bar on `io.stderr`, or a no-op when stderr is not a TTY or `json` is set.
 * `cli-progress` is loaded only when a bar is drawn.
 */
export async function startProgress(io: CliIo, opts: ProgressOptions): Promise<Progress> {
  if (!progressEnabled(io, opts.json)) return NONE;
  const { SingleBar } = (await import('cli-progress')).default;
  const known = opts.total !== undefined && opts.total > 0;
  const fmt = opts.unit ?? formatBytes;
  const bar = new SingleBar({
    stream: io.stderr as NodeJS.WritableStream,
    format: known
      ? '{label} [{bar}] {percentage}% | {done} of {all} | ETA {eta_formatted}'
      : '{label} {done}',
    hideCursor: true,
    clearOnComplete: true,
    barsize: 30,
  });
  let total = known ? opts.total! : 1;
  let label = opts.label;
  let all = fmt(total);
  bar.start(total, 0, { label, done: fmt(0), all });
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    bar.stop();
  };
  return {
    update(value: number) {
      if (stopped) return;
      bar.update(known ? Math.min(value, total) : 0, { label, done: fmt(value), all });
    },
    phase(next: string, nextTotal?: number) {
      if (stopped) return;
      label = next;
      if (known && nextTotal !== undefined && nextTotal > 0) {
        total = nextTotal;
        all = fmt(total);
        bar.setTotal(total);
      }
      bar.update(0, { label, done: fmt(0), all });
    },
    stop,
    finish(text: string) {
      if (stopped) return;
      stop();
      io.stderr.write(text + '\n');
    },
  };
}
