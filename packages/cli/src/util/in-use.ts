/**
 * A guard for commands that rewrite a log device: a capture device serving from it (in any
 * process) holds its lock, and writing under it would corrupt the live log.
 *
 * @module
 */

/**
 * Throw an error with code `ERR_WALB_CAPTURE_BUSY` when a capture device has `path` open. Without
 * the native addon nothing can hold the lock, so nothing is checked.
 */
export async function refuseIfCaptured(path: string): Promise<void> {
  let busy = false;
  try {
    const { CaptureDevice } = await import('@walbjs/native-walb');
    busy = await CaptureDevice.inUse(path);
  } catch {
    return; // no addon here, or a path the command itself will report on
  }
  if (busy) throw Object.assign(new Error(`${path} is in use by a capture device (wdevc serve, or CaptureDevice in some process); stop it first`), { code: 'ERR_WALB_CAPTURE_BUSY' });
}
