/** Rules 8–11: hook, step and Kasmina latencies (all measured by Tolaria for the previous step). */
import { RiskReason, TelemetryLevel, type TrainingMetrics } from '../../leyline/index.js';
import { TamiyoEvent } from '../names.js';
import type { RiskRule, RiskThresholds } from './rule.js';

/**
 * A latency over its threshold: `pause` pauses any decision, `hold` holds a germinate back
 * (the event fires either way); the reason overrides.
 */
function latencyRule(
  name: string,
  latencyOf: (m: TrainingMetrics) => number,
  thresholdOf: (t: RiskThresholds) => number,
  reason: RiskReason,
  effect: 'pause' | 'hold',
): RiskRule {
  return {
    name,
    apply(step, _inputs, context) {
      const latency = latencyOf(step.metrics);
      if (!(latency > thresholdOf(context.thresholds))) return;
      if (!context.enforcesLatency) {
        step.event(name, TelemetryLevel.WARNING, { latency_ms: latency.toFixed(2), enforced: 'false' });
        return;
      }
      if (effect === 'pause') {
        step.override(reason);
        step.pause();
      } else if (step.growing) {
        step.override(reason);
        step.holdGrowth();
      }
      step.event(name, TelemetryLevel.WARNING, { latency_ms: latency.toFixed(2) });
    },
  };
}

/** Hook latency over budget pauses. */
export const hookBudgetRule = latencyRule(
  TamiyoEvent.HOOK_BUDGET,
  (m) => m.hookLatencyMs,
  (t) => t.hookBudgetMs,
  RiskReason.HOOK_BUDGET,
  'pause',
);

/** A slow step pauses. */
export const stepLatencyRule = latencyRule(
  TamiyoEvent.STEP_LATENCY_HIGH,
  (m) => m.stepLatencyMs,
  (t) => t.stepLatencyHighMs,
  RiskReason.STEP_LATENCY_HIGH,
  'pause',
);

/** Kasmina's command apply took too long: growth waits. */
export const kasminaApplyRule = latencyRule(
  TamiyoEvent.KASMINA_APPLY_SLOW,
  (m) => m.kasminaApplyMs,
  (t) => t.kasminaApplySlowMs,
  RiskReason.KASMINA_APPLY_SLOW,
  'hold',
);

/** Kasmina's step finalize took too long: growth waits. */
export const kasminaFinalizeRule = latencyRule(
  TamiyoEvent.KASMINA_FINALIZE_SLOW,
  (m) => m.kasminaFinalizeMs,
  (t) => t.kasminaFinalizeSlowMs,
  RiskReason.KASMINA_FINALIZE_SLOW,
  'hold',
);
