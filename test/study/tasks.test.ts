import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import {
  armsOfTask,
  assertTaskRunnable,
  findTask,
  growthVariant,
  isGrownArm,
  widenSlotsOf,
  grownHost,
  hostParameterCount,
  STUDY_TASKS,
  taskKey,
  taskShape,
  TaskDefinitionSchema,
} from '../../src/study/index.js';
import { thrownBy } from '../support/thrown.js';

describe('study task registry', () => {
  it('names every task with a version and finds it by name or by name@version', () => {
    expect(STUDY_TASKS.map(taskKey)).toEqual([
      'fmnist-mlp-narrow@1',
      'fmnist-cnn-small@1',
      'fmnist-cnn-small@2',
      'spirals-mlp@1',
      'student-teacher@1',
      'student-teacher@2',
    ]);
    expect(findTask('fmnist-cnn-small')).toBe(findTask('fmnist-cnn-small@2'));
    expect(findTask('student-teacher')).toBe(findTask('student-teacher@2'));
    expect(findTask('fmnist-mlp-narrow')).toBe(findTask('fmnist-mlp-narrow@1'));
    const newer = { ...findTask('spirals-mlp'), version: 2 };
    expect(findTask('spirals-mlp', [...STUDY_TASKS, newer])).toBe(newer);
    expect(thrownBy(() => findTask('fmnist-mlp-narrow@9'), ErrorCode.INVALID_ARGUMENT).message).toMatch(/known: fmnist-mlp-narrow@1/);
  });

  it('declares the large host as exactly the small host after the growth plan', () => {
    for (const task of STUDY_TASKS) {
      const shape = taskShape(task);
      const bias = task.id !== 'student-teacher';
      expect(hostParameterCount(grownHost(task), shape, bias), taskKey(task)).toBe(hostParameterCount(task.largeHost, shape, bias));
      expect(hostParameterCount(task.largeHost, shape, bias)).toBeGreaterThan(hostParameterCount(task.smallHost, shape, bias));
    }
  });

  it('defines fmnist-mlp-narrow as the issue gives it', () => {
    const task = findTask('fmnist-mlp-narrow');
    expect(task).toMatchObject({
      smallHost: { hidden: [8] },
      largeHost: { hidden: [32] },
      batchSize: 128,
      steps: 6000,
      optimizer: { kind: 'adam', learningRate: 2e-3 },
      lrSchedule: { policy: 'cosine' },
      metric: 'validation_accuracy',
    });
    // 784·8 + 8 + 8·10 + 10 = 6,370; 784·32 + 32 + 32·10 + 10 = 25,450.
    expect(hostParameterCount(task.smallHost, taskShape(task))).toBe(6370);
    expect(hostParameterCount(task.largeHost, taskShape(task))).toBe(25_450);
  });

  it('defines fmnist-cnn-small@2 as @1 at batch 128 with the growth at the end of the first epoch', () => {
    const [v1, v2] = [findTask('fmnist-cnn-small@1'), findTask('fmnist-cnn-small@2')];
    const same = (t: typeof v1) => ({ ...t, version: 0, description: '', batchSize: 0, growthPlan: [] });
    expect(same(v2)).toEqual(same(v1));
    expect([v1.batchSize, v2.batchSize, v2.growthPlan]).toEqual([64, 128, [{ method: 'widen', site: 'block2', units: 8, atStep: 469 }]]);
  });

  it('counts CNN parameters as Tolaria builds them (3×3 same convs, 2×2 pools)', () => {
    // conv1 9·1·4 + 4 = 40; conv2 9·4·8 + 8 = 296; head 7·7·8·10 + 10 = 3,930.
    expect(hostParameterCount(findTask('fmnist-cnn-small').smallHost, { inputShape: [28, 28, 1], outputs: 10 })).toBe(4266);
  });

  it('defines the student–teacher protocol (bias-free 10-5-10 → 10-10-10, MSE, SGD 0.1, full batch), runnable like every task', () => {
    const task = findTask('student-teacher@1');
    expect(task.growthPlan.map((g) => g.atStep)).toEqual([200, 400, 600, 800, 1000]);
    expect(task).toMatchObject({
      smallHost: { hidden: [5], bias: false },
      largeHost: { hidden: [10], bias: false },
      batchSize: 1000,
      steps: 1500,
      loss: 'mse',
      metric: 'training_loss',
      optimizer: { kind: 'sgd', learningRate: 0.1 },
    });
    expect(grownHost(task)).toEqual(task.largeHost);
    for (const runnable of STUDY_TASKS) expect(() => assertTaskRunnable(runnable)).not.toThrow();
    const unsupported = { ...task, unsupported: 'a loader for something' };
    expect(thrownBy(() => assertTaskRunnable(unsupported), ErrorCode.STUDY_TASK_UNSUPPORTED).details.missing).toBe(
      'a loader for something',
    );
  });

  it('defines student-teacher@2: the uniform(−1, 1) teacher, scheduled GradMax and random growth arms, the lifecycle pinned', () => {
    const task = findTask('student-teacher@2');
    const v1 = findTask('student-teacher@1');
    expect(task.dataset).toEqual({ ...v1.dataset, teacherWeightRange: 1 });
    expect([task.growthPlan, task.smallHost, task.largeHost, task.steps, task.optimizer]).toEqual([
      v1.growthPlan,
      v1.smallHost,
      v1.largeHost,
      v1.steps,
      v1.optimizer,
    ]);
    expect(armsOfTask(task)).toEqual(['small', 'grown', 'grown-random', 'large']);
    expect(armsOfTask(v1)).toEqual(['small', 'grown', 'large']);
    expect(growthVariant(task, 'grown-random')).toEqual({ arm: 'grown-random', blueprintId: 'BP054', label: 'random' });
    expect(growthVariant(v1, 'grown')).toBeUndefined();
    thrownBy(() => growthVariant(v1, 'grown-random'), ErrorCode.INVALID_ARGUMENT);
    expect([widenSlotsOf(task), widenSlotsOf(v1)]).toEqual([5, 1]);
    expect(task.controller?.lifecycle).toEqual({ shadowingSteps: 50, probationSteps: 50, minContribution: 0 });
    // Each variant's blueprint grows the plan's unit count, and its seed is decided before the next growth.
    const catalog = new KarnCatalog();
    for (const variant of task.controller?.scheduled?.variants ?? []) {
      for (const step of task.growthPlan) expect(catalog.defaultParameters(variant.blueprintId)).toEqual({ units: step.units });
    }
    expect(task.growthPlan[1]!.atStep - task.growthPlan[0]!.atStep).toBeGreaterThan(3 + 50 + 50);
  });

  it('tells grown arms by name: grown and grown-<name>', () => {
    expect(['grown', 'grown-random', 'grown-gradmax-2'].map(isGrownArm)).toEqual([true, true, true]);
    expect(['small', 'large', 'grownx', 'grown-', 'grown-Random', 'grown--a'].map(isGrownArm)).toEqual([
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
  });

  it('takes a learned controller alone (policy file, decisions file)', () => {
    const task = findTask('spirals-mlp');
    const controller = { learned: { policyFile: '/p.bin', decisionsFile: '/d.dec' } };
    expect(TaskDefinitionSchema.safeParse({ ...task, controller }).success).toBe(true);
  });

  it('refuses a task grown by two of the heuristic, a schedule and a learned policy, two variants of one arm, or a variant arm that is not grown', () => {
    const task = findTask('student-teacher@2');
    const variants = task.controller?.scheduled?.variants ?? [];
    const controllers = [
      { heuristic: {}, scheduled: { variants } },
      { heuristic: {}, learned: { policyFile: '/p.bin' } },
      { scheduled: { variants }, learned: { policyFile: '/p.bin' } },
      { learned: { policyFile: '' } },
      { scheduled: { variants: [variants[0], variants[0]] } },
      { scheduled: { variants: [{ ...variants[0], arm: 'large' }] } },
      { lifecycle: { probationSteps: 0 } },
    ];
    for (const controller of controllers) {
      expect(TaskDefinitionSchema.safeParse({ ...task, controller }).success, JSON.stringify(controller)).toBe(false);
    }
  });

  it('every registered task fits the schema a child process checks it with', () => {
    for (const task of STUDY_TASKS) expect(TaskDefinitionSchema.safeParse(task).success, taskKey(task)).toBe(true);
  });

  it('refuses a growth plan whose site is not a site of the host', () => {
    const bad = { ...findTask('spirals-mlp'), growthPlan: [{ method: 'widen' as const, site: 'hidden3', units: 1, atStep: 1 }] };
    thrownBy(() => grownHost(bad), ErrorCode.INVALID_ARGUMENT);
  });
});
