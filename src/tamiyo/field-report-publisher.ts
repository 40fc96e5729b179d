/**
 * Publishes stored field reports to Oona with retries and exponential backoff (reference
 * prototype-tamiyo-simic §12.5), recording every outcome durably in the store: published,
 * a scheduled retry, or dropped. A pass attempts the reports whose retry is due (by the
 * injected clock) and returns when the next one will be, so the owner schedules passes —
 * no sleeps here. Retry and drop rules: docs/architecture.md (Tamiyo).
 */
import {
  buildTelemetryPacket,
  describeError,
  ErrorCode,
  EsperError,
  isEsperError,
  optionChecks,
  systemClock,
  type Clock,
  type MetricInput,
  type TelemetrySink,
} from '../core/index.js';
import { FieldReportOutcome, HealthStatus, TelemetryLevel, type FieldReport } from '../leyline/index.js';
import type { Bus } from '../oona/index.js';
import type { FieldReportStore } from './field-report-store.js';
import { FieldReportEvent, FieldReportMetric, TAMIYO_TELEMETRY_SOURCE } from './names.js';

/** The slice of the store a publisher needs. */
export type FieldReportOutbox = Pick<FieldReportStore, 'pending' | 'markPublished' | 'markRetry' | 'markDropped'>;

/** Options of {@link FieldReportPublisher}. */
export interface FieldReportPublisherOptions {
  readonly store: FieldReportOutbox;
  readonly bus: Pick<Bus, 'publish'>;
  /** Receives retry, drop and summary packets. */
  readonly telemetry: TelemetrySink;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Wait before the first retry, in ms. @default 2000 */
  readonly retryBaseMs?: number;
  /** Factor applied to the wait per further failure. @default 2 */
  readonly retryMultiplier?: number;
  /** Retries after the first failed attempt; one more failure drops the report. @default 3 */
  readonly maxRetries?: number;
  /** Deadline of one publish, in ms. @default the bus's `publishDeadlineMs` */
  readonly publishDeadlineMs?: number;
  /** Run id stamped on telemetry packets. @default '' */
  readonly trainingRunId?: string;
}

/** Defaults of {@link FieldReportPublisherOptions}. */
export const FIELD_REPORT_PUBLISHER_DEFAULTS = Object.freeze({
  retryBaseMs: 2_000,
  retryMultiplier: 2,
  maxRetries: 3,
});

/** {@link FieldReportPublisherOptions} with defaults applied. */
export interface ResolvedFieldReportPublisherOptions {
  readonly store: FieldReportOutbox;
  readonly bus: Pick<Bus, 'publish'>;
  readonly telemetry: TelemetrySink;
  readonly clock: Clock;
  readonly retryBaseMs: number;
  readonly retryMultiplier: number;
  readonly maxRetries: number;
  readonly publishDeadlineMs: number | undefined;
  readonly trainingRunId: string;
}

/** Applies defaults and validates eagerly, naming the bad field (INVALID_ARGUMENT). */
export function resolveFieldReportPublisherOptions(options: FieldReportPublisherOptions): ResolvedFieldReportPublisherOptions {
  const check = optionChecks('FieldReportPublisherOptions');
  const retryBaseMs = check.nonNegative('retryBaseMs', options.retryBaseMs ?? FIELD_REPORT_PUBLISHER_DEFAULTS.retryBaseMs);
  const retryMultiplier = check.number('retryMultiplier', options.retryMultiplier ?? FIELD_REPORT_PUBLISHER_DEFAULTS.retryMultiplier, {
    min: 1,
  });
  const maxRetries = check.integer('maxRetries', options.maxRetries ?? FIELD_REPORT_PUBLISHER_DEFAULTS.maxRetries, { min: 0 });
  const deadline = options.publishDeadlineMs === undefined ? undefined : check.nonNegative('publishDeadlineMs', options.publishDeadlineMs);
  return Object.freeze({
    store: options.store,
    bus: options.bus,
    telemetry: options.telemetry,
    clock: options.clock ?? systemClock,
    retryBaseMs,
    retryMultiplier,
    maxRetries,
    publishDeadlineMs: deadline,
    trainingRunId: options.trainingRunId ?? '',
  });
}

/** Result of one {@link FieldReportPublisher.publishPending} pass. */
export interface PublishPassResult {
  readonly published: number;
  /** Failures that scheduled a retry. */
  readonly retried: number;
  readonly dropped: number;
  /** Pending reports not attempted: retry not yet due, or behind a transient failure. */
  readonly deferred: number;
  /** Wall ms at which the earliest remaining report is due, or null when none remain. */
  readonly nextAttemptAtMs: number | null;
}

/** Counters of a publisher (since construction) plus the store's pending count. */
export interface FieldReportPublisherMetrics {
  readonly publishedTotal: number;
  readonly retriesTotal: number;
  readonly droppedTotal: number;
  readonly pendingTotal: number;
  /** Published reports per outcome name (SUCCESS, NEUTRAL, REGRESSION, ABORTED, ...). */
  readonly publishedByOutcome: Readonly<Record<string, number>>;
  /**
   * The same as metric points: `tamiyo.field_reports.{published,retries,dropped,pending}_total`
   * and `tamiyo.field_reports.total` per `outcome` attribute (Nissa's
   * `esper_field_reports_total`).
   */
  readonly counters: readonly MetricInput[];
}

/** Errors worth retrying: the bus could not take the message now. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  ErrorCode.OONA_PUBLISH_TIMEOUT,
  ErrorCode.OONA_STORE_UNAVAILABLE,
  ErrorCode.OONA_STORE_FAILED,
]);

function isTransient(error: unknown): boolean {
  // Unknown (non-Esper) errors come from below the adapter edge: treat them as transient.
  return !isEsperError(error) || TRANSIENT_CODES.has(error.code);
}

/** Publishes pending field reports (see module doc). */
export class FieldReportPublisher {
  readonly options: ResolvedFieldReportPublisherOptions;
  #publishedTotal = 0;
  #retriesTotal = 0;
  #droppedTotal = 0;
  readonly #byOutcome = new Map<string, number>();
  /** The pass in flight; passes run one after another. */
  #tail: Promise<unknown> = Promise.resolve();

  constructor(options: FieldReportPublisherOptions) {
    this.options = resolveFieldReportPublisherOptions(options);
  }

  /**
   * One pass over the store's pending reports, in log order: each report whose retry is
   * due is published; success marks it published; a transient failure schedules a retry
   * (or drops it past `maxRetries`) and ends the pass; a terminal failure drops it. A
   * summary packet is emitted when anything was published, retried or dropped. Calls made
   * during a pass run after it.
   *
   * @throws EsperError TAMIYO_PUBLISH_FAILED when the bus is closed (nothing is counted
   *   against the report); the store's errors when recording an outcome fails; the abort
   *   reason when `signal` aborts.
   */
  publishPending(options: { readonly signal?: AbortSignal } = {}): Promise<PublishPassResult> {
    const pass = this.#tail.then(() => this.#pass(options.signal));
    this.#tail = pass.catch(() => undefined);
    return pass;
  }

  /** Wall ms at which the earliest pending report is due, or null when none is pending. */
  nextAttemptAtMs(): number | null {
    let next: number | null = null;
    for (const { status } of this.options.store.pending()) {
      if (next === null || status.nextAttemptAtMs < next) next = status.nextAttemptAtMs;
    }
    return next;
  }

  /** Counters and their metric points. */
  metrics(): FieldReportPublisherMetrics {
    const pendingTotal = this.options.store.pending().length;
    const publishedByOutcome = Object.fromEntries(this.#byOutcome);
    const counters: MetricInput[] = [
      { name: FieldReportMetric.PUBLISHED_TOTAL, value: this.#publishedTotal, unit: 'count' },
      { name: FieldReportMetric.RETRIES_TOTAL, value: this.#retriesTotal, unit: 'count' },
      { name: FieldReportMetric.DROPPED_TOTAL, value: this.#droppedTotal, unit: 'count' },
      { name: FieldReportMetric.PENDING_TOTAL, value: pendingTotal, unit: 'count' },
      ...[...this.#byOutcome].map(([outcome, value]) => ({
        name: FieldReportMetric.TOTAL,
        value,
        unit: 'count',
        attributes: { outcome },
      })),
    ];
    return {
      publishedTotal: this.#publishedTotal,
      retriesTotal: this.#retriesTotal,
      droppedTotal: this.#droppedTotal,
      pendingTotal,
      publishedByOutcome,
      counters,
    };
  }

  async #pass(signal: AbortSignal | undefined): Promise<PublishPassResult> {
    const { store, clock } = this.options;
    let published = 0;
    let retried = 0;
    let dropped = 0;
    let deferred = 0;
    let halted = false;
    for (const { report, status } of store.pending()) {
      signal?.throwIfAborted();
      if (halted || status.nextAttemptAtMs > clock.wallMs()) {
        deferred += 1;
        continue;
      }
      let failure: { readonly error: unknown } | undefined;
      try {
        await this.options.bus.publish(report, {
          ...(this.options.publishDeadlineMs === undefined ? {} : { deadlineMs: this.options.publishDeadlineMs }),
          ...(signal === undefined ? {} : { signal }),
        });
      } catch (error) {
        failure = { error };
      }
      if (failure === undefined) {
        await store.markPublished(report.reportId);
        published += 1;
        this.#countPublished(report);
        continue;
      }
      signal?.throwIfAborted();
      if (isEsperError(failure.error, ErrorCode.OONA_CLOSED)) {
        throw new EsperError(ErrorCode.TAMIYO_PUBLISH_FAILED, 'cannot publish field reports: the bus is closed', {
          cause: failure.error,
          details: { reportId: report.reportId },
        });
      }
      const attempts = status.attempts + 1;
      const lastError = describeError(failure.error);
      const transient = isTransient(failure.error);
      if (transient && attempts <= this.options.maxRetries) {
        const delayMs = this.options.retryBaseMs * this.options.retryMultiplier ** (attempts - 1);
        await store.markRetry(report.reportId, { attempts, nextAttemptAtMs: clock.wallMs() + delayMs, lastError });
        retried += 1;
        this.#retriesTotal += 1;
        this.#emitRetry(report, attempts, delayMs, lastError);
      } else {
        await store.markDropped(report.reportId, { attempts, lastError });
        dropped += 1;
        this.#droppedTotal += 1;
        this.#emitDropped(report, attempts, transient ? 'retries_exhausted' : 'terminal_error', lastError);
      }
      if (transient) halted = true;
    }
    if (published + retried + dropped > 0) this.#emitSummary();
    return { published, retried, dropped, deferred, nextAttemptAtMs: this.nextAttemptAtMs() };
  }

  #countPublished(report: FieldReport): void {
    this.#publishedTotal += 1;
    const outcome = FieldReportOutcome[report.outcome] ?? String(report.outcome);
    this.#byOutcome.set(outcome, (this.#byOutcome.get(outcome) ?? 0) + 1);
  }

  #emitRetry(report: FieldReport, attempts: number, delayMs: number, lastError: string): void {
    this.#emitEvent(FieldReportEvent.RETRY, TelemetryLevel.WARNING, {
      report_id: report.reportId,
      retry_count: attempts,
      delay_ms: delayMs,
      error: lastError,
    });
  }

  #emitDropped(report: FieldReport, attempts: number, reason: string, lastError: string): void {
    this.#emitEvent(FieldReportEvent.DROPPED, TelemetryLevel.ERROR, {
      report_id: report.reportId,
      retry_count: attempts,
      reason,
      error: lastError,
    });
  }

  #emitEvent(description: FieldReportEvent, level: TelemetryLevel, attributes: Record<string, string | number>): void {
    this.options.telemetry.emit(
      buildTelemetryPacket({
        source: TAMIYO_TELEMETRY_SOURCE,
        trainingRunId: this.options.trainingRunId,
        clock: this.options.clock,
        level,
        events: [{ description, level, attributes }],
        health: { status: HealthStatus.DEGRADED, summary: description },
      }),
    );
  }

  #emitSummary(): void {
    this.options.telemetry.emit(
      buildTelemetryPacket({
        source: TAMIYO_TELEMETRY_SOURCE,
        trainingRunId: this.options.trainingRunId,
        clock: this.options.clock,
        metrics: this.metrics().counters,
        health: { status: HealthStatus.HEALTHY, summary: FieldReportEvent.PUBLISH_SUMMARY },
      }),
    );
  }
}
