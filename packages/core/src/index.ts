/**
 * `@walbjs/core`: the WalB backup system.
 *
 * This first slice is the archive's metadata model, compatible with walb-tools 1.0.19; volumes,
 * the storage / proxy / archive roles, the wire protocol and the controller come next (see the
 * package README).
 *
 * - Gid snapshots and diffs: {@link MetaSnap}, {@link MetaDiff}, {@link MetaState};
 *   {@link getRelation}, {@link applyDiff}, {@link canMerge}, {@link mergeDiff}, {@link contains},
 *   {@link beginApplying} / {@link endApplying}; text forms {@link formatMetaSnap},
 *   {@link formatMetaDiff}, {@link formatMetaState} and parsers.
 * - wdiff file names: {@link createDiffFileName}, {@link parseDiffFileName}.
 * - The chain of an archive: {@link getApplicableDiffList}, {@link getRestorableList},
 *   {@link getLatestSnapshot}.
 * - Errors: {@link WalbCoreError} and its subclasses.
 *
 * @example
 * import { parseDiffFileName, getRestorableList, metaState, metaSnap } from '@walbjs/core';
 * const diffs = names.map((n) => parseDiffFileName(n));
 * for (const r of getRestorableList(metaState(metaSnap(0n)), diffs)) console.log(r.gid, r.isExplicit);
 *
 * @packageDocumentation
 */
export * from './errors.ts';
export * from './meta.ts';
export * from './diff-file-name.ts';
export * from './restorable.ts';
export * from './protocol/frame.ts';
export * from './protocol/message.ts';
export * from './protocol/connection.ts';
