/**
 * Kasmina's prefetch coordinator (reference prototype-kasmina §16, rc1 plan WP-K4): publishes
 * `KernelPrefetchRequest`s for Urza's prefetch worker and settles each request's promise with
 * the answer, a CRITICAL `prefetch_timeout` past its deadline (one task on the shared
 * AsyncWorker each), or a cancellation. Departures from the prototype: every id is required
 * (dependency guard), and the promise replaces callbacks into the manager. Every coordinator
 * must see every answer, so its consumer group is its own (`createKasmina` names it after the
 * run).
 */
import { randomUUID } from 'node:crypto';
import { create, isMessage } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  buildTelemetryPacket,
  closeOnce,
  DependencyGuard,
  ErrorCode,
  errorMessage,
  EsperError,
  isEsperError,
  MAX_TIMER_MS,
  optionChecks,
  rejectionOutcome,
  SampleWindow,
  ServiceState,
  systemClock,
  type AsyncTaskHandle,
  type AsyncWorker,
  type Attributes,
  type Clock,
  type MetricInput,
  type TelemetrySink,
} from '../core/index.js';
import {
  BusMessageType,
  KernelArtifactErrorSchema,
  KernelArtifactReadySchema,
  KernelErrorCode,
  KernelPrefetchRequestSchema,
  TelemetryLevel,
  type KernelArtifactError,
  type KernelArtifactReady,
} from '../leyline/index.js';
import type { Bus, Delivery, Subscription } from '../oona/index.js';
import { KasminaEvent, KasminaMetric } from './names.js';

/** Outcome labels of `kasmina.prefetch.requests_total{status}`. */
export const PrefetchStatus = {
  REQUESTED: 'requested',
  READY: 'ready',
  ERROR: 'error',
  TIMEOUT: 'timeout',
  CANCELED: 'canceled',
  LATE: 'late',
} as const;

/** Union of {@link PrefetchStatus} values. */
export type PrefetchStatus = (typeof PrefetchStatus)[keyof typeof PrefetchStatus];

/** Options of {@link PrefetchCoordinator}. */
export interface PrefetchCoordinatorOptions {
  /** Bus the requests go out on and the answers come in on. Required; not closed here. */
  readonly bus: Bus;
  /** The shared worker the waits run on. Required; not closed here. */
  readonly worker: AsyncWorker;
  /** Receives prefetch events and dependency-guard violations. Required. */
  readonly telemetry: TelemetrySink;
  /**
   * Deadline of one request, in ms from `request()`, > 0 and ≤ `MAX_TIMER_MS`:
   * `settings.kasmina.prefetchTimeoutFactor × settings.kasmina.kernelLatencyBudgetMs`.
   */
  readonly timeoutMs: number;
  /** Time source of latencies and `issued_at`. @default systemClock */
  readonly clock?: Clock;
  /** Telemetry source subsystem. @default 'kasmina' */
  readonly source?: string;
  /** Consumer group the answers are read in; must be this coordinator's own. @default `kasmina-prefetch-<random>` */
  readonly consumerGroup?: string;
  /** Consumer name within the group. @default `kasmina-prefetch-<random>` */
  readonly consumerName?: string;
  /** Longest wait, in ms, for the subscription to stop in `close()` (≤ `MAX_TIMER_MS`). @default 5000 */
  readonly closeTimeoutMs?: number;
  /** Ready answers whose latency `stats()` and `metrics()` summarise (the last ones). @default 1024 */
  readonly latencyWindowSize?: number;
}

/** Defaults of {@link PrefetchCoordinatorOptions}. */
export const PREFETCH_COORDINATOR_DEFAULTS = Object.freeze({ source: 'kasmina', closeTimeoutMs: 5_000, latencyWindowSize: 1_024 });

/** What a request is for. Every field is required and non-blank. */
export interface PrefetchRequestInput {
  readonly seedId: string;
  readonly blueprintId: string;
  readonly trainingRunId: string;
}

/** An outstanding request. */
export interface PrefetchTicket {
  /** `prefetch-<uuid>`, the request id on the wire. */
  readonly requestId: string;
  /**
   * Resolves with Urza's `KernelArtifactReady`; rejects with `KASMINA_PREFETCH_FAILED`
   * (Urza's error, details `reason` and `code`), `KASMINA_PREFETCH_TIMEOUT` or
   * `KASMINA_PREFETCH_CANCELLED`. Marked handled: dropping it never raises an unhandled
   * rejection.
   */
  readonly result: Promise<KernelArtifactReady>;
}

/** Lifecycle of a {@link PrefetchCoordinator}. */
export type PrefetchCoordinatorState = 'created' | 'starting' | 'running' | 'closing' | 'closed';

/** Counters and gauges of a {@link PrefetchCoordinator}. */
export interface PrefetchStats {
  readonly requested: number;
  readonly ready: number;
  readonly error: number;
  readonly timeout: number;
  readonly canceled: number;
  /** Answers for unknown, timed-out or cancelled requests (ignored). */
  readonly late: number;
  /** Requests awaiting an answer now. */
  readonly inflight: number;
  /** Request → ready latency of the last ready answer, in ms (0 before one). */
  readonly lastLatencyMs: number;
  /** Median request → ready latency over the last `latencyWindowSize` ready answers, in ms (0 before one). */
  readonly p50LatencyMs: number;
  /** 95th percentile of the same window, in ms (0 before one). */
  readonly p95LatencyMs: number;
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

interface Outstanding {
  readonly requestId: string;
  readonly seedId: string;
  readonly blueprintId: string;
  readonly trainingRunId: string;
  readonly requestedAtMs: number;
  /** Feeds the worker task: settled by the answer, or on any other outcome. */
  readonly answer: Deferred<KernelArtifactReady>;
  /** The ticket's promise. */
  readonly result: Deferred<KernelArtifactReady>;
  handle: AsyncTaskHandle<KernelArtifactReady> | undefined;
  outcome: PrefetchStatus | undefined;
}

const noop = (): void => {};

/** Requests kernel prefetches from Urza and tracks them to an outcome. */
export class PrefetchCoordinator {
  readonly #bus: Bus;
  readonly #worker: AsyncWorker;
  readonly #telemetry: TelemetrySink;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #source: string;
  readonly #group: string;
  readonly #consumer: string;
  readonly #closeTimeoutMs: number;
  readonly #guard: DependencyGuard;
  readonly #outstanding = new Map<string, Outstanding>();
  readonly #state = new ServiceState<PrefetchCoordinatorState>('kasmina prefetch coordinator', 'created');
  readonly #close = closeOnce(() => this.#cancelAndUnsubscribe());
  #subscription: Subscription | undefined;
  readonly #counts: Record<PrefetchStatus, number> = { requested: 0, ready: 0, error: 0, timeout: 0, canceled: 0, late: 0 };
  readonly #latenciesMs: SampleWindow;
  #lastLatencyMs = 0;

  /** @throws EsperError `INVALID_ARGUMENT` naming a bad option. */
  constructor(options: PrefetchCoordinatorOptions) {
    const check = optionChecks('PrefetchCoordinator');
    const d = PREFETCH_COORDINATOR_DEFAULTS;
    const suffix = randomUUID().slice(0, 8);
    this.#bus = options.bus;
    this.#worker = options.worker;
    this.#telemetry = options.telemetry;
    this.#clock = options.clock ?? systemClock;
    this.#timeoutMs = check.number('timeoutMs', options.timeoutMs, { greaterThan: 0, max: MAX_TIMER_MS });
    this.#source = check.nonEmptyString('source', options.source ?? d.source);
    this.#group = check.nonEmptyString('consumerGroup', options.consumerGroup ?? `kasmina-prefetch-${suffix}`);
    this.#consumer = check.nonEmptyString('consumerName', options.consumerName ?? `kasmina-prefetch-${suffix}`);
    this.#closeTimeoutMs = check.number('closeTimeoutMs', options.closeTimeoutMs ?? d.closeTimeoutMs, { min: 0, max: MAX_TIMER_MS });
    this.#latenciesMs = new SampleWindow(check.integer('latencyWindowSize', options.latencyWindowSize ?? d.latencyWindowSize, { min: 1 }));
    this.#guard = new DependencyGuard({ subsystem: this.#source, sink: this.#telemetry, clock: this.#clock });
  }

  /** See {@link PrefetchCoordinatorState}. */
  get state(): PrefetchCoordinatorState {
    return this.#state.current;
  }

  /** The consumer group answers are read in. */
  get consumerGroup(): string {
    return this.#group;
  }

  /**
   * Subscribes to `KERNEL_PREFETCH_READY` and `KERNEL_PREFETCH_ERROR` and resolves once the
   * consumer group exists, so no answer to a later request is missed.
   * @throws EsperError `INVALID_STATE` unless `created`; the bus's error if subscribing fails.
   */
  async start(): Promise<void> {
    this.#state.transition('created', 'starting', 'start');
    const subscription = this.#bus.subscribe({
      group: this.#group,
      consumer: this.#consumer,
      types: [BusMessageType.KERNEL_PREFETCH_READY, BusMessageType.KERNEL_PREFETCH_ERROR],
      handler: (delivery) => this.#onDelivery(delivery),
    });
    this.#subscription = subscription;
    await subscription.ready;
    // close() may have run while the group was being created.
    if (this.#state.is('starting')) this.#state.set('running');
  }

  /**
   * Publishes a `KernelPrefetchRequest` and returns its ticket. The wait runs on the shared
   * worker with deadline `timeoutMs`.
   * @throws DependencyViolationError (CRITICAL `dependency_guard.violation` emitted) for a
   *   missing `trainingRunId`, `blueprintId` or `seedId`; EsperError `INVALID_STATE` unless
   *   running; the worker's `WORKER_QUEUE_FULL` / `WORKER_CLOSED` (nothing published).
   */
  request(input: PrefetchRequestInput): PrefetchTicket {
    const details = { seed_id: input.seedId, blueprint_id: input.blueprintId };
    this.#guard.requireId(input.trainingRunId, 'training_run_id', details);
    this.#guard.requireId(input.blueprintId, 'blueprint_id', details);
    this.#guard.requireId(input.seedId, 'seed_id', details);
    this.#state.require('running', 'request');
    const record: Outstanding = {
      requestId: `prefetch-${randomUUID()}`,
      seedId: input.seedId,
      blueprintId: input.blueprintId,
      trainingRunId: input.trainingRunId,
      requestedAtMs: this.#clock.monotonicMs(),
      answer: deferred(),
      result: deferred(),
      handle: undefined,
      outcome: undefined,
    };
    const answer = record.answer.promise;
    record.handle = this.#worker.submit((signal) => untilSettledOrAborted(answer, signal), {
      deadlineMs: this.#timeoutMs,
      name: record.requestId,
    });
    this.#outstanding.set(record.requestId, record);
    this.#counts.requested += 1;
    record.handle.result.then(noop, (error: unknown) => this.#onTaskRejected(record, error));
    this.#publish(record).catch((error: unknown) => {
      this.#fail(record, 'publish_failed', KernelErrorCode.UNSPECIFIED, error);
    });
    return { requestId: record.requestId, result: record.result.promise };
  }

  /** Cancels one outstanding request. Returns false if it is unknown or already settled. */
  cancel(requestId: string, reason = 'cancelled'): boolean {
    const record = this.#outstanding.get(requestId);
    if (record === undefined) return false;
    return this.#cancel(record, reason);
  }

  /** Cancels every outstanding request of `seedId` (seed retired). Returns how many. */
  cancelSeed(seedId: string, reason = 'seed_retired'): number {
    let cancelled = 0;
    for (const record of [...this.#outstanding.values()]) {
      if (record.seedId === seedId && this.#cancel(record, reason)) cancelled += 1;
    }
    return cancelled;
  }

  /** Cancels every outstanding request (registry reset, shutdown). Returns how many. */
  cancelAll(reason: string): number {
    let cancelled = 0;
    for (const record of [...this.#outstanding.values()]) {
      if (this.#cancel(record, reason)) cancelled += 1;
    }
    return cancelled;
  }

  /** Counters and gauges. */
  stats(): PrefetchStats {
    const [p50LatencyMs = 0, p95LatencyMs = 0] = this.#latenciesMs.quantiles([0.5, 0.95]);
    return { ...this.#counts, inflight: this.#outstanding.size, lastLatencyMs: this.#lastLatencyMs, p50LatencyMs, p95LatencyMs };
  }

  /**
   * `kasmina.prefetch.requests_total{status}` for every status, `kasmina.prefetch.inflight`,
   * and `kasmina.prefetch.latency_ms{stat=last|p50|p95}` once a request was ready.
   */
  metrics(): MetricInput[] {
    const stats = this.stats();
    const metrics: MetricInput[] = Object.values(PrefetchStatus).map((status) => ({
      name: KasminaMetric.PREFETCH_REQUESTS_TOTAL,
      value: this.#counts[status],
      unit: 'count',
      attributes: { status },
    }));
    metrics.push({ name: KasminaMetric.PREFETCH_INFLIGHT, value: stats.inflight, unit: 'count' });
    if (stats.ready > 0) {
      metrics.push(
        { name: KasminaMetric.PREFETCH_LATENCY_MS, value: stats.lastLatencyMs, unit: 'ms', attributes: { stat: 'last' } },
        { name: KasminaMetric.PREFETCH_LATENCY_MS, value: stats.p50LatencyMs, unit: 'ms', attributes: { stat: 'p50' } },
        { name: KasminaMetric.PREFETCH_LATENCY_MS, value: stats.p95LatencyMs, unit: 'ms', attributes: { stat: 'p95' } },
      );
    }
    return metrics;
  }

  /**
   * Cancels every outstanding request (`coordinator_closed`), then stops the subscription,
   * waiting at most `closeTimeoutMs`. Idempotent: every call returns the first call's promise.
   */
  close(): Promise<void> {
    return this.#close();
  }

  /** `await using` support: same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }

  async #cancelAndUnsubscribe(): Promise<void> {
    this.#state.set('closing');
    try {
      this.cancelAll('coordinator_closed');
      const subscription = this.#subscription;
      if (subscription !== undefined) await withBound(subscription.close(), this.#closeTimeoutMs);
    } finally {
      this.#state.set('closed');
    }
  }

  async #publish(record: Outstanding): Promise<void> {
    const message = create(KernelPrefetchRequestSchema, {
      requestId: record.requestId,
      blueprintId: record.blueprintId,
      trainingRunId: record.trainingRunId,
      seedId: record.seedId,
      issuedAt: timestampFromMs(this.#clock.wallMs()),
    });
    await this.#bus.publish(message, { trainingRunId: record.trainingRunId });
  }

  /** The bus handler. Never throws: a bad answer is counted, not retried. */
  #onDelivery(delivery: Delivery): void {
    const message = delivery.message;
    if (isMessage(message, KernelArtifactReadySchema)) this.#onReady(message);
    else if (isMessage(message, KernelArtifactErrorSchema)) this.#onError(message);
  }

  #onReady(message: KernelArtifactReady): void {
    const record = this.#live(message.requestId);
    if (record === undefined) return;
    if (message.blueprintId !== record.blueprintId) {
      this.#fail(
        record,
        `mismatched_answer: ready names blueprint ${message.blueprintId}, request asked for ${record.blueprintId}`,
        KernelErrorCode.UNSPECIFIED,
      );
      return;
    }
    const latencyMs = this.#clock.monotonicMs() - record.requestedAtMs;
    this.#lastLatencyMs = latencyMs;
    this.#latenciesMs.record(latencyMs);
    this.#finish(record, PrefetchStatus.READY);
    record.answer.resolve(message);
    record.result.resolve(message);
  }

  #onError(message: KernelArtifactError): void {
    const record = this.#live(message.requestId);
    if (record === undefined) return;
    this.#fail(record, message.reason, message.code);
  }

  /** The outstanding record an answer is for, or `undefined` (counted late). */
  #live(requestId: string): Outstanding | undefined {
    const record = this.#outstanding.get(requestId);
    const state = record?.handle?.state;
    // A settled task whose outcome is not recorded yet timed out or was cancelled this turn.
    if (record === undefined || record.outcome !== undefined || (state !== 'queued' && state !== 'running')) {
      this.#counts.late += 1;
      return undefined;
    }
    return record;
  }

  #onTaskRejected(record: Outstanding, error: unknown): void {
    if (record.outcome !== undefined) return;
    switch (rejectionOutcome(error)) {
      case 'timed_out':
        this.#timeout(record);
        break;
      case 'cancelled': {
        // Cancelled by the worker itself (its close()); our own cancels record first.
        const source = isEsperError(error) ? error.details['source'] : undefined;
        this.#cancelled(record, `worker_${String(source ?? 'cancelled')}`);
        break;
      }
      case 'failed':
        this.#fail(record, 'internal', KernelErrorCode.INTERNAL, error);
    }
  }

  #cancel(record: Outstanding, reason: string): boolean {
    if (record.outcome !== undefined) return false;
    record.handle?.cancel(reason);
    this.#cancelled(record, reason);
    return true;
  }

  #cancelled(record: Outstanding, reason: string): void {
    const error = new EsperError(
      ErrorCode.KASMINA_PREFETCH_CANCELLED,
      `prefetch ${record.requestId} of blueprint ${record.blueprintId} for seed ${record.seedId} cancelled: ${reason}`,
      { details: { ...this.#ids(record), reason } },
    );
    this.#settleFailure(record, PrefetchStatus.CANCELED, error, TelemetryLevel.INFO, KasminaEvent.PREFETCH_CANCELED, { reason });
  }

  #timeout(record: Outstanding): void {
    const error = new EsperError(
      ErrorCode.KASMINA_PREFETCH_TIMEOUT,
      `prefetch ${record.requestId} of blueprint ${record.blueprintId} for seed ${record.seedId} unanswered after ${this.#timeoutMs} ms`,
      { details: { ...this.#ids(record), timeout_ms: this.#timeoutMs } },
    );
    this.#settleFailure(record, PrefetchStatus.TIMEOUT, error, TelemetryLevel.CRITICAL, KasminaEvent.PREFETCH_TIMEOUT, {
      timeout_ms: this.#timeoutMs,
    });
  }

  #fail(record: Outstanding, reason: string, code: KernelErrorCode, cause?: unknown): void {
    if (record.outcome !== undefined) return;
    const codeName = KernelErrorCode[code] ?? String(code);
    const fullReason = cause === undefined ? reason : `${reason}: ${errorMessage(cause)}`;
    const error = new EsperError(
      ErrorCode.KASMINA_PREFETCH_FAILED,
      `prefetch ${record.requestId} of blueprint ${record.blueprintId} for seed ${record.seedId} failed (${codeName}): ${fullReason}`,
      { details: { ...this.#ids(record), reason: fullReason, code: codeName }, ...(cause === undefined ? {} : { cause }) },
    );
    this.#settleFailure(record, PrefetchStatus.ERROR, error, TelemetryLevel.WARNING, KasminaEvent.PREFETCH_ERROR, {
      reason: fullReason,
      code: codeName,
    });
  }

  #settleFailure(
    record: Outstanding,
    status: PrefetchStatus,
    error: EsperError,
    level: TelemetryLevel,
    event: string,
    attributes: Attributes,
  ): void {
    if (record.outcome !== undefined) return;
    this.#finish(record, status);
    this.#emit(record, event, level, attributes);
    // The worker task may still wait on the answer: release it.
    record.answer.reject(error);
    record.result.reject(error);
  }

  #finish(record: Outstanding, status: PrefetchStatus): void {
    record.outcome = status;
    this.#outstanding.delete(record.requestId);
    this.#counts[status] += 1;
  }

  #emit(record: Outstanding, description: string, level: TelemetryLevel, attributes: Attributes): void {
    this.#telemetry.emit(
      buildTelemetryPacket({
        source: this.#source,
        trainingRunId: record.trainingRunId,
        clock: this.#clock,
        events: [{ description, level, attributes: { ...this.#ids(record), ...attributes } }],
        metrics: [{ name: KasminaMetric.PREFETCH_INFLIGHT, value: this.#outstanding.size, unit: 'count' }],
      }),
    );
  }

  #ids(record: Outstanding): { request_id: string; seed_id: string; blueprint_id: string; training_run_id: string } {
    return {
      request_id: record.requestId,
      seed_id: record.seedId,
      blueprint_id: record.blueprintId,
      training_run_id: record.trainingRunId,
    };
  }
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Marked handled: a ticket nobody awaits must not become an unhandled rejection.
  promise.catch(noop);
  return { promise, resolve, reject };
}

/** `answer`, or a rejection with the signal's reason once the worker aborts the task. */
function untilSettledOrAborted<T>(answer: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    answer.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error as Error);
      },
    );
  });
}

/** Waits for `work` at most `timeoutMs`; a rejection of `work` is swallowed (close must finish). */
async function withBound(work: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
    timer.unref();
  });
  try {
    await Promise.race([work.catch(noop), bound]);
  } finally {
    clearTimeout(timer);
  }
}
