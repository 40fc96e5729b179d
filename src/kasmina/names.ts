/**
 * Kasmina's metric and event names, spelled as the reference gives them (prototype-kasmina
 * §14.6/§14.7, rc1 plan WP-K4). Every Kasmina file takes its names from here.
 */

/** Metric names. */
export const KasminaMetric = {
  /** Wait for a per-blueprint cache lock, in ms (attribute `stat`: `last` | `max`). */
  CACHE_LOCK_WAIT_MS: 'kasmina.cache.lock_wait_ms',
  /** Entries in the kernel artifact cache. */
  CACHE_KERNEL_SIZE: 'kasmina.cache.kernel_size',
  /** hits / (hits + misses) of the kernel artifact cache. */
  CACHE_KERNEL_HIT_RATE: 'kasmina.cache.kernel_hit_rate',
  /** Entries dropped by LRU or TTL expiry (cumulative). */
  CACHE_KERNEL_EVICTIONS: 'kasmina.cache.kernel_evictions',
  /** Latency of the last kernel fetch (lock wait + load + module rebuild), in ms. */
  KERNEL_FETCH_LATENCY_MS: 'kasmina.kernel.fetch_latency_ms',
  /** Prefetch requests by `status` (requested|ready|error|timeout|canceled|late). */
  PREFETCH_REQUESTS_TOTAL: 'kasmina.prefetch.requests_total',
  /** Prefetch requests awaiting an answer now. */
  PREFETCH_INFLIGHT: 'kasmina.prefetch.inflight',
  /** Request → ready latency, in ms (attribute `stat`: `last` | `avg`). */
  PREFETCH_LATENCY_MS: 'kasmina.prefetch.latency_ms',
} as const;

/** Union of {@link KasminaMetric} values. */
export type KasminaMetric = (typeof KasminaMetric)[keyof typeof KasminaMetric];

/** Event descriptions. Levels (and so priorities) are noted per event. */
export const KasminaEvent = {
  /** WARNING (escalates to HIGH): a per-blueprint lock wait exceeded its threshold. */
  CACHE_LOCK_CONTENTION: 'cache_lock_contention',
  /** WARNING: Urza answered a prefetch with `KernelArtifactError`. */
  PREFETCH_ERROR: 'prefetch_error',
  /** CRITICAL: a prefetch went unanswered past its deadline. */
  PREFETCH_TIMEOUT: 'prefetch_timeout',
  /** INFO: an outstanding prefetch was cancelled (seed retired, reset, shutdown). */
  PREFETCH_CANCELED: 'prefetch_canceled',
  /** WARNING: a command's acknowledgement could not be published (its issuer will time out). */
  COMMAND_ACK_FAILED: 'command_ack_failed',
} as const;

/** Union of {@link KasminaEvent} values. */
export type KasminaEvent = (typeof KasminaEvent)[keyof typeof KasminaEvent];
