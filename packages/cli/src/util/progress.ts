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
  /** Set the current amount (bytes). */
  update(value: number): void;
  /** Remove the bar. */
  stop(): void;
}

/** Options of {@link startProgress}. */
export interface ProgressOptions {
  /** Text before the bar. */
  label: string;
  /** Total bytes, when known; without it only the amount done is shown. */
  total?: number;
  /** `--json` is on: no bar. */
  json: boolean;
}

const NONE: Progress = { update() {}, stop() {} };

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
  const bar = new SingleBar({
    stream: io.stderr as NodeJS.WritableStream,
    format: known
      ? `${opts.label} [{bar}] {percentage}% | {done} of {all} | ETA {eta_formatted}`
      : `${opts.label} {done}`,
    hideCursor: true,
    clearOnComplete: true,
    barsize: 30,
  });
  const total = known ? opts.total! : 1;
  const all = formatBytes(total);
  bar.start(total, 0, { done: formatBytes(0), all });
  let stopped = false;
  return {
    update(value: number) {
      bar.update(known ? Math.min(value, total) : 0, { done: formatBytes(value), all });
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
