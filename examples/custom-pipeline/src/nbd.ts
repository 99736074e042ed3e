/**
 * The NBD clients the pipeline drives: `qemu-io` writes to the device, `nbdcopy` reads all of it.
 *
 * Both run as child processes through the asynchronous `execFile`, never `execFileSync`: the NBD
 * server is the capture device in *this* process, answered from its event loop and worker threads.
 * A synchronous call would block the loop the server needs, and client and server would wait for
 * each other forever.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The NBD URI of a unix socket export (the capture device has one unnamed export). */
export function unixUri(socketPath: string): string {
  return `nbd+unix:///?socket=${socketPath}`;
}

/** Run one `qemu-io` process that executes `commands` (each a qemu-io command line) in order. */
export async function qemuIo(uri: string, commands: readonly string[]): Promise<void> {
  if (commands.length === 0) return;
  try {
    await run('qemu-io', ['-f', 'raw', ...commands.flatMap((c) => ['-c', c]), uri], { timeout: 120_000 });
  } catch (e) {
    // qemu-io reports a failed command on stdout ("write failed: No space left on device") and
    // goes on with the next one; the exit code only says that something failed.
    const x = e as { stdout?: string; stderr?: string; message: string };
    const why = `${x.stdout ?? ''}\n${x.stderr ?? ''}`.split('\n').filter((l) => /fail|error/i.test(l));
    throw new Error(`qemu-io: ${why.length ? [...new Set(why)].join('; ') : x.message}`, { cause: e });
  }
}

/** Copy the whole device to `outPath` with `nbdcopy` (what a reader of the device sees now). */
export async function nbdcopy(uri: string, outPath: string): Promise<void> {
  await run('nbdcopy', [uri, outPath], { timeout: 120_000 });
}

/** Whether a program is on the PATH (checked before starting, for a clear error). */
export async function hasProgram(name: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${name}`]);
    return true;
  } catch {
    return false;
  }
}
