/**
 * What a risk rule reads and writes: the step's inputs, the decision being shaped and the
 * engine state a rule may touch. "override" is the reference table's `:=` (the first one
 * wins), "fill" its `||=`.
 */
import { create } from '@bufbuild/protobuf';
import type { EventInput } from '../../core/index.js';
import {
  RiskReason,
  TrainingMetricsSchema,
  type BlueprintDescriptor,
  type BSDS,
  type SystemStatePacket,
  type TelemetryLevel,
  type TrainingMetrics,
} from '../../leyline/index.js';
import { DecisionKind, type ProposedDecision } from '../decision.js';

/** Blueprint metadata resolved for the step (Urza record + verified Urabrask safety data sheet). */
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
  /** Required for a germinate unless the inference timed out. */
  readonly blueprint?: BlueprintRiskInfo;
  readonly coverage?: CoverageInfo;
  /** Isolation violations across Kasmina's seeds (integer ≥ 0). */
  readonly isolationViolations: number;
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
  /** CPU utilisation (`TrainingMetrics.cpu_util_percent`, percent of one core) that stops a germinate. @default 95 */
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
  cpuUtilHighPercent: 95,
});

const EMPTY_METRICS: TrainingMetrics = create(TrainingMetricsSchema);

/** One decision while the rules shape it. */
export class RiskStep {
  /** The policy's proposal, unchanged. */
  readonly proposal: ProposedDecision;
  /** The decision as shaped so far. */
  decision: ProposedDecision;
  reason: RiskReason = RiskReason.UNSPECIFIED;
  readonly events: EventInput[] = [];
  /** The packet's training metrics (all zero when it has none). */
  readonly metrics: TrainingMetrics;
  /** A conservative-mode trigger fired this step. */
  triggered = false;
  /** Something this step forbids counting it towards leaving conservative mode (a loss spike or warning). */
  unclean = false;
  #reasonFixed = false;

  constructor(proposal: ProposedDecision, packet: SystemStatePacket) {
    this.proposal = proposal;
    this.decision = proposal;
    this.metrics = packet.metrics ?? EMPTY_METRICS;
  }

  /** The decision is (still) a germinate. */
  get growing(): boolean {
    return this.decision.kind === DecisionKind.GERMINATE;
  }

  /** Sets the reason unless an earlier overriding rule fixed it. */
  override(reason: RiskReason): void {
    if (this.#reasonFixed) return;
    this.reason = reason;
    this.#reasonFixed = true;
  }

  /** Sets the reason when none is set yet. */
  fill(reason: RiskReason): void {
    if (this.reason === RiskReason.UNSPECIFIED) this.reason = reason;
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

/** The engine state a rule may read or change. */
export interface RiskRuleContext {
  readonly thresholds: RiskThresholds;
  /** Whether conservative mode is on as the rule runs. */
  isConservative(): boolean;
  /** Inference budget in ms, for `budget_ms` on `timeout_inference`. */
  readonly inferenceBudgetMs: number | undefined;
  /**
   * Whether wall-clock measurements (latencies, CPU load, a slow inference) may change the
   * decision (`core.latencyBudgets: enforce`). When false, the rules reading them only
   * report (the same WARNING event, `enforced` = 'false'), so decisions do not depend on load.
   */
  readonly enforcesLatency: boolean;
  /** Enters conservative mode (and marks the step triggered); `trigger` names the event. */
  enterConservative(step: RiskStep, trigger: string): void;
  /** Counts this step through the inference breaker; a failure names its reason. */
  recordInference(step: RiskStep, failureReason: string | undefined): void;
}

/** One rule of the risk table, registered in `register-all.ts`. */
export interface RiskRule {
  /** Short name (the reference's row), for docs and tests. */
  readonly name: string;
  apply(step: RiskStep, inputs: RiskInputs, context: RiskRuleContext): void;
}

/** The short name of a generated enum value (`CRITICAL`), or its number if undeclared. */
export function enumLabel(names: Readonly<Record<number, string>>, value: number): string {
  return names[value] ?? String(value);
}
