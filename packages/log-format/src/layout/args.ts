/**
 * The check of the numbers the public decoders and encoders take besides their bytes. A DataView reads at
 * `NaN` or `1.5` as at 0 or 1, and past its ends throws a bare RangeError; a block size that is no
 * block size makes the record count of a pack negative. Each is a typed error naming the argument
 * instead.
 *
 * @module
 */
import { isValidPbs } from '../constants.ts';
import { ValueOutOfRangeError } from '../errors.ts';

/**
 * @internal Throw {@link ValueOutOfRangeError} naming `off` unless it is a byte offset (a safe
 * integer from 0), or naming `pbs` unless that, when given, is a physical block size of the format.
 */
export function checkLayoutArgs(off: number, pbs?: number): void {
  if (!Number.isSafeInteger(off) || off < 0) {
    throw new ValueOutOfRangeError('off', `${String(off)} is not a byte offset (an integer from 0)`);
  }
  if (pbs !== undefined && !isValidPbs(pbs)) {
    throw new ValueOutOfRangeError('pbs', `${String(pbs)} is not a physical block size (a power of two from 512 to 4096)`);
  }
}
