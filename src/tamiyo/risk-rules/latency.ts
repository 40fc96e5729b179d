/** Rules 8–11: hook, step and Kasmina latencies (all measured by Tolaria for the previous step). */
import { RiskReason, TelemetryLevel, type TrainingMetrics } from '../../leyline/index.js';
import { TamiyoEvent } from '../names.js';
import type { RiskRule, RiskThresholds } from './rule.js';

/** Hook latency over budget pauses. */
export const hookBudgetRule: RiskRule = {
  name: 'hook_budget',
  apply(step, _inputs, context) {
    const latency = step.metrics.hookLatencyMs;
    if (!(latency > context.thresholds.hookBudgetMs)) return;
    step.override(RiskReason.HOOK_BUDGET);
    step.pause();
    step.event(TamiyoEvent.HOOK_BUDGET, TelemetryLevel.WARNING, { latency_ms: latency.toFixed(2) });
  },
};

/** A slow step pauses. */
export const stepLatencyRule: RiskRule = {
  name: 'step_latency_high',
  apply(step, _inputs, context) {
    const latency = step.metrics.stepLatencyMs;
    if (!(latency > context.thresholds.stepLatencyHighMs)) return;
    step.override(RiskReason.STEP_LATENCY_HIGH);
    step.pause();
    step.event(TamiyoEvent.STEP_LATENCY_HIGH, TelemetryLevel.WARNING, { latency_ms: latency.toFixed(2) });
  },
};

/** A slow Kasmina call holds growth (its reason overrides). */
function kasminaLatencyRule(
  name: string,
  latencyOf: (m: TrainingMetrics) => number,
  thresholdOf: (t: RiskThresholds) => number,
  reason: RiskReason,
): RiskRule {
  return {
    name,
    apply(step, _inputs, context) {
      const latency = latencyOf(step.metrics);
      if (!(latency > thresholdOf(context.thresholds))) return;
      step.event(name, TelemetryLevel.WARNING, { latency_ms: latency.toFixed(2) });
      if (step.growing) {
        step.override(reason);
        step.holdGrowth();
      }
    },
  };
}

/** Kasmina's command apply took too long. */
export const kasminaApplyRule = kasminaLatencyRule(
  TamiyoEvent.KASMINA_APPLY_SLOW,
  (m) => m.kasminaApplyMs,
  (t) => t.kasminaApplySlowMs,
  RiskReason.KASMINA_APPLY_SLOW,
);

/** Kasmina's step finalize took too long. */
export const kasminaFinalizeRule = kasminaLatencyRule(
  TamiyoEvent.KASMINA_FINALIZE_SLOW,
  (m) => m.kasminaFinalizeMs,
  (t) => t.kasminaFinalizeSlowMs,
  RiskReason.KASMINA_FINALIZE_SLOW,
);
