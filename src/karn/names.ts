/**
 * Karn telemetry names, spelled as the reference gives them (prototype-blueprint-pipeline
 * §1.2 and §7).
 */

/** Karn metric names. */
export const KarnMetric = {
  REQUESTS_TOTAL: 'karn.requests.total',
  REQUESTS_FAILED: 'karn.requests.failed',
  BREAKER_DENIED: 'karn.breaker.denied',
  BREAKER_OPEN_TOTAL: 'karn.breaker.open_total',
  BREAKER_STATE: 'karn.breaker.state',
  SELECTION_SAFE: 'karn.selection.safe',
  SELECTION_EXPERIMENTAL: 'karn.selection.experimental',
  SELECTION_ADVERSARIAL: 'karn.selection.adversarial',
  SELECTION_LATENCY_MS: 'karn.selection.latency_ms',
} as const;

/** Union of {@link KarnMetric} values. */
export type KarnMetric = (typeof KarnMetric)[keyof typeof KarnMetric];

/** Karn event descriptions. */
export const KarnEvent = {
  SELECTION_SUCCEEDED: 'karn.selection_succeeded',
  SELECTION_FAILED: 'karn.selection_failed',
  BREAKER_DENIED: 'karn.breaker_denied',
  BREAKER_OPENED: 'karn.breaker_opened',
} as const;

/** Union of {@link KarnEvent} values. */
export type KarnEvent = (typeof KarnEvent)[keyof typeof KarnEvent];

/** `source_subsystem` of Karn's telemetry packets. */
export const KARN_TELEMETRY_SOURCE = 'karn';
