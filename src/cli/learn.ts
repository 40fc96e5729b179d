/**
 * `esper learn`: Simic learns Tamiyo's policy on a study task (Weatherlight's
 * `learnPolicy`: episodes in child processes, PPO updates) for a time budget, then
 * evaluates it on held-out seeds against the heuristic, the policy it started from and the
 * static arms (`evaluateLearnedPolicy`). Progress on stderr (one line per update with the
 * learner's health: reward, per-head entropy, KL, clip fraction, explained variance);
 * `report.md`, `report.json` and `policy.bin` in the output directory; the summary on stdout.
 * `esper run --policy learned:<dir>/policy.bin` then runs the learned policy.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describeError, loadSettings, type EsperSettings } from '../core/index.js';
import { findTask, STUDY_TASKS, taskKey, type TaskDefinition } from '../study/index.js';
import { IMITATION_DEFAULTS } from '../simic/index.js';
import { SAMPLED_ACTION_NAMES } from '../tamiyo/index.js';
import {
  evaluateLearnedPolicy,
  learnPolicy,
  runKeyRing,
  type EpisodeSummary,
  type LearnEvaluation,
  type LearnResult,
  type WarmStart,
} from '../weatherlight/index.js';
import { ExitCode, helpText, logSettings, parseCommandLine, reportFailure, UsageError, withInterrupts } from './scaffold.js';
import type { CliIo, CommandSpec, FlagSpec } from './scaffold.js';

/** The flags of `esper learn`, declared once. */
export const LEARN_FLAGS = {
  task: {
    kind: 'string',
    value: '<name>',
    help: `study task to learn on (required): ${STUDY_TASKS.filter((t) => t.metric === 'validation_accuracy' && t.unsupported === undefined)
      .map((t) => taskKey(t))
      .join(', ')}`,
  },
  minutes: {
    kind: 'integer',
    value: '<n>',
    help: 'learning budget in minutes (evaluation not included)',
    min: 1,
    max: 10_000,
    default: 60,
  },
  'episodes-per-update': { kind: 'integer', value: '<n>', help: 'episodes (training runs) per PPO update', min: 1, max: 1024, default: 16 },
  'every-epochs': { kind: 'integer', value: '<k>', help: 'the policy decides at every k-th epoch end', min: 1, max: 10_000, default: 1 },
  'learning-rate': { kind: 'number', value: '<lr>', help: "the learner's Adam step size", greaterThan: 0, max: 1, defaultText: '3e-4' },
  passes: { kind: 'integer', value: '<n>', help: "the learner's passes over each batch (PPO epochs)", min: 1, max: 100, default: 4 },
  'held-out': { kind: 'integer', value: '<n>', help: 'held-out seeds of the evaluation', min: 2, max: 1000, default: 10 },
  'warm-start': {
    kind: 'integer',
    value: '<n>',
    help: 'clone the heuristic first: its decisions on n runs, learned by behaviour cloning before PPO (0: none)',
    min: 0,
    max: 10_000,
    default: 0,
  },
  'warm-start-passes': {
    kind: 'integer',
    value: '<n>',
    help: 'passes of behaviour cloning over the demonstrations',
    min: 1,
    max: 10_000,
    default: IMITATION_DEFAULTS.passes,
  },
  'warm-start-learning-rate': {
    kind: 'number',
    value: '<lr>',
    help: "behaviour cloning's Adam step size (its own optimizer; --learning-rate is PPO's)",
    greaterThan: 0,
    max: 1,
    default: IMITATION_DEFAULTS.learningRate,
  },
  from: { kind: 'string', value: '<file>', help: 'policy file to start from', defaultText: 'a fresh network' },
  out: { kind: 'string', value: '<dir>', help: 'output directory', defaultText: '<storage.varDir>/learn/<task>@<version>' },
  concurrency: { kind: 'integer', value: '<n>', help: 'runs at once, one process each', min: 1, max: 64, defaultText: 'cores' },
} as const satisfies Readonly<Record<string, FlagSpec>>;

/** The declaration of `esper learn`. */
export const LEARN_COMMAND: CommandSpec<typeof LEARN_FLAGS> = {
  name: 'esper learn',
  summary: "learn Tamiyo's policy on a study task (Simic, PPO) and evaluate it on held-out seeds",
  synopsis: '--task <name> [options]',
  flags: LEARN_FLAGS,
  notes: `Each episode is one grown-arm run of the task with the current policy deciding by
sampling; the reward is the run's final validation accuracy minus the static small host's,
less 5 points for growing the task's whole growth budget. The evaluation runs the arms
small, heuristic, initial (the policy PPO started from: the fresh
network, or the clone after --warm-start), learned (drawing its decisions), greedy
(the learned policy taking its most likely choice at each decision) and large on the same
held-out seeds and reports paired differences with 95 % confidence intervals, growth per run and
Simic's gates. Use the result with: esper run --policy learned:<out>/policy.bin (drawing its
decisions) or --policy greedy:<out>/policy.bin (its most likely choice at each)

Exit codes: 0 learned and evaluated; 1 a run or the learner failed; 2 bad flags or settings;
130 stopped by SIGINT or SIGTERM.`,
};

/** The `--help` text of `esper learn`. */
export const LEARN_HELP = helpText(LEARN_COMMAND);

/** Options of {@link runLearnCommand} beyond the arguments (tests inject these). */
export interface LearnCommandOptions {
  readonly signal?: AbortSignal;
  readonly settings?: EsperSettings;
  readonly tasks?: readonly TaskDefinition[];
}

const pct = (x: number): string => `${(100 * x).toFixed(2)}`;

/** The evaluation as Markdown. */
export function formatLearnReport(task: TaskDefinition, learned: LearnResult, evaluation: LearnEvaluation): string {
  const lines = [
    `# esper learn — ${taskKey(task)}`,
    '',
    `${learned.episodes} episodes, ${learned.updates.length} PPO updates in ${(learned.elapsedMs / 60_000).toFixed(1)} min; final policy ${learned.version}.`,
    `Training baseline (static small host): ${pct(learned.baselineAccuracy)} %. Held-out seeds: ${evaluation.seeds[0]}…${evaluation.seeds.at(-1)}.`,
    ...(learned.warmStart === undefined ? [] : [`Warm start (behaviour cloning): ${warmStartLine(learned.warmStart)}.`]),
    '',
    '## Arms (held-out seeds)',
    '',
    '| arm | accuracy % (mean ± std) | 95 % CI | reward (mean) | parameters (mean) | germinated / run | grew nothing | grew ≥ large | failed |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const a of evaluation.arms) {
    const ci = a.accuracy.ci95 === undefined ? '—' : `[${pct(a.accuracy.ci95[0])}, ${pct(a.accuracy.ci95[1])}]`;
    const params = a.runs.reduce((n, r) => n + r.parameters, 0) / a.runs.length;
    const germinated = a.runs.reduce((n, r) => n + r.germinated, 0) / a.runs.length;
    lines.push(
      `| ${a.arm} | ${pct(a.accuracy.mean)} ± ${pct(a.accuracy.std ?? 0)} | ${ci} | ${a.reward.mean.toFixed(4)} | ${params.toFixed(0)} | ${germinated.toFixed(1)} | ${a.grewNothing} | ${a.grewEverything} | ${a.failed} |`,
    );
  }
  lines.push(
    '',
    '## Paired differences (per seed, t interval)',
    '',
    '| difference | metric | mean | 95 % CI | excludes 0 |',
    '|---|---|---|---|---|',
  );
  for (const d of evaluation.differences) {
    const ci = d.summary.ci95 === undefined ? '—' : `[${d.summary.ci95[0].toFixed(4)}, ${d.summary.ci95[1].toFixed(4)}]`;
    lines.push(`| ${d.a} − ${d.b} | ${d.metric} | ${d.summary.mean.toFixed(4)} | ${ci} | ${d.significant ? 'yes' : 'no'} |`);
  }
  lines.push('', '## Fates per growing arm', '');
  for (const a of evaluation.arms.filter((x) => x.arm !== 'small' && x.arm !== 'large')) {
    const fates: Record<string, number> = {};
    for (const r of a.runs) for (const [fate, n] of Object.entries(r.fates)) fates[fate] = (fates[fate] ?? 0) + n;
    lines.push(
      `- ${a.arm}: ${
        Object.entries(fates)
          .map(([f, n]) => `${f} ${n}`)
          .join(', ') || 'nothing grown'
      }`,
    );
  }
  const share = (shares: Readonly<Record<string, number>>): string =>
    Object.entries(shares)
      .map(([a, s]) => `${a} ${(100 * s).toFixed(1)} %`)
      .join(', ');
  lines.push('', `Learned policy's decisions on the held-out runs: ${share(evaluation.learnedActionShare)}.`);
  if (Object.keys(evaluation.greedyActionShare).length > 0) {
    lines.push(`Greedy (its most likely choice at each decision): ${share(evaluation.greedyActionShare)}.`);
  }
  lines.push('');
  lines.push(`Simic's gates: ${evaluation.gates.passed ? 'passed' : `blocked (${evaluation.gates.reasons.join('; ')})`}.`, '');
  lines.push(
    '## Updates',
    '',
    '| version | min | reward | entropy action/site/blueprint/seed | KL | clip | expl. var. | value loss | germinate share |',
    '|---|---|---|---|---|---|---|---|---|',
  );
  for (const u of learned.updates) {
    const s = u.stats;
    lines.push(
      `| ${u.version} | ${(u.elapsedMs / 60_000).toFixed(1)} | ${s.averageReward.toFixed(4)} | ${[s.entropy.action, s.entropy.site, s.entropy.blueprint, s.entropy.seed].map((h) => h.toFixed(2)).join(' / ')} | ${s.approxKl.toFixed(4)} | ${s.clipFraction.toFixed(3)} | ${s.explainedVariance.toFixed(3)} | ${s.valueLoss.toFixed(4)} | ${(s.actionShare[1] ?? 0).toFixed(2)} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** One line on the warm start: the heuristic's runs, and how well the clone fits them. */
export function warmStartLine(w: WarmStart): string {
  const mean = (f: (e: EpisodeSummary) => number): number => w.episodes.reduce((sum, e) => sum + f(e), 0) / Math.max(1, w.episodes.length);
  const s = w.stats;
  const shares = s.actionShare.map((x, i) => `${SAMPLED_ACTION_NAMES[i] ?? i} ${(100 * x).toFixed(0)} %`).join(', ');
  return `${w.version}: cloned the heuristic from ${s.decisions} decisions (${shares}) of ${s.episodes} runs (their accuracy ${pct(mean((e) => e.accuracy))} %, reward ${mean((e) => e.reward).toFixed(4)}; played in ${(w.playMs / 1000).toFixed(0)} s): −log π ${s.firstLoss.toFixed(3)} → ${s.lastLoss.toFixed(3)} over ${s.passes} passes at Adam ${s.learningRate}, mean π(its choice) ${s.agreement.toFixed(3)}, value loss ${s.valueLoss.toFixed(4)} (${(w.fitMs / 1000).toFixed(0)} s)`;
}

/** Runs `esper learn` with the arguments after `learn`; returns the exit code. */
export async function runLearnCommand(argv: readonly string[], io: CliIo, options: LearnCommandOptions = {}): Promise<number> {
  let task: TaskDefinition;
  let settings: EsperSettings;
  let values: ReturnType<typeof parseCommandLine<typeof LEARN_FLAGS>>['values'];
  try {
    const parsed = parseCommandLine(LEARN_COMMAND, argv);
    if (parsed.help) {
      io.stdout.write(LEARN_HELP);
      return ExitCode.OK;
    }
    values = parsed.values;
    if (values.task === undefined) throw new UsageError('--task is required');
    try {
      task = findTask(values.task, options.tasks);
    } catch (error) {
      throw new UsageError(`--task: ${describeError(error)}`, { cause: error });
    }
    if (task.metric !== 'validation_accuracy') throw new UsageError(`--task: ${taskKey(task)} has no validation accuracy to learn from`);
    settings = options.settings ?? loadSettings();
    logSettings(io, LEARN_COMMAND.name, settings);
    await runKeyRing(settings, (file) => io.stderr.write(`esper learn: no signing key configured; created ${file} (mode 0600)\n`));
  } catch (error) {
    return reportFailure(io, LEARN_COMMAND, error);
  }
  const directory = values.out ?? path.join(settings.storage.varDir, 'learn', taskKey(task));
  const every = values['every-epochs'];
  try {
    return await withInterrupts(io, LEARN_COMMAND.name, options.signal, async (signal) => {
      const learned = await learnPolicy({
        task,
        settings,
        directory,
        minutes: values.minutes,
        episodesPerUpdate: values['episodes-per-update'],
        everyEpochs: every,
        signal,
        ppo: { epochs: values.passes, ...(values['learning-rate'] === undefined ? {} : { learningRate: values['learning-rate'] }) },
        ...(values.concurrency === undefined ? {} : { concurrency: values.concurrency }),
        ...(values.from === undefined ? {} : { initialPolicy: values.from }),
        ...(values['warm-start'] === 0
          ? {}
          : {
              warmStart: {
                episodes: values['warm-start'],
                passes: values['warm-start-passes'],
                learningRate: values['warm-start-learning-rate'],
              },
            }),
        onEvent: (event) => {
          if (event.type === 'baseline')
            io.stderr.write(`esper learn: baseline (static small) ${pct(event.accuracy)} % over ${event.runs} runs\n`);
          else if (event.type === 'episode_failed') io.stderr.write(`esper learn: episode seed ${event.seed} failed: ${event.message}\n`);
          else if (event.type === 'warm_start') io.stderr.write(`esper learn: ${warmStartLine(event.warmStart)}\n`);
          else {
            const { stats: s, version, elapsedMs, episodes } = event.update;
            const best = Math.max(...episodes.map((e) => e.accuracy));
            const skipped = episodes.filter((e) => e.skippedSteps > 0).length;
            io.stderr.write(
              `esper learn: ${version} at ${(elapsedMs / 60_000).toFixed(1)} min: reward ${s.averageReward.toFixed(4)}, best ${pct(best)} %, entropy ${s.entropy.action.toFixed(2)}/${s.entropy.site.toFixed(2)}/${s.entropy.blueprint.toFixed(2)}, KL ${s.approxKl.toFixed(4)}, clip ${s.clipFraction.toFixed(3)}, EV ${s.explainedVariance.toFixed(2)}${skipped > 0 ? `, ${skipped} episode(s) skipped failed steps` : ''}\n`,
            );
          }
        },
      });
      if (signal.aborted) return ExitCode.INTERRUPTED;
      io.stderr.write(`esper learn: evaluating ${learned.version} on ${values['held-out']} held-out seeds\n`);
      const evaluation = await evaluateLearnedPolicy({
        task,
        settings,
        directory,
        policyFile: learned.policyFile,
        initialPolicyFile: learned.initialPolicyFile,
        seeds: values['held-out'],
        signal,
        ...(learned.updates.at(-1) === undefined ? {} : { stats: (learned.updates.at(-1) as LearnResult['updates'][number]).stats }),
        ...(values.concurrency === undefined ? {} : { concurrency: values.concurrency }),
      });
      const report = formatLearnReport(task, learned, evaluation);
      await writeFile(path.join(directory, 'report.md'), report);
      await writeFile(path.join(directory, 'report.json'), `${JSON.stringify({ task: taskKey(task), learned, evaluation }, null, 1)}\n`);
      io.stdout.write(report);
      io.stdout.write(`policy: ${learned.policyFile}\nreport: ${path.join(directory, 'report.md')}\n`);
      return ExitCode.OK;
    });
  } catch (error) {
    return reportFailure(io, LEARN_COMMAND, error);
  }
}
