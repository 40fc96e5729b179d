/**
 * Smoke test of the Weatherlight benchmark: runs it with a tiny budget (one epoch per arm,
 * a few round trips and restarts) on the test run's Redis, with Tamiyo in a child process
 * as the script does, and checks the shape of the JSON object it prints. Timings are never
 * asserted.
 */
import { describe, expect, it } from 'vitest';
import {
  resolveWeatherlightBenchOptions,
  runWeatherlightBench,
  WEATHERLIGHT_BENCH_DEFAULTS,
  type LatencyMs,
  type WeatherlightBenchOptions,
} from '../../bench/weatherlight.bench.js';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { testRedisUrl } from '../support/redis-url.js';

function fieldOfError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    return isEsperError(error) ? error.details?.['field'] : undefined;
  }
  throw new Error('expected INVALID_ARGUMENT');
}

function expectLatency(latency: LatencyMs, n: number): void {
  expect(Object.keys(latency).sort()).toEqual(['max', 'n', 'p50', 'p95']);
  expect(latency.n).toBe(n);
  expect(latency.p50).toBeGreaterThan(0);
  expect(latency.p95).toBeGreaterThanOrEqual(latency.p50);
  expect(latency.max).toBeGreaterThanOrEqual(latency.p95);
}

describe('weatherlight bench options', () => {
  it('defaults to the documented protocol: Tamiyo in a child process, interleaved rounds of 12 epochs', () => {
    const resolved = resolveWeatherlightBenchOptions();
    expect(resolved).toEqual(WEATHERLIGHT_BENCH_DEFAULTS);
    expect(resolved).toMatchObject({ tamiyo: 'child', epochs: 12 });
    expect(resolved.rounds).toBeGreaterThanOrEqual(3);
    expect(resolved.roundTrips).toBeGreaterThanOrEqual(200);
  });

  it('rejects bad options with INVALID_ARGUMENT naming the field', () => {
    expect(fieldOfError(() => resolveWeatherlightBenchOptions({ rounds: 0 }))).toBe('rounds');
    expect(fieldOfError(() => resolveWeatherlightBenchOptions({ epochs: 1.5 }))).toBe('epochs');
    expect(fieldOfError(() => resolveWeatherlightBenchOptions({ roundTripWarmup: -1 }))).toBe('roundTripWarmup');
    expect(fieldOfError(() => resolveWeatherlightBenchOptions({ restartBackoffMs: 0 }))).toBe('restartBackoffMs');
    expect(fieldOfError(() => resolveWeatherlightBenchOptions({ tamiyo: 'elsewhere' as WeatherlightBenchOptions['tamiyo'] }))).toBe(
      'tamiyo',
    );
  });
});

describe('weatherlight bench run', () => {
  it('measures both arms, the round trips and the restarts, and returns one JSON-safe object of the documented shape', async () => {
    const lines: string[] = [];
    const result = await runWeatherlightBench({
      redisUrl: testRedisUrl(),
      epochs: 1,
      rounds: 1,
      warmupEpochs: 0,
      roundTrips: 6,
      roundTripWarmup: 2,
      restarts: 2,
      restartBackoffMs: 20,
      log: (m) => lines.push(m),
    });

    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(result.bench).toBe('weatherlight');
    expect(result.machine.cpus).toBeGreaterThan(0);
    expect(lines.filter((l) => l.startsWith('round 1/1 '))).toHaveLength(2);

    const { steps } = result;
    expect(steps.protocol).toMatchObject({
      dataset: 'spirals',
      hidden: [16, 16],
      batchSize: 32,
      epochs: 1,
      rounds: 1,
      interleaved: true,
      tamiyo: 'child',
    });
    for (const arm of [steps.embedded, steps.distributed]) {
      expect(arm.steps).toBe(32);
      expect(arm.runs).toHaveLength(1);
      expect(arm.stepMedianMs).toBeGreaterThan(0);
      expect(arm.stepP95Ms).toBeGreaterThanOrEqual(arm.stepMedianMs);
      expect(arm.controllerMsPerStep).toBeGreaterThan(0);
      expect(arm.seedsGrown).toHaveLength(1);
    }
    expect(steps.stepRatio).toBeCloseTo(steps.distributed.stepMedianMs / steps.embedded.stepMedianMs, 2);

    expectLatency(result.commandRoundTrip.redis, 6);
    expectLatency(result.commandRoundTrip.memory, 6);
    expect(result.commandRoundTrip.p50Ratio).toBeCloseTo(result.commandRoundTrip.redis.p50 / result.commandRoundTrip.memory.p50, 2);

    const restart = result.supervisorRestart;
    expect(restart.samples).toBe(2);
    expect(restart.observedBackoffMs).toEqual([20]);
    expectLatency(restart.killToReadyMs, 2);
    // A restart cannot come before its backoff.
    expect(restart.killToReadyMs.p50).toBeGreaterThanOrEqual(20);
    expectLatency(restart.spawnToReadyMs, 2);
  }, 40_000);
});
