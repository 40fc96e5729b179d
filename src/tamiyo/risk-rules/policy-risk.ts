/** Rule 1: the policy's own risk score. */
import { RiskReason, TelemetryLevel } from '../../leyline/index.js';
import { TamiyoEvent } from '../names.js';
import type { RiskRule } from './rule.js';

/** A critical score pauses and enters conservative mode; an elevated one holds growth. */
export const policyRiskRule: RiskRule = {
  name: 'policy_risk',
  apply(step, inputs, context) {
    const score = inputs.timedOut ? undefined : step.proposal.policyRiskScore;
    if (score === undefined) return;
    const t = context.thresholds;
    step.event(TamiyoEvent.POLICY_RISK_SIGNAL, TelemetryLevel.INFO, { score: score.toFixed(3) });
    if (score >= t.policyRiskCritical) {
      step.override(RiskReason.POLICY_RISK_CRITICAL);
      step.pause();
      step.event(TamiyoEvent.POLICY_RISK_CRITICAL, TelemetryLevel.CRITICAL, { score: score.toFixed(3) });
      context.enterConservative(step, TamiyoEvent.POLICY_RISK_CRITICAL);
    } else if (score >= t.policyRiskElevated && step.growing) {
      step.fill(RiskReason.POLICY_RISK_ELEVATED);
      step.holdGrowth();
      step.event(TamiyoEvent.POLICY_RISK_ELEVATED, TelemetryLevel.WARNING, { score: score.toFixed(3) });
    }
  },
};
