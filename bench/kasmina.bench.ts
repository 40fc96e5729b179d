/**
 * Kasmina overhead benchmark (`npm run bench:kasmina`): what the seed executor costs a
 * Tolaria training step, and how fast a signed command is verified and dispatched.
 * Progress goes to stderr; the last line of stdout is one JSON object.
 *
 * Host: 784 → 8 dense ReLU layers of 128, each followed by a seed site → 10, batch 64,
 * Adam, random MNIST-shaped data (the figures measure compute, not data loading). The
 * same host instance is trained in every configuration, so the only difference between
 * the baseline and the others is Kasmina:
 * - `bare`: Trainer, no executor;
 * - `dormant8`: a KasminaExecutor on the 8-site host, no seeds (each step Tolaria calls
 *   `exportSeedStates` and `advance`, and Kasmina emits its global packet);
 * - 1–4 seeds of BP001 (zero-initialised 128×128 linear map), germinated with signed
 *   commands before the run, either held in TRAINING (isolated straight-through path,
 *   isolation check every `isolationCheckEverySteps` = 10 steps, the default) or driven
 *   to SHADOWING at alpha 1 (`trainingSteps` 1, `blendingSteps` 1).
 * Configurations are measured in interleaved rounds (bare, dormant, ..., bare, dormant,
 * ...) so drift of the machine hits all of them alike; each figure is the median over all
 * rounds' timed steps and every ratio is a ratio of medians to `bare` of the same run.
 * Kasmina's own share is also timed directly (`exportSeedStates` + `advance` per step).
 * Beside wall time, each step's process CPU time is recorded: on a shared machine other
 * processes stretch wall times by whole scheduler slices, CPU time is what the step cost.
 *
 * Commands (real clock, fresh nonce per command): `kasmina.apply` of a PAUSE for an
 * unknown seed (verify + dependency guard + dispatch, no graft), `CommandVerifier.verify`
 * alone, and a GERMINATE + CULL pair (graft incl. kernel fetch from the cache, teardown).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { create } from '@bufbuild/protobuf';
import {
  AsyncWorker,
  ErrorCode,
  EsperError,
  loadSettings,
  MemoryTelemetrySink,
  optionChecks,
  runCleanup,
  systemClock,
} from '../src/core/index.js';
import { KarnCatalog } from '../src/karn/index.js';
import {
  buildOperatorCommand,
  createKasmina,
  OperatorAction,
  type Kasmina,
  type KasminaExecutor,
  type KasminaLifecycleSettings,
} from '../src/kasmina/index.js';
import { AdaptationCommandSchema, SeedLifecycleStage, type AdaptationCommand, type SeedState } from '../src/leyline/index.js';
import { CommandVerifier, HmacSigner, KeyRing, NonceLedger } from '../src/security/index.js';
import { describeTensorBackend, initTensorBackend, seededRng } from '../src/tensor/index.js';
import { siteKeyOf, TezzeretCompiler } from '../src/tezzeret/index.js';
import {
  Activation,
  ArraySplit,
  HostBuilder,
  Trainer,
  type CallOptions,
  type Dataset,
  type Executor,
  type ExecutorContext,
  type HostModel,
  type ContributionProbe,
  type ValidationReport,
} from '../src/tolaria/index.js';
import { UrzaLibrary } from '../src/urza/index.js';
import { quantile, recordGc, type GcPauses } from './stats.js';

export type { GcPauses } from './stats.js';

const BATCH = 64;
const INPUT_SIZE = 784;
const WIDTH = 128;
const SITES = 8;
const CLASSES = 10;
const BLUEPRINT = 'BP001';
const RUN_ID = 'bench-kasmina';
/** Kasmina's default isolation-check cadence, used by every configuration. */
const ISOLATION_CHECK_EVERY_STEPS = 10;
/** Steps that never end while the benchmark runs. */
const FOREVER = 1_000_000_000;

/** Issue acceptance aims. */
export const KASMINA_AIMS = { dormantOverheadPctBelow: 2, verifyDispatchP99UsBelow: 200 } as const;

/** Knobs of the benchmark; the smoke test shrinks them. */
export interface KasminaBenchOptions {
  /** Steps of each run not timed (graft, optimizer build, stage moves, JIT). @default 5 */
  readonly warmupSteps: number;
  /** Timed steps of each configuration per round (≥ 10, so each training run includes an isolation check). @default 60 */
  readonly stepsPerRun: number;
  /** Interleaved rounds over all configurations. @default 5 */
  readonly rounds: number;
  /** Active-seed counts measured (each ≤ 8). @default [1, 2, 3, 4] */
  readonly seedCounts: readonly number[];
  /** Timed PAUSE applies (after `commandWarmup`). @default 3000 */
  readonly pauseCommands: number;
  /** Timed `verify` calls (after `commandWarmup`). @default 3000 */
  readonly verifyCommands: number;
  /** Untimed commands before each command series. @default 300 */
  readonly commandWarmup: number;
  /** Timed GERMINATE + CULL pairs (after 3 warm-up pairs). @default 60 */
  readonly germinatePairs: number;
  /** Where progress lines go. @default stderr */
  readonly log: (message: string) => void;
}

/** Defaults of {@link KasminaBenchOptions}. */
export const KASMINA_BENCH_DEFAULTS: KasminaBenchOptions = {
  warmupSteps: 5,
  stepsPerRun: 60,
  rounds: 5,
  seedCounts: [1, 2, 3, 4],
  pauseCommands: 3000,
  verifyCommands: 3000,
  commandWarmup: 300,
  germinatePairs: 60,
  log: (message) => {
    process.stderr.write(`${message}\n`);
  },
};

/** Merges `options` over the defaults and validates them, naming the bad field. */
export function resolveKasminaBenchOptions(options: Partial<KasminaBenchOptions> = {}): KasminaBenchOptions {
  const resolved = { ...KASMINA_BENCH_DEFAULTS, ...options };
  const check = optionChecks('KasminaBenchOptions');
  for (const field of ['rounds', 'pauseCommands', 'verifyCommands', 'germinatePairs'] as const) {
    check.integer(field, resolved[field], { min: 1 });
  }
  check.integer('commandWarmup', resolved.commandWarmup, { min: 0 });
  // Three warm-up steps cover the stage moves of the blended series (TRAINING → BLENDING → SHADOWING).
  check.integer('warmupSteps', resolved.warmupSteps, { min: 3 });
  // Every training run must contain an isolation-check step for its amortised cost.
  check.integer('stepsPerRun', resolved.stepsPerRun, { min: ISOLATION_CHECK_EVERY_STEPS });
  if (resolved.seedCounts.some((n) => !Number.isSafeInteger(n) || n < 1 || n > SITES)) {
    check.fail('seedCounts', `integers in [1, ${SITES}]`, resolved.seedCounts.join(','));
  }
  return resolved;
}

// ---------------------------------------------------------------- statistics

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

const median = (values: readonly number[]): number => quantile(values, 0.5);

/** p50 / p90 / p99 / max of microsecond samples. */
export interface LatencyUs {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly n: number;
}

function latencyUs(samplesMs: readonly number[]): LatencyUs {
  return {
    p50: round(quantile(samplesMs, 0.5) * 1000, 1),
    p90: round(quantile(samplesMs, 0.9) * 1000, 1),
    p99: round(quantile(samplesMs, 0.99) * 1000, 1),
    max: round(Math.max(...samplesMs) * 1000, 1),
    n: samplesMs.length,
  };
}

// ---------------------------------------------------------------- fixture

/** Everything the measurements share: host, data, signed-command machinery, kernel library. */
export interface KasminaBenchFixture {
  readonly host: HostModel;
  readonly dataset: Dataset;
  readonly catalog: KarnCatalog;
  readonly signer: HmacSigner;
  /** The Urza library the kernels are served from. */
  readonly library: UrzaLibrary;
  readonly worker: AsyncWorker;
  close(): Promise<void>;
}

const RING = new KeyRing([{ keyId: 'bench', secret: Buffer.from('kasmina-bench-secret-0123456789abcdef', 'utf8') }]);

/** The 8-site host: 784 → 8 × (dense 128 ReLU, site `s<i>`) → dense 10. */
function buildHost(): HostModel {
  let builder = new HostBuilder({ hostId: 'kasmina-bench', family: 'mlp', inputShape: [INPUT_SIZE], seed: 1 });
  for (let i = 1; i <= SITES; i += 1) builder = builder.dense(WIDTH, Activation.RELU, { name: `h${i}` }).site(`s${i}`);
  return builder.dense(CLASSES, Activation.LINEAR, { name: 'head' }).build();
}

function randomDataset(examples: number): Dataset {
  const rng = seededRng(7);
  const split = (n: number): ArraySplit =>
    new ArraySplit({
      inputShape: [INPUT_SIZE],
      inputs: Float32Array.from({ length: n * INPUT_SIZE }, () => rng.nextFloat()),
      labels: Int32Array.from({ length: n }, () => rng.nextInt(CLASSES)),
    });
  return { name: 'random784', inputShape: [INPUT_SIZE], numClasses: CLASSES, train: split(examples), validation: split(BATCH) };
}

/**
 * Opens the fixture: initialises the tensor backend, builds the host, compiles BP001 for
 * its (one) site shape with Tezzeret into an Urza library in a temp dir.
 */
export async function openKasminaBench(): Promise<KasminaBenchFixture> {
  await initTensorBackend();
  const root = await mkdtemp(path.join(tmpdir(), 'kasmina-bench-'));
  const catalog = new KarnCatalog();
  const library = await UrzaLibrary.open({ rootDir: path.join(root, 'urza') });
  const host = buildHost();
  const worker = new AsyncWorker({ name: 'kasmina-bench' });
  const close = (): Promise<void> =>
    runCleanup('kasmina bench', [
      () => host.dispose(),
      () => worker.close(),
      () => library.close(),
      () => rm(root, { recursive: true, force: true }),
    ]);
  try {
    const compiler = new TezzeretCompiler({ catalog, prewarmSamples: 1 });
    const keys = new Set<string>();
    for (const site of host.descriptor.sites) {
      const siteKey = siteKeyOf(site);
      if (keys.has(siteKey)) continue;
      if (!catalog.familyOf(BLUEPRINT).fits(site))
        throw new EsperError(ErrorCode.INVALID_STATE, `${BLUEPRINT} does not fit site ${site.siteId}`);
      keys.add(siteKey);
      const compiled = await compiler.compile(catalog.get(BLUEPRINT), catalog.defaultParameters(BLUEPRINT), site, { seed: 11 });
      await library.save({
        descriptor: catalog.get(BLUEPRINT),
        siteKey,
        artifact: compiled.bytes,
        guardDigest: compiled.guardDigest,
        compileMs: compiled.compileMs,
        prewarm: compiled.prewarm,
      });
    }
  } catch (error) {
    await close();
    throw error;
  }
  return {
    host,
    dataset: randomDataset(BATCH * 25),
    catalog,
    signer: new HmacSigner(RING),
    library,
    worker,
    close,
  };
}

/** One Kasmina as a real run builds it (`createKasmina`: fetcher, cache, memory governor; verifier + ledger), on the real clock. */
async function newKasmina(
  fixture: KasminaBenchFixture,
  settings: Partial<KasminaLifecycleSettings>,
): Promise<{ built: Kasmina; kasmina: KasminaExecutor; verifier: CommandVerifier }> {
  const telemetry = new MemoryTelemetrySink(64);
  const ledger = new NonceLedger({ sink: telemetry, source: 'kasmina' });
  const verifier = new CommandVerifier({ signer: fixture.signer, ledger, sink: telemetry, source: 'kasmina' });
  const built = await createKasmina(
    {
      ...loadSettings({ env: {} }).kasmina,
      kernelLatencyBudgetMs: 5_000,
      trainingSteps: FOREVER,
      blendingSteps: FOREVER,
      alphaTemperature: 3,
      shadowingSteps: FOREVER,
      probationSteps: FOREVER,
      minContribution: 0.01,
      embargoSteps: 5,
      isolationCheckEverySteps: ISOLATION_CHECK_EVERY_STEPS,
      kernelCacheCapacity: 8,
      kernelCacheTtlSeconds: 3600,
      ...settings,
    },
    {
      host: fixture.host,
      trainingRunId: RUN_ID,
      telemetry,
      catalog: fixture.catalog,
      kernels: fixture.library,
      verifier,
      clock: systemClock,
    },
  );
  return { built, kasmina: built.executor, verifier };
}

function contextOf(fixture: KasminaBenchFixture, globalStep: number): ExecutorContext {
  return { host: fixture.host, trainingRunId: RUN_ID, epoch: 0, globalStep, rng: seededRng(3) };
}

function signed(fixture: KasminaBenchFixture, command: AdaptationCommand): AdaptationCommand {
  return fixture.signer.sign(AdaptationCommandSchema, create(AdaptationCommandSchema, command));
}

const germinateCommand = (fixture: KasminaBenchFixture, seedId: string, siteId: string): AdaptationCommand =>
  signed(
    fixture,
    buildOperatorCommand({ action: OperatorAction.GERMINATE, trainingRunId: RUN_ID, seedId, siteId, blueprintId: BLUEPRINT }),
  );

// ---------------------------------------------------------------- step series

/** Times Kasmina's own per-step work (`exportSeedStates` + `advance`) inside the trainer. */
class TimedExecutor implements Executor {
  readonly inner: KasminaExecutor;
  /** ms spent in Kasmina since the last {@link TimedExecutor.take}. */
  #ms = 0;

  constructor(inner: KasminaExecutor) {
    this.inner = inner;
  }

  apply(command: AdaptationCommand, context: ExecutorContext, options: CallOptions): Promise<void> {
    return this.inner.apply(command, context, options);
  }

  exportSeedStates(): readonly SeedState[] {
    const started = performance.now();
    const states = this.inner.exportSeedStates();
    this.#ms += performance.now() - started;
    return states;
  }

  async advance(context: ExecutorContext, options: CallOptions): Promise<void> {
    const started = performance.now();
    await this.inner.advance(context, options);
    this.#ms += performance.now() - started;
  }

  contributionProbes(): readonly ContributionProbe[] {
    return this.inner.contributionProbes();
  }

  recordValidation(report: ValidationReport, context: ExecutorContext, options: CallOptions): Promise<void> {
    return this.inner.recordValidation(report, context, options);
  }

  take(): number {
    const ms = this.#ms;
    this.#ms = 0;
    return ms;
  }
}

type SeriesPhase = 'training' | 'blended';

interface Configuration {
  readonly key: string;
  readonly kasmina: boolean;
  readonly seeds: number;
  readonly phase: SeriesPhase | undefined;
}

interface StepSample {
  readonly stepMs: number;
  /** Process CPU time (user + system) between two `onStep` calls: immune to other processes taking the cores. */
  readonly cpuMs: number;
  readonly kasminaMs: number;
  readonly isolationCheck: boolean;
}

const STAGE_OF_PHASE: Readonly<Record<SeriesPhase, SeedLifecycleStage>> = {
  training: SeedLifecycleStage.SEED_STAGE_TRAINING,
  blended: SeedLifecycleStage.SEED_STAGE_SHADOWING,
};

/** One trainer run of `config`: germinates its seeds, trains warm-up + timed steps, tears down. */
async function runConfiguration(fixture: KasminaBenchFixture, config: Configuration, options: KasminaBenchOptions): Promise<StepSample[]> {
  const settings: Partial<KasminaLifecycleSettings> = config.phase === 'blended' ? { trainingSteps: 1, blendingSteps: 1 } : {};
  const built = config.kasmina ? await newKasmina(fixture, settings) : undefined;
  const timed = built === undefined ? undefined : new TimedExecutor(built.kasmina);
  for (let i = 1; i <= config.seeds; i += 1) {
    await built?.kasmina.apply(germinateCommand(fixture, `seed-${i}`, `s${i}`), contextOf(fixture, 0));
  }
  const samples: StepSample[] = [];
  const stop = new AbortController();
  let checks = 0;
  let cpu = process.cpuUsage();
  const trainer = new Trainer({
    trainingRunId: RUN_ID,
    host: fixture.host,
    dataset: fixture.dataset,
    epochs: 1_000_000,
    batchSize: BATCH,
    optimizer: { kind: 'adam', learningRate: 1e-3 },
    telemetry: new MemoryTelemetrySink(16),
    worker: fixture.worker,
    ...(timed === undefined ? {} : { executor: timed }),
    onStep: (r) => {
      const cpuDelta = process.cpuUsage(cpu);
      cpu = process.cpuUsage();
      const kasminaMs = timed?.take() ?? 0;
      const nowChecks = built?.kasmina.stats().isolationChecks ?? 0;
      const isolationCheck = nowChecks > checks;
      checks = nowChecks;
      if (r.globalStep > options.warmupSteps)
        samples.push({ stepMs: r.stepMs, cpuMs: (cpuDelta.user + cpuDelta.system) / 1000, kasminaMs, isolationCheck });
      if (samples.length >= options.stepsPerRun) stop.abort();
    },
  });
  try {
    await trainer.run({ signal: stop.signal });
    if (built !== undefined && config.phase !== undefined) {
      // The figures are only what they claim if every seed stayed where the series put it.
      const stages = built.kasmina.exportSeedStates().map((s) => s.stage);
      if (stages.length !== config.seeds || stages.some((s) => s !== STAGE_OF_PHASE[config.phase as SeriesPhase])) {
        throw new EsperError(
          ErrorCode.INVALID_STATE,
          `${config.key}: seeds ended in stages ${stages.join(',')}, not all ${STAGE_OF_PHASE[config.phase]}`,
        );
      }
    }
    if (samples.length < options.stepsPerRun) {
      throw new EsperError(ErrorCode.INVALID_STATE, `${config.key}: only ${samples.length} of ${options.stepsPerRun} steps completed`);
    }
  } finally {
    trainer.dispose();
    await built?.built.close();
  }
  if (fixture.host.hooks.size !== 0) throw new EsperError(ErrorCode.INVALID_STATE, `${config.key}: hooks left on the host after shutdown`);
  return samples;
}

/** Per-step cost of one configuration. */
export interface StepFigures {
  /** Median wall ms of one trainer step. */
  readonly stepMs: number;
  /** `stepMs` / the bare host's `stepMs`. */
  readonly ratio: number;
  /** (ratio − 1) × 100. */
  readonly overheadPct: number;
  /** Median process CPU ms per step (robust when other processes load the machine). */
  readonly cpuStepMs: number;
  /** `cpuStepMs` / the bare host's `cpuStepMs`. */
  readonly cpuRatio: number;
  /** (cpuRatio − 1) × 100. */
  readonly cpuOverheadPct: number;
  /** Median µs per step inside Kasmina (`exportSeedStates` + `advance`), timed directly. */
  readonly kasminaUsPerStep: number;
  /** `kasminaUsPerStep` as % of the bare host's step. */
  readonly kasminaPctOfHostStep: number;
  readonly samples: number;
}

/** Cost of one active-seed configuration. */
export interface ActiveFigures extends StepFigures {
  readonly seeds: number;
  readonly phase: SeriesPhase;
  /** Lifecycle stage the seeds were held in. */
  readonly stage: 'TRAINING' | 'SHADOWING';
  /** Alpha of every seed (0 while TRAINING: straight-through, 1 in SHADOWING). */
  readonly alpha: number;
  /** Training series only: the direct isolation check, every `isolationCheckEverySteps` steps. */
  readonly isolation?: {
    readonly everySteps: number;
    /** Median Kasmina µs on steps that ran the checks (all seeds check on the same step). */
    readonly checkStepKasminaUs: number;
    /** Median Kasmina µs on the other steps. */
    readonly otherStepKasminaUs: number;
    /** (check − other) / everySteps, as % of the bare host step. */
    readonly amortisedPctOfHostStep: number;
    readonly checkSteps: number;
  };
}

/** Result of {@link measureStepOverhead}. */
export interface StepOverhead {
  readonly hostStepMs: number;
  readonly hostStepCpuMs: number;
  readonly bareSamples: number;
  readonly dormant8: StepFigures;
  readonly active: ActiveFigures[];
}

/** Bare host vs 8 dormant sites vs 1–4 active seeds, in interleaved rounds. */
export async function measureStepOverhead(fixture: KasminaBenchFixture, options: KasminaBenchOptions): Promise<StepOverhead> {
  const configs: Configuration[] = [
    { key: 'bare', kasmina: false, seeds: 0, phase: undefined },
    { key: 'dormant8', kasmina: true, seeds: 0, phase: undefined },
    ...(['training', 'blended'] as const).flatMap((phase) =>
      options.seedCounts.map((seeds): Configuration => ({ key: `${phase}-${seeds}`, kasmina: true, seeds, phase })),
    ),
  ];
  const pooled = new Map<string, StepSample[]>(configs.map((c) => [c.key, []]));
  for (let r = 1; r <= options.rounds; r += 1) {
    for (const config of configs) {
      const samples = await runConfiguration(fixture, config, options);
      pooled.get(config.key)?.push(...samples);
      const wall = median(samples.map((s) => s.stepMs)).toFixed(3);
      const cpu = median(samples.map((s) => s.cpuMs)).toFixed(3);
      options.log(`round ${r}/${options.rounds} ${config.key}: ${wall} ms/step, ${cpu} CPU ms/step (n=${samples.length})`);
    }
  }
  const bare = pooled.get('bare') ?? [];
  const hostStepMs = median(bare.map((s) => s.stepMs));
  const hostStepCpuMs = median(bare.map((s) => s.cpuMs));
  const figures = (samples: readonly StepSample[]): StepFigures => {
    const stepMs = median(samples.map((s) => s.stepMs));
    const cpuMs = median(samples.map((s) => s.cpuMs));
    const kasminaMs = median(samples.map((s) => s.kasminaMs));
    return {
      stepMs: round(stepMs, 3),
      ratio: round(stepMs / hostStepMs, 4),
      overheadPct: round((stepMs / hostStepMs - 1) * 100, 2),
      cpuStepMs: round(cpuMs, 3),
      cpuRatio: round(cpuMs / hostStepCpuMs, 4),
      cpuOverheadPct: round((cpuMs / hostStepCpuMs - 1) * 100, 2),
      kasminaUsPerStep: round(kasminaMs * 1000, 1),
      kasminaPctOfHostStep: round((kasminaMs / hostStepMs) * 100, 2),
      samples: samples.length,
    };
  };
  const active = configs.flatMap((config): ActiveFigures[] => {
    if (config.phase === undefined) return [];
    const samples = pooled.get(config.key) ?? [];
    const base = { seeds: config.seeds, phase: config.phase, ...figures(samples) };
    if (config.phase === 'blended') return [{ ...base, stage: 'SHADOWING', alpha: 1 }];
    const checkSteps = samples.filter((s) => s.isolationCheck).map((s) => s.kasminaMs);
    const other = samples.filter((s) => !s.isolationCheck).map((s) => s.kasminaMs);
    const everySteps = ISOLATION_CHECK_EVERY_STEPS;
    const extraMs = checkSteps.length === 0 ? 0 : median(checkSteps) - median(other);
    return [
      {
        ...base,
        stage: 'TRAINING',
        alpha: 0,
        isolation: {
          everySteps,
          checkStepKasminaUs: round(median(checkSteps) * 1000, 1),
          otherStepKasminaUs: round(median(other) * 1000, 1),
          amortisedPctOfHostStep: round((extraMs / everySteps / hostStepMs) * 100, 2),
          checkSteps: checkSteps.length,
        },
      },
    ];
  });
  return {
    hostStepMs: round(hostStepMs, 3),
    hostStepCpuMs: round(hostStepCpuMs, 3),
    bareSamples: bare.length,
    dormant8: figures(pooled.get('dormant8') ?? []),
    active,
  };
}

// ---------------------------------------------------------------- commands

/** Result of {@link measureCommandLatency}. */
export interface CommandLatency {
  /** `kasmina.apply` of a PAUSE for an unknown seed: verify + guard + dispatch, no graft. */
  readonly pauseApplyUs: LatencyUs;
  /** `CommandVerifier.verify` alone (HMAC over canonical bytes, freshness, nonce ledger). */
  readonly verifyUs: LatencyUs;
  /** GERMINATE + CULL applied back to back: graft (kernel fetch from the cache, module rebuild, attach) and teardown. */
  readonly germinateCullUs: LatencyUs;
  readonly germinateUs: LatencyUs;
  readonly cullUs: LatencyUs;
  /** Germinations whose kernel bytes came from the cache (all but the first warm-up one). */
  readonly kernelCacheHits: number;
  /** Share of PAUSE applies over the aim ({@link KASMINA_AIMS}), in %. */
  readonly pauseApplyOverAimPct: number;
  /** GC pauses during the PAUSE and verify series. */
  readonly gc: GcPauses;
}

/** p50/p99 of command verify + dispatch and of a graft/teardown pair, on the real clock. */
export async function measureCommandLatency(fixture: KasminaBenchFixture, options: KasminaBenchOptions): Promise<CommandLatency> {
  const { built, kasmina, verifier } = await newKasmina(fixture, { embargoSteps: 0 });
  let step = 0;
  const context = (): ExecutorContext => contextOf(fixture, step);
  /** Flushes Kasmina's queued events (untimed) so they do not pile up over thousands of commands. */
  const flush = async (): Promise<void> => {
    step += 1;
    await kasmina.advance(context());
  };
  const pause = (i: number): AdaptationCommand =>
    signed(fixture, buildOperatorCommand({ action: OperatorAction.PAUSE, trainingRunId: RUN_ID, seedId: `ghost-${i}` }));
  try {
    options.log(`commands: ${options.pauseCommands} PAUSE applies…`);
    const gc = recordGc();
    const pauseMs: number[] = [];
    for (let i = 0; i < options.commandWarmup + options.pauseCommands; i += 1) {
      const command = pause(i);
      const started = performance.now();
      await kasmina.apply(command, context());
      const elapsed = performance.now() - started;
      if (i >= options.commandWarmup) pauseMs.push(elapsed);
      if (i % 256 === 255) await flush();
    }
    await flush();

    options.log(`commands: ${options.verifyCommands} verifies…`);
    const verifyMs: number[] = [];
    let rejected = 0;
    for (let i = 0; i < options.commandWarmup + options.verifyCommands; i += 1) {
      const command = pause(options.commandWarmup + options.pauseCommands + i);
      const started = performance.now();
      const verdict = verifier.verify(command);
      const elapsed = performance.now() - started;
      if (!verdict.ok) rejected += 1;
      if (i >= options.commandWarmup) verifyMs.push(elapsed);
    }
    const gcPauses = await gc.stop();
    if (rejected > 0) throw new EsperError(ErrorCode.INVALID_STATE, `${rejected} benchmark commands were rejected`);

    options.log(`commands: ${options.germinatePairs} GERMINATE + CULL pairs…`);
    const germinateMs: number[] = [];
    const cullMs: number[] = [];
    const hitsBefore = built.fetcher.stats().cacheHits;
    const warmupPairs = 3;
    for (let i = 0; i < warmupPairs + options.germinatePairs; i += 1) {
      const seedId = `pair-${i}`;
      const germinate = germinateCommand(fixture, seedId, 's1');
      const cull = signed(fixture, buildOperatorCommand({ action: OperatorAction.CULL, trainingRunId: RUN_ID, seedId }));
      let started = performance.now();
      await kasmina.apply(germinate, context());
      const germinated = performance.now() - started;
      if (kasmina.stageOf(seedId) !== SeedLifecycleStage.SEED_STAGE_TRAINING) {
        throw new EsperError(ErrorCode.INVALID_STATE, `${seedId} was not grafted (stage ${String(kasmina.stageOf(seedId))})`);
      }
      started = performance.now();
      await kasmina.apply(cull, context());
      const culled = performance.now() - started;
      if (i >= warmupPairs) {
        germinateMs.push(germinated);
        cullMs.push(culled);
      }
      await flush();
      if (kasmina.stageOf(seedId) !== undefined || fixture.host.hooks.size !== 0) {
        throw new EsperError(ErrorCode.INVALID_STATE, `${seedId} was not reset after its cull`);
      }
    }
    return {
      pauseApplyUs: latencyUs(pauseMs),
      verifyUs: latencyUs(verifyMs),
      germinateCullUs: latencyUs(germinateMs.map((g, i) => g + (cullMs[i] as number))),
      germinateUs: latencyUs(germinateMs),
      cullUs: latencyUs(cullMs),
      kernelCacheHits: built.fetcher.stats().cacheHits - hitsBefore,
      pauseApplyOverAimPct: round(
        (100 * pauseMs.filter((ms) => ms * 1000 >= KASMINA_AIMS.verifyDispatchP99UsBelow).length) / pauseMs.length,
      ),
      gc: gcPauses,
    };
  } finally {
    await built.close();
  }
}

// ---------------------------------------------------------------- whole bench

/** The JSON object the benchmark prints. */
export interface KasminaBenchResult {
  readonly bench: 'kasmina';
  readonly backend: ReturnType<typeof describeTensorBackend>;
  readonly host: {
    readonly model: string;
    readonly sites: number;
    readonly parameters: number;
    readonly batch: number;
    readonly optimizer: 'adam';
    readonly blueprint: string;
  };
  /** The machine while the bench ran: a loaded machine widens the tails. */
  readonly machine: { readonly cpus: number; readonly loadAvg1mStart: number; readonly loadAvg1mEnd: number };
  readonly protocol: {
    readonly warmupSteps: number;
    readonly stepsPerRun: number;
    readonly rounds: number;
    readonly statistic: 'median';
    readonly interleaved: true;
  };
  readonly hostStepMs: number;
  readonly hostStepCpuMs: number;
  readonly dormant8: StepFigures;
  readonly active: ActiveFigures[];
  readonly commands: CommandLatency;
  readonly aims: typeof KASMINA_AIMS;
  /** `dormant` judges the wall-time ratio, `dormantCpu` the CPU-time ratio (trust it on a loaded machine). */
  readonly met: { readonly dormant: boolean; readonly dormantCpu: boolean; readonly verifyDispatch: boolean };
}

/** Runs every measurement on one fixture and returns the result object. */
export async function runKasminaBench(partial: Partial<KasminaBenchOptions> = {}): Promise<KasminaBenchResult> {
  const options = resolveKasminaBenchOptions(partial);
  const loadAvg1mStart = round(loadavg()[0] ?? 0);
  const fixture = await openKasminaBench();
  try {
    const steps = await measureStepOverhead(fixture, options);
    const commands = await measureCommandLatency(fixture, options);
    return {
      bench: 'kasmina',
      backend: describeTensorBackend(),
      host: {
        model: `${INPUT_SIZE}-${SITES}x${WIDTH}-${CLASSES} (site after every hidden layer)`,
        sites: fixture.host.descriptor.sites.length,
        parameters: fixture.host.variables.reduce((n, v) => n + v.size, 0),
        batch: BATCH,
        optimizer: 'adam',
        blueprint: BLUEPRINT,
      },
      machine: { cpus: availableParallelism(), loadAvg1mStart, loadAvg1mEnd: round(loadavg()[0] ?? 0) },
      protocol: {
        warmupSteps: options.warmupSteps,
        stepsPerRun: options.stepsPerRun,
        rounds: options.rounds,
        statistic: 'median',
        interleaved: true,
      },
      hostStepMs: steps.hostStepMs,
      hostStepCpuMs: steps.hostStepCpuMs,
      dormant8: steps.dormant8,
      active: steps.active,
      commands,
      aims: KASMINA_AIMS,
      met: {
        dormant: steps.dormant8.overheadPct < KASMINA_AIMS.dormantOverheadPctBelow,
        dormantCpu: steps.dormant8.cpuOverheadPct < KASMINA_AIMS.dormantOverheadPctBelow,
        verifyDispatch: commands.pauseApplyUs.p99 < KASMINA_AIMS.verifyDispatchP99UsBelow,
      },
    };
  } finally {
    await fixture.close();
  }
}

async function main(): Promise<void> {
  const result = await runKasminaBench();
  const log = KASMINA_BENCH_DEFAULTS.log;
  const d = result.dormant8;
  log(
    `bare ${result.hostStepMs} ms/step (${result.hostStepCpuMs} CPU ms); dormant8 ${d.overheadPct}% wall, ${d.cpuOverheadPct}% CPU, Kasmina ${d.kasminaUsPerStep} µs/step`,
  );
  for (const a of result.active) log(`${a.seeds} ${a.phase}: ${a.stepMs} ms/step, ratio ${a.ratio} wall, ${a.cpuRatio} CPU`);
  log(`pause apply p50/p99 ${result.commands.pauseApplyUs.p50}/${result.commands.pauseApplyUs.p99} µs`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// Run only as a script: the smoke test imports the measuring functions.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
