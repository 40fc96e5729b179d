/**
 * `esper study` end to end: all three arms of a quick spirals-mlp task over 2 seeds, each run
 * a real child process — the grown arm composed by Weatherlight (Tamiyo's heuristic, Kasmina,
 * Urza, signed commands) — then report.json checked against the run files it summarises.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStudyCommand, STUDY_HELP } from '../../src/cli/study.js';
import { loadSettings, type EsperSettings } from '../../src/core/index.js';
import {
  findTask,
  hostParameterCount,
  runFlops,
  STUDY_TASKS,
  taskShape,
  type RunRecord,
  type StudyReport,
  type TaskDefinition,
} from '../../src/study/index.js';
import { capture } from './fixtures/capture.js';

/** TEST-ONLY task: spirals-mlp cut to 10 epochs (320 steps), its controller paced to germinate from epoch 2. */
const QUICK_SPIRALS: TaskDefinition = {
  ...findTask('spirals-mlp'),
  id: 'spirals-mlp-quick',
  description: 'test only: spirals-mlp, 320 steps',
  steps: 320,
  controller: { heuristic: { minEpochs: 2, stabilizationEpochs: 1, plateauEpochsToGerminate: 1, plateauRelativeImprovement: 0.5 } },
};

/** Budgets far above what a loaded machine needs, so wall-clock budgets cannot change a run's decisions. */
const GENEROUS_BUDGETS = {
  tolaria: { tamiyoTimeoutMs: 120_000, kasminaTimeoutMs: 120_000, epochBudgetMs: 600_000, hookBudgetMs: 60_000 },
  tamiyo: { stepTimeoutMs: 60_000, metadataTimeoutMs: 60_000 },
} as const;

describe('esper study', () => {
  let root: string;
  let settings: EsperSettings;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'esper-study-cli-'));
    settings = loadSettings({
      env: {},
      overrides: {
        ...GENEROUS_BUDGETS,
        storage: { varDir: path.join(root, 'var') },
        // Short lifecycle so a seed germinated at epoch 2 is decided within the 320 steps.
        kasmina: {
          kernelLatencyBudgetMs: 60_000,
          trainingSteps: 30,
          blendingSteps: 20,
          shadowingSteps: 10,
          probationSteps: 10,
          embargoSteps: 30,
        },
      },
    });
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('runs small, grown and large over 2 seeds in child processes, prints the report path and the summary, and report.json adds up', async () => {
    const out = path.join(root, 'study');
    const { io, out: streams } = capture();
    const stdout = (): string => streams.stdout;
    const err = (): string => streams.stderr;
    const code = await runStudyCommand(['--task', 'spirals-mlp-quick', '--seeds', '2', '--out', out, '--concurrency', '2'], io, {
      settings,
      tasks: [...STUDY_TASKS, QUICK_SPIRALS],
    });
    expect(code, err()).toBe(0);
    expect(stdout()).toContain(`report: ${path.join(out, 'report.md')}`);
    expect(stdout()).toMatch(/\| arm \| host \| n \| mean ± std \|/);
    expect(stdout()).toMatch(/\| grown − small \| -?\d+\.\d\d \|/);
    for (const arm of ['small', 'grown', 'large']) {
      for (const seed of [0, 1]) expect(err()).toContain(`esper study: ${arm} seed ${seed}: started`);
    }
    expect(err()).toContain('esper study: done');

    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as StudyReport;
    expect(report.complete).toBe(true);
    expect(report.task.key).toBe('spirals-mlp-quick@1');
    expect(report.seeds).toEqual([0, 1]);
    expect(report.arms.map((a) => [a.arm, a.runs.length])).toEqual([
      ['small', 2],
      ['grown', 2],
      ['large', 2],
    ]);
    const files = (await readdir(path.join(out, 'runs'))).sort();
    expect(files).toEqual([
      'grown-seed0.json',
      'grown-seed1.json',
      'large-seed0.json',
      'large-seed1.json',
      'small-seed0.json',
      'small-seed1.json',
    ]);
    const shape = taskShape(QUICK_SPIRALS);
    for (const arm of report.arms) {
      const metrics = arm.runs.map((r) => r.metric);
      expect(arm.metric?.mean).toBeCloseTo(metrics.reduce((s, m) => s + m, 0) / metrics.length, 9);
      for (const run of arm.runs) {
        const record = JSON.parse(await readFile(path.join(out, 'runs', `${arm.arm}-seed${run.seed}.json`), 'utf8')) as RunRecord;
        // Each run trained the whole budget; its FLOPs and figures are those of its run file.
        expect(record.result.steps).toBe(320);
        expect(run.metric).toBeCloseTo((record.result.validationAccuracy ?? Number.NaN) * 100, 9);
        expect(run.trainingFlops).toBe(runFlops(record.result, QUICK_SPIRALS.batchSize));
        expect(run.parameters).toBe(record.result.parameters);
        if (arm.arm !== 'grown') {
          const host = arm.arm === 'small' ? QUICK_SPIRALS.smallHost : QUICK_SPIRALS.largeHost;
          expect(run.parameters).toBe(hostParameterCount(host, shape));
          expect(run.seeds).toEqual([]);
        }
      }
    }
    const small = report.arms.find((a) => a.arm === 'small')!;
    const grown = report.arms.find((a) => a.arm === 'grown')!;
    // The grown arm grew, through Tamiyo's signed commands and Kasmina's gates.
    const seeds = grown.runs.flatMap((r) => r.seeds);
    expect(seeds.length).toBeGreaterThan(0);
    for (const run of grown.runs) {
      const smallRun = small.runs.find((r) => r.seed === run.seed)!;
      const fossilized = run.seeds.filter((s) => s.fate === 'FOSSILIZED').reduce((n, s) => n + s.parameters, 0);
      expect(run.parameters).toBe(smallRun.parameters + fossilized);
      // Same host, same steps: the grown run costs the small run's FLOPs plus its seeds'.
      expect(run.trainingFlops).toBeGreaterThanOrEqual(smallRun.trainingFlops);
      expect(run.trainingFlops > smallRun.trainingFlops).toBe(run.seeds.some((s) => s.blocks.length > 0));
      for (const seed of run.seeds) {
        expect(seed.germinatedStep).toBeLessThanOrEqual(seed.fateStep);
        expect(seed.fateStep).toBeLessThanOrEqual(320);
        expect(seed.blocks.length).toBeGreaterThan(0);
        // Every counted multiply is a weight of the seed (biases are its only other parameters).
        const weights = seed.blocks.reduce((n, b) => n + (b.kind === 'dense' ? b.inputUnits * b.outputUnits : 0), 0);
        expect(weights).toBeLessThanOrEqual(seed.parameters);
        expect(weights).toBeGreaterThan(0);
      }
    }
    const fates = seeds.reduce<Record<string, number>>((m, s) => ({ ...m, [s.fate]: (m[s.fate] ?? 0) + 1 }), {});
    expect(grown.seedFates).toEqual(fates);
    const difference = report.comparisons.find((c) => c.label === 'grown − small')!.welch!.difference;
    expect(difference).toBeCloseTo(grown.metric!.mean - small.metric!.mean, 9);
    const markdown = await readFile(path.join(out, 'report.md'), 'utf8');
    expect(markdown).toContain('# Study spirals-mlp-quick@1');
    // Each grown run's storage (Urza, forge WAL, nonces) was its own, and is gone.
    expect(await readdir(path.join(root, 'var', 'study-runs'))).toEqual([]);
  }, 600_000);

  it('refuses bad flags before anything runs (exit 2)', async () => {
    for (const argv of [
      [],
      ['--task', 'no-such-task'],
      ['--task', 'spirals-mlp', '--arms', 'small,huge'],
      ['--task', 'spirals-mlp', '--arms', 'small,small'],
      // A variant arm of another task.
      ['--task', 'spirals-mlp', '--arms', 'small,grown-random'],
      ['--task', 'spirals-mlp', '--seeds', '0'],
    ]) {
      const { io, out: streams } = capture();
      const err = (): string => streams.stderr;
      expect(await runStudyCommand(argv, io, { settings }), argv.join(' ')).toBe(2);
      expect(err()).toMatch(/^esper study: /);
      expect(err()).toContain('Usage: esper study');
    }
    const help = capture();
    expect(await runStudyCommand(['--help'], help.io, { settings })).toBe(0);
    expect(help.out.stdout).toBe(STUDY_HELP);
    // Every registered task that can run is listed (student-teacher runs since regression landed).
    for (const task of [
      'fmnist-mlp-narrow@1',
      'fmnist-cnn-small@1',
      'fmnist-cnn-small@2',
      'spirals-mlp@1',
      'student-teacher@1',
      'student-teacher@2',
    ])
      expect(STUDY_HELP).toContain(task);
    expect(STUDY_HELP).toContain('grown-random');
  });
});
