/**
 * A bus's metrics as metric points named by {@link OonaMetric}, with units, for Nissa, and
 * the latency summaries they carry.
 */
import type { Attributes, MetricInput, SampleWindow } from '../core/index.js';
import { CircuitBreakerState } from '../leyline/index.js';
import type { BusMetrics, LatencySummary } from './bus.js';
import { OonaMetric } from './names.js';

/** Latency samples each window keeps (publish, handle). */
export const LATENCY_WINDOW_SAMPLES = 1024;

/** p50 and p99 of `window` (core's one quantile), in ms; 0 with no samples. */
export function latencySummary(window: SampleWindow): LatencySummary {
  const [p50Ms = 0, p99Ms = 0] = window.quantiles([0.5, 0.99]);
  return { p50Ms, p99Ms, samples: window.size };
}

/** The points of `m`: counters, per-reason and per-stream series, latency stats. */
export function busMetricPoints(m: BusMetrics): MetricInput[] {
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

/** The breaker state as `closed`, `open` or `half_open`. */
export function breakerStateName(state: CircuitBreakerState): string {
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
