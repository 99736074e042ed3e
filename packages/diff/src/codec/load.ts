/**
 * Loading of optional codec libraries: each is required lazily, on the first use of its codec, and
 * a failure (missing package, no binary for this platform, a binary that does not load) is kept
 * as a message instead of thrown, so that a fallback can take over.
 *
 * @module
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The outcome of loading one library. */
export type Loaded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

const failures = new Map<string, string>();

/**
 * Load a library once; `init` runs on the module (for example a self-test) and may throw.
 *
 * @param id - package name passed to `require`, or a label when `init` does the loading itself
 * @param init - turns the module into the value to keep
 */
export function loadOnce<T>(id: string, init: (req: NodeJS.Require) => T): () => Loaded<T> {
  let result: Loaded<T> | undefined;
  return () => {
    if (!result) {
      try {
        result = { ok: true, value: init(require) };
      } catch (e) {
        const error = e instanceof Error ? `${e.message}${'code' in e && e.code ? ` (${String(e.code)})` : ''}` : String(e);
        failures.set(id, error);
        result = { ok: false, error };
      }
    }
    return result;
  };
}

/**
 * Libraries that failed to load so far, with the reason (for diagnostics: a codec then runs on its
 * fallback, or reports itself unavailable).
 */
export function codecLoadFailures(): ReadonlyMap<string, string> {
  return new Map(failures);
}
