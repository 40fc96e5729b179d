/**
 * One growth experiment — what `esper run`, `esper serve trainer` and each trainer of `esper
 * up` run: the grown run (Tolaria's trainer with Kasmina, and Tamiyo in this process or on
 * the bus), then a static baseline with the same host, seed and step budget. Built from the
 * settings through the subsystems' factories; the caller shows progress and writes records.
 *
 * With a remote Tamiyo the grown run checkpoints at each epoch end in
 * `<runDir>/checkpoints` and, started again on the same directory, resumes from the latest.
 */
import path from 'node:path';
import { AsyncWorker, runCleanup, type EsperSettings, type TelemetrySink } from '../core/index.js';
import type { FieldReport } from '../leyline/index.js';
import type { Bus } from '../oona/index.js';
import type { KeyRing } from '../security/index.js';
import type { GrownSeed } from '../study/index.js';
import { formatCommandOutcomes, type TamiyoDecisionRecord, type TamiyoPolicySpec, type TamiyoStats } from '../tamiyo/index.js';
import { initTensorBackend } from '../tensor/index.js';
import {
  CheckpointStore,
  createHost,
  createTrainer,
  loadDataset,
  LrSchedulePolicy,
  type Dataset,
  type DatasetName,
  type EmergencySink,
  type EpochReport,
  type HostModel,
  type StepReport,
  type TrainerDependencies,
  type TrainingSummary,
} from '../tolaria/index.js';
import { provisionHost } from './fleet.js';
import { openGrowingRun, type GrowingRun } from './growing-run.js';
import { stageLabel } from './grown-arm.js';

/**
 * Lifecycle lengths of an experiment's seeds (steps): short enough that a seed germinated
 * after the host plateaus is decided within a 12-epoch MNIST run (133 steps per epoch); the
 * `kasmina.*` settings stay the defaults for long runs.
 */
export const EXPERIMENT_LIFECYCLE = Object.freeze({
  trainingSteps: 60,
  blendingSteps: 40,
  shadowingSteps: 20,
  probationSteps: 20,
  embargoSteps: 60,
});

/** The heuristic's pace in an experiment: germinate once the host has plateaued for 2 epochs, from epoch 3. */
export const EXPERIMENT_HEURISTIC = Object.freeze({ minEpochs: 3, stabilizationEpochs: 2, plateauEpochsToGerminate: 2 });

/** What an experiment trains (both arms). */
export interface ExperimentConfig {
  readonly dataset: DatasetName;
  readonly host: 'mlp' | 'cnn';
  /** MLP hidden widths. */
  readonly hidden: readonly number[];
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly seed: number;
  /** Tamiyo's policy when it runs in this process. */
  readonly policy: TamiyoPolicySpec;
  /** Also train the static baseline. */
  readonly baseline: boolean;
}

/** The two arms of an experiment. */
export type ExperimentArm = 'grown' | 'baseline';

/** What {@link runGrowthExperiment} is given; none of it is closed by the experiment. */
export interface ExperimentDeps {
  readonly runId: string;
  readonly config: ExperimentConfig;
  readonly keyRing: KeyRing;
  /** The run's directory (field reports when embedded, checkpoints when remote). */
  readonly runDir: string;
  /**
   * `embedded`: Tamiyo in this process, on `bus` when given (an in-process bus others — Nissa —
   * read too), else on a bus of the growing run's own; `remote`: Tamiyo is a Tamiyo server on `bus`.
   */
  readonly controller: { readonly kind: 'embedded'; readonly bus?: Bus } | { readonly kind: 'remote'; readonly bus: Bus };
  readonly telemetry: TelemetrySink;
  readonly emergencySink: EmergencySink;
  /** Stops both arms at the next step boundary (the baseline is then not trained). */
  readonly signal: AbortSignal;
  /** One line per provisioning step and arm. */
  readonly onLine?: (line: string) => void;
  readonly onStep?: (report: StepReport, arm: ExperimentArm) => void;
  readonly onEpoch?: (report: EpochReport, arm: ExperimentArm) => void;
  /** An arm's training ended. */
  readonly onArmEnd?: (arm: ExperimentArm) => void;
}

/** One arm's outcome. */
export interface ArmFigures {
  readonly finalAccuracy: number;
  readonly parameters: number;
  readonly steps: number;
  readonly wallS: number;
}

/**
 * One seed's story: what a study records of a grown seed (fate FOSSILIZED, CULLED, or the
 * stage at the end; `fateReason` '' unless culled) with its last measured contribution
 * instead of its compute.
 */
export type SeedStory = Omit<GrownSeed, 'blocks'> & {
  readonly contribution: number | undefined;
  /** Each lifecycle stage it entered (`GERMINATED`, `TRAINING`, …) and the step it entered it at, in order. */
  readonly stages: readonly { readonly stage: string; readonly step: number }[];
};

/** What an experiment measured. */
export interface ExperimentResult {
  /** Stopped by the signal: the grown run ended early and the baseline was not trained. */
  readonly interrupted: boolean;
  readonly grown: ArmFigures;
  readonly baseline?: ArmFigures;
  readonly seeds: readonly SeedStory[];
  readonly commands: {
    /** Issued by Tamiyo (embedded: its own count; remote: as they reached the run). */
    readonly issued: number;
    readonly accepted: number;
    readonly rejected: number;
    /** Reached the run after its last step (or never got an outcome): acknowledged RUN_ENDED. */
    readonly runEnded: number;
    readonly rejectionsByReason: Readonly<Record<string, number>>;
    /** Tamiyo's account of its commands (embedded only). */
    readonly outcomes?: string;
  };
  readonly controlPlane: { readonly tamiyoMs: number; readonly kasminaMs: number; readonly shareOfStep: number };
  /** Embedded: Tamiyo's; remote: those its server published for the run and the run received. */
  readonly fieldReports: readonly FieldReport[];
  /** The grown run resumed from its checkpoint at this step. */
  readonly resumedFromStep?: number;
  readonly stepsPerEpoch: number;
  readonly decisions: readonly TamiyoDecisionRecord[];
  readonly policy: { readonly name: string; readonly version: string; readonly state: unknown };
  readonly tamiyo?: TamiyoStats;
  readonly summary: TrainingSummary;
  readonly grownEpochs: readonly EpochReport[];
  /** The baseline's epochs; empty when it was not trained. */
  readonly baselineEpochs: readonly EpochReport[];
}

/**
 * Runs the grown arm, then (unless interrupted or `config.baseline` is false) the baseline.
 * @throws EsperError from any part; what was opened is closed again
 */
export async function runGrowthExperiment(settings: EsperSettings, deps: ExperimentDeps): Promise<ExperimentResult> {
  const { runId, config, keyRing, runDir, telemetry, signal } = deps;
  await initTensorBackend();
  const dataset = await loadDataset(config.dataset, {
    layout: config.host === 'cnn' ? 'image' : 'flat',
    seed: config.seed,
    cacheDirectory: path.join(settings.storage.varDir, 'datasets'),
    telemetry,
  });
  const hostOptions = { inputShape: dataset.inputShape, numClasses: dataset.numClasses, seed: config.seed, hidden: [...config.hidden] };
  const grownHost = createHost(config.host, { ...hostOptions, hostId: 'grown' });
  const worker = new AsyncWorker({ name: `experiment-${runId}`, ...settings.core.asyncWorker });
  const arm = (name: ExperimentArm): ArmRunner => ({ settings, deps, dataset, worker, name });
  let run: GrowingRun | undefined;
  let checkpoints: CheckpointStore | undefined;
  let failed = true;
  try {
    const remote = deps.controller.kind === 'remote';
    deps.onLine?.(
      `run ${runId} — ${config.host} ${config.hidden.join('-')} on ${config.dataset}, ${config.epochs} epochs, ${remote ? 'Tamiyo on the bus' : `${config.policy} policy`}, seed ${config.seed}`,
    );
    const runSettings: EsperSettings = { ...settings, kasmina: { ...settings.kasmina, ...EXPERIMENT_LIFECYCLE } };
    const common = {
      host: grownHost,
      trainingRunId: runId,
      telemetry,
      keyRing,
      seed: config.seed,
      ...(deps.onLine === undefined ? {} : { onProgress: deps.onLine }),
    };
    run =
      deps.controller.kind === 'remote'
        ? await openGrowingRun(runSettings, { ...common, controller: 'remote', bus: deps.controller.bus })
        : await openGrowingRun(runSettings, {
            ...common,
            ...(deps.controller.bus === undefined ? {} : { bus: deps.controller.bus }),
            policy: config.policy,
            heuristic: EXPERIMENT_HEURISTIC,
            fieldReports: { walPath: path.join(runDir, 'field-reports.wal') },
          });
    if (remote) checkpoints = await CheckpointStore.open(path.join(runDir, 'checkpoints'));
    const { tamiyo, growth } = run;
    const grownStarted = performance.now();
    const { summary, epochs, resumedFromStep } = await train(arm('grown'), grownHost, {
      ...run.collaborators,
      ...(checkpoints === undefined ? {} : { checkpoints }),
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
    const { inbox } = run;
    await run.close('run_completed');
    run = undefined;
    // After close: commands a remote Tamiyo decided while the run was ending are counted.
    const { received, runEnded } = inbox.stats();
    // After the run closed: the last acknowledgements (RUN_ENDED) have reached Tamiyo.
    const tamiyoStats = tamiyo?.service.stats();

    const interrupted = summary.state === 'aborted' || signal.aborted;
    let baseline: ArmFigures | undefined;
    let baselineEpochs: readonly EpochReport[] = [];
    if (config.baseline && !interrupted) {
      deps.onLine?.('static baseline (same host, seed and step budget, no growth)');
      const staticHost = createHost(config.host, { ...hostOptions, hostId: 'baseline' });
      try {
        const started = performance.now();
        const { summary: base, epochs: baseEpochs } = await train(arm('baseline'), staticHost, {});
        baselineEpochs = baseEpochs;
        baseline = figures(base, staticHost, 0, (performance.now() - started) / 1000);
      } finally {
        staticHost.dispose();
      }
    }
    const trainMs = grownWallS * 1000;
    failed = false;
    return {
      interrupted,
      grown: figures(summary, grownHost, fossilParams, grownWallS),
      ...(baseline === undefined ? {} : { baseline }),
      seeds,
      commands: {
        // Tamiyo's own count when it ran here; a remote Tamiyo's commands as they arrived.
        issued: tamiyoStats?.commands ?? received,
        accepted: verifier.acceptedTotal,
        rejected: verifier.rejectedTotal,
        runEnded,
        rejectionsByReason: verifier.rejectionsByReason,
        ...(tamiyoStats === undefined ? {} : { outcomes: formatCommandOutcomes(tamiyoStats.commands, tamiyoStats.commandOutcomes) }),
      },
      controlPlane: {
        tamiyoMs: summary.controlPlaneMs.controller,
        kasminaMs: summary.controlPlaneMs.executor,
        shareOfStep: trainMs > 0 ? (summary.controlPlaneMs.controller + summary.controlPlaneMs.executor) / trainMs : 0,
      },
      fieldReports,
      ...(resumedFromStep === undefined ? {} : { resumedFromStep }),
      stepsPerEpoch: Math.ceil(dataset.train.size / config.batchSize),
      decisions: tamiyo?.service.decisions ?? [],
      policy: policyRecord,
      ...(tamiyoStats === undefined ? {} : { tamiyo: tamiyoStats }),
      summary,
      grownEpochs: epochs,
      baselineEpochs,
    };
  } finally {
    // After a completed run the growing run is closed already; after a failure, a failed
    // cleanup is said but must not hide the failure.
    const runOpen = run;
    const store = checkpoints;
    await runCleanup('experiment', [
      runOpen !== undefined && (() => runOpen.close(signal.aborted ? 'run_interrupted' : 'run_failed')),
      store !== undefined && (() => store.close()),
      () => worker.close(),
      () => grownHost.dispose(),
    ]).catch((error: unknown) => {
      if (!failed) throw error;
      deps.onLine?.(`cleanup after the failure also failed: ${String(error)}`);
    });
  }
}

/**
 * Compiles and certifies, once, the blueprints for the host an experiment of `config` grows,
 * into the settings' Urza ({@link provisionHost}) — before a fleet's services start.
 */
export async function provisionExperiment(
  settings: EsperSettings,
  config: ExperimentConfig,
  deps: { readonly keyRing: KeyRing; readonly telemetry: TelemetrySink; readonly onProgress?: (line: string) => void },
): Promise<void> {
  await initTensorBackend();
  const dataset = await loadDataset(config.dataset, {
    layout: config.host === 'cnn' ? 'image' : 'flat',
    seed: config.seed,
    cacheDirectory: path.join(settings.storage.varDir, 'datasets'),
    telemetry: deps.telemetry,
  });
  const host = createHost(config.host, {
    inputShape: dataset.inputShape,
    numClasses: dataset.numClasses,
    seed: config.seed,
    hidden: [...config.hidden],
    hostId: 'grown',
  });
  try {
    await provisionHost(settings, { host: host.descriptor, ...deps });
  } finally {
    host.dispose();
  }
}

/** What training one arm needs. */
interface ArmRunner {
  readonly settings: EsperSettings;
  readonly deps: ExperimentDeps;
  readonly dataset: Dataset;
  readonly worker: AsyncWorker;
  readonly name: ExperimentArm;
}

function figures(summary: TrainingSummary, host: HostModel, extraParameters: number, wallS: number): ArmFigures {
  return {
    finalAccuracy: summary.lastEpoch?.validationAccuracy ?? 0,
    parameters: Number(host.descriptor.parameterCount) + extraParameters,
    steps: summary.globalStep,
    wallS,
  };
}

/**
 * One arm's training, built by Tolaria's `createTrainer` from the settings; with
 * `checkpoints`, resumed from the latest one (`resumedFromStep`).
 */
async function train(
  arm: ArmRunner,
  host: HostModel,
  collaborators: Pick<TrainerDependencies, 'controller' | 'executor' | 'commandVerifier'> & { readonly checkpoints?: CheckpointStore },
): Promise<{ summary: TrainingSummary; epochs: EpochReport[]; resumedFromStep?: number }> {
  const { settings, deps, dataset, name } = arm;
  const { config } = deps;
  const stepsPerEpoch = Math.ceil(dataset.train.size / config.batchSize);
  const epochs: EpochReport[] = [];
  const { checkpoints, ...parts } = collaborators;
  const trainer = createTrainer(settings, {
    trainingRunId: name === 'grown' ? deps.runId : `${deps.runId}-baseline`,
    host,
    dataset,
    epochs: config.epochs,
    batchSize: config.batchSize,
    seed: config.seed,
    optimizer: { kind: 'adam', learningRate: config.learningRate },
    lrSchedule: { policy: LrSchedulePolicy.COSINE, totalSteps: Math.max(1, config.epochs * stepsPerEpoch), warmupSteps: 0 },
    worker: arm.worker,
    telemetry: deps.telemetry,
    emergencySink: deps.emergencySink,
    ...parts,
    ...(checkpoints === undefined ? {} : { checkpoints: { store: checkpoints } }),
    onStep: (r) => deps.onStep?.(r, name),
    onEpoch: (r) => {
      epochs.push(r);
      deps.onEpoch?.(r, name);
    },
  });
  try {
    const latest = await checkpoints?.latest();
    let resumedFromStep: number | undefined;
    if (latest !== undefined) {
      await trainer.restore(latest.checkpoint, { discarded: latest.discarded });
      resumedFromStep = latest.checkpoint.header.globalStep;
      deps.onLine?.(`resumed ${deps.runId} from its checkpoint at step ${resumedFromStep}`);
    }
    const summary = await trainer.run({ signal: deps.signal });
    deps.onArmEnd?.(name);
    return { summary, epochs, ...(resumedFromStep === undefined ? {} : { resumedFromStep }) };
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
    stages: r.history.map((t) => ({ stage: stageLabel(t.to), step: t.step })),
  }));
}
