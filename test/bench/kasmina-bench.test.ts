/**
 * Smoke test of the Kasmina overhead benchmark: runs its measuring functions with tiny
 * counts and checks the shape of the JSON object it prints. Timings are never asserted.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  KASMINA_AIMS,
  KASMINA_BENCH_DEFAULTS,
  resolveKasminaBenchOptions,
  runKasminaBench,
  type KasminaBenchOptions,
  type LatencyUs,
} from '../../bench/kasmina.bench.js';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { initTensorBackend, tf } from '../../src/tensor/index.js';

const TINY: Partial<KasminaBenchOptions> = {
  warmupSteps: 3,
  stepsPerRun: 10,
  rounds: 1,
  seedCounts: [1, 2],
  pauseCommands: 12,
  verifyCommands: 12,
  commandWarmup: 2,
  germinatePairs: 2,
  log: () => undefined,
};

beforeAll(async () => {
  await initTensorBackend();
});

function fieldOfError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    return isEsperError(error) ? error.details?.['field'] : undefined;
  }
  throw new Error('expected INVALID_ARGUMENT');
}

const finitePositive = (value: number): void => {
  expect(Number.isFinite(value)).toBe(true);
  expect(value).toBeGreaterThan(0);
};

function expectLatency(latency: LatencyUs, n: number): void {
  expect(Object.keys(latency).sort()).toEqual(['max', 'n', 'p50', 'p90', 'p99']);
  expect(latency.n).toBe(n);
  finitePositive(latency.p50);
  expect(latency.p90).toBeGreaterThanOrEqual(latency.p50);
  expect(latency.p99).toBeGreaterThanOrEqual(latency.p90);
  expect(latency.max).toBeGreaterThanOrEqual(latency.p99);
}

describe('kasmina bench options', () => {
  it('defaults to the documented protocol', () => {
    const resolved = resolveKasminaBenchOptions();
    expect(resolved.seedCounts).toEqual([1, 2, 3, 4]);
    expect(resolved.pauseCommands).toBeGreaterThanOrEqual(2000);
    expect(resolved).toEqual(KASMINA_BENCH_DEFAULTS);
  });

  it('rejects bad options with INVALID_ARGUMENT naming the field', () => {
    expect(fieldOfError(() => resolveKasminaBenchOptions({ rounds: 0 }))).toBe('rounds');
    expect(fieldOfError(() => resolveKasminaBenchOptions({ pauseCommands: 1.5 }))).toBe('pauseCommands');
    expect(fieldOfError(() => resolveKasminaBenchOptions({ seedCounts: [1, 9] }))).toBe('seedCounts');
    expect(fieldOfError(() => resolveKasminaBenchOptions({ warmupSteps: 2 }))).toBe('warmupSteps');
    expect(fieldOfError(() => resolveKasminaBenchOptions({ stepsPerRun: 9 }))).toBe('stepsPerRun');
    expect(fieldOfError(() => resolveKasminaBenchOptions({ commandWarmup: -1 }))).toBe('commandWarmup');
  });
});

describe('kasmina bench run', () => {
  it('measures every configuration and returns one JSON-safe object of the documented shape, freeing its tensors', async () => {
    const tensorsBefore = tf.memory().numTensors;
    const lines: string[] = [];
    const result = await runKasminaBench({ ...TINY, log: (m) => lines.push(m) });
    expect(tf.memory().numTensors).toBe(tensorsBefore);

    // What the script prints is exactly this object.
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(result.bench).toBe('kasmina');
    expect(result.host).toMatchObject({ sites: 8, batch: 64, optimizer: 'adam', blueprint: 'BP001' });
    finitePositive(result.host.parameters);
    expect(result.protocol).toEqual({ warmupSteps: 3, stepsPerRun: 10, rounds: 1, statistic: 'median', interleaved: true });
    expect(result.machine.cpus).toBeGreaterThan(0);
    // bare, dormant8, 2 training and 2 blended configurations, one round each.
    expect(lines.filter((l) => l.startsWith('round 1/1 '))).toHaveLength(6);

    finitePositive(result.hostStepMs);
    finitePositive(result.hostStepCpuMs);
    finitePositive(result.dormant8.stepMs);
    finitePositive(result.dormant8.ratio);
    expect(result.dormant8.samples).toBe(10);
    expect(result.dormant8.overheadPct).toBeCloseTo((result.dormant8.ratio - 1) * 100, 1);
    finitePositive(result.dormant8.kasminaUsPerStep);
    finitePositive(result.dormant8.cpuStepMs);
    expect(result.dormant8.cpuOverheadPct).toBeCloseTo((result.dormant8.cpuRatio - 1) * 100, 1);

    expect(result.active.map((a) => [a.seeds, a.phase, a.stage, a.alpha])).toEqual([
      [1, 'training', 'TRAINING', 0],
      [2, 'training', 'TRAINING', 0],
      [1, 'blended', 'SHADOWING', 1],
      [2, 'blended', 'SHADOWING', 1],
    ]);
    for (const a of result.active) {
      finitePositive(a.stepMs);
      expect(a.ratio).toBeCloseTo(a.stepMs / result.hostStepMs, 2);
      expect(a.cpuRatio).toBeCloseTo(a.cpuStepMs / result.hostStepCpuMs, 2);
      expect(a.samples).toBe(10);
      finitePositive(a.kasminaUsPerStep);
      if (a.phase === 'training') {
        expect(a.isolation?.everySteps).toBe(10);
        expect(a.isolation?.checkSteps).toBe(1);
        finitePositive(a.isolation?.checkStepKasminaUs ?? Number.NaN);
        expect(Number.isFinite(a.isolation?.amortisedPctOfHostStep)).toBe(true);
      } else {
        expect(a.isolation).toBeUndefined();
      }
    }

    expectLatency(result.commands.pauseApplyUs, 12);
    expectLatency(result.commands.verifyUs, 12);
    expectLatency(result.commands.germinateCullUs, 2);
    expectLatency(result.commands.germinateUs, 2);
    expectLatency(result.commands.cullUs, 2);
    // Every timed germination took its kernel bytes from the cache.
    expect(result.commands.kernelCacheHits).toBeGreaterThanOrEqual(2);
    expect(result.commands.gc.count).toBeGreaterThanOrEqual(0);

    expect(result.aims).toEqual(KASMINA_AIMS);
    expect(result.met).toEqual({
      dormant: result.dormant8.overheadPct < KASMINA_AIMS.dormantOverheadPctBelow,
      dormantCpu: result.dormant8.cpuOverheadPct < KASMINA_AIMS.dormantOverheadPctBelow,
      verifyDispatch: result.commands.pauseApplyUs.p99 < KASMINA_AIMS.verifyDispatchP99UsBelow,
    });
  }, 90_000);
});
