/**
 * `esper run`: one process, the whole control loop — Tolaria trains the host while Tamiyo
 * decides and Kasmina executes, over an in-process bus with Urza under `storage.varDir` —
 * then a static baseline with the same step budget, a run record and a short report.
 *
 * The default host is deliberately small (MLP 32-32 on MNIST) so that growth has headroom
 * to show; `--config` takes a JSON file with any of {@link RunConfig}'s fields. Flags,
 * config, settings, key ring and run directory are all checked before any work starts.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AsyncWorker, describeError, loadSettings, redactUrl, runCleanup, type EsperSettings, type TelemetrySink } from '../core/index.js';
import { TelemetryLevel } from '../leyline/index.js';
import type { CommandVerifier, KeyRing } from '../security/index.js';
import { formatCommandOutcomes } from '../tamiyo/index.js';
import { initTensorBackend } from '../tensor/index.js';
import {
  CheckpointStore,
  createHost,
  createTrainer,
  loadDataset,
  LrSchedulePolicy,
  type Controller,
  type EpochReport,
  type Executor,
  type HostModel,
  type TrainingSummary,
} from '../tolaria/index.js';
import { openGrowingRun, runKeyRing, stageLabel, type GrowingRun } from '../weatherlight/index.js';
import { Progress, StderrEmergencySink, StderrEventSink } from './progress.js';
import { resolveRunConfig, RUN_COMMAND, RUN_HELP, type RUN_FLAGS, type RunConfig } from './run-config.js';
import { buildRecord, formatReport, recordJson, type RunReport, type SeedStory } from './run-report.js';
import { newRunId, openServiceBus, prepareRunDir, type RunRunOptions } from './run-setup.js';
import {
  ExitCode,
  logSettings,
  parseCommandLine,
  reportFailure,
  withInterrupts,
  type CliIo,
  type CommandSpec,
  type FlagSpec,
  type FlagValues,
} from './scaffold.js';

export { DEFAULT_RUN_CONFIG, RUN_HELP, RunConfigSchema, type RunConfig } from './run-config.js';
export { formatReport, type RunReport, type SeedStory } from './run-report.js';
export type { RunRunOptions } from './run-setup.js';

/** A run whose flags, config, settings, key ring and directory have all been checked. */
export interface PreparedRun {
  readonly runId: string;
  readonly config: RunConfig;
  readonly settings: EsperSettings;
  readonly keyRing: KeyRing;
  readonly runDir: string;
  /**
   * Where Tamiyo runs: in this process (`embedded`), or as a Tamiyo server elsewhere on the
   * Redis bus (`remote`: `esper serve trainer`, a trainer of `esper run --distributed` or
   * `esper up`), which also checkpoints the grown run in `<runDir>/checkpoints` and resumes
   * from the last one when started again on the same directory.
   * @default 'embedded'
   */
  readonly controller?: 'embedded' | 'remote';
}

/** Runs `esper run` with the arguments after `run`; returns the exit code. */
export async function runRun(argv: readonly string[], io: CliIo, options: RunRunOptions = {}): Promise<number> {
  let prepared: PreparedRun;
  let json: boolean;
  try {
    const { values, help } = parseCommandLine(RUN_COMMAND, argv);
    if (help) {
      io.stdout.write(RUN_HELP);
      return ExitCode.OK;
    }
    if (values.distributed || values.trainers > 1) {
      const { runDistributed } = await import('./up.js');
      return await runDistributed(values, io, options);
    }
    json = values.json;
    prepared = await prepareRun(values, io, options, { controller: 'embedded', command: RUN_COMMAND.name });
  } catch (error) {
    return reportFailure(io, RUN_COMMAND, error);
  }
  return executeRun(prepared, io, options, json, RUN_COMMAND);
}

/** The flags a run is prepared from (those of `esper run` and `esper serve trainer`). */
export type RunValues = Pick<FlagValues<typeof RUN_FLAGS>, 'config' | 'dataset' | 'seed' | 'epochs' | 'policy' | 'no-baseline' | 'out'>;

/**
 * Checks flags, config, settings, key ring and run directory, before any work starts.
 * Latency budgets are reported, not enforced: two arms are compared, as in a study, so the
 * comparison is a function of the seed and not of how busy the machine is.
 * @throws UsageError, SettingsError, EsperError (key ring)
 */
export async function prepareRun(
  values: RunValues,
  io: CliIo,
  options: RunRunOptions,
  how: { readonly controller: 'embedded' | 'remote'; readonly command: string; readonly runId?: string },
): Promise<PreparedRun> {
  const config = resolveRunConfig(values);
  const loaded = options.settings ?? loadSettings();
  const settings: EsperSettings = { ...loaded, core: { ...loaded.core, latencyBudgets: 'observe' } };
  logSettings(io, how.command, settings);
  const keyRing = await runKeyRing(settings, (file) =>
    io.stderr.write(`${how.command}: no signing key configured; created ${file} (mode 0600) for this and later runs\n`),
  );
  const runId = how.runId ?? newRunId();
  const runDir = await prepareRunDir(values.out, settings, runId);
  return { runId, config, settings, keyRing, runDir, controller: how.controller };
}

/** Runs a prepared run under SIGINT/SIGTERM handling and prints its report; returns the exit code. */
export async function executeRun(
  prepared: PreparedRun,
  io: CliIo,
  options: RunRunOptions,
  json: boolean,
  spec: CommandSpec<Readonly<Record<string, FlagSpec>>>,
): Promise<number> {
  try {
    const report = await withInterrupts(io, spec.name, options.signal, (signal) => runExperiment(prepared, io, signal));
    io.stdout.write(json ? `${JSON.stringify(report)}\n` : formatReport(report));
    return report.interrupted ? ExitCode.INTERRUPTED : ExitCode.OK;
  } catch (error) {
    return reportFailure(io, spec, error);
  }
}

/** The grown run, then the baseline; writes the record and returns the report. */
export async function runExperiment(prepared: PreparedRun, io: CliIo, signal: AbortSignal): Promise<RunReport> {
  const { runId, config, settings, keyRing, runDir } = prepared;
  await initTensorBackend();
  const progress = new Progress(io, config.epochs);
  const stderr = new StderrEventSink(io, progress);
  const stderrOnly: TelemetrySink = {
    emit(packet) {
      // Tamiyo's per-step risk warnings (loss spikes on single batches) would drown the
      // terminal; they are in the telemetry. Its errors and everyone else's warnings show.
      if (packet.sourceSubsystem === 'tamiyo' && packet.level < TelemetryLevel.ERROR) return;
      stderr.emit(packet);
    },
  };
  const remote = prepared.controller === 'remote';
  // A remote trainer's bus is Redis; its telemetry goes there too, for the fleet to see.
  const service = remote ? openServiceBus(settings, keyRing, io, 'esper serve trainer', stderrOnly) : undefined;
  const bus = service?.bus;
  const sink = service?.telemetry ?? stderrOnly;
  const dataset = await loadDataset(config.dataset, {
    layout: config.host === 'cnn' ? 'image' : 'flat',
    seed: config.seed,
    cacheDirectory: path.join(settings.storage.varDir, 'datasets'),
    telemetry: sink,
  });
  const hostOptions = { inputShape: dataset.inputShape, numClasses: dataset.numClasses, seed: config.seed, hidden: config.hidden };
  const grownHost = createHost(config.host, { ...hostOptions, hostId: 'grown' });
  const worker = new AsyncWorker({ name: 'esper-run', ...settings.core.asyncWorker });
  let run: GrowingRun | undefined;
  let checkpoints: CheckpointStore | undefined;
  const grownEpochs: EpochReport[] = [];
  let failed = true;
  try {
    io.stderr.write(
      `esper run: run ${runId} — ${config.host} ${config.hidden.join('-')} on ${config.dataset}, ${config.epochs} epochs, ${remote ? 'Tamiyo on the bus' : `${config.policy} policy`}, seed ${config.seed}\n`,
    );
    const runSettings: EsperSettings = { ...settings, kasmina: { ...settings.kasmina, ...RUN_LIFECYCLE } };
    const common = {
      host: grownHost,
      trainingRunId: runId,
      telemetry: sink,
      keyRing,
      seed: config.seed,
      onProgress: (line: string) => io.stderr.write(`esper run: ${line}\n`),
    };
    run =
      bus !== undefined
        ? await openGrowingRun(runSettings, { ...common, controller: 'remote', bus })
        : await openGrowingRun(runSettings, {
            ...common,
            policy: config.policy,
            heuristic: RUN_HEURISTIC,
            fieldReports: { walPath: path.join(runDir, 'field-reports.wal') },
          });
    if (remote) checkpoints = await CheckpointStore.open(path.join(runDir, 'checkpoints'));
    const { tamiyo, growth } = run;
    const stepsPerEpoch = Math.ceil(dataset.train.size / config.batchSize);
    const grownStarted = performance.now();
    const { summary, resumedFromStep } = await train({
      runId,
      host: grownHost,
      dataset,
      config,
      worker,
      io,
      progress,
      sink,
      signal,
      ...run.collaborators,
      settings,
      ...(checkpoints === undefined ? {} : { checkpoints }),
      onEpoch: (r) => grownEpochs.push(r),
    });
    const grownWallS = (performance.now() - grownStarted) / 1000;
    // The record reads the policy before Tamiyo closes and frees it.
    const policy = tamiyo?.service.policy;
    const policyRecord =
      policy === undefined
        ? { name: 'remote', version: '', state: undefined }
        : { name: policy.name, version: policy.version, state: policy.snapshot?.() };
    await tamiyo?.close('run_completed');
    await growth.kasmina.close();
    const seeds = seedStories(run);
    const fossilParams = seeds.filter((s) => s.fate === 'FOSSILIZED').reduce((n, s) => n + s.parameters, 0);
    const verifier = growth.commandVerifier.verifier.snapshot();
    const fieldReports = run.fieldReports();
    const grown = {
      finalAccuracy: summary.lastEpoch?.validationAccuracy ?? 0,
      parameters: Number(grownHost.descriptor.parameterCount) + fossilParams,
      steps: summary.globalStep,
      wallS: grownWallS,
    };
    const received = run.inbox.stats().received;
    await run.close('run_completed');
    run = undefined;
    // After the run closed: the last acknowledgements (RUN_ENDED) have reached Tamiyo.
    const tamiyoStats = tamiyo?.service.stats();
    const decisions = tamiyo?.service.decisions ?? [];
    // Tamiyo's own count when it ran here; a remote Tamiyo's commands are counted as they arrived.
    const commandsIssued = tamiyoStats?.commands ?? received;

    const interrupted = summary.state === 'aborted' || signal.aborted;
    let baseline: RunReport['baseline'];
    if (config.baseline && !interrupted) {
      io.stderr.write(`esper run: static baseline (same host, seed and step budget, no growth)\n`);
      const staticHost = createHost(config.host, { ...hostOptions, hostId: 'baseline' });
      try {
        const started = performance.now();
        const { summary: base } = await train({
          runId: `${runId}-baseline`,
          host: staticHost,
          dataset,
          config,
          worker,
          io,
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
      interrupted,
      grown,
      ...(baseline === undefined ? {} : { baseline }),
      seeds,
      commands: {
        issued: commandsIssued,
        accepted: verifier.acceptedTotal,
        rejected: verifier.rejectedTotal,
        ...(tamiyoStats === undefined ? {} : { outcomes: formatCommandOutcomes(tamiyoStats.commands, tamiyoStats.commandOutcomes) }),
      },
      controlPlane: {
        tamiyoMs: summary.controlPlaneMs.controller,
        kasminaMs: summary.controlPlaneMs.executor,
        shareOfStep: trainMs > 0 ? (summary.controlPlaneMs.controller + summary.controlPlaneMs.executor) / trainMs : 0,
      },
      fieldReports: fieldReports.length,
      runDir,
      ...(bus === undefined ? {} : { distributed: { busUrl: redactUrl(settings.oona.busUrl), resumedFromStep } }),
    };
    const record = buildRecord({
      report,
      stepsPerEpoch,
      decisions,
      policy: policyRecord,
      fieldReports,
      grownEpochs,
      ...(tamiyoStats === undefined ? {} : { tamiyo: tamiyoStats }),
      commandVerifier: {
        accepted: verifier.acceptedTotal,
        rejected: verifier.rejectedTotal,
        rejectionsByReason: verifier.rejectionsByReason,
      },
      summary,
    });
    await writeFile(path.join(runDir, 'record.json'), recordJson(record));
    await writeFile(path.join(runDir, 'report.md'), formatReport(report));
    failed = false;
    return report;
  } finally {
    // After a completed run the growing run is closed already; after a failure, a failed
    // cleanup is said but must not hide the failure.
    const runOpen = run;
    const store = checkpoints;
    await runCleanup('esper run', [
      runOpen !== undefined && (() => runOpen.close(signal.aborted ? 'run_interrupted' : 'run_failed')),
      store !== undefined && (() => store.close()),
      () => worker.close(),
      () => grownHost.dispose(),
      service !== undefined && (() => service.close()),
    ]).catch((error: unknown) => {
      if (!failed) throw error;
      io.stderr.write(`esper run: cleanup after the failure also failed: ${describeError(error)}\n`);
    });
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

interface TrainInput {
  readonly runId: string;
  readonly host: HostModel;
  readonly dataset: Awaited<ReturnType<typeof loadDataset>>;
  readonly config: RunConfig;
  readonly worker: AsyncWorker;
  readonly io: CliIo;
  readonly progress: Progress;
  readonly sink: TelemetrySink;
  readonly signal: AbortSignal;
  readonly settings: EsperSettings;
  readonly controller?: Controller;
  readonly executor?: Executor;
  readonly commandVerifier?: CommandVerifier;
  readonly onEpoch?: (r: EpochReport) => void;
  /** Checkpoint at each epoch end; resume from the store's latest checkpoint first. */
  readonly checkpoints?: CheckpointStore;
}

/**
 * One training of `esper run` (grown or baseline), built by Tolaria's `createTrainer` from
 * the settings; with `checkpoints`, resumed from the latest one (`resumedFromStep`).
 */
async function train(input: TrainInput): Promise<{ summary: TrainingSummary; resumedFromStep?: number }> {
  const { config, dataset, settings } = input;
  const stepsPerEpoch = Math.ceil(dataset.train.size / config.batchSize);
  const trainer = createTrainer(settings, {
    trainingRunId: input.runId,
    host: input.host,
    dataset,
    epochs: config.epochs,
    batchSize: config.batchSize,
    seed: config.seed,
    optimizer: { kind: 'adam', learningRate: config.learningRate },
    lrSchedule: { policy: LrSchedulePolicy.COSINE, totalSteps: Math.max(1, config.epochs * stepsPerEpoch), warmupSteps: 0 },
    worker: input.worker,
    telemetry: input.sink,
    emergencySink: new StderrEmergencySink(input.io, input.progress),
    ...(input.controller === undefined ? {} : { controller: input.controller }),
    ...(input.executor === undefined ? {} : { executor: input.executor }),
    ...(input.commandVerifier === undefined ? {} : { commandVerifier: input.commandVerifier }),
    ...(input.checkpoints === undefined ? {} : { checkpoints: { store: input.checkpoints } }),
    onStep: (r) => input.progress.step(r),
    onEpoch: (r) => {
      input.progress.epoch(r);
      input.onEpoch?.(r);
    },
  });
  try {
    const latest = await input.checkpoints?.latest();
    let resumedFromStep: number | undefined;
    if (latest !== undefined) {
      await trainer.restore(latest.checkpoint, { discarded: latest.discarded });
      resumedFromStep = latest.checkpoint.header.globalStep;
      input.io.stderr.write(`esper run: resumed ${input.runId} from its checkpoint at step ${resumedFromStep}\n`);
    }
    const summary = await trainer.run({ signal: input.signal });
    input.progress.finish();
    return { summary, ...(resumedFromStep === undefined ? {} : { resumedFromStep }) };
  } finally {
    trainer.dispose();
  }
}

/** Each seed's germination, fate and contribution, from Kasmina's own seed histories. */
function seedStories(run: GrowingRun): SeedStory[] {
  return run.seedReports().map((r) => ({
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
