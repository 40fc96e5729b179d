/**
 * Tamiyo's risk engine (reference prototype-tamiyo-simic §10). Every decision a policy
 * proposes passes through {@link RiskEngine.evaluate} before it becomes a signed command:
 * the engine applies the ordered rules of §10.4 to the step's typed TrainingMetrics,
 * blueprint metadata and safety data sheet, drives the inference and metadata circuit
 * breakers (§10.2), keeps conservative mode (§10.5) and returns the shaped decision with
 * the reason, events and metrics that describe it.
 *
 * Departures from the prototype, each deliberate:
 * - Reasons are `RiskReason` values (spec 01), not annotation strings. With nothing fired
 *   the reason stays UNSPECIFIED (the prototype wrote "policy").
 * - §10.4 "reason := X" overwrote, so the last overriding rule won and e.g. `hook_budget`
 *   could mask a `bp_quarantine` or a timeout. Here the first overriding rule in table order
 *   wins (the table is ordered by severity); "reason ||= X" still only fills an empty reason.
 *   An inference timeout is the first overriding reason of its step.
 * - "→OPT" (§10.4) downgrades a germinate to `wait`: the engine does not invent an
 *   optimizer command the policy did not choose. "SEED" conditions mean "the decision is
 *   still a germinate"; a cull is not growth and is never downgraded to `wait`.
 * - A metadata (Urza) timeout pauses the step: a blueprint whose metadata was not read
 *   cannot be checked for quarantine (the prototype only set the reason).
 * - An inference timeout discards the proposal (§10.1, §17.6): the policy's risk score and
 *   blueprint are not evaluated, the decision is a pause.
 * - Conservative mode exits only after `exitAfterCleanSteps` consecutive clean steps, never
 *   in the step that entered it (§17.2 quirk fixed). While it is on, germinate and
 *   optimizer proposals become pauses; culls, waits, pauses and breaker commands pass.
 * - Breakers are core's {@link CircuitBreaker}: a success in CLOSED clears the failure count
 *   (the prototype decremented it), and an OPEN breaker closes through one HALF_OPEN probe.
 * - Critical degraded inputs take effect (§17.10): reason DEGRADED_INPUTS and no growth;
 *   the 0.10–0.30 band emits WARNING, not INFO.
 * - `optimizer_hint` (row 16) needs the trainer to report its optimizer
 *   (`optimizer_family` set): proto3 floats have no presence, so an unset lr reads 0.
 * - A NaN loss delta counts as a loss spike (the loss diverged).
 */
import { create } from '@bufbuild/protobuf';
import {
  CircuitBreaker,
  ErrorCode,
  EsperError,
  systemClock,
  type CircuitBreakerSnapshot,
  type CircuitBreakerStateChange,
  type Clock,
  type EventInput,
  type MetricInput,
} from '../core/index.js';
import {
  BlueprintTier,
  CircuitBreakerState,
  HandlingClass,
  HazardBand,
  OptimizerFamily,
  Provenance,
  RiskReason,
  TelemetryLevel,
  TrainingMetricsSchema,
  type BlueprintDescriptor,
  type BSDS,
  type SystemStatePacket,
  type TrainingMetrics,
} from '../leyline/index.js';
import { TamiyoEvent, TamiyoMetric } from './names.js';

/** What a policy can propose. */
export const DecisionKind = {
  WAIT: 'wait',
  GERMINATE: 'germinate',
  CULL: 'cull',
  OPTIMIZER: 'optimizer',
  PAUSE: 'pause',
  BREAKER_OPEN: 'breaker_open',
  BREAKER_CLOSE: 'breaker_close',
} as const;

/** Union of {@link DecisionKind} values. */
export type DecisionKind = (typeof DecisionKind)[keyof typeof DecisionKind];

const DECISION_KINDS: ReadonlySet<string> = new Set(Object.values(DecisionKind));

/** What a policy wants, before risk. */
export interface ProposedDecision {
  readonly kind: DecisionKind;
  readonly seedId?: string;
  readonly siteId?: string;
  /** Required for `germinate`. */
  readonly blueprintId?: string;
  /** From the policy's risk head, in [0, 1]. */
  readonly policyRiskScore?: number;
  /** Optimizer learning-rate delta. */
  readonly paramDelta?: number;
}

/** Blueprint metadata resolved for the step (Urza record + Urabrask safety data sheet). */
export interface BlueprintRiskInfo {
  readonly descriptor: BlueprintDescriptor;
  readonly bsds?: BSDS;
  /** The blueprint is quarantined in the catalog. */
  readonly quarantined: boolean;
  /** Effective risk in [0, 1]: the BSDS risk score when a sheet exists, else the descriptor's. */
  readonly risk: number;
}

/** Feature coverage of the policy's input graph. */
export interface CoverageInfo {
  /** Mean coverage, in [0, 1]. */
  readonly average: number;
  readonly level: 'ok' | 'degraded' | 'critical';
}

/** Everything the engine reads about one step. */
export interface RiskInputs {
  /** Typed TrainingMetrics in `packet.metrics`; absent metrics read as zero (not reported). */
  readonly packet: SystemStatePacket;
  /** Policy inference missed its budget; the proposal is discarded. */
  readonly timedOut: boolean;
  /** The Urza metadata lookup missed its budget. */
  readonly metadataTimedOut: boolean;
  /** Required for a germinate unless a timeout happened. */
  readonly blueprint?: BlueprintRiskInfo;
  readonly coverage?: CoverageInfo;
  /** Isolation violations across Kasmina's seeds (integer ≥ 0). */
  readonly isolationViolations: number;
}

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
  /** Health of both breakers in [0, 1] (RiskMetadata.breaker_confidence); see {@link breakerConfidence}. */
  readonly breakerConfidence: number;
  /** Events in rule order (reference §11.2 names and levels). */
  readonly events: readonly EventInput[];
  readonly metrics: readonly MetricInput[];
}

/** Rule thresholds (reference §9 RiskConfig and §10.4). */
export interface RiskThresholds {
  /** Policy risk score that pauses and enters conservative mode. @default 0.98 */
  readonly policyRiskCritical: number;
  /** Policy risk score that stops a germinate. @default 0.85 */
  readonly policyRiskElevated: number;
  /** Blueprint risk treated as quarantine. @default 0.8 */
  readonly blueprintQuarantineRisk: number;
  /** Blueprint risk that stops a germinate. @default 0.5 */
  readonly blueprintElevatedRisk: number;
  /** Loss delta that is a spike (pause, conservative mode). @default 0.15 */
  readonly lossSpike: number;
  /**
   * A loss delta counts as a spike or a warning only when it also exceeds this many
   * standard deviations of the recent losses (`TrainingMetrics.loss_volatility`, when > 0).
   * @default 3
   */
  readonly lossSpikeSigmas: number;
  /** Loss delta that stops a germinate (half the spike). @default 0.075 */
  readonly lossWarning: number;
  /** Loss volatility that stops a germinate (0.75 × the spike). @default 0.1125 */
  readonly lossVolatilityHigh: number;
  /** Hook latency budget, ms. @default 50 */
  readonly hookBudgetMs: number;
  /** Step latency that pauses, ms. @default 120 */
  readonly stepLatencyHighMs: number;
  /** Kasmina apply latency that stops a germinate, ms. @default 30 */
  readonly kasminaApplySlowMs: number;
  /** Kasmina finalize latency that stops a germinate, ms. @default 30 */
  readonly kasminaFinalizeSlowMs: number;
  /** Gradient variance that stops a germinate. @default 1 */
  readonly gradVarianceHigh: number;
  /** Gradient conflict rate that stops a germinate. @default 0.5 */
  readonly gradConflictHigh: number;
  /** GPU utilisation (percent) that, with little free memory, is device pressure. @default 95 */
  readonly gpuUtilHighPercent: number;
  /** Free GPU memory (GB) at or below which high utilisation is device pressure. @default 0.2 */
  readonly gpuMemFreeLowGb: number;
  /** CPU utilisation (percent) that stops a germinate. @default 95 */
  readonly cpuUtilHighPercent: number;
}

/** Defaults of {@link RiskThresholds}. */
export const RISK_THRESHOLD_DEFAULTS: RiskThresholds = Object.freeze({
  policyRiskCritical: 0.98,
  policyRiskElevated: 0.85,
  blueprintQuarantineRisk: 0.8,
  blueprintElevatedRisk: 0.5,
  lossSpike: 0.15,
  lossSpikeSigmas: 3,
  lossWarning: 0.075,
  lossVolatilityHigh: 0.1125,
  hookBudgetMs: 50,
  stepLatencyHighMs: 120,
  kasminaApplySlowMs: 30,
  kasminaFinalizeSlowMs: 30,
  gradVarianceHigh: 1,
  gradConflictHigh: 0.5,
  gpuUtilHighPercent: 95,
  gpuMemFreeLowGb: 0.2,
  cpuUtilHighPercent: 95,
});

/** Options of {@link RiskEngine}. */
export interface RiskEngineOptions {
  /**
   * Monotonic time of the breakers' cooldowns.
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
   * Consecutive clean steps (no timeout, both breakers closed, no loss spike or warning,
   * no conservative trigger) that end conservative mode. Integer ≥ 1.
   * @default 3
   */
  readonly exitAfterCleanSteps?: number;
  /**
   * Consecutive failures that open a breaker. Integer ≥ 1.
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
  /** Metadata budget in ms, reported as `budget_ms` on `timeout_urza`. @default unset */
  readonly metadataBudgetMs?: number;
  /** Overrides of individual rule thresholds; each finite and ≥ 0. */
  readonly thresholds?: Partial<RiskThresholds>;
}

/** {@link RiskEngineOptions} after defaults and validation. */
export interface ResolvedRiskEngineOptions {
  readonly clock: Clock;
  readonly startConservative: boolean;
  readonly exitAfterCleanSteps: number;
  readonly breakerFailureThreshold: number;
  readonly breakerCooldownMs: number;
  readonly inferenceBudgetMs: number | undefined;
  readonly metadataBudgetMs: number | undefined;
  readonly thresholds: RiskThresholds;
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
    metadataBudgetMs: options.metadataBudgetMs,
    thresholds: Object.freeze({ ...RISK_THRESHOLD_DEFAULTS, ...options.thresholds }),
  };
  for (const field of ['exitAfterCleanSteps', 'breakerFailureThreshold'] as const) {
    if (!Number.isSafeInteger(resolved[field]) || resolved[field] < 1) {
      throw invalid(`RiskEngine option ${field}: expected an integer ≥ 1, got ${resolved[field]}`, field);
    }
  }
  requireNonNegative('breakerCooldownMs', resolved.breakerCooldownMs);
  for (const field of ['inferenceBudgetMs', 'metadataBudgetMs'] as const) {
    const value = resolved[field];
    if (value !== undefined) requireNonNegative(field, value);
  }
  for (const [name, value] of Object.entries(resolved.thresholds)) {
    requireNonNegative(`thresholds.${name}`, value as number);
  }
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
  readonly metadataBreaker: CircuitBreakerSnapshot;
}

/** Which breaker an event is about (`component` attribute of `breaker_event`). */
export const BreakerComponent = { INFERENCE: 'inference', METADATA: 'metadata' } as const;

/** Union of {@link BreakerComponent} values. */
export type BreakerComponent = (typeof BreakerComponent)[keyof typeof BreakerComponent];

/** `action` attribute of `breaker_event` (reference §10.2). */
export const BreakerAction = { COUNT: 'count', OPEN: 'open', CLOSE: 'close' } as const;

/** Union of {@link BreakerAction} values. */
export type BreakerAction = (typeof BreakerAction)[keyof typeof BreakerAction];

/** `reason` attribute of `conservative_exited`. */
export const CONSERVATIVE_EXIT_REASON = 'stabilised';

/**
 * Confidence of one breaker: 0 when OPEN, 0.5 when HALF_OPEN, and when CLOSED
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

const EMPTY_METRICS: TrainingMetrics = create(TrainingMetricsSchema);
const UNSPECIFIED = RiskReason.UNSPECIFIED;

/**
 * The shaping of one decision while the rules run. "override" is the table's `:=` (the
 * first one wins), "fill" its `||=`.
 */
class StepState {
  decision: ProposedDecision;
  reason: RiskReason = UNSPECIFIED;
  #reasonFixed = false;
  readonly events: EventInput[] = [];
  /** A conservative-mode trigger fired this step (so the step is not clean). */
  triggered = false;

  constructor(proposal: ProposedDecision) {
    this.decision = proposal;
  }

  get growing(): boolean {
    return this.decision.kind === DecisionKind.GERMINATE;
  }

  override(reason: RiskReason): void {
    if (this.#reasonFixed) return;
    this.reason = reason;
    this.#reasonFixed = true;
  }

  fill(reason: RiskReason): void {
    if (this.reason === UNSPECIFIED) this.reason = reason;
  }

  pause(): void {
    if (this.decision.kind !== DecisionKind.PAUSE) this.decision = { kind: DecisionKind.PAUSE };
  }

  /** "→OPT": a germinate becomes a wait; anything else is left as it is. */
  holdGrowth(): void {
    if (this.growing) this.decision = { kind: DecisionKind.WAIT };
  }

  event(description: string, level: TelemetryLevel, attributes?: Record<string, string | number>): void {
    this.events.push(attributes === undefined ? { description, level } : { description, level, attributes });
  }
}

/**
 * The risk engine of one Tamiyo instance (one training run). Stateful only through
 * conservative mode and its two breakers; evaluate steps in order, one at a time.
 */
export class RiskEngine {
  readonly #options: ResolvedRiskEngineOptions;
  readonly #inference: CircuitBreaker;
  readonly #metadata: CircuitBreaker;
  #conservative: boolean;
  #cleanSteps = 0;
  #steps = 0;
  /** Events of the step being evaluated; breaker transitions land here. */
  #stepEvents: EventInput[] | undefined;

  constructor(options: RiskEngineOptions = {}) {
    this.#options = resolveRiskEngineOptions(options);
    this.#conservative = this.#options.startConservative;
    this.#inference = this.#breaker(BreakerComponent.INFERENCE);
    this.#metadata = this.#breaker(BreakerComponent.METADATA);
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
      metadataBreaker: this.#metadata.snapshot(),
    };
  }

  /**
   * Shapes one proposal. Throws `INVALID_ARGUMENT` (before touching any state) when the
   * inputs are malformed: a non-finite or out-of-range score, a germinate without its
   * blueprint's metadata, or metadata for another blueprint.
   */
  evaluate(proposal: ProposedDecision, inputs: RiskInputs): RiskVerdict {
    validate(proposal, inputs);
    const t = this.#options.thresholds;
    const m = inputs.packet.metrics ?? EMPTY_METRICS;
    const step = new StepState(proposal);
    this.#stepEvents = step.events;
    try {
      // §10.3: a timed-out inference has no usable proposal.
      if (inputs.timedOut) {
        step.decision = { kind: DecisionKind.PAUSE };
        step.override(RiskReason.TIMEOUT_INFERENCE);
        step.event(TamiyoEvent.TIMEOUT_INFERENCE, TelemetryLevel.WARNING, budget(this.#options.inferenceBudgetMs));
      } else if (proposal.policyRiskScore !== undefined) {
        // Rule 1.
        const score = proposal.policyRiskScore;
        step.event(TamiyoEvent.POLICY_RISK_SIGNAL, TelemetryLevel.INFO, { score: score.toFixed(3) });
        if (score >= t.policyRiskCritical) {
          step.override(RiskReason.POLICY_RISK_CRITICAL);
          step.pause();
          step.event(TamiyoEvent.POLICY_RISK_CRITICAL, TelemetryLevel.CRITICAL, { score: score.toFixed(3) });
          this.#enterConservative(step, TamiyoEvent.POLICY_RISK_CRITICAL);
        } else if (score >= t.policyRiskElevated && step.growing) {
          step.fill(RiskReason.POLICY_RISK_ELEVATED);
          step.holdGrowth();
          step.event(TamiyoEvent.POLICY_RISK_ELEVATED, TelemetryLevel.WARNING, { score: score.toFixed(3) });
        }
      }

      // Rule 2: conservative mode holds growth and optimizer changes.
      if (this.#conservative && !inputs.timedOut && isHeldWhenConservative(step.decision.kind)) {
        step.fill(RiskReason.CONSERVATIVE_MODE);
        step.pause();
        step.event(TamiyoEvent.PAUSE_TRIGGERED, TelemetryLevel.WARNING, { reason: 'conservative_mode' });
      }

      // Rules 3 and 4: breakers.
      if (inputs.timedOut) {
        this.#recordBreaker(this.#inference, BreakerComponent.INFERENCE, TamiyoEvent.TIMEOUT_INFERENCE, step);
        this.#enterConservative(step, TamiyoEvent.TIMEOUT_INFERENCE);
      } else {
        this.#recordBreaker(this.#inference, BreakerComponent.INFERENCE, undefined, step);
      }
      if (inputs.metadataTimedOut) {
        step.event(TamiyoEvent.TIMEOUT_URZA, TelemetryLevel.WARNING, budget(this.#options.metadataBudgetMs));
        this.#recordBreaker(this.#metadata, BreakerComponent.METADATA, TamiyoEvent.TIMEOUT_URZA, step);
        step.fill(RiskReason.TIMEOUT_URZA);
        step.pause();
      } else {
        this.#recordBreaker(this.#metadata, BreakerComponent.METADATA, undefined, step);
      }

      // Rules 5 and 6: the blueprint and its safety data sheet.
      if (inputs.blueprint !== undefined && !inputs.timedOut) {
        this.#blueprintRules(step, inputs.blueprint);
      }

      // Rule 7: loss.
      // Departure from the reference: per-step loss deltas are single batches, whose noise
      // alone crosses 0.15 several times an epoch at batch 64 (in `esper run` that kept
      // re-entering conservative mode and blocked 3 of 5 germinations); a rise within
      // `lossSpikeSigmas` deviations of the recent losses is noise, not a spike.
      const lossDelta = m.lossDelta;
      const noiseFloor = m.lossVolatility > 0 ? t.lossSpikeSigmas * m.lossVolatility : 0;
      const lossSpike = Number.isNaN(lossDelta) || (lossDelta > t.lossSpike && lossDelta > noiseFloor);
      const lossWarning = !lossSpike && lossDelta > t.lossWarning && lossDelta > noiseFloor;
      if (!inputs.timedOut && lossSpike) {
        step.override(RiskReason.LOSS_SPIKE);
        step.pause();
        step.event(TamiyoEvent.LOSS_SPIKE, TelemetryLevel.WARNING, { delta: lossDelta.toFixed(3) });
        this.#enterConservative(step, TamiyoEvent.LOSS_SPIKE);
      } else if (!inputs.timedOut && lossWarning && step.growing) {
        step.fill(RiskReason.LOSS_WARNING);
        step.holdGrowth();
        step.event(TamiyoEvent.LOSS_WARNING, TelemetryLevel.WARNING, { delta: lossDelta.toFixed(3) });
      }

      this.#systemRules(step, m, inputs.isolationViolations);

      // §10.6 degraded inputs.
      if (inputs.coverage !== undefined && inputs.coverage.level !== 'ok') {
        const critical = inputs.coverage.level === 'critical';
        step.event(TamiyoEvent.DEGRADED_INPUTS, critical ? TelemetryLevel.CRITICAL : TelemetryLevel.WARNING, {
          coverage_avg: inputs.coverage.average.toFixed(3),
        });
        if (critical) {
          step.fill(RiskReason.DEGRADED_INPUTS);
          step.holdGrowth();
        }
      }

      // Rule 18.
      if (step.reason === UNSPECIFIED && step.decision.kind === DecisionKind.PAUSE && this.#conservative) {
        step.reason = RiskReason.CONSERVATIVE_MODE;
      }

      // Rule 19 with hysteresis (§17.2 fixed).
      const clean =
        !inputs.timedOut &&
        !inputs.metadataTimedOut &&
        !lossSpike &&
        !lossWarning &&
        !step.triggered &&
        this.#inference.state === CircuitBreakerState.CIRCUIT_STATE_CLOSED &&
        this.#metadata.state === CircuitBreakerState.CIRCUIT_STATE_CLOSED;
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

  #blueprintRules(step: StepState, blueprint: BlueprintRiskInfo): void {
    const t = this.#options.thresholds;
    const { descriptor, bsds, risk } = blueprint;
    // Rule 5.
    if (blueprint.quarantined || descriptor.quarantineOnly || risk >= t.blueprintQuarantineRisk) {
      step.override(RiskReason.BP_QUARANTINE);
      step.pause();
      step.event(TamiyoEvent.BP_QUARANTINE, TelemetryLevel.CRITICAL, {
        tier: `BLUEPRINT_TIER_${enumLabel(BlueprintTier, descriptor.tier)}`,
        risk: risk.toFixed(2),
      });
      this.#enterConservative(step, TamiyoEvent.BP_QUARANTINE);
    } else if (risk >= t.blueprintElevatedRisk && step.growing) {
      step.fill(RiskReason.BLUEPRINT_RISK);
      step.holdGrowth();
      step.event(TamiyoEvent.BLUEPRINT_RISK, TelemetryLevel.WARNING, { risk: risk.toFixed(2) });
    }
    if (bsds === undefined) return;
    // Rule 6.
    const hazard = enumLabel(HazardBand, bsds.hazardBand);
    const handling = enumLabel(HandlingClass, bsds.handlingClass);
    const provenance = enumLabel(Provenance, bsds.provenance);
    step.event(TamiyoEvent.BSDS_PRESENT, TelemetryLevel.INFO, {
      hazard,
      handling,
      risk: bsds.riskScore.toFixed(2),
      provenance,
    });
    if (bsds.handlingClass === HandlingClass.QUARANTINE) {
      step.override(RiskReason.BSDS_HANDLING_QUARANTINE);
      step.pause();
      step.event(TamiyoEvent.BSDS_HANDLING_QUARANTINE, TelemetryLevel.CRITICAL, { handling, provenance });
      this.#enterConservative(step, TamiyoEvent.BSDS_HANDLING_QUARANTINE);
    }
    if (bsds.hazardBand === HazardBand.CRITICAL) {
      step.override(RiskReason.BSDS_HAZARD_CRITICAL);
      step.pause();
      step.event(TamiyoEvent.BSDS_HAZARD_CRITICAL, TelemetryLevel.CRITICAL, { hazard, provenance });
      this.#enterConservative(step, TamiyoEvent.BSDS_HAZARD_CRITICAL);
    } else if (bsds.hazardBand === HazardBand.HIGH) {
      step.event(TamiyoEvent.BSDS_HAZARD_HIGH, TelemetryLevel.WARNING, { hazard, provenance });
      if (step.growing) {
        step.fill(RiskReason.BSDS_HAZARD_HIGH);
        step.holdGrowth();
      }
    }
  }

  /** Rules 8–17: latency, isolation, optimisation health and resource pressure. */
  #systemRules(step: StepState, m: TrainingMetrics, isolationViolations: number): void {
    const t = this.#options.thresholds;
    if (m.hookLatencyMs > t.hookBudgetMs) {
      step.override(RiskReason.HOOK_BUDGET);
      step.pause();
      step.event(TamiyoEvent.HOOK_BUDGET, TelemetryLevel.WARNING, { latency_ms: m.hookLatencyMs.toFixed(2) });
    }
    if (m.stepLatencyMs > t.stepLatencyHighMs) {
      step.override(RiskReason.STEP_LATENCY_HIGH);
      step.pause();
      step.event(TamiyoEvent.STEP_LATENCY_HIGH, TelemetryLevel.WARNING, { latency_ms: m.stepLatencyMs.toFixed(2) });
    }
    if (m.kasminaApplyMs > t.kasminaApplySlowMs) {
      step.event(TamiyoEvent.KASMINA_APPLY_SLOW, TelemetryLevel.WARNING, { latency_ms: m.kasminaApplyMs.toFixed(2) });
      if (step.growing) {
        step.override(RiskReason.KASMINA_APPLY_SLOW);
        step.holdGrowth();
      }
    }
    if (m.kasminaFinalizeMs > t.kasminaFinalizeSlowMs) {
      step.event(TamiyoEvent.KASMINA_FINALIZE_SLOW, TelemetryLevel.WARNING, {
        latency_ms: m.kasminaFinalizeMs.toFixed(2),
      });
      if (step.growing) {
        step.override(RiskReason.KASMINA_FINALIZE_SLOW);
        step.holdGrowth();
      }
    }
    if (isolationViolations > 0) {
      step.fill(RiskReason.ISOLATION_VIOLATION);
      step.pause();
      step.event(TamiyoEvent.ISOLATION_VIOLATIONS, TelemetryLevel.WARNING, { violations: isolationViolations });
    }
    if (m.lossVolatility > t.lossVolatilityHigh) {
      step.event(TamiyoEvent.LOSS_VOLATILITY_HIGH, TelemetryLevel.WARNING, {
        volatility: m.lossVolatility.toFixed(3),
      });
      if (step.growing) {
        step.fill(RiskReason.LOSS_VOLATILITY_HIGH);
        step.holdGrowth();
      }
    }
    if (m.gradVar > t.gradVarianceHigh && step.growing) {
      step.fill(RiskReason.GRAD_VARIANCE_HIGH);
      step.holdGrowth();
      step.event(TamiyoEvent.GRAD_VARIANCE_HIGH, TelemetryLevel.WARNING, { var: m.gradVar.toFixed(3) });
    }
    if (m.gradConflictRate > t.gradConflictHigh && step.growing) {
      step.fill(RiskReason.GRAD_CONFLICT_HIGH);
      step.holdGrowth();
      step.event(TamiyoEvent.GRAD_CONFLICT_HIGH, TelemetryLevel.WARNING, { rate: m.gradConflictRate.toFixed(3) });
    }
    if (m.optimizerFamily !== OptimizerFamily.UNSPECIFIED && m.optimizerLr <= 0 && m.lossDelta > t.lossWarning) {
      step.event(TamiyoEvent.OPTIMIZER_HINT, TelemetryLevel.WARNING, {
        lr: m.optimizerLr.toFixed(6),
        loss_delta: m.lossDelta.toFixed(3),
      });
      if (step.growing) {
        step.override(RiskReason.OPTIMIZER_HINT);
        step.holdGrowth();
      }
    }
    if (m.gpuUtilPercent >= t.gpuUtilHighPercent && m.gpuMemFreeGb <= t.gpuMemFreeLowGb) {
      step.event(TamiyoEvent.DEVICE_PRESSURE_HIGH, TelemetryLevel.WARNING, {
        gpu_util: m.gpuUtilPercent.toFixed(1),
        gpu_mem_free_gb: m.gpuMemFreeGb.toFixed(2),
      });
      if (step.growing) {
        step.fill(RiskReason.DEVICE_PRESSURE);
        step.pause();
      }
    } else if (m.cpuUtilPercent >= t.cpuUtilHighPercent && step.growing) {
      step.fill(RiskReason.CPU_PRESSURE);
      step.holdGrowth();
      step.event(TamiyoEvent.CPU_PRESSURE_HIGH, TelemetryLevel.WARNING, { cpu_util: m.cpuUtilPercent.toFixed(1) });
    }
  }

  #enterConservative(step: StepState, trigger: string): void {
    step.triggered = true;
    this.#cleanSteps = 0;
    if (this.#conservative) return;
    this.#conservative = true;
    step.event(TamiyoEvent.CONSERVATIVE_ENTERED, TelemetryLevel.WARNING, { reason: trigger });
  }

  #advanceHysteresis(step: StepState, clean: boolean): void {
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
   * Counts this step as one call through `breaker`: `allow()` first, so an open breaker
   * whose cooldown elapsed half-opens and this step's outcome is its probe.
   */
  #recordBreaker(breaker: CircuitBreaker, component: BreakerComponent, failureReason: string | undefined, step: StepState): void {
    const admitted = breaker.allow();
    if (failureReason === undefined) {
      if (admitted) breaker.recordSuccess();
      return;
    }
    const openedBefore = breaker.snapshot().openedTotal;
    breaker.recordFailure(failureReason);
    if (breaker.snapshot().openedTotal === openedBefore) {
      step.event(TamiyoEvent.BREAKER_EVENT, TelemetryLevel.WARNING, {
        component,
        reason: failureReason,
        failures: breaker.snapshot().failureCount,
        action: BreakerAction.COUNT,
      });
    }
  }

  #onBreakerChange(component: BreakerComponent, change: CircuitBreakerStateChange): void {
    const events = this.#stepEvents;
    if (events === undefined) return;
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

  #breaker(component: BreakerComponent): CircuitBreaker {
    return new CircuitBreaker({
      name: `tamiyo.${component}`,
      failureThreshold: this.#options.breakerFailureThreshold,
      openTimeoutMs: this.#options.breakerCooldownMs,
      clock: this.#options.clock,
      onStateChange: (change) => this.#onBreakerChange(component, change),
    });
  }

  #breakerConfidence(): number {
    const threshold = this.#options.breakerFailureThreshold;
    return Math.min(breakerConfidence(this.#inference.snapshot(), threshold), breakerConfidence(this.#metadata.snapshot(), threshold));
  }

  #metrics(blueprint: BlueprintRiskInfo | undefined, timedOut: boolean, confidence: number): MetricInput[] {
    const inference = this.#inference.snapshot();
    const metadata = this.#metadata.snapshot();
    const metrics: MetricInput[] = [
      { name: TamiyoMetric.RISK_CONSERVATIVE_MODE, value: this.#conservative ? 1 : 0, unit: 'bool' },
      { name: TamiyoMetric.RISK_CLEAN_STEPS, value: this.#cleanSteps, unit: 'count' },
      { name: TamiyoMetric.RISK_BREAKER_CONFIDENCE, value: confidence, unit: 'ratio' },
      { name: TamiyoMetric.BREAKER_INFERENCE_STATE, value: inference.state, unit: 'state' },
      { name: TamiyoMetric.BREAKER_METADATA_STATE, value: metadata.state, unit: 'state' },
      { name: TamiyoMetric.BREAKER_INFERENCE_FAILURES, value: inference.failureCount, unit: 'count' },
      { name: TamiyoMetric.BREAKER_METADATA_FAILURES, value: metadata.failureCount, unit: 'count' },
    ];
    if (blueprint === undefined || timedOut) return metrics;
    const blueprintId = blueprint.descriptor.blueprintId;
    metrics.push({
      name: TamiyoMetric.BLUEPRINT_RISK,
      value: blueprint.risk,
      unit: 'score',
      attributes: { blueprint_id: blueprintId },
    });
    const bsds = blueprint.bsds;
    if (bsds !== undefined) {
      const attributes = { blueprint_id: blueprintId };
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
        {
          name: TamiyoMetric.BSDS_HAZARD_CRITICAL_SIGNAL,
          value: bsds.hazardBand === HazardBand.CRITICAL ? 1 : 0,
          unit: 'bool',
          attributes,
        },
        {
          name: TamiyoMetric.BSDS_HAZARD_HIGH_SIGNAL,
          value: bsds.hazardBand === HazardBand.HIGH ? 1 : 0,
          unit: 'bool',
          attributes,
        },
      );
    }
    return metrics;
  }
}

function isHeldWhenConservative(kind: DecisionKind): boolean {
  return kind === DecisionKind.GERMINATE || kind === DecisionKind.OPTIMIZER;
}

function budget(budgetMs: number | undefined): Record<string, string> | undefined {
  return budgetMs === undefined ? undefined : { budget_ms: budgetMs.toFixed(1) };
}

/** The short name of a generated enum value (`CRITICAL`), or its number if undeclared. */
function enumLabel(names: Readonly<Record<number, string>>, value: number): string {
  return names[value] ?? String(value);
}

function validate(proposal: ProposedDecision, inputs: RiskInputs): void {
  if (!DECISION_KINDS.has(proposal.kind)) {
    throw invalid(`unknown decision kind ${String(proposal.kind)}`, 'proposal.kind');
  }
  const score = proposal.policyRiskScore;
  if (score !== undefined && !(Number.isFinite(score) && score >= 0 && score <= 1)) {
    throw invalid(`policy risk score must be in [0, 1], got ${score}`, 'proposal.policyRiskScore');
  }
  if (proposal.paramDelta !== undefined && !Number.isFinite(proposal.paramDelta)) {
    throw invalid(`param delta must be finite, got ${proposal.paramDelta}`, 'proposal.paramDelta');
  }
  if (!Number.isSafeInteger(inputs.isolationViolations) || inputs.isolationViolations < 0) {
    throw invalid(`isolation violations must be an integer ≥ 0, got ${inputs.isolationViolations}`, 'inputs.isolationViolations');
  }
  const coverage = inputs.coverage;
  if (coverage !== undefined) {
    if (!(Number.isFinite(coverage.average) && coverage.average >= 0 && coverage.average <= 1)) {
      throw invalid(`coverage average must be in [0, 1], got ${coverage.average}`, 'inputs.coverage.average');
    }
    if (!['ok', 'degraded', 'critical'].includes(coverage.level)) {
      throw invalid(`unknown coverage level ${String(coverage.level)}`, 'inputs.coverage.level');
    }
  }
  const blueprint = inputs.blueprint;
  if (blueprint !== undefined && !(Number.isFinite(blueprint.risk) && blueprint.risk >= 0 && blueprint.risk <= 1)) {
    throw invalid(`blueprint risk must be in [0, 1], got ${blueprint.risk}`, 'inputs.blueprint.risk');
  }
  if (proposal.kind !== DecisionKind.GERMINATE || inputs.timedOut) return;
  const blueprintId = proposal.blueprintId ?? '';
  if (blueprintId.length === 0) {
    throw invalid('a germinate proposal needs a blueprint id', 'proposal.blueprintId');
  }
  if (inputs.metadataTimedOut) return;
  if (blueprint === undefined) {
    throw invalid(`germinate of ${blueprintId} without its blueprint metadata`, 'inputs.blueprint');
  }
  if (blueprint.descriptor.blueprintId !== blueprintId) {
    throw invalid(
      `blueprint metadata is for ${blueprint.descriptor.blueprintId}, the proposal germinates ${blueprintId}`,
      'inputs.blueprint.descriptor.blueprintId',
    );
  }
}

function requireNonNegative(field: string, value: number): void {
  if (!(Number.isFinite(value) && value >= 0)) {
    throw invalid(`RiskEngine option ${field}: expected a finite number ≥ 0, got ${value}`, field);
  }
}

function invalid(message: string, field: string): EsperError {
  return new EsperError(ErrorCode.INVALID_ARGUMENT, message, { details: { field } });
}
