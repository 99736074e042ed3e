/**
 * System errors of file I/O, made to say where they happened.
 *
 * @module
 */
import { fstat } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * Add the file and byte offset an I/O call concerned to a Node system error (ENOSPC, EIO, …)
 * that does not name them: its message becomes `write /backup/x.wdiff at byte 1048576: ENOSPC:
 * no space left on device`, and `path` is set. `code`, `errno`, `syscall` and the class stay, so
 * callers still switch on `code`. Anything else (an error that names its path already, one
 * without a `syscall` such as a format error, a non-Error) is returned unchanged.
 *
 * @param what - the operation, in a word: `write`, `read`, `sync`
 * @returns `e`, for `throw locateIoError(e, path, 'write', pos)`
 * @example
 * ```ts
 * try { await fh.write(buf, 0, buf.length, pos); } catch (e) { throw locateIoError(e, path, 'write', pos); }
 * ```
 */
export function locateIoError(e: unknown, path: string, what: string, offset?: number): unknown {
  if (!(e instanceof Error)) return e;
  const sys = e as NodeJS.ErrnoException;
  // A system error has a syscall; typed errors of ours have a string code too but no syscall.
  if (typeof sys.code !== 'string' || typeof sys.syscall !== 'string' || sys.path !== undefined) return e;
  sys.path = path;
  sys.message = `${what} ${path}${offset !== undefined ? ` at byte ${offset}` : ''}: ${sys.message}`;
  return e;
}

/**
 * Open a file to read (or, with `flags` `'r+'`, to update) that must not be a directory: the OS
 * opens a directory for reading and fails only at the first read, with an error that names no
 * file. This fails at once with `EISDIR` and the path, as Node's own open errors do.
 *
 * @example
 * ```ts
 * const fh = await openInput('/backup/d0.wdiff');
 * ```
 */
export async function openInput(path: string, flags: 'r' | 'r+' = 'r'): Promise<FileHandle> {
  const fh = await open(path, flags);
  const st = await fh.stat().catch(() => undefined);
  if (st?.isDirectory()) {
    await fh.close().catch(() => {});
    throw eisdir(path, 'open');
  }
  return fh;
}

/** The error the OS gives for a directory read as a file, shaped as Node's system errors. */
function eisdir(path: string, syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EISDIR: illegal operation on a directory, ${syscall} '${path}'`), { code: 'EISDIR', errno: -21, syscall, path });
}

/**
 * Whether `src` is this process's standard input: `'-'`, or the stream Node made of fd 0
 * (`process.stdin`, which carries its `fd`).
 */
export function isStdin(src: unknown): boolean {
  return src === '-' || (typeof src === 'object' && src !== null && (src as { fd?: unknown }).fd === 0);
}

/**
 * Refuse a directory as stdin (`cmd - < /tmp`) with `EISDIR` naming `<stdin>`. Node makes a
 * stream of stdin only when it is a file, a pipe, a socket or a terminal; anything else becomes a
 * stream that ends at once, so a directory would read as an empty input. Does nothing when `src`
 * is not stdin ({@link isStdin}) or fd 0 cannot be looked at (the read then reports it).
 *
 * @example
 * ```ts
 * await refuseDirectoryStdin(process.stdin);
 * ```
 */
export async function refuseDirectoryStdin(src: unknown): Promise<void> {
  if (!isStdin(src)) return;
  const dir = await new Promise<boolean>((resolve) => fstat(0, (e, st) => resolve(!e && st.isDirectory())));
  if (dir) throw eisdir('<stdin>', 'read');
}
