/**
 * The publish side of `StreamBus`. The priority (given, the telemetry packet's own,
 * CRITICAL for emergency signals, else NORMAL) picks the stream: HIGH and CRITICAL the
 * emergency stream, HIGH over the emergency budget demoted to its family stream, CRITICAL
 * never. At `maxBacklog` LOW/NORMAL telemetry is shed (counted); every other publish waits,
 * up to its deadline, for the backlog to drain or the store to come back, then fails with a
 * typed error — never a receipt for a message that was not stored.
 *
 * Departures from the prototype (reference prototype-tolaria-oona-nissa-weatherlight §3.6):
 * no sticky "conservative mode"; back-pressure makes the publisher wait instead of dropping
 * a command, field report, policy update or kernel message; the budget demotes HIGH instead
 * of dropping it; a shed does not trip the publish breaker, only store failures do.
 */
import { randomUUID } from 'node:crypto';
import {
  describeError,
  ErrorCode,
  EsperError,
  isEsperError,
  MAX_TIMER_MS,
  optionChecks,
  SampleWindow,
  type CircuitBreaker,
} from '../core/index.js';
import { BusMessageType, MessagePriority, type BusMessage } from '../leyline/index.js';
import type { HmacSigner } from '../security/index.js';
import type { BusMetrics, LatencySummary, PublishOptions, PublishReceipt } from './bus.js';
import { LATENCY_WINDOW_SAMPLES, latencySummary } from './bus-metrics.js';
import { isTransient } from './consumer-loop.js';
import { buildEnvelope, encodeBusMessage, sealEnvelope } from './envelope.js';
import type { ResolvedStreamBusOptions } from './options.js';
import type { EntryFields } from './stream-store.js';
import { familyStream, LogicalStream, sheddable } from './streams.js';
import { TokenBucket } from './token-bucket.js';
import { abortReason, Backoff, delay, firstAborted } from './waits.js';

/** Checks of the per-call publish options. */
const check = optionChecks('publish');
const DEADLINE_RANGE = { min: 0, max: MAX_TIMER_MS } as const;

/** First and largest wait between publish attempts under back-pressure or outage, in ms. */
const PUBLISH_BACKOFF_INITIAL_MS = 5;
const PUBLISH_BACKOFF_MAX_MS = 200;

interface DepthReading {
  /** Counted up by each publish after the reading (`#noteAdded`). */
  depth: number;
  /** `performance.now()` of the reading. */
  readonly readAtMs: number;
}

/** One publish attempt waiting for the store, its deadline or an abort (`#withinDeadline`). */
class PendingWait {
  readonly promise: Promise<unknown>;
  resolve!: (value: unknown) => void;
  reject!: (reason: unknown) => void;
  /** The caller's signals listened to (not the bus's closing signal). */
  readonly signals: AbortSignal[] = [];
  onAbort: ((event: Event) => void) | undefined;

  constructor(
    readonly deadlineAt: number | undefined,
    readonly details: { readonly stream: LogicalStream; readonly deadlineMs: number },
  ) {
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
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
export interface PublishInternals {
  readonly messageId?: string;
  /** Requests are never shed: a shed request could only time out. */
  readonly neverShed?: boolean;
  readonly signals?: readonly AbortSignal[];
}

/** Publish counters of a bus. */
export type PublishCounts = Pick<
  BusMetrics,
  'publishTotal' | 'publishShed' | 'publishTimeouts' | 'publishFailures' | 'emergencyPublished' | 'emergencyDemoted'
>;

/** Publishes for one `StreamBus` (see module doc). */
export class Publisher {
  readonly #options: ResolvedStreamBusOptions;
  readonly #signer: HmacSigner;
  readonly #publishBreaker: CircuitBreaker;
  readonly #closing: AbortSignal;
  readonly #bucket: TokenBucket;
  readonly #publishLatency = new SampleWindow(LATENCY_WINDOW_SAMPLES);
  readonly #depth = new Map<string, DepthReading>();
  readonly #depthRefresh = new Map<string, Promise<number>>();
  /** The publish waits in progress (see `#withinDeadline`), ended when the bus closes. */
  readonly #waits = new Set<PendingWait>();
  /** The one timer that ends waits past their deadline, and when it fires (`performance.now()`). */
  #deadlineTimer: NodeJS.Timeout | undefined;
  #deadlineTimerAt = Infinity;
  #publishTotal = 0;
  #publishShed = 0;
  #publishTimeouts = 0;
  #publishFailures = 0;
  #emergencyPublished = 0;
  #emergencyDemoted = 0;

  /** `closing` aborts every waiting publish when the bus closes. */
  constructor(options: ResolvedStreamBusOptions, signer: HmacSigner, publishBreaker: CircuitBreaker, closing: AbortSignal) {
    this.#options = options;
    this.#signer = signer;
    this.#publishBreaker = publishBreaker;
    this.#closing = closing;
    this.#bucket = new TokenBucket({ perMinute: options.emergencyMaxPerMin, clock: options.clock });
    closing.addEventListener(
      'abort',
      () => {
        for (const wait of [...this.#waits]) this.#endWait(wait, closing.reason);
      },
      { once: true },
    );
  }

  /** Counters so far. */
  counts(): PublishCounts {
    return {
      publishTotal: this.#publishTotal,
      publishShed: this.#publishShed,
      publishTimeouts: this.#publishTimeouts,
      publishFailures: this.#publishFailures,
      emergencyPublished: this.#emergencyPublished,
      emergencyDemoted: this.#emergencyDemoted,
    };
  }

  /** publish() latency over recent samples. */
  latency(): LatencySummary {
    return latencySummary(this.#publishLatency);
  }

  /** Tokens left in the emergency budget. */
  get emergencyTokens(): number {
    return this.#bucket.tokens;
  }

  /** The cached depth readings, by physical stream. */
  depths(): ReadonlyMap<string, number> {
    return new Map([...this.#depth].map(([physical, reading]) => [physical, reading.depth]));
  }

  /** Drops the cached depth of `physical` (after trimming it). */
  forgetDepth(physical: string): void {
    this.#depth.delete(physical);
  }

  /**
   * Publishes one message (see the module doc).
   * @throws see `StreamBus.publish`.
   */
  async publish(message: BusMessage, options: PublishOptions, internals: PublishInternals = {}): Promise<PublishReceipt> {
    const { clock, maxBacklog, streams, keyRing } = this.#options;
    const startedMs = clock.monotonicMs();
    const deadlineMs = options.deadlineMs ?? this.#options.publishDeadlineMs;
    check.number('deadlineMs', deadlineMs, DEADLINE_RANGE);
    const signals = [options.signal, this.#closing, ...(internals.signals ?? [])];
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

    let backoff: Backoff | undefined;
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
        const entryId = await this.#withinDeadline(this.#addUnlessBacklogged(physical, fields), bound, signals, { stream, deadlineMs });
        if (entryId !== undefined) {
          this.#noteAdded(physical);
          this.#publishTotal += 1;
          if (stream === LogicalStream.EMERGENCY) this.#emergencyPublished += 1;
          this.#publishLatency.record(Math.max(0, clock.monotonicMs() - startedMs));
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
      backoff ??= new Backoff(PUBLISH_BACKOFF_INITIAL_MS, PUBLISH_BACKOFF_MAX_MS);
      if (!(await delay(Math.min(backoff.next(), remainingMs), signals))) throw abortReason(signals);
    }
  }

  /**
   * Adds `fields` to `physical` unless its depth is at or above `maxBacklog` (then
   * `undefined`). A fresh cached depth is used without waiting for anything.
   */
  #addUnlessBacklogged(physical: string, fields: EntryFields): Promise<string | undefined> {
    const { maxBacklog } = this.#options;
    const cached = this.#freshDepth(physical);
    if (cached !== undefined) return cached >= maxBacklog ? Promise.resolve(undefined) : this.#add(physical, fields);
    return this.#depthOf(physical).then((depth) => (depth >= maxBacklog ? undefined : this.#add(physical, fields)));
  }

  #add(physical: string, fields: EntryFields): Promise<string> {
    const { store } = this.#options;
    return this.#publishBreaker.run(() => store.add(physical, fields));
  }

  /**
   * Settles like `operation`, or rejects with {@link DeadlinePassed} once `deadlineAt`
   * (a `performance.now()` time; `undefined` for no bound) passes, or with the reason of the
   * first of `signals` to abort. `operation` keeps running either way.
   *
   * The bus's own closing signal is in `signals` of every publish; rather than one listener
   * per waiting publish on it (an EventTarget walks its listener list on every add and
   * remove), the waits register in `#waits` and one listener ends them all. Likewise one
   * timer, set for the earliest deadline, ends the waits whose deadline passed, instead of
   * a timer per publish.
   */
  #withinDeadline<T>(
    operation: Promise<T>,
    deadlineAt: number | undefined,
    signals: readonly (AbortSignal | undefined)[],
    details: { readonly stream: LogicalStream; readonly deadlineMs: number },
  ): Promise<T> {
    const aborted = firstAborted(signals);
    if (aborted !== undefined) {
      // The caller no longer waits for `operation`; its rejection must not go unhandled.
      operation.catch(() => undefined);
      return Promise.reject(aborted.reason as Error);
    }
    const wait = new PendingWait(deadlineAt, details);
    this.#waits.add(wait);
    for (const s of signals) {
      if (s === undefined || s === this.#closing) continue;
      wait.onAbort ??= (event: Event): void => this.#endWait(wait, (event.target as AbortSignal).reason);
      wait.signals.push(s);
      s.addEventListener('abort', wait.onAbort, { once: true });
    }
    if (deadlineAt !== undefined) this.#armDeadline(deadlineAt);
    operation.then(
      (value) => {
        if (this.#finishWait(wait)) wait.resolve(value);
      },
      (error: unknown) => this.#endWait(wait, error),
    );
    return wait.promise as Promise<T>;
  }

  /** Rejects `wait` with `reason` unless it already ended. */
  #endWait(wait: PendingWait, reason: unknown): void {
    if (this.#finishWait(wait)) wait.reject(reason);
  }

  /** Forgets `wait` (listeners, and the deadline timer when no wait is left); false if it had ended. */
  #finishWait(wait: PendingWait): boolean {
    if (!this.#waits.delete(wait)) return false;
    if (wait.onAbort !== undefined) for (const s of wait.signals) s.removeEventListener('abort', wait.onAbort);
    if (this.#waits.size === 0 && this.#deadlineTimer !== undefined) {
      clearTimeout(this.#deadlineTimer);
      this.#deadlineTimer = undefined;
      this.#deadlineTimerAt = Infinity;
    }
    return true;
  }

  /** Makes sure the deadline timer fires by `at` (a `performance.now()` time). */
  #armDeadline(at: number): void {
    if (this.#deadlineTimer !== undefined && this.#deadlineTimerAt <= at) return;
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimerAt = at;
    // Whole ms, never before `at`: timers of one duration share Node's list for it.
    this.#deadlineTimer = setTimeout(() => this.#onDeadline(), Math.max(0, Math.ceil(at - performance.now())));
  }

  /** Ends the waits past their deadline and sets the timer for the next one. */
  #onDeadline(): void {
    this.#deadlineTimer = undefined;
    this.#deadlineTimerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const wait of [...this.#waits]) {
      if (wait.deadlineAt === undefined) continue;
      if (wait.deadlineAt <= now) this.#endWait(wait, new DeadlinePassed(wait.details.stream, wait.details.deadlineMs));
      else next = Math.min(next, wait.deadlineAt);
    }
    if (next !== Infinity) this.#armDeadline(next);
  }

  #priorityOf(message: BusMessage, type: BusMessageType, given: MessagePriority | undefined): MessagePriority {
    if (given !== undefined && given !== MessagePriority.UNSPECIFIED) {
      if (MessagePriority[given] === undefined) check.fail('priority', 'a MessagePriority', given);
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

  /** The cached depth of `physical` when its reading is at most `depthRefreshMs` old. */
  #freshDepth(physical: string): number | undefined {
    const reading = this.#depth.get(physical);
    return reading !== undefined && performance.now() - reading.readAtMs < this.#options.depthRefreshMs ? reading.depth : undefined;
  }

  /** The stream's depth, from a reading at most `depthRefreshMs` old. */
  #depthOf(physical: string): Promise<number> {
    const fresh = this.#freshDepth(physical);
    if (fresh !== undefined) return Promise.resolve(fresh);
    let refresh = this.#depthRefresh.get(physical);
    if (refresh === undefined) {
      refresh = this.#readDepth(physical).finally(() => this.#depthRefresh.delete(physical));
      this.#depthRefresh.set(physical, refresh);
    }
    return refresh;
  }

  /** max over groups of (lag + pending), or the length when lag is unknown or no group exists. */
  async #readDepth(physical: string): Promise<number> {
    const { store } = this.#options;
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
    if (reading !== undefined) reading.depth += 1;
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
