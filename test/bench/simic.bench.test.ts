/**
 * Smoke test of the Simic benchmark: runs it with a tiny budget (spirals-mlp cut to 320
 * steps, one update of two episodes, a few reports) on the test run's Redis, and checks the
 * shape of the JSON object it prints. Timings are never asserted.
 */
import { describe, expect, it } from 'vitest';
import { resolveSimicBenchOptions, runSimicBench, SIMIC_BENCH_DEFAULTS } from '../../bench/simic.bench.js';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { findTask, type TaskDefinition } from '../../src/study/index.js';
import { testRedisUrl } from '../support/redis-url.js';

/** TEST-ONLY: spirals-mlp cut to 320 steps (10 epochs of 32). */
const QUICK_SPIRALS: TaskDefinition = { ...findTask('spirals-mlp'), id: 'spirals-quick', steps: 320 };

function fieldOfError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    return isEsperError(error) ? error.details?.['field'] : undefined;
  }
  throw new Error('expected INVALID_ARGUMENT');
}

describe('simic bench options', () => {
  it('defaults to the documented protocol: spirals-mlp, two updates, one process per core', () => {
    const resolved = resolveSimicBenchOptions();
    expect(resolved).toEqual(SIMIC_BENCH_DEFAULTS);
    expect(resolved).toMatchObject({ task: 'spirals-mlp', updates: 2, everyEpochs: 1 });
    expect(resolved.episodesPerUpdate).toBeGreaterThanOrEqual(2);
    expect(resolved.reports).toBeGreaterThanOrEqual(500);
  });

  it('rejects bad options with INVALID_ARGUMENT naming the field', () => {
    expect(fieldOfError(() => resolveSimicBenchOptions({ task: 'no-such-task' }))).toBe('task');
    expect(fieldOfError(() => resolveSimicBenchOptions({ task: 'student-teacher' }))).toBe('task'); // scored by training loss
    expect(fieldOfError(() => resolveSimicBenchOptions({ updates: 0 }))).toBe('updates');
    expect(fieldOfError(() => resolveSimicBenchOptions({ episodesPerUpdate: 1.5 }))).toBe('episodesPerUpdate');
    expect(fieldOfError(() => resolveSimicBenchOptions({ concurrency: 0 }))).toBe('concurrency');
    expect(fieldOfError(() => resolveSimicBenchOptions({ forwardRepeats: 0 }))).toBe('forwardRepeats');
    expect(fieldOfError(() => resolveSimicBenchOptions({ reports: 1 }))).toBe('reports');
  });
});

describe('simic bench run', () => {
  it('measures episodes against static runs, updates against the forward pass, ingestion against direct adds', async () => {
    const lines: string[] = [];
    const result = await runSimicBench({
      task: QUICK_SPIRALS,
      updates: 1,
      episodesPerUpdate: 2,
      concurrency: 2,
      everyEpochs: 2,
      forwardRepeats: 1,
      reports: 12,
      redisUrl: testRedisUrl(),
      log: (m) => lines.push(m),
    });

    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(result.bench).toBe('simic');
    expect(result.machine.cpus).toBeGreaterThan(0);
    expect(lines.some((l) => l.startsWith('learn: simic-v1: 2 episodes'))).toBe(true);

    const { episodes } = result;
    expect(episodes).toMatchObject({ task: 'spirals-quick', steps: 320, updates: 1, episodesPerUpdate: 2, concurrency: 2 });
    expect(episodes.learned.episodes + episodes.learned.failedEpisodes).toBe(2);
    expect(episodes.learned.episodesPerMin).toBeGreaterThan(0);
    // One update: its static batch runs before learning, none after.
    expect(episodes.static.runs).toBe(2);
    expect(episodes.static.batches.map((b) => b.seeds)).toEqual([[0, 1]]);
    expect(episodes.static.firstHalf?.runs).toBe(2);
    expect(episodes.static.secondHalf).toBeNull();
    expect(episodes.costRatio).toBeCloseTo(episodes.static.runsPerMin / episodes.learned.episodesPerMin, 2);

    const { updates } = result;
    expect(updates.learnUpdates).toHaveLength(1);
    // Epoch ends 0, 2, 4, 6, 8: five decisions per episode.
    expect(updates.learnUpdates[0]?.decisions).toBe(10);
    expect(updates.batch.episodesPlayed).toBe(2);
    expect(updates.batch.decisionsPerEpisode).toEqual([5, 5]);
    expect(updates.batch.decisions).toBeGreaterThanOrEqual(10);
    expect(updates.forwardMs).toBeGreaterThan(0);
    expect(updates.sameBatchUpdateMs).toBeGreaterThan(0);
    expect(updates.updateRatio).toBeGreaterThan(0);
    expect(updates.sameBatchRatio).toBeCloseTo(updates.sameBatchUpdateMs / updates.forwardMs, 1);

    const { ingestion } = result;
    expect(ingestion.reports).toBe(12);
    expect(ingestion.redis).toBe('given');
    // Each report carries a decision context, most of its size.
    expect(ingestion.decisionContextBytesMean).toBeGreaterThan(0);
    expect(ingestion.reportBytesMean).toBeGreaterThan(ingestion.decisionContextBytesMean);
    expect(ingestion.bus.reportsPerS).toBeGreaterThan(0);
    expect(ingestion.direct.reportsPerS).toBeGreaterThan(0);
    expect(ingestion.direct.halvesMedianMs).toHaveLength(2);
    expect(ingestion.throughputRatio).toBeCloseTo(ingestion.direct.reportsPerS / ingestion.bus.reportsPerS, 1);
  }, 240_000);
});
