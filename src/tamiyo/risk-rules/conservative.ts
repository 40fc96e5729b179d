/** Conservative mode in the rule table: rule 2 (hold) and rule 18 (reason of a pause). */
import { RiskReason, TelemetryLevel } from '../../leyline/index.js';
import { DecisionKind } from '../decision.js';
import { TamiyoEvent } from '../names.js';
import type { RiskRule } from './rule.js';

/** While conservative, germinate and optimizer decisions become pauses; culls, waits, pauses and breaker commands pass. */
export const conservativeHoldRule: RiskRule = {
  name: 'conservative_hold',
  apply(step, inputs, context) {
    if (!context.isConservative() || inputs.timedOut) return;
    const kind = step.decision.kind;
    if (kind !== DecisionKind.GERMINATE && kind !== DecisionKind.OPTIMIZER) return;
    step.fill(RiskReason.CONSERVATIVE_MODE);
    step.pause();
    step.event(TamiyoEvent.PAUSE_TRIGGERED, TelemetryLevel.WARNING, { reason: 'conservative_mode' });
  },
};

/** A pause nothing explained while conservative is explained by conservative mode. */
export const conservativeReasonRule: RiskRule = {
  name: 'conservative_reason',
  apply(step, _inputs, context) {
    if (step.reason === RiskReason.UNSPECIFIED && step.decision.kind === DecisionKind.PAUSE && context.isConservative()) {
      step.reason = RiskReason.CONSERVATIVE_MODE;
    }
  },
};
