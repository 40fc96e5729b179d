/** Options of the {@link RecordLog}, their defaults and their one resolver. */
import { DEFAULT_MAX_FRAME_PAYLOAD_BYTES, resolveMaxPayloadBytes } from './frame.js';
import { optionChecks } from './options.js';

/** How appends reach stable storage. */
export const RecordLogFsync = {
  /** One write + `fdatasync` per record: simplest, slowest. */
  PER_RECORD: 'per-record',
  /** Concurrent appends share one write + `fdatasync` (group commit). */
  GROUP: 'group',
} as const;

/** One of {@link RecordLogFsync}. */
export type RecordLogFsync = (typeof RecordLogFsync)[keyof typeof RecordLogFsync];

/** Options of {@link RecordLog.open}. */
export interface RecordLogOptions {
  /**
   * Durability mode of appends. Both resolve an append only once it is on stable storage;
   * `group` trades up to `groupCommitMaxDelayMs` of latency for far fewer fsyncs.
   * @default 'per-record'
   */
  readonly fsync?: RecordLogFsync;
  /**
   * Group commit: longest an append waits for companions before its batch is written,
   * in milliseconds, when no write is in flight. Appends that arrive while a batch is
   * being synced are written right after it, without waiting.
   * @default 5
   */
  readonly groupCommitMaxDelayMs?: number;
  /**
   * Group commit: most records written and synced together; a batch that fills up is
   * written at once.
   * @default 256
   */
  readonly groupCommitMaxRecords?: number;
  /**
   * Largest payload of one record, in bytes; bigger appends fail with RECORD_TOO_LARGE,
   * and a record on disk declaring more stops the open with the same code.
   * @default 16 MiB
   */
  readonly maxRecordBytes?: number;
}

/** {@link RecordLogOptions} with every default applied. */
export type ResolvedRecordLogOptions = Required<RecordLogOptions>;

/** Default values of {@link RecordLogOptions}. */
export const RECORD_LOG_DEFAULTS: ResolvedRecordLogOptions = Object.freeze({
  fsync: RecordLogFsync.PER_RECORD,
  groupCommitMaxDelayMs: 5,
  groupCommitMaxRecords: 256,
  maxRecordBytes: DEFAULT_MAX_FRAME_PAYLOAD_BYTES,
});

const check = optionChecks('RecordLogOptions');

/**
 * Merges `options` over {@link RECORD_LOG_DEFAULTS} and validates every field, naming the
 * bad one (INVALID_ARGUMENT). The log is a building block shared by several subsystems, so
 * it reads no environment variables; each owner maps its own settings onto these options.
 */
export function resolveRecordLogOptions(options: RecordLogOptions = {}): ResolvedRecordLogOptions {
  const d = RECORD_LOG_DEFAULTS;
  const maxRecordBytes = options.maxRecordBytes ?? d.maxRecordBytes;
  resolveMaxPayloadBytes({ maxPayloadBytes: maxRecordBytes }, 'RecordLogOptions', 'maxRecordBytes');
  return Object.freeze({
    fsync: check.oneOf('fsync', options.fsync ?? d.fsync, Object.values(RecordLogFsync)),
    groupCommitMaxDelayMs: check.nonNegative('groupCommitMaxDelayMs', options.groupCommitMaxDelayMs ?? d.groupCommitMaxDelayMs),
    groupCommitMaxRecords: check.integer('groupCommitMaxRecords', options.groupCommitMaxRecords ?? d.groupCommitMaxRecords, { min: 1 }),
    maxRecordBytes,
  });
}
