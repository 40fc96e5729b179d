/**
 * The study's grown arms of a task with scheduled growth, run in-process through the whole
 * path (Urza, forge, sheets, Tamiyo's ScheduledGrowthPolicy, signed commands, Kasmina's
 * gates): student-teacher@2 cut to 240 steps and two growths, each variant growing one unit
 * per planned step at the next slot of hidden1, every seed fossilized before the run ends.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, loadSettings, type EsperSettings } from '../../src/core/index.js';
import { findTask, type GrownArm, type TaskDefinition } from '../../src/study/index.js';
import { ScheduledGrowthPolicy } from '../../src/tamiyo/index.js';
import { createArmRunner, policyOf } from '../../src/weatherlight/grown-arm.js';
import { thrownBy } from '../support/thrown.js';

const V2 = findTask('student-teacher@2');

/**
 * TEST-ONLY: student-teacher@2 with 240 steps, growths at steps 160 and 200 (once the loss
 * has settled: Tamiyo's risk engine holds growth while it is volatile) and a short probation.
 */
const QUICK_STUDENT: TaskDefinition = {
  ...V2,
  id: 'student-teacher-quick',
  steps: 240,
  growthPlan: [160, 200].map((atStep) => ({ method: 'widen' as const, site: 'hidden1', units: 1, atStep })),
  largeHost: { family: 'mlp', hidden: [7], bias: false },
  controller: { ...V2.controller, lifecycle: { shadowingSteps: 5, probationSteps: 5, minContribution: 0 } },
};

describe('grown arms of a scheduled task', () => {
  let root: string;
  let settings: EsperSettings;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'esper-grown-arm-'));
    settings = loadSettings({
      env: {},
      overrides: {
        storage: { varDir: path.join(root, 'var') },
        core: { latencyBudgets: 'observe' },
      },
    });
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it.each([
    ['grown', 'BP053'],
    ['grown-random', 'BP054'],
  ] as const)(
    '%s grows one %s unit at each planned step, at slots hidden1.widen and hidden1.widen2, and fossilizes both',
    async (arm, blueprintId) => {
      const result = await createArmRunner().run({ task: QUICK_STUDENT, arm, seed: 0, settings }, { signal: new AbortController().signal });
      expect(result.steps).toBe(240);
      expect(result.validationAccuracy).toBe(0);
      expect(Number.isFinite(result.trainingLoss)).toBe(true);
      expect(result.seeds.map((s) => [s.siteId, s.blueprintId, s.germinatedStep, s.fate, s.parameters])).toEqual([
        ['hidden1.widen', blueprintId, 160, 'FOSSILIZED', 20],
        ['hidden1.widen2', blueprintId, 200, 'FOSSILIZED', 20],
      ]);
      // 10-5-10 without biases (100) plus two bias-free units of 10 + 10 weights: the 10-7-10 large host.
      expect(result.parameters).toBe(140);
    },
    120_000,
  );

  it('gives each variant its blueprint on the scheduled policy, the heuristic to other tasks, and refuses an unknown arm', () => {
    const scheduled = policyOf(QUICK_STUDENT, 'grown-random').policy as ScheduledGrowthPolicy;
    expect(scheduled).toBeInstanceOf(ScheduledGrowthPolicy);
    expect(scheduled.snapshot().entries.map((e) => [e.atStep, e.layer, e.blueprintId])).toEqual([
      [160, 'hidden1', 'BP054'],
      [200, 'hidden1', 'BP054'],
    ]);
    expect(policyOf(findTask('fmnist-mlp-narrow'), 'grown')).toEqual({ policy: 'heuristic' });
    thrownBy(() => policyOf(findTask('fmnist-mlp-narrow'), 'grown-random' as GrownArm), ErrorCode.INVALID_ARGUMENT);
  });
});
