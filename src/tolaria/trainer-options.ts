/**
 * Options of the {@link Trainer} and their one resolver. Defaults follow the prototype's
 * `TrainingLoopConfig` and `TOLARIA_*` settings (reference
 * prototype-tolaria-oona-nissa-weatherlight §1.4, §2.1) where it had them; the CLI maps
 * `settings.tolaria` onto these.
 */
import { optionChecks, systemClock, type AsyncWorker, type Clock, type TelemetrySink } from '../core/index.js';
import type { SystemStatePacket } from '../leyline/index.js';
import type { CommandVerifier } from '../security/index.js';
import type { CheckpointStore } from './checkpoint.js';
import type { Controller, Executor } from './controller.js';
import type { Dataset } from './dataset.js';
import type { EmergencySink } from './emergency.js';
import type { HostModel } from './host-model.js';
import { resolveLoss, type LossKind } from './loss.js';
import type { LrScheduleOptions } from './lr-controller.js';
import type { OptimizerConfig } from './optimizer-manager.js';
import type { LossDivergenceOptions } from './trainer-stats.js';

/** Where epoch state packets go (Oona's normal stream, a run record). Must not throw. */
export interface StatePacketSink {
  emit(packet: SystemStatePacket): void;
}

/** Progress of one finished step, for progress bars and logs. */
export interface StepReport {
  readonly epoch: number;
  /** Optimizer steps taken, this one included. */
  readonly globalStep: number;
  /** 1-based index of the step within its epoch. */
  readonly stepInEpoch: number;
  readonly stepsPerEpoch: number;
  readonly loss: number;
  readonly learningRate: number;
  /** Wall time of the whole step (data, compute, hooks). */
  readonly stepMs: number;
}

/** Outcome of one epoch. */
export interface EpochReport {
  readonly epoch: number;
  readonly globalStep: number;
  readonly trainLoss: number;
  readonly trainAccuracy: number;
  readonly validationLoss: number;
  readonly validationAccuracy: number;
  /** Wall time of the epoch's training steps plus its validation. */
  readonly durationMs: number;
  /** Why the epoch failed ('' when it did not). */
  readonly failureReason: string;
}

/** Emergency handling; present = enabled. */
export interface TrainerEmergencyOptions {
  /** Where emergency signals go. */
  readonly sink: EmergencySink;
  /**
   * Consecutive failed epochs that halt training (L4). Settings: `tolaria.emergency.l4FailedEpochs`.
   * @default 3
   */
  readonly failedEpochsToHalt?: number;
  /**
   * Same-level, same-reason signals sent per minute before repeats are suppressed
   * (HALT is never suppressed). Settings: `tolaria.emergency.bypassMaxPerMin`.
   * @default 60
   */
  readonly maxRepeatsPerMinute?: number;
}

/** Two-tier rollback; present = enabled. */
export interface TrainerRollbackOptions {
  /**
   * Steps between fast-tier snapshots (one is also cut at step 0 and at every epoch end).
   * Settings: `tolaria.rollback.snapshotSteps`.
   * @default 1
   */
  readonly snapshotEverySteps?: number;
  /**
   * Byte cap of the fast cache, in MiB. Settings: `tolaria.rollback.fastCacheMaxMb`.
   * @default 32
   */
  readonly fastCacheMaxMb?: number;
  /**
   * Budget of a fast restore, reported in telemetry; a slower restore raises a
   * `rollback_deadline` warning (reference SLA: 500 ms).
   * @default 500
   */
  readonly fastBudgetMs?: number;
  /**
   * Deadline of a full restore from the last checkpoint, enforced through the worker;
   * past it the restore is abandoned and training halts (reference SLA: 12 s, also the
   * default of settings `tolaria.rollback.deadlineMs`).
   * @default 12000
   */
  readonly fullDeadlineMs?: number;
  /**
   * Consecutive failed steps — each rolled back, none getting past the failure — after
   * which training halts (L4 `failed_steps_streak`), so a failure that replays
   * deterministically cannot loop forever.
   * @default 3
   */
  readonly maxConsecutiveFailures?: number;
}

/** Durable checkpoints; present = enabled. */
export interface TrainerCheckpointOptions {
  /** The open checkpoint log (the caller opens and closes it). */
  readonly store: CheckpointStore;
  /**
   * Also checkpoint every this many optimizer steps (0 = only at epoch ends and on abort).
   * @default 0
   */
  readonly everySteps?: number;
}

/** Options of the {@link Trainer}. */
export interface TrainerOptions {
  /** Run id stamped on every packet and checkpoint. Required (dependency guard). */
  readonly trainingRunId: string;
  /** @default '' */
  readonly experimentName?: string;
  /** The model to train (the caller owns and disposes it). */
  readonly host: HostModel;
  readonly dataset: Dataset;
  /** Epochs to train (≥ 1). */
  readonly epochs: number;
  /** @default 64 */
  readonly batchSize?: number;
  /** @default 1000 */
  readonly validationBatchSize?: number;
  /**
   * Seed of the data order and of the executor's random stream (non-negative safe integer).
   * @default 0
   */
  readonly seed?: number;
  readonly optimizer?: OptimizerConfig;
  readonly lrSchedule?: LrScheduleOptions;
  /**
   * The loss trained on: softmax cross-entropy (class labels only) or MSE (float targets, or
   * one-hot class labels). See `loss.ts`.
   * @default 'cross_entropy'
   */
  readonly loss?: LossKind;
  /** Rebuild storm guard of the optimizer manager (reference `TOLARIA_OPT_REBUILD_*`). */
  readonly optimizerRebuild?: {
    /** @default 0 */
    readonly minIntervalSteps?: number;
    /** @default 3 */
    readonly breakerFailureThreshold?: number;
    /** @default 10000 */
    readonly backoffMs?: number;
  };
  /** Tamiyo. Called once per step (and per epoch, if it implements `evaluateEpoch`). */
  readonly controller?: Controller;
  /** Kasmina: applies every command but OPTIMIZER and ROLLBACK, which are Tolaria's. */
  readonly executor?: Executor;
  /**
   * Verifies the commands Tolaria applies itself (OPTIMIZER, ROLLBACK): signature, freshness
   * and nonce, with the same verifier (and nonce ledger) the executor uses. Without it such a
   * command is refused (`command_not_applied`, reason `no_verifier`).
   */
  readonly commandVerifier?: CommandVerifier;
  /**
   * The shared async worker the controller, executor and full-restore calls run on, with
   * deadlines from submission. Required when a controller, executor or rollback is set.
   */
  readonly worker?: AsyncWorker;
  /**
   * Deadline of one controller call. Settings: `tolaria.tamiyoTimeoutMs`.
   * @default 2000
   */
  readonly controllerDeadlineMs?: number;
  /**
   * Deadline of one executor call (`apply`, `advance`, `recordValidation`). Settings:
   * `tolaria.kasminaTimeoutMs`.
   * @default 2000
   */
  readonly executorDeadlineMs?: number;
  /**
   * Budget of an epoch's summed hook time (controller + executor); over it the epoch
   * fails with `epoch_budget`. Settings: `tolaria.epochBudgetMs`.
   * @default 250
   */
  readonly epochBudgetMs?: number;
  /**
   * Budget of one step's hook time; the epoch fails with `hook_budget` when its largest
   * step exceeded it. Settings: `tolaria.hookBudgetMs`.
   * @default 50
   */
  readonly hookBudgetMs?: number;
  /**
   * `enforce`: an epoch over `epochBudgetMs` or with a step over `hookBudgetMs` fails.
   * `observe`: the overrun is reported (WARNING `epoch_budget` / `hook_budget`) and the
   * epoch stands, so a run does not depend on machine load. Settings: `core.latencyBudgets`.
   * @default 'enforce'
   */
  readonly latencyBudgets?: 'enforce' | 'observe';
  /** The trainer's breaker over epoch outcomes (reference §2.1 step 4). */
  readonly breaker?: {
    /** @default 3 */
    readonly failureThreshold?: number;
    /** @default 30000 */
    readonly openTimeoutMs?: number;
  };
  /** Telemetry packets (per epoch, and per step when the step raised events). */
  readonly telemetry: TelemetrySink;
  /** Epoch state packets. @default none */
  readonly stateSink?: StatePacketSink;
  readonly emergency?: TrainerEmergencyOptions;
  /**
   * The loss-explosion detector; a detected explosion fails the step like a non-finite
   * loss (no update, rollback, emergency signal). `false` turns it off.
   * @default LOSS_DIVERGENCE_DEFAULTS
   */
  readonly lossDivergence?: LossDivergenceOptions | false;
  readonly rollback?: TrainerRollbackOptions;
  readonly checkpoints?: TrainerCheckpointOptions;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Called after every successful step (must not throw). */
  readonly onStep?: (report: StepReport) => void;
  /** Called after every epoch (must not throw). */
  readonly onEpoch?: (report: EpochReport) => void;
}

/** {@link TrainerOptions} after defaults and validation. */
export interface ResolvedTrainerOptions {
  readonly trainingRunId: string;
  readonly experimentName: string;
  readonly epochs: number;
  readonly batchSize: number;
  readonly validationBatchSize: number;
  readonly seed: number;
  readonly loss: LossKind;
  readonly controllerDeadlineMs: number;
  readonly executorDeadlineMs: number;
  readonly epochBudgetMs: number;
  readonly hookBudgetMs: number;
  readonly latencyBudgets: 'enforce' | 'observe';
  readonly breakerFailureThreshold: number;
  readonly breakerOpenTimeoutMs: number;
  readonly emergency:
    | {
        readonly sink: EmergencySink;
        readonly failedEpochsToHalt: number;
        readonly maxRepeatsPerMinute: number;
      }
    | undefined;
  readonly rollback:
    | {
        readonly snapshotEverySteps: number;
        readonly fastCacheMaxBytes: number;
        readonly fastBudgetMs: number;
        readonly fullDeadlineMs: number;
        readonly maxConsecutiveFailures: number;
      }
    | undefined;
  readonly lossDivergence: LossDivergenceOptions | false;
  readonly checkpointEverySteps: number;
  readonly clock: Clock;
}

/** Defaults of {@link TrainerOptions}; the one place they live. */
export const TRAINER_DEFAULTS = Object.freeze({
  experimentName: '',
  batchSize: 64,
  validationBatchSize: 1000,
  seed: 0,
  controllerDeadlineMs: 2000,
  executorDeadlineMs: 2000,
  epochBudgetMs: 250,
  hookBudgetMs: 50,
  latencyBudgets: 'enforce',
  breakerFailureThreshold: 3,
  breakerOpenTimeoutMs: 30_000,
  failedEpochsToHalt: 3,
  maxConsecutiveFailures: 3,
  maxRepeatsPerMinute: 60,
  snapshotEverySteps: 1,
  fastCacheMaxMb: 32,
  fastBudgetMs: 500,
  fullDeadlineMs: 12_000,
  checkpointEverySteps: 0,
});

const check = optionChecks('TrainerOptions');

function int(field: string, value: number, min: number): number {
  return check.integer(field, value, { min });
}

function positive(field: string, value: number): number {
  return check.positive(field, value);
}

/**
 * Applies {@link TRAINER_DEFAULTS} and validates the numeric options, naming the bad
 * field. The training run id is checked by the trainer's dependency guard, which also
 * reports a missing one as CRITICAL telemetry.
 */
export function resolveTrainerOptions(options: TrainerOptions): ResolvedTrainerOptions {
  const d = TRAINER_DEFAULTS;
  if (
    (options.controller !== undefined || options.executor !== undefined || options.rollback !== undefined) &&
    options.worker === undefined
  ) {
    check.fail('worker', 'an AsyncWorker when a controller, executor or rollback is configured', undefined);
  }
  const emergency = options.emergency;
  const rollback = options.rollback;
  return Object.freeze({
    trainingRunId: options.trainingRunId,
    experimentName: options.experimentName ?? d.experimentName,
    epochs: int('epochs', options.epochs, 1),
    batchSize: int('batchSize', options.batchSize ?? d.batchSize, 1),
    validationBatchSize: int('validationBatchSize', options.validationBatchSize ?? d.validationBatchSize, 1),
    seed: int('seed', options.seed ?? d.seed, 0),
    loss: resolveLoss(options.loss, options.dataset),
    controllerDeadlineMs: positive('controllerDeadlineMs', options.controllerDeadlineMs ?? d.controllerDeadlineMs),
    executorDeadlineMs: positive('executorDeadlineMs', options.executorDeadlineMs ?? d.executorDeadlineMs),
    epochBudgetMs: positive('epochBudgetMs', options.epochBudgetMs ?? d.epochBudgetMs),
    hookBudgetMs: positive('hookBudgetMs', options.hookBudgetMs ?? d.hookBudgetMs),
    latencyBudgets: check.oneOf('latencyBudgets', options.latencyBudgets ?? d.latencyBudgets, ['enforce', 'observe'] as const),
    breakerFailureThreshold: int('breaker.failureThreshold', options.breaker?.failureThreshold ?? d.breakerFailureThreshold, 1),
    breakerOpenTimeoutMs: int('breaker.openTimeoutMs', options.breaker?.openTimeoutMs ?? d.breakerOpenTimeoutMs, 0),
    emergency:
      emergency === undefined
        ? undefined
        : {
            sink: emergency.sink,
            failedEpochsToHalt: int('emergency.failedEpochsToHalt', emergency.failedEpochsToHalt ?? d.failedEpochsToHalt, 1),
            maxRepeatsPerMinute: int('emergency.maxRepeatsPerMinute', emergency.maxRepeatsPerMinute ?? d.maxRepeatsPerMinute, 1),
          },
    rollback:
      rollback === undefined
        ? undefined
        : {
            snapshotEverySteps: int('rollback.snapshotEverySteps', rollback.snapshotEverySteps ?? d.snapshotEverySteps, 1),
            fastCacheMaxBytes: int('rollback.fastCacheMaxMb', rollback.fastCacheMaxMb ?? d.fastCacheMaxMb, 1) * 1024 * 1024,
            fastBudgetMs: positive('rollback.fastBudgetMs', rollback.fastBudgetMs ?? d.fastBudgetMs),
            fullDeadlineMs: positive('rollback.fullDeadlineMs', rollback.fullDeadlineMs ?? d.fullDeadlineMs),
            maxConsecutiveFailures: int('rollback.maxConsecutiveFailures', rollback.maxConsecutiveFailures ?? d.maxConsecutiveFailures, 1),
          },
    lossDivergence: options.lossDivergence ?? {},
    checkpointEverySteps: int('checkpoints.everySteps', options.checkpoints?.everySteps ?? d.checkpointEverySteps, 0),
    clock: options.clock ?? systemClock,
  });
}
