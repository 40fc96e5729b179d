/**
 * Nissa's alerting: the rule table, the engine, notifiers, the Prometheus bridge and rules
 * file, and the fault drills.
 */
export { AlertEngine, type ActiveAlert, type AlertEngineOptions, type AlertEngineStats, type AlertSummary } from './engine.js';
export { AlertEventKind, type AlertEvent, type AlertNotifier } from './event.js';
export { alertInputsFromPacket, type AlertInputOptions } from './inputs.js';
export { formatAlertLine, LogNotifier, type LogNotifierOptions } from './log-notifier.js';
export {
  AlertEventName,
  AlertInputMetric,
  AlertPrometheusMetric,
  AlertRoute,
  AlertRuleName,
  AlertSeverity,
  DerivedInputSource,
} from './names.js';
export { OTHER_SOURCE, registerAlertInputs, type AlertInputBridgeOptions, type AlertInputUpdater } from './prometheus.js';
export { breaches, breachingValue, Comparator, severityOf, type AlertRule } from './rule.js';
export { alertRules, DEFAULT_ALERT_RULE_SETTINGS, type AlertRuleSettings } from './rules.js';
export {
  forSeconds,
  promqlExpr,
  renderPrometheusRules,
  renderPrometheusRuleTests,
  writePrometheusRules,
  type PrometheusRulesOptions,
  type PrometheusRulesSettings,
} from './rules-file.js';
export {
  resolveWebhookNotifierOptions,
  WebhookNotifier,
  type WebhookFailure,
  type WebhookNotifierOptions,
  type WebhookPayload,
  type WebhookStats,
} from './webhook-notifier.js';
export { buildAllDrills, buildDrill, type Drill, type DrillOptions } from './drills.js';
