/** Inference timeouts (reference §10.3) and the inference breaker (rule 3). */
import { RiskReason, TelemetryLevel } from '../../leyline/index.js';
import { DecisionKind } from '../decision.js';
import { TamiyoEvent } from '../names.js';
import type { RiskRule } from './rule.js';

/** A timed-out inference has no usable proposal: the step pauses. */
export const inferenceTimeoutRule: RiskRule = {
  name: 'timeout_inference',
  apply(step, inputs, context) {
    if (!inputs.timedOut) return;
    if (!context.enforcesLatency) {
      const budgetMs = context.inferenceBudgetMs;
      const attributes: Record<string, string> = { enforced: 'false' };
      if (budgetMs !== undefined) attributes['budget_ms'] = budgetMs.toFixed(1);
      step.event(TamiyoEvent.TIMEOUT_INFERENCE, TelemetryLevel.WARNING, attributes);
      return;
    }
    step.decision = { kind: DecisionKind.PAUSE };
    step.override(RiskReason.TIMEOUT_INFERENCE);
    const budgetMs = context.inferenceBudgetMs;
    step.event(
      TamiyoEvent.TIMEOUT_INFERENCE,
      TelemetryLevel.WARNING,
      budgetMs === undefined ? undefined : { budget_ms: budgetMs.toFixed(1) },
    );
  },
};

/** Every step counts through the inference breaker; a timeout is a failure and enters conservative mode. */
export const inferenceBreakerRule: RiskRule = {
  name: 'inference_breaker',
  apply(step, inputs, context) {
    if (!inputs.timedOut || !context.enforcesLatency) {
      context.recordInference(step, undefined);
      return;
    }
    context.recordInference(step, TamiyoEvent.TIMEOUT_INFERENCE);
    context.enterConservative(step, TamiyoEvent.TIMEOUT_INFERENCE);
  },
};
