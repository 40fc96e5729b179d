/**
 * The study's own runner of the static arms (`small`, `large`): Tolaria's trainer
 * (`createTrainer` from the settings) on the task's dataset and host, no controller, no
 * executor, stopped at the task's step budget; then one validation pass over the whole
 * validation split, which is the run's final accuracy. `trainTaskSteps` is that training
 * loop on its own, for the grown arm's runner to call with its controller and executor, so
 * every arm trains the same way.
 */
import path from 'node:path';
import { AsyncWorker, ErrorCode, EsperError, type EsperSettings, type TelemetrySink } from '../core/index.js';
import { TelemetryLevel, type TelemetryPacket } from '../leyline/index.js';
import { initTensorBackend, tf } from '../tensor/index.js';
import {
  createHost,
  createTrainer,
  loadDataset,
  LossKind,
  TolariaEvent,
  type Dataset,
  type DatasetSplit,
  type EmergencySink,
  type HostModel,
  type StepReport,
  type TrainerDependencies,
  type TrainingSummary,
} from '../tolaria/index.js';
import type { ArmResult, ArmRunContext, ArmRunner, ArmRunRequest } from './arm-runner.js';
import { flopBlocksOfHost } from './flops.js';
import { assertTaskRunnable, hostOfArm, isGrownArm, taskKey, type TaskDefinition, type TaskHost } from './tasks.js';
import { teacherDataset } from './teacher-data.js';

/** Reports per run sent to `onProgress`. */
const PROGRESS_REPORTS = 20;

/** Share of the step budget over which the final training loss is averaged. */
const FINAL_LOSS_SHARE = 0.1;

/** Examples per validation batch. */
const VALIDATION_BATCH = 1000;

/** The training run id of one run of a study: `study-<task>-<version>-<arm>-<seed>`. */
export function taskRunId(task: Pick<TaskDefinition, 'id' | 'version'>, arm: string, seed: number): string {
  return `study-${task.id}-${task.version}-${arm}-${seed}`;
}

/** Builds the static-arm runner (the export child processes call). */
export function createArmRunner(): ArmRunner {
  return new StaticArmRunner();
}

/**
 * Loads a task's dataset (Fashion-MNIST's cache under `<storage.varDir>/datasets`; synthetic
 * data and the student–teacher regression drawn with the task's data seed).
 */
export async function loadTaskDataset(task: TaskDefinition, settings: EsperSettings): Promise<Dataset> {
  assertTaskRunnable(task);
  const d = task.dataset;
  if (d.kind === 'teacher') return teacherDataset(d);
  return loadDataset(d.name, {
    layout: d.layout,
    seed: d.dataSeed ?? 0,
    cacheDirectory: path.join(settings.storage.varDir, 'datasets'),
    ...(d.trainSize === undefined ? {} : { trainSize: d.trainSize }),
    ...(d.validationSize === undefined ? {} : { validationSize: d.validationSize }),
    ...(d.noise === undefined ? {} : { noise: d.noise }),
  });
}

/**
 * A host of the task's family for `spec`, initialised from `seed`; with `widenSlots` n, an
 * MLP has n growth slots (WIDEN sites) per hidden layer (they add no parameters).
 * @throws EsperError INVALID_ARGUMENT for growth slots on a CNN host (its blocks have one WIDEN site each)
 */
export function createTaskHost(
  spec: TaskHost,
  dataset: Dataset,
  seed: number,
  hostId: string,
  options: { readonly widenSlots?: number } = {},
): HostModel & Parameters<typeof flopBlocksOfHost>[0] {
  const common = { inputShape: dataset.inputShape, numClasses: dataset.numClasses, seed, hostId };
  const slots = options.widenSlots ?? 1;
  if (spec.family === 'mlp') {
    return createHost('mlp', {
      ...common,
      hidden: spec.hidden,
      widenSlots: slots,
      ...(spec.bias === undefined ? {} : { bias: spec.bias }),
    });
  }
  if (slots !== 1) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `host ${hostId}: growth slots need an MLP host, not a ${spec.family}`, {
      details: { field: 'widenSlots', widenSlots: slots },
    });
  }
  return createHost('cnn', { ...common, channels: spec.channels, kernelSize: spec.kernelSize });
}

/** Accuracy (0–1) of `host` over the whole of `split`, in inference mode; 0 for a regression (`values`) dataset. */
export function evaluateAccuracy(host: HostModel, split: DatasetSplit, targets: Dataset['targets'] = 'classes'): number {
  if (targets === 'values') return 0;
  let correct = 0;
  for (let start = 0; start < split.size; start += VALIDATION_BATCH) {
    const indices = Int32Array.from({ length: Math.min(VALIDATION_BATCH, split.size - start) }, (_, i) => start + i);
    const batch = split.batch(indices);
    try {
      const hits = tf.tidy(() => {
        const logits = host.forward(batch.inputs, { training: false });
        return tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), batch.labels), 'int32'));
      });
      correct += hits.dataSync()[0] as number;
      hits.dispose();
    } finally {
      tf.dispose([batch.inputs, batch.labels]);
    }
  }
  return split.size === 0 ? 0 : correct / split.size;
}

/** Keeps the trainer's losses for the final-loss average and the progress reports. */
class LossTrack {
  readonly #tail: number[] = [];
  readonly #tailLength: number;
  #sinceReport = 0;
  #countSinceReport = 0;

  constructor(readonly totalSteps: number) {
    this.#tailLength = Math.max(1, Math.round(totalSteps * FINAL_LOSS_SHARE));
  }

  add(loss: number): void {
    this.#tail.push(loss);
    if (this.#tail.length > this.#tailLength) this.#tail.shift();
    this.#sinceReport += loss;
    this.#countSinceReport += 1;
  }

  /** Mean loss since the last call. */
  takeMean(): number {
    const mean = this.#countSinceReport === 0 ? Number.NaN : this.#sinceReport / this.#countSinceReport;
    this.#sinceReport = 0;
    this.#countSinceReport = 0;
    return mean;
  }

  get finalLoss(): number {
    return this.#tail.length === 0 ? Number.NaN : this.#tail.reduce((s, v) => s + v, 0) / this.#tail.length;
  }
}

/** Events of a step that failed (nothing applied; without rollback the trainer skips its batch). */
const STEP_FAILURE_EVENTS: ReadonlySet<string> = new Set([TolariaEvent.LOSS_EXPLOSION, TolariaEvent.NON_FINITE_LOSS]);

/**
 * Keeps the last warning (or emergency) of a run for its failure reason, counts its failed
 * steps, and passes every packet on.
 */
class RunTelemetry implements TelemetrySink {
  lastWarning = '';
  failedSteps = 0;

  constructor(private readonly next: TelemetrySink | undefined) {}

  readonly emergencies: EmergencySink = {
    emit: (signal) => {
      this.lastWarning = `emergency ${signal.reason}`;
    },
  };

  emit(packet: TelemetryPacket): void {
    for (const event of packet.events) if (STEP_FAILURE_EVENTS.has(event.description)) this.failedSteps += 1;
    const warning = packet.events.filter((e) => e.level >= TelemetryLevel.WARNING).at(-1);
    if (warning !== undefined) this.lastWarning = warning.description;
    this.next?.emit(packet);
  }
}

/** Most batches a run may skip, as a share of its budget, and still count as a run. */
export const MAX_SKIPPED_SHARE = 0.01;

/**
 * How many batches of a `budget`-step run were skipped, or `undefined` when the run ended
 * short of its budget otherwise: halted, aborted, steps missing beyond its failed ones, or
 * more than {@link MAX_SKIPPED_SHARE} of the budget skipped (a diverging run). A step that
 * fails (loss explosion, non-finite loss) applies nothing and, without rollback, the trainer
 * skips its batch and completes its epochs one step short: a few such spikes are the guard
 * rail working, not a broken run, so the run is scored on its accuracy and reports what it
 * skipped.
 */
export function skippedBatches(
  end: Pick<TrainingSummary, 'state' | 'globalStep'>,
  failedSteps: number,
  budget: number,
): number | undefined {
  if (end.globalStep === budget) return 0;
  const short = budget - end.globalStep;
  const counts = end.state === 'completed' && short > 0 && short <= failedSteps && short <= Math.floor(MAX_SKIPPED_SHARE * budget);
  return counts ? short : undefined;
}

/** What {@link trainTaskSteps} trains. */
export interface TaskTrainingInput {
  readonly request: ArmRunRequest;
  readonly context: ArmRunContext;
  readonly dataset: Dataset;
  /** The host (the caller owns and disposes it). */
  readonly host: HostModel;
  /** A grown run's collaborators: Tamiyo as controller, Kasmina as executor, and its command verifier. */
  readonly collaborators?: Pick<TrainerDependencies, 'controller' | 'executor' | 'commandVerifier'>;
  /** Receives the trainer's telemetry. @default none kept */
  readonly telemetry?: TelemetrySink;
}

/** What {@link trainTaskSteps} measured. */
export interface TaskTrainingOutcome {
  /** Over the whole validation split, after the last step. */
  readonly validationAccuracy: number;
  /** Mean over the last 10 % of steps (at least one). */
  readonly trainingLoss: number;
  readonly steps: number;
  /** Batches skipped after a failed step (see {@link trainTaskSteps}); absent when none. */
  readonly skippedSteps?: number;
  readonly trainingWallMs: number;
}

/**
 * Trains `host` for the task's step budget with Tolaria's trainer (`createTrainer` from the
 * settings; the task's optimizer, schedule, batch size; the run seed for data order), stops
 * at the step boundary of the budget, then measures validation accuracy over the whole
 * validation split. Grown runs pass their controller and executor in `collaborators`.
 * @throws EsperError STUDY_RUN_FAILED when training ended before the budget (halted, failed)
 */
export async function trainTaskSteps(input: TaskTrainingInput): Promise<TaskTrainingOutcome> {
  const { request, context, dataset, host } = input;
  const { task, arm, seed, settings } = request;
  const worker = new AsyncWorker({ name: `study-${arm}`, ...settings.core.asyncWorker });
  const telemetry = new RunTelemetry(input.telemetry);
  const stop = new AbortController();
  const onAbort = (): void => stop.abort(context.signal.reason);
  context.signal.addEventListener('abort', onAbort, { once: true });
  const losses = new LossTrack(task.steps);
  const every = Math.max(1, Math.floor(task.steps / PROGRESS_REPORTS));
  const stepsPerEpoch = Math.ceil(dataset.train.size / task.batchSize);
  const trainer = createTrainer(settings, {
    trainingRunId: taskRunId(task, arm, seed),
    host,
    dataset,
    epochs: Math.ceil(task.steps / stepsPerEpoch),
    batchSize: task.batchSize,
    seed,
    optimizer: { kind: task.optimizer.kind, learningRate: task.optimizer.learningRate },
    loss: task.loss === 'mse' ? LossKind.MSE : LossKind.CROSS_ENTROPY,
    lrSchedule: {
      policy: task.lrSchedule.policy,
      totalSteps: Math.max(1, task.steps - task.lrSchedule.warmupSteps),
      warmupSteps: task.lrSchedule.warmupSteps,
    },
    worker,
    telemetry,
    emergencySink: telemetry.emergencies,
    ...input.collaborators,
    onStep: (r: StepReport) => {
      losses.add(r.loss);
      if (r.globalStep % every === 0 || r.globalStep >= task.steps) {
        context.onProgress?.({ step: r.globalStep, totalSteps: task.steps, loss: losses.takeMean() });
      }
      // The budget is in steps, the trainer's in epochs: stop at the step boundary.
      if (r.globalStep >= task.steps) stop.abort();
    },
  });
  try {
    context.signal.throwIfAborted();
    const started = performance.now();
    const summary = await trainer.run({ signal: stop.signal });
    const trainingWallMs = performance.now() - started;
    context.signal.throwIfAborted();
    const skipped = skippedBatches(summary, telemetry.failedSteps, task.steps);
    if (skipped === undefined) {
      throw new EsperError(
        ErrorCode.STUDY_RUN_FAILED,
        `${taskKey(task)} ${arm} seed ${seed}: training ${summary.state} at step ${summary.globalStep} of ${task.steps}` +
          (telemetry.lastWarning === '' ? '' : ` (last warning: ${telemetry.lastWarning})`),
        { details: { task: taskKey(task), arm, seed, state: summary.state, step: summary.globalStep } },
      );
    }
    return {
      validationAccuracy: evaluateAccuracy(host, dataset.validation, dataset.targets),
      trainingLoss: losses.finalLoss,
      steps: summary.globalStep,
      ...(skipped > 0 ? { skippedSteps: skipped } : {}),
      trainingWallMs,
    };
  } finally {
    context.signal.removeEventListener('abort', onAbort);
    trainer.dispose();
    await worker.close();
  }
}

/** Runs `small` and `large` arms with Tolaria's trainer. */
class StaticArmRunner implements ArmRunner {
  async run(request: ArmRunRequest, context: ArmRunContext): Promise<ArmResult> {
    const { task, arm, seed, settings } = request;
    if (isGrownArm(arm)) {
      throw new EsperError(
        ErrorCode.INVALID_ARGUMENT,
        `the static arm runner runs the small and large arms; the grown arm '${arm}' needs its own runner`,
        { details: { field: 'arm', arm } },
      );
    }
    assertTaskRunnable(task);
    await initTensorBackend();
    const dataset = await loadTaskDataset(task, settings);
    const host = createTaskHost(hostOfArm(task, arm), dataset, seed, `study-${arm}`);
    try {
      const trained = await trainTaskSteps({ request, context, dataset, host });
      return {
        ...trained,
        parameters: Number(host.descriptor.parameterCount),
        hostBlocks: flopBlocksOfHost(host),
        seeds: [],
      };
    } finally {
      host.dispose();
    }
  }
}
