/**
 * Cleanups run when the command is interrupted (SIGINT, SIGTERM, SIGHUP): Node's default is to
 * die at once, which leaves a partial output file behind. While a cleanup is armed, a signal runs
 * every armed cleanup, synchronously, then exits 128 + the signal number (130 for SIGINT).
 *
 * @module
 */

const SIGNALS = [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]] as const;
const armed = new Set<() => void>();
let installed: Array<readonly [NodeJS.Signals, () => void]> = [];

/**
 * Arm `cleanup` until the returned function is called. The handlers are installed while anything
 * is armed only, so a command that arms nothing keeps Node's default behaviour.
 *
 * @example
 * ```ts
 * const disarm = armInterrupt(() => rmSync(partial, { force: true }));
 * try { await write(partial); } finally { disarm(); }
 * ```
 */
export function armInterrupt(cleanup: () => void): () => void {
  armed.add(cleanup);
  if (installed.length === 0) {
    installed = SIGNALS.map(([sig, n]) => {
      const h = () => {
        for (const c of armed) {
          try { c(); } catch { /* the others still run */ }
        }
        process.exit(128 + n);
      };
      process.on(sig, h);
      return [sig, h] as const;
    });
  }
  return () => {
    armed.delete(cleanup);
    if (armed.size === 0) {
      for (const [sig, h] of installed) process.off(sig, h);
      installed = [];
    }
  };
}
