/** `esper learn`'s flags: help, and bad input refused with exit code 2 before anything runs. */
import { describe, expect, it } from 'vitest';
import { formatLearnReport, LEARN_HELP, runLearnCommand } from '../../src/cli/learn.js';
import { loadSettings } from '../../src/core/index.js';
import { findTask } from '../../src/study/index.js';

function capture() {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } },
    out: () => out,
    err: () => err,
  };
}

describe('esper learn', () => {
  it('prints its help, naming the tasks it can learn on and the report it writes', async () => {
    const { io, out } = capture();
    expect(await runLearnCommand(['--help'], io as never)).toBe(0);
    expect(out()).toBe(LEARN_HELP);
    expect(LEARN_HELP).toContain('spirals-mlp@1');
    expect(LEARN_HELP).not.toContain('student-teacher@1'); // measured by training loss: nothing to learn the reward from
    expect(LEARN_HELP).toContain('--policy learned:<out>/policy.bin');
  });

  it.each([
    [[], /--task is required/],
    [['--task', 'no-such-task'], /unknown study task/],
    [['--task', 'student-teacher'], /no validation accuracy/],
    [['--task', 'spirals-mlp', '--minutes', '0'], /--minutes/],
    [['--task', 'spirals-mlp', '--learning-rate', '-1'], /--learning-rate/],
    [['--task', 'spirals-mlp', '--warm-start-learning-rate', '0'], /--warm-start-learning-rate/],
  ])('refuses %j with exit code 2', async (argv, message) => {
    const { io, err } = capture();
    expect(await runLearnCommand(argv, io as never, { settings: loadSettings({ env: {} }) })).toBe(2);
    expect(err()).toMatch(message);
  });

  it('reports every arm, the paired differences and the gates in its Markdown', () => {
    const summary = { n: 2, mean: 0.9, std: 0.01, ci95: [0.8, 1] as [number, number] };
    const run = { seed: 1_000_000, failed: false, accuracy: 0.9, reward: 0.2, parameters: 142, germinated: 1, fates: { FOSSILIZED: 1 } };
    const text = formatLearnReport(
      findTask('spirals-mlp'),
      {
        policyFile: 'p',
        initialPolicyFile: 'p0',
        version: 'simic-v3',
        updates: [],
        baselineAccuracy: 0.6,
        episodes: 48,
        elapsedMs: 60_000,
      },
      {
        seeds: [1_000_000, 1_000_001],
        arms: (['small', 'heuristic', 'learned'] as const).map((arm) => ({
          arm,
          accuracy: summary,
          reward: summary,
          runs: [run, run],
          failed: 0,
          grewNothing: 0,
          grewEverything: 0,
        })),
        differences: [{ a: 'learned', b: 'heuristic', metric: 'accuracy', summary, significant: true }],
        learnedActionShare: { wait: 0.9, germinate: 0.1, cull: 0 },
        greedyActionShare: { wait: 0.5, germinate: 0.5, cull: 0 },
        gates: { passed: false, reasons: ['held_out_vs_heuristic: 0.1 < 0.2'] },
      },
    );
    expect(text).toContain('| learned | 90.00 ± 1.00 | [80.00, 100.00]');
    expect(text).toContain('| learned − heuristic | accuracy | 0.9000 | [0.8000, 1.0000] | yes |');
    expect(text).toContain('learned: FOSSILIZED 2');
    expect(text).toContain("Simic's gates: blocked (held_out_vs_heuristic: 0.1 < 0.2)");
    expect(text).toContain('wait 90.0 %, germinate 10.0 %, cull 0.0 %');
    expect(text).toContain('Greedy (its most likely choice at each decision): wait 50.0 %, germinate 50.0 %, cull 0.0 %.');
  });
});
