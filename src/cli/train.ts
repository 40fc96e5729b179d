/**
 * `esper train`: trains a host model on a dataset with Tolaria — progress on stderr
 * (a redrawn bar on a TTY, one line per epoch otherwise), a summary on stdout, durable
 * checkpoints per run (`<storage.varDir>/runs/<run id>/checkpoints`), and `--resume <run>`
 * from the newest one. The trainer is configured from `settings.tolaria` by `createTrainer`.
 *
 * Ctrl-C stops at the next step boundary, writes a checkpoint and exits 130; a second
 * Ctrl-C is left to Node's default handling.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  AsyncWorker,
  ErrorCode,
  EsperError,
  loadSettings,
  SettingsError,
  formatSettingsIssue,
  isEsperError,
  redactUrl,
  type EsperSettings,
  type TelemetrySink,
} from '../core/index.js';
import { EmergencyLevel, TelemetryLevel, type EmergencySignal, type TelemetryPacket } from '../leyline/index.js';
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
  isDatasetName,
  isHostFamilyName,
  isPathSafeRunId,
  loadDataset,
  LrSchedulePolicy,
  OptimizerKind,
  runCheckpointDir,
  type EpochReport,
  type LatestCheckpoint,
  type StepReport,
  type Trainer,
  type TrainingSummary,
} from '../tolaria/index.js';
import { openGrowth, type Growth } from './growth.js';

/**
 * Streams the command prints to (the shape of `CliIo` in main.ts, restated here so that
 * this module, which main.ts loads on demand, does not import main.ts back).
 */
export interface TrainIo {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
}

/** Usage of `esper train`. */
export const TRAIN_HELP = `esper train — train a host model on a dataset

Usage:
  esper train [options]

Options:
  --host <family>          host model: ${Object.keys(HOST_FAMILIES).join(' | ')} (default mlp)
  --dataset <name>         ${DATASET_NAMES.join(' | ')} (default mnist)
  --data-dir <dir>         directory of the CIFAR-10 binary batch files (cifar10 only)
  --epochs <n>             epochs to train (default 2)
  --batch-size <n>         examples per step (default 64)
  --optimizer <kind>       sgd | momentum | adam (default adam)
  --lr <rate>              base learning rate (default 0.002)
  --lr-schedule <policy>   constant | cosine | step (default cosine over the whole run)
  --warmup-steps <n>       linear warm-up steps (default 0)
  --seed <n>               seed of initialisation and data order (default 0)
  --checkpoint-dir <dir>   checkpoint log directory of a new run
                           (default <storage.varDir>/runs/<run id>/checkpoints)
  --checkpoint-every <n>   also checkpoint every n steps (default 0: epoch ends only)
  --resume <run|dir>       continue run <run> from its newest checkpoint, or the run whose
                           checkpoints are in <dir> (a value with a '/' is a directory)
  --run-id <id>            training run id: letters, digits, '.', '_', '-'
                           (default: a new id, or the checkpoint's on --resume)
  --grow                   attach Kasmina: seeds can be grafted at the host's sites
                           (blueprints are compiled into Urza under settings storage.varDir)
  --listen                 with --grow: apply signed commands sent by \`esper command\` over
                           the configured bus (ESPER_OONA_BUS_URL=redis://…)
  --json                   print the summary as one JSON object
  -h, --help               show this help

--grow needs a signing key (ESPER_LEYLINE_SECRET or ESPER_LEYLINE_KEYS): every command is
verified before Kasmina acts on it.
`;

/** Parsed `esper train` arguments. */
export interface TrainArguments {
  readonly host: string;
  readonly dataset: string;
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

/** A bad command line; the message is shown with the usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

function integer(flag: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError(`--${flag} must be an integer ≥ ${min}, got '${text}'`);
  return value;
}

function oneOf<T extends string>(flag: string, text: string | undefined, fallback: T, allowed: readonly T[]): T {
  if (text === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(text)) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got '${text}'`);
  return text as T;
}

/** Parses the arguments after `train`. @throws UsageError */
export function parseTrainArguments(argv: readonly string[]): TrainArguments {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: 'string' },
        dataset: { type: 'string' },
        'data-dir': { type: 'string' },
        epochs: { type: 'string' },
        'batch-size': { type: 'string' },
        optimizer: { type: 'string' },
        lr: { type: 'string' },
        'lr-schedule': { type: 'string' },
        'warmup-steps': { type: 'string' },
        seed: { type: 'string' },
        'checkpoint-dir': { type: 'string' },
        'checkpoint-every': { type: 'string' },
        resume: { type: 'string' },
        'run-id': { type: 'string' },
        grow: { type: 'boolean' },
        listen: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const v = parsed.values;
  const host = v.host ?? 'mlp';
  if (!isHostFamilyName(host)) throw new UsageError(`--host must be one of ${Object.keys(HOST_FAMILIES).join(', ')}, got '${host}'`);
  const dataset = v.dataset ?? 'mnist';
  if (!isDatasetName(dataset)) throw new UsageError(`--dataset must be one of ${DATASET_NAMES.join(', ')}, got '${dataset}'`);
  if (dataset === 'cifar10' && v['data-dir'] === undefined && v.help !== true) throw new UsageError('--dataset cifar10 needs --data-dir');
  const lr = v.lr === undefined ? 0.002 : Number(v.lr);
  if (!(Number.isFinite(lr) && lr > 0)) throw new UsageError(`--lr must be a number > 0, got '${v.lr}'`);
  if (v['run-id'] !== undefined && !isPathSafeRunId(v['run-id'])) {
    throw new UsageError(`--run-id must be letters, digits, '.', '_' or '-' (not first), got '${v['run-id']}'`);
  }
  if (v.resume !== undefined && !v.resume.includes('/') && !isPathSafeRunId(v.resume)) {
    throw new UsageError(`--resume needs a run id, or a checkpoint directory with a '/' (e.g. ./dir), got '${v.resume}'`);
  }
  if (v.resume !== undefined && v['checkpoint-dir'] !== undefined) {
    throw new UsageError('--checkpoint-dir names the directory of a new run; to resume from a directory, pass it to --resume');
  }
  if (v.listen === true && v.grow !== true) throw new UsageError('--listen needs --grow');
  return {
    host,
    dataset,
    dataDir: v['data-dir'],
    epochs: integer('epochs', v.epochs, 2, 1),
    batchSize: integer('batch-size', v['batch-size'], 64, 1),
    optimizer: oneOf('optimizer', v.optimizer, OptimizerKind.ADAM, Object.values(OptimizerKind)),
    lr,
    lrSchedule: oneOf('lr-schedule', v['lr-schedule'], LrSchedulePolicy.COSINE, Object.values(LrSchedulePolicy)),
    warmupSteps: integer('warmup-steps', v['warmup-steps'], 0, 0),
    seed: integer('seed', v.seed, 0, 0),
    checkpointDir: v['checkpoint-dir'],
    checkpointEvery: integer('checkpoint-every', v['checkpoint-every'], 0, 0),
    resume: v.resume,
    runId: v['run-id'],
    grow: v.grow === true,
    listen: v.listen === true,
    json: v.json === true,
    help: v.help === true,
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
  try {
    args = parseTrainArguments(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`esper train: ${error.message}\n\n${TRAIN_HELP}`);
    return 2;
  }
  if (args.help) {
    io.stdout.write(TRAIN_HELP);
    return 0;
  }
  let settings: EsperSettings;
  try {
    settings = options.settings ?? loadSettings();
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    io.stderr.write(`esper train: invalid settings\n${error.issues.map((i) => `  ${formatSettingsIssue(i)}`).join('\n')}\n`);
    return 2;
  }
  const own = new AbortController();
  const onSignal = (): void => own.abort();
  if (options.signal === undefined) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  const signal = options.signal ?? own.signal;
  try {
    return await train(args, settings, io, signal);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`esper train: ${error.message}\n`);
      return 2;
    }
    const code = isEsperError(error) ? ` [${error.code}]` : '';
    io.stderr.write(`esper train: ${error instanceof Error ? error.message : String(error)}${code}\n`);
    return 1;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
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

async function train(args: TrainArguments, settings: EsperSettings, io: TrainIo, signal: AbortSignal): Promise<number> {
  await initTensorBackend();
  const dataset = await loadDataset(args.dataset, {
    layout: args.host === 'cnn' ? 'image' : 'flat',
    seed: args.seed,
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
    const progress = new Progress(io, args.epochs);
    const stepsPerEpoch = Math.ceil(dataset.train.size / args.batchSize);
    const sink = new StderrEventSink(io, progress);
    if (args.grow) {
      if (args.listen && settings.oona.busUrl.startsWith('memory:')) {
        throw new UsageError('--listen needs a shared bus: set ESPER_OONA_BUS_URL=redis://… (memory:// is in-process)');
      }
      const keyRing = KeyRing.fromSettings(settings.security);
      growth = await openGrowth({
        settings,
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
      ...(growth === undefined ? {} : { executor: growth.kasmina, commandVerifier: growth.verifier }),
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
    const seeds = growth?.kasmina.stats();
    io.stdout.write(
      args.json
        ? `${JSON.stringify({ ...summaryJson(summary, store.path), ...(seeds === undefined ? {} : { seeds }) })}\n`
        : formatSummary(summary, store.path, seeds),
    );
    if (summary.state !== 'completed') {
      const resume = args.checkpointDir === undefined && args.resume?.includes('/') !== true ? runId : path.dirname(store.path);
      io.stderr.write(`esper train: continue with --resume ${resume}\n`);
    }
    return summary.state === 'completed' ? 0 : summary.state === 'aborted' ? 130 : 3;
  } finally {
    await inbox?.close();
    await bus?.close();
    await growth?.close();
    trainer?.dispose();
    host.dispose();
    await worker.close();
    await store.close();
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

/** Progress on stderr: a redrawn bar on a TTY, one line per epoch otherwise. */
export class Progress {
  readonly #tty: boolean;
  #drawn = false;
  #lastDrawMs = 0;

  constructor(
    private readonly io: TrainIo,
    private readonly epochs: number,
  ) {
    this.#tty = (io.stderr as { isTTY?: boolean }).isTTY === true;
  }

  step(r: StepReport): void {
    if (!this.#tty) return;
    const now = Date.now();
    if (r.stepInEpoch !== r.stepsPerEpoch && now - this.#lastDrawMs < 100) return;
    this.#lastDrawMs = now;
    const width = 24;
    const filled = Math.round((r.stepInEpoch / r.stepsPerEpoch) * width);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    this.io.stderr.write(
      `\r\x1b[2Kepoch ${r.epoch + 1}/${this.epochs} [${bar}] ${r.stepInEpoch}/${r.stepsPerEpoch} loss ${r.loss.toFixed(4)} lr ${r.learningRate.toExponential(2)} ${r.stepMs.toFixed(1)} ms/step`,
    );
    this.#drawn = true;
  }

  epoch(r: EpochReport): void {
    this.clear();
    this.io.stderr.write(
      `epoch ${r.epoch + 1}/${this.epochs}: train loss ${r.trainLoss.toFixed(4)} acc ${(r.trainAccuracy * 100).toFixed(2)} % | ` +
        `validation loss ${r.validationLoss.toFixed(4)} acc ${(r.validationAccuracy * 100).toFixed(2)} % | ${(r.durationMs / 1000).toFixed(1)} s` +
        `${r.failureReason === '' ? '' : ` | failed: ${r.failureReason}`}\n`,
    );
  }

  /** Clears the bar so a line can be printed. */
  clear(): void {
    if (this.#drawn) this.io.stderr.write('\r\x1b[2K');
    this.#drawn = false;
  }

  finish(): void {
    this.clear();
  }
}

/** Prints telemetry events at WARNING and above on stderr. */
export class StderrEventSink implements TelemetrySink {
  constructor(
    private readonly io: TrainIo,
    private readonly progress: Progress,
  ) {}

  emit(packet: TelemetryPacket): void {
    for (const event of packet.events) {
      if (event.level < TelemetryLevel.WARNING) continue;
      this.progress.clear();
      const attributes = Object.entries(event.attributes)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      this.io.stderr.write(`! ${TelemetryLevel[event.level]} ${event.description} ${attributes}\n`);
    }
  }
}

/** Prints emergency signals on stderr. */
class StderrEmergencySink {
  constructor(
    private readonly io: TrainIo,
    private readonly progress: Progress,
  ) {}

  emit(signal: EmergencySignal): void {
    this.progress.clear();
    this.io.stderr.write(`! emergency ${EmergencyLevel[signal.level]} ${signal.reason} at step ${signal.globalStep}\n`);
  }
}
