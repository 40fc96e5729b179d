/**
 * Event, metric and dead-letter reason names of Oona, in one place. Metric names follow
 * the prototype's flat `oona.<key>` spelling (reference prototype-tolaria-oona-nissa-weatherlight
 * §3.10); per-stream and per-statistic series carry a `stream` / `stat` attribute instead
 * of a name suffix, so Nissa maps each to one labelled Prometheus family.
 */

/** Source subsystem of the bus's own telemetry packets. */
export const OONA_SOURCE = 'oona';

/** Telemetry event descriptions emitted by the bus. */
export const OonaEvent = {
  /**
   * An entry with a missing or bad signature, or signed with an unknown key, was
   * dead-lettered. CRITICAL (listed in `CRITICAL_EVENTS`).
   */
  SIGNATURE_INVALID: 'signature_invalid',
  /** An entry that could not be decoded (envelope, payload or message type) was dead-lettered. ERROR. */
  MESSAGE_MALFORMED: 'message_malformed',
  /** A message was dead-lettered after its last handling attempt or delivery. ERROR. */
  DEAD_LETTER: 'dead_letter',
  /** A stale or replayed kernel message was dead-lettered by the kernel guard. WARNING. */
  KERNEL_MESSAGE_REJECTED: 'kernel_message_rejected',
  /** A copy of a message this subscription already handled was acknowledged and dropped. WARNING. */
  DUPLICATE_DROPPED: 'duplicate_dropped',
  /** A consumer loop could not reach the store; it backs off and retries. WARNING, once per outage. */
  STORE_UNAVAILABLE: 'store_unavailable',
  /** A consumer loop hit an unexpected error; it backs off and carries on. ERROR. */
  CONSUMER_ERROR: 'consumer_error',
  /** The publish or consume breaker opened. WARNING. */
  BREAKER_OPEN: 'breaker_open',
  /** The bus started; attributes carry its resolved configuration. INFO. */
  BUS_STARTED: 'bus_started',
} as const;

/** One of the {@link OonaEvent} descriptions. */
export type OonaEvent = (typeof OonaEvent)[keyof typeof OonaEvent];

/** Metric names exported by `StreamBus.metricPoints()`. */
export const OonaMetric = {
  /** Messages accepted by the store. Counter. */
  PUBLISH_TOTAL: 'oona.publish_total',
  /** LOW/NORMAL telemetry shed under back-pressure. Counter. */
  PUBLISH_SHED: 'oona.publish_shed',
  /** Never-shed publishes that gave up at their deadline under back-pressure. Counter. */
  PUBLISH_TIMEOUTS: 'oona.publish_timeouts',
  /** Publishes that gave up at their deadline because the store stayed unreachable. Counter. */
  PUBLISH_FAILURES: 'oona.publish_failures',
  /** Undelivered + unacknowledged entries, one series per `stream` attribute. Gauge. */
  QUEUE_DEPTH: 'oona.queue_depth',
  /** Messages published on the emergency stream. Counter. */
  EMERGENCY_PUBLISHED: 'oona.emergency_published',
  /** HIGH messages demoted to their family stream by the emergency budget. Counter. */
  EMERGENCY_DEMOTED: 'oona.emergency_demoted',
  /** Tokens left in the emergency budget. Gauge. */
  EMERGENCY_TOKENS: 'oona.emergency_tokens',
  /** Messages handled successfully. Counter. */
  HANDLED_TOTAL: 'oona.handled_total',
  /** Handler invocations that threw. Counter. */
  HANDLER_FAILURES: 'oona.handler_failures',
  /** Entries written to the dead-letter stream. Counter. */
  DEAD_LETTER_TOTAL: 'oona.dead_letter_total',
  /** Dead-lettered entries, one series per `reason` attribute. Counter. */
  DEAD_LETTER_BY_REASON: 'oona.dead_letter_by_reason',
  /** Pending entries reclaimed from idle consumers and handled. Counter. */
  RECLAIMED_TOTAL: 'oona.reclaimed_total',
  /** Copies of already handled messages dropped by the duplicate window. Counter. */
  DUPLICATES_DROPPED: 'oona.duplicates_dropped',
  /** Messages republished for another attempt after a handler failure. Counter. */
  RETRIES_TOTAL: 'oona.retries_total',
  /** publish() duration in ms, one series per `stat` attribute (p50, p99). */
  PUBLISH_LATENCY_MS: 'oona.publish_latency_ms',
  /** Handler duration in ms, one series per `stat` attribute (p50, p99). */
  HANDLE_LATENCY_MS: 'oona.handle_latency_ms',
} as const;

/** One of the {@link OonaMetric} names. */
export type OonaMetric = (typeof OonaMetric)[keyof typeof OonaMetric];

/** Why an entry went to the dead-letter stream (its `reason` field). */
export const DeadLetterReason = {
  /** The handler threw on the last allowed attempt. */
  HANDLER_FAILED: 'handler_failed',
  /** The entry was delivered more than `maxAttempts` times without being acknowledged. */
  DELIVERY_EXHAUSTED: 'delivery_exhausted',
  /** The entry carries no signature or no key id. */
  MISSING_SIGNATURE: 'missing_signature',
  /** The entry names a key the ring does not hold. */
  UNKNOWN_KEY: 'unknown_key',
  /** The signature does not match the envelope bytes. */
  BAD_SIGNATURE: 'bad_signature',
  /** The envelope or its payload cannot be decoded strictly, or the envelope is incomplete. */
  MALFORMED: 'malformed',
  /** The envelope names a message type this build does not know. */
  UNKNOWN_TYPE: 'unknown_type',
  /** A kernel prefetch request older than the freshness window (or without issue time). */
  KERNEL_STALE: 'kernel_stale',
  /** A kernel message whose request id was already seen by this subscription. */
  KERNEL_REPLAY: 'kernel_replay',
} as const;

/** One of the {@link DeadLetterReason} values. */
export type DeadLetterReason = (typeof DeadLetterReason)[keyof typeof DeadLetterReason];
