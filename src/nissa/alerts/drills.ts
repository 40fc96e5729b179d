/**
 * Fault drills (prototype spec §4.9, extended to all eight rules): for each rule, the
 * telemetry packets that fire it and the packet that clears it, built as the producing
 * subsystem would build them. Used by the alert tests and by integration tests that inject
 * them on the real bus.
 */
import { buildTelemetryPacket, invalidOption, type Clock, type EventInput, type MetricInput } from '../../core/index.js';
import { TelemetryLevel, type TelemetryPacket } from '../../leyline/index.js';
import { AlertInputMetric, AlertRuleName, DerivedInputSource } from './names.js';
import { breachingValue, Comparator, type AlertRule } from './rule.js';
import { alertRules, DEFAULT_ALERT_RULE_SETTINGS, type AlertRuleSettings } from './rules.js';

/** Options of {@link buildDrill}. */
export interface DrillOptions {
  /** The settings the rules are built from (thresholds, consecutive counts). @default the prototype's */
  readonly settings?: AlertRuleSettings;
  /** Stamps the packets. @default systemClock */
  readonly clock?: Clock;
  /** Put in every packet, so a drill can be told from a real run. @default "drill" */
  readonly trainingRunId?: string;
}

/** The packets of one drill. */
export interface Drill {
  readonly rule: AlertRule;
  /** The subsystem the packets come from (the metric's prefix). */
  readonly source: string;
  /** `rule.forSamples` packets, each breaching: the alert fires on the last one. */
  readonly fire: TelemetryPacket[];
  /** One packet within the threshold: the alert resolves. */
  readonly clear: TelemetryPacket[];
}

const UNITS: Readonly<Record<string, string>> = {
  [AlertInputMetric.COVERAGE]: 'ratio',
  [AlertInputMetric.TRAINING_LATENCY_MS]: 'ms',
  [AlertInputMetric.ISOLATION_VIOLATIONS]: 'count',
  [AlertInputMetric.QUEUE_DEPTH]: 'count',
  [AlertInputMetric.COMPILE_RETRY_COUNT]: 'count',
  [AlertInputMetric.BSDS_HAZARD_CRITICAL_SIGNAL]: 'bool',
  [AlertInputMetric.BSDS_HAZARD_HIGH_SIGNAL]: 'bool',
};

/** What one drill packet carries: the rule's metric, or (elevated risk) what it is derived from. */
function contents(rule: AlertRule, fire: boolean, settings: AlertRuleSettings): { metrics: MetricInput[]; events: EventInput[] } {
  if (rule.name === AlertRuleName.BSDS_ELEVATED_RISK) {
    // Tamiyo emits the risk score; Nissa derives the flag (inputs.ts).
    const threshold = settings.bsdsElevatedRiskThreshold;
    const risk = fire ? Math.min(1, threshold + (1 - threshold) / 2) : threshold / 2;
    return { metrics: [{ name: DerivedInputSource.BLUEPRINT_RISK, value: risk, unit: 'score' }], events: [] };
  }
  const value = fire ? breachingValue(rule) : clearValue(rule);
  const metrics = [{ name: rule.metric, value, unit: UNITS[rule.metric] ?? 'value' }];
  const events: EventInput[] = [];
  if (fire && rule.name === AlertRuleName.BSDS_CRITICAL) {
    events.push({
      description: DerivedInputSource.BSDS_HAZARD_CRITICAL_EVENT,
      level: TelemetryLevel.CRITICAL,
      attributes: { provenance: 'drill' },
    });
  }
  if (fire && rule.name === AlertRuleName.BSDS_HIGH) {
    events.push({
      description: DerivedInputSource.BSDS_HAZARD_HIGH_EVENT,
      level: TelemetryLevel.WARNING,
      attributes: { provenance: 'drill' },
    });
  }
  return { metrics, events };
}

/** A value well within the threshold (the prototype's drills clear with one such packet). */
function clearValue(rule: AlertRule): number {
  if (rule.comparator === Comparator.BELOW) return rule.threshold < 1 ? (rule.threshold + 1) / 2 : rule.threshold + 1;
  return rule.threshold > 0 ? rule.threshold / 2 : rule.threshold - 1;
}

/** The drill of one rule of the table built from `options.settings`. */
export function buildDrill(ruleName: string, options: DrillOptions = {}): Drill {
  const settings = options.settings ?? DEFAULT_ALERT_RULE_SETTINGS;
  const rule = alertRules({ ...settings, alertsEnabled: true }).find((r) => r.name === ruleName);
  if (rule === undefined) throw invalidOption('buildDrill', 'ruleName', 'the name of an alert rule', ruleName);
  const source = rule.metric.split('.')[0] ?? 'drill';
  let n = 0;
  const packet = (fire: boolean): TelemetryPacket => {
    n += 1;
    const { metrics, events } = contents(rule, fire, settings);
    return buildTelemetryPacket({
      packetId: `drill-${rule.name}-${n}`,
      source,
      level: TelemetryLevel.WARNING,
      trainingRunId: options.trainingRunId ?? 'drill',
      metrics,
      events,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
  };
  const fire = Array.from({ length: rule.forSamples }, () => packet(true));
  return { rule, source, fire, clear: [packet(false)] };
}

/** The drills of every rule, in table order. */
export function buildAllDrills(options: DrillOptions = {}): Drill[] {
  const settings = options.settings ?? DEFAULT_ALERT_RULE_SETTINGS;
  return alertRules({ ...settings, alertsEnabled: true }).map((rule) => buildDrill(rule.name, options));
}
