/**
 * The durable field-report store over core's `RecordLog` (spec 00 §2 "Durable field
 * reports"; reference §12.1, §12.5): a report log of FieldReport protobuf records (what
 * Simic reads) and a status log of JSON delivery records — `{"v":1,"id","s":"retry" |
 * "published" | "dropped","a":attempts,"n":nextAttemptAtMs,"e":lastError}`, the last
 * record of an id wins. A status is written only after its report is durable; retention
 * (when the owner calls `retain`) rewrites the report log, then compacts the status log.
 */
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { z } from 'zod';
import {
  buildTelemetryPacket,
  closeOnce,
  decodeMessage,
  encodeMessage,
  ErrorCode,
  EsperError,
  isEsperError,
  optionChecks,
  RecordLog,
  RecordLogFsync,
  runCleanup,
  systemClock,
  validateExtraMetrics,
  type Clock,
  type RecordLogRecovery,
  type TelemetrySink,
  parsePersistedJson,
} from '../core/index.js';
import { FieldReportSchema, HealthStatus, TelemetryLevel, type FieldReport } from '../leyline/index.js';
import { FieldReportEvent, TAMIYO_TELEMETRY_SOURCE } from './names.js';

/** Default retention of field reports: 24 h (reference §12.1). */
export const FIELD_REPORT_RETENTION_MS = 24 * 60 * 60 * 1000;

/** Options of {@link FieldReportStore.open}. */
export interface FieldReportStoreOptions {
  /**
   * Durability of appends; both resolve only once durable. `group` batches concurrent
   * appends into one write + fdatasync.
   * @default 'group'
   */
  readonly fsync?: RecordLogFsync;
  /** Group commit wait for companions, in ms (see `RecordLogOptions`). @default 5 */
  readonly groupCommitMaxDelayMs?: number;
  /** Group commit batch bound, in records. @default 256 */
  readonly groupCommitMaxRecords?: number;
  /** Path of the status log. @default `${path}.status` */
  readonly statusPath?: string;
  /** Receives WARNING `field_report_store_recovered` when a torn tail was cut at open. */
  readonly telemetry?: TelemetrySink;
  /** Stamps telemetry. @default systemClock */
  readonly clock?: Clock;
}

/** Delivery state of a stored report. */
export const FieldReportDelivery = {
  /** Not yet published (possibly with failed attempts and a scheduled retry). */
  PENDING: 'pending',
  /** Acknowledged by the bus. */
  PUBLISHED: 'published',
  /** Given up after its last retry; kept in the log until retention, never retried. */
  DROPPED: 'dropped',
} as const;

/** One of {@link FieldReportDelivery}. */
export type FieldReportDelivery = (typeof FieldReportDelivery)[keyof typeof FieldReportDelivery];

/** Delivery status of a stored report. */
export interface FieldReportStatus {
  readonly delivery: FieldReportDelivery;
  /** Failed publish attempts so far. */
  readonly attempts: number;
  /** Wall ms before which no new attempt is due (0 = due now). */
  readonly nextAttemptAtMs: number;
  /** Message of the last failure ('' when none). */
  readonly lastError: string;
}

/** A report not yet published, with its retry state. */
export interface PendingFieldReport {
  readonly report: FieldReport;
  readonly status: FieldReportStatus;
}

/** What opening the store found and repaired. */
export interface FieldReportStoreRecovery {
  /** Reports recovered from the report log. */
  readonly reports: number;
  /** Status records read (orphans included). */
  readonly statusRecords: number;
  /** Status records of reports no longer in the report log (ignored). */
  readonly orphanStatusRecords: number;
  /** Records repeating an id already read (ignored; never written by this store). */
  readonly duplicateReports: number;
  /** The report log's recovery (torn tail cut, temp file removed, ...). */
  readonly reportLog: RecordLogRecovery;
  /** The status log's recovery. */
  readonly statusLog: RecordLogRecovery;
}

/** Result of {@link FieldReportStore.retain}. */
export interface FieldReportRetention {
  readonly kept: number;
  readonly dropped: number;
  /** Status records left after compaction. */
  readonly statusRecords: number;
}

/** Counters of a store. */
export interface FieldReportStoreStats {
  readonly reports: number;
  readonly pending: number;
  readonly published: number;
  readonly dropped: number;
  readonly appends: number;
  readonly commits: number;
  readonly retentionRuns: number;
}

interface Entry {
  readonly report: FieldReport;
  status: FieldReportStatus;
}

const PENDING_STATUS: FieldReportStatus = Object.freeze({
  delivery: FieldReportDelivery.PENDING,
  attempts: 0,
  nextAttemptAtMs: 0,
  lastError: '',
});

/** Bytes of `lastError` kept in a status record. */
const MAX_ERROR_CHARS = 512;

type StatusKind = 'retry' | 'published' | 'dropped';

interface StatusRecord {
  readonly id: string;
  readonly kind: StatusKind;
  readonly attempts: number;
  readonly nextAttemptAtMs: number;
  readonly lastError: string;
}

const encoder = new TextEncoder();

function encodeStatus(record: StatusRecord): Uint8Array {
  return encoder.encode(
    JSON.stringify({ v: 1, id: record.id, s: record.kind, a: record.attempts, n: record.nextAttemptAtMs, e: record.lastError }),
  );
}

const StatusRecordSchema = z.strictObject({
  v: z.literal(1),
  id: z.string().min(1),
  s: z.enum(['retry', 'published', 'dropped']),
  a: z.number().int().min(0),
  n: z.number().finite(),
  e: z.string(),
});

function decodeStatus(payload: Uint8Array, logPath: string, offset: number): StatusRecord {
  const r = parsePersistedJson(StatusRecordSchema, payload, {
    what: `field-report status log ${logPath}, record at offset ${offset},`,
    details: { path: logPath, offset },
    code: ErrorCode.TAMIYO_FIELD_REPORT_INVALID,
  });
  return { id: r.id, kind: r.s, attempts: r.a, nextAttemptAtMs: r.n, lastError: r.e };
}

function statusOf(record: StatusRecord): FieldReportStatus {
  const delivery =
    record.kind === 'published'
      ? FieldReportDelivery.PUBLISHED
      : record.kind === 'dropped'
        ? FieldReportDelivery.DROPPED
        : FieldReportDelivery.PENDING;
  return Object.freeze({
    delivery,
    attempts: record.attempts,
    nextAttemptAtMs: record.nextAttemptAtMs,
    lastError: record.lastError,
  });
}

function invalid(message: string, details: Readonly<Record<string, string | number | boolean>>): EsperError {
  return new EsperError(ErrorCode.TAMIYO_FIELD_REPORT_INVALID, message, { details });
}

/**
 * Field reports on disk (see module doc). Open with {@link FieldReportStore.open}; every
 * method is safe to call concurrently (each log orders its operations).
 */
export class FieldReportStore implements AsyncDisposable {
  readonly #reportLog: RecordLog;
  readonly #statusLog: RecordLog;
  readonly #recovery: FieldReportStoreRecovery;
  /** Reports in log order, keyed by id (Map keeps insertion order). */
  #entries = new Map<string, Entry>();
  /** Ids accepted by `append` whose record is not yet durable. */
  readonly #inFlight = new Set<string>();
  #retentionRuns = 0;
  readonly #close = closeOnce(() => runCleanup('field report store', [() => this.#reportLog.close(), () => this.#statusLog.close()]));

  private constructor(reportLog: RecordLog, statusLog: RecordLog, entries: Map<string, Entry>, recovery: FieldReportStoreRecovery) {
    this.#reportLog = reportLog;
    this.#statusLog = statusLog;
    this.#entries = entries;
    this.#recovery = recovery;
  }

  /**
   * Opens (creating if missing) the store at `path` and recovers both logs: torn tails are
   * cut and counted in {@link FieldReportStore.recovery} (with a WARNING
   * `field_report_store_recovered` when `telemetry` is given); every surviving report is
   * loaded with its last status.
   *
   * @throws EsperError RECORD_LOG_CORRUPT (a damaged record with valid ones after it),
   *   TAMIYO_FIELD_REPORT_INVALID (a record that is not a FieldReport / status record),
   *   RECORD_LOG_IO_FAILED, INVALID_ARGUMENT (options).
   */
  static async open(path: string, options: FieldReportStoreOptions = {}): Promise<FieldReportStore> {
    const logOptions = {
      fsync: options.fsync ?? RecordLogFsync.GROUP,
      ...(options.groupCommitMaxDelayMs === undefined ? {} : { groupCommitMaxDelayMs: options.groupCommitMaxDelayMs }),
      ...(options.groupCommitMaxRecords === undefined ? {} : { groupCommitMaxRecords: options.groupCommitMaxRecords }),
    };
    const reportLog = await RecordLog.open(path, logOptions);
    let statusLog: RecordLog | undefined;
    try {
      statusLog = await RecordLog.open(options.statusPath ?? `${path}.status`, logOptions);
      const entries = new Map<string, Entry>();
      let duplicateReports = 0;
      for await (const record of reportLog.records()) {
        const report = decodeReport(record.payload, reportLog.path, record.offset);
        if (entries.has(report.reportId)) {
          duplicateReports += 1;
          continue;
        }
        entries.set(report.reportId, { report, status: PENDING_STATUS });
      }
      let statusRecords = 0;
      let orphanStatusRecords = 0;
      for await (const record of statusLog.records()) {
        const status = decodeStatus(record.payload, statusLog.path, record.offset);
        statusRecords += 1;
        const entry = entries.get(status.id);
        if (entry === undefined) orphanStatusRecords += 1;
        else entry.status = statusOf(status);
      }
      const recovery: FieldReportStoreRecovery = {
        reports: entries.size,
        statusRecords,
        orphanStatusRecords,
        duplicateReports,
        reportLog: reportLog.recovery,
        statusLog: statusLog.recovery,
      };
      const store = new FieldReportStore(reportLog, statusLog, entries, recovery);
      store.#reportRecovery(options);
      return store;
    } catch (error) {
      // The open failure is what the caller needs to see; a close failure after it is not.
      const opened = statusLog;
      await runCleanup('field report store', [() => reportLog.close(), opened !== undefined && (() => opened.close())]).catch(
        () => undefined,
      );
      throw error;
    }
  }

  #reportRecovery(options: FieldReportStoreOptions): void {
    const { reportLog, statusLog } = this.#recovery;
    if (options.telemetry === undefined) return;
    if (reportLog.truncatedTailBytes === 0 && statusLog.truncatedTailBytes === 0) return;
    options.telemetry.emit(
      buildTelemetryPacket({
        source: TAMIYO_TELEMETRY_SOURCE,
        clock: options.clock ?? systemClock,
        level: TelemetryLevel.WARNING,
        events: [
          {
            description: FieldReportEvent.STORE_RECOVERED,
            level: TelemetryLevel.WARNING,
            attributes: {
              path: this.#reportLog.path,
              reports: this.#recovery.reports,
              truncated_tail_bytes: reportLog.truncatedTailBytes,
              status_truncated_tail_bytes: statusLog.truncatedTailBytes,
            },
          },
        ],
        health: { status: HealthStatus.DEGRADED, summary: FieldReportEvent.STORE_RECOVERED },
      }),
    );
  }

  /** Absolute path of the report log. */
  get path(): string {
    return this.#reportLog.path;
  }

  /** Absolute path of the status log. */
  get statusPath(): string {
    return this.#statusLog.path;
  }

  /** What opening found and repaired. */
  get recovery(): FieldReportStoreRecovery {
    return this.#recovery;
  }

  /**
   * Appends `report` and resolves once it is durable (one fdatasync, or the group commit
   * it joined). The report must carry its final, unique id.
   *
   * @throws EsperError (as a rejection) TAMIYO_FIELD_REPORT_INVALID for a missing
   *   report/command/run id, an id already stored or being appended, or bad extra metrics;
   *   CONTRACT_BOUND_EXCEEDED / MESSAGE_TOO_LARGE from encoding; the RecordLog's errors.
   */
  async append(report: FieldReport): Promise<void> {
    for (const [field, value] of [
      ['report_id', report.reportId],
      ['command_id', report.commandId],
      ['training_run_id', report.trainingRunId],
    ] as const) {
      if (value.length === 0) throw invalid(`a field report needs a ${field}`, { field, reportId: report.reportId });
    }
    const id = report.reportId;
    if (this.#entries.has(id) || this.#inFlight.has(id)) {
      throw invalid(`field report ${id} is already stored; report ids must be unique`, { field: 'report_id', reportId: id });
    }
    validateExtraMetrics(report.extraMetrics, 'field_report.extra_metrics');
    const payload = encodeMessage(FieldReportSchema, report);
    this.#inFlight.add(id);
    try {
      await this.#reportLog.append(payload);
      this.#entries.set(id, { report, status: PENDING_STATUS });
    } finally {
      this.#inFlight.delete(id);
    }
  }

  /** Every stored report (recovered, then appended), in log order. */
  reports(): FieldReport[] {
    return [...this.#entries.values()].map((e) => e.report);
  }

  /** The stored report with `reportId`, if any. */
  get(reportId: string): FieldReport | undefined {
    return this.#entries.get(reportId)?.report;
  }

  /** Delivery status of `reportId`, if stored. */
  status(reportId: string): FieldReportStatus | undefined {
    return this.#entries.get(reportId)?.status;
  }

  /** Reports neither published nor dropped, in log order, with their retry state. */
  pending(): PendingFieldReport[] {
    const out: PendingFieldReport[] = [];
    for (const entry of this.#entries.values()) {
      if (entry.status.delivery === FieldReportDelivery.PENDING) out.push({ report: entry.report, status: entry.status });
    }
    return out;
  }

  /**
   * Records durably that `reportId` was published. Idempotent for a published report.
   * @throws EsperError TAMIYO_FIELD_REPORT_INVALID for an unknown id; INVALID_STATE for a
   *   dropped one.
   */
  async markPublished(reportId: string): Promise<void> {
    const entry = this.#entryFor(reportId);
    if (entry.status.delivery === FieldReportDelivery.PUBLISHED) return;
    this.#checkNotDropped(entry, reportId, 'published');
    await this.#writeStatus(entry, { id: reportId, kind: 'published', attempts: entry.status.attempts, nextAttemptAtMs: 0, lastError: '' });
  }

  /**
   * Records durably a failed attempt and when the next one is due.
   * @throws EsperError TAMIYO_FIELD_REPORT_INVALID for an unknown id; INVALID_STATE when
   *   the report is already published or dropped; INVALID_ARGUMENT for bad numbers.
   */
  async markRetry(
    reportId: string,
    retry: { readonly attempts: number; readonly nextAttemptAtMs: number; readonly lastError: string },
  ): Promise<void> {
    const entry = this.#entryFor(reportId);
    this.#checkPending(entry, reportId, 'retried');
    const check = optionChecks('FieldReportStore.markRetry');
    check.integer('attempts', retry.attempts, { min: 0 });
    check.number('nextAttemptAtMs', retry.nextAttemptAtMs);
    await this.#writeStatus(entry, {
      id: reportId,
      kind: 'retry',
      attempts: retry.attempts,
      nextAttemptAtMs: retry.nextAttemptAtMs,
      lastError: retry.lastError.slice(0, MAX_ERROR_CHARS),
    });
  }

  /**
   * Records durably that `reportId` was given up; it is never pending again, across
   * restarts, and stays in the report log until retention.
   * @throws EsperError TAMIYO_FIELD_REPORT_INVALID for an unknown id; INVALID_STATE when
   *   already published. Idempotent for a dropped report.
   */
  async markDropped(reportId: string, drop: { readonly attempts: number; readonly lastError: string }): Promise<void> {
    const entry = this.#entryFor(reportId);
    if (entry.status.delivery === FieldReportDelivery.DROPPED) return;
    this.#checkPending(entry, reportId, 'dropped');
    optionChecks('FieldReportStore.markDropped').integer('attempts', drop.attempts, { min: 0 });
    await this.#writeStatus(entry, {
      id: reportId,
      kind: 'dropped',
      attempts: drop.attempts,
      nextAttemptAtMs: 0,
      lastError: drop.lastError.slice(0, MAX_ERROR_CHARS),
    });
  }

  /**
   * Retention by atomic rewrite: drops reports whose `issued_at` is older than
   * `nowMs − retentionMs` (a report without `issued_at` is kept), then compacts the status
   * log to the last record of each kept report. Appends may continue meanwhile.
   *
   * @throws EsperError INVALID_ARGUMENT for non-finite or negative numbers; the
   *   RecordLog's errors.
   */
  async retain(nowMs: number, retentionMs: number = FIELD_REPORT_RETENTION_MS): Promise<FieldReportRetention> {
    const check = optionChecks('FieldReportStore.retain');
    check.number('nowMs', nowMs);
    check.nonNegative('retentionMs', retentionMs);
    const cutoffMs = nowMs - retentionMs;
    const droppedIds = new Set<string>();
    const result = await this.#reportLog.rewrite((payload, offset) => {
      const report = decodeReport(payload, this.#reportLog.path, offset);
      if (report.issuedAt === undefined || timestampMs(report.issuedAt) >= cutoffMs) return true;
      droppedIds.add(report.reportId);
      return false;
    });
    for (const id of droppedIds) this.#entries.delete(id);

    // Keep, per retained report, only its last status record: find the offsets first.
    const lastOffset = new Map<string, number>();
    for await (const record of this.#statusLog.records()) {
      const status = decodeStatus(record.payload, this.#statusLog.path, record.offset);
      lastOffset.set(status.id, record.offset);
    }
    const compacted = await this.#statusLog.rewrite((payload, offset) => {
      const status = decodeStatus(payload, this.#statusLog.path, offset);
      // A status appended after the scan (offset beyond it) is kept: it is the newest.
      const last = lastOffset.get(status.id);
      const newest = last === undefined || last <= offset;
      return newest && (this.#entries.has(status.id) || this.#inFlight.has(status.id));
    });
    this.#retentionRuns += 1;
    return { kept: result.kept, dropped: result.dropped, statusRecords: compacted.kept };
  }

  /** Counters since open. */
  stats(): FieldReportStoreStats {
    let pending = 0;
    let published = 0;
    let dropped = 0;
    for (const { status } of this.#entries.values()) {
      if (status.delivery === FieldReportDelivery.PENDING) pending += 1;
      else if (status.delivery === FieldReportDelivery.PUBLISHED) published += 1;
      else dropped += 1;
    }
    const log = this.#reportLog.stats();
    return {
      reports: this.#entries.size,
      pending,
      published,
      dropped,
      appends: log.appends,
      commits: log.commits,
      retentionRuns: this.#retentionRuns,
    };
  }

  /**
   * Flushes pending appends and closes both logs. Idempotent (returns the first call's
   * promise); both logs are closed even if one fails (`runCleanup`: one failure is thrown
   * as is, two as an `AggregateError`).
   */
  close(): Promise<void> {
    return this.#close();
  }

  /** Same as {@link FieldReportStore.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }

  #entryFor(reportId: string): Entry {
    const entry = this.#entries.get(reportId);
    if (entry === undefined) {
      throw invalid(`field report ${JSON.stringify(reportId)} is not in the store`, { field: 'report_id', reportId });
    }
    return entry;
  }

  #checkNotDropped(entry: Entry, reportId: string, as: string): void {
    if (entry.status.delivery === FieldReportDelivery.DROPPED) {
      throw new EsperError(ErrorCode.INVALID_STATE, `field report ${reportId} was dropped and cannot be marked ${as}`, {
        details: { reportId, delivery: entry.status.delivery },
      });
    }
  }

  #checkPending(entry: Entry, reportId: string, as: string): void {
    if (entry.status.delivery !== FieldReportDelivery.PENDING) {
      throw new EsperError(ErrorCode.INVALID_STATE, `field report ${reportId} is ${entry.status.delivery} and cannot be ${as}`, {
        details: { reportId, delivery: entry.status.delivery },
      });
    }
  }

  async #writeStatus(entry: Entry, record: StatusRecord): Promise<void> {
    await this.#statusLog.append(encodeStatus(record));
    entry.status = statusOf(record);
  }
}

function decodeReport(payload: Uint8Array, logPath: string, offset: number): FieldReport {
  try {
    return decodeMessage(FieldReportSchema, payload);
  } catch (error) {
    if (!isEsperError(error)) throw error;
    throw new EsperError(
      ErrorCode.TAMIYO_FIELD_REPORT_INVALID,
      `field-report log ${logPath}: record at offset ${offset} is not a valid FieldReport (${error.code})`,
      { cause: error, details: { path: logPath, offset, code: error.code } },
    );
  }
}
