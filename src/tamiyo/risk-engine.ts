/**
 * Tamiyo's risk engine (reference prototype-tamiyo-simic §10): every proposal passes the
 * ordered rules of `risk-rules/register-all.ts` before it becomes a command; the engine
 * holds the state those rules share — conservative mode (§10.5) and the inference breaker
 * (§10.2) — and returns the shaped decision with its reason, events and metrics. The
 * departures from the reference are listed in docs/architecture.md (Tamiyo).
 */
import {
  CircuitBreaker,
  optionChecks,
  systemClock,
  type CircuitBreakerSnapshot,
  type CircuitBreakerStateChange,
  type Clock,
  type EventInput,
  type MetricInput,
  type OptionChecks,
} from '../core/index.js';
import { CircuitBreakerState, HandlingClass, HazardBand, type RiskReason, TelemetryLevel } from '../leyline/index.js';
import { DECISION_KINDS, DecisionKind, type ProposedDecision } from './decision.js';
import { TamiyoEvent, TamiyoMetric } from './names.js';
import { RISK_RULES } from './risk-rules/register-all.js';
import {
  enumLabel,
  RISK_THRESHOLD_DEFAULTS,
  RiskStep,
  type BlueprintRiskInfo,
  type RiskInputs,
  type RiskRule,
  type RiskRuleContext,
  type RiskThresholds,
} from './risk-rules/rule.js';

/** The engine's answer for one step. */
export interface RiskVerdict {
  /** The policy's proposal, unchanged. */
  readonly proposal: ProposedDecision;
  /** The decision to carry out: the proposal, or a `wait`/`pause` downgrade of it. */
  readonly decision: ProposedDecision;
  /** Why the decision was shaped; UNSPECIFIED when nothing fired and the proposal stands. */
  readonly reason: RiskReason;
  /** Conservative mode after this step. */
  readonly conservativeMode: boolean;
  /** Health of the inference breaker in [0, 1] (RiskMetadata.breaker_confidence); see {@link breakerConfidence}. */
  readonly breakerConfidence: number;
  /** Events in rule order (reference §11.2 names and levels). */
  readonly events: readonly EventInput[];
  readonly metrics: readonly MetricInput[];
}

/** Options of {@link RiskEngine}. */
export interface RiskEngineOptions {
  /**
   * Monotonic time of the breaker's cooldown.
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * Start in conservative mode (settings `tamiyo.conservativeMode`, env
   * `ESPER_TAMIYO_CONSERVATIVE_MODE`, resolved by the caller).
   * @default false
   */
  readonly startConservative?: boolean;
  /**
   * Consecutive clean steps (no timeout, breaker closed, no loss spike or warning, no
   * conservative trigger) that end conservative mode. Integer ≥ 1.
   * @default 3
   */
  readonly exitAfterCleanSteps?: number;
  /**
   * Consecutive failures that open the breaker. Integer ≥ 1.
   * @default 3
   */
  readonly breakerFailureThreshold?: number;
  /**
   * How long an open breaker stays open, in milliseconds. Finite, ≥ 0.
   * @default 100
   */
  readonly breakerCooldownMs?: number;
  /** Inference budget in ms, reported as `budget_ms` on `timeout_inference`. @default unset */
  readonly inferenceBudgetMs?: number;
  /**
   * `enforce`: a slow inference pauses, latencies and CPU load pause or hold growth.
   * `observe`: they are reported only, so decisions do not depend on machine load
   * (settings `core.latencyBudgets`). @default 'enforce'
   */
  readonly latencyBudgets?: LatencyBudgets;
  /** Overrides of individual rule thresholds; each finite and ≥ 0. */
  readonly thresholds?: Partial<RiskThresholds>;
  /** The rule table. @default RISK_RULES (register-all.ts) */
  readonly rules?: readonly RiskRule[];
}

/** Whether wall-clock measurements may change decisions (settings `core.latencyBudgets`). */
export type LatencyBudgets = 'enforce' | 'observe';

/** {@link RiskEngineOptions} after defaults and validation. */
export interface ResolvedRiskEngineOptions {
  readonly clock: Clock;
  readonly startConservative: boolean;
  readonly exitAfterCleanSteps: number;
  readonly breakerFailureThreshold: number;
  readonly breakerCooldownMs: number;
  readonly inferenceBudgetMs: number | undefined;
  readonly latencyBudgets: LatencyBudgets;
  readonly thresholds: RiskThresholds;
  readonly rules: readonly RiskRule[];
}

/** Defaults of {@link RiskEngineOptions} (reference §9). */
export const RISK_ENGINE_DEFAULTS = Object.freeze({
  startConservative: false,
  exitAfterCleanSteps: 3,
  breakerFailureThreshold: 3,
  breakerCooldownMs: 100,
});

/** Validates `options` and fills in defaults; throws `INVALID_ARGUMENT` naming the field. */
export function resolveRiskEngineOptions(options: RiskEngineOptions = {}): ResolvedRiskEngineOptions {
  const resolved: ResolvedRiskEngineOptions = {
    clock: options.clock ?? systemClock,
    startConservative: options.startConservative ?? RISK_ENGINE_DEFAULTS.startConservative,
    exitAfterCleanSteps: options.exitAfterCleanSteps ?? RISK_ENGINE_DEFAULTS.exitAfterCleanSteps,
    breakerFailureThreshold: options.breakerFailureThreshold ?? RISK_ENGINE_DEFAULTS.breakerFailureThreshold,
    breakerCooldownMs: options.breakerCooldownMs ?? RISK_ENGINE_DEFAULTS.breakerCooldownMs,
    inferenceBudgetMs: options.inferenceBudgetMs,
    latencyBudgets: options.latencyBudgets ?? 'enforce',
    thresholds: Object.freeze({ ...RISK_THRESHOLD_DEFAULTS, ...options.thresholds }),
    rules: options.rules ?? RISK_RULES,
  };
  const check = optionChecks('RiskEngineOptions');
  for (const field of ['exitAfterCleanSteps', 'breakerFailureThreshold'] as const) check.integer(field, resolved[field], { min: 1 });
  check.nonNegative('breakerCooldownMs', resolved.breakerCooldownMs);
  check.oneOf('latencyBudgets', resolved.latencyBudgets, ['enforce', 'observe']);
  if (resolved.inferenceBudgetMs !== undefined) check.nonNegative('inferenceBudgetMs', resolved.inferenceBudgetMs);
  for (const [name, value] of Object.entries(resolved.thresholds)) check.nonNegative(`thresholds.${name}`, value);
  return resolved;
}

/** A point-in-time view of the engine, safe to log. */
export interface RiskEngineSnapshot {
  readonly conservativeMode: boolean;
  /** Clean steps counted towards leaving conservative mode. */
  readonly cleanSteps: number;
  readonly exitAfterCleanSteps: number;
  /** Steps evaluated since construction. */
  readonly steps: number;
  readonly breakerConfidence: number;
  readonly inferenceBreaker: CircuitBreakerSnapshot;
}

/** Which breaker an event is about (`component` attribute of `breaker_event`). */
export const BreakerComponent = { INFERENCE: 'inference' } as const;

/** `action` attribute of `breaker_event` (reference §10.2). */
export const BreakerAction = { COUNT: 'count', OPEN: 'open', CLOSE: 'close' } as const;

/** Union of {@link BreakerAction} values. */
export type BreakerAction = (typeof BreakerAction)[keyof typeof BreakerAction];

/** `reason` attribute of `conservative_exited`. */
export const CONSERVATIVE_EXIT_REASON = 'stabilised';

/**
 * Confidence of a breaker: 0 when OPEN, 0.5 when HALF_OPEN, and when CLOSED
 * 1 − failures / threshold.
 */
export function breakerConfidence(snapshot: CircuitBreakerSnapshot, failureThreshold: number): number {
  switch (snapshot.state) {
    case CircuitBreakerState.CIRCUIT_STATE_OPEN:
      return 0;
    case CircuitBreakerState.CIRCUIT_STATE_HALF_OPEN:
      return 0.5;
    default:
      return 1 - Math.min(snapshot.failureCount, failureThreshold) / failureThreshold;
  }
}

/**
 * The risk engine of one Tamiyo instance (one training run). Stateful only through
 * conservative mode and its breaker; evaluate steps in order, one at a time.
 *
 * Conservative mode exits only after `exitAfterCleanSteps` consecutive clean steps, never
 * in the step that entered it (reference §17.2 fixed).
 */
export class RiskEngine {
  readonly #options: ResolvedRiskEngineOptions;
  readonly #inference: CircuitBreaker;
  #conservative: boolean;
  #cleanSteps = 0;
  #steps = 0;
  /** Events of the step being evaluated; breaker transitions land here. */
  #stepEvents: EventInput[] | undefined;
  readonly #context: RiskRuleContext;

  constructor(options: RiskEngineOptions = {}) {
    this.#options = resolveRiskEngineOptions(options);
    this.#conservative = this.#options.startConservative;
    this.#inference = new CircuitBreaker({
      name: `tamiyo.${BreakerComponent.INFERENCE}`,
      failureThreshold: this.#options.breakerFailureThreshold,
      openTimeoutMs: this.#options.breakerCooldownMs,
      clock: this.#options.clock,
      onStateChange: (change) => this.#onBreakerChange(change),
    });
    this.#context = {
      thresholds: this.#options.thresholds,
      inferenceBudgetMs: this.#options.inferenceBudgetMs,
      enforcesLatency: this.#options.latencyBudgets === 'enforce',
      isConservative: () => this.#conservative,
      enterConservative: (step, trigger) => this.#enterConservative(step, trigger),
      recordInference: (step, failureReason) => this.#recordInference(step, failureReason),
    };
  }

  /** The resolved options (for logging the configuration once at start). */
  get options(): ResolvedRiskEngineOptions {
    return this.#options;
  }

  /** Whether conservative mode is on. */
  get conservativeMode(): boolean {
    return this.#conservative;
  }

  /** A copy of the engine's state. */
  snapshot(): RiskEngineSnapshot {
    return {
      conservativeMode: this.#conservative,
      cleanSteps: this.#cleanSteps,
      exitAfterCleanSteps: this.#options.exitAfterCleanSteps,
      steps: this.#steps,
      breakerConfidence: this.#breakerConfidence(),
      inferenceBreaker: this.#inference.snapshot(),
    };
  }

  /**
   * Shapes one proposal. Throws `INVALID_ARGUMENT` (before touching any state) when the
   * inputs are malformed: a non-finite or out-of-range score, a germinate without its
   * blueprint's metadata, or metadata for another blueprint.
   */
  evaluate(proposal: ProposedDecision, inputs: RiskInputs): RiskVerdict {
    validate(proposal, inputs);
    const step = new RiskStep(proposal, inputs.packet);
    this.#stepEvents = step.events;
    try {
      for (const rule of this.#options.rules) rule.apply(step, inputs, this.#context);
      const clean =
        !inputs.timedOut && !step.unclean && !step.triggered && this.#inference.state === CircuitBreakerState.CIRCUIT_STATE_CLOSED;
      this.#advanceHysteresis(step, clean);
      this.#steps += 1;
      const confidence = this.#breakerConfidence();
      return {
        proposal,
        decision: step.decision,
        reason: step.reason,
        conservativeMode: this.#conservative,
        breakerConfidence: confidence,
        events: step.events,
        metrics: this.#metrics(inputs.blueprint, inputs.timedOut, confidence),
      };
    } finally {
      this.#stepEvents = undefined;
    }
  }

  #enterConservative(step: RiskStep, trigger: string): void {
    step.triggered = true;
    this.#cleanSteps = 0;
    if (this.#conservative) return;
    this.#conservative = true;
    step.event(TamiyoEvent.CONSERVATIVE_ENTERED, TelemetryLevel.WARNING, { reason: trigger });
  }

  #advanceHysteresis(step: RiskStep, clean: boolean): void {
    if (!this.#conservative) return;
    if (!clean) {
      this.#cleanSteps = 0;
      return;
    }
    this.#cleanSteps += 1;
    if (this.#cleanSteps < this.#options.exitAfterCleanSteps) return;
    this.#conservative = false;
    step.event(TamiyoEvent.CONSERVATIVE_EXITED, TelemetryLevel.INFO, {
      reason: CONSERVATIVE_EXIT_REASON,
      clean_steps: this.#cleanSteps,
    });
    this.#cleanSteps = 0;
  }

  /**
   * Counts this step as one call through the breaker: `allow()` first, so an open breaker
   * whose cooldown elapsed half-opens and this step's outcome is its probe.
   */
  #recordInference(step: RiskStep, failureReason: string | undefined): void {
    const breaker = this.#inference;
    const admitted = breaker.allow();
    if (failureReason === undefined) {
      if (admitted) breaker.recordSuccess();
      return;
    }
    const openedBefore = breaker.snapshot().openedTotal;
    breaker.recordFailure(failureReason);
    if (breaker.snapshot().openedTotal === openedBefore) {
      step.event(TamiyoEvent.BREAKER_EVENT, TelemetryLevel.WARNING, {
        component: BreakerComponent.INFERENCE,
        reason: failureReason,
        failures: breaker.snapshot().failureCount,
        action: BreakerAction.COUNT,
      });
    }
  }

  #onBreakerChange(change: CircuitBreakerStateChange): void {
    const events = this.#stepEvents;
    if (events === undefined) return;
    const component = BreakerComponent.INFERENCE;
    if (change.to === CircuitBreakerState.CIRCUIT_STATE_OPEN) {
      events.push({
        description: TamiyoEvent.BREAKER_EVENT,
        level: TelemetryLevel.CRITICAL,
        attributes: {
          component,
          reason: change.snapshot.lastFailureReason ?? change.reason,
          failures: change.snapshot.failureCount,
          action: BreakerAction.OPEN,
        },
      });
    } else if (change.to === CircuitBreakerState.CIRCUIT_STATE_CLOSED) {
      events.push({
        description: TamiyoEvent.BREAKER_EVENT,
        level: TelemetryLevel.INFO,
        attributes: { component, action: BreakerAction.CLOSE },
      });
    }
  }

  #breakerConfidence(): number {
    return breakerConfidence(this.#inference.snapshot(), this.#options.breakerFailureThreshold);
  }

  #metrics(blueprint: BlueprintRiskInfo | undefined, timedOut: boolean, confidence: number): MetricInput[] {
    const inference = this.#inference.snapshot();
    const metrics: MetricInput[] = [
      { name: TamiyoMetric.RISK_CONSERVATIVE_MODE, value: this.#conservative ? 1 : 0, unit: 'bool' },
      { name: TamiyoMetric.RISK_CLEAN_STEPS, value: this.#cleanSteps, unit: 'count' },
      { name: TamiyoMetric.RISK_BREAKER_CONFIDENCE, value: confidence, unit: 'ratio' },
      { name: TamiyoMetric.BREAKER_INFERENCE_STATE, value: inference.state, unit: 'state' },
      { name: TamiyoMetric.BREAKER_INFERENCE_FAILURES, value: inference.failureCount, unit: 'count' },
    ];
    if (blueprint === undefined || timedOut) return metrics;
    const attributes = { blueprint_id: blueprint.descriptor.blueprintId };
    metrics.push({ name: TamiyoMetric.BLUEPRINT_RISK, value: blueprint.risk, unit: 'score', attributes });
    const bsds = blueprint.bsds;
    if (bsds === undefined) return metrics;
    metrics.push(
      { name: TamiyoMetric.BSDS_RISK, value: bsds.riskScore, unit: 'score', attributes },
      {
        name: TamiyoMetric.BSDS_HAZARD_BAND,
        value: bsds.hazardBand,
        unit: 'enum',
        attributes: { ...attributes, band: enumLabel(HazardBand, bsds.hazardBand) },
      },
      {
        name: TamiyoMetric.BSDS_HANDLING_CLASS,
        value: bsds.handlingClass,
        unit: 'enum',
        attributes: { ...attributes, handling: enumLabel(HandlingClass, bsds.handlingClass) },
      },
      { name: TamiyoMetric.BSDS_HAZARD_CRITICAL_SIGNAL, value: bsds.hazardBand === HazardBand.CRITICAL ? 1 : 0, unit: 'bool', attributes },
      { name: TamiyoMetric.BSDS_HAZARD_HIGH_SIGNAL, value: bsds.hazardBand === HazardBand.HIGH ? 1 : 0, unit: 'bool', attributes },
    );
    return metrics;
  }
}

/** Checks of what one evaluation is given (INVALID_ARGUMENT naming the field). */
const inputCheck: OptionChecks = optionChecks('RiskEngine.evaluate');

function validate(proposal: ProposedDecision, inputs: RiskInputs): void {
  if (!DECISION_KINDS.has(proposal.kind)) inputCheck.fail('proposal.kind', 'a known decision kind', proposal.kind);
  const unit = { min: 0, max: 1 };
  if (proposal.policyRiskScore !== undefined) inputCheck.number('proposal.policyRiskScore', proposal.policyRiskScore, unit);
  if (proposal.paramDelta !== undefined) inputCheck.number('proposal.paramDelta', proposal.paramDelta);
  inputCheck.integer('inputs.isolationViolations', inputs.isolationViolations, { min: 0 });
  const coverage = inputs.coverage;
  if (coverage !== undefined) {
    inputCheck.number('inputs.coverage.average', coverage.average, unit);
    inputCheck.oneOf('inputs.coverage.level', coverage.level, ['ok', 'degraded', 'critical']);
  }
  const blueprint = inputs.blueprint;
  if (blueprint !== undefined) inputCheck.number('inputs.blueprint.risk', blueprint.risk, unit);
  if (proposal.kind !== DecisionKind.GERMINATE || inputs.timedOut) return;
  if (blueprint === undefined)
    inputCheck.fail('inputs.blueprint', `the metadata of the germinated blueprint ${proposal.blueprintId}`, blueprint);
  if (blueprint.descriptor.blueprintId !== proposal.blueprintId) {
    inputCheck.fail(
      'inputs.blueprint.descriptor.blueprintId',
      `the germinated blueprint ${proposal.blueprintId}`,
      blueprint.descriptor.blueprintId,
    );
  }
}
