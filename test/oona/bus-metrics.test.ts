import { describe, expect, it } from 'vitest';
import { SampleWindow } from '../../src/core/index.js';
import { CircuitBreakerState } from '../../src/leyline/index.js';
import type { BusMetrics } from '../../src/oona/bus.js';
import { breakerStateName, busMetricPoints, LATENCY_WINDOW_SAMPLES, latencySummary } from '../../src/oona/bus-metrics.js';
import { OonaMetric } from '../../src/oona/names.js';

const METRICS: BusMetrics = {
  publishTotal: 5,
  publishShed: 1,
  publishTimeouts: 0,
  publishFailures: 0,
  emergencyPublished: 2,
  emergencyDemoted: 1,
  handledTotal: 4,
  handlerFailures: 1,
  duplicatesDropped: 3,
  retriesTotal: 1,
  deadLetterTotal: 1,
  deadLetterByReason: { handler_failed: 1 },
  reclaimedTotal: 0,
  depth: { normal: 7 },
  publishLatency: { p50Ms: 1, p99Ms: 2, samples: 5 },
  handleLatency: { p50Ms: 3, p99Ms: 4, samples: 4 },
  emergencyTokens: 9,
  publishBreaker: 'closed',
  consumeBreaker: 'open',
};

describe('busMetricPoints', () => {
  it('names every counter, reason, stream and latency stat with its unit', () => {
    const points = busMetricPoints(METRICS);
    const find = (name: string, attributes?: Record<string, string>) =>
      points.find((p) => p.name === name && JSON.stringify(p.attributes) === JSON.stringify(attributes));
    expect(find(OonaMetric.DUPLICATES_DROPPED)).toEqual({ name: OonaMetric.DUPLICATES_DROPPED, value: 3, unit: 'count' });
    expect(find(OonaMetric.DEAD_LETTER_BY_REASON, { reason: 'handler_failed' })?.value).toBe(1);
    expect(find(OonaMetric.QUEUE_DEPTH, { stream: 'normal' })?.value).toBe(7);
    expect(find(OonaMetric.EMERGENCY_TOKENS)).toMatchObject({ value: 9, unit: 'tokens' });
    expect(find(OonaMetric.HANDLE_LATENCY_MS, { stat: 'p99' })).toMatchObject({ value: 4, unit: 'ms' });
  });
});

describe('latencySummary', () => {
  it('reports zeros with no samples', () => {
    expect(latencySummary(new SampleWindow(LATENCY_WINDOW_SAMPLES))).toEqual({ p50Ms: 0, p99Ms: 0, samples: 0 });
  });

  it('gives p50 and p99 by core quantile (linear interpolation)', () => {
    const window = new SampleWindow(LATENCY_WINDOW_SAMPLES);
    for (let i = 100; i >= 1; i -= 1) window.record(i);
    const summary = latencySummary(window);
    expect(summary.samples).toBe(100);
    expect(summary.p50Ms).toBeCloseTo(50.5, 10);
    expect(summary.p99Ms).toBeCloseTo(99.01, 10);
  });

  it('summarises only the most recent samples', () => {
    const window = new SampleWindow(4);
    for (const ms of [1000, 1000, 1, 2, 3, 4]) window.record(ms);
    const summary = latencySummary(window);
    expect(summary).toMatchObject({ samples: 4, p50Ms: 2.5 });
    expect(summary.p99Ms).toBeCloseTo(3.97, 10);
  });
});

describe('breakerStateName', () => {
  it('spells each breaker state as the metrics snapshot does', () => {
    expect(breakerStateName(CircuitBreakerState.CIRCUIT_STATE_CLOSED)).toBe('closed');
    expect(breakerStateName(CircuitBreakerState.CIRCUIT_STATE_OPEN)).toBe('open');
    expect(breakerStateName(CircuitBreakerState.CIRCUIT_STATE_HALF_OPEN)).toBe('half_open');
  });
});
