/**
 * Names of Nissa's alerting: the telemetry metrics the rules read (spelled as the prototype
 * spec §4.5 gives them), the Prometheus gauges that carry the same inputs, the routes and
 * the events Nissa emits about its alerts.
 */

/** Telemetry metric names the alert rules read (prototype spec §4.5). */
export const AlertInputMetric = {
  COVERAGE: 'tamiyo.gnn.feature_coverage',
  /**
   * The control plane's latency at the epoch's end (Tamiyo + Kasmina on its last step). The
   * prototype read `tolaria.training.latency_ms` — the epoch's whole training wall time, so
   * its 18 ms threshold fired on every real run; its design meant the epoch hook.
   */
  TRAINING_LATENCY_MS: 'tolaria.epoch_hook.latency_ms',
  ISOLATION_VIOLATIONS: 'kasmina.isolation.violations',
  QUEUE_DEPTH: 'oona.queue.depth',
  COMPILE_RETRY_COUNT: 'tezzeret.compile.retry_count',
  BSDS_HAZARD_CRITICAL_SIGNAL: 'tamiyo.bsds.hazard_critical_signal',
  BSDS_HAZARD_HIGH_SIGNAL: 'tamiyo.bsds.hazard_high_signal',
  BSDS_ELEVATED_RISK_FLAG: 'tamiyo.bsds.elevated_risk_flag',
} as const;

/** One of the {@link AlertInputMetric} names. */
export type AlertInputMetric = (typeof AlertInputMetric)[keyof typeof AlertInputMetric];

/**
 * Telemetry that Nissa turns into alert inputs (prototype spec §4.3 steps 4 and 6), plus
 * Oona's own per-stream depth gauge.
 */
export const DerivedInputSource = {
  /** Event whose presence sets the critical hazard signal to 1. */
  BSDS_HAZARD_CRITICAL_EVENT: 'bsds_hazard_critical',
  /** Event whose presence sets the high hazard signal to 1. */
  BSDS_HAZARD_HIGH_EVENT: 'bsds_hazard_high',
  /** Blueprint risk score; the elevated-risk flag is 1 when it is ≥ the threshold. */
  BLUEPRINT_RISK: 'tamiyo.blueprint.risk',
  /** Oona's depth per stream (`stream` attribute); the queue-depth input is its maximum. */
  OONA_STREAM_DEPTH: 'oona.queue_depth',
} as const;

/** Prometheus series of each rule input. */
export const AlertPrometheusMetric = {
  /** Owned by Nissa's metrics module (the prototype's name); the bridge does not create it. */
  COVERAGE: 'tamiyo_gnn_feature_coverage',
  TRAINING_LATENCY_MS: 'esper_tolaria_epoch_hook_latency_ms',
  ISOLATION_VIOLATIONS: 'esper_kasmina_isolation_violations',
  QUEUE_DEPTH: 'esper_oona_queue_depth',
  COMPILE_RETRY_COUNT: 'esper_tezzeret_compile_retry_count',
  BSDS_HAZARD_CRITICAL_SIGNAL: 'esper_tamiyo_bsds_hazard_critical_signal',
  BSDS_HAZARD_HIGH_SIGNAL: 'esper_tamiyo_bsds_hazard_high_signal',
  BSDS_ELEVATED_RISK_FLAG: 'esper_tamiyo_bsds_elevated_risk_flag',
} as const;

/** The prototype's eight rule names. */
export const AlertRuleName = {
  COVERAGE_LOW: 'tamiyo_coverage_low',
  TRAINING_LATENCY_HIGH: 'training_latency_high',
  ISOLATION_VIOLATION: 'kasmina_isolation_violation',
  QUEUE_DEPTH: 'oona_queue_depth',
  COMPILE_RETRY_HIGH: 'tezzeret_compile_retry_high',
  BSDS_CRITICAL: 'tamiyo_bsds_critical',
  BSDS_HIGH: 'tamiyo_bsds_high',
  BSDS_ELEVATED_RISK: 'tamiyo_bsds_elevated_risk',
} as const;

/** One of the {@link AlertRuleName} values. */
export type AlertRuleName = (typeof AlertRuleName)[keyof typeof AlertRuleName];

/** Where an alert is meant to go; the receiver behind the webhook dispatches on it. */
export const AlertRoute = {
  SLACK: 'slack',
  PAGERDUTY: 'pagerduty',
  EMAIL: 'email',
} as const;

/** One of the {@link AlertRoute} values. */
export type AlertRoute = (typeof AlertRoute)[keyof typeof AlertRoute];

/** Severity label, derived from the routes: paging is critical, chat a warning, mail info. */
export const AlertSeverity = {
  CRITICAL: 'critical',
  WARNING: 'warning',
  INFO: 'info',
} as const;

/** One of the {@link AlertSeverity} values. */
export type AlertSeverity = (typeof AlertSeverity)[keyof typeof AlertSeverity];

/** Events Nissa emits about its alerts (source `nissa`). */
export const AlertEventName = {
  /** A rule's condition held for its consecutive samples. */
  FIRED: 'alert_fired',
  /** A fired rule's metric came back within its threshold. */
  RESOLVED: 'alert_resolved',
  /** A notifier gave up delivering an alert event. */
  NOTIFY_FAILED: 'alert_notify_failed',
} as const;
