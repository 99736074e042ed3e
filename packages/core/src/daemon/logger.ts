/**
 * Structured logs: one JSON object per line (time, level, daemon, event, fields), bigints as
 * decimal strings, to a stream of the embedder's choice (stderr by default).
 *
 * @module
 */
import type { Writable } from 'node:stream';

/** Log levels. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** A structured logger. */
export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
}

/**
 * A logger writing JSON lines.
 *
 * @example
 * const log = jsonLogger('walb-archive', process.stderr);
 * log.log('info', 'wdiff-received', { volId: 'vol0', gid: 12n });
 */
export function jsonLogger(daemon: string, out: Writable | null = process.stderr, minLevel: LogLevel = 'info'): Logger {
  const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
  return {
    log(level, event, fields = {}) {
      if (!out || rank[level] < rank[minLevel]) return;
      const line = JSON.stringify({ time: new Date().toISOString(), level, daemon, event, ...fields }, (_k, v) => {
        if (typeof v === 'bigint') return v.toString();
        if (v instanceof Error) return { name: v.name, message: v.message, code: (v as { code?: unknown }).code };
        if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
        return v;
      });
      out.write(line + '\n');
    },
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = { log() {} };
