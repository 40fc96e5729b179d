/**
 * `esper learn`'s experiment: Simic learns Tamiyo's GNN policy on a study task by playing
 * episodes — each one grown-arm run of the task (the signed, gated path of `esper run`, in
 * its own child process, in parallel) with the current policy sampling its decisions at
 * epoch ends — and updating the policy by PPO on them, until the time budget is spent;
 * then it evaluates the final policy on held-out seeds against the heuristic, the policy it
 * started from and the static arms (`learn-evaluation.ts`) and runs Simic's gates.
 *
 * **Reward** of an episode (on its last decision; no shaping): final validation accuracy
 * minus the static small host's on the same seed (a fraction), minus a parameter cost:
 * `paramCost` × the parameters the run added over the small host, as a share of what the
 * task's growth plan adds (the large host's count minus the small one's). With the default
 * `paramCost` 0.05, growing the whole growth budget costs 5 accuracy points.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AsyncWorker, ErrorCode, EsperError, isEsperError, type EsperSettings } from '../core/index.js';
import {
  IMITATION_DEFAULTS,
  PpoLearner,
  readDecisionLog,
  type ImitationOptions,
  type ImitationStats,
  type PpoOptions,
  type PpoStats,
  type Trajectory,
} from '../simic/index.js';
import { defaultStaticRunner, hostParameterCount, runInChild, taskShape, type ArmResult, type TaskDefinition } from '../study/index.js';
import { gnnConfigFor, GRAPH_RELATIONS, loadPolicy, serialisePolicy, TamiyoGnn, type SampledDecision } from '../tamiyo/index.js';
import { initTensorBackend, seededRng } from '../tensor/index.js';
import { grownArmRunnerModule } from './grown-arm.js';

/** Options of {@link learnPolicy}. */
export interface LearnOptions {
  readonly task: TaskDefinition;
  readonly settings: EsperSettings;
  /** Where policies, episodes' decision logs, `learn.json` and the report go. */
  readonly directory: string;
  /** Wall-clock budget of learning (evaluation not included), minutes. */
  readonly minutes: number;
  /** Stop after this many updates even with time left. @default no limit */
  readonly maxUpdates?: number;
  /** Episodes per PPO update. @default 16 */
  readonly episodesPerUpdate?: number;
  /** Runs at once, one process each. @default max(1, cpus) */
  readonly concurrency?: number;
  /** Parameter cost of the task's whole growth budget, in accuracy (fraction). @default 0.05 */
  readonly paramCost?: number;
  /** Static small-host runs whose mean is the training episodes' baseline. @default 4 */
  readonly baselineRuns?: number;
  /**
   * The policy decides at the first epoch end and every k-th after; stored in its file
   * (`decisionEveryEpochs`), so it acts the same wherever it runs. @default 1
   */
  readonly everyEpochs?: number;
  /** PPO settings over {@link PPO_DEFAULTS}. */
  readonly ppo?: Partial<PpoOptions>;
  /**
   * Behaviour cloning before PPO: `episodes` runs grown by the heuristic, its decisions
   * recorded as demonstrations at the policy's cadence (`controller.demonstrations`), then
   * fitted by {@link PpoLearner.imitate} (`passes` and `learningRate` over
   * {@link IMITATION_DEFAULTS}), each decision's return the run's reward; PPO starts from the
   * clone. Counted in the time budget.
   * @default none: PPO starts from the initial network
   */
  readonly warmStart?: { readonly episodes: number } & Partial<ImitationOptions>;
  /** A policy file to start from; default a fresh network drawn from `seed`. */
  readonly initialPolicy?: string;
  /** Seed of the fresh network and of the learner's shuffles. @default 0 */
  readonly seed?: number;
  readonly signal?: AbortSignal;
  readonly onEvent?: (event: LearnEvent) => void;
}

/** One PPO update and the episodes it learned from. */
export interface LearnUpdate {
  readonly version: string;
  readonly elapsedMs: number;
  /** Wall time of playing the episodes and of the PPO update. */
  readonly playMs: number;
  readonly updateMs: number;
  readonly stats: PpoStats;
  /** Per episode: seed, final accuracy, reward, seeds germinated, seeds fossilized. */
  readonly episodes: readonly EpisodeSummary[];
  readonly failedEpisodes: number;
}

/** What one episode did. */
export interface EpisodeSummary {
  readonly seed: number;
  /** The run failed (its trainer stopped short or threw): scored as accuracy 0. */
  readonly failed: boolean;
  readonly accuracy: number;
  readonly reward: number;
  readonly germinated: number;
  readonly fossilized: number;
  readonly parameters: number;
  /** Batches the run skipped after failed steps (a run within the study's 1 % allowance); 0 for none. */
  readonly skippedSteps: number;
}

/** What the warm start did (see {@link LearnOptions.warmStart}). */
export interface WarmStart {
  readonly version: string;
  /** The heuristic's runs: seed, accuracy, reward, … (as PPO's episodes). */
  readonly episodes: readonly EpisodeSummary[];
  readonly stats: ImitationStats;
  readonly playMs: number;
  readonly fitMs: number;
}

/** Progress of {@link learnPolicy}. */
export type LearnEvent =
  | { readonly type: 'baseline'; readonly accuracy: number; readonly runs: number }
  | { readonly type: 'warm_start'; readonly warmStart: WarmStart }
  | { readonly type: 'update'; readonly update: LearnUpdate }
  | { readonly type: 'episode_failed'; readonly seed: number; readonly message: string };

/** What {@link learnPolicy} learned. */
export interface LearnResult {
  readonly policyFile: string;
  /** The policy PPO started from (the clone after a warm start); the evaluation's `initial` arm. */
  readonly initialPolicyFile: string;
  readonly version: string;
  readonly updates: readonly LearnUpdate[];
  readonly warmStart?: WarmStart;
  readonly baselineAccuracy: number;
  readonly episodes: number;
  readonly elapsedMs: number;
}

/**
 * The settings episodes run with: latency budgets observed, not enforced, so that a decision
 * that ran long on a loaded machine is not turned into a pause (`core.latencyBudgets`): an
 * episode's decisions then depend on its seed and policy, not on what else the machine ran.
 */
export function episodeSettings(settings: EsperSettings): EsperSettings {
  return { ...settings, core: { ...settings.core, latencyBudgets: 'observe' } };
}

/** First seed of the held-out range: training episodes use seeds below it. */
export const HELD_OUT_SEED_BASE = 1_000_000;

/** Reward of a run (see the file comment). */
export function episodeReward(task: TaskDefinition, result: ArmResult, staticAccuracy: number, paramCost: number): number {
  const shape = taskShape(task);
  const bias = task.smallHost.family !== 'mlp' || task.smallHost.bias !== false;
  const small = hostParameterCount(task.smallHost, shape, bias);
  const budget = Math.max(1, hostParameterCount(task.largeHost, shape, bias) - small);
  const accuracy = result.validationAccuracy;
  if (accuracy === undefined) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `task ${task.id} has no validation accuracy to learn from (metric ${task.metric})`, {
      details: { field: 'task' },
    });
  }
  return accuracy - staticAccuracy - paramCost * (Math.max(0, result.parameters - small) / budget);
}

/** An episode's decisions as a trajectory, its reward on the last decision. */
export function trajectoryOf(decisions: readonly SampledDecision[], reward: number): Trajectory {
  return decisions.map((d, i) => ({
    graph: d.graph,
    choice: d.choice,
    logProb: d.logProb,
    value: d.value,
    reward: i === decisions.length - 1 ? reward : 0,
  }));
}

/** The network stored at `file`. @throws EsperError TAMIYO_POLICY_INVALID naming the file */
async function readPolicyFile(file: string): Promise<TamiyoGnn> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new EsperError(ErrorCode.TAMIYO_POLICY_INVALID, `policy ${file}: cannot read it (${(error as Error).message})`, {
      details: { path: file },
      cause: error,
    });
  }
  return loadPolicy(bytes, undefined, file).gnn;
}

/**
 * Runs `jobs` on core's {@link AsyncWorker}, at most `concurrency` at once, and returns their
 * results in job order; a failure is thrown once every job has settled (none is left running).
 */
export async function runJobs<T>(name: string, jobs: readonly (() => Promise<T>)[], concurrency: number): Promise<T[]> {
  const worker = new AsyncWorker({ name, maxConcurrency: concurrency, maxQueueDepth: Math.max(1, jobs.length) });
  try {
    const settled = await Promise.allSettled(
      jobs.map((job, i) => worker.submit(job, { name: `${name}-${i}`, deadlineMs: Number.POSITIVE_INFINITY }).result),
    );
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
  } finally {
    await worker.close();
  }
}

/**
 * Whether `error` is a run its runner failed (the trainer stopped short, a seed broke it).
 * The policy's decisions may be why, so learning and evaluation score such a run as
 * accuracy 0 ({@link scoredReward}) rather than dropping it, which would hide from the
 * learner, and from the report, what breaks runs. A crashed process is not one.
 */
export function isFailedRun(error: unknown): boolean {
  return isEsperError(error, ErrorCode.STUDY_RUN_FAILED) && error.details?.['reason'] === 'failed';
}

/** {@link episodeReward} of a run, or of a failed run (`undefined`): accuracy 0, nothing added. */
export function scoredReward(task: TaskDefinition, result: ArmResult | undefined, staticAccuracy: number, paramCost: number): number {
  return result === undefined ? -staticAccuracy : episodeReward(task, result, staticAccuracy, paramCost);
}

/** The task with a learned controller: `policyFile`, decisions to `decisionsFile`, drawn or the mode (`decide`). */
export function learnedTask(task: TaskDefinition, policyFile: string, decisionsFile?: string, decide?: 'sample' | 'mode'): TaskDefinition {
  const { heuristic: _h, scheduled: _s, learned: _l, ...rest } = task.controller ?? {};
  const learned = { policyFile, ...(decisionsFile === undefined ? {} : { decisionsFile }), ...(decide === undefined ? {} : { decide }) };
  return { ...task, controller: { ...rest, learned } };
}

/** The task grown by the heuristic, its decisions recorded as demonstrations (`controller.demonstrations`). */
export function demonstratedTask(
  task: TaskDefinition,
  demonstrations: { readonly decisionsFile: string; readonly everyEpochs?: number },
): TaskDefinition {
  const { scheduled: _s, learned: _l, ...rest } = task.controller ?? {};
  return { ...task, controller: { ...rest, demonstrations } };
}

/** Learns a policy on `options.task` (see the file comment). */
export async function learnPolicy(options: LearnOptions): Promise<LearnResult> {
  const { task, directory } = options;
  const settings = episodeSettings(options.settings);
  const signal = options.signal ?? new AbortController().signal;
  const perUpdate = options.episodesPerUpdate ?? 16;
  const concurrency = options.concurrency ?? Math.max(1, os.cpus().length);
  const paramCost = options.paramCost ?? 0.05;
  const seed = options.seed ?? 0;
  const started = Date.now();
  const deadline = started + options.minutes * 60_000;
  const emit = options.onEvent ?? (() => undefined);
  await initTensorBackend();
  const policies = path.join(directory, 'policies');
  const episodesDir = path.join(directory, 'episodes');
  await mkdir(policies, { recursive: true });
  await mkdir(episodesDir, { recursive: true });

  const baselineRuns = options.baselineRuns ?? 4;
  const baseline = await runJobs(
    'learn-baseline',
    Array.from(
      { length: baselineRuns },
      (_, i) => () => runInChild({ runner: defaultStaticRunner(), task, arm: 'small', seed: HELD_OUT_SEED_BASE - 1 - i, settings, signal }),
    ),
    concurrency,
  );
  const baselineAccuracy = baseline.reduce((sum, r) => sum + (r.validationAccuracy ?? 0), 0) / baseline.length;
  emit({ type: 'baseline', accuracy: baselineAccuracy, runs: baseline.length });

  const gnn =
    options.initialPolicy === undefined
      ? new TamiyoGnn(gnnConfigFor(GRAPH_RELATIONS), seededRng(seed))
      : await readPolicyFile(options.initialPolicy);
  const learner = new PpoLearner(gnn, options.ppo);
  const meta = (v: string) => ({ version: v, ...(options.everyEpochs === undefined ? {} : { decisionEveryEpochs: options.everyEpochs }) });
  const rng = seededRng(seed + 1);
  const updates: LearnUpdate[] = [];
  let nextSeed = 0;
  let episodes = 0;
  let version = 'simic-v0';
  /** The policy PPO starts from: the initial network, or the clone after a warm start. */
  let initialPolicyFile = path.join(policies, `${version}.bin`);
  await writeFile(initialPolicyFile, serialisePolicy(gnn, meta(version)));
  /**
   * Plays one episode per seed with the task `taskFor` gives (its decisions to the file it
   * is given), `concurrency` at once; the episodes whose decisions could be read.
   */
  const play = async (name: string, seeds: readonly number[], taskFor: (decisionsFile: string) => TaskDefinition) => {
    const played = await runJobs(
      name,
      seeds.map((s) => async () => {
        const decisionsFile = path.join(episodesDir, `seed${s}.dec`);
        try {
          const result = await runInChild({
            runner: grownArmRunnerModule(),
            task: taskFor(decisionsFile),
            arm: 'grown',
            seed: s,
            settings,
            signal,
          });
          const decisions = await readDecisionLog(decisionsFile);
          return { seed: s, result, decisions };
        } catch (error) {
          if (signal.aborted) throw error;
          emit({ type: 'episode_failed', seed: s, message: (error as Error).message });
          // A failed run is an episode scored as accuracy 0 (`isFailedRun`); a crashed
          // process or an unreadable log is not the policy's doing: left out.
          if (!isFailedRun(error)) return undefined;
          const decisions = await readDecisionLog(decisionsFile).catch(() => undefined);
          return decisions === undefined || decisions.length === 0 ? undefined : { seed: s, result: undefined, decisions };
        } finally {
          await rm(decisionsFile, { force: true });
        }
      }),
      concurrency,
    );
    const done = played.filter((p) => p !== undefined);
    const summaries = done.map(({ seed: s, result }): EpisodeSummary => ({
      seed: s,
      failed: result === undefined,
      accuracy: result?.validationAccuracy ?? 0,
      reward: scoredReward(task, result, baselineAccuracy, paramCost),
      germinated: result?.seeds.length ?? 0,
      fossilized: result?.seeds.filter((x) => x.fate === 'FOSSILIZED').length ?? 0,
      parameters: result?.parameters ?? 0,
      skippedSteps: result?.skippedSteps ?? 0,
    }));
    const trajectories = done.map(({ decisions }, i) => trajectoryOf(decisions, (summaries[i] as EpisodeSummary).reward));
    return { summaries, trajectories, lost: played.length - done.length };
  };

  let warmStart: WarmStart | undefined;
  try {
    if (options.warmStart !== undefined && options.warmStart.episodes > 0) {
      const seeds = Array.from({ length: options.warmStart.episodes }, () => nextSeed++);
      const playStart = Date.now();
      const demonstrations = { everyEpochs: options.everyEpochs ?? 1 };
      const { summaries, trajectories } = await play('learn-warm-start', seeds, (decisionsFile) =>
        demonstratedTask(task, { decisionsFile, ...demonstrations }),
      );
      const fitStart = Date.now();
      const { episodes: _n, ...fit } = options.warmStart;
      const stats = learner.imitate(trajectories, rng, { ...IMITATION_DEFAULTS, ...fit });
      version = 'simic-bc';
      initialPolicyFile = path.join(policies, `${version}.bin`);
      await writeFile(initialPolicyFile, serialisePolicy(gnn, meta(version)));
      warmStart = { version, episodes: summaries, stats, playMs: fitStart - playStart, fitMs: Date.now() - fitStart };
      emit({ type: 'warm_start', warmStart });
      episodes += summaries.length;
    }
    while (Date.now() < deadline && !signal.aborted && updates.length < (options.maxUpdates ?? Infinity)) {
      const policyFile = path.join(policies, `${version}.bin`);
      const seeds = Array.from({ length: perUpdate }, () => nextSeed++);
      const playStart = Date.now();
      const { summaries, trajectories, lost } = await play(`learn-${version}`, seeds, (decisionsFile) =>
        learnedTask(task, policyFile, decisionsFile),
      );
      if (summaries.length === 0) continue;
      episodes += summaries.length;
      const updateStart = Date.now();
      const playMs = updateStart - playStart;
      const stats = learner.update(trajectories, rng);
      const updateMs = Date.now() - updateStart;
      version = `simic-v${learner.updates}`;
      await writeFile(path.join(policies, `${version}.bin`), serialisePolicy(gnn, meta(version)));
      const update: LearnUpdate = {
        version,
        elapsedMs: Date.now() - started,
        playMs,
        updateMs,
        stats,
        episodes: summaries,
        failedEpisodes: lost + summaries.filter((e) => e.failed).length,
      };
      updates.push(update);
      emit({ type: 'update', update });
      await writeFile(
        path.join(directory, 'learn.json'),
        `${JSON.stringify({ task: task.id, baselineAccuracy, paramCost, ...(warmStart === undefined ? {} : { warmStart }), updates }, null, 1)}\n`,
      );
    }
    const policyFile = path.join(directory, 'policy.bin');
    await writeFile(policyFile, serialisePolicy(gnn, meta(version)));
    return {
      policyFile,
      initialPolicyFile,
      version,
      updates,
      ...(warmStart === undefined ? {} : { warmStart }),
      baselineAccuracy,
      episodes,
      elapsedMs: Date.now() - started,
    };
  } finally {
    learner.dispose();
    gnn.dispose();
  }
}
