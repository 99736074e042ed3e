/**
 * The error vocabulary of `@walbjs/core`. Every rule of the snapshot algebra that an input breaks,
 * and every malformed name or text, is reported as one of these classes with a machine-readable
 * code.
 *
 * @module
 */

/** Machine-readable codes of {@link WalbCoreError}. */
export type WalbCoreErrorCode =
  /** A snapshot, diff or state breaks a constraint of its own (gid order, progress, ranges). */
  | 'ERR_WALB_META_INVALID'
  /** A diff was applied to a snapshot it is not applicable to. */
  | 'ERR_WALB_NOT_APPLICABLE'
  /** Two diffs were merged that cannot be merged. */
  | 'ERR_WALB_NOT_MERGEABLE'
  /** A wdiff file name does not have the required form. */
  | 'ERR_WALB_DIFF_FILE_NAME'
  /** A text form (`|b,e|`, `<…>`) does not parse. */
  | 'ERR_WALB_META_PARSE';

/**
 * Base class of every error this package throws on bad input.
 *
 * @example
 * try { parseDiffFileName(name); }
 * catch (e) { if (e instanceof WalbCoreError) console.error(e.code, e.message); }
 */
export class WalbCoreError extends Error {
  /** Machine-readable code. */
  readonly code: WalbCoreErrorCode;
  /**
   * @param code - machine-readable code
   * @param message - what is wrong
   * @param options - the underlying error, when there is one
   */
  constructor(code: WalbCoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A snapshot, diff or state breaks one of its constraints. */
export class InvalidMetaError extends WalbCoreError {
  /** The field or constraint concerned (`gidB`, `timestamp`, `progress`, …). */
  readonly field: string;
  /**
   * @param field - the field or constraint
   * @param detail - what is wrong
   */
  constructor(field: string, detail: string) {
    super('ERR_WALB_META_INVALID', `${field}: ${detail}`);
    this.field = field;
  }
}

/** {@link applyDiff} was asked to apply a diff that is not applicable to the snapshot. */
export class NotApplicableError extends WalbCoreError {
  /** The relation found instead of `APPLICABLE`. */
  readonly relation: string;
  /**
   * @param detail - the snapshot and diff, formatted
   * @param relation - the relation found
   */
  constructor(detail: string, relation: string) {
    super('ERR_WALB_NOT_APPLICABLE', `${detail}: not applicable (${relation})`);
    this.relation = relation;
  }
}

/** {@link mergeDiff} was asked to merge two diffs for which {@link canMerge} is false. */
export class NotMergeableError extends WalbCoreError {
  /**
   * @param detail - the two diffs, formatted, and the reason
   */
  constructor(detail: string) {
    super('ERR_WALB_NOT_MERGEABLE', detail);
  }
}

/** A wdiff file name does not have the form of reference §3.2. */
export class DiffFileNameError extends WalbCoreError {
  /** The rejected name. */
  readonly fileName: string;
  /**
   * @param fileName - the rejected name
   * @param detail - what is wrong with it
   * @param cause - the underlying error, when there is one
   */
  constructor(fileName: string, detail: string, cause?: unknown) {
    super('ERR_WALB_DIFF_FILE_NAME', `wdiff file name ${JSON.stringify(fileName)}: ${detail}`, cause === undefined ? undefined : { cause });
    this.fileName = fileName;
  }
}

/** A text form of a snapshot or state does not parse. */
export class MetaParseError extends WalbCoreError {
  /** The text that failed to parse. */
  readonly input: string;
  /**
   * @param input - the text
   * @param detail - what is wrong with it
   */
  constructor(input: string, detail: string) {
    super('ERR_WALB_META_PARSE', `${detail}: ${JSON.stringify(input)}`);
    this.input = input;
  }
}
