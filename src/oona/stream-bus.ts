/**
 * `StreamBus`: Oona's {@link Bus} over a {@link StreamStore}, assembled from its parts —
 * `Publisher` (routing, budget, back-pressure), `ConsumerLoop` (one per subscription, plus
 * the reply channel), the breakers and the metrics. The rules are in the Oona section of
 * `docs/architecture.md`.
 *
 * Time: `clock` stamps envelopes and drives the token bucket, the kernel guard, the
 * breakers, latency samples and the retention cut-off. Waits (publish deadlines, backoff,
 * blocking reads, reclaim cadence, the depth cache's age) run on real timers, so a
 * `FakeClock` freezes the budget and the breakers without freezing the loops.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import {
  buildTelemetryPacket,
  CircuitBreaker,
  closeOnce,
  ErrorCode,
  EsperError,
  isEsperError,
  MAX_TIMER_MS,
  optionChecks,
  runCleanup,
  SampleWindow,
  ServiceState,
  type Attributes,
  type MetricInput,
  type OptionChecks,
} from '../core/index.js';
import { BusMessageType, CircuitBreakerState, schemaForBusMessageType, TelemetryLevel, type BusMessage } from '../leyline/index.js';
import { HmacSigner } from '../security/index.js';
import type { Bus, BusMetrics, Delivery, PublishOptions, PublishReceipt, RequestOptions, SubscribeOptions, Subscription } from './bus.js';
import { ConsumerLoop, type ConsumerHost, type ConsumerStats } from './consumer-loop.js';
import type { OpenedEntry } from './envelope.js';
import { busMetricPoints, breakerStateName, LATENCY_WINDOW_SAMPLES, latencySummary } from './bus-metrics.js';
import { Publisher } from './publisher.js';
import { OONA_SOURCE, OonaEvent, type DeadLetterReason } from './names.js';
import { resolveStreamBusOptions, type ResolvedStreamBusOptions, type StreamBusOptions } from './options.js';
import { compareEntryIds } from './stream-store.js';
import { familyStream, LogicalStream } from './streams.js';
import { raceAbort } from './waits.js';

/** Lifecycle of a {@link StreamBus}: `running` until `close()`, then `closing`, `closed`. */
export type StreamBusState = 'running' | 'closing' | 'closed';

const subscribeCheck: OptionChecks = optionChecks('subscribe');
const requestCheck: OptionChecks = optionChecks('request');

/** Consumer name of the bus's reply channel within its own `reply-<uuid>` group. */
const REPLY_CONSUMER = 'reply';

interface PendingReply {
  readonly replyType: BusMessageType;
  /** The request's own message id, so a request of the reply type never answers itself. */
  readonly requestMessageId: string;
  readonly resolve: (delivery: Delivery) => void;
}

/** A {@link Bus} over a {@link StreamStore} (see module doc). */
export class StreamBus implements Bus {
  /** The resolved options (secrets live only in the key ring, which redacts itself). */
  readonly options: ResolvedStreamBusOptions;
  readonly #signer: HmacSigner;
  readonly #logical: ReadonlyMap<string, LogicalStream>;
  readonly #publishBreaker: CircuitBreaker;
  readonly #consumeBreaker: CircuitBreaker;
  readonly #publisher: Publisher;
  readonly #handleLatency = new SampleWindow(LATENCY_WINDOW_SAMPLES);
  readonly #loops = new Set<ConsumerLoop>();
  readonly #pendingReplies = new Map<string, PendingReply>();
  readonly #closing = new AbortController();
  readonly #deadLetterByReason = new Map<string, number>();
  readonly #host: ConsumerHost;
  #reply: { readonly group: string; readonly loop: ConsumerLoop } | undefined;
  readonly #state = new ServiceState<StreamBusState>('stream bus', 'running');
  readonly #close = closeOnce(() => this.#closeSteps());
  #handledTotal = 0;
  #handlerFailures = 0;
  #duplicatesDropped = 0;
  #retriesTotal = 0;
  #deadLetterTotal = 0;
  #reclaimedTotal = 0;

  /** @throws EsperError `INVALID_ARGUMENT` naming the bad option. */
  constructor(options: StreamBusOptions) {
    this.options = resolveStreamBusOptions(options);
    // Every waiting publish and request listens on it (and stops listening when done), so
    // the listener count follows the concurrency; Node's leak warning at 10 does not apply.
    setMaxListeners(0, this.#closing.signal);
    const { clock, keyRing, streams, breakerFailureThreshold, breakerOpenMs } = this.options;
    this.#signer = new HmacSigner(keyRing, { clock });
    this.#logical = new Map(Object.entries(streams).map(([logical, physical]) => [physical, logical as LogicalStream]));
    const breaker = (name: string): CircuitBreaker =>
      new CircuitBreaker({
        name,
        failureThreshold: breakerFailureThreshold,
        openTimeoutMs: breakerOpenMs,
        clock,
        // Only an unreachable store counts; back-pressure and bad arguments do not.
        isFailure: (error) => isEsperError(error, ErrorCode.OONA_STORE_UNAVAILABLE),
        onStateChange: (change) => {
          if (change.to === CircuitBreakerState.CIRCUIT_STATE_OPEN) {
            this.#emit(OonaEvent.BREAKER_OPEN, TelemetryLevel.WARNING, {
              breaker: name,
              reason: change.reason,
              last_failure: change.snapshot.lastFailureReason ?? '',
            });
          }
        },
      });
    this.#publishBreaker = breaker('oona.publish');
    this.#consumeBreaker = breaker('oona.consume');
    this.#publisher = new Publisher(this.options, this.#signer, this.#publishBreaker, this.#closing.signal);
    const stats: ConsumerStats = {
      handled: (latencyMs) => {
        this.#handledTotal += 1;
        this.#handleLatency.record(Math.max(0, latencyMs));
      },
      handlerFailed: () => void (this.#handlerFailures += 1),
      duplicateDropped: () => void (this.#duplicatesDropped += 1),
      retried: () => void (this.#retriesTotal += 1),
      deadLettered: (reason) => this.#countDeadLetter(reason),
      reclaimed: () => void (this.#reclaimedTotal += 1),
    };
    this.#host = {
      options: this.options,
      signer: this.#signer,
      breaker: this.#consumeBreaker,
      stats,
      logicalOf: (physical) => this.#logicalOf(physical),
      emit: (description, level, attributes) => this.#emit(description, level, attributes),
    };
    this.#emit(OonaEvent.BUS_STARTED, TelemetryLevel.INFO, startAttributes(this.options));
  }

  /** `running`, `closing` (after `close()` was called) or `closed`. */
  get state(): StreamBusState {
    return this.#state.current;
  }

  /**
   * Publishes one message (see the module doc for routing, shedding and waiting).
   *
   * @throws EsperError `OONA_CLOSED` after `close()`; `OONA_INVALID_MESSAGE` for a message
   *   that is not a bus message; `INVALID_ARGUMENT` for bad options; the codec's errors
   *   for a message over a contract bound; `OONA_PUBLISH_TIMEOUT` when the target stream
   *   stayed backlogged until the deadline; `OONA_STORE_UNAVAILABLE` when the store stayed
   *   unreachable (or the publish breaker open) until the deadline; the signal's reason
   *   when aborted.
   */
  async publish(message: BusMessage, options: PublishOptions = {}): Promise<PublishReceipt> {
    this.#assertRunning('publish');
    return this.#publisher.publish(message, options);
  }

  /**
   * Starts a consumer loop for `options.group` / `options.consumer` over the family streams
   * of `options.types` and the emergency stream.
   *
   * @throws EsperError `OONA_CLOSED` after `close()`; `INVALID_ARGUMENT` for bad options.
   */
  subscribe(options: SubscribeOptions): Subscription {
    this.#assertRunning('subscribe');
    const { group, consumer, types, handler } = options;
    subscribeCheck.nonEmptyString('group', group);
    subscribeCheck.nonEmptyString('consumer', consumer);
    if (!Array.isArray(types) || types.length === 0) subscribeCheck.fail('types', 'a non-empty list of message types', types);
    for (const type of types) {
      if (schemaForBusMessageType(type) === undefined) subscribeCheck.fail('types', 'a list of known message types', type);
    }
    subscribeCheck.func('handler', handler);
    const from = subscribeCheck.oneOf('from', options.from ?? 'new', ['new', 'all'] as const);
    const accepted = new Set<BusMessageType>(types);
    const logical = new Set<LogicalStream>(types.map(familyStream));
    logical.delete(LogicalStream.EMERGENCY);
    const streams = [
      this.options.streams.emergency,
      ...Object.values(LogicalStream)
        .filter((s) => logical.has(s))
        .map((s) => this.options.streams[s]),
    ];
    const loop = this.#startLoop({
      group,
      consumer,
      streams,
      start: from === 'all' ? '0' : '$',
      accepts: (entry) => accepted.has(entry.type),
      handler,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    const close = (): Promise<void> => loop.close();
    return Object.freeze({ ready: loop.ready, close, [Symbol.asyncDispose]: close });
  }

  /**
   * Publishes `message` with a fresh correlation id and resolves with the first message of
   * `replyType` carrying it. Replies are read by one reply channel per bus, a consumer
   * group of its own (`reply-<uuid>`, from new messages) on the reply type's family stream
   * and the emergency stream, created before the request is published.
   *
   * @throws EsperError `OONA_REQUEST_TIMEOUT` after `timeoutMs` (counted from the call);
   *   `OONA_CLOSED` when the bus closes first; anything `publish` throws.
   */
  async request(message: BusMessage, options: RequestOptions): Promise<Delivery> {
    this.#assertRunning('request');
    const { replyType, timeoutMs } = options;
    if (schemaForBusMessageType(replyType) === undefined) requestCheck.fail('replyType', 'a known message type', replyType);
    requestCheck.number('timeoutMs', timeoutMs, { min: 0, max: MAX_TIMER_MS });
    const timeout = new AbortController();
    const timer = setTimeout(() => {
      timeout.abort(
        new EsperError(ErrorCode.OONA_REQUEST_TIMEOUT, `no ${BusMessageType[replyType] ?? replyType} reply within ${timeoutMs} ms`, {
          details: { replyType: BusMessageType[replyType] ?? replyType, timeoutMs },
        }),
      );
    }, timeoutMs);
    const signals = [options.signal, timeout.signal, this.#closing.signal];
    const correlationId = randomUUID();
    const requestMessageId = randomUUID();
    try {
      await raceAbort(this.#replyChannel(this.options.streams[familyStream(replyType)]), signals);
      const reply = new Promise<Delivery>((resolve) => {
        this.#pendingReplies.set(correlationId, { replyType, requestMessageId, resolve });
      });
      const { signal: _signal, replyType: _replyType, timeoutMs: _timeoutMs, ...publishOptions } = options;
      await this.#publisher.publish(
        message,
        { ...publishOptions, correlationId },
        { messageId: requestMessageId, neverShed: true, signals: [timeout.signal] },
      );
      return await raceAbort(reply, signals);
    } finally {
      clearTimeout(timer);
      this.#pendingReplies.delete(correlationId);
    }
  }

  /** Publishes `message` with the correlation id and training run id of `to`. */
  reply(to: Delivery, message: BusMessage, options: Omit<PublishOptions, 'correlationId'> = {}): Promise<PublishReceipt> {
    return this.publish(message, { trainingRunId: to.trainingRunId, ...options, correlationId: to.correlationId });
  }

  /** Counters and gauges; depths are the cached readings. */
  metrics(): BusMetrics {
    const depth: Partial<Record<LogicalStream, number>> = {};
    for (const [physical, value] of this.#publisher.depths()) depth[this.#logicalOf(physical)] = value;
    return {
      ...this.#publisher.counts(),
      handledTotal: this.#handledTotal,
      handlerFailures: this.#handlerFailures,
      duplicatesDropped: this.#duplicatesDropped,
      retriesTotal: this.#retriesTotal,
      deadLetterTotal: this.#deadLetterTotal,
      deadLetterByReason: Object.fromEntries(this.#deadLetterByReason),
      reclaimedTotal: this.#reclaimedTotal,
      depth,
      publishLatency: this.#publisher.latency(),
      handleLatency: latencySummary(this.#handleLatency),
      emergencyTokens: this.#publisher.emergencyTokens,
      publishBreaker: breakerStateName(this.#publishBreaker.state),
      consumeBreaker: breakerStateName(this.#consumeBreaker.state),
    };
  }

  /** {@link metrics} as metric points named by {@link OonaMetric}, with units, for Nissa. */
  metricPoints(): MetricInput[] {
    return busMetricPoints(this.metrics());
  }

  /**
   * Trims every stream except dead-letter below `min(now − retentionMs, each group's
   * oldest pending entry, each lagging group's last-delivered entry)`, so nothing a group
   * has not received or acknowledged is ever trimmed. Returns trimmed counts.
   *
   * @throws EsperError `OONA_CLOSED` after `close()`; the store's errors.
   */
  async housekeeping(): Promise<Partial<Record<LogicalStream, number>>> {
    this.#assertRunning('run housekeeping');
    const { store, streams, clock, retentionMs } = this.options;
    const cutoff = `${Math.max(0, Math.floor(clock.wallMs() - retentionMs))}-0`;
    const trimmed: Partial<Record<LogicalStream, number>> = {};
    for (const logical of Object.values(LogicalStream)) {
      if (logical === LogicalStream.DEAD_LETTER) continue;
      const physical = streams[logical];
      let minId = cutoff;
      for (const group of await store.groups(physical)) {
        if (group.oldestPendingId !== undefined) minId = lowerId(minId, group.oldestPendingId);
        // Entries after lastDeliveredId are undelivered; keep from it on (one extra entry
        // kept costs nothing and stays right when `lag` is unknown).
        if (group.lag === undefined || group.lag > 0) minId = lowerId(minId, group.lastDeliveredId);
      }
      trimmed[logical] = await store.trimBefore(physical, minId);
      this.#publisher.forgetDepth(physical);
    }
    return trimmed;
  }

  /**
   * Rejects new calls, aborts waiting publishes and requests (`OONA_CLOSED`), stops every
   * subscription (handlers in flight finish), destroys the reply group, and closes the
   * store when the bus owns it. Every step runs even if one fails; the first failure (or
   * an AggregateError of several) is thrown after. Idempotent: returns the first call's
   * promise.
   */
  close(): Promise<void> {
    return this.#close();
  }

  /** `await using` support: same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }

  async #closeSteps(): Promise<void> {
    this.#state.set('closing');
    this.#closing.abort(new EsperError(ErrorCode.OONA_CLOSED, 'the bus is closed'));
    const { store, ownsStore } = this.options;
    try {
      await runCleanup('stream bus', [
        () => Promise.all([...this.#loops].map((loop) => loop.close())),
        () => this.#destroyReplyGroup(),
        ownsStore && (() => store.close()),
      ]);
    } finally {
      this.#state.set('closed');
    }
  }

  /** Destroys the reply channel's group on every stream it reads (once its loop stopped). */
  #destroyReplyGroup(): Promise<void> {
    const reply = this.#reply;
    if (reply === undefined) return Promise.resolve();
    return runCleanup(
      'reply group',
      reply.loop.streams.map((stream) => () => this.options.store.destroyGroup(stream, reply.group)),
    );
  }

  #startLoop(options: ConstructorParameters<typeof ConsumerLoop>[1]): ConsumerLoop {
    const loop = new ConsumerLoop(this.#host, options);
    this.#loops.add(loop);
    void loop.done.then(() => this.#loops.delete(loop));
    return loop;
  }

  /** Starts the reply channel on first use and makes sure it reads `stream`. */
  async #replyChannel(stream: string): Promise<void> {
    if (this.#reply === undefined) {
      const group = `reply-${randomUUID()}`;
      const emergency = this.options.streams.emergency;
      const loop = this.#startLoop({
        group,
        consumer: REPLY_CONSUMER,
        streams: stream === emergency ? [emergency] : [emergency, stream],
        start: '$',
        accepts: (entry) => this.#isAwaitedReply(entry),
        handler: (delivery) => {
          const pending = this.#pendingReplies.get(delivery.correlationId);
          if (pending === undefined) return;
          this.#pendingReplies.delete(delivery.correlationId);
          pending.resolve(delivery);
        },
      });
      this.#reply = { group, loop };
    }
    await this.#reply.loop.ready;
    await this.#reply.loop.addStreams([stream]);
  }

  #isAwaitedReply(entry: OpenedEntry): boolean {
    const pending = this.#pendingReplies.get(entry.envelope.correlationId);
    return pending !== undefined && pending.replyType === entry.type && pending.requestMessageId !== entry.envelope.messageId;
  }

  #countDeadLetter(reason: DeadLetterReason): void {
    this.#deadLetterTotal += 1;
    this.#deadLetterByReason.set(reason, (this.#deadLetterByReason.get(reason) ?? 0) + 1);
  }

  #logicalOf(physical: string): LogicalStream {
    const logical = this.#logical.get(physical);
    if (logical === undefined) throw new RangeError(`not a stream of this bus: ${physical}`);
    return logical;
  }

  #assertRunning(action: string): void {
    this.#state.require('running', action, { code: ErrorCode.OONA_CLOSED });
  }

  #emit(description: OonaEvent, level: TelemetryLevel, attributes: Attributes): void {
    try {
      this.options.telemetry.emit(
        buildTelemetryPacket({ source: OONA_SOURCE, clock: this.options.clock, events: [{ description, level, attributes }] }),
      );
    } catch {
      // A sink must not throw (TelemetrySink contract); if one does, the bus carries on.
    }
  }
}

function lowerId(a: string, b: string): string {
  return compareEntryIds(a, b) <= 0 ? a : b;
}

function startAttributes(options: ResolvedStreamBusOptions): Attributes {
  return {
    stream_prefix: options.streamPrefix,
    active_key_id: options.keyRing.activeKeyId,
    max_attempts: options.maxAttempts,
    read_count: options.readCount,
    block_ms: options.blockMs,
    reclaim_idle_ms: options.reclaimIdleMs,
    reclaim_interval_ms: options.reclaimIntervalMs,
    emergency_max_per_min: options.emergencyMaxPerMin,
    max_backlog: options.maxBacklog,
    depth_refresh_ms: options.depthRefreshMs,
    publish_deadline_ms: options.publishDeadlineMs,
    retention_ms: options.retentionMs,
    kernel_freshness_window_ms: options.kernelFreshnessWindowMs,
    kernel_nonce_cache_size: options.kernelNonceCacheSize,
    duplicate_window_size: options.duplicateWindowSize,
    breaker_failure_threshold: options.breakerFailureThreshold,
    breaker_open_ms: options.breakerOpenMs,
  };
}
