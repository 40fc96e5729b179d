/**
 * Tolaria's trainer: the epoch and step loops over a {@link HostModel} and a {@link Dataset}
 * (reference prototype-tolaria-oona-nissa-weatherlight §2.3–§2.7). It owns the order of
 * things; the work is done by its parts — `step-compute.ts` (tensors), `control-loop.ts`,
 * `control-calls.ts` and `commands.ts` (collaborators), `recovery.ts` (snapshots,
 * rollback, checkpoints), `incidents.ts` (verdicts, emergencies), `trainer-telemetry.ts`,
 * all sharing one {@link TrainingState}. `docs/architecture.md` § Tolaria describes a step.
 *
 * Cancellation: `run({ signal })` checks the signal only between steps, never inside a
 * `tidy`; an aborted run writes a checkpoint when a store is configured (not cancellable).
 */
import { DependencyGuard, ServiceState } from '../core/index.js';
import { TelemetryLevel, type SeedState } from '../leyline/index.js';
import type { Checkpoint, DiscardedCheckpoint } from './checkpoint.js';
import { CommandOwner } from './commands.js';
import { ControlCalls } from './control-calls.js';
import { ControlLoop, type HookTimings } from './control-loop.js';
import type { Executor, ExecutorContext, WidenGradient } from './controller.js';
import type { Batch, DataCursorState, Dataset } from './dataset.js';
import type { HostModel } from './host-model.js';
import { Incidents } from './incidents.js';
import { targetsOf } from './loss.js';
import { LrController } from './lr-controller.js';
import { TOLARIA_SOURCE, TolariaEvent, TolariaMetric } from './names.js';
import { OptimizerManager, type OptimizerManagerStats } from './optimizer-manager.js';
import { Recovery, type RollbackResult } from './recovery.js';
import {
  buildEpochState,
  buildStepState,
  CpuMeter,
  withGradientNorms,
  type SiteSignalInput,
  type StatePacketInput,
} from './state-packet.js';
import {
  computeStep,
  computeWidenGradients,
  widenGradientNorms,
  disposeBatch,
  syncOptimizer,
  validate,
  type LossSpec,
  type StepResult,
} from './step-compute.js';
import {
  resolveTrainerOptions,
  type EpochReport,
  type ResolvedTrainerOptions,
  type StatePacketSink,
  type StepReport,
  type TrainerOptions,
} from './trainer-options.js';
import { epochMetrics, metricOf, TrainerTelemetry } from './trainer-telemetry.js';
import { TrainingState } from './training-state.js';

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

type EpochOutcome = 'completed' | 'aborted' | 'halted' | 'rewound';

/**
 * Shortest window of the step packets' CPU utilisation: a step reports the last window of
 * at least this long (see {@link CpuMeter}), so `process.cpuUsage` is read a few times a
 * second, not twice per step.
 */
const STEP_CPU_WINDOW_MS = 200;

/** Trains a host on a dataset with the control loop, checkpoints, rollback and emergencies. */
export class Trainer {
  /** The resolved options (for logging the configuration once at start). */
  readonly options: ResolvedTrainerOptions;
  readonly #host: HostModel;
  readonly #dataset: Dataset;
  readonly #executor: Executor | undefined;
  readonly #stateSink: StatePacketSink | undefined;
  readonly #onStep: ((report: StepReport) => void) | undefined;
  readonly #onEpoch: ((report: EpochReport) => void) | undefined;
  readonly #optimizer: OptimizerManager;
  readonly #lr: LrController;
  readonly #state: TrainingState;
  readonly #telemetry: TrainerTelemetry;
  readonly #calls: ControlCalls;
  readonly #recovery: Recovery;
  readonly #incidents: Incidents;
  readonly #commands: CommandOwner;
  readonly #control: ControlLoop;
  readonly #stepCpu: CpuMeter;
  readonly #lifecycle = new ServiceState<TrainerState>('tolaria trainer', 'created');
  #lastEpoch: EpochReport | undefined;
  /** Wall time and hook timings of the previous step, reported in the next step packet. */
  #previous: HookTimings & { stepMs: number } = { stepMs: 0, hookMs: 0, tamiyoMs: 0, applyMs: 0, finalizeMs: 0 };

  /**
   * @throws DependencyViolationError (and one CRITICAL telemetry packet) for a missing
   *   training run id; EsperError INVALID_ARGUMENT for a bad option
   */
  constructor(options: TrainerOptions) {
    const guard = new DependencyGuard({
      subsystem: TOLARIA_SOURCE,
      sink: options.telemetry,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      trainingRunId: options.trainingRunId ?? '',
    });
    guard.requireId(options.trainingRunId, 'training_run_id');
    this.options = resolveTrainerOptions(options);
    const o = this.options;
    this.#host = options.host;
    this.#dataset = options.dataset;
    this.#executor = options.executor;
    this.#stateSink = options.stateSink;
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
    const state = new TrainingState({ datasetSize: this.#dataset.train.size, seed: o.seed, lossDivergence: o.lossDivergence });
    this.#state = state;
    this.#telemetry = new TrainerTelemetry({
      sink: options.telemetry,
      trainingRunId: o.trainingRunId,
      clock: o.clock,
      stepMetrics: () => [
        metricOf(TolariaMetric.STEPS_TOTAL, state.globalStep),
        metricOf(TolariaMetric.TIMEOUT_TAMIYO_TOTAL, this.#calls.stats().controllerTimeouts),
        metricOf(TolariaMetric.TIMEOUT_KASMINA_TOTAL, this.#calls.stats().executorTimeouts),
        metricOf(TolariaMetric.NON_FINITE_LOSS_TOTAL, state.counters.nonFiniteLossTotal),
        metricOf(TolariaMetric.EMERGENCY_LEVEL, this.#incidents.emergencyLevel),
      ],
    });
    const events = this.#telemetry;
    const context = (epoch: number): ExecutorContext => this.#executorContext(epoch);
    this.#calls = new ControlCalls({
      worker: options.worker,
      clock: o.clock,
      controllerDeadlineMs: o.controllerDeadlineMs,
      executorDeadlineMs: o.executorDeadlineMs,
      state,
      events,
    });
    this.#recovery = new Recovery({
      trainingRunId: o.trainingRunId,
      host: this.#host,
      optimizer: this.#optimizer,
      executor: this.#executor,
      state,
      events,
      guard,
      clock: o.clock,
      worker: options.worker,
      rollback: o.rollback,
      store: options.checkpoints?.store,
      checkpointEverySteps: o.checkpointEverySteps,
      context,
    });
    this.#incidents = new Incidents({ options: o, state, events, calls: this.#calls, recovery: this.#recovery });
    this.#commands = new CommandOwner({
      trainingRunId: o.trainingRunId,
      executor: this.#executor,
      verifier: options.commandVerifier,
      guard,
      calls: this.#calls,
      recovery: this.#recovery,
      lr: this.#lr,
      state,
      events,
      clock: o.clock,
      context,
    });
    this.#control = new ControlLoop({
      controller: options.controller,
      executor: this.#executor,
      calls: this.#calls,
      commands: this.#commands,
      state,
      clock: o.clock,
      context,
      validate: (bypassSites) => this.#validate(bypassSites),
      accuracyMeasured: targetsOf(this.#dataset) === 'classes',
    });
    this.#stepCpu = new CpuMeter(o.clock, { minWindowMs: STEP_CPU_WINDOW_MS });
  }

  /** Current lifecycle state. */
  get state(): TrainerState {
    return this.#lifecycle.current;
  }

  /** Optimizer steps taken. */
  get globalStep(): number {
    return this.#state.globalStep;
  }

  /** The data cursor's position (epoch in progress or just finished, examples handed out). */
  get cursorState(): DataCursorState {
    return this.#state.cursor.state();
  }

  /** Optimizer steps per epoch at the configured batch size. */
  get stepsPerEpoch(): number {
    return this.#state.cursor.batchesPerEpoch(this.options.batchSize);
  }

  /** The learning rate of the next step. */
  get learningRate(): number {
    return this.#optimizer.learningRate;
  }

  /** Counters of the optimizer manager (rebuilds, skips, failures). */
  optimizerStats(): OptimizerManagerStats {
    return this.#optimizer.stats();
  }

  /**
   * Restores a checkpoint before `run` (resume). The checkpoint must belong to this run
   * (`training_run_id`, checked by the dependency guard), this host, and the hooks now
   * attached. `discarded` (from `CheckpointStore.latest`) is reported as WARNING
   * `tolaria.checkpoint.discarded` events.
   * @throws DependencyViolationError for another run's checkpoint; EsperError
   *   TOLARIA_CHECKPOINT_MISMATCH when it does not fit the host or optimizer
   */
  async restore(checkpoint: Checkpoint, options: { readonly discarded?: readonly DiscardedCheckpoint[] } = {}): Promise<void> {
    this.#requireIdle('restore a checkpoint');
    await this.#recovery.applyCheckpoint(checkpoint, true);
    this.#recovery.reportDiscarded(options.discarded ?? []);
    const cursor = this.#state.cursor;
    this.#telemetry.event(TolariaEvent.CHECKPOINT_RESTORED, TelemetryLevel.INFO, {
      global_step: this.#state.globalStep,
      sha256: checkpoint.sha256,
      epoch: cursor.epoch,
      position: cursor.position,
    });
    this.#telemetry.flush();
  }

  /**
   * Trains until `epochs` epochs are complete, the signal aborts (at a step boundary),
   * or an emergency halts training.
   * @throws the first error that escaped a step (the trainer is then `failed`)
   */
  async run(options: { readonly signal?: AbortSignal } = {}): Promise<TrainingSummary> {
    const started = this.options.clock.monotonicMs();
    this.#lifecycle.transition(['created', 'aborted'], 'running', 'run');
    this.#calls.startRun();
    try {
      await this.#recovery.beforeRun();
      let outcome: 'completed' | 'aborted' | 'halted' = 'completed';
      for (;;) {
        const cursor = this.#state.cursor;
        const epoch = cursor.epochEnded ? cursor.epoch + 1 : cursor.epoch;
        if (epoch >= this.options.epochs) break;
        const result = await this.#runEpoch(epoch, options.signal);
        if (result === 'rewound') continue;
        if (result !== 'completed') {
          outcome = result;
          break;
        }
      }
      if (outcome === 'aborted') await this.#onAbort();
      this.#lifecycle.set(outcome);
      return this.#summary(outcome, this.options.clock.monotonicMs() - started);
    } catch (error) {
      this.#lifecycle.set('failed');
      throw error;
    }
  }

  /**
   * Rolls the training state back: the newest fast snapshot at or before the current step
   * if there is one, else the last checkpoint (within the full-restore deadline). With
   * `tier: 'full'` the fast tier is skipped (an operator's checkpoint restore). Returns
   * undefined when no tier could restore. Not cancellable; not while `run` is stepping.
   */
  async rollback(options: { readonly tier?: 'auto' | 'full' } = {}): Promise<RollbackResult | undefined> {
    this.#requireIdle('roll back');
    const result = await this.#recovery.rollback(options.tier ?? 'auto');
    this.#telemetry.flush();
    return result;
  }

  /** Frees the optimizer state and the rollback snapshots (not the host). Idempotent. */
  dispose(): void {
    this.#recovery.dispose();
    this.#optimizer.dispose();
  }

  #requireIdle(what: string): void {
    this.#lifecycle.require(['created', 'completed', 'aborted', 'halted'], what);
  }

  /**
   * One epoch: steps until the cursor finishes it, validation, the epoch packet and
   * control call, the verdict, telemetry, snapshot and checkpoint. Returns `rewound` when
   * a full restore moved the cursor back into an earlier epoch (the caller re-enters it).
   */
  async #runEpoch(epoch: number, signal: AbortSignal | undefined): Promise<EpochOutcome> {
    const { clock } = this.options;
    const state = this.#state;
    const epochCpu = new CpuMeter(clock);
    const started = clock.monotonicMs();
    if (state.cursor.epochEnded || state.cursor.position === 0) state.epoch.reset();
    while (!(state.cursor.epoch === epoch && state.cursor.epochEnded)) {
      if (signal?.aborted === true) return 'aborted';
      // A step resolves through microtasks only: without this turn of the event loop, bus I/O
      // (operator commands in, acknowledgements and telemetry out) would wait for the epoch's end.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const outcome = await this.#step(epoch, signal);
      if (outcome === 'halted') return 'halted';
      if (state.cursor.epoch < epoch && !state.cursor.epochEnded) return 'rewound';
    }
    const validationStarted = clock.monotonicMs();
    const validation = this.#validate();
    const validationMs = clock.monotonicMs() - validationStarted;
    await this.#control.serveValidation(validation, epoch, signal);
    state.counters.lastValidationLoss = validation.loss;
    state.counters.lastValidationAccuracy = validation.accuracy;
    state.counters.epochsTotal += 1;

    const packet = buildEpochState({
      ...this.#packetBase(epoch, state.epoch.meanLoss),
      validation,
      metrics: {
        ...this.#trainingMetrics(this.#optimizer.learningRate),
        gradientNorm: state.epoch.meanGradNorm,
        samplesPerS: state.epoch.state.trainMsSum > 0 ? (state.epoch.state.samples * 1000) / state.epoch.state.trainMsSum : 0,
        stepLatencyMs: state.epoch.medianStepMs,
        hookLatencyMs: state.epoch.state.lastHookMs,
      },
      seedStates: this.#seedStates(),
      siteSignals: this.#siteSignals(),
      cpuUtilPercent: epochCpu.sample(),
    });
    this.#stateSink?.emit(packet);
    await this.#control.afterEpoch(packet, epoch, signal);

    const halted = this.#incidents.judgeEpoch(epoch);
    const report: EpochReport = {
      epoch,
      globalStep: state.globalStep,
      trainLoss: state.epoch.meanLoss,
      trainAccuracy: state.epoch.accuracy,
      validationLoss: validation.loss,
      validationAccuracy: validation.accuracy,
      durationMs: clock.monotonicMs() - started,
      failureReason: state.epoch.state.failureReason,
    };
    this.#lastEpoch = report;
    this.#emitEpochTelemetry(epoch, report, validationMs, epochCpu.sample());
    await this.#recovery.afterEpoch();
    // The epoch-end checkpoint's event, which would otherwise wait for a next step (and be lost after the last epoch).
    this.#telemetry.flush();
    this.#onEpoch?.(report);
    return halted ? 'halted' : 'completed';
  }

  async #step(epoch: number, signal: AbortSignal | undefined): Promise<'ok' | 'failed' | 'halted'> {
    const { clock, batchSize } = this.options;
    const state = this.#state;
    const started = clock.monotonicMs();
    const variables = await syncOptimizer(this.#host, this.#optimizer, state.globalStep, this.#telemetry);
    const learningRate = this.#lr.rate(state.globalStep, epoch) * state.lrScale;
    if (learningRate !== this.#optimizer.learningRate) this.#optimizer.setLearningRate(learningRate);

    const dataStarted = clock.monotonicMs();
    const batch = this.#dataset.train.batch(state.cursor.nextBatch(batchSize));
    const inputWaitMs = clock.monotonicMs() - dataStarted;
    const examples = batch.labels.shape[0];
    const computeStarted = clock.monotonicMs();
    let result: StepResult;
    let widenGradients: ReadonlyMap<string, WidenGradient> | undefined;
    try {
      widenGradients = this.#serveGradientProbes(batch);
      result = computeStep({
        host: this.#host,
        ...this.#lossSpec(),
        batch,
        variables,
        optimizer: this.#optimizer,
        divergence: state.divergence,
      });
    } finally {
      disposeBatch(batch);
    }
    const trainMs = clock.monotonicMs() - computeStarted;
    if (result.failure !== undefined) {
      const outcome = await this.#incidents.stepFailed(epoch, result.failure);
      this.#telemetry.flush();
      return outcome;
    }

    const lossDelta = state.recordStep(result, examples, trainMs);
    if (widenGradients !== undefined && state.lastStep !== undefined) state.lastStep = { ...state.lastStep, widenGradients };
    this.#incidents.stepSucceeded();
    const previous = this.#previous;
    const packet = buildStepState({
      ...this.#packetBase(epoch, result.loss),
      validation: state.latestValidation(),
      metrics: {
        ...this.#trainingMetrics(learningRate),
        lossDelta,
        gradientNorm: result.gradNorm,
        samplesPerS: trainMs > 0 ? (examples * 1000) / trainMs : 0,
        inputWaitMs,
        stepLatencyMs: previous.stepMs,
        hookLatencyMs: previous.hookMs,
        tamiyoLatencyMs: previous.tamiyoMs,
        kasminaApplyMs: previous.applyMs,
        kasminaFinalizeMs: previous.finalizeMs,
        ...cpuField(this.#stepCpu.sample()),
      },
      seedStates: this.#seedStates(result.hookNorms),
    });

    const hooks = await this.#control.afterStep(packet, epoch, signal);
    const stepMs = clock.monotonicMs() - started;
    this.#previous = { stepMs, ...hooks };
    state.epoch.stepMs.push(stepMs);
    await this.#recovery.afterStep();
    this.#telemetry.flush();
    this.#onStep?.({
      epoch,
      globalStep: state.globalStep,
      stepInEpoch: Math.ceil(state.cursor.position / batchSize),
      stepsPerEpoch: this.stepsPerEpoch,
      loss: result.loss,
      learningRate,
      stepMs,
    });
    return 'ok';
  }

  /** The executor's gradient probes on this step's batch, before the update; undefined when none. */
  #serveGradientProbes(batch: Batch): ReadonlyMap<string, WidenGradient> | undefined {
    const probes = this.#executor?.gradientProbes?.() ?? [];
    if (probes.length === 0) return undefined;
    const siteIds = probes.map((p) => p.siteId);
    return computeWidenGradients({ host: this.#host, ...this.#lossSpec(), batch, siteIds });
  }

  /**
   * The growth signals of the epoch packet: GradMax's criterion at every WIDEN site, on the
   * run's fixed probe batch (the first `batchSize` training examples). Growing runs only:
   * a run without an executor has no use for them and pays nothing.
   */
  #siteSignals(): SiteSignalInput[] {
    if (this.#executor === undefined) return [];
    const examples = Math.min(this.options.batchSize, this.#dataset.train.size);
    const batch = this.#dataset.train.batch(Int32Array.from({ length: examples }, (_, i) => i));
    try {
      return widenGradientNorms({ host: this.#host, ...this.#lossSpec(), batch });
    } finally {
      disposeBatch(batch);
    }
  }

  /** The run's loss and what the dataset's labels are. */
  #lossSpec(): LossSpec {
    const { numClasses, targets } = this.#dataset;
    return { numClasses, loss: this.options.loss, ...(targets === undefined ? {} : { targets }) };
  }

  /** Validation pass over the whole validation split (with `bypassSites` bypassed). */
  #validate(bypassSites?: ReadonlySet<string>): { loss: number; accuracy: number } {
    return validate(this.#host, this.#dataset, this.options.validationBatchSize, bypassSites, this.options.loss);
  }

  async #onAbort(): Promise<void> {
    const { globalStep, cursor } = this.#state;
    this.#telemetry.event(TolariaEvent.TRAINING_ABORTED, TelemetryLevel.INFO, {
      global_step: globalStep,
      epoch: cursor.epoch,
      position: cursor.position,
    });
    await this.#recovery.writeCheckpoint('abort');
    this.#telemetry.flush();
  }

  #executorContext(epoch: number): ExecutorContext {
    const state = this.#state;
    return { host: this.#host, trainingRunId: this.options.trainingRunId, epoch, globalStep: state.globalStep, rng: state.rng };
  }

  #packetBase(epoch: number, trainingLoss: number): Omit<StatePacketInput, 'metrics' | 'seedStates' | 'validation'> {
    const o = this.options;
    return {
      trainingRunId: o.trainingRunId,
      experimentName: o.experimentName,
      epoch,
      globalStep: this.#state.globalStep,
      trainingLoss,
      clock: o.clock,
    };
  }

  /** The optimizer and running-statistics fields every state packet carries. */
  #trainingMetrics(learningRate: number): StatePacketInput['metrics'] {
    const state = this.#state;
    const optimizer = this.#optimizer;
    return {
      optimizerLr: learningRate,
      ...(optimizer.momentum === undefined ? {} : { optimizerMomentum: optimizer.momentum }),
      optimizerFamily: optimizer.family,
      lossEwma: state.lossStats.mean,
      lossVolatility: state.lossStats.deviation,
      gradNormEwma: state.gradStats.mean,
      gradVar: state.gradStats.variance,
      epochsTotal: state.counters.epochsTotal,
      epochsPlanned: this.options.epochs,
    };
  }

  #seedStates(hookNorms?: StepResult['hookNorms']): SeedState[] {
    return withGradientNorms(this.#executor?.exportSeedStates() ?? [], hookNorms);
  }

  #emitEpochTelemetry(epoch: number, report: EpochReport, validationMs: number, cpuUtilPercent: number | undefined): void {
    const state = this.#state;
    const metrics = epochMetrics({
      report,
      accumulator: state.epoch,
      validationMs,
      seedStates: this.#seedStates(),
      breakerState: this.#incidents.breakerState,
      conservative: this.#calls.conservative,
      counters: state.counters,
      globalStep: state.globalStep,
      lrScheduleEnabled: this.#lr.enabled,
      learningRate: this.#optimizer.learningRate,
      optimizer: this.#optimizer.stats(),
      control: this.#calls.metrics(),
      cpuUtilPercent,
      recovery: this.#recovery.metrics(),
      emergency: this.#incidents.metrics(),
      totalParams: this.#host.trainableVariables().reduce((n, v) => n + v.size, 0),
    });
    this.#telemetry.emitEpoch(epoch, metrics, { failureReason: report.failureReason, halted: this.#incidents.halted });
  }

  #summary(outcome: TrainingSummary['state'], wallMs: number): TrainingSummary {
    const calls = this.#calls.stats();
    const recovery = this.#recovery.stats();
    return {
      state: outcome,
      trainingRunId: this.options.trainingRunId,
      epochsCompleted: this.#state.counters.epochsTotal,
      globalStep: this.#state.globalStep,
      lastEpoch: this.#lastEpoch,
      wallMs,
      nonFiniteLossTotal: this.#state.counters.nonFiniteLossTotal,
      rollbacks: recovery.rollbacks,
      controllerTimeouts: calls.controllerTimeouts,
      executorTimeouts: calls.executorTimeouts,
      checkpointsWritten: recovery.checkpointsWritten,
      commandsRefused: this.#commands.refusedTotal,
      controlPlaneMs: calls.controlPlaneMs,
    };
  }
}

function cpuField(percent: number | undefined): { cpuUtilPercent?: number } {
  return percent === undefined ? {} : { cpuUtilPercent: percent };
}
