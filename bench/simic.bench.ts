/**
 * Simic benchmark (`npm run bench:simic`): how fast Simic gets and learns from experience.
 * Progress goes to stderr; the last line of stdout is one JSON object. Every figure has a
 * baseline measured in the same run, and the ratio of the two.
 *
 * 1. **Episodes per minute.** `learnPolicy` (`esper learn`) on `task` for `updates` PPO
 *    updates of `episodesPerUpdate` episodes, `concurrency` child processes at once: the
 *    episodes it played per minute of playing (`LearnUpdate.playMs`: the grown arm with the
 *    learned controller sampling at every `everyEpochs`-th epoch end, decision logs read
 *    back). Baseline: as many **static small-arm runs** of the same task and seeds
 *    (`runInChild` + `defaultStaticRunner()`), in the same batches of `episodesPerUpdate` at
 *    the same concurrency — half of the batches before learning, half after, so drift of the
 *    machine shows as a gap between the halves. The ratio is what the learned controller and
 *    the growth path cost per run.
 * 2. **Update time per batch.** From the same learn runs: `LearnUpdate.updateMs` per update
 *    and per 1,000 decisions (PPO's passes over minibatches of 64: forward, backward, Adam).
 *    Then `concurrency` more episodes are played with the learned policy and their decisions
 *    repeated, whole episodes, to a batch of an update's median size; on that batch, timed
 *    `forwardRepeats` times (median): the **forward pass alone** (`batchGraphs` +
 *    `TamiyoGnn.applyBatch` per minibatch of 64, one pass, no gradients) — the baseline — and
 *    one PPO update of a fresh copy of the learned policy (the same-batch ratio).
 * 3. **Reports per second ingested.** `reports` field reports, each with the
 *    `decision_context` of one of those decisions (their mean encoded size is reported),
 *    published on a Redis bus, then ingested by `SimicIngestor` into a fresh durable
 *    `ReplayBuffer` (group-commit fsync; the consumer awaits each add before it
 *    acknowledges): the backlog drained per second. Baseline: `ReplayBuffer.add` alone of the
 *    same reports into a fresh buffer on the same disk, each add awaited as the ingestor does,
 *    half before and half after the bus arm.
 *
 * Redis: `redisUrl`, else `ESPER_TEST_REDIS_URL`, else a private `redis-server` on a free port
 * (no persistence) that the bench starts and stops. Keys use a unique prefix, deleted after.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { Redis } from 'ioredis';
import { loadSettings, optionChecks, runCleanup, type EsperSettings, type TelemetrySink } from '../src/core/index.js';
import { FieldReportDeltaSchema, FieldReportOutcome, FieldReportSchema, type FieldReport } from '../src/leyline/index.js';
import { openBusFromSettings } from '../src/oona/index.js';
import type { KeyRing } from '../src/security/index.js';
import {
  PPO_DEFAULTS,
  PpoLearner,
  readDecisionLog,
  ReplayBuffer,
  replayBufferFromSettings,
  SimicIngestor,
  type Trajectory,
} from '../src/simic/index.js';
import { defaultStaticRunner, findTask, runInChild, type ArmResult, type TaskDefinition } from '../src/study/index.js';
import { batchGraphs, decisionContextOf, loadPolicy, type SampledDecision, type TamiyoGnn } from '../src/tamiyo/index.js';
import { initTensorBackend, seededRng, tf } from '../src/tensor/index.js';
import {
  grownArmRunnerModule,
  isFailedRun,
  runJobs,
  learnedTask,
  learnPolicy,
  runKeyRing,
  scoredReward,
  trajectoryOf,
  type LearnResult,
} from '../src/weatherlight/index.js';
import { deleteKeysWithPrefix, PrivateRedisServer } from '../test/support/redis-server.js';
import { quantile } from './stats.js';

const BENCH_SECRET = 'esper-bench-simic-secret-0123456789abcdef';
/** `learnPolicy`'s default parameter cost, for the same-batch update's rewards. */
const PARAM_COST = 0.05;

/** Options of {@link runSimicBench}. */
export interface SimicBenchOptions {
  /** A study task name (`id` or `id@version`) or a task definition. @default 'spirals-mlp' */
  readonly task: string | TaskDefinition;
  /** PPO updates learned. @default 2 */
  readonly updates: number;
  /** Episodes per update (and static runs per baseline batch). @default max(2, cores) */
  readonly episodesPerUpdate: number;
  /** Runs at once, one child process each. @default cores */
  readonly concurrency: number;
  /** The learned policy decides at every k-th epoch end. @default 1 */
  readonly everyEpochs: number;
  /** Timed repeats of the forward pass and of the same-batch update (median). @default 5 */
  readonly forwardRepeats: number;
  /** Field reports per ingestion arm. @default 1000 */
  readonly reports: number;
  /** Redis to use. @default `ESPER_TEST_REDIS_URL`, else a private redis-server started here */
  readonly redisUrl: string | undefined;
  /** Progress lines. @default stderr */
  readonly log: (message: string) => void;
}

const CORES = availableParallelism();

/** The documented protocol. */
export const SIMIC_BENCH_DEFAULTS: SimicBenchOptions = Object.freeze({
  task: 'spirals-mlp',
  updates: 2,
  episodesPerUpdate: Math.max(2, CORES),
  concurrency: CORES,
  everyEpochs: 1,
  forwardRepeats: 5,
  reports: 1000,
  redisUrl: undefined,
  log: (message: string) => {
    process.stderr.write(`${message}\n`);
  },
});

/** Merges `options` over the defaults and validates them, naming the bad field. */
export function resolveSimicBenchOptions(options: Partial<SimicBenchOptions> = {}): SimicBenchOptions {
  const resolved = { ...SIMIC_BENCH_DEFAULTS, ...options };
  const check = optionChecks('SimicBenchOptions');
  const task = typeof resolved.task === 'string' ? findTask(resolved.task) : resolved.task;
  if (task.metric !== 'validation_accuracy') check.fail('task', 'a task scored by validation accuracy', task.id);
  for (const field of ['updates', 'episodesPerUpdate', 'concurrency', 'everyEpochs', 'forwardRepeats'] as const) {
    check.integer(field, resolved[field], { min: 1 });
  }
  check.integer('reports', resolved.reports, { min: 2 });
  return resolved;
}

// ---------------------------------------------------------------- statistics

const round = (x: number, digits = 3): number => Number(x.toFixed(digits));
const ratioOf = (a: number, b: number): number => round(a / b);
const median = (values: readonly number[]): number => quantile(values, 0.5);
const perMinute = (count: number, ms: number): number => round((count * 60_000) / ms, 2);

// ---------------------------------------------------------------- environment

interface Environment {
  readonly root: string;
  readonly settings: EsperSettings;
  readonly keyRing: KeyRing;
  readonly log: (message: string) => void;
}

const quiet: TelemetrySink = { emit: () => undefined };

async function openEnvironment(options: SimicBenchOptions): Promise<{ env: Environment; close(): Promise<void> }> {
  const root = await mkdtemp(path.join(tmpdir(), 'esper-bench-simic-'));
  try {
    const settings = loadSettings({
      env: {},
      overrides: {
        storage: { varDir: path.join(root, 'var') },
        core: { latencyBudgets: 'observe' },
        security: { leylineSecret: BENCH_SECRET },
      },
    });
    const keyRing = await runKeyRing(settings);
    await initTensorBackend();
    return { env: { root, settings, keyRing, log: options.log }, close: () => rm(root, { recursive: true, force: true }) };
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw error;
  }
}

// ---------------------------------------------------------------- 1. episodes per minute

/** Static small-arm runs of `seeds` at `concurrency`; wall time of the batch. */
async function staticBatch(env: Environment, task: TaskDefinition, seeds: readonly number[], concurrency: number) {
  const signal = new AbortController().signal;
  const started = performance.now();
  const results = await runJobs(
    'bench-static',
    seeds.map((seed) => () => runInChild({ runner: defaultStaticRunner(), task, arm: 'small', seed, settings: env.settings, signal })),
    concurrency,
  );
  const wallMs = performance.now() - started;
  return { seeds: [...seeds], wallMs: round(wallMs, 1), accuracy: results.map((r) => round(r.validationAccuracy ?? 0, 4)) };
}

type StaticBatch = Awaited<ReturnType<typeof staticBatch>>;

function staticFigures(batches: readonly StaticBatch[]) {
  const runs = batches.reduce((n, b) => n + b.seeds.length, 0);
  const wallMs = batches.reduce((ms, b) => ms + b.wallMs, 0);
  return runs === 0 ? null : { runs, wallMs: round(wallMs, 1), runsPerMin: perMinute(runs, wallMs) };
}

async function measureEpisodes(env: Environment, task: TaskDefinition, options: SimicBenchOptions) {
  const n = options.episodesPerUpdate;
  const batchesBefore = Math.ceil(options.updates / 2);
  // learnPolicy's training seeds: 0, 1, 2, … in updates of n.
  const seedsOf = (batch: number) => Array.from({ length: n }, (_, i) => batch * n + i);
  const before: StaticBatch[] = [];
  for (let b = 0; b < batchesBefore; b += 1) {
    before.push(await staticBatch(env, task, seedsOf(b), options.concurrency));
    env.log(`static batch ${b + 1}/${options.updates}: ${n} runs in ${round((before.at(-1)?.wallMs ?? 0) / 1000, 1)} s`);
  }
  const learned = await learnPolicy({
    task,
    settings: env.settings,
    directory: path.join(env.root, 'learn'),
    minutes: 24 * 60,
    maxUpdates: options.updates,
    episodesPerUpdate: n,
    concurrency: options.concurrency,
    baselineRuns: options.concurrency,
    everyEpochs: options.everyEpochs,
    onEvent: (event) => {
      if (event.type === 'baseline') env.log(`learn: baseline accuracy ${round(event.accuracy, 4)} over ${event.runs} static runs`);
      else if (event.type === 'episode_failed') env.log(`learn: episode seed ${event.seed} failed: ${event.message}`);
      else if (event.type === 'warm_start') env.log(`learn: warm start on ${event.warmStart.stats.decisions} decisions`);
      else {
        const u = event.update;
        env.log(
          `learn: ${u.version}: ${u.episodes.length} episodes played in ${u.playMs / 1000} s, update ${u.updateMs} ms on ${u.stats.decisions} decisions`,
        );
      }
    },
  });
  const after: StaticBatch[] = [];
  for (let b = batchesBefore; b < options.updates; b += 1) {
    after.push(await staticBatch(env, task, seedsOf(b), options.concurrency));
    env.log(`static batch ${b + 1}/${options.updates}: ${n} runs in ${round((after.at(-1)?.wallMs ?? 0) / 1000, 1)} s`);
  }
  // Completed episodes; a failed run (scored or left out by learnPolicy) is counted apart.
  const episodes = learned.updates.reduce((sum, u) => sum + u.episodes.filter((e) => !e.failed).length, 0);
  const failed = learned.updates.reduce((sum, u) => sum + u.failedEpisodes, 0);
  const playMs = learned.updates.reduce((sum, u) => sum + u.playMs, 0);
  const staticAll = staticFigures([...before, ...after]);
  const learnedPerMin = perMinute(episodes, playMs);
  const figures = {
    measured:
      'learnPolicy episodes (grown arm, learned controller, decision logs) per minute of LearnUpdate.playMs, against static small-arm runs of the same seeds in the same batches at the same concurrency',
    task: task.id,
    taskVersion: task.version,
    steps: task.steps,
    updates: learned.updates.length,
    episodesPerUpdate: options.episodesPerUpdate,
    concurrency: options.concurrency,
    everyEpochs: options.everyEpochs,
    learned: {
      episodes,
      failedEpisodes: failed,
      playMs,
      playMsPerUpdate: learned.updates.map((u) => u.playMs),
      episodesPerMin: learnedPerMin,
    },
    static: {
      ...(staticAll ?? { runs: 0, wallMs: 0, runsPerMin: 0 }),
      firstHalf: staticFigures(before),
      secondHalf: staticFigures(after),
      batches: [...before, ...after],
    },
    /** Static runs per minute over learned episodes per minute: the cost of one learned episode in static runs. */
    costRatio: ratioOf(staticAll?.runsPerMin ?? Number.NaN, learnedPerMin),
  };
  env.log(`episodes: learned ${learnedPerMin}/min, static ${staticAll?.runsPerMin}/min → ×${figures.costRatio}`);
  return { figures, learned };
}

// ---------------------------------------------------------------- 2. update time per batch

interface PlayedEpisode {
  readonly seed: number;
  /** Undefined when the runner failed the run (its decision log is still written). */
  readonly result: ArmResult | undefined;
  readonly decisions: SampledDecision[];
}

/** `concurrency` more episodes of the learned policy (seeds after the training ones), with their decisions. */
async function playEpisodes(env: Environment, task: TaskDefinition, policyFile: string, firstSeed: number, options: SimicBenchOptions) {
  const signal = new AbortController().signal;
  return runJobs(
    'bench-play',
    Array.from({ length: options.concurrency }, (_, i) => async (): Promise<PlayedEpisode> => {
      const seed = firstSeed + i;
      const decisionsFile = path.join(env.root, `played-seed${seed}.dec`);
      let result: ArmResult | undefined;
      try {
        result = await runInChild({
          runner: grownArmRunnerModule(),
          task: learnedTask(task, policyFile, decisionsFile),
          arm: 'grown',
          seed,
          settings: env.settings,
          signal,
        });
      } catch (error) {
        // As learnPolicy: a run the runner failed is still an episode (scored as accuracy 0).
        if (!isFailedRun(error)) throw error;
        env.log(`update: played episode seed ${seed} failed: ${(error as Error).message}`);
      }
      return { seed, result, decisions: await readDecisionLog(decisionsFile) };
    }),
    options.concurrency,
  );
}

/** Whole episodes, cycled, until the batch holds at least `size` decisions. */
function batchOfEpisodes(played: readonly PlayedEpisode[], size: number, task: TaskDefinition, baselineAccuracy: number): Trajectory[] {
  const usable = played.filter((p) => p.decisions.length > 0);
  if (usable.length === 0) throw new Error('the played episodes made no decisions: nothing to batch');
  const trajectories: Trajectory[] = [];
  let decisions = 0;
  for (let i = 0; decisions < size; i += 1) {
    const episode = usable[i % usable.length] as PlayedEpisode;
    const reward = scoredReward(task, episode.result, baselineAccuracy, PARAM_COST);
    trajectories.push(trajectoryOf(episode.decisions, reward));
    decisions += episode.decisions.length;
  }
  return trajectories;
}

/** One forward pass over the batch, minibatches of `minibatch` graphs, no gradients. */
function forwardPass(gnn: TamiyoGnn, trajectories: readonly Trajectory[], minibatch: number): number {
  const graphs = trajectories.flatMap((t) => t.map((step) => step.graph));
  const started = performance.now();
  for (let start = 0; start < graphs.length; start += minibatch) {
    const batch = batchGraphs(graphs.slice(start, start + minibatch));
    tf.tidy(() => {
      const out = gnn.applyBatch(batch);
      out.value.dataSync();
    });
  }
  return performance.now() - started;
}

async function measureUpdates(env: Environment, task: TaskDefinition, learned: LearnResult, options: SimicBenchOptions) {
  const perUpdate = learned.updates.map((u) => ({
    version: u.version,
    decisions: u.stats.decisions,
    passes: u.stats.passes,
    updateMs: u.updateMs,
    msPer1kDecisions: round((u.updateMs * 1000) / Math.max(1, u.stats.decisions), 1),
  }));
  const targetSize = Math.max(1, Math.round(median(perUpdate.map((u) => u.decisions))));
  const firstSeed = options.updates * options.episodesPerUpdate;
  env.log(`update: playing ${options.concurrency} more episodes with ${learned.version} for a batch of ${targetSize} decisions`);
  const played = await playEpisodes(env, task, learned.policyFile, firstSeed, options);
  const trajectories = batchOfEpisodes(played, targetSize, task, learned.baselineAccuracy);
  const decisions = trajectories.reduce((n, t) => n + t.length, 0);
  const { minibatch } = PPO_DEFAULTS;
  const policyBytes = await readFile(learned.policyFile);

  const forward = loadPolicy(policyBytes, undefined, learned.policyFile).gnn;
  const forwardMs: number[] = [];
  try {
    forwardPass(forward, trajectories, minibatch); // warm-up: kernels, shapes
    for (let r = 0; r < options.forwardRepeats; r += 1) forwardMs.push(forwardPass(forward, trajectories, minibatch));
  } finally {
    forward.dispose();
  }
  const sameBatchMs: number[] = [];
  const sameBatchPasses: number[] = [];
  for (let r = 0; r < options.forwardRepeats; r += 1) {
    // A fresh copy each time: every update starts from the learned policy and a new optimizer.
    const gnn = loadPolicy(policyBytes, undefined, learned.policyFile).gnn;
    const learner = new PpoLearner(gnn);
    try {
      const started = performance.now();
      const stats = learner.update(trajectories, seededRng(r + 1));
      sameBatchMs.push(performance.now() - started);
      sameBatchPasses.push(stats.passes);
    } finally {
      learner.dispose();
      gnn.dispose();
    }
  }
  const forwardMedian = median(forwardMs);
  const sameBatchMedian = median(sameBatchMs);
  const learnMsPer1k = median(perUpdate.map((u) => u.msPer1kDecisions));
  const forwardPer1k = (forwardMedian * 1000) / decisions;
  const figures = {
    measured:
      "LearnUpdate.updateMs (PPO: passes over minibatches of 64, forward + backward + Adam) against one forward pass (batchGraphs + TamiyoGnn.applyBatch per minibatch, no gradients) over the learned policy's decisions from fresh episodes, repeated to an update's median size",
    minibatch,
    ppoEpochs: PPO_DEFAULTS.epochs,
    learnUpdates: perUpdate,
    learnMsPer1kDecisionsMedian: learnMsPer1k,
    batch: { episodesPlayed: played.length, decisionsPerEpisode: played.map((p) => p.decisions.length), decisions },
    forwardMs: round(forwardMedian, 2),
    forwardMsPer1kDecisions: round(forwardPer1k, 2),
    sameBatchUpdateMs: round(sameBatchMedian, 1),
    sameBatchPasses: [...new Set(sameBatchPasses)],
    /** Learn runs' update time per 1,000 decisions over the forward pass's. */
    updateRatio: ratioOf(learnMsPer1k, forwardPer1k),
    /** The same batch: one PPO update over one forward pass, and per pass over the data. */
    sameBatchRatio: ratioOf(sameBatchMedian, forwardMedian),
    sameBatchRatioPerPass: ratioOf(sameBatchMedian / median(sameBatchPasses), forwardMedian),
  };
  env.log(
    `update: learn ${learnMsPer1k} ms/1k decisions; forward ${figures.forwardMsPer1kDecisions} ms/1k → ×${figures.updateRatio}; same batch of ${decisions}: update ${figures.sameBatchUpdateMs} ms vs forward ${figures.forwardMs} ms → ×${figures.sameBatchRatio}`,
  );
  return { figures, played };
}

// ---------------------------------------------------------------- 3. reports per second ingested

/** `count` field reports as a fleet's Tamiyo writes them, each with one played decision's context. */
function fieldReports(played: readonly PlayedEpisode[], count: number): FieldReport[] {
  const decisions = played.flatMap((p) => p.decisions);
  const outcomes = [FieldReportOutcome.SUCCESS, FieldReportOutcome.NEUTRAL, FieldReportOutcome.REGRESSION];
  const issuedAt = Date.now();
  return Array.from({ length: count }, (_, i) => {
    const decision = decisions[i % decisions.length] as SampledDecision;
    return create(FieldReportSchema, {
      version: 1,
      reportId: `bench-run-${i % 8}:fr-${i}`,
      commandId: `cmd-${i}`,
      trainingRunId: `bench-run-${i % 8}`,
      seedId: `seed-${i % 5}`,
      blueprintId: 'BP001',
      outcome: outcomes[i % outcomes.length] as FieldReportOutcome,
      observationWindowEpochs: 3,
      issuedAt: timestampFromMs(issuedAt + i),
      tamiyoPolicyVersion: decision.policyVersion,
      delta: create(FieldReportDeltaSchema, {
        lossDelta: -0.01 * (i % 7),
        paramDelta: 60,
        valueEstimate: decision.value,
        tamiyoLatencyMs: 1.5,
        counterfactualContribution: 0.02,
      }),
      decisionContext: decisionContextOf(decision),
    });
  });
}

/** `ReplayBuffer.add` alone, each awaited; per-add latencies. */
async function directAdds(dir: string, settings: EsperSettings, reports: readonly FieldReport[]): Promise<number[]> {
  const { options } = replayBufferFromSettings(settings);
  const buffer = await ReplayBuffer.open(dir, options);
  try {
    const samples: number[] = [];
    for (const report of reports) {
      const started = performance.now();
      const result = await buffer.add(report, { receivedAtMs: Date.now() });
      samples.push(performance.now() - started);
      if (result !== 'added') throw new Error(`direct add of ${report.reportId}: ${result}`);
    }
    return samples;
  } finally {
    await buffer.close();
  }
}

async function measureIngestion(env: Environment, played: readonly PlayedEpisode[], options: SimicBenchOptions) {
  const cleanup: (() => Promise<void>)[] = [];
  try {
    let redisUrl = options.redisUrl ?? process.env['ESPER_TEST_REDIS_URL'];
    if (redisUrl === undefined) {
      const server = await PrivateRedisServer.start({ persistent: false });
      cleanup.unshift(() => server.dispose());
      redisUrl = server.url;
      env.log(`started a private redis-server at ${redisUrl}`);
    }
    const url = redisUrl;
    const streamPrefix = `esper-bench-simic-${randomUUID().slice(0, 8)}:`;
    cleanup.unshift(async () => {
      const redis = new Redis(url);
      try {
        await deleteKeysWithPrefix(redis, streamPrefix);
      } finally {
        await redis.quit();
      }
    });
    const reports = fieldReports(played, options.reports);
    const sizes = reports.map((r) => toBinary(FieldReportSchema, r).byteLength);
    const contextSizes = reports.map((r) =>
      r.decisionContext === undefined
        ? 0
        : toBinary(FieldReportSchema, create(FieldReportSchema, { decisionContext: r.decisionContext })).byteLength,
    );
    const busSettings = { oona: { ...env.settings.oona, busUrl: url, streamPrefix } };
    const publisher = openBusFromSettings(busSettings, { keyRing: env.keyRing, telemetry: quiet });
    cleanup.unshift(() => publisher.close());
    const consumerBus = openBusFromSettings(busSettings, { keyRing: env.keyRing, telemetry: quiet });
    cleanup.unshift(() => consumerBus.close());

    // Direct, bus, direct: drift shows as a gap between the two direct halves.
    const half = Math.ceil(reports.length / 2);
    const directFirst = await directAdds(path.join(env.root, 'replay-direct-1'), env.settings, reports.slice(0, half));
    env.log(`ingest: direct adds (first half) done`);

    const publishStarted = performance.now();
    for (const report of reports) await publisher.publish(report);
    const publishMs = performance.now() - publishStarted;
    const buffer = await ReplayBuffer.open(path.join(env.root, 'replay-bus'), replayBufferFromSettings(env.settings).options);
    cleanup.unshift(() => buffer.close());
    const ingestedAt: number[] = [];
    let drained: () => void = () => undefined;
    const allIngested = new Promise<void>((resolve) => {
      drained = resolve;
    });
    const ingestor = new SimicIngestor({
      buffer,
      bus: consumerBus,
      consumer: 'bench-simic',
      from: 'all',
      onIngested: (_report, result) => {
        if (result !== 'added') return;
        ingestedAt.push(performance.now());
        if (ingestedAt.length === reports.length) drained();
      },
    });
    cleanup.unshift(() => ingestor.close());
    const ingestStarted = performance.now();
    await ingestor.start();
    const deadline = setTimeout(() => drained(), 120_000);
    await allIngested;
    clearTimeout(deadline);
    if (ingestedAt.length < reports.length) throw new Error(`ingested ${ingestedAt.length} of ${reports.length} reports within 120 s`);
    const ingestMs = (ingestedAt.at(-1) as number) - ingestStarted;
    await ingestor.close();
    env.log(`ingest: bus arm done`);

    const directSecond = await directAdds(path.join(env.root, 'replay-direct-2'), env.settings, reports.slice(half));
    const direct = [...directFirst, ...directSecond];
    const directMs = direct.reduce((a, b) => a + b, 0);
    const gaps = ingestedAt.slice(1).map((t, i) => t - (ingestedAt[i] as number));
    const busPerS = round((reports.length * 1000) / ingestMs, 1);
    const directPerS = round((direct.length * 1000) / directMs, 1);
    const figures = {
      measured:
        'a backlog of field reports on a Redis bus drained by SimicIngestor into a durable ReplayBuffer (each add awaited before the ack), against ReplayBuffer.add alone of the same reports, each awaited, same disk',
      redis:
        options.redisUrl === undefined && process.env['ESPER_TEST_REDIS_URL'] === undefined
          ? 'private redis-server (no persistence)'
          : 'given',
      reports: reports.length,
      reportBytesMean: round(sizes.reduce((a, b) => a + b, 0) / sizes.length, 1),
      decisionContextBytesMean: round(contextSizes.reduce((a, b) => a + b, 0) / contextSizes.length, 1),
      replayCapacity: buffer.options.capacity,
      fsync: buffer.options.fsync,
      publishPerS: round((reports.length * 1000) / publishMs, 1),
      bus: {
        reportsPerS: busPerS,
        wallMs: round(ingestMs, 1),
        gapMedianMs: round(median(gaps), 3),
        gapP95Ms: round(quantile(gaps, 0.95), 3),
      },
      direct: {
        reportsPerS: directPerS,
        addMedianMs: round(median(direct), 3),
        addP95Ms: round(quantile(direct, 0.95), 3),
        halvesMedianMs: [round(median(directFirst), 3), round(median(directSecond), 3)],
      },
      /** Direct adds per second over reports per second ingested from the bus. */
      throughputRatio: ratioOf(directPerS, busPerS),
      /** Median gap between ingestions over the median direct add. */
      medianRatio: ratioOf(median(gaps), median(direct)),
    };
    env.log(
      `ingest: bus ${busPerS} reports/s, direct ${directPerS} adds/s → ×${figures.throughputRatio} (${figures.reportBytesMean} B per report)`,
    );
    return figures;
  } finally {
    await runCleanup('simic bench ingestion', cleanup);
  }
}

// ---------------------------------------------------------------- the bench

/** Runs the three measurements; returns the object the script prints. */
export async function runSimicBench(options: Partial<SimicBenchOptions> = {}) {
  const resolved = resolveSimicBenchOptions(options);
  const task = typeof resolved.task === 'string' ? findTask(resolved.task) : resolved.task;
  const loadAtStart = loadavg().map((x) => round(x, 2));
  const { env, close } = await openEnvironment(resolved);
  try {
    const episodes = await measureEpisodes(env, task, resolved);
    const updates = await measureUpdates(env, task, episodes.learned, resolved);
    const ingestion = await measureIngestion(env, updates.played, resolved);
    return {
      bench: 'simic',
      node: process.version,
      machine: { cpus: CORES, loadAvgAtStart: loadAtStart, loadAvgAtEnd: loadavg().map((x) => round(x, 2)) },
      episodes: episodes.figures,
      updates: updates.figures,
      ingestion,
    };
  } finally {
    await close();
  }
}

/** What {@link runSimicBench} resolves with. */
export type SimicBenchResult = Awaited<ReturnType<typeof runSimicBench>>;

async function main(): Promise<void> {
  const result = await runSimicBench();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// Run only as a script: the smoke test imports the measuring functions.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
