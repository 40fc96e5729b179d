/**
 * Tolaria's trainer (reference prototype-tolaria-oona-nissa-weatherlight §2.3–§2.7,
 * prototype-rc1-plan §3.1): epoch and step loops over a {@link HostModel} and a
 * {@link Dataset}, with the control loop (controller → executor) on every step.
 *
 * One step, in order:
 * 1. bring the optimizer in line with the host's trainable variables (seed hooks
 *    attached or detached since the last step; storm-guarded rebuild);
 * 2. set the learning rate of this step from the schedule;
 * 3. take the next batch from the resumable data cursor (timed as `input_wait_ms`);
 * 4. inside one `tf.tidy`: forward, softmax cross-entropy (labels through `oneHotFloat`),
 *    gradients, and one read-back of the loss, the correct count and the squared gradient
 *    norms of the host and of every hook; a non-finite loss or gradient, or a loss
 *    explosion, fails the step *before* the update, so bad gradients never reach the
 *    weights or the optimizer state;
 * 5. apply the update; update the EWMAs; build the step's `SystemStatePacket`;
 * 6. call the controller through the shared AsyncWorker with a deadline counted from
 *    submission (a miss does not stall training: the step goes on without a command, the
 *    miss is counted and a `tamiyo_timeout` WARNING makes the step's telemetry HIGH), then
 *    the executor's `apply` (same mechanism, `kasmina_timeout`), then its `advance`;
 * 7. cut a fast-rollback snapshot and, on cadence, a checkpoint.
 *
 * A failed step (non-finite loss, loss explosion) raises an L2 emergency signal and rolls
 * back — fast tier (in-memory snapshot) first, full tier (last checkpoint) otherwise —
 * restoring weights, optimizer state, data cursor, RNG and statistics; training continues
 * from there. Repeated failures that no rollback gets past halt training (L4), as does a
 * streak of failed epochs.
 *
 * Cancellation: `run({ signal })` checks the signal only between steps, never inside a
 * `tidy`, so an aborted run leaves a consistent model (and writes a checkpoint when a
 * store is configured; that cleanup is deliberately not cancellable).
 *
 * Per-seed gradient attribution (reference §2.5, simplified — no micro-batch flats,
 * masks, teacher split or PCGrad, since there is no gradient accumulation here): for each
 * attached hook, the L2 norm of its variables' gradients per step and its share
 * `‖g_seed‖ / (‖g_host‖ + Σ ‖g_seed'‖)`, averaged over the epoch into
 * `tolaria.grad_agg.seed.{norm,share}`, and written into the exported `SeedState.gradient_norm`
 * of the seed grafted at that site.
 *
 * Departures from the prototype beyond those noted in the modules it uses:
 * `gradient_norm` is the global L2 norm (the prototype summed per-parameter norms, a
 * [quirk]); epoch and step loss means are sample-weighted; conservative mode skips the
 * controller and sends the executor nothing (the prototype sent a synthetic empty
 * command, which spec 00 §2 forbids); epochs failed for control-plane reasons
 * (timeouts, budgets) do not roll the model back, only failed steps do.
 */
import { clone } from '@bufbuild/protobuf';
import {
  CircuitBreaker,
  DependencyGuard,
  DependencyViolationError,
  ErrorCode,
  EsperError,
  isEsperError,
  validateCommandDependencies,
  buildTelemetryPacket,
  type AsyncWorker,
  type EventInput,
  type MetricInput,
  type TelemetrySink,
} from '../core/index.js';
import {
  CommandType,
  EmergencyLevel,
  HealthStatus,
  RollbackTier,
  SeedStateSchema,
  TelemetryLevel,
  type AdaptationCommand,
  type CommandOptimizerAdjustment,
  type RollbackRequest,
  type SeedState,
  type SystemStatePacket,
} from '../leyline/index.js';
import type { CommandVerifier } from '../security/index.js';
import { oneHotFloat, restoreVariables, rngFromState, saveVariables, seededRng, tf, type Rng } from '../tensor/index.js';
import type { Checkpoint, CheckpointHeader, CheckpointStore } from './checkpoint.js';
import {
  CommandOutcomeStatus,
  type CallOptions,
  type CommandOutcome,
  type Controller,
  type Executor,
  type ExecutorContext,
  type StepSignals,
  type ValidationReport,
  type ValidationResult,
} from './controller.js';
import { DataCursor } from './data/data-cursor.js';
import type { Batch, DataCursorState, Dataset } from './dataset.js';
import { EmergencyController, EmergencyReason } from './emergency.js';
import type { HostModel } from './host-model.js';
import { LrController } from './lr-controller.js';
import { TOLARIA_SOURCE, TolariaEvent, TolariaMetric, type MetricName } from './names.js';
import { OptimizerManager, type OptimizerSyncResult } from './optimizer-manager.js';
import { FastRollbackCache, cloneWeights, makeSnapshot, restoreWeights, type TrainingSnapshot } from './rollback.js';
import { buildEpochState, buildStepState, CpuMeter } from './state-packet.js';
import {
  resolveTrainerOptions,
  type EpochReport,
  type ResolvedTrainerOptions,
  type StatePacketSink,
  type StepReport,
  type TrainerOptions,
} from './trainer-options.js';
import { EpochAccumulator, Ewma, LossDivergenceDetector, type RunCounters, type TrainerProgress } from './trainer-stats.js';

/**
 * Lifecycle of a {@link Trainer}: `created` → `running` → `completed` | `aborted`
 * (signal; `run` may be called again to continue) | `halted` (emergency L4) | `failed`
 * (an error escaped a step; the trainer cannot be used further).
 */
export type TrainerState = 'created' | 'running' | 'completed' | 'aborted' | 'halted' | 'failed';

/** What {@link Trainer.run} returns. */
export interface TrainingSummary {
  readonly state: Extract<TrainerState, 'completed' | 'aborted' | 'halted'>;
  readonly trainingRunId: string;
  /** Epochs completed (validated) so far, over all `run` calls and the resumed run. */
  readonly epochsCompleted: number;
  readonly globalStep: number;
  /** The last completed epoch, if any. */
  readonly lastEpoch: EpochReport | undefined;
  /** Wall time of this `run` call. */
  readonly wallMs: number;
  readonly nonFiniteLossTotal: number;
  readonly rollbacks: { readonly fastHits: number; readonly fullRestores: number; readonly failures: number };
  readonly controllerTimeouts: number;
  readonly executorTimeouts: number;
  readonly checkpointsWritten: number;
  /** OPTIMIZER/ROLLBACK commands Tolaria refused, and commands with no executor to take them. */
  readonly commandsRefused: number;
  /** Wall time of this `run` call spent in controller and executor calls (waits included). */
  readonly controlPlaneMs: { readonly controller: number; readonly executor: number };
}

/** Which tier a rollback used, and how long it took. */
export interface RollbackResult {
  readonly tier: 'fast' | 'full';
  readonly latencyMs: number;
  readonly budgetMs: number;
  /** Global step of the restored state. */
  readonly toStep: number;
}

type StepOutcome = 'ok' | 'failed' | 'halted';

interface ComputeResult {
  readonly loss: number;
  readonly correct: number;
  readonly gradNorm: number;
  readonly hostNorm: number;
  readonly hookNorms: readonly { readonly siteId: string; readonly norm: number; readonly params: number }[];
  readonly failure: { readonly reason: EmergencyReason; readonly quantity: string; readonly value: number } | undefined;
}

interface CallResult<T> {
  readonly ok: boolean;
  readonly value: T | undefined;
  readonly latencyMs: number;
  /** Why a call failed: its deadline, cancellation, or an error (`message`, `cause`). */
  readonly error?: 'timeout' | 'cancelled' | 'error';
  readonly message?: string;
  readonly cause?: unknown;
}

const FULL_RESTORE_TASK = 'tolaria.rollback.full_restore';

/** Highest learning rate an OPTIMIZER command may set (a larger one is refused as invalid). */
export const MAX_COMMANDED_LR = 1;

/** Command types Tolaria applies itself; every other type is the executor's. */
const TOLARIA_COMMANDS: ReadonlySet<CommandType> = new Set([CommandType.COMMAND_OPTIMIZER, CommandType.COMMAND_ROLLBACK]);

/** Why Tolaria did not apply a command (`tolaria.command.not_applied`, `COMMAND_NOT_APPLIED`). */
export const CommandRefusal = {
  NO_EXECUTOR: 'no_executor',
  NO_VERIFIER: 'no_verifier',
  REJECTED: 'rejected',
  INVALID_VALUE: 'invalid_value',
  UNSUPPORTED_FIELD: 'unsupported_field',
  ROLLBACK_NOT_CONFIGURED: 'rollback_not_configured',
  ROLLBACK_FAILED: 'rollback_failed',
} as const;

/** Trains a host on a dataset with the control loop, checkpoints, rollback and emergencies. */
export class Trainer {
  /** The resolved options (for logging the configuration once at start). */
  readonly options: ResolvedTrainerOptions;
  readonly #host: HostModel;
  readonly #dataset: Dataset;
  readonly #controller: Controller | undefined;
  readonly #executor: Executor | undefined;
  readonly #verifier: CommandVerifier | undefined;
  readonly #worker: AsyncWorker | undefined;
  readonly #telemetry: TelemetrySink;
  readonly #stateSink: StatePacketSink | undefined;
  readonly #store: CheckpointStore | undefined;
  readonly #onStep: ((report: StepReport) => void) | undefined;
  readonly #onEpoch: ((report: EpochReport) => void) | undefined;
  readonly #guard: DependencyGuard;
  readonly #optimizer: OptimizerManager;
  readonly #lr: LrController;
  readonly #breaker: CircuitBreaker;
  readonly #emergency: EmergencyController | undefined;
  readonly #cache: FastRollbackCache | undefined;
  readonly #divergence: LossDivergenceDetector | undefined;
  readonly #lossStats = new Ewma();
  readonly #gradStats = new Ewma();
  readonly #epochAcc = new EpochAccumulator();
  readonly #stepCpu: CpuMeter;
  #cursor: DataCursor;
  #rng: Rng;
  #state: TrainerState = 'created';
  #globalStep = 0;
  #lastLoss: number | null = null;
  #lastStep: StepSignals | undefined;
  #counters: { -readonly [K in keyof RunCounters]: RunCounters[K] } = {
    epochsTotal: 0,
    epochsFailed: 0,
    failedEpochStreak: 0,
    nonFiniteLossTotal: 0,
    lastValidationLoss: -1,
    lastValidationAccuracy: -1,
  };
  #conservative = false;
  #events: EventInput[] = [];
  #lastEpoch: EpochReport | undefined;
  // Latencies of the previous step's hooks, reported in the next step packet.
  #previous = { stepMs: 0, hookMs: 0, tamiyoMs: 0, applyMs: 0, finalizeMs: 0 };
  #tamiyoTimeouts = 0;
  #commandsRefused = 0;
  #kasminaTimeouts = 0;
  #lastTamiyoMissMs = 0;
  #lastKasminaMissMs = 0;
  #failedStepStreak = 0;
  #failedStepMark = -1;
  #rollback = { fastHits: 0, fastMisses: 0, fullRestores: 0, failures: 0, deadlineExceeded: 0, lastMs: 0, lastTier: '' };
  /** Factor on the schedule's rate, set by OPTIMIZER commands; part of checkpoints. */
  #lrScale = 1;
  /** Time spent in controller and executor calls during the current `run`. */
  #controlMs = { controller: 0, executor: 0 };
  #checkpoint = { writes: 0, lastMs: 0, lastBytes: 0 };
  #opt = { lastRebuildMs: 0 };

  /**
   * @throws DependencyViolationError (and one CRITICAL telemetry packet) for a missing
   *   training run id; EsperError INVALID_ARGUMENT for a bad option
   */
  constructor(options: TrainerOptions) {
    this.#guard = new DependencyGuard({
      subsystem: TOLARIA_SOURCE,
      sink: options.telemetry,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      trainingRunId: options.trainingRunId ?? '',
    });
    this.#guard.requireId(options.trainingRunId, 'training_run_id');
    this.options = resolveTrainerOptions(options);
    const o = this.options;
    this.#host = options.host;
    this.#dataset = options.dataset;
    this.#controller = options.controller;
    this.#executor = options.executor;
    this.#verifier = options.commandVerifier;
    this.#worker = options.worker;
    this.#telemetry = options.telemetry;
    this.#stateSink = options.stateSink;
    this.#store = options.checkpoints?.store;
    this.#onStep = options.onStep;
    this.#onEpoch = options.onEpoch;
    this.#optimizer = new OptimizerManager(this.#host.trainableVariables(), {
      ...(options.optimizer === undefined ? {} : { config: options.optimizer }),
      ...(options.optimizerRebuild?.minIntervalSteps === undefined
        ? {}
        : { minRebuildIntervalSteps: options.optimizerRebuild.minIntervalSteps }),
      ...(options.optimizerRebuild?.breakerFailureThreshold === undefined
        ? {}
        : { breakerFailureThreshold: options.optimizerRebuild.breakerFailureThreshold }),
      ...(options.optimizerRebuild?.backoffMs === undefined ? {} : { rebuildBackoffMs: options.optimizerRebuild.backoffMs }),
      clock: o.clock,
    });
    this.#lr = new LrController(this.#optimizer.config.learningRate, options.lrSchedule);
    this.#breaker = new CircuitBreaker({
      name: 'tolaria.training',
      failureThreshold: o.breakerFailureThreshold,
      successThreshold: 1,
      openTimeoutMs: o.breakerOpenTimeoutMs,
      clock: o.clock,
    });
    this.#emergency =
      o.emergency === undefined
        ? undefined
        : new EmergencyController({
            trainingRunId: o.trainingRunId,
            sink: o.emergency.sink,
            maxRepeatsPerMinute: o.emergency.maxRepeatsPerMinute,
            clock: o.clock,
          });
    this.#cache = o.rollback === undefined ? undefined : new FastRollbackCache({ maxBytes: o.rollback.fastCacheMaxBytes });
    this.#divergence = o.lossDivergence === false ? undefined : new LossDivergenceDetector(o.lossDivergence);
    this.#cursor = new DataCursor({ size: this.#dataset.train.size, seed: o.seed });
    this.#rng = seededRng(o.seed).fork(3);
    this.#stepCpu = new CpuMeter(o.clock);
  }

  /** Current lifecycle state. */
  get state(): TrainerState {
    return this.#state;
  }

  /** Optimizer steps taken. */
  get globalStep(): number {
    return this.#globalStep;
  }

  /** The data cursor's position (epoch in progress or just finished, examples handed out). */
  get cursorState(): DataCursorState {
    return this.#cursor.state();
  }

  /** Optimizer steps per epoch at the configured batch size. */
  get stepsPerEpoch(): number {
    return this.#cursor.batchesPerEpoch(this.options.batchSize);
  }

  /** The learning rate of the next step. */
  get learningRate(): number {
    return this.#optimizer.learningRate;
  }

  /** Counters of the optimizer manager (rebuilds, skips, failures). */
  optimizerStats(): ReturnType<OptimizerManager['stats']> {
    return this.#optimizer.stats();
  }

  /**
   * Restores a checkpoint before `run` (resume). The checkpoint must belong to this run
   * (`training_run_id`, checked by the dependency guard), this host, and the hooks now
   * attached.
   * @throws DependencyViolationError for another run's checkpoint; EsperError
   *   TOLARIA_CHECKPOINT_MISMATCH when it does not fit the host or optimizer
   */
  async restore(checkpoint: Checkpoint): Promise<void> {
    if (this.#state === 'running' || this.#state === 'failed') {
      throw new EsperError(ErrorCode.INVALID_STATE, `cannot restore a checkpoint while the trainer is ${this.#state}`);
    }
    await this.#applyCheckpoint(checkpoint, true);
    this.#emitEvent(TolariaEvent.CHECKPOINT_RESTORED, TelemetryLevel.INFO, {
      global_step: this.#globalStep,
      sha256: checkpoint.sha256,
      epoch: this.#cursor.epoch,
      position: this.#cursor.position,
    });
    this.#flushEvents();
  }

  /**
   * Trains until `epochs` epochs are complete, the signal aborts (at a step boundary),
   * or an emergency halts training.
   * @throws the first error that escaped a step (the trainer is then `failed`)
   */
  async run(options: { readonly signal?: AbortSignal } = {}): Promise<TrainingSummary> {
    if (this.#state !== 'created' && this.#state !== 'aborted') {
      throw new EsperError(ErrorCode.INVALID_STATE, `trainer is ${this.#state}; run() needs created or aborted`);
    }
    const started = this.options.clock.monotonicMs();
    this.#state = 'running';
    this.#controlMs = { controller: 0, executor: 0 };
    const signal = options.signal;
    try {
      if (this.#cache !== undefined && this.#cache.nearest(this.#globalStep) === undefined) await this.#takeSnapshot();
      let outcome: 'completed' | 'aborted' | 'halted' = 'completed';
      for (;;) {
        const epoch = this.#cursor.epochEnded ? this.#cursor.epoch + 1 : this.#cursor.epoch;
        if (epoch >= this.options.epochs) break;
        const result = await this.#runEpoch(epoch, signal);
        if (result === 'rewound') continue;
        if (result !== 'completed') {
          outcome = result;
          break;
        }
      }
      if (outcome === 'aborted') await this.#onAbort();
      this.#state = outcome;
      return this.#summary(outcome, this.options.clock.monotonicMs() - started);
    } catch (error) {
      this.#state = 'failed';
      throw error;
    }
  }

  /** Frees the optimizer state and the rollback snapshots (not the host). Idempotent. */
  dispose(): void {
    this.#cache?.clear();
    this.#optimizer.dispose();
  }

  // ---------------------------------------------------------------- epochs

  /**
   * One epoch: steps until the cursor finishes it, validation, the epoch packet and
   * control call, the verdict, telemetry, snapshot and checkpoint. Returns `rewound` when
   * a full restore moved the cursor back into an earlier epoch (the caller re-enters it).
   */
  async #runEpoch(epoch: number, signal: AbortSignal | undefined): Promise<'completed' | 'aborted' | 'halted' | 'rewound'> {
    const clock = this.options.clock;
    const epochCpu = new CpuMeter(clock);
    const started = clock.monotonicMs();
    if (this.#cursor.epochEnded || this.#cursor.position === 0) this.#epochAcc.reset();
    while (!(this.#cursor.epoch === epoch && this.#cursor.epochEnded)) {
      if (signal?.aborted === true) return 'aborted';
      // A step resolves through microtasks only: without this turn of the event loop, bus I/O
      // (operator commands in, acknowledgements and telemetry out) would wait for the epoch's end.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const outcome = await this.#step(epoch, signal);
      if (outcome === 'halted') return 'halted';
      if (this.#cursor.epoch < epoch && !this.#cursor.epochEnded) return 'rewound';
    }
    const validationStarted = clock.monotonicMs();
    const validation = this.#validate();
    const validationMs = clock.monotonicMs() - validationStarted;
    await this.#serveValidation(validation, epoch, signal);
    this.#counters.lastValidationLoss = validation.loss;
    this.#counters.lastValidationAccuracy = validation.accuracy;
    this.#counters.epochsTotal += 1;

    const state = buildEpochState({
      ...this.#packetBase(epoch, this.#epochAcc.meanLoss),
      validation,
      metrics: this.#epochMetrics(),
      seedStates: this.#seedStates(),
      cpuUtilPercent: epochCpu.sample(),
    });
    this.#stateSink?.emit(state);
    await this.#epochControl(state, epoch, signal);

    const halted = this.#finishEpoch(epoch);
    const durationMs = clock.monotonicMs() - started;
    const report: EpochReport = {
      epoch,
      globalStep: this.#globalStep,
      trainLoss: this.#epochAcc.meanLoss,
      trainAccuracy: this.#epochAcc.accuracy,
      validationLoss: validation.loss,
      validationAccuracy: validation.accuracy,
      durationMs,
      failureReason: this.#epochAcc.state.failureReason,
    };
    this.#lastEpoch = report;
    this.#emitEpochTelemetry(epoch, report, validationMs, epochCpu.sample());
    if (this.#cache !== undefined) await this.#takeSnapshot();
    if (this.#store !== undefined) await this.#writeCheckpoint('epoch');
    this.#onEpoch?.(report);
    return halted ? 'halted' : 'completed';
  }

  /** Decides whether the epoch failed, and what follows (reference §2.3 steps 4–6, 10). */
  #finishEpoch(epoch: number): boolean {
    const acc = this.#epochAcc.state;
    let reason = '';
    if (!this.#breaker.allow()) {
      reason = EmergencyReason.BREAKER_OPEN;
    } else if (acc.hookMsSum > this.options.epochBudgetMs) {
      reason = EmergencyReason.EPOCH_BUDGET;
      this.#emitEvent(TolariaEvent.EPOCH_BUDGET, TelemetryLevel.WARNING, {
        latency_ms: acc.hookMsSum.toFixed(2),
        budget_ms: this.options.epochBudgetMs,
      });
    } else if (acc.failureReason !== '') {
      reason = acc.failureReason;
    } else if (acc.maxHookMs > this.options.hookBudgetMs) {
      reason = EmergencyReason.HOOK_BUDGET;
      this.#emitEvent(TolariaEvent.HOOK_BUDGET, TelemetryLevel.WARNING, {
        latency_ms: acc.maxHookMs.toFixed(2),
        budget_ms: this.options.hookBudgetMs,
      });
    }
    if (reason === '') {
      this.#breaker.recordSuccess();
      this.#counters.failedEpochStreak = 0;
      this.#emergency?.reset();
      if (this.#conservative) {
        this.#conservative = false;
        this.#emitEvent(TolariaEvent.CONSERVATIVE_MODE_CLEARED, TelemetryLevel.INFO, { epoch });
      }
      return false;
    }
    // Keep the epoch's reason for the report even when it came from the breaker or a budget.
    this.#epochAcc.fail(reason);
    this.#counters.epochsFailed += 1;
    this.#counters.failedEpochStreak += 1;
    const openedBefore = this.#breaker.snapshot().openedTotal;
    this.#breaker.recordFailure(reason);
    if (this.#breaker.snapshot().openedTotal > openedBefore) {
      this.#emitEvent(TolariaEvent.BREAKER_OPENED, TelemetryLevel.WARNING, { failures: this.#breaker.snapshot().failureCount });
    }
    this.#emitEvent(TolariaEvent.EPOCH_FAILED, TelemetryLevel.WARNING, { epoch, reason });
    this.#enterConservative(reason);
    const level = reason === EmergencyReason.BREAKER_OPEN ? EmergencyLevel.CONSERVATIVE : EmergencyLevel.ELEVATED;
    this.#escalate(level, reason as EmergencyReason);
    if (this.#emergency !== undefined && this.#counters.failedEpochStreak >= (this.options.emergency?.failedEpochsToHalt ?? Infinity)) {
      this.#escalate(EmergencyLevel.HALT, EmergencyReason.FAILED_EPOCHS_STREAK, { streak: this.#counters.failedEpochStreak });
      return true;
    }
    return false;
  }

  /**
   * Hands the epoch's validation to the executor, with one more pass per seed it asked to
   * measure (that seed's site bypassed), on the worker with the executor's deadline.
   */
  async #serveValidation(baseline: ValidationResult, epoch: number, signal: AbortSignal | undefined): Promise<void> {
    const executor = this.#executor;
    if (executor === undefined) return;
    const report: ValidationReport = {
      baseline,
      withoutSeed: executor.contributionProbes().map((probe) => ({
        seedId: probe.seedId,
        siteId: probe.siteId,
        validation: this.#validate(new Set([probe.siteId])),
      })),
    };
    const context = this.#executorContext(epoch);
    await this.#callExecutor(
      (options) => executor.recordValidation(report, context, options),
      `tolaria.kasmina.validation-${epoch}`,
      signal,
      {},
    );
  }

  /** Validation pass over the whole validation split, in order, in inference mode. */
  #validate(bypassSites?: ReadonlySet<string>): ValidationResult {
    const split = this.#dataset.validation;
    const size = split.size;
    if (size === 0) return { loss: 0, accuracy: 0 };
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < size; start += this.options.validationBatchSize) {
      const end = Math.min(size, start + this.options.validationBatchSize);
      const indices = new Int32Array(end - start);
      for (let i = 0; i < indices.length; i += 1) indices[i] = start + i;
      const batch = split.batch(indices);
      try {
        const values = tf.tidy(() => {
          const logits = this.#host.forward(batch.inputs, { training: false, ...(bypassSites === undefined ? {} : { bypassSites }) });
          const loss = tf.losses.softmaxCrossEntropy(
            oneHotFloat(batch.labels, this.#dataset.numClasses),
            logits,
            undefined,
            undefined,
            tf.Reduction.SUM,
          );
          const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), batch.labels), 'float32'));
          return tf.stack([loss, hits]).dataSync();
        });
        lossSum += values[0] as number;
        correct += values[1] as number;
      } finally {
        disposeBatch(batch);
      }
    }
    return { loss: lossSum / size, accuracy: correct / size };
  }

  /** The epoch-level controller call (optional `evaluateEpoch`), then the executor. */
  async #epochControl(state: SystemStatePacket, epoch: number, signal: AbortSignal | undefined): Promise<void> {
    const controller = this.#controller;
    if (controller?.evaluateEpoch === undefined || this.#conservative) return;
    const evaluate = controller.evaluateEpoch.bind(controller);
    const hookStarted = this.options.clock.monotonicMs();
    const decision = await this.#callController((s) => evaluate(state, { signal: s }), `tolaria.tamiyo.epoch-${epoch}`, signal);
    if (decision.ok && decision.value !== undefined) await this.#applyCommand(controller, decision.value, epoch, signal);
    this.#epochAcc.addHook(this.options.clock.monotonicMs() - hookStarted);
  }

  // ---------------------------------------------------------------- steps

  async #step(epoch: number, signal: AbortSignal | undefined): Promise<StepOutcome> {
    const clock = this.options.clock;
    const started = clock.monotonicMs();
    const variables = await this.#syncOptimizer();
    const learningRate = this.#lr.rate(this.#globalStep, epoch) * this.#lrScale;
    if (learningRate !== this.#optimizer.learningRate) this.#optimizer.setLearningRate(learningRate);

    const dataStarted = clock.monotonicMs();
    const batch = this.#dataset.train.batch(this.#cursor.nextBatch(this.options.batchSize));
    const inputWaitMs = clock.monotonicMs() - dataStarted;
    const batchSize = batch.labels.shape[0];
    const computeStarted = clock.monotonicMs();
    let result: ComputeResult;
    try {
      result = this.#compute(batch, variables);
    } finally {
      disposeBatch(batch);
    }
    const trainMs = clock.monotonicMs() - computeStarted;
    if (result.failure !== undefined) return this.#onStepFailure(epoch, result.failure);

    this.#globalStep += 1;
    if (this.#globalStep > this.#failedStepMark) this.#failedStepStreak = 0;
    const lossDelta = this.#lastLoss === null ? 0 : result.loss - this.#lastLoss;
    this.#lastLoss = result.loss;
    this.#lastStep = {
      trainingLoss: result.loss,
      hookGradientNorms: new Map(result.hookNorms.map((h) => [h.siteId, Number.isFinite(h.norm) ? h.norm : Number.NaN])),
    };
    this.#lossStats.update(result.loss);
    this.#gradStats.update(result.gradNorm);
    this.#epochAcc.addStep({ loss: result.loss, batchSize, correct: result.correct, gradNorm: result.gradNorm, trainMs });
    const normSum = result.hostNorm + result.hookNorms.reduce((s, h) => s + h.norm, 0);
    for (const hook of result.hookNorms) this.#epochAcc.addSeed(hook.siteId, hook.norm, normSum > 0 ? hook.norm / normSum : 0, hook.params);

    const packet = buildStepState({
      ...this.#packetBase(epoch, result.loss),
      validation: this.#latestValidation(),
      metrics: {
        optimizerLr: learningRate,
        ...(this.#optimizer.momentum === undefined ? {} : { optimizerMomentum: this.#optimizer.momentum }),
        optimizerFamily: this.#optimizer.family,
        lossDelta,
        lossEwma: this.#lossStats.mean,
        lossVolatility: this.#lossStats.deviation,
        gradientNorm: result.gradNorm,
        gradNormEwma: this.#gradStats.mean,
        gradVar: this.#gradStats.variance,
        samplesPerS: trainMs > 0 ? (batchSize * 1000) / trainMs : 0,
        inputWaitMs,
        stepLatencyMs: this.#previous.stepMs,
        hookLatencyMs: this.#previous.hookMs,
        tamiyoLatencyMs: this.#previous.tamiyoMs,
        kasminaApplyMs: this.#previous.applyMs,
        kasminaFinalizeMs: this.#previous.finalizeMs,
        epochsTotal: this.#counters.epochsTotal,
        ...cpuField(this.#stepCpu.sample()),
      },
      seedStates: this.#seedStates(result.hookNorms),
    });

    const hooks = await this.#stepControl(packet, epoch, signal);
    const stepMs = clock.monotonicMs() - started;
    this.#previous = { stepMs, ...hooks };
    this.#epochAcc.stepMs.push(stepMs);

    if (this.#cache !== undefined && this.#globalStep % (this.options.rollback?.snapshotEverySteps ?? 1) === 0) await this.#takeSnapshot();
    if (this.#store !== undefined && this.options.checkpointEverySteps > 0 && this.#globalStep % this.options.checkpointEverySteps === 0) {
      await this.#writeCheckpoint('steps');
    }
    this.#flushEvents();
    this.#onStep?.({
      epoch,
      globalStep: this.#globalStep,
      stepInEpoch: Math.ceil(this.#cursor.position / this.options.batchSize),
      stepsPerEpoch: this.stepsPerEpoch,
      loss: result.loss,
      learningRate,
      stepMs,
    });
    return 'ok';
  }

  /**
   * Brings the optimizer in line with the host's trainable variables and returns the list
   * to differentiate. Repeats if a late executor call changed the hooks during the await.
   */
  async #syncOptimizer(): Promise<tf.Variable[]> {
    for (let attempt = 0; ; attempt += 1) {
      const variables = this.#host.trainableVariables();
      const result = await this.#optimizer.sync(variables, this.#globalStep);
      this.#reportSync(result);
      const now = this.#host.trainableVariables();
      if (now.length === variables.length && now.every((v, i) => v === variables[i])) return now;
      if (attempt >= 3) {
        throw new EsperError(ErrorCode.INVALID_STATE, 'the host kept changing its trainable variables while the optimizer synced');
      }
    }
  }

  #reportSync(result: OptimizerSyncResult): void {
    switch (result.outcome) {
      case 'unchanged':
        return;
      case 'rebuilt':
        this.#opt.lastRebuildMs = result.latencyMs;
        this.#emitEvent(TolariaEvent.OPTIMIZER_REBUILT, TelemetryLevel.INFO, {
          added: result.added,
          removed: result.removed,
          forced: result.forced,
          latency_ms: result.latencyMs.toFixed(3),
          step: this.#globalStep,
        });
        return;
      case 'skipped':
        this.#emitEvent(TolariaEvent.OPTIMIZER_REBUILD_SKIPPED, TelemetryLevel.INFO, {
          reason: result.reason,
          pending: result.pending,
          step: this.#globalStep,
        });
        return;
      case 'failed':
        this.#opt.lastRebuildMs = result.latencyMs;
        this.#emitEvent(TolariaEvent.OPTIMIZER_REBUILD_FAILED, TelemetryLevel.ERROR, { error: result.error, step: this.#globalStep });
        return;
    }
  }

  /** Forward, loss, gradients, one read-back, and the update if the step is sound. */
  #compute(batch: Batch, variables: readonly tf.Variable[]): ComputeResult {
    const hooks = [...this.#host.hooks.entries()].map(([siteId, hook]) => ({ siteId, variables: new Set(hook.trainableVariables()) }));
    const numClasses = this.#dataset.numClasses;
    return tf.tidy(() => {
      let correct: tf.Tensor | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const logits = this.#host.forward(batch.inputs, { training: true });
        // Kept past variableGrads' internal tidy; disposed below.
        correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), batch.labels), 'float32')));
        return tf.losses.softmaxCrossEntropy(oneHotFloat(batch.labels, numClasses), logits) as tf.Scalar;
      }, [...variables]);
      try {
        const squared = (list: readonly tf.Variable[]): tf.Tensor => {
          const parts = list.flatMap((v) => {
            const g = grads[v.name];
            return g === undefined ? [] : [tf.sum(tf.square(g))];
          });
          return parts.length === 0 ? tf.scalar(0) : tf.addN(parts);
        };
        const hostVariables = variables.filter((v) => !hooks.some((h) => h.variables.has(v)));
        const groups = [squared(hostVariables), ...hooks.map((h) => squared([...h.variables]))];
        const stats = tf.concat([tf.reshape(value, [1]), tf.reshape(correct as tf.Tensor, [1]), tf.stack(groups)]).dataSync();
        const loss = stats[0] as number;
        const totalSquared = Array.from(stats.subarray(2)).reduce((a, b) => a + b, 0);
        const gradNorm = Math.sqrt(totalSquared);
        const hostNorm = Math.sqrt(stats[2] as number);
        const hookNorms = hooks.map((h, i) => ({
          siteId: h.siteId,
          norm: Math.sqrt(stats[3 + i] as number),
          params: [...h.variables].reduce((n, v) => n + v.size, 0),
        }));
        let failure: ComputeResult['failure'];
        if (!Number.isFinite(loss)) failure = { reason: EmergencyReason.NON_FINITE_LOSS, quantity: 'loss', value: loss };
        else if (!Number.isFinite(gradNorm))
          failure = { reason: EmergencyReason.NON_FINITE_LOSS, quantity: 'gradient_norm', value: gradNorm };
        else if (this.#divergence?.observe(loss) === true)
          failure = { reason: EmergencyReason.LOSS_EXPLOSION, quantity: 'loss', value: loss };
        if (failure === undefined) this.#optimizer.applyGradients(grads);
        return { loss, correct: stats[1] as number, gradNorm, hostNorm, hookNorms, failure };
      } finally {
        correct?.dispose();
      }
    });
  }

  /** A failed step: no update was applied; signal, roll back, maybe halt. */
  async #onStepFailure(epoch: number, failure: NonNullable<ComputeResult['failure']>): Promise<StepOutcome> {
    const failedStep = this.#globalStep + 1;
    if (failure.reason === EmergencyReason.NON_FINITE_LOSS) this.#counters.nonFiniteLossTotal += 1;
    this.#emitEvent(
      failure.reason === EmergencyReason.NON_FINITE_LOSS ? TolariaEvent.NON_FINITE_LOSS : TolariaEvent.LOSS_EXPLOSION,
      TelemetryLevel.ERROR,
      { step: failedStep, epoch, quantity: failure.quantity, value: String(failure.value) },
    );
    this.#failedStepStreak = failedStep <= this.#failedStepMark ? this.#failedStepStreak + 1 : 1;
    this.#failedStepMark = Math.max(this.#failedStepMark, failedStep);
    this.#escalate(EmergencyLevel.ELEVATED, failure.reason, { step: failedStep });
    const rollback = this.options.rollback;
    if (rollback !== undefined && this.#failedStepStreak >= rollback.maxConsecutiveFailures) {
      this.#escalate(EmergencyLevel.HALT, EmergencyReason.FAILED_STEPS_STREAK, { streak: this.#failedStepStreak });
      this.#epochAcc.fail(failure.reason);
      this.#flushEvents();
      return 'halted';
    }
    if (rollback !== undefined) {
      const restored = await this.#rollbackNow('auto');
      if (restored === undefined) {
        this.#escalate(EmergencyLevel.HALT, EmergencyReason.ROLLBACK_DEADLINE, { step: failedStep });
        this.#epochAcc.fail(failure.reason);
        this.#flushEvents();
        return 'halted';
      }
    }
    // Without rollback the failed batch is skipped: the cursor has moved past it and
    // nothing was applied.
    this.#epochAcc.fail(failure.reason);
    this.#flushEvents();
    return 'failed';
  }

  // ---------------------------------------------------------------- control loop

  /** The per-step controller call, then the executor. Returns the hook timings. */
  async #stepControl(
    packet: SystemStatePacket,
    epoch: number,
    signal: AbortSignal | undefined,
  ): Promise<{ hookMs: number; tamiyoMs: number; applyMs: number; finalizeMs: number }> {
    const clock = this.options.clock;
    const hookStarted = clock.monotonicMs();
    let tamiyoMs = 0;
    let applyMs = 0;
    const controller = this.#controller;
    if (controller !== undefined && !this.#conservative) {
      const decision = await this.#callController(
        (s) => controller.evaluateStep(packet, { signal: s }),
        `tolaria.tamiyo.step-${this.#globalStep}`,
        signal,
      );
      tamiyoMs = decision.ok ? decision.latencyMs : 0;
      if (decision.ok && decision.value !== undefined) applyMs = await this.#applyCommand(controller, decision.value, epoch, signal);
    }
    const hookMs = clock.monotonicMs() - hookStarted;
    this.#epochAcc.addHook(hookMs);
    let finalizeMs = 0;
    const executor = this.#executor;
    if (executor !== undefined) {
      const context = { ...this.#executorContext(epoch), ...(this.#lastStep === undefined ? {} : { lastStep: this.#lastStep }) };
      const advanced = await this.#callExecutor(
        (options) => executor.advance(context, options),
        `tolaria.kasmina.advance-${this.#globalStep}`,
        signal,
        {},
      );
      finalizeMs = advanced.ok ? advanced.latencyMs : 0;
    }
    return { hookMs, tamiyoMs, applyMs, finalizeMs };
  }

  /** Runs a controller call on the worker with its deadline; reports misses and errors. */
  async #callController(
    call: (signal: AbortSignal) => Promise<AdaptationCommand | undefined>,
    name: string,
    signal: AbortSignal | undefined,
  ): Promise<CallResult<AdaptationCommand | undefined>> {
    const result = await this.#onWorker(call, name, this.options.controllerDeadlineMs, signal);
    this.#controlMs.controller += result.latencyMs;
    if (result.ok) return result;
    if (result.error === 'timeout') {
      this.#tamiyoTimeouts += 1;
      this.#lastTamiyoMissMs = result.latencyMs;
      this.#emitEvent(TolariaEvent.TAMIYO_TIMEOUT, TelemetryLevel.WARNING, {
        step: this.#globalStep,
        deadline_ms: this.options.controllerDeadlineMs,
        elapsed_ms: result.latencyMs.toFixed(1),
      });
      this.#epochAcc.fail(EmergencyReason.TAMIYO_TIMEOUT);
      this.#enterConservative(EmergencyReason.TAMIYO_TIMEOUT);
    } else if (result.error === 'error') {
      this.#emitEvent(TolariaEvent.TAMIYO_ERROR, TelemetryLevel.WARNING, { step: this.#globalStep, error: result.message ?? '' });
      this.#epochAcc.fail(EmergencyReason.TAMIYO_ERROR);
      this.#enterConservative(EmergencyReason.TAMIYO_ERROR);
    }
    return result;
  }

  /**
   * Applies one command through its owner — OPTIMIZER and ROLLBACK here, every other type
   * through the executor's `apply` on the worker with its deadline — and tells the
   * controller what became of it. Returns the time taken.
   */
  async #applyCommand(controller: Controller, command: AdaptationCommand, epoch: number, signal: AbortSignal | undefined): Promise<number> {
    const started = this.options.clock.monotonicMs();
    const outcome = TOLARIA_COMMANDS.has(command.commandType)
      ? await this.#applyOwnCommand(command)
      : await this.#applyExecutorCommand(command, epoch, signal);
    try {
      controller.commandOutcome?.(outcome);
    } catch (error) {
      this.#emitEvent(TolariaEvent.TAMIYO_ERROR, TelemetryLevel.WARNING, { step: this.#globalStep, error: errorText(error) });
    }
    return this.options.clock.monotonicMs() - started;
  }

  async #applyExecutorCommand(command: AdaptationCommand, epoch: number, signal: AbortSignal | undefined): Promise<CommandOutcome> {
    const executor = this.#executor;
    if (executor === undefined) return this.#refuse(command, CommandRefusal.NO_EXECUTOR, 'no executor is attached to this run');
    const context = this.#executorContext(epoch);
    const result = await this.#callExecutor(
      (options) => executor.apply(command, context, options),
      `tolaria.kasmina.apply-${command.commandId}`,
      signal,
      { command_id: command.commandId },
    );
    const commandId = command.commandId;
    if (result.ok) return { commandId, status: CommandOutcomeStatus.APPLIED, reason: '' };
    if (result.error === 'timeout') return { commandId, status: CommandOutcomeStatus.TIMED_OUT, reason: 'deadline' };
    return { commandId, ...outcomeOfError(result.cause) };
  }

  /**
   * Runs one executor call on the worker with the executor's deadline and accounts for a
   * miss (`kasmina_timeout`, conservative mode) or an error (`kasmina_error`; reference
   * §2.4 9k: no conservative mode).
   */
  async #callExecutor(
    call: (options: CallOptions) => Promise<void>,
    name: string,
    signal: AbortSignal | undefined,
    attributes: Record<string, string>,
  ): Promise<CallResult<void>> {
    const deadlineMs = this.options.executorDeadlineMs;
    const result = await this.#onWorker((s) => call({ signal: s }), name, deadlineMs, signal);
    this.#controlMs.executor += result.latencyMs;
    if (result.error === 'timeout') {
      this.#kasminaTimeouts += 1;
      this.#lastKasminaMissMs = result.latencyMs;
      this.#emitEvent(TolariaEvent.KASMINA_TIMEOUT, TelemetryLevel.WARNING, {
        step: this.#globalStep,
        call: name,
        ...attributes,
        deadline_ms: deadlineMs,
        elapsed_ms: result.latencyMs.toFixed(1),
      });
      this.#epochAcc.fail(EmergencyReason.KASMINA_TIMEOUT);
      this.#enterConservative(EmergencyReason.KASMINA_TIMEOUT);
    } else if (result.error === 'error') {
      this.#emitEvent(TolariaEvent.KASMINA_ERROR, TelemetryLevel.WARNING, {
        step: this.#globalStep,
        call: name,
        ...attributes,
        error: result.message ?? '',
      });
      this.#epochAcc.fail(EmergencyReason.KASMINA_ERROR);
    }
    return result;
  }

  /**
   * OPTIMIZER and ROLLBACK: verified (signature, freshness, nonce) and dependency-checked
   * here, where they are applied, then applied in full or refused as a whole.
   */
  async #applyOwnCommand(command: AdaptationCommand): Promise<CommandOutcome> {
    const verifier = this.#verifier;
    if (verifier === undefined) return this.#refuse(command, CommandRefusal.NO_VERIFIER, 'Tolaria has no command verifier');
    verifier.maintenance();
    const verdict = verifier.verify(command);
    if (!verdict.ok) {
      // The verifier has emitted its CRITICAL command_rejected packet.
      this.#refuse(command, CommandRefusal.REJECTED, verdict.reason);
      this.#epochAcc.fail(EmergencyReason.COMMAND_REJECTED);
      return { commandId: command.commandId, status: CommandOutcomeStatus.REJECTED, reason: verdict.reason };
    }
    try {
      validateCommandDependencies(this.#guard, command, { trainingRunId: this.options.trainingRunId });
    } catch (error) {
      if (!(error instanceof DependencyViolationError)) throw error;
      // The guard has already emitted the CRITICAL violation packet.
      this.#epochAcc.fail(EmergencyReason.DEPENDENCY_VIOLATION);
      this.#enterConservative(EmergencyReason.DEPENDENCY_VIOLATION);
      return { commandId: command.commandId, status: CommandOutcomeStatus.REJECTED, reason: EmergencyReason.DEPENDENCY_VIOLATION };
    }
    const payload = command.payload;
    if (payload.case === 'optimizerAdjustment') return this.#adjustOptimizer(command, payload.value);
    if (payload.case === 'rollback') return this.#rollbackOnCommand(command, payload.value);
    // validateCommandDependencies has checked the payload matches the type.
    throw new EsperError(ErrorCode.INVALID_STATE, `command ${command.commandId} has no ${CommandType[command.commandType]} payload`);
  }

  /**
   * Sets the learning rate: the schedule is scaled so that the next step runs at the
   * requested rate and later steps keep the schedule's shape. Every other field of the
   * adjustment is refused (the optimizers here have no weight decay, and a family change
   * would need a new optimizer state).
   */
  #adjustOptimizer(command: AdaptationCommand, adjustment: CommandOptimizerAdjustment): CommandOutcome {
    const unsupported = [
      ...(adjustment.momentum === undefined ? [] : ['momentum']),
      ...(adjustment.weightDecay === undefined ? [] : ['weight_decay']),
      ...(adjustment.optimizerFamily === undefined ? [] : ['optimizer_family']),
    ];
    if (unsupported.length > 0) {
      return this.#refuse(command, CommandRefusal.UNSUPPORTED_FIELD, `Tolaria does not adjust ${unsupported.join(', ')}`);
    }
    const rate = adjustment.learningRate;
    if (rate === undefined || !(Number.isFinite(rate) && rate > 0 && rate <= MAX_COMMANDED_LR)) {
      return this.#refuse(command, CommandRefusal.INVALID_VALUE, `learning_rate must be in (0, ${MAX_COMMANDED_LR}], got ${String(rate)}`);
    }
    const scheduled = this.#lr.rate(this.#globalStep, this.#cursor.epoch);
    const previous = scheduled * this.#lrScale;
    this.#lrScale = rate / scheduled;
    this.#emitEvent(TolariaEvent.COMMAND_APPLIED, TelemetryLevel.INFO, {
      command_id: command.commandId,
      command_type: 'COMMAND_OPTIMIZER',
      learning_rate: rate,
      previous_learning_rate: previous,
      step: this.#globalStep,
    });
    return { commandId: command.commandId, status: CommandOutcomeStatus.APPLIED, reason: '' };
  }

  /** Restores the training state from the tier the command names (reference §2.6). */
  async #rollbackOnCommand(command: AdaptationCommand, request: RollbackRequest): Promise<CommandOutcome> {
    if (this.options.rollback === undefined || this.#cache === undefined) {
      return this.#refuse(command, CommandRefusal.ROLLBACK_NOT_CONFIGURED, 'this run has no rollback configured');
    }
    if (request.seedId !== '') {
      return this.#refuse(
        command,
        CommandRefusal.UNSUPPORTED_FIELD,
        'a rollback restores the training state; a seed is removed with SEED CULL',
      );
    }
    const tier = request.tier === RollbackTier.FULL ? 'full' : request.tier === RollbackTier.FAST ? 'fast' : 'auto';
    const target = request.targetGlobalStep === 0n ? undefined : Number(request.targetGlobalStep);
    if (target !== undefined && (tier === 'full' || target > this.#globalStep)) {
      return this.#refuse(
        command,
        CommandRefusal.INVALID_VALUE,
        `target_global_step ${target} needs the fast tier and a step ≤ ${this.#globalStep}`,
      );
    }
    const restored = await this.#rollbackNow(tier, target);
    if (restored === undefined) {
      return this.#refuse(
        command,
        CommandRefusal.ROLLBACK_FAILED,
        `no ${tier === 'auto' ? '' : `${tier} `}restore point could be restored`,
      );
    }
    this.#emitEvent(TolariaEvent.COMMAND_APPLIED, TelemetryLevel.INFO, {
      command_id: command.commandId,
      command_type: 'COMMAND_ROLLBACK',
      tier: restored.tier,
      to_step: restored.toStep,
      reason: request.reason,
    });
    return { commandId: command.commandId, status: CommandOutcomeStatus.APPLIED, reason: '' };
  }

  /** A command Tolaria did not apply: WARNING telemetry with the reason, and a count. */
  #refuse(command: AdaptationCommand, reason: (typeof CommandRefusal)[keyof typeof CommandRefusal], detail: string): CommandOutcome {
    this.#commandsRefused += 1;
    this.#emitEvent(TolariaEvent.COMMAND_NOT_APPLIED, TelemetryLevel.WARNING, {
      command_id: command.commandId,
      command_type: CommandType[command.commandType] ?? String(command.commandType),
      reason,
      detail,
      step: this.#globalStep,
    });
    return { commandId: command.commandId, status: CommandOutcomeStatus.NOT_APPLIED, reason };
  }

  async #onWorker<T>(
    call: (signal: AbortSignal) => Promise<T>,
    name: string,
    deadlineMs: number,
    signal: AbortSignal | undefined,
  ): Promise<CallResult<T>> {
    const worker = this.#worker as AsyncWorker;
    const started = this.options.clock.monotonicMs();
    try {
      const handle = worker.submit(call, { deadlineMs, name, ...(signal === undefined ? {} : { signal }) });
      const value = await handle.result;
      return { ok: true, value, latencyMs: this.options.clock.monotonicMs() - started };
    } catch (error) {
      const latencyMs = this.options.clock.monotonicMs() - started;
      if (isEsperError(error, ErrorCode.WORKER_TIMEOUT)) return { ok: false, value: undefined, latencyMs, error: 'timeout' };
      if (isEsperError(error, ErrorCode.WORKER_CANCELLED)) return { ok: false, value: undefined, latencyMs, error: 'cancelled' };
      const message = errorText(error);
      return { ok: false, value: undefined, latencyMs, error: 'error', message, cause: error };
    }
  }

  #executorContext(epoch: number): ExecutorContext {
    return { host: this.#host, trainingRunId: this.options.trainingRunId, epoch, globalStep: this.#globalStep, rng: this.#rng };
  }

  #enterConservative(reason: string): void {
    if (this.#conservative) return;
    this.#conservative = true;
    this.#emitEvent(TolariaEvent.CONSERVATIVE_MODE_ENTERED, TelemetryLevel.WARNING, { reason });
  }

  #escalate(level: EmergencyLevel, reason: EmergencyReason, attributes: Record<string, string | number> = {}): void {
    const emergency = this.#emergency;
    if (emergency === undefined) return;
    const result = emergency.escalate(level, reason, { epoch: this.#cursor.epoch, globalStep: this.#globalStep });
    const halt = level === EmergencyLevel.HALT;
    // Event level follows the emergency level, so the telemetry priority does too.
    const eventLevel =
      level >= EmergencyLevel.HALT
        ? TelemetryLevel.CRITICAL
        : level >= EmergencyLevel.CONSERVATIVE
          ? TelemetryLevel.ERROR
          : TelemetryLevel.WARNING;
    this.#emitEvent(halt ? TolariaEvent.EMERGENCY_HALT : TolariaEvent.EMERGENCY_ESCALATED, eventLevel, {
      level: EmergencyLevel[level] ?? String(level),
      reason,
      dispatched: result.dispatched,
      ...attributes,
    });
  }

  // ---------------------------------------------------------------- rollback

  /**
   * Rolls the training state back: the newest fast snapshot at or before the current step
   * if there is one, else the last checkpoint (within the full-restore deadline). With
   * `tier: 'full'` the fast tier is skipped (an operator's checkpoint restore). Returns
   * undefined when no tier could restore. Not cancellable; not while `run` is stepping.
   */
  async rollback(options: { readonly tier?: 'auto' | 'full' } = {}): Promise<RollbackResult | undefined> {
    if (this.#state === 'running' || this.#state === 'failed') {
      throw new EsperError(ErrorCode.INVALID_STATE, `cannot roll back while the trainer is ${this.#state}`);
    }
    const result = await this.#rollbackNow(options.tier ?? 'auto');
    this.#flushEvents();
    return result;
  }

  /**
   * `auto`: the newest snapshot at or before `atStep`, else the last checkpoint; `fast`:
   * the snapshot only; `full`: the checkpoint only.
   */
  async #rollbackNow(tier: 'auto' | 'fast' | 'full', atStep = this.#globalStep): Promise<RollbackResult | undefined> {
    const rollback = this.options.rollback;
    if (rollback === undefined || this.#cache === undefined) {
      throw new EsperError(ErrorCode.INVALID_STATE, 'rollback is not configured');
    }
    const clock = this.options.clock;
    const fromStep = this.#globalStep;
    const snapshot = tier === 'full' ? undefined : this.#cache.nearest(atStep);
    if (snapshot !== undefined) {
      const started = clock.monotonicMs();
      await this.#restoreSnapshot(snapshot);
      const latencyMs = clock.monotonicMs() - started;
      this.#rollback.fastHits += 1;
      return this.#reportRestore({ tier: 'fast', latencyMs, budgetMs: rollback.fastBudgetMs, toStep: snapshot.globalStep }, fromStep);
    }
    this.#rollback.fastMisses += 1;
    const store = tier === 'fast' ? undefined : this.#store;
    if (store !== undefined) {
      const result = await this.#onWorker(
        async (signal) => {
          const latest = await store.latest();
          if (latest === undefined) throw new EsperError(ErrorCode.TOLARIA_CHECKPOINT_NOT_FOUND, 'no valid checkpoint to restore');
          // Past the deadline nothing is applied: the caller has already given up.
          if (signal.aborted) return false;
          await this.#applyCheckpoint(latest.checkpoint, false);
          return true;
        },
        FULL_RESTORE_TASK,
        rollback.fullDeadlineMs,
        undefined,
      );
      if (result.ok && result.value === true) {
        this.#rollback.fullRestores += 1;
        return this.#reportRestore(
          { tier: 'full', latencyMs: result.latencyMs, budgetMs: rollback.fullDeadlineMs, toStep: this.#globalStep },
          fromStep,
        );
      }
      if (result.error === 'timeout') this.#rollback.deadlineExceeded += 1;
      this.#rollback.failures += 1;
      this.#emitEvent(TolariaEvent.ROLLBACK_RESTORE_FAILED, TelemetryLevel.CRITICAL, {
        tier: 'full',
        error: result.error ?? 'unknown',
        message: result.message ?? '',
        latency_ms: result.latencyMs.toFixed(1),
      });
      return undefined;
    }
    this.#rollback.failures += 1;
    this.#emitEvent(TolariaEvent.ROLLBACK_RESTORE_FAILED, TelemetryLevel.CRITICAL, {
      tier: 'none',
      error: tier === 'fast' ? `no snapshot at or before step ${atStep}` : 'no snapshot and no checkpoint store',
    });
    return undefined;
  }

  #reportRestore(result: RollbackResult, fromStep: number): RollbackResult {
    this.#rollback.lastMs = result.latencyMs;
    this.#rollback.lastTier = result.tier;
    this.#emitEvent(TolariaEvent.ROLLBACK_RESTORED, TelemetryLevel.INFO, {
      tier: result.tier,
      latency_ms: result.latencyMs.toFixed(3),
      budget_ms: result.budgetMs,
      from_step: fromStep,
      to_step: result.toStep,
    });
    if (result.latencyMs > result.budgetMs) {
      this.#rollback.deadlineExceeded += 1;
      this.#emitEvent(TolariaEvent.ROLLBACK_DEADLINE, TelemetryLevel.WARNING, {
        tier: result.tier,
        latency_ms: result.latencyMs.toFixed(1),
        budget_ms: result.budgetMs,
      });
    }
    return result;
  }

  async #takeSnapshot(): Promise<void> {
    const cache = this.#cache;
    if (cache === undefined) return;
    const weights = cloneWeights(this.#host.trainableVariables());
    const optimizer = await this.#optimizer.snapshot();
    cache.put(
      makeSnapshot({
        globalStep: this.#globalStep,
        cursor: this.#cursor.state(),
        rng: this.#rng.getState(),
        progress: this.#progress(),
        weights,
        optimizer,
      }),
    );
  }

  async #restoreSnapshot(snapshot: TrainingSnapshot): Promise<void> {
    restoreWeights(snapshot.weights, this.#host.trainableVariables());
    await this.#optimizer.restoreSnapshot(snapshot.optimizer);
    this.#cursor = DataCursor.restore(snapshot.cursor, { size: this.#dataset.train.size });
    this.#rng = rngFromState(snapshot.rng);
    this.#globalStep = snapshot.globalStep;
    this.#restoreProgress(snapshot.progress, false);
  }

  // ---------------------------------------------------------------- checkpoints

  async #writeCheckpoint(trigger: 'epoch' | 'steps' | 'abort'): Promise<void> {
    const store = this.#store;
    if (store === undefined) return;
    try {
      const executorState = this.#executor?.exportState?.();
      const header: CheckpointHeader = {
        trainingRunId: this.options.trainingRunId,
        hostId: this.#host.descriptor.hostId,
        globalStep: this.#globalStep,
        cursor: this.#cursor.state(),
        rng: this.#rng.getState(),
        optimizer: {
          kind: this.#optimizer.kind,
          learningRate: this.#optimizer.learningRate,
          variableNames: this.#optimizer.variables.map((v) => v.name),
        },
        hookSites: [...this.#host.hooks.keys()].sort(),
        ...(executorState === undefined ? {} : { executor: executorState }),
        progress: this.#progress(),
        createdAtMs: this.options.clock.wallMs(),
      };
      const weights = await saveVariables(this.#host.trainableVariables());
      const optimizerState = await this.#optimizer.save();
      const written = await store.write(header, weights, optimizerState);
      this.#checkpoint = { writes: this.#checkpoint.writes + 1, lastMs: written.latencyMs, lastBytes: written.bytes };
      this.#emitEvent(TolariaEvent.CHECKPOINT_WRITTEN, TelemetryLevel.INFO, {
        trigger,
        global_step: this.#globalStep,
        bytes: written.bytes,
        latency_ms: written.latencyMs.toFixed(1),
        sha256: written.sha256,
      });
    } catch (error) {
      // Training goes on; the operator sees the lost durability at ERROR.
      this.#emitEvent(TolariaEvent.CHECKPOINT_FAILED, TelemetryLevel.ERROR, {
        trigger,
        global_step: this.#globalStep,
        error: errorText(error),
      });
    }
  }

  async #applyCheckpoint(checkpoint: Checkpoint, resume: boolean): Promise<void> {
    const header = checkpoint.header;
    if (header.trainingRunId !== this.options.trainingRunId) {
      this.#guard.fail({
        dependencyType: 'training_run_id',
        identifier: header.trainingRunId,
        reason: `checkpoint belongs to run ${header.trainingRunId}, not ${this.options.trainingRunId}`,
        details: { sha256: checkpoint.sha256 },
      });
    }
    const mismatch = (what: string, cause?: unknown): EsperError =>
      new EsperError(ErrorCode.TOLARIA_CHECKPOINT_MISMATCH, `checkpoint ${checkpoint.sha256.slice(0, 12)} does not fit: ${what}`, {
        cause,
        details: { sha256: checkpoint.sha256 },
      });
    if (header.hostId !== this.#host.descriptor.hostId)
      throw mismatch(`host ${header.hostId}, trainer has ${this.#host.descriptor.hostId}`);
    if (header.optimizer.kind !== this.#optimizer.kind)
      throw mismatch(`optimizer ${header.optimizer.kind}, trainer has ${this.#optimizer.kind}`);
    if (resume && header.executor !== undefined) {
      const restoreState = this.#executor?.restoreState?.bind(this.#executor);
      if (restoreState === undefined) throw mismatch('it holds executor state, and the trainer has no executor that restores it');
      await restoreState(header.executor, this.#executorContext(header.cursor.epoch));
    }
    const sites = [...this.#host.hooks.keys()].sort();
    if (sites.join(',') !== [...header.hookSites].join(','))
      throw mismatch(`hooks at [${header.hookSites.join(', ')}], host has [${sites.join(', ')}]`);
    const variables = this.#host.trainableVariables();
    const byName = new Map(variables.map((v) => [v.name, v]));
    const trained = header.optimizer.variableNames.map((name) => {
      const variable = byName.get(name);
      if (variable === undefined) throw mismatch(`optimizer trains '${name}', which the host lacks`);
      return variable;
    });
    try {
      restoreVariables(variables, checkpoint.weights);
    } catch (error) {
      throw mismatch('weights', error);
    }
    await this.#optimizer.load(checkpoint.optimizerState, trained, header.optimizer.learningRate);
    this.#cursor = DataCursor.restore(header.cursor, { size: this.#dataset.train.size });
    this.#rng = rngFromState(header.rng);
    this.#globalStep = header.globalStep;
    this.#restoreProgress(header.progress, resume);
    // Snapshots of the abandoned timeline must not be restored later.
    this.#cache?.clear();
    if (this.#cache !== undefined && !resume) await this.#takeSnapshot();
  }

  async #onAbort(): Promise<void> {
    this.#emitEvent(TolariaEvent.TRAINING_ABORTED, TelemetryLevel.INFO, {
      global_step: this.#globalStep,
      epoch: this.#cursor.epoch,
      position: this.#cursor.position,
    });
    if (this.#store !== undefined) await this.#writeCheckpoint('abort');
    this.#flushEvents();
  }

  // ---------------------------------------------------------------- state

  #progress(): TrainerProgress {
    return {
      loss: this.#lossStats.state(),
      gradNorm: this.#gradStats.state(),
      lastLoss: this.#lastLoss,
      divergence: this.#divergence?.state() ?? { window: [], panics: 0 },
      epoch: this.#epochAcc.state,
      counters: { ...this.#counters },
      lrScale: this.#lrScale,
    };
  }

  /**
   * Restores statistics. On resume every counter comes back; on rollback only the
   * position-like ones (epochs completed, latest validation), since a rollback must not
   * undo the count of what went wrong.
   */
  #restoreProgress(progress: TrainerProgress, withCounters: boolean): void {
    this.#lossStats.restore(progress.loss);
    this.#gradStats.restore(progress.gradNorm);
    this.#lastLoss = progress.lastLoss;
    this.#divergence?.restore(progress.divergence);
    this.#epochAcc.restore(progress.epoch);
    this.#lrScale = progress.lrScale;
    if (withCounters) {
      this.#counters = { ...progress.counters };
    } else {
      this.#counters.epochsTotal = progress.counters.epochsTotal;
      this.#counters.lastValidationLoss = progress.counters.lastValidationLoss;
      this.#counters.lastValidationAccuracy = progress.counters.lastValidationAccuracy;
    }
  }

  #latestValidation(): { loss: number; accuracy: number } | undefined {
    return this.#counters.lastValidationLoss < 0
      ? undefined
      : { loss: this.#counters.lastValidationLoss, accuracy: this.#counters.lastValidationAccuracy };
  }

  #packetBase(
    epoch: number,
    trainingLoss: number,
  ): {
    trainingRunId: string;
    experimentName: string;
    epoch: number;
    globalStep: number;
    trainingLoss: number;
    clock: ResolvedTrainerOptions['clock'];
  } {
    return {
      trainingRunId: this.options.trainingRunId,
      experimentName: this.options.experimentName,
      epoch,
      globalStep: this.#globalStep,
      trainingLoss,
      clock: this.options.clock,
    };
  }

  /** The executor's seed states, with the gradient norm measured here for seeds whose site has a hook. */
  #seedStates(hookNorms?: ComputeResult['hookNorms']): SeedState[] {
    const exported = this.#executor?.exportSeedStates() ?? [];
    if (hookNorms === undefined || hookNorms.length === 0) return [...exported];
    const bySite = new Map(hookNorms.map((h) => [h.siteId, h.norm]));
    return exported.map((seed) => {
      const norm = bySite.get(seed.siteId);
      if (norm === undefined) return seed;
      const copy = clone(SeedStateSchema, seed);
      copy.gradientNorm = norm;
      return copy;
    });
  }

  #epochMetrics(): Parameters<typeof buildEpochState>[0]['metrics'] {
    const acc = this.#epochAcc;
    const state = acc.state;
    return {
      optimizerLr: this.#optimizer.learningRate,
      ...(this.#optimizer.momentum === undefined ? {} : { optimizerMomentum: this.#optimizer.momentum }),
      optimizerFamily: this.#optimizer.family,
      lossEwma: this.#lossStats.mean,
      lossVolatility: this.#lossStats.deviation,
      gradientNorm: acc.meanGradNorm,
      gradNormEwma: this.#gradStats.mean,
      gradVar: this.#gradStats.variance,
      samplesPerS: state.trainMsSum > 0 ? (state.samples * 1000) / state.trainMsSum : 0,
      stepLatencyMs: acc.medianStepMs,
      hookLatencyMs: state.lastHookMs,
      epochsTotal: this.#counters.epochsTotal,
    };
  }

  // ---------------------------------------------------------------- telemetry

  #emitEvent(description: string, level: TelemetryLevel, attributes: Record<string, string | number | boolean>): void {
    this.#events.push({ description, level, attributes });
  }

  /** Sends the events raised since the last packet, with the step counters, as one packet. */
  #flushEvents(): void {
    if (this.#events.length === 0) return;
    const events = this.#events;
    this.#events = [];
    const metrics: MetricInput[] = [
      m(TolariaMetric.STEPS_TOTAL, this.#globalStep),
      m(TolariaMetric.TIMEOUT_TAMIYO_TOTAL, this.#tamiyoTimeouts),
      m(TolariaMetric.TIMEOUT_KASMINA_TOTAL, this.#kasminaTimeouts),
      m(TolariaMetric.NON_FINITE_LOSS_TOTAL, this.#counters.nonFiniteLossTotal),
      m(TolariaMetric.EMERGENCY_LEVEL, this.#emergency?.level ?? 0),
    ];
    this.#telemetry.emit(
      buildTelemetryPacket({
        source: TOLARIA_SOURCE,
        trainingRunId: this.options.trainingRunId,
        metrics,
        events,
        health: healthOf(events),
        clock: this.options.clock,
      }),
    );
  }

  #emitEpochTelemetry(epoch: number, report: EpochReport, validationMs: number, cpuUtilPercent: number | undefined): void {
    const acc = this.#epochAcc.state;
    const opt = this.#optimizer.stats();
    const rb = this.options.rollback;
    const emergency = this.#emergency?.stats();
    const seedStates = this.#seedStates();
    const seedStages = new Map(seedStates.map((s) => [s.siteId, s]));
    const metrics: MetricInput[] = [
      m(TolariaMetric.TRAINING_LOSS, report.trainLoss),
      m(TolariaMetric.TRAINING_ACCURACY, report.trainAccuracy),
      m(TolariaMetric.TRAINING_LATENCY_MS, acc.trainMsSum),
      m(TolariaMetric.TRAINING_SAMPLES_PER_S, acc.trainMsSum > 0 ? (acc.samples * 1000) / acc.trainMsSum : 0),
      m(TolariaMetric.TRAINING_STEP_LATENCY_MS, this.#epochAcc.medianStepMs),
      m(TolariaMetric.VALIDATION_LOSS, report.validationLoss),
      m(TolariaMetric.VALIDATION_ACCURACY, report.validationAccuracy),
      m(TolariaMetric.VALIDATION_LATENCY_MS, validationMs),
      m(TolariaMetric.SEEDS_ACTIVE, seedStates.length),
      ...(acc.lastHookMs > 0 ? [m(TolariaMetric.EPOCH_HOOK_LATENCY_MS, acc.lastHookMs)] : []),
      m(TolariaMetric.HOOK_LATENCY_MS, acc.maxHookMs),
      m(TolariaMetric.BREAKER_STATE, this.#breaker.state),
      m(TolariaMetric.MODE_CONSERVATIVE, this.#conservative ? 1 : 0),
      m(TolariaMetric.EPOCHS_TOTAL, this.#counters.epochsTotal),
      m(TolariaMetric.EPOCHS_FAILED, this.#counters.epochsFailed),
      m(TolariaMetric.STEPS_TOTAL, this.#globalStep),
      m(TolariaMetric.LR_CONTROLLER_ENABLED, this.#lr.enabled ? 1 : 0),
      m(TolariaMetric.LR_CONTROLLER_CURRENT_LR, this.#optimizer.learningRate),
      m(TolariaMetric.OPT_REBUILDS_TOTAL, opt.rebuildsTotal),
      m(TolariaMetric.OPT_REBUILD_FAILURES_TOTAL, opt.rebuildFailuresTotal),
      m(TolariaMetric.OPT_REBUILD_SKIPPED_TOTAL, opt.rebuildSkippedTotal),
      m(TolariaMetric.OPT_REBUILD_LATENCY_MS, opt.lastRebuildLatencyMs),
      m(TolariaMetric.TIMEOUT_TAMIYO_TOTAL, this.#tamiyoTimeouts),
      m(TolariaMetric.TIMEOUT_KASMINA_TOTAL, this.#kasminaTimeouts),
      m(TolariaMetric.TIMEOUT_TAMIYO_LAST_MS, this.#lastTamiyoMissMs),
      m(TolariaMetric.TIMEOUT_KASMINA_LAST_MS, this.#lastKasminaMissMs),
      m(TolariaMetric.NON_FINITE_LOSS_TOTAL, this.#counters.nonFiniteLossTotal),
      ...(cpuUtilPercent === undefined ? [] : [m(TolariaMetric.CPU_UTIL_PERCENT, cpuUtilPercent)]),
    ];
    if (this.#cache !== undefined && rb !== undefined) {
      metrics.push(
        m(TolariaMetric.ROLLBACK_FAST_SIZE_BYTES, this.#cache.sizeBytes),
        m(TolariaMetric.ROLLBACK_SNAPSHOTS_TOTAL, this.#cache.putsTotal),
        m(TolariaMetric.ROLLBACK_FAST_HITS_TOTAL, this.#rollback.fastHits),
        m(TolariaMetric.ROLLBACK_FAST_MISSES_TOTAL, this.#rollback.fastMisses),
        m(TolariaMetric.ROLLBACK_FAILURES_TOTAL, this.#rollback.failures),
        m(TolariaMetric.ROLLBACK_DEADLINE_EXCEEDED_TOTAL, this.#rollback.deadlineExceeded),
        m(TolariaMetric.ROLLBACK_BUDGET_MS, rb.fastBudgetMs, { tier: 'fast' }),
        m(TolariaMetric.ROLLBACK_BUDGET_MS, rb.fullDeadlineMs, { tier: 'full' }),
      );
      if (this.#rollback.lastTier !== '') {
        metrics.push(m(TolariaMetric.ROLLBACK_RESTORE_LATENCY_MS, this.#rollback.lastMs, { tier: this.#rollback.lastTier }));
      }
    }
    if (this.#store !== undefined) {
      metrics.push(
        m(TolariaMetric.CHECKPOINT_WRITES_TOTAL, this.#checkpoint.writes),
        m(TolariaMetric.CHECKPOINT_WRITE_LATENCY_MS, this.#checkpoint.lastMs),
        m(TolariaMetric.CHECKPOINT_BYTES, this.#checkpoint.lastBytes),
      );
    }
    if (emergency !== undefined) {
      metrics.push(
        m(TolariaMetric.EMERGENCY_LEVEL, emergency.level),
        m(TolariaMetric.EMERGENCY_BROADCASTS_TOTAL, emergency.broadcastsTotal),
        m(TolariaMetric.EMERGENCY_HALTS_TOTAL, emergency.haltsTotal),
        m(TolariaMetric.EMERGENCY_HALT, emergency.halted ? 1 : 0),
      );
    }
    const totalParams = this.#host.trainableVariables().reduce((n, v) => n + v.size, 0);
    for (const seed of [...this.#epochAcc.seeds.values()].sort((a, b) => a.siteId.localeCompare(b.siteId))) {
      const state = seedStages.get(seed.siteId);
      const attributes = {
        site_id: seed.siteId,
        seed_id: state?.seedId ?? seed.siteId,
        ...(state === undefined ? {} : { stage: state.stage }),
      };
      metrics.push(
        m(TolariaMetric.SEED_GRAD_NORM, seed.uses === 0 ? 0 : seed.normSum / seed.uses, attributes),
        m(TolariaMetric.SEED_GRAD_SHARE, seed.uses === 0 ? 0 : seed.shareSum / seed.uses, attributes),
        m(TolariaMetric.SEED_PARAMS, seed.params, attributes),
        m(TolariaMetric.SEED_MASK_FRACTION, totalParams > 0 ? seed.params / totalParams : 0, attributes),
      );
    }
    const events = this.#events;
    this.#events = [];
    const halted = emergency?.halted === true;
    const health = halted
      ? { status: HealthStatus.CRITICAL, summary: 'halted' }
      : report.failureReason !== ''
        ? { status: HealthStatus.DEGRADED, summary: report.failureReason }
        : healthOf(events);
    this.#telemetry.emit(
      buildTelemetryPacket({
        source: TOLARIA_SOURCE,
        trainingRunId: this.options.trainingRunId,
        metrics,
        events,
        health: { ...health, indicators: { epoch } },
        clock: this.options.clock,
      }),
    );
  }

  #summary(state: TrainingSummary['state'], wallMs: number): TrainingSummary {
    return {
      state,
      trainingRunId: this.options.trainingRunId,
      epochsCompleted: this.#counters.epochsTotal,
      globalStep: this.#globalStep,
      lastEpoch: this.#lastEpoch,
      wallMs,
      nonFiniteLossTotal: this.#counters.nonFiniteLossTotal,
      rollbacks: { fastHits: this.#rollback.fastHits, fullRestores: this.#rollback.fullRestores, failures: this.#rollback.failures },
      controllerTimeouts: this.#tamiyoTimeouts,
      executorTimeouts: this.#kasminaTimeouts,
      checkpointsWritten: this.#checkpoint.writes,
      commandsRefused: this.#commandsRefused,
      controlPlaneMs: { ...this.#controlMs },
    };
  }
}

function m(metric: MetricName, value: number, attributes?: Record<string, string | number>): MetricInput {
  return attributes === undefined
    ? { name: metric.name, unit: metric.unit, value }
    : { name: metric.name, unit: metric.unit, value, attributes };
}

function cpuField(percent: number | undefined): { cpuUtilPercent?: number } {
  return percent === undefined ? {} : { cpuUtilPercent: percent };
}

/** HEALTHY, or DEGRADED/UNHEALTHY/CRITICAL after the first event at WARNING/ERROR/CRITICAL. */
function healthOf(events: readonly EventInput[]): { status: HealthStatus; summary: string } {
  const worst = events.reduce((max, e) => Math.max(max, e.level ?? TelemetryLevel.INFO), TelemetryLevel.INFO);
  const first = events.find((e) => (e.level ?? TelemetryLevel.INFO) >= TelemetryLevel.WARNING);
  if (first === undefined) return { status: HealthStatus.HEALTHY, summary: 'stable' };
  const status =
    worst >= TelemetryLevel.CRITICAL
      ? HealthStatus.CRITICAL
      : worst >= TelemetryLevel.ERROR
        ? HealthStatus.UNHEALTHY
        : HealthStatus.DEGRADED;
  return { status, summary: first.description };
}

/** The outcome of a command whose owner threw `cause`. */
function outcomeOfError(cause: unknown): Omit<CommandOutcome, 'commandId'> {
  if (isEsperError(cause, ErrorCode.COMMAND_REJECTED)) {
    return { status: CommandOutcomeStatus.REJECTED, reason: String(cause.details?.['reason'] ?? cause.code) };
  }
  if (isEsperError(cause, ErrorCode.DEPENDENCY_VIOLATION))
    return { status: CommandOutcomeStatus.REJECTED, reason: EmergencyReason.DEPENDENCY_VIOLATION };
  // A refusal's `details.reason` says why (`unsupported_command`, `SEED_GATE_G0_SANITY: site occupied`, …).
  if (isEsperError(cause)) return { status: CommandOutcomeStatus.NOT_APPLIED, reason: String(cause.details?.['reason'] ?? cause.code) };
  return { status: CommandOutcomeStatus.FAILED, reason: errorText(cause) };
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function disposeBatch(batch: Batch): void {
  tf.dispose([batch.inputs, batch.labels]);
}
