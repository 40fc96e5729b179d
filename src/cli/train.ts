/**
 * `esper train`: trains a host model on a dataset with Tolaria — progress on stderr
 * (a redrawn bar on a TTY, a line every ~2 s within an epoch and one per epoch otherwise), a
 * summary on stdout, durable checkpoints per run (`<storage.varDir>/runs/<run id>/checkpoints`),
 * and `--resume <run>` from the newest one. The trainer is configured from `settings.tolaria`
 * by `createTrainer`.
 *
 * SIGINT or SIGTERM stops at the next step boundary, writes a checkpoint and exits 130; a
 * second signal exits at once.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { AsyncWorker, ErrorCode, EsperError, loadSettings, redactUrl, runCleanup, type EsperSettings } from '../core/index.js';
import { CommandInbox, type KasminaStats } from '../kasmina/index.js';
import { openBusFromSettings, type StreamBus } from '../oona/index.js';
import { KeyRing } from '../security/index.js';
import { initTensorBackend } from '../tensor/index.js';
import {
  CheckpointStore,
  createHost,
  createTrainer,
  DATASET_NAMES,
  describeDiscarded,
  HOST_FAMILIES,
  isPathSafeRunId,
  loadDataset,
  LrSchedulePolicy,
  OptimizerKind,
  runCheckpointDir,
  type DatasetName,
  type HostFamilyName,
  type LatestCheckpoint,
  type Trainer,
  type TrainingSummary,
} from '../tolaria/index.js';
import { openGrowth, type Growth } from '../weatherlight/index.js';
import { DATASETS_HELP } from './datasets-help.js';
import { Progress, StderrEmergencySink, StderrEventSink } from './progress.js';
import {
  ExitCode,
  helpText,
  logSettings,
  parseCommandLine,
  reportFailure,
  UsageError,
  withInterrupts,
  type CliIo,
  type CommandSpec,
  type FlagSpec,
} from './scaffold.js';

/** Streams the command prints to. */
export type TrainIo = CliIo;

export { UsageError };

/** The flags of `esper train`, declared once: parsing, defaults and help come from here. */
export const TRAIN_FLAGS = {
  host: { kind: 'string', value: '<family>', help: 'host model', choices: Object.keys(HOST_FAMILIES), default: 'mlp' },
  dataset: { kind: 'string', value: '<name>', help: 'dataset', choices: DATASET_NAMES, default: 'mnist' },
  'data-dir': { kind: 'string', value: '<dir>', help: 'directory of the CIFAR-10 binary batch files (cifar10 only)' },
  epochs: { kind: 'integer', value: '<n>', help: 'epochs to train', min: 1, default: 2 },
  'batch-size': { kind: 'integer', value: '<n>', help: 'examples per step', min: 1, default: 64 },
  optimizer: { kind: 'string', value: '<kind>', help: 'optimizer', choices: Object.values(OptimizerKind), default: OptimizerKind.ADAM },
  lr: { kind: 'number', value: '<rate>', help: 'base learning rate', greaterThan: 0, default: 0.002 },
  'lr-schedule': {
    kind: 'string',
    value: '<policy>',
    help: 'learning-rate schedule',
    choices: Object.values(LrSchedulePolicy),
    default: LrSchedulePolicy.COSINE,
  },
  'warmup-steps': { kind: 'integer', value: '<n>', help: 'linear warm-up steps', min: 0, default: 0 },
  seed: { kind: 'integer', value: '<n>', help: 'seed of initialisation and data order', min: 0, default: 0 },
  'checkpoint-dir': {
    kind: 'string',
    value: '<dir>',
    help: 'checkpoint log directory of a new run\n(default <storage.varDir>/runs/<run id>/checkpoints)',
  },
  'checkpoint-every': { kind: 'integer', value: '<n>', help: 'also checkpoint every n steps; 0: at epoch ends only', min: 0, default: 0 },
  resume: {
    kind: 'string',
    value: '<run|dir>',
    help: "continue run <run> from its newest checkpoint, or the run whose\ncheckpoints are in <dir> (a value with a '/' is a directory)",
  },
  'run-id': {
    kind: 'string',
    value: '<id>',
    help: "training run id: letters, digits, '.', '_', '-'\n(default: a new id, or the checkpoint's on --resume)",
  },
  grow: {
    kind: 'boolean',
    help: "attach Kasmina: seeds can be grafted at the host's sites\n(blueprints are compiled into Urza under settings storage.varDir)",
  },
  listen: {
    kind: 'boolean',
    help: 'with --grow: apply signed commands sent by `esper command` over\nthe configured bus (ESPER_OONA_BUS_URL=redis://…)',
  },
  json: { kind: 'boolean', help: 'print the summary as one JSON object' },
} as const satisfies Readonly<Record<string, FlagSpec>>;

/** The declaration of `esper train`. */
export const TRAIN_COMMAND: CommandSpec<typeof TRAIN_FLAGS> = {
  name: 'esper train',
  summary: 'train a host model on a dataset',
  synopsis: '[options]',
  flags: TRAIN_FLAGS,
  notes: `${DATASETS_HELP}; cifar10 needs --data-dir.

--grow needs a signing key (ESPER_LEYLINE_SECRET or ESPER_LEYLINE_KEYS): every command is
verified before Kasmina acts on it.

Exit codes: 0 done; 1 training failed; 2 bad flags, settings or key ring (nothing started);
3 halted by the emergency protocol; 130 stopped by SIGINT or SIGTERM (a checkpoint is
written; a second signal exits at once).`,
};

/** Exit code of a run halted by the emergency protocol (beyond the shared {@link ExitCode}s). */
export const TRAIN_HALTED = 3;

/** Usage of `esper train`. */
export const TRAIN_HELP = helpText(TRAIN_COMMAND);

/** Parsed `esper train` arguments. */
export interface TrainArguments {
  readonly host: HostFamilyName;
  readonly dataset: DatasetName;
  readonly dataDir: string | undefined;
  readonly epochs: number;
  readonly batchSize: number;
  readonly optimizer: OptimizerKind;
  readonly lr: number;
  readonly lrSchedule: LrSchedulePolicy;
  readonly warmupSteps: number;
  readonly seed: number;
  readonly checkpointDir: string | undefined;
  readonly checkpointEvery: number;
  /** The run, or the checkpoint directory (a value with a '/'), to resume. */
  readonly resume: string | undefined;
  readonly runId: string | undefined;
  readonly grow: boolean;
  readonly listen: boolean;
  readonly json: boolean;
  readonly help: boolean;
}

/** Parses the arguments after `train`, with the cross-flag rules. @throws UsageError */
export function parseTrainArguments(argv: readonly string[]): TrainArguments {
  const { values: v, help } = parseCommandLine(TRAIN_COMMAND, argv);
  if (!help) {
    if (v.dataset === 'cifar10' && v['data-dir'] === undefined) throw new UsageError('--dataset cifar10 needs --data-dir');
    if (v['run-id'] !== undefined && !isPathSafeRunId(v['run-id'])) {
      throw new UsageError(`--run-id must be letters, digits, '.', '_' or '-' (not first), got '${v['run-id']}'`);
    }
    if (v.resume !== undefined && !v.resume.includes('/') && !isPathSafeRunId(v.resume)) {
      throw new UsageError(`--resume needs a run id, or a checkpoint directory with a '/' (e.g. ./dir), got '${v.resume}'`);
    }
    if (v.resume !== undefined && v['checkpoint-dir'] !== undefined) {
      throw new UsageError('--checkpoint-dir names the directory of a new run; to resume from a directory, pass it to --resume');
    }
    if (v.listen && !v.grow) throw new UsageError('--listen needs --grow');
  }
  return {
    host: v.host as HostFamilyName,
    dataset: v.dataset as DatasetName,
    dataDir: v['data-dir'],
    epochs: v.epochs,
    batchSize: v['batch-size'],
    optimizer: v.optimizer as OptimizerKind,
    lr: v.lr,
    lrSchedule: v['lr-schedule'] as LrSchedulePolicy,
    warmupSteps: v['warmup-steps'],
    seed: v.seed,
    checkpointDir: v['checkpoint-dir'],
    checkpointEvery: v['checkpoint-every'],
    resume: v.resume,
    runId: v['run-id'],
    grow: v.grow,
    listen: v.listen,
    json: v.json,
    help,
  };
}

/** Options of {@link runTrain} beyond the arguments (tests inject these). */
export interface RunTrainOptions {
  /** Stops training at the next step boundary. @default SIGINT/SIGTERM */
  readonly signal?: AbortSignal;
  /** Settings to use. @default loadSettings() */
  readonly settings?: EsperSettings;
}

/** Runs `esper train` with the arguments after `train`; returns the exit code. */
export async function runTrain(argv: readonly string[], io: TrainIo, options: RunTrainOptions = {}): Promise<number> {
  let args: TrainArguments;
  let settings: EsperSettings;
  let keyRing: KeyRing | undefined;
  try {
    args = parseTrainArguments(argv);
    if (args.help) {
      io.stdout.write(TRAIN_HELP);
      return ExitCode.OK;
    }
    settings = options.settings ?? loadSettings();
    if (args.listen && settings.oona.busUrl.startsWith('memory:')) {
      throw new UsageError('--listen needs a shared bus: set ESPER_OONA_BUS_URL=redis://… (memory:// is in-process)');
    }
    // Checked before any work: a bad key ring is a settings error (exit 2), not a failed run.
    if (args.grow) keyRing = KeyRing.fromSettings(settings.security);
  } catch (error) {
    return reportFailure(io, TRAIN_COMMAND, error);
  }
  logSettings(io, TRAIN_COMMAND.name, settings);
  try {
    return await withInterrupts(io, TRAIN_COMMAND.name, options.signal, (signal) => train(args, settings, keyRing, io, signal));
  } catch (error) {
    return reportFailure(io, TRAIN_COMMAND, error);
  }
}

/** Where a run's checkpoints are, and what the directory already holds. */
interface Checkpoints {
  readonly store: CheckpointStore;
  readonly runId: string;
  readonly latest: LatestCheckpoint | undefined;
}

/**
 * Opens the run's checkpoint log: a new run's own (empty) directory, or on `--resume` the
 * named run's directory, whose newest valid checkpoint must exist.
 */
async function openCheckpoints(args: TrainArguments, settings: EsperSettings): Promise<Checkpoints> {
  if (args.resume === undefined) {
    const runId = args.runId ?? newRunId();
    const store = await CheckpointStore.open(args.checkpointDir ?? runCheckpointDir(settings, runId));
    const latest = await store.latest().catch(async (error: unknown) => {
      await store.close();
      throw error;
    });
    if (latest !== undefined) {
      const owner = latest.checkpoint.header.trainingRunId;
      await store.close();
      throw new UsageError(
        `${store.path} already holds checkpoints of run ${owner}; resume it with --resume ${owner}, or start with another --run-id`,
      );
    }
    return { store, runId, latest };
  }
  const directory = args.resume.includes('/') ? args.resume : runCheckpointDir(settings, args.resume);
  // Opening would create the directory; a mistyped run must not leave one behind.
  if (!existsSync(directory)) {
    throw new EsperError(ErrorCode.TOLARIA_CHECKPOINT_NOT_FOUND, `no checkpoints to resume from: ${directory} does not exist`);
  }
  const store = await CheckpointStore.open(directory);
  try {
    const latest = await store.latest();
    if (latest === undefined) throw new EsperError(ErrorCode.TOLARIA_CHECKPOINT_NOT_FOUND, `no checkpoint to resume from in ${store.path}`);
    // Another --run-id than the checkpoint's is refused by the trainer's dependency guard.
    return { store, runId: args.runId ?? latest.checkpoint.header.trainingRunId, latest };
  } catch (error) {
    await store.close();
    throw error;
  }
}

async function train(
  args: TrainArguments,
  settings: EsperSettings,
  keyRing: KeyRing | undefined,
  io: TrainIo,
  signal: AbortSignal,
): Promise<number> {
  await initTensorBackend();
  const progress = new Progress(io, args.epochs);
  const sink = new StderrEventSink(io, progress);
  const dataset = await loadDataset(args.dataset, {
    layout: args.host === 'cnn' ? 'image' : 'flat',
    seed: args.seed,
    cacheDirectory: path.join(settings.storage.varDir, 'datasets'),
    telemetry: sink,
    ...(args.dataDir === undefined ? {} : { directory: args.dataDir }),
  });
  const { store, runId, latest } = await openCheckpoints(args, settings);
  const worker = new AsyncWorker({ name: 'tolaria-cli', ...settings.core.asyncWorker });
  const host = createHost(args.host, { inputShape: dataset.inputShape, numClasses: dataset.numClasses, seed: args.seed });
  let trainer: Trainer | undefined;
  let growth: Growth | undefined;
  let bus: StreamBus | undefined;
  let inbox: CommandInbox | undefined;
  try {
    const stepsPerEpoch = Math.ceil(dataset.train.size / args.batchSize);
    if (keyRing !== undefined) {
      growth = await openGrowth(settings, {
        host,
        trainingRunId: runId,
        telemetry: sink,
        keyRing,
        onProgress: (line) => io.stderr.write(`esper train: ${line}\n`),
      });
      if (args.listen) {
        bus = openBusFromSettings(settings, { keyRing, telemetry: sink });
        inbox = new CommandInbox({ bus, trainingRunId: runId, telemetry: sink });
        await inbox.start();
        io.stderr.write(
          `esper train: listening for commands to run ${runId} on ${redactUrl(settings.oona.busUrl)} (group ${inbox.group})\n`,
        );
      }
    }
    trainer = createTrainer(settings, {
      trainingRunId: runId,
      host,
      dataset,
      epochs: args.epochs,
      batchSize: args.batchSize,
      seed: args.seed,
      optimizer: { kind: args.optimizer, learningRate: args.lr },
      lrSchedule: {
        policy: args.lrSchedule,
        totalSteps: Math.max(1, args.epochs * stepsPerEpoch - args.warmupSteps),
        warmupSteps: args.warmupSteps,
      },
      worker,
      telemetry: sink,
      ...(growth === undefined ? {} : { executor: growth.kasmina.executor, commandVerifier: growth.commandVerifier.verifier }),
      ...(inbox === undefined ? {} : { controller: inbox }),
      emergencySink: new StderrEmergencySink(io, progress),
      checkpoints: { store, everySteps: args.checkpointEvery },
      onStep: (r) => progress.step(r),
      onEpoch: (r) => progress.epoch(r),
    });
    io.stderr.write(
      `esper train: run ${runId} — ${args.host} (${host.descriptor.parameterCount} parameters) on ${dataset.name} ` +
        `(${dataset.train.size} train / ${dataset.validation.size} validation), ${args.epochs} epoch${args.epochs === 1 ? '' : 's'} × ${stepsPerEpoch} steps, ` +
        `${args.optimizer} lr ${args.lr} ${args.lrSchedule}, checkpoints in ${store.path}\n`,
    );
    if (latest !== undefined) {
      await trainer.restore(latest.checkpoint, { discarded: latest.discarded });
      for (const discarded of latest.discarded) {
        io.stderr.write(
          `esper train: discarded ${describeDiscarded(discarded)}; resuming from the checkpoint of step ${trainer.globalStep}\n`,
        );
      }
      io.stderr.write(
        `esper train: resumed from step ${trainer.globalStep} (epoch ${trainer.cursorState.epoch}, example ${trainer.cursorState.position})\n`,
      );
    }
    const summary = await trainer.run({ signal });
    progress.finish();
    const seeds = growth?.kasmina.executor.stats();
    io.stdout.write(
      args.json
        ? `${JSON.stringify({ ...summaryJson(summary, store.path), ...(seeds === undefined ? {} : { seeds }) })}\n`
        : formatSummary(summary, store.path, seeds),
    );
    if (summary.state !== 'completed') {
      const resume = args.checkpointDir === undefined && args.resume?.includes('/') !== true ? runId : path.dirname(store.path);
      io.stderr.write(`esper train: continue with --resume ${resume}\n`);
    }
    return summary.state === 'completed' ? ExitCode.OK : summary.state === 'aborted' ? ExitCode.INTERRUPTED : TRAIN_HALTED;
  } finally {
    await runCleanup('esper train', [
      inbox !== undefined && (() => inbox?.close()),
      bus !== undefined && (() => bus?.close()),
      growth !== undefined && (() => growth?.close()),
      () => trainer?.dispose(),
      () => host.dispose(),
      () => worker.close(),
      () => store.close(),
    ]);
  }
}

function newRunId(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `train-${stamp}-${randomBytes(2).toString('hex')}`;
}

function summaryJson(summary: TrainingSummary, checkpointLog: string): Record<string, unknown> {
  return { ...summary, checkpointLog };
}

function formatSummary(summary: TrainingSummary, checkpointLog: string, seeds?: KasminaStats): string {
  const last = summary.lastEpoch;
  const lines = [
    `run          ${summary.trainingRunId} (${summary.state})`,
    `epochs       ${summary.epochsCompleted}, ${summary.globalStep} steps, ${(summary.wallMs / 1000).toFixed(1)} s`,
    ...(last === undefined
      ? []
      : [
          `train        loss ${last.trainLoss.toFixed(4)}, accuracy ${(last.trainAccuracy * 100).toFixed(2)} %`,
          `validation   loss ${last.validationLoss.toFixed(4)}, accuracy ${(last.validationAccuracy * 100).toFixed(2)} %`,
        ]),
    `incidents    ${summary.nonFiniteLossTotal} non-finite losses, ${summary.rollbacks.fastHits + summary.rollbacks.fullRestores} rollbacks`,
    `checkpoints  ${summary.checkpointsWritten} written to ${checkpointLog}`,
    ...(seeds === undefined
      ? []
      : [
          `seeds        ${seeds.seedsFossilized} fossilized, ${seeds.seedsCulled} culled, ${seeds.commandsApplied} commands applied, ${seeds.gateFailures} gate failures`,
        ]),
  ];
  return `${lines.join('\n')}\n`;
}
