/**
 * `@walbjs/core`: the WalB backup system.
 *
 * The archive's metadata model (compatible with walb-tools 1.0.19), the framed protocol, the
 * storage / proxy / archive daemons ({@link StorageDaemon}, {@link ProxyDaemon},
 * {@link ArchiveDaemon}) and the {@link Controller} that drives them.
 *
 * - Gid snapshots and diffs: {@link MetaSnap}, {@link MetaDiff}, {@link MetaState};
 *   {@link getRelation}, {@link applyDiff}, {@link canMerge}, {@link mergeDiff}, {@link contains},
 *   {@link beginApplying} / {@link endApplying}; text forms {@link formatMetaSnap},
 *   {@link formatMetaDiff}, {@link formatMetaState} and parsers.
 * - wdiff file names: {@link createDiffFileName}, {@link parseDiffFileName}.
 * - The chain of an archive: {@link getApplicableDiffList}, {@link getRestorableList},
 *   {@link getLatestSnapshot}.
 * - Errors: {@link WalbCoreError} and its subclasses.
 * - Replies: {@link checkReply} checks a daemon's answer against {@link REPLY_CHECKS}.
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
export * from './protocol/replies.ts';
export * from './daemon/store.ts';
export * from './daemon/names.ts';
export * from './daemon/params.ts';
export * from './daemon/logger.ts';
export * from './daemon/semaphore.ts';
export * from './daemon/daemon.ts';
export * from './archive/archive-volume.ts';
export * from './archive/archive-daemon.ts';
export * from './proxy/proxy-daemon.ts';
export * from './storage/wdev.ts';
export * from './storage/storage-daemon.ts';
export * from './controller.ts';
