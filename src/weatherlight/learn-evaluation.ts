/**
 * The held-out evaluation of a learned policy: on seeds no episode trained on, the task's
 * arms — `small` and `large` (static), `heuristic` (Tamiyo's heuristic growing the small
 * host), `initial` (the policy learning started from), `learned` (drawing its decisions, as
 * it learned) and `greedy` (the learned policy taking its most likely choice at each
 * decision) — each the same run of the task (data, step budget, seeds), so the arms are
 * paired by seed. It reports every
 * arm's accuracy and reward (`episodeReward`), the paired differences with their 95 %
 * confidence intervals (t on the per-seed differences), what each growing arm grew
 * (germinations, fates, parameters: a run that grows nothing or everything shows), the
 * learned policy's action shares (drawn and greedy), and the verdict of Simic's gates (on
 * the drawn policy: the one a fleet's Tamiyo runs).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { EsperSettings } from '../core/index.js';
import { evaluateGates, failedGateReasons, readDecisionLog, type HeldOutEvaluator, type PpoStats } from '../simic/index.js';
import { defaultStaticRunner, runInChild, summarize, type ArmResult, type Summary, type TaskDefinition } from '../study/index.js';
import { SAMPLED_ACTION_NAMES, SAMPLED_ACTIONS, serialisePolicy } from '../tamiyo/index.js';
import { grownArmRunnerModule } from './grown-arm.js';
import { episodeSettings, HELD_OUT_SEED_BASE, isFailedRun, learnedTask, runJobs, scoredReward } from './learn.js';

/** The arms of an evaluation. */
export const EVALUATION_ARMS = ['small', 'heuristic', 'initial', 'learned', 'greedy', 'large'] as const;

/** One of {@link EVALUATION_ARMS}. */
export type EvaluationArm = (typeof EVALUATION_ARMS)[number];

/** Options of {@link evaluateLearnedPolicy}. */
export interface EvaluationOptions {
  readonly task: TaskDefinition;
  readonly settings: EsperSettings;
  readonly directory: string;
  readonly policyFile: string;
  readonly initialPolicyFile: string;
  /** Held-out seeds (from {@link HELD_OUT_SEED_BASE}). @default 10 */
  readonly seeds?: number;
  readonly arms?: readonly EvaluationArm[];
  readonly paramCost?: number;
  /** Statistics of the last update, for the training gates. */
  readonly stats?: PpoStats;
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  readonly onRun?: (arm: EvaluationArm, seed: number, result: ArmResult) => void;
}

/** One arm's runs. */
export interface ArmEvaluation {
  readonly arm: EvaluationArm;
  readonly accuracy: Summary;
  readonly reward: Summary;
  /** Per seed, in seed order. */
  readonly runs: readonly {
    readonly seed: number;
    /** The runner failed the run: scored as accuracy 0. */
    readonly failed: boolean;
    readonly accuracy: number;
    readonly reward: number;
    readonly parameters: number;
    readonly germinated: number;
    readonly fates: Readonly<Record<string, number>>;
  }[];
  /** Runs the runner failed (scored as accuracy 0). */
  readonly failed: number;
  /** Runs that germinated nothing, and runs whose parameters reached the large host's or more. */
  readonly grewNothing: number;
  readonly grewEverything: number;
}

/** A paired difference `a − b` over the seeds. */
export interface PairedDifference {
  readonly a: EvaluationArm;
  readonly b: EvaluationArm;
  readonly metric: 'accuracy' | 'reward';
  readonly summary: Summary;
  /** Whether the 95 % interval excludes 0. */
  readonly significant: boolean;
}

/** What {@link evaluateLearnedPolicy} found. */
export interface LearnEvaluation {
  readonly seeds: readonly number[];
  readonly arms: readonly ArmEvaluation[];
  readonly differences: readonly PairedDifference[];
  /** Share of the learned policy's decisions per action (wait, germinate, cull) over its held-out runs. */
  readonly learnedActionShare: Readonly<Record<string, number>>;
  /** The same for the `greedy` arm (empty without it). */
  readonly greedyActionShare: Readonly<Record<string, number>>;
  readonly gates: { readonly passed: boolean; readonly reasons: readonly string[] };
}

/** Evaluates `policyFile` on held-out seeds (see the file comment). */
export async function evaluateLearnedPolicy(options: EvaluationOptions): Promise<LearnEvaluation> {
  const { task } = options;
  const settings = episodeSettings(options.settings);
  const signal = options.signal ?? new AbortController().signal;
  const seeds = Array.from({ length: options.seeds ?? 10 }, (_, i) => HELD_OUT_SEED_BASE + i);
  const arms = options.arms ?? EVALUATION_ARMS;
  const paramCost = options.paramCost ?? 0.05;
  const actionCounts = { learned: new Map<number, number>(), greedy: new Map<number, number>() };
  // A failed run (`isFailedRun`) is scored as accuracy 0 and counted, in every arm alike; a
  // crashed process fails the evaluation.
  const jobs: (() => Promise<{ arm: EvaluationArm; seed: number; result: ArmResult | undefined }>)[] = [];
  for (const seed of seeds) {
    for (const arm of arms) {
      jobs.push(async () => {
        const decisionsFile = path.join(options.directory, `eval-${arm}-seed${seed}.dec`);
        const common = { seed, settings, signal } as const;
        const file = arm === 'initial' ? options.initialPolicyFile : options.policyFile;
        const request =
          arm === 'small' || arm === 'large'
            ? { ...common, runner: defaultStaticRunner(), task, arm }
            : arm === 'heuristic'
              ? { ...common, runner: grownArmRunnerModule(), task, arm: 'grown' as const }
              : {
                  ...common,
                  runner: grownArmRunnerModule(),
                  task: learnedTask(task, file, decisionsFile, arm === 'greedy' ? 'mode' : 'sample'),
                  arm: 'grown' as const,
                };
        let result: ArmResult | undefined;
        try {
          result = await runInChild(request);
          options.onRun?.(arm, seed, result);
        } catch (error) {
          if (!isFailedRun(error)) throw error;
        }
        if (arm === 'learned' || arm === 'greedy') {
          const counts = actionCounts[arm];
          for (const d of await readDecisionLog(decisionsFile).catch(() => [])) {
            counts.set(d.choice.action, (counts.get(d.choice.action) ?? 0) + 1);
          }
        }
        await rm(decisionsFile, { force: true });
        return { arm, seed, result };
      });
    }
  }
  const done = await runJobs('learn-evaluation', jobs, options.concurrency ?? 2);
  const staticBySeed = new Map(done.filter((d) => d.arm === 'small').map((d) => [d.seed, d.result?.validationAccuracy ?? 0]));
  const largeParameters = done.find((d) => d.arm === 'large' && d.result !== undefined)?.result?.parameters;
  const armEvaluations: ArmEvaluation[] = arms.map((arm) => {
    const runs = seeds.map((seed) => {
      const result = done.find((d) => d.arm === arm && d.seed === seed)?.result;
      const reference = staticBySeed.get(seed) ?? 0;
      const reward = scoredReward(task, result, reference, paramCost);
      if (result === undefined) return { seed, failed: true, accuracy: 0, reward, parameters: 0, germinated: 0, fates: {} };
      const fates: Record<string, number> = {};
      for (const s of result.seeds) fates[s.fate] = (fates[s.fate] ?? 0) + 1;
      return {
        seed,
        failed: false,
        accuracy: result.validationAccuracy ?? 0,
        reward,
        parameters: result.parameters,
        germinated: result.seeds.length,
        fates,
      };
    });
    return {
      arm,
      accuracy: summarize(runs.map((r) => r.accuracy)),
      reward: summarize(runs.map((r) => r.reward)),
      runs,
      failed: runs.filter((r) => r.failed).length,
      grewNothing: arm === 'small' || arm === 'large' ? 0 : runs.filter((r) => !r.failed && r.germinated === 0).length,
      grewEverything:
        arm === 'small' || arm === 'large' || largeParameters === undefined
          ? 0
          : runs.filter((r) => r.parameters >= largeParameters).length,
    };
  });
  const byArm = new Map(armEvaluations.map((a) => [a.arm, a]));
  const differences: PairedDifference[] = [];
  for (const [a, b] of [
    ['learned', 'heuristic'],
    ['learned', 'small'],
    ['learned', 'initial'],
    ['learned', 'large'],
    ['greedy', 'heuristic'],
    ['greedy', 'small'],
    ['greedy', 'learned'],
    ['heuristic', 'small'],
  ] as const) {
    const ea = byArm.get(a);
    const eb = byArm.get(b);
    if (ea === undefined || eb === undefined) continue;
    for (const metric of ['accuracy', 'reward'] as const) {
      const summary = summarize(ea.runs.map((r, i) => r[metric] - (eb.runs[i]?.[metric] ?? 0)));
      const significant = summary.ci95 !== undefined && (summary.ci95[0] > 0 || summary.ci95[1] < 0);
      differences.push({ a, b, metric, summary, significant });
    }
  }
  const shares = (counts: ReadonlyMap<number, number>): Record<string, number> => {
    const total = [...counts.values()].reduce((x, y) => x + y, 0);
    if (total === 0) return {};
    return Object.fromEntries(SAMPLED_ACTIONS.map((action, i) => [SAMPLED_ACTION_NAMES[i] as string, (counts.get(action) ?? 0) / total]));
  };
  const mean = (arm: EvaluationArm): number => byArm.get(arm)?.reward.mean ?? Number.NaN;
  const validation = evaluateGates(
    {
      averageReward: options.stats?.averageReward ?? 0,
      policyLoss: options.stats?.policyLoss ?? 0,
      valueLoss: options.stats?.valueLoss ?? 0,
      paramLoss: 0,
      policyEntropy: options.stats?.policyEntropy ?? 0,
      episodes: options.stats?.episodes ?? 0,
    },
    byArm.has('learned') && byArm.has('initial') && byArm.has('heuristic')
      ? { candidate: mean('learned'), current: mean('initial'), heuristic: mean('heuristic'), seeds: seeds.length }
      : undefined,
  );
  return {
    seeds,
    arms: armEvaluations,
    differences,
    learnedActionShare: shares(actionCounts.learned),
    greedyActionShare: shares(actionCounts.greedy),
    gates: { passed: validation.passed, reasons: failedGateReasons(validation) },
  };
}

/** Options of {@link episodeEvaluator}. */
export interface EpisodeEvaluatorOptions {
  readonly task: TaskDefinition;
  readonly settings: EsperSettings;
  /** Where the candidates' files and decision logs go (each evaluation in its own subdirectory). */
  readonly directory: string;
  /** Held-out seeds per evaluation. @default 4 */
  readonly seeds?: number;
  /** Cadence the candidate decides at (stored in its file). @default 1 */
  readonly decisionEveryEpochs?: number;
  readonly paramCost?: number;
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
}

/**
 * Simic's held-out evaluation of a fleet's candidate (`SimicService`'s `evaluate`): the
 * candidate and the current policy each play the task on the held-out seeds as learned
 * policies, beside the heuristic and the static small host (the reward's reference); the
 * result is each one's mean reward over the same seeds.
 */
export function episodeEvaluator(options: EpisodeEvaluatorOptions): HeldOutEvaluator {
  let evaluations = 0;
  return async (candidate, { current, currentVersion }) => {
    evaluations += 1;
    const directory = path.join(options.directory, `evaluation-${evaluations}`);
    await mkdir(directory, { recursive: true });
    const meta = (version: string) => ({
      version,
      ...(options.decisionEveryEpochs === undefined ? {} : { decisionEveryEpochs: options.decisionEveryEpochs }),
    });
    const policyFile = path.join(directory, 'candidate.bin');
    const initialPolicyFile = path.join(directory, 'current.bin');
    await writeFile(policyFile, serialisePolicy(candidate, meta(`${currentVersion}-candidate`)));
    await writeFile(initialPolicyFile, serialisePolicy(current, meta(currentVersion)));
    try {
      const evaluation = await evaluateLearnedPolicy({
        task: options.task,
        settings: options.settings,
        directory,
        policyFile,
        initialPolicyFile,
        seeds: options.seeds ?? 4,
        arms: ['small', 'heuristic', 'initial', 'learned'],
        ...(options.paramCost === undefined ? {} : { paramCost: options.paramCost }),
        ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      const mean = (arm: EvaluationArm): number => evaluation.arms.find((a) => a.arm === arm)?.reward.mean ?? Number.NaN;
      return { candidate: mean('learned'), current: mean('initial'), heuristic: mean('heuristic'), seeds: evaluation.seeds.length };
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  };
}
