/**
 * The alert rule table: the prototype's eight rules (prototype spec §4.5), in one place, so
 * Nissa's engine, the Prometheus rules file and the drills read the same thresholds.
 */
import { AlertInputMetric, AlertPrometheusMetric, AlertRoute, AlertRuleName } from './names.js';
import { Comparator, type AlertRule } from './rule.js';

/** The `nissa` settings the rule table reads (a slice of `EsperSettings['nissa']`). */
export interface AlertRuleSettings {
  /** @default true */
  readonly alertsEnabled: boolean;
  /** Coverage below this ratio breaches `tamiyo_coverage_low`. @default 0.7 */
  readonly coverageAlertThreshold: number;
  /** Consecutive low-coverage samples that fire it. @default 3 */
  readonly coverageAlertConsecutive: number;
  /**
   * Risk score at or above which a blueprint counts as elevated risk. Applied where the
   * `tamiyo.bsds.elevated_risk_flag` input is derived (see `inputs.ts`), not in the rule.
   * @default 0.8
   */
  readonly bsdsElevatedRiskThreshold: number;
}

/** The prototype's defaults of {@link AlertRuleSettings}. */
export const DEFAULT_ALERT_RULE_SETTINGS: AlertRuleSettings = Object.freeze({
  alertsEnabled: true,
  coverageAlertThreshold: 0.7,
  coverageAlertConsecutive: 3,
  bsdsElevatedRiskThreshold: 0.8,
});

/**
 * The eight rules with the settings' overrides, in the prototype's order; none when alerts
 * are disabled.
 *
 * Departure from prototype spec §4.5: `tamiyo_bsds_elevated_risk` keeps its threshold 0.5 on
 * the 0/1 flag; the prototype replaced it by `bsds_elevated_risk_threshold`, which only worked
 * because the flag is 0 or 1. The risk threshold is applied where the flag is derived.
 */
export function alertRules(settings: AlertRuleSettings = DEFAULT_ALERT_RULE_SETTINGS): readonly AlertRule[] {
  if (!settings.alertsEnabled) return [];
  return Object.freeze([
    {
      name: AlertRuleName.COVERAGE_LOW,
      metric: AlertInputMetric.COVERAGE,
      comparator: Comparator.BELOW,
      threshold: settings.coverageAlertThreshold,
      forSamples: settings.coverageAlertConsecutive,
      routes: [AlertRoute.SLACK],
      prometheusMetric: AlertPrometheusMetric.COVERAGE,
      prometheusBySource: false,
      summary: 'Tamiyo GNN feature coverage is low',
    },
    {
      name: AlertRuleName.TRAINING_LATENCY_HIGH,
      metric: AlertInputMetric.TRAINING_LATENCY_MS,
      comparator: Comparator.ABOVE,
      threshold: 18,
      forSamples: 3,
      routes: [AlertRoute.PAGERDUTY, AlertRoute.SLACK],
      prometheusMetric: AlertPrometheusMetric.TRAINING_LATENCY_MS,
      prometheusBySource: true,
      summary: "Tolaria's control plane is slow at epoch ends (Tamiyo + Kasmina on the epoch's last step)",
    },
    {
      name: AlertRuleName.ISOLATION_VIOLATION,
      metric: AlertInputMetric.ISOLATION_VIOLATIONS,
      comparator: Comparator.ABOVE,
      threshold: 3,
      forSamples: 1,
      routes: [AlertRoute.PAGERDUTY],
      prometheusMetric: AlertPrometheusMetric.ISOLATION_VIOLATIONS,
      prometheusBySource: true,
      summary: 'Kasmina gradient isolation violations',
    },
    {
      name: AlertRuleName.QUEUE_DEPTH,
      metric: AlertInputMetric.QUEUE_DEPTH,
      comparator: Comparator.ABOVE,
      threshold: 4_000,
      forSamples: 2,
      routes: [AlertRoute.SLACK],
      prometheusMetric: AlertPrometheusMetric.QUEUE_DEPTH,
      prometheusBySource: true,
      summary: 'Oona queue depth is high',
    },
    {
      name: AlertRuleName.COMPILE_RETRY_HIGH,
      metric: AlertInputMetric.COMPILE_RETRY_COUNT,
      comparator: Comparator.ABOVE,
      threshold: 1,
      forSamples: 1,
      routes: [AlertRoute.EMAIL],
      prometheusMetric: AlertPrometheusMetric.COMPILE_RETRY_COUNT,
      prometheusBySource: true,
      summary: 'Tezzeret kernel compiles are being retried',
    },
    {
      name: AlertRuleName.BSDS_CRITICAL,
      metric: AlertInputMetric.BSDS_HAZARD_CRITICAL_SIGNAL,
      comparator: Comparator.ABOVE,
      threshold: 0.5,
      forSamples: 1,
      routes: [AlertRoute.PAGERDUTY],
      prometheusMetric: AlertPrometheusMetric.BSDS_HAZARD_CRITICAL_SIGNAL,
      prometheusBySource: true,
      summary: 'A blueprint with a critical BSDS hazard was proposed',
    },
    {
      name: AlertRuleName.BSDS_HIGH,
      metric: AlertInputMetric.BSDS_HAZARD_HIGH_SIGNAL,
      comparator: Comparator.ABOVE,
      threshold: 0.5,
      forSamples: 3,
      routes: [AlertRoute.SLACK],
      prometheusMetric: AlertPrometheusMetric.BSDS_HAZARD_HIGH_SIGNAL,
      prometheusBySource: true,
      summary: 'Blueprints with a high BSDS hazard keep being proposed',
    },
    {
      name: AlertRuleName.BSDS_ELEVATED_RISK,
      metric: AlertInputMetric.BSDS_ELEVATED_RISK_FLAG,
      comparator: Comparator.ABOVE,
      threshold: 0.5,
      forSamples: 1,
      routes: [AlertRoute.PAGERDUTY],
      prometheusMetric: AlertPrometheusMetric.BSDS_ELEVATED_RISK_FLAG,
      prometheusBySource: true,
      summary: 'A blueprint with elevated BSDS risk was proposed',
    },
  ] satisfies AlertRule[]);
}
