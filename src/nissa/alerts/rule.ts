/**
 * One alert rule and how its condition is compared (prototype spec §4.5 `AlertRule`).
 */
import { AlertRoute, AlertSeverity, type AlertRuleName } from './names.js';

/** How a rule compares its metric with its threshold; both are strict. */
export const Comparator = {
  ABOVE: '>',
  BELOW: '<',
} as const;

/** One of the {@link Comparator} values. */
export type Comparator = (typeof Comparator)[keyof typeof Comparator];

/** An alert rule: a strict threshold on one metric held for consecutive samples. */
export interface AlertRule {
  readonly name: AlertRuleName | (string & {});
  /** Telemetry metric the rule reads. */
  readonly metric: string;
  readonly comparator: Comparator;
  readonly threshold: number;
  /** Consecutive samples (packets carrying the metric, per source) that must breach. ≥ 1. */
  readonly forSamples: number;
  readonly routes: readonly AlertRoute[];
  /** The Prometheus series carrying the same input (see `prometheus.ts`). */
  readonly prometheusMetric: string;
  /** Whether the series has a `source` label (false for series owned elsewhere). */
  readonly prometheusBySource: boolean;
  /** One line saying what is wrong, for notifications and the rules file. */
  readonly summary: string;
}

/** Whether `value` breaches the rule's threshold. NaN never breaches. */
export function breaches(rule: Pick<AlertRule, 'comparator' | 'threshold'>, value: number): boolean {
  return rule.comparator === Comparator.BELOW ? value < rule.threshold : value > rule.threshold;
}

/** The severity label of a set of routes: paging → critical, chat → warning, else info. */
export function severityOf(routes: readonly AlertRoute[]): AlertSeverity {
  if (routes.includes(AlertRoute.PAGERDUTY)) return AlertSeverity.CRITICAL;
  if (routes.includes(AlertRoute.SLACK)) return AlertSeverity.WARNING;
  return AlertSeverity.INFO;
}

/** A value clearly past the rule's threshold (for drills and rule tests). */
export function breachingValue(rule: Pick<AlertRule, 'comparator' | 'threshold'>): number {
  const step = Math.max(1, Math.abs(rule.threshold));
  if (rule.comparator === Comparator.BELOW) return rule.threshold > 0 ? rule.threshold / 2 : rule.threshold - step;
  return rule.threshold + step;
}

/**
 * The rule's threshold itself: the comparison is strict, so it does not breach. Used by
 * drills to clear and by rule tests as the boundary case.
 */
export function boundaryValue(rule: Pick<AlertRule, 'threshold'>): number {
  return rule.threshold;
}
