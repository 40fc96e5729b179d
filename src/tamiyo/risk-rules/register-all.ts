/**
 * The risk table (reference prototype-tamiyo-simic §10.4), one rule module each, in the
 * order they run: the first overriding rule wins, so the order is part of the table.
 */
import { blueprintRiskRule, bsdsRule } from './blueprint.js';
import { conservativeHoldRule, conservativeReasonRule } from './conservative.js';
import { degradedInputsRule } from './coverage.js';
import { hookBudgetRule, kasminaApplyRule, kasminaFinalizeRule, stepLatencyRule } from './latency.js';
import { lossRule, lossVolatilityRule } from './loss.js';
import { policyRiskRule } from './policy-risk.js';
import type { RiskRule } from './rule.js';
import { inferenceBreakerRule, inferenceTimeoutRule } from './timeout.js';
import { cpuPressureRule, gradVarianceRule, isolationRule, optimizerHintRule } from './training-health.js';

/** Every risk rule, in evaluation order. */
export const RISK_RULES: readonly RiskRule[] = Object.freeze([
  inferenceTimeoutRule,
  policyRiskRule,
  conservativeHoldRule,
  inferenceBreakerRule,
  blueprintRiskRule,
  bsdsRule,
  lossRule,
  hookBudgetRule,
  stepLatencyRule,
  kasminaApplyRule,
  kasminaFinalizeRule,
  isolationRule,
  lossVolatilityRule,
  gradVarianceRule,
  optimizerHintRule,
  cpuPressureRule,
  degradedInputsRule,
  conservativeReasonRule,
]);
