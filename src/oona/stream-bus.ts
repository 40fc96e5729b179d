/**
 * `StreamBus`: Oona's {@link Bus} over a {@link StreamStore}. Every bus rule lives here and
 * in its pieces (envelope signing, token bucket, kernel guard, consumer loop), so the Redis
 * and in-memory buses behave the same by construction.
 *
 * Publish: the priority (given, or the telemetry packet's own, or CRITICAL for emergency
 * signals, else NORMAL) picks the stream — HIGH and CRITICAL the emergency stream, the
 * rest their family stream; HIGH over the emergency budget is demoted to its family
 * stream, CRITICAL never is. When the target stream's depth (undelivered + unacknowledged
 * entries of its slowest group) reaches `maxBacklog`, LOW/NORMAL telemetry is shed and
 * counted; every other publish waits, up to its deadline, for the backlog to drain — and
 * likewise waits out an unreachable store. Then it fails with a typed error; it never
 * drops a message it returned a receipt for.
 *
 * Time: `clock` stamps envelopes and drives the token bucket, the kernel guard, the
 * breakers, latency samples and the retention cut-off. Waits (publish deadlines, backoff,
 * blocking reads, reclaim cadence, the depth cache's age) run on real timers, so a
 * `FakeClock` freezes the budget and the breakers without freezing the loops.
 *
 * Departures from the prototype (reference prototype-tolaria-oona-nissa-weatherlight §3.6):
 * no sticky "conservative mode" (nothing reroutes to the emergency stream but priority);
 * back-pressure never drops a command, field report, policy update or kernel message — it
 * makes the publisher wait; the emergency budget demotes HIGH instead of dropping it; a
 * shed does not trip the publish breaker, only store failures do.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import {
  buildTelemetryPacket,
  CircuitBreaker,
  ErrorCode,
  EsperError,
  isEsperError,
  type Attributes,
  type MetricInput,
} from '../core/index.js';
import {
  BusMessageType,
  CircuitBreakerState,
  MessagePriority,
  schemaForBusMessageType,
  TelemetryLevel,
  type BusMessage,
} from '../leyline/index.js';
import { HmacSigner } from '../security/index.js';
import type { Bus, BusMetrics, Delivery, PublishOptions, PublishReceipt, RequestOptions, SubscribeOptions, Subscription } from './bus.js';
import { ConsumerLoop, describeError, isTransient, type ConsumerHost, type ConsumerStats } from './consumer-loop.js';
import { buildEnvelope, encodeBusMessage, sealEnvelope, type OpenedEntry } from './envelope.js';
import { LatencyWindow } from './latency-window.js';
import { OONA_SOURCE, OonaEvent, OonaMetric, type DeadLetterReason } from './names.js';
import { resolveStreamBusOptions, type ResolvedStreamBusOptions, type StreamBusOptions } from './options.js';
import { compareEntryIds } from './stream-store.js';
import { familyStream, LogicalStream, sheddable } from './streams.js';
import { TokenBucket } from './token-bucket.js';
import { abortReason, Backoff, delay, firstAborted, raceAbort } from './waits.js';

/** Lifecycle of a {@link StreamBus}: `running` until `close()`, then `closing`, `closed`. */
export type StreamBusState = 'running' | 'closing' | 'closed';

/** First and largest wait between publish attempts under back-pressure or outage, in ms. */
const PUBLISH_BACKOFF_INITIAL_MS = 5;
const PUBLISH_BACKOFF_MAX_MS = 200;

/** Consumer name of the bus's reply channel within its own `reply-<uuid>` group. */
const REPLY_CONSUMER = 'reply';

interface DepthReading {
  readonly depth: number;
  /** `performance.now()` of the reading. */
  readonly readAtMs: number;
}

interface PendingReply {
  readonly replyType: BusMessageType;
  /** The request's own message id, so a request of the reply type never answers itself. */
  readonly requestMessageId: string;
  readonly resolve: (delivery: Delivery) => void;
}

/** A publish attempt cut short by the publish deadline (the store did not answer in time). */
class DeadlinePassed extends EsperError {
  constructor(stream: LogicalStream, deadlineMs: number) {
    super(ErrorCode.OONA_STORE_UNAVAILABLE, `the store did not answer within the ${deadlineMs} ms publish deadline`, {
      details: { stream, deadlineMs },
    });
  }
}

/** Internal knobs of one publish. */
interface PublishInternals {
  readonly messageId?: string;
  /** Requests are never shed: a shed request could only time out. */
  readonly neverShed?: boolean;
  readonly signals?: readonly AbortSignal[];
}

/** A {@link Bus} over a {@link StreamStore} (see module doc). */
export class StreamBus implements Bus {
  /** The resolved options (secrets live only in the key ring, which redacts itself). */
  readonly options: ResolvedStreamBusOptions;
  readonly #signer: HmacSigner;
  readonly #logical: ReadonlyMap<string, LogicalStream>;
  readonly #publishBreaker: CircuitBreaker;
  readonly #consumeBreaker: CircuitBreaker;
  readonly #bucket: TokenBucket;
  readonly #publishLatency = new LatencyWindow();
  readonly #handleLatency = new LatencyWindow();
  readonly #depth = new Map<string, DepthReading>();
  readonly #depthRefresh = new Map<string, Promise<number>>();
  readonly #loops = new Set<ConsumerLoop>();
  readonly #pendingReplies = new Map<string, PendingReply>();
  readonly #closing = new AbortController();
  readonly #deadLetterByReason = new Map<string, number>();
  readonly #host: ConsumerHost;
  #reply: { readonly group: string; readonly loop: ConsumerLoop } | undefined;
  #state: StreamBusState = 'running';
  #closePromise: Promise<void> | undefined;
  #publishTotal = 0;
  #publishShed = 0;
  #publishTimeouts = 0;
  #publishFailures = 0;
  #emergencyPublished = 0;
  #emergencyDemoted = 0;
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
    const { clock, keyRing, streams, breakerFailureThreshold, breakerOpenMs, emergencyMaxPerMin } = this.options;
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
    this.#bucket = new TokenBucket({ perMinute: emergencyMaxPerMin, clock });
    const stats: ConsumerStats = {
      handled: (latencyMs) => {
        this.#handledTotal += 1;
        this.#handleLatency.record(latencyMs);
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
    return this.#state;
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
  publish(message: BusMessage, options: PublishOptions = {}): Promise<PublishReceipt> {
    return this.#publish(message, options, {});
  }

  async #publish(message: BusMessage, options: PublishOptions, internals: PublishInternals): Promise<PublishReceipt> {
    this.#assertRunning();
    const { clock, maxBacklog, streams, store, keyRing } = this.options;
    const startedMs = clock.monotonicMs();
    const deadlineMs = options.deadlineMs ?? this.options.publishDeadlineMs;
    if (!Number.isFinite(deadlineMs) || deadlineMs < 0) {
      throw invalidArgument('deadlineMs', `must be a finite number ≥ 0, got ${deadlineMs}`);
    }
    const signals = [options.signal, this.#closing.signal, ...(internals.signals ?? [])];
    const aborted = firstAborted(signals);
    if (aborted !== undefined) throw aborted.reason;
    const deadlineAt = performance.now() + deadlineMs;

    const { type, payload } = encodeChecked(message);
    const priority = this.#priorityOf(message, type, options.priority);
    const { stream, demoted } = this.#route(type, priority);
    const physical = streams[stream];
    const messageId = internals.messageId ?? randomUUID();
    const envelope = buildEnvelope({
      type,
      payload,
      priority,
      correlationId: options.correlationId ?? '',
      trainingRunId: options.trainingRunId ?? ownTrainingRunId(message),
      publishedAtMs: clock.wallMs(),
      attempt: 1,
      messageId,
    });
    const fields = sealEnvelope(this.#signer, keyRing.activeKeyId, envelope);
    const shedAllowed =
      internals.neverShed !== true && sheddable(type) && (priority === MessagePriority.LOW || priority === MessagePriority.NORMAL);

    const backoff = new Backoff(PUBLISH_BACKOFF_INITIAL_MS, PUBLISH_BACKOFF_MAX_MS);
    let lastStoreError: unknown;
    // What held the last attempt that finished back: the backlog or the store.
    let backlogged = false;
    for (let attempt = 0; ; attempt += 1) {
      try {
        // A store call can sit in the client's offline queue across reconnects for longer
        // than the deadline, so each attempt is bounded by what is left of it (a deadline
        // of 0 still gets its one attempt). An attempt given up on may still land: the
        // caller then sees a typed failure for a message that was stored — never a
        // receipt for one that was not.
        const bound = deadlineMs === 0 && attempt === 0 ? undefined : deadlineAt;
        const entryId = await this.#withinDeadline(
          (async () => {
            const depth = await this.#depthOf(physical);
            if (depth >= maxBacklog) return undefined;
            return this.#publishBreaker.run(() => store.add(physical, fields));
          })(),
          bound,
          signals,
          { stream, deadlineMs },
        );
        if (entryId !== undefined) {
          this.#noteAdded(physical);
          this.#publishTotal += 1;
          if (stream === LogicalStream.EMERGENCY) this.#emergencyPublished += 1;
          this.#publishLatency.record(clock.monotonicMs() - startedMs);
          return { status: 'published', stream, entryId, messageId, priority, demoted };
        }
        if (shedAllowed) {
          this.#publishShed += 1;
          return { status: 'shed', stream, messageId };
        }
        backlogged = true;
      } catch (error) {
        if (!isTransient(error)) throw error;
        // An attempt cut short by the deadline says nothing new about the backlog.
        if (!(error instanceof DeadlinePassed) || lastStoreError === undefined) lastStoreError = error;
        if (!(error instanceof DeadlinePassed)) backlogged = false;
      }
      const remainingMs = deadlineAt - performance.now();
      if (remainingMs <= 0) {
        if (backlogged) {
          this.#publishTimeouts += 1;
          throw new EsperError(
            ErrorCode.OONA_PUBLISH_TIMEOUT,
            `stream ${physical} stayed at or above maxBacklog ${maxBacklog} for ${deadlineMs} ms`,
            { details: { stream, maxBacklog, deadlineMs, messageType: BusMessageType[type] ?? type } },
          );
        }
        this.#publishFailures += 1;
        if (isEsperError(lastStoreError, ErrorCode.OONA_STORE_UNAVAILABLE)) throw lastStoreError;
        throw new EsperError(ErrorCode.OONA_STORE_UNAVAILABLE, `publish breaker stayed open for ${deadlineMs} ms`, {
          cause: lastStoreError,
          details: { stream, deadlineMs },
        });
      }
      if (!(await delay(Math.min(backoff.next(), remainingMs), signals))) throw abortReason(signals);
    }
  }

  /**
   * Settles like `operation`, or rejects with {@link DeadlinePassed} once `deadlineAt`
   * (a `performance.now()` time; `undefined` for no bound) passes, or with the reason of the
   * first of `signals` to abort. `operation` keeps running either way.
   */
  async #withinDeadline<T>(
    operation: Promise<T>,
    deadlineAt: number | undefined,
    signals: readonly (AbortSignal | undefined)[],
    details: { readonly stream: LogicalStream; readonly deadlineMs: number },
  ): Promise<T> {
    if (deadlineAt === undefined) return raceAbort(operation, signals);
    const expired = new AbortController();
    const timer = setTimeout(
      () => {
        expired.abort(new DeadlinePassed(details.stream, details.deadlineMs));
      },
      Math.max(0, deadlineAt - performance.now()),
    );
    try {
      return await raceAbort(operation, [...signals, expired.signal]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Starts a consumer loop for `options.group` / `options.consumer` over the family streams
   * of `options.types` and the emergency stream.
   *
   * @throws EsperError `OONA_CLOSED` after `close()`; `INVALID_ARGUMENT` for bad options.
   */
  subscribe(options: SubscribeOptions): Subscription {
    this.#assertRunning();
    const { group, consumer, types, handler } = options;
    if (typeof group !== 'string' || group.length === 0) throw invalidArgument('group', 'must be a non-empty string');
    if (typeof consumer !== 'string' || consumer.length === 0) {
      throw invalidArgument('consumer', 'must be a non-empty string');
    }
    if (!Array.isArray(types) || types.length === 0) throw invalidArgument('types', 'must list at least one type');
    for (const type of types) {
      if (schemaForBusMessageType(type) === undefined) {
        throw invalidArgument('types', `holds unknown message type ${String(type)}`);
      }
    }
    if (typeof handler !== 'function') throw invalidArgument('handler', 'must be a function');
    const from = options.from ?? 'new';
    if (from !== 'new' && from !== 'all') throw invalidArgument('from', `must be 'new' or 'all'`);
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
    return Object.freeze({ ready: loop.ready, stop: () => loop.stop() });
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
    this.#assertRunning();
    const { replyType, timeoutMs } = options;
    if (schemaForBusMessageType(replyType) === undefined) {
      throw invalidArgument('replyType', `must be a known message type, got ${String(replyType)}`);
    }
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
      throw invalidArgument('timeoutMs', `must be a finite number ≥ 0, got ${timeoutMs}`);
    }
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
      await this.#publish(
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
    for (const [physical, reading] of this.#depth) depth[this.#logicalOf(physical)] = reading.depth;
    return {
      publishTotal: this.#publishTotal,
      publishShed: this.#publishShed,
      publishTimeouts: this.#publishTimeouts,
      publishFailures: this.#publishFailures,
      emergencyPublished: this.#emergencyPublished,
      emergencyDemoted: this.#emergencyDemoted,
      handledTotal: this.#handledTotal,
      handlerFailures: this.#handlerFailures,
      duplicatesDropped: this.#duplicatesDropped,
      retriesTotal: this.#retriesTotal,
      deadLetterTotal: this.#deadLetterTotal,
      deadLetterByReason: Object.fromEntries(this.#deadLetterByReason),
      reclaimedTotal: this.#reclaimedTotal,
      depth,
      publishLatency: this.#publishLatency.summary(),
      handleLatency: this.#handleLatency.summary(),
      emergencyTokens: this.#bucket.tokens,
      publishBreaker: breakerStateName(this.#publishBreaker.state),
      consumeBreaker: breakerStateName(this.#consumeBreaker.state),
    };
  }

  /** {@link metrics} as metric points named by {@link OonaMetric}, with units, for Nissa. */
  metricPoints(): MetricInput[] {
    const m = this.metrics();
    const count = (name: string, value: number, attributes?: Attributes): MetricInput =>
      attributes === undefined ? { name, value, unit: 'count' } : { name, value, unit: 'count', attributes };
    const points: MetricInput[] = [
      count(OonaMetric.PUBLISH_TOTAL, m.publishTotal),
      count(OonaMetric.PUBLISH_SHED, m.publishShed),
      count(OonaMetric.PUBLISH_TIMEOUTS, m.publishTimeouts),
      count(OonaMetric.PUBLISH_FAILURES, m.publishFailures),
      count(OonaMetric.EMERGENCY_PUBLISHED, m.emergencyPublished),
      count(OonaMetric.EMERGENCY_DEMOTED, m.emergencyDemoted),
      { name: OonaMetric.EMERGENCY_TOKENS, value: m.emergencyTokens, unit: 'tokens' },
      count(OonaMetric.HANDLED_TOTAL, m.handledTotal),
      count(OonaMetric.HANDLER_FAILURES, m.handlerFailures),
      count(OonaMetric.DUPLICATES_DROPPED, m.duplicatesDropped),
      count(OonaMetric.DEAD_LETTER_TOTAL, m.deadLetterTotal),
      count(OonaMetric.RECLAIMED_TOTAL, m.reclaimedTotal),
      count(OonaMetric.RETRIES_TOTAL, m.retriesTotal),
    ];
    for (const [reason, value] of Object.entries(m.deadLetterByReason)) {
      points.push(count(OonaMetric.DEAD_LETTER_BY_REASON, value, { reason }));
    }
    for (const [stream, value] of Object.entries(m.depth)) {
      points.push(count(OonaMetric.QUEUE_DEPTH, value, { stream }));
    }
    for (const [name, summary] of [
      [OonaMetric.PUBLISH_LATENCY_MS, m.publishLatency],
      [OonaMetric.HANDLE_LATENCY_MS, m.handleLatency],
    ] as const) {
      points.push({ name, value: summary.p50Ms, unit: 'ms', attributes: { stat: 'p50' } });
      points.push({ name, value: summary.p99Ms, unit: 'ms', attributes: { stat: 'p99' } });
    }
    return points;
  }

  /**
   * Trims every stream except dead-letter below `min(now − retentionMs, each group's
   * oldest pending entry, each lagging group's last-delivered entry)`, so nothing a group
   * has not received or acknowledged is ever trimmed. Returns trimmed counts.
   *
   * @throws EsperError `OONA_CLOSED` after `close()`; the store's errors.
   */
  async housekeeping(): Promise<Partial<Record<LogicalStream, number>>> {
    this.#assertRunning();
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
      this.#depth.delete(physical);
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
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(): Promise<void> {
    this.#state = 'closing';
    this.#closing.abort(new EsperError(ErrorCode.OONA_CLOSED, 'the bus is closed'));
    const errors: unknown[] = [];
    await Promise.all([...this.#loops].map((loop) => loop.stop()));
    const reply = this.#reply;
    if (reply !== undefined) {
      for (const stream of reply.loop.streams) {
        try {
          await this.options.store.destroyGroup(stream, reply.group);
        } catch (error) {
          errors.push(error);
        }
      }
    }
    if (this.options.ownsStore) {
      try {
        await this.options.store.close();
      } catch (error) {
        errors.push(error);
      }
    }
    this.#state = 'closed';
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, 'closing the bus failed in several steps');
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

  #priorityOf(message: BusMessage, type: BusMessageType, given: MessagePriority | undefined): MessagePriority {
    if (given !== undefined && given !== MessagePriority.UNSPECIFIED) {
      if (MessagePriority[given] === undefined) throw invalidArgument('priority', `unknown priority ${String(given)}`);
      return given;
    }
    if (message.$typeName === 'esper.leyline.v1.TelemetryPacket') {
      const own = message.priority;
      return own === MessagePriority.UNSPECIFIED || MessagePriority[own] === undefined ? MessagePriority.NORMAL : own;
    }
    return type === BusMessageType.EMERGENCY_SIGNAL ? MessagePriority.CRITICAL : MessagePriority.NORMAL;
  }

  /**
   * HIGH and CRITICAL take a token and go to the emergency stream; HIGH without a token is
   * demoted to its family stream (an emergency signal's family stream is the emergency
   * stream itself, so it stays there); CRITICAL goes whether or not a token was left.
   */
  #route(type: BusMessageType, priority: MessagePriority): { stream: LogicalStream; demoted: boolean } {
    const family = familyStream(type);
    if (priority === MessagePriority.CRITICAL) {
      this.#bucket.tryTake();
      return { stream: LogicalStream.EMERGENCY, demoted: false };
    }
    if (priority === MessagePriority.HIGH) {
      if (this.#bucket.tryTake() || family === LogicalStream.EMERGENCY) {
        return { stream: LogicalStream.EMERGENCY, demoted: false };
      }
      this.#emergencyDemoted += 1;
      return { stream: family, demoted: true };
    }
    return { stream: family, demoted: false };
  }

  /** The stream's depth, from a reading at most `depthRefreshMs` old. */
  #depthOf(physical: string): Promise<number> {
    const reading = this.#depth.get(physical);
    if (reading !== undefined && performance.now() - reading.readAtMs < this.options.depthRefreshMs) {
      return Promise.resolve(reading.depth);
    }
    let refresh = this.#depthRefresh.get(physical);
    if (refresh === undefined) {
      refresh = this.#readDepth(physical).finally(() => this.#depthRefresh.delete(physical));
      this.#depthRefresh.set(physical, refresh);
    }
    return refresh;
  }

  /** max over groups of (lag + pending), or the length when lag is unknown or no group exists. */
  async #readDepth(physical: string): Promise<number> {
    const { store } = this.options;
    const depth = await this.#publishBreaker.run(async () => {
      const groups = await store.groups(physical);
      let length: number | undefined;
      const lengthOnce = async (): Promise<number> => (length ??= await store.length(physical));
      if (groups.length === 0) return lengthOnce();
      let deepest = 0;
      for (const group of groups) {
        const backlog = group.lag === undefined ? await lengthOnce() : group.lag + group.pending;
        deepest = Math.max(deepest, backlog);
      }
      return deepest;
    });
    this.#depth.set(physical, { depth, readAtMs: performance.now() });
    return depth;
  }

  /** Counts a publish into the cached depth, so a burst sees its own backlog grow. */
  #noteAdded(physical: string): void {
    const reading = this.#depth.get(physical);
    if (reading !== undefined) this.#depth.set(physical, { depth: reading.depth + 1, readAtMs: reading.readAtMs });
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

  #assertRunning(): void {
    if (this.#state !== 'running') throw new EsperError(ErrorCode.OONA_CLOSED, 'the bus is closed');
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

/** The message's type and payload bytes; a non-bus message is a typed error. */
function encodeChecked(message: BusMessage): ReturnType<typeof encodeBusMessage> {
  try {
    return encodeBusMessage(message);
  } catch (error) {
    if (isEsperError(error)) throw error;
    throw new EsperError(ErrorCode.OONA_INVALID_MESSAGE, `not a bus message: ${describeError(error)}`, { cause: error });
  }
}

/** The message's own `trainingRunId` field, when it has one. */
function ownTrainingRunId(message: BusMessage): string {
  const value = (message as { trainingRunId?: unknown }).trainingRunId;
  return typeof value === 'string' ? value : '';
}

function lowerId(a: string, b: string): string {
  return compareEntryIds(a, b) <= 0 ? a : b;
}

function breakerStateName(state: CircuitBreakerState): string {
  switch (state) {
    case CircuitBreakerState.CIRCUIT_STATE_CLOSED:
      return 'closed';
    case CircuitBreakerState.CIRCUIT_STATE_OPEN:
      return 'open';
    case CircuitBreakerState.CIRCUIT_STATE_HALF_OPEN:
      return 'half_open';
    default:
      return 'unknown';
  }
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

function invalidArgument(field: string, message: string): EsperError {
  return new EsperError(ErrorCode.INVALID_ARGUMENT, `${field} ${message}`, { details: { field } });
}
