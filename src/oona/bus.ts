/**
 * The `Bus` interface every subsystem talks through. `StreamBus` implements it over a
 * `StreamStore`: `RedisStreamStore` for the distributed system, `MemoryStreamStore` for
 * the embedded default and unit tests.
 *
 * Guarantees (spec 00 §3.2, spec 01 "Priority routing"):
 * - at-least-once delivery; a handler's message is acknowledged only after the handler
 *   resolved; a failed message is retried with its attempt count carried in the envelope
 *   and dead-lettered with the reason after the last attempt;
 * - HIGH and CRITICAL go to the emergency stream, which consumers drain first; over the
 *   emergency budget HIGH is demoted to its family stream (counted), CRITICAL never is;
 * - under back-pressure only LOW/NORMAL telemetry may be shed (counted); every other
 *   publish waits up to its deadline, then fails with `OONA_PUBLISH_TIMEOUT`;
 * - every entry is signed (HMAC over the envelope bytes); an entry with a bad or missing
 *   signature, or one that cannot be decoded, goes to the dead-letter stream with its
 *   reason and a CRITICAL telemetry event, never to a handler.
 */
import type { BusMessage, BusMessageType, MessagePriority } from '../leyline/index.js';
import type { LogicalStream } from './streams.js';

/** Options of {@link Bus.publish}. */
export interface PublishOptions {
  /**
   * Delivery priority, set once by the producer. @default the packet's own `priority` for
   * telemetry, CRITICAL for emergency signals, NORMAL otherwise
   */
  readonly priority?: MessagePriority;
  /** @default the message's own `trainingRunId` field when it has one */
  readonly trainingRunId?: string;
  /** Ties a reply to its request. @default empty */
  readonly correlationId?: string;
  /**
   * How long a never-shed publish may wait for back-pressure or an unreachable store to
   * clear, in ms, at most `MAX_TIMER_MS`. @default the bus's `publishDeadlineMs`
   */
  readonly deadlineMs?: number;
  readonly signal?: AbortSignal;
}

/** Outcome of {@link Bus.publish}. */
export type PublishReceipt =
  | {
      readonly status: 'published';
      /** Logical stream it landed on (emergency, or the family stream). */
      readonly stream: LogicalStream;
      readonly entryId: string;
      /** Envelope `message_id`, stable across retries. */
      readonly messageId: string;
      readonly priority: MessagePriority;
      /** True when HIGH was demoted from the emergency stream by the budget. */
      readonly demoted: boolean;
    }
  | {
      /** LOW/NORMAL telemetry dropped under back-pressure (counted in `publishShed`). */
      readonly status: 'shed';
      readonly stream: LogicalStream;
      readonly messageId: string;
    };

/** A message handed to a subscriber. */
export interface Delivery<M extends BusMessage = BusMessage> {
  readonly type: BusMessageType;
  readonly message: M;
  readonly priority: MessagePriority;
  readonly messageId: string;
  readonly correlationId: string;
  readonly trainingRunId: string;
  /** Wall ms at which the producer published it. */
  readonly publishedAtMs: number;
  /** 1 for the first attempt, incremented by each retry. */
  readonly attempt: number;
  /** Logical and physical stream, and the entry id it was read from. */
  readonly stream: LogicalStream;
  readonly entryId: string;
  /** Aborted when the subscription closes. */
  readonly signal: AbortSignal;
}

/** A handler's work on one delivery; resolve to acknowledge, throw to retry. */
export type DeliveryHandler = (delivery: Delivery) => Promise<void> | void;

/** Options of {@link Bus.subscribe}. */
export interface SubscribeOptions {
  /** Consumer group: each group receives every message of its types once. */
  readonly group: string;
  /** Consumer name within the group (one per process or worker). */
  readonly consumer: string;
  /** Message types handled; the bus reads their family streams and the emergency stream. */
  readonly types: readonly BusMessageType[];
  readonly handler: DeliveryHandler;
  /**
   * Where a newly created group starts: only messages published after it (`'new'`) or
   * everything still retained (`'all'`). @default 'new'
   */
  readonly from?: 'new' | 'all';
  /** Closes the subscription (as `Subscription.close()` does). */
  readonly signal?: AbortSignal;
}

/** A running subscription. */
export interface Subscription {
  /**
   * Resolves once the consumer group exists on every stream the subscription reads, so
   * nothing published afterwards is missed. Rejects with `OONA_CLOSED` when the
   * subscription is closed before that (nobody has to await it).
   */
  readonly ready: Promise<void>;
  /**
   * Stops reading, lets the handler in flight finish (its message is then acknowledged
   * or retried as usual), and resolves. Idempotent: every call returns the first call's
   * promise.
   */
  close(): Promise<void>;
  /** `await using` support: same as {@link Subscription.close}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@link Bus.request}. */
export interface RequestOptions extends Omit<PublishOptions, 'correlationId'> {
  /** Message type of the expected reply. */
  readonly replyType: BusMessageType;
  /** How long to wait for the reply, in ms, counted from the call; at most `MAX_TIMER_MS`. */
  readonly timeoutMs: number;
}

/** Latency summary in ms over a bounded window of recent samples. */
export interface LatencySummary {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly samples: number;
}

/** Counters and gauges of a bus (`Bus.metrics()`). */
export interface BusMetrics {
  readonly publishTotal: number;
  readonly publishShed: number;
  /** Never-shed publishes that gave up at their deadline under back-pressure (`OONA_PUBLISH_TIMEOUT`). */
  readonly publishTimeouts: number;
  /**
   * Publishes that gave up at their deadline because the store stayed unreachable or the
   * publish breaker open (`OONA_STORE_UNAVAILABLE`).
   */
  readonly publishFailures: number;
  readonly emergencyPublished: number;
  readonly emergencyDemoted: number;
  readonly handledTotal: number;
  readonly handlerFailures: number;
  /** Copies of already handled messages acknowledged and dropped (duplicate window). */
  readonly duplicatesDropped: number;
  readonly retriesTotal: number;
  readonly deadLetterTotal: number;
  /** Dead-lettered entries by reason (`handler_failed`, `bad_signature`, `malformed`, ...). */
  readonly deadLetterByReason: Readonly<Record<string, number>>;
  readonly reclaimedTotal: number;
  /** Undelivered + unacknowledged entries per logical stream, at the last refresh. */
  readonly depth: Readonly<Partial<Record<LogicalStream, number>>>;
  readonly publishLatency: LatencySummary;
  readonly handleLatency: LatencySummary;
  readonly emergencyTokens: number;
  readonly publishBreaker: string;
  readonly consumeBreaker: string;
}

/** Oona's message bus. */
export interface Bus {
  /** Publishes one Leyline message (see {@link PublishOptions} for routing). */
  publish(message: BusMessage, options?: PublishOptions): Promise<PublishReceipt>;
  /** Starts a consumer loop; see {@link SubscribeOptions}. */
  subscribe(options: SubscribeOptions): Subscription;
  /**
   * Publishes `message` with a fresh correlation id and resolves with the first message of
   * `replyType` carrying that id; rejects with `OONA_REQUEST_TIMEOUT` after `timeoutMs`.
   */
  request(message: BusMessage, options: RequestOptions): Promise<Delivery>;
  /** Publishes `message` as the reply to `to` (same correlation id and run id). */
  reply(to: Delivery, message: BusMessage, options?: Omit<PublishOptions, 'correlationId'>): Promise<PublishReceipt>;
  /** Counters and gauges. */
  metrics(): BusMetrics;
  /**
   * Trims entries older than the retention window from every stream except the
   * dead-letter stream — never past an entry some group has not yet acknowledged.
   * Returns trimmed counts per logical stream.
   */
  housekeeping(): Promise<Partial<Record<LogicalStream, number>>>;
  /** Closes every subscription, then releases what the bus created. Idempotent. */
  close(): Promise<void>;
  /** `await using` support: same as {@link Bus.close}. */
  [Symbol.asyncDispose](): Promise<void>;
}
