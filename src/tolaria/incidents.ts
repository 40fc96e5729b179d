/**
 * What the trainer does when something goes wrong: the verdict on each epoch (breaker,
 * budgets, step failures; reference prototype-tolaria-oona-nissa-weatherlight §2.3 steps
 * 4–6 and 10), the handling of a failed step (signal, roll back, halt on a streak), and
 * emergency escalation. Epochs failed for control-plane reasons (timeouts, budgets) do not
 * roll the model back; only failed steps do.
 */
import { CircuitBreaker, type MetricInput } from '../core/index.js';
import { EmergencyLevel, TelemetryLevel } from '../leyline/index.js';
import type { ControlCalls } from './control-calls.js';
import { EmergencyController, EmergencyReason } from './emergency.js';
import { TolariaEvent, TolariaMetric } from './names.js';
import type { Recovery } from './recovery.js';
import type { StepFailure } from './step-compute.js';
import type { ResolvedTrainerOptions } from './trainer-options.js';
import { metricOf, type TrainerEvents } from './trainer-telemetry.js';
import type { TrainingState } from './training-state.js';

/** How a failed step ended: training goes on (`failed`) or stops (`halted`). */
export type FailedStepOutcome = 'failed' | 'halted';

/** Options of {@link Incidents}. */
export interface IncidentsOptions {
  readonly options: ResolvedTrainerOptions;
  readonly state: TrainingState;
  readonly events: TrainerEvents;
  readonly calls: ControlCalls;
  readonly recovery: Recovery;
}

/** Epoch verdicts, failed steps and emergency escalation. */
export class Incidents {
  readonly #o: IncidentsOptions;
  readonly #breaker: CircuitBreaker;
  readonly #emergency: EmergencyController | undefined;
  /** Consecutive failed steps that no rollback got past, and the furthest step that failed. */
  #failedSteps = { streak: 0, mark: -1 };

  constructor(options: IncidentsOptions) {
    this.#o = options;
    const o = options.options;
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
  }

  /** State of the trainer's breaker (CircuitBreakerState number). */
  get breakerState(): number {
    return this.#breaker.state;
  }

  /** The emergency level (0 when the protocol is off). */
  get emergencyLevel(): number {
    return this.#emergency?.level ?? 0;
  }

  /** Whether an L4 halted training. */
  get halted(): boolean {
    return this.#emergency?.halted === true;
  }

  /** A step got past the furthest failure: the failed-step streak is over. */
  stepSucceeded(): void {
    if (this.#o.state.globalStep > this.#failedSteps.mark) this.#failedSteps.streak = 0;
  }

  /** A failed step (no update was applied): signal, roll back, or halt on a streak. */
  async stepFailed(epoch: number, failure: StepFailure): Promise<FailedStepOutcome> {
    const { state, events, recovery } = this.#o;
    const failedStep = state.globalStep + 1;
    if (failure.reason === EmergencyReason.NON_FINITE_LOSS) state.counters.nonFiniteLossTotal += 1;
    events.event(
      failure.reason === EmergencyReason.NON_FINITE_LOSS ? TolariaEvent.NON_FINITE_LOSS : TolariaEvent.LOSS_EXPLOSION,
      TelemetryLevel.ERROR,
      { step: failedStep, epoch, quantity: failure.quantity, value: String(failure.value) },
    );
    const streak = this.#failedSteps;
    streak.streak = failedStep <= streak.mark ? streak.streak + 1 : 1;
    streak.mark = Math.max(streak.mark, failedStep);
    this.escalate(EmergencyLevel.ELEVATED, failure.reason, { step: failedStep });
    const rollback = this.#o.options.rollback;
    if (rollback !== undefined && streak.streak >= rollback.maxConsecutiveFailures) {
      this.escalate(EmergencyLevel.HALT, EmergencyReason.FAILED_STEPS_STREAK, { streak: streak.streak });
      state.epoch.fail(failure.reason);
      return 'halted';
    }
    if (rollback !== undefined && (await recovery.rollback('auto')) === undefined) {
      this.escalate(EmergencyLevel.HALT, EmergencyReason.ROLLBACK_DEADLINE, { step: failedStep });
      state.epoch.fail(failure.reason);
      return 'halted';
    }
    // Without rollback the failed batch is skipped: the cursor has moved past it and
    // nothing was applied.
    state.epoch.fail(failure.reason);
    return 'failed';
  }

  /** Decides whether the epoch failed, and what follows. Returns true when training must halt. */
  judgeEpoch(epoch: number): boolean {
    const { state, events, calls, options } = this.#o;
    const acc = state.epoch.state;
    const overBudget = (event: string, latencyMs: number, budgetMs: number): void =>
      events.event(event, TelemetryLevel.WARNING, { latency_ms: latencyMs.toFixed(2), budget_ms: budgetMs });
    // Observed budgets (core.latencyBudgets: observe) are reported and fail nothing.
    const enforce = options.latencyBudgets === 'enforce';
    const epochOver = acc.hookMsSum > options.epochBudgetMs;
    const hookOver = acc.maxHookMs > options.hookBudgetMs;
    let reason = '';
    if (!this.#breaker.allow()) {
      reason = EmergencyReason.BREAKER_OPEN;
    } else if (enforce && epochOver) {
      reason = EmergencyReason.EPOCH_BUDGET;
      overBudget(TolariaEvent.EPOCH_BUDGET, acc.hookMsSum, options.epochBudgetMs);
    } else if (acc.failureReason !== '') {
      reason = acc.failureReason;
    } else if (enforce && hookOver) {
      reason = EmergencyReason.HOOK_BUDGET;
      overBudget(TolariaEvent.HOOK_BUDGET, acc.maxHookMs, options.hookBudgetMs);
    }
    if (!enforce && epochOver) overBudget(TolariaEvent.EPOCH_BUDGET, acc.hookMsSum, options.epochBudgetMs);
    if (!enforce && hookOver) overBudget(TolariaEvent.HOOK_BUDGET, acc.maxHookMs, options.hookBudgetMs);
    const counters = state.counters;
    if (reason === '') {
      this.#breaker.recordSuccess();
      counters.failedEpochStreak = 0;
      this.#emergency?.reset();
      calls.clearConservative(epoch);
      return false;
    }
    // Keep the epoch's reason for the report even when it came from the breaker or a budget.
    state.epoch.fail(reason);
    counters.epochsFailed += 1;
    counters.failedEpochStreak += 1;
    const openedBefore = this.#breaker.snapshot().openedTotal;
    this.#breaker.recordFailure(reason);
    if (this.#breaker.snapshot().openedTotal > openedBefore) {
      events.event(TolariaEvent.BREAKER_OPENED, TelemetryLevel.WARNING, { failures: this.#breaker.snapshot().failureCount });
    }
    events.event(TolariaEvent.EPOCH_FAILED, TelemetryLevel.WARNING, { epoch, reason });
    calls.enterConservative(reason);
    const level = reason === EmergencyReason.BREAKER_OPEN ? EmergencyLevel.CONSERVATIVE : EmergencyLevel.ELEVATED;
    this.escalate(level, reason as EmergencyReason);
    if (this.#emergency !== undefined && counters.failedEpochStreak >= (options.emergency?.failedEpochsToHalt ?? Infinity)) {
      this.escalate(EmergencyLevel.HALT, EmergencyReason.FAILED_EPOCHS_STREAK, { streak: counters.failedEpochStreak });
      return true;
    }
    return false;
  }

  /** Raises the emergency level (when the protocol is on); the event's level follows it. */
  escalate(level: EmergencyLevel, reason: EmergencyReason, attributes: Record<string, string | number> = {}): void {
    const emergency = this.#emergency;
    if (emergency === undefined) return;
    const { state, events } = this.#o;
    const result = emergency.escalate(level, reason, { epoch: state.cursor.epoch, globalStep: state.globalStep });
    const eventLevel =
      level >= EmergencyLevel.HALT
        ? TelemetryLevel.CRITICAL
        : level >= EmergencyLevel.CONSERVATIVE
          ? TelemetryLevel.ERROR
          : TelemetryLevel.WARNING;
    events.event(level === EmergencyLevel.HALT ? TolariaEvent.EMERGENCY_HALT : TolariaEvent.EMERGENCY_ESCALATED, eventLevel, {
      level: EmergencyLevel[level] ?? String(level),
      reason,
      dispatched: result.dispatched,
      ...attributes,
    });
  }

  /** Emergency metrics (with the protocol on). */
  metrics(): MetricInput[] {
    const stats = this.#emergency?.stats();
    if (stats === undefined) return [];
    return [
      metricOf(TolariaMetric.EMERGENCY_LEVEL, stats.level),
      metricOf(TolariaMetric.EMERGENCY_BROADCASTS_TOTAL, stats.broadcastsTotal),
      metricOf(TolariaMetric.EMERGENCY_HALTS_TOTAL, stats.haltsTotal),
      metricOf(TolariaMetric.EMERGENCY_HALT, stats.halted ? 1 : 0),
    ];
  }
}
