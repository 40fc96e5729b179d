/**
 * `esper run`: one process, the whole control loop — Tolaria trains the host while Tamiyo
 * decides and Kasmina executes, over an in-process bus with Urza under `storage.varDir` —
 * then a static baseline with the same step budget, a run record and a short report.
 *
 * The default host is deliberately small (MLP 32-32 on MNIST) so that growth has headroom
 * to show; `--config` takes a JSON file with any of {@link RunConfig}'s fields.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import {
  AsyncWorker,
  DependencyGuard,
  ErrorCode,
  formatSettingsIssue,
  isEsperError,
  loadSettings,
  SettingsError,
  type EsperSettings,
  type TelemetrySink,
} from '../core/index.js';
import type { KasminaExecutor } from '../kasmina/index.js';
import { SeedLifecycleStage, TelemetryLevel, type BSDS } from '../leyline/index.js';
import { openBusFromSettings } from '../oona/index.js';
import { HmacSigner, KeyRing, openLocalKeyRing, type CommandVerifier } from '../security/index.js';
import {
  CommandBuilder,
  EmbeddingRegistries,
  FeatureNormaliser,
  FieldReportBuilder,
  FieldReportPublisher,
  FieldReportStore,
  GnnPolicy,
  gnnConfigFor,
  GRAPH_RELATIONS,
  GraphBuilder,
  HeuristicPolicy,
  RiskEngine,
  TamiyoGnn,
  TamiyoService,
  type BlueprintCandidate,
  type TamiyoPolicy,
} from '../tamiyo/index.js';
import { initTensorBackend, seededRng } from '../tensor/index.js';
import {
  createHost,
  loadDataset,
  LrSchedulePolicy,
  Trainer,
  type Controller,
  type EpochReport,
  type Executor,
  type HostModel,
  type TrainingSummary,
} from '../tolaria/index.js';
import { createBsdsVerifier, type GraphMetadata } from '../urza/index.js';
import { openGrowth, type Growth } from './growth.js';
import { Progress, StderrEventSink, type TrainIo } from './train.js';

/** What `esper run` runs; every field has a default (see {@link DEFAULT_RUN_CONFIG}). */
export const RunConfigSchema = z
  .object({
    dataset: z.enum(['mnist', 'xor', 'spirals', 'moons']),
    host: z.enum(['mlp', 'cnn']),
    /** MLP hidden widths. */
    hidden: z.array(z.number().int().min(1)).min(1).max(8),
    epochs: z.number().int().min(1).max(1000),
    batchSize: z.number().int().min(1),
    learningRate: z.number().positive(),
    seed: z.number().int().min(0),
    /** Controller: the heuristic baseline or the (untrained unless updated) GNN. */
    policy: z.enum(['heuristic', 'gnn']),
    /** Also train the static baseline with the same step budget. */
    baseline: z.boolean(),
  })
  .strict();

/** Configuration of one `esper run`. */
export type RunConfig = z.infer<typeof RunConfigSchema>;

export const DEFAULT_RUN_CONFIG: RunConfig = Object.freeze({
  dataset: 'mnist',
  host: 'mlp',
  hidden: [32, 32],
  epochs: 12,
  batchSize: 64,
  learningRate: 0.002,
  seed: 0,
  policy: 'heuristic',
  baseline: true,
});

/** Usage of `esper run`. */
export const RUN_HELP = `esper run — train a host that grows: Tolaria + Tamiyo + Kasmina in one process

Usage:
  esper run [options]

Options:
  --config <file>     JSON file with any of: dataset, host, hidden, epochs, batchSize,
                      learningRate, seed, policy (heuristic | gnn), baseline
  --seed <n>          seed of initialisation, data order and decisions (default 0)
  --epochs <n>        epochs of the grown run and of the baseline (default 12)
  --policy <name>     heuristic (default) | gnn
  --no-baseline       skip the static baseline
  --out <dir>         run directory (default <storage.varDir>/runs/<run id>)
  --json              print the report as one JSON object
  -h, --help          show this help

Writes record.json (config, seed, commands, field reports, metrics) and report.md to the
run directory. Commands are signed with ESPER_LEYLINE_SECRET/KEYS when set, else with a
key generated for this run.
`;

/** Options of {@link runRun} beyond the arguments (tests inject these). */
export interface RunRunOptions {
  readonly signal?: AbortSignal;
  readonly settings?: EsperSettings;
}

/** One seed's story, for the report. */
export interface SeedStory {
  readonly seedId: string;
  readonly siteId: string;
  readonly blueprintId: string;
  readonly germinatedStep: number;
  /** FOSSILIZED, CULLED, or the stage the seed was in when the run ended. */
  readonly fate: string;
  readonly fateStep: number;
  /** Why it was culled ('' otherwise). */
  readonly fateReason: string;
  readonly contribution: number | undefined;
  readonly parameters: number;
}

/** What `esper run` reports (also the `report` section of record.json). */
export interface RunReport {
  readonly runId: string;
  readonly config: RunConfig;
  readonly grown: { readonly finalAccuracy: number; readonly parameters: number; readonly steps: number; readonly wallS: number };
  readonly baseline?: { readonly finalAccuracy: number; readonly parameters: number; readonly steps: number; readonly wallS: number };
  readonly seeds: readonly SeedStory[];
  readonly commands: { readonly issued: number; readonly accepted: number; readonly rejected: number };
  readonly controlPlane: { readonly tamiyoMs: number; readonly kasminaMs: number; readonly shareOfStep: number };
  readonly fieldReports: number;
  readonly runDir: string;
}

/** Runs `esper run` with the arguments after `run`; returns the exit code. */
export async function runRun(argv: readonly string[], io: TrainIo, options: RunRunOptions = {}): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string' },
        seed: { type: 'string' },
        epochs: { type: 'string' },
        policy: { type: 'string' },
        'no-baseline': { type: 'boolean' },
        out: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    io.stderr.write(`esper run: ${(error as Error).message}\n\n${RUN_HELP}`);
    return 2;
  }
  if (values.help === true) {
    io.stdout.write(RUN_HELP);
    return 0;
  }
  let config: RunConfig;
  let settings: EsperSettings;
  try {
    const fromFile = values.config === undefined ? {} : (JSON.parse(await readFile(values.config, 'utf8')) as unknown);
    const flags = {
      ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
      ...(values.epochs === undefined ? {} : { epochs: Number(values.epochs) }),
      ...(values.policy === undefined ? {} : { policy: values.policy }),
      ...(values['no-baseline'] === true ? { baseline: false } : {}),
    };
    config = RunConfigSchema.parse({ ...DEFAULT_RUN_CONFIG, ...(fromFile as object), ...flags });
    settings = options.settings ?? loadSettings();
  } catch (error) {
    if (error instanceof SettingsError) {
      io.stderr.write(`esper run: invalid settings\n${error.issues.map((i) => `  ${formatSettingsIssue(i)}`).join('\n')}\n`);
    } else if (error instanceof z.ZodError) {
      io.stderr.write(
        `esper run: invalid configuration: ${error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}\n`,
      );
    } else {
      io.stderr.write(`esper run: ${error instanceof Error ? error.message : String(error)}\n`);
    }
    return 2;
  }
  const own = new AbortController();
  const onSignal = (): void => own.abort();
  if (options.signal === undefined) process.once('SIGINT', onSignal);
  try {
    const report = await runExperiment(config, settings, io, options.signal ?? own.signal, values.out);
    io.stdout.write(values.json === true ? `${JSON.stringify(report)}\n` : formatReport(report));
    return 0;
  } catch (error) {
    const code = isEsperError(error) ? ` [${error.code}]` : '';
    io.stderr.write(`esper run: ${error instanceof Error ? error.message : String(error)}${code}\n`);
    return 1;
  } finally {
    process.removeListener('SIGINT', onSignal);
  }
}

/** The grown run, then the baseline; writes the record and returns the report. */
export async function runExperiment(
  config: RunConfig,
  settings: EsperSettings,
  io: TrainIo,
  signal: AbortSignal,
  outDir?: string,
): Promise<RunReport> {
  await initTensorBackend();
  const runId = `run-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-')}-${randomBytes(2).toString('hex')}`;
  const runDir = outDir ?? path.join(settings.storage.varDir, 'runs', runId);
  await mkdir(runDir, { recursive: true });
  const dataset = await loadDataset(config.dataset, { layout: config.host === 'cnn' ? 'image' : 'flat', seed: config.seed });
  const keyRing = configuredKeyRing(settings) ?? (await localKeyRing(settings.storage.varDir, io));
  const progress = new Progress(io, config.epochs);
  const stderr = new StderrEventSink(io, progress);
  const sink: TelemetrySink = {
    emit(packet) {
      // Tamiyo's per-step risk warnings (loss spikes on single batches) would drown the
      // terminal; they are in the telemetry. Its errors and everyone else's warnings show.
      if (packet.sourceSubsystem === 'tamiyo' && packet.level < TelemetryLevel.ERROR) return;
      stderr.emit(packet);
    },
  };
  const hostOptions = { inputShape: dataset.inputShape, numClasses: dataset.numClasses, seed: config.seed, hidden: config.hidden };
  const host = createHost(config.host, { ...hostOptions, hostId: 'grown' });
  const worker = new AsyncWorker({ name: 'esper-run', ...settings.core.asyncWorker });
  const bus = openBusFromSettings({ oona: { ...settings.oona, busUrl: 'memory://' } }, { keyRing, telemetry: sink });
  let growth: Growth | undefined;
  let store: FieldReportStore | undefined;
  let tamiyo: TamiyoService | undefined;
  const grownEpochs: EpochReport[] = [];
  try {
    io.stderr.write(
      `esper run: run ${runId} — ${config.host} ${config.hidden.join('-')} on ${config.dataset}, ${config.epochs} epochs, ${config.policy} policy, seed ${config.seed}\n`,
    );
    const runSettings: EsperSettings = { ...settings, kasmina: { ...settings.kasmina, ...RUN_LIFECYCLE } };
    growth = await openGrowth({
      settings: runSettings,
      host,
      trainingRunId: runId,
      telemetry: sink,
      keyRing,
      certify: true,
      onProgress: (line) => io.stderr.write(`esper run: ${line}\n`),
    });
    const candidates = candidatesOf(growth, host);
    store = await FieldReportStore.open(path.join(runDir, 'field-reports.wal'), { telemetry: sink });
    const policy = buildPolicy(config);
    tamiyo = new TamiyoService({
      policy,
      host: host.descriptor,
      candidates,
      bsdsVerifier: createBsdsVerifier(keyRing),
      risk: new RiskEngine({ startConservative: settings.tamiyo.conservativeMode }),
      commands: new CommandBuilder({
        trainingRunId: runId,
        signer: new HmacSigner(keyRing, { freshnessWindowMs: settings.security.freshnessWindowMs }),
        guard: new DependencyGuard({ subsystem: 'tamiyo', sink, trainingRunId: runId }),
      }),
      telemetry: sink,
      trainingRunId: runId,
      stepBudgetMs: Math.max(settings.tamiyo.stepTimeoutMs, policy.name === 'gnn' ? 50 : 0),
      fieldReports: {
        builder: new FieldReportBuilder({ trainingRunId: runId, policyVersion: () => policy.version, telemetry: sink }),
        store,
        publisher: new FieldReportPublisher({ store, bus, telemetry: sink, trainingRunId: runId }),
      },
      ...(policy instanceof GnnPolicy ? { coverage: () => policy.lastCoverage } : {}),
    });
    const stepsPerEpoch = Math.ceil(dataset.train.size / config.batchSize);
    const grownStarted = performance.now();
    const summary = await train({
      runId,
      host,
      dataset,
      config,
      worker,
      progress,
      sink,
      signal,
      controller: tamiyo,
      executor: growth.kasmina,
      commandVerifier: growth.verifier,
      settings,
      onEpoch: (r) => grownEpochs.push(r),
    });
    const grownWallS = (performance.now() - grownStarted) / 1000;
    // The record reads the policy before Tamiyo closes and frees it.
    const policyRecord = { name: policy.name, version: policy.version, state: policy.snapshot?.() };
    await tamiyo.close('run_completed');
    await growth.kasmina.close();
    const seeds = seedStories(growth.kasmina);
    const fossilParams = seeds.filter((s) => s.fate === 'FOSSILIZED').reduce((n, s) => n + s.parameters, 0);
    const verifier = growth.verifier.snapshot();
    const tamiyoStats = tamiyo.stats();
    const grown = {
      finalAccuracy: summary.lastEpoch?.validationAccuracy ?? 0,
      parameters: Number(host.descriptor.parameterCount) + fossilParams,
      steps: summary.globalStep,
      wallS: grownWallS,
    };
    await growth.close();
    growth = undefined;

    let baseline: RunReport['baseline'];
    if (config.baseline && !signal.aborted) {
      io.stderr.write(`esper run: static baseline (same host, seed and step budget, no growth)\n`);
      const staticHost = createHost(config.host, { ...hostOptions, hostId: 'baseline' });
      try {
        const started = performance.now();
        const base = await train({
          runId: `${runId}-baseline`,
          host: staticHost,
          dataset,
          config,
          worker,
          progress: new Progress(io, config.epochs),
          sink,
          signal,
          settings,
        });
        baseline = {
          finalAccuracy: base.lastEpoch?.validationAccuracy ?? 0,
          parameters: Number(staticHost.descriptor.parameterCount),
          steps: base.globalStep,
          wallS: (performance.now() - started) / 1000,
        };
      } finally {
        staticHost.dispose();
      }
    }
    const trainMs = grownWallS * 1000;
    const report: RunReport = {
      runId,
      config,
      grown,
      ...(baseline === undefined ? {} : { baseline }),
      seeds,
      commands: { issued: tamiyoStats.commands, accepted: verifier.acceptedTotal, rejected: verifier.rejectedTotal },
      controlPlane: {
        tamiyoMs: summary.controlPlaneMs.controller,
        kasminaMs: summary.controlPlaneMs.executor,
        shareOfStep: trainMs > 0 ? (summary.controlPlaneMs.controller + summary.controlPlaneMs.executor) / trainMs : 0,
      },
      fieldReports: store.reports().length,
      runDir,
    };
    const record = {
      report,
      config,
      seed: config.seed,
      trainingRunId: runId,
      stepsPerEpoch,
      decisions: tamiyo.decisions,
      policy: policyRecord,
      fieldReports: store.reports().map((r) => ({
        reportId: r.reportId,
        commandId: r.commandId,
        seedId: r.seedId,
        blueprintId: r.blueprintId,
        outcome: r.outcome,
        observationWindowEpochs: r.observationWindowEpochs,
        notes: r.notes,
        delta:
          r.delta === undefined
            ? undefined
            : { lossDelta: r.delta.lossDelta, counterfactualContribution: r.delta.counterfactualContribution },
      })),
      epochs: { grown: grownEpochs },
      tamiyo: tamiyoStats,
      commandVerifier: {
        accepted: verifier.acceptedTotal,
        rejected: verifier.rejectedTotal,
        rejectionsByReason: verifier.rejectionsByReason,
      },
      summary: { ...summary },
    };
    await writeFile(path.join(runDir, 'record.json'), `${JSON.stringify(record, jsonReplacer, 2)}\n`);
    await writeFile(path.join(runDir, 'report.md'), formatReport(report));
    return report;
  } finally {
    // A no-op after a completed run; after a failure, closing must not hide the failure.
    await tamiyo?.close('run_failed').catch((error: unknown) => io.stderr.write(`esper run: closing Tamiyo failed: ${String(error)}\n`));
    await growth?.close();
    await store?.close();
    await bus.close();
    await worker.close();
    host.dispose();
  }
}

/**
 * Lifecycle lengths of `esper run` (steps): short enough that a seed germinated after the
 * host plateaus is decided within a 12-epoch MNIST run (133 steps per epoch); the
 * `kasmina.*` settings stay the defaults for long runs.
 */
export const RUN_LIFECYCLE = Object.freeze({
  trainingSteps: 60,
  blendingSteps: 40,
  shadowingSteps: 20,
  probationSteps: 20,
  embargoSteps: 60,
});

/** The heuristic's pace for `esper run`: germinate once the host has plateaued for 2 epochs, from epoch 3. */
export const RUN_HEURISTIC = Object.freeze({ minEpochs: 3, stabilizationEpochs: 2, plateauEpochsToGerminate: 2 });

function configuredKeyRing(settings: EsperSettings): KeyRing | undefined {
  const { leylineKeys, leylineSecret } = settings.security;
  if ((leylineKeys ?? '') === '' && (leylineSecret ?? '') === '') return undefined;
  return KeyRing.fromSettings(settings.security);
}

/** The var dir's local key (created once, said on stderr), so the sheets in Urza verify in later runs. */
async function localKeyRing(varDir: string, io: TrainIo): Promise<KeyRing> {
  const local = await openLocalKeyRing(varDir);
  if (local.created) io.stderr.write(`esper run: no signing key configured; created ${local.path} (mode 0600) for this and later runs\n`);
  return local.keyRing;
}

/** Every catalog blueprint compiled for one of the host's sites, with its Urza metadata and BSDS. */
function candidatesOf(growth: Growth, host: HostModel): BlueprintCandidate[] {
  return growth.catalog
    .list()
    .filter((d) => host.descriptor.sites.some((site) => growth.catalog.familyOf(d.blueprintId).fits(site)))
    .flatMap((descriptor) => {
      let graph: GraphMetadata | undefined;
      let bsds: BSDS | undefined;
      try {
        graph = growth.library.getGraphMetadata(descriptor.blueprintId);
        bsds = growth.library.getBsds(descriptor.blueprintId);
      } catch (error) {
        // A sheet or metadata that fails its check (Urza reported it CRITICAL) makes the blueprint unavailable.
        if (isEsperError(error, ErrorCode.URZA_INTEGRITY_FAILURE)) return [];
        throw error;
      }
      return [
        {
          descriptor,
          ...(graph === undefined ? {} : { graph }),
          ...(bsds === undefined ? {} : { bsds }),
          quarantined: descriptor.quarantineOnly,
        },
      ];
    });
}

function buildPolicy(config: RunConfig): TamiyoPolicy {
  if (config.policy === 'heuristic') return new HeuristicPolicy(RUN_HEURISTIC);
  const gnn = new TamiyoGnn(gnnConfigFor(GRAPH_RELATIONS), seededRng(config.seed + 17));
  return new GnnPolicy({
    gnn,
    builder: new GraphBuilder({ normaliser: new FeatureNormaliser(), registries: EmbeddingRegistries.inMemory() }),
    version: 'tamiyo-gnn-untrained',
  });
}

interface TrainInput {
  readonly runId: string;
  readonly host: HostModel;
  readonly dataset: Awaited<ReturnType<typeof loadDataset>>;
  readonly config: RunConfig;
  readonly worker: AsyncWorker;
  readonly progress: Progress;
  readonly sink: TelemetrySink;
  readonly signal: AbortSignal;
  readonly settings: EsperSettings;
  readonly controller?: Controller;
  readonly executor?: Executor;
  readonly commandVerifier?: CommandVerifier;
  readonly onEpoch?: (r: EpochReport) => void;
}

async function train(input: TrainInput): Promise<TrainingSummary> {
  const { config, dataset, settings } = input;
  const stepsPerEpoch = Math.ceil(dataset.train.size / config.batchSize);
  const trainer = new Trainer({
    trainingRunId: input.runId,
    host: input.host,
    dataset,
    epochs: config.epochs,
    batchSize: config.batchSize,
    seed: config.seed,
    optimizer: { kind: 'adam', learningRate: config.learningRate },
    lrSchedule: { policy: LrSchedulePolicy.COSINE, totalSteps: Math.max(1, config.epochs * stepsPerEpoch), warmupSteps: 0 },
    worker: input.worker,
    controllerDeadlineMs: settings.tolaria.tamiyoTimeoutMs,
    executorDeadlineMs: settings.tolaria.kasminaTimeoutMs,
    epochBudgetMs: settings.tolaria.epochBudgetMs,
    hookBudgetMs: settings.tolaria.hookBudgetMs,
    telemetry: input.sink,
    ...(input.controller === undefined ? {} : { controller: input.controller }),
    ...(input.executor === undefined ? {} : { executor: input.executor }),
    ...(input.commandVerifier === undefined ? {} : { commandVerifier: input.commandVerifier }),
    onStep: (r) => input.progress.step(r),
    onEpoch: (r) => {
      input.progress.epoch(r);
      input.onEpoch?.(r);
    },
  });
  try {
    const summary = await trainer.run({ signal: input.signal });
    input.progress.finish();
    return summary;
  } finally {
    trainer.dispose();
  }
}

/** Each seed's germination, fate and contribution, from Kasmina's own seed histories. */
function seedStories(kasmina: KasminaExecutor): SeedStory[] {
  return kasmina.seedReports().map((r) => ({
    seedId: r.seedId,
    siteId: r.siteId,
    blueprintId: r.blueprintId,
    germinatedStep: r.germinatedStep,
    fate: stageLabel(r.fate),
    fateStep: r.fateStep,
    fateReason: r.fateReason,
    contribution: r.contribution,
    parameters: r.parameters,
  }));
}

/** `SEED_STAGE_CULLED` → `CULLED`. */
function stageLabel(stage: SeedLifecycleStage): string {
  return (SeedLifecycleStage[stage] ?? String(stage)).replace('SEED_STAGE_', '');
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? Number(value) : value;
}

/** The human-readable report. */
export function formatReport(report: RunReport): string {
  const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;
  const lines = [
    `# esper run ${report.runId}`,
    '',
    `${report.config.host} ${report.config.hidden.join('-')} on ${report.config.dataset}, ${report.config.epochs} epochs, ${report.config.policy} policy, seed ${report.config.seed}`,
    '',
    '| | final validation accuracy | parameters | steps | wall |',
    '|---|---|---|---|---|',
    `| grown | ${pct(report.grown.finalAccuracy)} | ${report.grown.parameters} | ${report.grown.steps} | ${report.grown.wallS.toFixed(1)} s |`,
    ...(report.baseline === undefined
      ? []
      : [
          `| static baseline | ${pct(report.baseline.finalAccuracy)} | ${report.baseline.parameters} | ${report.baseline.steps} | ${report.baseline.wallS.toFixed(1)} s |`,
        ]),
    '',
    report.seeds.length === 0
      ? 'No seed was germinated.'
      : '| seed | site | blueprint | germinated at step | fate | at step | contribution | parameters |',
    ...(report.seeds.length === 0 ? [] : ['|---|---|---|---|---|---|---|---|']),
    ...report.seeds.map(
      (s) =>
        `| ${s.seedId} | ${s.siteId} | ${s.blueprintId} | ${s.germinatedStep} | ${s.fate}${s.fateReason === '' ? '' : ` (${s.fateReason})`} | ${s.fateStep} | ${s.contribution === undefined ? '—' : `${(s.contribution * 100).toFixed(2)} pts`} | ${s.parameters} |`,
    ),
    '',
    `Commands: ${report.commands.issued} issued by Tamiyo, ${report.commands.accepted} verified and accepted by Kasmina, ${report.commands.rejected} rejected.`,
    `Control plane: Tamiyo ${report.controlPlane.tamiyoMs.toFixed(0)} ms, Kasmina ${report.controlPlane.kasminaMs.toFixed(0)} ms — ${(report.controlPlane.shareOfStep * 100).toFixed(1)} % of the grown run's training time.`,
    `Field reports: ${report.fieldReports} (record in ${report.runDir}).`,
    '',
  ];
  return lines.join('\n');
}
