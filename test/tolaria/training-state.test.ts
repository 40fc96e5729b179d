/** The trainer's position and running statistics (`training-state.ts`). */
import { describe, expect, it } from 'vitest';
import type { StepResult } from '../../src/tolaria/step-compute.js';
import { TrainingState } from '../../src/tolaria/training-state.js';

const step = (loss: number, hookNorm?: number): StepResult => ({
  loss,
  correct: 3,
  gradNorm: 2,
  hostNorm: 1,
  hookNorms: hookNorm === undefined ? [] : [{ siteId: 'hidden1', norm: hookNorm, params: 10 }],
  failure: undefined,
});

describe('TrainingState', () => {
  it('counts a step, folds it into the statistics and hands the executor its signals', () => {
    const state = new TrainingState({ datasetSize: 100, seed: 1, lossDivergence: false });
    expect(state.recordStep(step(0.9), 4, 5)).toBe(0);
    expect(state.recordStep(step(0.6, 3), 4, 5)).toBeCloseTo(-0.3, 12);
    expect(state.globalStep).toBe(2);
    expect(state.lastLoss).toBe(0.6);
    expect(state.lastStep?.trainingLoss).toBe(0.6);
    expect([...(state.lastStep?.hookGradientNorms ?? [])]).toEqual([['hidden1', 3]]);
    expect(state.epoch.state).toMatchObject({ samples: 8, correct: 6, steps: 2, trainMsSum: 10 });
    expect(state.epoch.seeds.get('hidden1')).toMatchObject({ shareSum: 0.75, uses: 1, params: 10 });
    expect(state.lossStats.count).toBe(2);
  });

  it('restores every counter on resume, and only the position-like ones on rollback', () => {
    const state = new TrainingState({ datasetSize: 100, seed: 1, lossDivergence: {} });
    state.recordStep(step(0.5), 4, 1);
    state.counters.epochsTotal = 1;
    state.counters.nonFiniteLossTotal = 0;
    const saved = state.progress();
    state.recordStep(step(0.4), 4, 1);
    state.counters.epochsTotal = 2;
    state.counters.nonFiniteLossTotal = 1;
    state.lrScale = 0.5;

    state.restoreProgress(saved, false);
    expect(state.counters).toMatchObject({ epochsTotal: 1, nonFiniteLossTotal: 1 });
    expect(state.lastLoss).toBe(0.5);
    expect(state.lrScale).toBe(1);
    state.restoreProgress(saved, true);
    expect(state.counters).toMatchObject({ epochsTotal: 1, nonFiniteLossTotal: 0 });
  });

  it('moves to a saved position: step, data cursor and random stream', () => {
    const state = new TrainingState({ datasetSize: 100, seed: 1, lossDivergence: false });
    state.cursor.nextBatch(10);
    const saved = state.position();
    const draws = [state.rng.nextFloat(), state.rng.nextFloat()];
    const next = Array.from(state.cursor.nextBatch(10));
    state.globalStep = 7;
    state.restorePosition(saved);
    expect(state.globalStep).toBe(0);
    expect([state.rng.nextFloat(), state.rng.nextFloat()]).toEqual(draws);
    expect(Array.from(state.cursor.nextBatch(10))).toEqual(next);
    expect(state.latestValidation()).toBeUndefined();
  });
});
