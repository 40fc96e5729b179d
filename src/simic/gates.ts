/**
 * The gates a candidate policy passes before Simic publishes it: the prototype's training
 * thresholds (reference prototype-tamiyo-simic §15.5, with the values its trainer passed:
 * average reward ≥ 0, policy loss ≤ 5, value loss ≤ 50, param loss ≤ 5, entropy ≥ 0, in that
 * order), then — what the prototype lacked — an evaluation on held-out seeds: the candidate
 * must not be worse than the policy deciding now, nor than the heuristic.
 */
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { PolicyValidationCheckSchema, PolicyValidationSummarySchema, type PolicyValidationSummary } from '../leyline/index.js';

/** Thresholds of the training gates. */
export interface SimicGateThresholds {
  readonly minAverageReward: number;
  readonly maxPolicyLoss: number;
  readonly maxValueLoss: number;
  readonly maxParamLoss: number;
  readonly minEntropy: number;
  /** How far below the current policy's (and the heuristic's) held-out reward the candidate may be. @default 0 */
  readonly evaluationTolerance: number;
}

/** The prototype trainer's thresholds (§15.5) and no evaluation tolerance. */
export const SIMIC_GATE_DEFAULTS: SimicGateThresholds = Object.freeze({
  minAverageReward: 0,
  maxPolicyLoss: 5,
  maxValueLoss: 50,
  maxParamLoss: 5,
  minEntropy: 0,
  evaluationTolerance: 0,
});

/** What training measured for the candidate (missing metrics count as 0, as in the prototype). */
export interface SimicTrainingStats {
  readonly averageReward: number;
  readonly policyLoss: number;
  readonly valueLoss: number;
  readonly paramLoss: number;
  readonly policyEntropy: number;
  /** Episodes (training runs) the statistics come from. */
  readonly episodes: number;
}

/** Mean held-out reward of each policy on the same held-out seeds. */
export interface HeldOutEvaluation {
  readonly candidate: number;
  readonly current: number;
  readonly heuristic: number;
  readonly seeds: number;
}

/** Gate names, in the order they are checked. */
export const SimicGate = {
  AVERAGE_REWARD: 'average_reward',
  POLICY_LOSS: 'policy_loss',
  VALUE_LOSS: 'value_loss',
  PARAM_LOSS: 'param_loss',
  POLICY_ENTROPY: 'policy_entropy',
  NOT_WORSE_THAN_CURRENT: 'held_out_vs_current',
  NOT_WORSE_THAN_HEURISTIC: 'held_out_vs_heuristic',
} as const;

/**
 * Runs every gate and returns the verdict as the `PolicyValidationSummary` the update
 * carries (each check with its value and threshold; `passed` = every check passed). Without
 * an evaluation the two held-out gates fail: an update is never published unevaluated.
 */
export function evaluateGates(
  stats: SimicTrainingStats,
  evaluation: HeldOutEvaluation | undefined,
  thresholds: SimicGateThresholds = SIMIC_GATE_DEFAULTS,
  nowMs: number = Date.now(),
): PolicyValidationSummary {
  const check = (name: string, value: number, threshold: number, passed: boolean) =>
    create(PolicyValidationCheckSchema, { name, value, threshold, passed: passed && Number.isFinite(value) });
  const tolerance = thresholds.evaluationTolerance;
  const checks = [
    check(SimicGate.AVERAGE_REWARD, stats.averageReward, thresholds.minAverageReward, stats.averageReward >= thresholds.minAverageReward),
    check(SimicGate.POLICY_LOSS, stats.policyLoss, thresholds.maxPolicyLoss, stats.policyLoss <= thresholds.maxPolicyLoss),
    check(SimicGate.VALUE_LOSS, stats.valueLoss, thresholds.maxValueLoss, stats.valueLoss <= thresholds.maxValueLoss),
    check(SimicGate.PARAM_LOSS, stats.paramLoss, thresholds.maxParamLoss, stats.paramLoss <= thresholds.maxParamLoss),
    check(SimicGate.POLICY_ENTROPY, stats.policyEntropy, thresholds.minEntropy, stats.policyEntropy >= thresholds.minEntropy),
    evaluation === undefined
      ? check(SimicGate.NOT_WORSE_THAN_CURRENT, Number.NaN, Number.NaN, false)
      : check(
          SimicGate.NOT_WORSE_THAN_CURRENT,
          evaluation.candidate,
          evaluation.current - tolerance,
          evaluation.candidate >= evaluation.current - tolerance,
        ),
    evaluation === undefined
      ? check(SimicGate.NOT_WORSE_THAN_HEURISTIC, Number.NaN, Number.NaN, false)
      : check(
          SimicGate.NOT_WORSE_THAN_HEURISTIC,
          evaluation.candidate,
          evaluation.heuristic - tolerance,
          evaluation.candidate >= evaluation.heuristic - tolerance,
        ),
  ];
  return create(PolicyValidationSummarySchema, {
    passed: checks.every((c) => c.passed),
    checks,
    episodes: stats.episodes,
    meanReward: stats.averageReward,
    validatedAt: timestampFromMs(nowMs),
  });
}

/** One line per failed gate: `policy_loss 7.1234 above max 5.0000` (values to 4 dp, as the prototype). */
export function failedGateReasons(summary: PolicyValidationSummary): string[] {
  return summary.checks
    .filter((c) => !c.passed)
    .map((c) => {
      if (!Number.isFinite(c.value)) return `${c.name}: not evaluated`;
      const below = c.name === SimicGate.POLICY_LOSS || c.name === SimicGate.VALUE_LOSS || c.name === SimicGate.PARAM_LOSS;
      return `${c.name} ${c.value.toFixed(4)} ${below ? 'above max' : 'below min'} ${c.threshold.toFixed(4)}`;
    });
}
