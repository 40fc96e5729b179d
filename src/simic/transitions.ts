/**
 * A fleet's field report as experience: the decision it reports (its `decision_context`:
 * the graph the policy read, its choice, the behaviour log-probability and value estimate)
 * with a reward from the report's typed delta and outcome — one decision, one episode.
 *
 * Reward (in validation-accuracy fractions, the unit of Kasmina's counterfactual
 * contribution):
 *
 * | decision | reward |
 * |---|---|
 * | germinate | the seed's counterfactual contribution when its window closed (`delta.counterfactual_contribution`: accuracy with the seed minus with its alpha forced to 0) − `seedCost` |
 * | cull | − the culled seed's last measured contribution + `seedCost` (what it gave, and the parameters handed back) |
 * | either, contribution never measured | outcome fallback: SUCCESS `+outcomeReward`, NEUTRAL 0, REGRESSION `−outcomeReward`, with the germinate's `−seedCost` / the cull's `+seedCost` |
 *
 * `seedCost` is the parameter cost: one seed's parameters priced at a fixed accuracy
 * fraction (the report names the blueprint, not its size; a per-parameter price is the
 * episode reward's business, `episodes.ts`). No shaping.
 *
 * Not usable: a report without a decision context (the heuristic's, an argmax GNN's, a
 * decision the risk engine changed), an ABORTED one (the command never took effect, or the
 * run ended before its window closed: its effect was not observed), or one whose context
 * does not decode.
 */
import { describeError, optionChecks } from '../core/index.js';
import { FieldReportOutcome, type FieldReport } from '../leyline/index.js';
import { decodeDecisionContext, PolicyAction } from '../tamiyo/index.js';
import type { Trajectory } from './experience.js';

/** The reward's prices. */
export interface ReportRewardOptions {
  /** One seed's parameters, priced in accuracy fractions. @default 0.01 (one accuracy point) */
  readonly seedCost: number;
  /** Reward of a SUCCESS (and penalty of a REGRESSION) when no contribution was measured. @default 0.02 */
  readonly outcomeReward: number;
}

/** Defaults of {@link ReportRewardOptions}. */
export const REPORT_REWARD_DEFAULTS: Readonly<ReportRewardOptions> = Object.freeze({ seedCost: 0.01, outcomeReward: 0.02 });

/** Why a report gives no transition. */
export const UnusableReport = {
  NO_DECISION_CONTEXT: 'no_decision_context',
  ABORTED: 'aborted',
  INVALID_CONTEXT: 'invalid_context',
} as const;

/** One of {@link UnusableReport}. */
export type UnusableReport = (typeof UnusableReport)[keyof typeof UnusableReport];

/** What {@link transitionOfReport} made of a report. */
export type ReportTransition =
  | { readonly usable: true; readonly trajectory: Trajectory; readonly reward: number }
  | { readonly usable: false; readonly reason: UnusableReport; readonly detail?: string };

/** Resolves and checks reward options (INVALID_ARGUMENT naming the field). */
export function resolveReportRewardOptions(options: Partial<ReportRewardOptions> = {}): ReportRewardOptions {
  const o = { ...REPORT_REWARD_DEFAULTS, ...options };
  const check = optionChecks('ReportRewardOptions');
  check.number('seedCost', o.seedCost);
  check.number('outcomeReward', o.outcomeReward);
  return Object.freeze(o);
}

function outcomeReward(outcome: FieldReportOutcome, scale: number): number {
  if (outcome === FieldReportOutcome.SUCCESS) return scale;
  if (outcome === FieldReportOutcome.REGRESSION) return -scale;
  return 0;
}

/** The reward of a usable report (see the module comment). */
export function rewardOfReport(report: FieldReport, action: number, options: ReportRewardOptions = REPORT_REWARD_DEFAULTS): number {
  const contribution = report.delta?.counterfactualContribution;
  const measured = contribution !== undefined && Number.isFinite(contribution);
  if (action === PolicyAction.GERMINATE) {
    return (measured ? contribution : outcomeReward(report.outcome, options.outcomeReward)) - options.seedCost;
  }
  if (action === PolicyAction.CULL) {
    return (measured ? -contribution : outcomeReward(report.outcome, options.outcomeReward)) + options.seedCost;
  }
  return outcomeReward(report.outcome, options.outcomeReward);
}

/** The one-decision episode a field report gives, or why it gives none. */
export function transitionOfReport(report: FieldReport, options: ReportRewardOptions = REPORT_REWARD_DEFAULTS): ReportTransition {
  const context = report.decisionContext;
  if (context === undefined) return { usable: false, reason: UnusableReport.NO_DECISION_CONTEXT };
  if (report.outcome === FieldReportOutcome.ABORTED) return { usable: false, reason: UnusableReport.ABORTED };
  let decoded;
  try {
    decoded = decodeDecisionContext(context, `field report ${report.reportId}`);
  } catch (error) {
    return { usable: false, reason: UnusableReport.INVALID_CONTEXT, detail: describeError(error) };
  }
  const reward = rewardOfReport(report, decoded.choice.action, options);
  return {
    usable: true,
    reward,
    trajectory: [{ graph: decoded.graph, choice: decoded.choice, logProb: decoded.logProb, value: decoded.value, reward }],
  };
}
