/**
 * Names that come from requests: volume ids and archive ids. They become folder and file names,
 * so only `[0-9A-Za-z-]{1,64}` is accepted (as the original), which rules out every path trick.
 *
 * @module
 */
import { InvalidNameError } from '../errors.ts';

const NAME = /^[0-9A-Za-z-]{1,64}$/;

/** Whether `s` is a valid volume or archive id. */
export function isValidName(s: unknown): s is string {
  return typeof s === 'string' && NAME.test(s);
}

/**
 * Check a volume id.
 *
 * @throws {@link InvalidNameError}
 * @example
 * validateVolId('vol0'); // ok
 * validateVolId('../etc'); // throws
 */
export function validateVolId(s: unknown): string {
  if (!isValidName(s)) throw new InvalidNameError('volume id', s);
  return s;
}

/** Check an archive id (a proxy's destination name). */
export function validateArchiveId(s: unknown): string {
  if (!isValidName(s)) throw new InvalidNameError('archive id', s);
  return s;
}
