import { describe, expect, it } from 'vitest';
import { buildStudyReport, findTask, formatStudyMarkdown, STUDY_REPORT_SCHEMA_VERSION, type RunRecord } from '../../src/study/index.js';
import { TINY_TASK } from './fixtures/tiny-task.js';

function record(arm: RunRecord['arm'], seed: number, accuracy: number): RunRecord {
  return {
    task: 'spirals-tiny@1',
    arm,
    seed,
    attempts: 1,
    finishedAt: '2026-12-06T00:00:00.000Z',
    trainingFlops: 1000,
    result: { validationAccuracy: accuracy, trainingLoss: 0.5, steps: 12, parameters: 14, trainingWallMs: 2000, hostBlocks: [], seeds: [] },
  };
}

describe('study report', () => {
  it('summarises arms in % and compares grown with small and large (Welch)', () => {
    const report = buildStudyReport({
      task: TINY_TASK,
      arms: ['small', 'grown', 'large'],
      seeds: [0, 1, 2],
      runs: [
        record('small', 0, 0.6),
        record('small', 1, 0.62),
        record('small', 2, 0.61),
        record('grown', 0, 0.8),
        record('grown', 1, 0.82),
        record('grown', 2, 0.81),
        record('large', 0, 0.81),
        record('large', 1, 0.8),
        record('large', 2, 0.82),
      ],
      failures: [],
      aborted: false,
    });
    expect(report.schemaVersion).toBe(STUDY_REPORT_SCHEMA_VERSION);
    expect(report.complete).toBe(true);
    expect(report.arms[0]?.metric?.mean).toBeCloseTo(61, 10);
    expect(report.arms[0]?.metric?.std).toBeCloseTo(1, 10);
    expect(report.arms[1]?.host).toBe('mlp 2 → mlp 4');
    const [vsSmall, vsLarge] = report.comparisons;
    expect(vsSmall?.label).toBe('grown − small');
    expect(vsSmall?.welch?.difference).toBeCloseTo(20, 10);
    expect(vsSmall?.welch?.p).toBeLessThan(0.001);
    expect(vsLarge?.welch?.difference).toBeCloseTo(0, 10);
    expect(vsLarge?.welch?.p).toBeCloseTo(1, 10);
    const md = formatStudyMarkdown(report);
    expect(md).toContain('| small | mlp 2 | 3 | 61.00 ± 1.00 | [58.52, 63.48] | 14 | 2.0 ± 0.0 | 1.00e3 |');
    expect(md).toContain('No run grew a seed.');
    expect(md).not.toContain('skipped');
  });

  it('names the runs that skipped the batches of failed steps', () => {
    const spiky = record('grown', 1, 0.8);
    const report = buildStudyReport({
      task: TINY_TASK,
      arms: ['small', 'grown'],
      seeds: [0, 1],
      runs: [
        record('small', 0, 0.6),
        record('small', 1, 0.7),
        record('grown', 0, 0.8),
        { ...spiky, result: { ...spiky.result, steps: 11, skippedSteps: 1 } },
      ],
      failures: [],
      aborted: false,
    });
    expect(report.complete).toBe(true);
    expect(report.arms[1]?.runs.map((r) => r.skippedSteps)).toEqual([undefined, 1]);
    expect(formatStudyMarkdown(report)).toContain(
      'Runs that skipped the batches of failed steps (loss spikes; at most 1 % of the budget): grown seed 1 (1).',
    );
  });

  it('reports each growth variant of a scheduled task as its own grown arm, compared with small, large and the other variant', () => {
    const task = findTask('student-teacher@2');
    const loss = (arm: RunRecord['arm'], seed: number, trainingLoss: number): RunRecord => {
      const base = record(arm, seed, 0);
      return { ...base, task: 'student-teacher@2', result: { ...base.result, trainingLoss } };
    };
    const report = buildStudyReport({
      task,
      arms: ['small', 'grown', 'grown-random', 'large'],
      seeds: [0, 1],
      runs: [
        loss('small', 0, 1),
        loss('small', 1, 1.2),
        loss('grown', 0, 0.1),
        loss('grown', 1, 0.12),
        loss('grown-random', 0, 0.4),
        loss('grown-random', 1, 0.5),
        loss('large', 0, 0.04),
        loss('large', 1, 0.05),
      ],
      failures: [],
      aborted: false,
    });
    expect(report.arms.map((a) => [a.arm, a.host, a.growth])).toEqual([
      ['small', 'mlp 5', undefined],
      ['grown', 'mlp 5 → mlp 10', 'GradMax: BP053 per growth, scheduled'],
      ['grown-random', 'mlp 5 → mlp 10', 'random: BP054 per growth, scheduled'],
      ['large', 'mlp 10', undefined],
    ]);
    expect(report.comparisons.map((c) => c.label)).toEqual([
      'grown − small',
      'grown − large',
      'grown-random − small',
      'grown-random − large',
      'grown − grown-random',
    ]);
    expect(report.comparisons.at(-1)?.welch?.difference).toBeCloseTo(-0.34, 10);
    const md = formatStudyMarkdown(report);
    expect(md).toContain('- grown-random: random: BP054 per growth, scheduled');
    expect(md).toContain('| grown − grown-random | -0.3400 |');
  });

  it('says what is missing when runs failed or an arm has fewer than two runs', () => {
    const report = buildStudyReport({
      task: TINY_TASK,
      arms: ['small', 'grown'],
      seeds: [0, 1],
      runs: [record('small', 0, 0.6), record('small', 1, 0.7), record('grown', 0, 0.8)],
      failures: [{ arm: 'grown', seed: 1, reason: 'run grown seed 1 crashed: exit code 1' }],
      aborted: false,
    });
    expect(report.complete).toBe(false);
    expect(report.comparisons).toHaveLength(1);
    expect(report.comparisons[0]?.welch).toBeUndefined();
    const md = formatStudyMarkdown(report);
    expect(md).toContain('**Incomplete**: 3 of 4 runs finished.');
    expect(md).toContain('| grown − small | – | – | – | – | – (fewer than two runs per arm) |');
    expect(md).toContain('- grown seed 1: run grown seed 1 crashed: exit code 1');
  });

  it('reports a regression task by its final training loss', () => {
    const task = { ...TINY_TASK, metric: 'training_loss' as const };
    const report = buildStudyReport({ task, arms: ['small'], seeds: [0], runs: [record('small', 0, 0.6)], failures: [], aborted: false });
    expect(report.task.metricUnit).toBe('loss');
    expect(report.arms[0]?.runs[0]?.metric).toBe(0.5);
    expect(report.comparisons).toEqual([]);
  });
});
