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
  | 'ERR_WALB_META_PARSE'
  /** A protocol frame or message is malformed, too large, or out of place. */
  | 'ERR_WALB_PROTOCOL'
  /** A frame's payload does not match its checksum. */
  | 'ERR_WALB_PROTOCOL_CHECKSUM'
  /** A request got no reply in time, or the peer went silent. */
  | 'ERR_WALB_TIMEOUT'
  /** The connection closed with requests outstanding. */
  | 'ERR_WALB_CLOSED'
  /** The peer answered a request with an error (its code and message are carried along). */
  | 'ERR_WALB_REMOTE'
  /** An uploader gave up on its stream part way. */
  | 'ERR_WALB_UPLOAD_ABORTED'
  /** A request's parameters are missing, of the wrong type, or out of range. */
  | 'ERR_WALB_BAD_REQUEST'
  /** A command this daemon does not know. */
  | 'ERR_WALB_UNKNOWN_COMMAND'
  /** A volume or archive name that is not `[0-9A-Za-z-]{1,64}`. */
  | 'ERR_WALB_INVALID_NAME'
  /** A command not allowed in the volume's current state (or while an action runs). */
  | 'ERR_WALB_STATE'
  /** A volume, archive destination, snapshot or file that does not exist. */
  | 'ERR_WALB_NOT_FOUND'
  /** A transfer refused for a reason the sender acts on (`too-old-diff`, `too-new-diff`, `different-uuid`, …). */
  | 'ERR_WALB_REFUSED'
  /** Stored state on disk is corrupt or inconsistent. */
  | 'ERR_WALB_STORE'
  /** Another daemon (alive) works on the same base folder. */
  | 'ERR_WALB_DIR_IN_USE';

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

/** A protocol frame or message is malformed, too large, or out of place. */
export class ProtocolError extends WalbCoreError {
  /** Byte offset in the stream where the frame starts, when known. */
  readonly offset?: number;
  /**
   * @param detail - what is wrong
   * @param offset - where in the stream
   * @param code - a more specific code
   */
  constructor(detail: string, offset?: number, code: WalbCoreErrorCode = 'ERR_WALB_PROTOCOL') {
    super(code, offset === undefined ? detail : `${detail} (at stream offset ${offset})`);
    this.offset = offset;
  }
}

/**
 * A well-framed reply whose result is not what its command answers: a field missing or of the
 * wrong type (a string where a number or bigint belongs, an object where a list does), a number
 * out of range. The request fails with it; the connection is not at fault and stays open.
 *
 * @example
 * try { await controller.getRestorable(ax, 'vol0'); }
 * catch (e) { if (e instanceof MalformedReplyError) console.error(e.command, e.field); }
 */
export class MalformedReplyError extends ProtocolError {
  /** The command whose reply it is (`get restorable`, `status`, `snapshot`, …). */
  readonly command: string;
  /** Where in the reply, from `result` (`result[2].gid`, `result.volumes[0].state`). */
  readonly field: string;
  /**
   * @param command - the command the reply answers
   * @param field - the path of the offending value
   * @param detail - what was expected and what came
   */
  constructor(command: string, field: string, detail: string) {
    super(`malformed reply to ${command}: ${field}: ${detail}`);
    this.command = command;
    this.field = field;
  }
}

/** A request was not answered in time, or the connection went silent. */
export class TimeoutError extends WalbCoreError {
  constructor(detail: string) {
    super('ERR_WALB_TIMEOUT', detail);
  }
}

/** The connection closed while requests were outstanding. */
export class ConnectionClosedError extends WalbCoreError {
  constructor(detail: string) {
    super('ERR_WALB_CLOSED', detail);
  }
}

/** The peer answered with an error: its code and message. */
export class RemoteError extends WalbCoreError {
  /** The code the peer sent (for example `ERR_WALB_META_INVALID`). */
  readonly remoteCode: string;
  /**
   * @param remoteCode - the peer's code
   * @param message - the peer's message
   */
  constructor(remoteCode: string, message: string) {
    super('ERR_WALB_REMOTE', `${remoteCode}: ${message}`);
    this.remoteCode = remoteCode;
  }
}

/** A request's parameters are missing, of the wrong type, or out of range. */
export class BadRequestError extends WalbCoreError {
  constructor(detail: string) {
    super('ERR_WALB_BAD_REQUEST', detail);
  }
}

/** A command the daemon does not know. */
export class UnknownCommandError extends WalbCoreError {
  constructor(command: string, known: readonly string[]) {
    super('ERR_WALB_UNKNOWN_COMMAND', `unknown command ${JSON.stringify(command.slice(0, 80))}; known: ${known.join(', ')}`);
  }
}

/** A volume or archive name that is not `[0-9A-Za-z-]{1,64}` (so never a path). */
export class InvalidNameError extends WalbCoreError {
  constructor(what: string, name: unknown) {
    super('ERR_WALB_INVALID_NAME', `${what} ${JSON.stringify(String(name).slice(0, 80))} is not a valid name: 1 to 64 of [0-9A-Za-z-]`);
  }
}

/** A command not allowed in the volume's current state, or while another action runs. */
export class StateError extends WalbCoreError {
  /** The volume's state when the command came. */
  readonly state: string;
  constructor(volId: string, state: string, detail: string) {
    super('ERR_WALB_STATE', `volume ${volId} is ${state}: ${detail}`);
    this.state = state;
  }
}

/** Something named by a request does not exist. */
export class NotFoundError extends WalbCoreError {
  constructor(detail: string) {
    super('ERR_WALB_NOT_FOUND', detail);
  }
}

/**
 * A transfer refused for a reason the sender acts on, named as the original names them:
 * `too-old-diff`, `too-new-diff`, `different-uuid`, `stopped`, `syncing`, `archive-not-found`,
 * `smaller-lv-size`, `not-started`.
 */
export class RefusedError extends WalbCoreError {
  /** The reason word. */
  readonly reason: string;
  constructor(reason: string, detail: string) {
    super('ERR_WALB_REFUSED', `${reason}: ${detail}`);
    this.reason = reason;
  }
}

/** Another daemon, still running, holds the base folder (its lock file names it). */
export class BaseDirInUseError extends WalbCoreError {
  constructor(detail: string) {
    super('ERR_WALB_DIR_IN_USE', detail);
  }
}

/** State kept on disk is corrupt or inconsistent. */
export class StoreError extends WalbCoreError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('ERR_WALB_STORE', detail, options);
  }
}
