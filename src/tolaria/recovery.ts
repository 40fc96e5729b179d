/**
 * Getting back to a sound training state: fast in-memory snapshots, the two rollback tiers
 * (the newest snapshot, else the last checkpoint within its deadline on the worker), and
 * durable checkpoints — written on cadence, restored on resume.
 */
import { type DependencyGuard, ErrorCode, EsperError, type AsyncWorker, type Clock, type MetricInput } from '../core/index.js';
import { TelemetryLevel } from '../leyline/index.js';
import { restoreVariables, saveVariables } from '../tensor/index.js';
import type { Checkpoint, CheckpointHeader, CheckpointStore, DiscardedCheckpoint } from './checkpoint.js';
import { syncOptimizer } from './step-compute.js';
import { callOnWorker, errorText } from './control-calls.js';
import type { Executor, ExecutorContext } from './controller.js';
import type { HostModel } from './host-model.js';
import { TolariaEvent, TolariaMetric } from './names.js';
import type { OptimizerManager } from './optimizer-manager.js';
import { FastRollbackCache, cloneWeights, makeSnapshot, restoreWeights, type TrainingSnapshot } from './rollback.js';
import type { ResolvedTrainerOptions } from './trainer-options.js';
import { metricOf, type TrainerEvents } from './trainer-telemetry.js';
import type { TrainingState } from './training-state.js';

/** Which tier a rollback used, and how long it took. */
export interface RollbackResult {
  readonly tier: 'fast' | 'full';
  readonly latencyMs: number;
  readonly budgetMs: number;
  /** Global step of the restored state. */
  readonly toStep: number;
}

/** `auto`: the fast tier, else the full one; `fast` or `full`: that tier only. */
export type RollbackTierChoice = 'auto' | 'fast' | 'full';

/** What triggered a checkpoint write. */
export type CheckpointTrigger = 'epoch' | 'steps' | 'abort';

/** Options of {@link Recovery}. */
export interface RecoveryOptions {
  readonly trainingRunId: string;
  readonly host: HostModel;
  readonly optimizer: OptimizerManager;
  readonly executor: Executor | undefined;
  readonly state: TrainingState;
  readonly events: TrainerEvents;
  /** Refuses another run's checkpoint. */
  readonly guard: DependencyGuard;
  readonly clock: Clock;
  /** Runs the full-tier restore with its deadline (required with rollback). */
  readonly worker: AsyncWorker | undefined;
  readonly rollback: ResolvedTrainerOptions['rollback'];
  readonly store: CheckpointStore | undefined;
  readonly checkpointEverySteps: number;
  readonly context: (epoch: number) => ExecutorContext;
}

/** Counters of {@link Recovery}. */
export interface RecoveryStats {
  readonly rollbacks: { readonly fastHits: number; readonly fullRestores: number; readonly failures: number };
  readonly checkpointsWritten: number;
}

const FULL_RESTORE_TASK = 'tolaria.rollback.full_restore';

/** Snapshots, rollbacks and checkpoints of one trainer. */
export class Recovery {
  readonly #o: RecoveryOptions;
  readonly #cache: FastRollbackCache | undefined;
  #rollback = { fastHits: 0, fastMisses: 0, fullRestores: 0, failures: 0, deadlineExceeded: 0, lastMs: 0, lastTier: '' };
  #checkpoint = { writes: 0, lastMs: 0, lastBytes: 0 };
  /** Discarded records already reported. */
  readonly #reported = new Set<string>();

  constructor(options: RecoveryOptions) {
    this.#o = options;
    this.#cache = options.rollback === undefined ? undefined : new FastRollbackCache({ maxBytes: options.rollback.fastCacheMaxBytes });
  }

  /** Whether rollback is configured (a fast cache, and the full tier when a store is set). */
  get rollbackEnabled(): boolean {
    return this.#cache !== undefined;
  }

  /** Before the first step of a `run`: a snapshot of the starting point, unless one exists. */
  async beforeRun(): Promise<void> {
    if (this.#cache !== undefined && this.#cache.nearest(this.#o.state.globalStep) === undefined) await this.#takeSnapshot();
  }

  /** After a successful step: a snapshot and a checkpoint when their cadence is due. */
  async afterStep(): Promise<void> {
    const step = this.#o.state.globalStep;
    if (this.#cache !== undefined && step % (this.#o.rollback?.snapshotEverySteps ?? 1) === 0) await this.#takeSnapshot();
    if (this.#o.store !== undefined && this.#o.checkpointEverySteps > 0 && step % this.#o.checkpointEverySteps === 0) {
      await this.writeCheckpoint('steps');
    }
  }

  /** After an epoch: a snapshot and a checkpoint. */
  async afterEpoch(): Promise<void> {
    if (this.#cache !== undefined) await this.#takeSnapshot();
    if (this.#o.store !== undefined) await this.writeCheckpoint('epoch');
  }

  /**
   * Rolls the training state back: `auto` restores the newest snapshot at or before
   * `atStep`, else the last checkpoint (within the full-restore deadline); `fast` and `full`
   * use that tier only. Returns undefined when no tier could restore.
   * @throws EsperError INVALID_STATE when rollback is not configured
   */
  async rollback(tier: RollbackTierChoice, atStep = this.#o.state.globalStep): Promise<RollbackResult | undefined> {
    const rollback = this.#o.rollback;
    if (rollback === undefined || this.#cache === undefined) throw new EsperError(ErrorCode.INVALID_STATE, 'rollback is not configured');
    const { clock, events } = this.#o;
    const fromStep = this.#o.state.globalStep;
    const snapshot = tier === 'full' ? undefined : this.#cache.nearest(atStep);
    if (snapshot !== undefined) {
      const started = clock.monotonicMs();
      await this.#restoreSnapshot(snapshot);
      const latencyMs = clock.monotonicMs() - started;
      this.#rollback.fastHits += 1;
      return this.#reportRestore({ tier: 'fast', latencyMs, budgetMs: rollback.fastBudgetMs, toStep: snapshot.globalStep }, fromStep);
    }
    this.#rollback.fastMisses += 1;
    const store = tier === 'fast' ? undefined : this.#o.store;
    if (store !== undefined) {
      const result = await callOnWorker(
        this.#o.worker as AsyncWorker,
        clock,
        async (signal) => {
          const latest = await store.latest();
          if (latest === undefined) throw new EsperError(ErrorCode.TOLARIA_CHECKPOINT_NOT_FOUND, 'no valid checkpoint to restore');
          // Past the deadline nothing is applied: the caller has already given up.
          if (signal.aborted) return false;
          await this.applyCheckpoint(latest.checkpoint, false);
          this.reportDiscarded(latest.discarded);
          return true;
        },
        { name: FULL_RESTORE_TASK, deadlineMs: rollback.fullDeadlineMs, signal: undefined },
      );
      if (result.ok && result.value === true) {
        this.#rollback.fullRestores += 1;
        const toStep = this.#o.state.globalStep;
        return this.#reportRestore({ tier: 'full', latencyMs: result.latencyMs, budgetMs: rollback.fullDeadlineMs, toStep }, fromStep);
      }
      if (result.error === 'timeout') this.#rollback.deadlineExceeded += 1;
      this.#rollback.failures += 1;
      events.event(TolariaEvent.ROLLBACK_RESTORE_FAILED, TelemetryLevel.CRITICAL, {
        tier: 'full',
        error: result.error ?? 'unknown',
        message: result.message ?? '',
        latency_ms: result.latencyMs.toFixed(1),
      });
      return undefined;
    }
    this.#rollback.failures += 1;
    events.event(TolariaEvent.ROLLBACK_RESTORE_FAILED, TelemetryLevel.CRITICAL, {
      tier: 'none',
      error: tier === 'fast' ? `no snapshot at or before step ${atStep}` : 'no snapshot and no checkpoint store',
    });
    return undefined;
  }

  #reportRestore(result: RollbackResult, fromStep: number): RollbackResult {
    const events = this.#o.events;
    this.#rollback.lastMs = result.latencyMs;
    this.#rollback.lastTier = result.tier;
    events.event(TolariaEvent.ROLLBACK_RESTORED, TelemetryLevel.INFO, {
      tier: result.tier,
      latency_ms: result.latencyMs.toFixed(3),
      budget_ms: result.budgetMs,
      from_step: fromStep,
      to_step: result.toStep,
    });
    if (result.latencyMs > result.budgetMs) {
      this.#rollback.deadlineExceeded += 1;
      events.event(TolariaEvent.ROLLBACK_DEADLINE, TelemetryLevel.WARNING, {
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
    const { host, optimizer, state } = this.#o;
    const weights = cloneWeights(host.trainableVariables());
    const optimizerSnapshot = await optimizer.snapshot();
    cache.put(makeSnapshot({ ...state.position(), progress: state.progress(), weights, optimizer: optimizerSnapshot }));
  }

  async #restoreSnapshot(snapshot: TrainingSnapshot): Promise<void> {
    restoreWeights(snapshot.weights, this.#o.host.trainableVariables());
    await this.#o.optimizer.restoreSnapshot(snapshot.optimizer);
    this.#o.state.restorePosition(snapshot);
    this.#o.state.restoreProgress(snapshot.progress, false);
  }

  /** Writes a checkpoint; a failure is reported at ERROR and training goes on. */
  async writeCheckpoint(trigger: CheckpointTrigger): Promise<void> {
    const { store, host, optimizer, state, events } = this.#o;
    if (store === undefined) return;
    try {
      // The optimizer syncs with the host's variables when a step starts; a seed culled or
      // paused since (at the epoch's end) still has variables in its list, which a resumed
      // host would lack. Sync now, as the next step would, so the two agree.
      await syncOptimizer(host, optimizer, state.globalStep, events);
      const executorState = this.#o.executor?.exportState?.();
      const header: CheckpointHeader = {
        trainingRunId: this.#o.trainingRunId,
        hostId: host.descriptor.hostId,
        ...state.position(),
        optimizer: { kind: optimizer.kind, learningRate: optimizer.learningRate, variableNames: optimizer.variables.map((v) => v.name) },
        hookSites: [...host.hooks.keys()].sort(),
        ...(executorState === undefined ? {} : { executor: executorState }),
        progress: state.progress(),
        createdAtMs: this.#o.clock.wallMs(),
      };
      const weights = await saveVariables(host.trainableVariables());
      const optimizerState = await optimizer.save();
      const written = await store.write(header, weights, optimizerState);
      this.#checkpoint = { writes: this.#checkpoint.writes + 1, lastMs: written.latencyMs, lastBytes: written.bytes };
      events.event(TolariaEvent.CHECKPOINT_WRITTEN, TelemetryLevel.INFO, {
        trigger,
        global_step: state.globalStep,
        bytes: written.bytes,
        latency_ms: written.latencyMs.toFixed(1),
        sha256: written.sha256,
      });
    } catch (error) {
      // Training goes on; the operator sees the lost durability at ERROR.
      events.event(TolariaEvent.CHECKPOINT_FAILED, TelemetryLevel.ERROR, {
        trigger,
        global_step: state.globalStep,
        error: errorText(error),
      });
    }
  }

  /**
   * Puts a checkpoint's training state in place. It must belong to this run (dependency
   * guard), this host and the hooks now attached; on resume the executor's state and every
   * counter come back too.
   * @throws DependencyViolationError for another run's checkpoint; EsperError
   *   TOLARIA_CHECKPOINT_MISMATCH when it does not fit the host or optimizer
   */
  async applyCheckpoint(checkpoint: Checkpoint, resume: boolean): Promise<void> {
    const { host, optimizer, state } = this.#o;
    const header = checkpoint.header;
    if (header.trainingRunId !== this.#o.trainingRunId) {
      this.#o.guard.fail({
        dependencyType: 'training_run_id',
        identifier: header.trainingRunId,
        reason: `checkpoint belongs to run ${header.trainingRunId}, not ${this.#o.trainingRunId}`,
        details: { sha256: checkpoint.sha256 },
      });
    }
    const mismatch = (what: string, cause?: unknown): EsperError =>
      new EsperError(ErrorCode.TOLARIA_CHECKPOINT_MISMATCH, `checkpoint ${checkpoint.sha256.slice(0, 12)} does not fit: ${what}`, {
        cause,
        details: { sha256: checkpoint.sha256 },
      });
    if (header.hostId !== host.descriptor.hostId) throw mismatch(`host ${header.hostId}, trainer has ${host.descriptor.hostId}`);
    if (header.optimizer.kind !== optimizer.kind) throw mismatch(`optimizer ${header.optimizer.kind}, trainer has ${optimizer.kind}`);
    if (resume && header.executor !== undefined) {
      const executor = this.#o.executor;
      const restoreState = executor?.restoreState?.bind(executor);
      if (restoreState === undefined) throw mismatch('it holds executor state, and the trainer has no executor that restores it');
      await restoreState(header.executor, this.#o.context(header.cursor.epoch));
    }
    const sites = [...host.hooks.keys()].sort();
    if (sites.join(',') !== [...header.hookSites].join(',')) {
      throw mismatch(`hooks at [${header.hookSites.join(', ')}], host has [${sites.join(', ')}]`);
    }
    const variables = host.trainableVariables();
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
    await optimizer.load(checkpoint.optimizerState, trained, header.optimizer.learningRate);
    state.restorePosition(header);
    state.restoreProgress(header.progress, resume);
    // Snapshots of the abandoned timeline must not be restored later.
    this.#cache?.clear();
    if (this.#cache !== undefined && !resume) await this.#takeSnapshot();
  }

  /**
   * Tells the operator which checkpoint records were passed over to reach the one now in
   * place (WARNING `tolaria.checkpoint.discarded`, once per record).
   */
  reportDiscarded(discarded: readonly DiscardedCheckpoint[]): void {
    for (const d of discarded) {
      const key = `${d.file}:${d.record}:${d.offset}:${d.reason}`;
      if (this.#reported.has(key)) continue;
      this.#reported.add(key);
      this.#o.events.event(TolariaEvent.CHECKPOINT_DISCARDED, TelemetryLevel.WARNING, {
        file: d.file,
        record: d.record,
        offset: d.offset,
        bytes: d.bytes,
        reason: d.reason,
        detail: d.detail,
        ...(d.claimedStep === undefined ? {} : { claimed_step: d.claimedStep }),
        restored_step: this.#o.state.globalStep,
      });
    }
  }

  /** Rollbacks by tier and checkpoints written. */
  stats(): RecoveryStats {
    const r = this.#rollback;
    return {
      rollbacks: { fastHits: r.fastHits, fullRestores: r.fullRestores, failures: r.failures },
      checkpointsWritten: this.#checkpoint.writes,
    };
  }

  /** Rollback metrics (with rollback on) and checkpoint metrics (with a store). */
  metrics(): MetricInput[] {
    const metrics: MetricInput[] = [];
    const rb = this.#o.rollback;
    const r = this.#rollback;
    if (this.#cache !== undefined && rb !== undefined) {
      metrics.push(
        metricOf(TolariaMetric.ROLLBACK_FAST_SIZE_BYTES, this.#cache.sizeBytes),
        metricOf(TolariaMetric.ROLLBACK_SNAPSHOTS_TOTAL, this.#cache.putsTotal),
        metricOf(TolariaMetric.ROLLBACK_FAST_HITS_TOTAL, r.fastHits),
        metricOf(TolariaMetric.ROLLBACK_FAST_MISSES_TOTAL, r.fastMisses),
        metricOf(TolariaMetric.ROLLBACK_FAILURES_TOTAL, r.failures),
        metricOf(TolariaMetric.ROLLBACK_DEADLINE_EXCEEDED_TOTAL, r.deadlineExceeded),
        metricOf(TolariaMetric.ROLLBACK_BUDGET_MS, rb.fastBudgetMs, { tier: 'fast' }),
        metricOf(TolariaMetric.ROLLBACK_BUDGET_MS, rb.fullDeadlineMs, { tier: 'full' }),
      );
      if (r.lastTier !== '') metrics.push(metricOf(TolariaMetric.ROLLBACK_RESTORE_LATENCY_MS, r.lastMs, { tier: r.lastTier }));
    }
    if (this.#o.store !== undefined) {
      metrics.push(
        metricOf(TolariaMetric.CHECKPOINT_WRITES_TOTAL, this.#checkpoint.writes),
        metricOf(TolariaMetric.CHECKPOINT_WRITE_LATENCY_MS, this.#checkpoint.lastMs),
        metricOf(TolariaMetric.CHECKPOINT_BYTES, this.#checkpoint.lastBytes),
      );
    }
    return metrics;
  }

  /** Frees the snapshots. */
  dispose(): void {
    this.#cache?.clear();
  }
}
