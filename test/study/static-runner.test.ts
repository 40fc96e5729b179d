import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, loadSettings, type EsperSettings } from '../../src/core/index.js';
import { initTensorBackend, tf } from '../../src/tensor/index.js';
import {
  createArmRunner,
  findTask,
  forwardFlops,
  hostParameterCount,
  MAX_SKIPPED_SHARE,
  skippedBatches,
  taskShape,
  type ArmProgress,
} from '../../src/study/index.js';
import { TINY_TASK } from './fixtures/tiny-task.js';

describe('static arm runner', () => {
  let root: string;
  let settings: EsperSettings;

  beforeAll(async () => {
    await initTensorBackend();
    root = await mkdtemp(path.join(tmpdir(), 'esper-study-static-'));
    settings = loadSettings({ env: {}, overrides: { storage: { varDir: path.join(root, 'var') } } });
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('trains exactly the step budget (not a whole number of epochs) and reports the run', async () => {
    // 64 examples in batches of 16: 4 steps per epoch; 12 steps = 3 epochs. Make it 10: 2.5 epochs.
    const task = { ...TINY_TASK, steps: 10 };
    const progress: ArmProgress[] = [];
    const before = tf.memory().numTensors;
    const result = await createArmRunner().run(
      { task, arm: 'large', seed: 3, settings },
      { signal: new AbortController().signal, onProgress: (p) => progress.push(p) },
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(result.steps).toBe(10);
    expect(result.parameters).toBe(hostParameterCount(task.largeHost, taskShape(task)));
    expect(result.validationAccuracy).toBeGreaterThanOrEqual(0);
    expect(result.validationAccuracy).toBeLessThanOrEqual(1);
    expect(Number.isFinite(result.trainingLoss)).toBe(true);
    expect(result.trainingWallMs).toBeGreaterThan(0);
    expect(result.seeds).toEqual([]);
    // 2-4-2: 2·4 + 4·2 = 16 MACs.
    expect(forwardFlops(result.hostBlocks)).toBe(32);
    expect(progress.at(-1)).toMatchObject({ step: 10, totalSteps: 10 });
  });

  it('is deterministic for a seed', async () => {
    const run = () => createArmRunner().run({ task: TINY_TASK, arm: 'small', seed: 1, settings }, { signal: new AbortController().signal });
    const [a, b] = [await run(), await run()];
    expect(a.trainingLoss).toBe(b.trainingLoss);
    expect(a.validationAccuracy).toBe(b.validationAccuracy);
  });

  it('refuses the grown arm and a task that cannot run, with typed errors', async () => {
    const signal = new AbortController().signal;
    const grown = await createArmRunner()
      .run({ task: TINY_TASK, arm: 'grown', seed: 0, settings }, { signal })
      .catch((e: unknown) => e);
    expect(isEsperError(grown, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    const unsupported = await createArmRunner()
      .run({ task: { ...TINY_TASK, unsupported: 'a loader' }, arm: 'small', seed: 0, settings }, { signal })
      .catch((e: unknown) => e);
    expect(isEsperError(unsupported, ErrorCode.STUDY_TASK_UNSUPPORTED)).toBe(true);
  });

  it('runs the student–teacher regression: bias-free hosts, MSE on the teacher outputs, loss falling, no accuracy', async () => {
    const task = { ...findTask('student-teacher'), steps: 60 };
    const progress: ArmProgress[] = [];
    const run = (arm: 'small' | 'large') =>
      createArmRunner().run(
        { task, arm, seed: 0, settings },
        { signal: new AbortController().signal, onProgress: (p) => progress.push(p) },
      );
    const small = await run('small');
    // No biases: 10·5 + 5·10 = 100; 10·10 + 10·10 = 200.
    expect(small.parameters).toBe(100);
    expect(small.validationAccuracy).toBe(0);
    expect(small.steps).toBe(60);
    expect(progress[0]!.loss).toBeGreaterThan(small.trainingLoss);
    expect((await run('large')).parameters).toBe(200);
  });

  it('fails a diverging run (its failed steps skipped past 1 % of the budget) with STUDY_RUN_FAILED naming the step', async () => {
    // A rate this large: the first step's update makes every later loss non-finite, so
    // every later batch is skipped and the trainer completes its epochs at step 1 of 12.
    const task = { ...TINY_TASK, optimizer: { ...TINY_TASK.optimizer, learningRate: 1e30 } };
    const outcome = await createArmRunner()
      .run({ task, arm: 'small', seed: 0, settings }, { signal: new AbortController().signal })
      .catch((e: unknown) => e);
    expect(isEsperError(outcome, ErrorCode.STUDY_RUN_FAILED)).toBe(true);
    expect((outcome as Error).message).toMatch(/training completed at step \d+ of 12 \(last warning: tolaria\./);
  });

  it('counts a run that skipped the batches of a few failed steps as a run, and says how many', () => {
    const completed = (globalStep: number) => ({ state: 'completed' as const, globalStep });
    expect(skippedBatches(completed(4000), 0, 4000)).toBe(0);
    expect(skippedBatches(completed(4000), 5, 4000)).toBe(0); // spare batches covered the failures
    expect(skippedBatches(completed(3997), 3, 4000)).toBe(3);
    expect(skippedBatches(completed(3960), 40, 4000)).toBe(40); // 1 % of the budget
    expect(skippedBatches(completed(3959), 41, 4000)).toBeUndefined(); // diverging
    expect(skippedBatches(completed(3997), 2, 4000)).toBeUndefined(); // a step missing beyond the failed ones
    expect(skippedBatches({ state: 'halted', globalStep: 3997 }, 3, 4000)).toBeUndefined();
    expect(skippedBatches({ state: 'aborted', globalStep: 3997 }, 3, 4000)).toBeUndefined();
    expect(MAX_SKIPPED_SHARE).toBe(0.01);
  });

  it('stops at a step boundary when aborted, and rejects', async () => {
    const abort = new AbortController();
    const task = { ...TINY_TASK, steps: 400 };
    const outcome = await createArmRunner()
      .run(
        { task, arm: 'small', seed: 0, settings },
        {
          signal: abort.signal,
          onProgress: (p) => {
            if (p.step >= 40) abort.abort(new Error('stop'));
          },
        },
      )
      .catch((e: unknown) => e);
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message).toBe('stop');
  });
});
