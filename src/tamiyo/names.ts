/**
 * Tamiyo telemetry names, spelled as the reference gives them (prototype-tamiyo-simic §11).
 * The metric names are a contract with operators (spec 00 §2 "External names stay"):
 * Nissa's ingestion, alert rules and dashboards key on them.
 */

/** `source_subsystem` of Tamiyo's telemetry packets. */
export const TAMIYO_TELEMETRY_SOURCE = 'tamiyo';

/** Tamiyo metric names (reference §11.1, §11.3; BSDS gauges from rc1 plan §3.7). */
export const TamiyoMetric = {
  VALIDATION_LOSS: 'tamiyo.validation_loss',
  LOSS_DELTA: 'tamiyo.loss_delta',
  /** Decision-packet gauge of the runbook (reference §11.1). */
  CONSERVATIVE_MODE: 'tamiyo.conservative_mode',
  /** The risk engine's own gauge of conservative mode, on every verdict. */
  RISK_CONSERVATIVE_MODE: 'tamiyo.risk.conservative_mode',
  /** The risk engine's breaker confidence in [0, 1] (RiskMetadata.breaker_confidence). */
  RISK_BREAKER_CONFIDENCE: 'tamiyo.risk.breaker_confidence',
  /** Consecutive clean steps counted towards leaving conservative mode. */
  RISK_CLEAN_STEPS: 'tamiyo.risk.clean_steps',
  INFERENCE_LATENCY_MS: 'tamiyo.inference.latency_ms',
  GNN_INFERENCE_LATENCY_MS: 'tamiyo.gnn.inference.latency_ms',
  GNN_COMPILE_ENABLED: 'tamiyo.gnn.compile_enabled',
  GNN_COMPILE_WARM_MS: 'tamiyo.gnn.compile_warm_ms',
  GNN_COMPILE_FALLBACK_TOTAL: 'tamiyo.gnn.compile_fallback_total',
  POLICY_VALUE_ESTIMATE: 'tamiyo.policy.value_estimate',
  POLICY_RISK_INDEX: 'tamiyo.policy.risk_index',
  POLICY_RISK_SCORE: 'tamiyo.policy.risk_score',
  /** Mean feature coverage; per-group gauges via {@link featureCoverageMetric}. */
  GNN_FEATURE_COVERAGE: 'tamiyo.gnn.feature_coverage',
  GNN_FEATURE_COVERAGE_LAYER_CONNECTS: 'tamiyo.gnn.feature_coverage.edges.layer_connects',
  BLENDING_METHOD_INDEX: 'tamiyo.blending.method_index',
  BLENDING_SCHEDULE_START: 'tamiyo.blending.schedule_start',
  BLENDING_SCHEDULE_END: 'tamiyo.blending.schedule_end',
  SELECTION_SEED_INDEX: 'tamiyo.selection.seed_index',
  SELECTION_SEED_SCORE: 'tamiyo.selection.seed_score',
  SELECTION_BLUEPRINT_INDEX: 'tamiyo.selection.blueprint_index',
  BREAKER_INFERENCE_STATE: 'tamiyo.breaker.inference_state',
  BREAKER_INFERENCE_FAILURES: 'tamiyo.breaker.inference_failures',
  BLUEPRINT_RISK: 'tamiyo.blueprint.risk',
  BSDS_RISK: 'tamiyo.bsds.risk',
  /** HazardBand enum value of the blueprint's safety data sheet. */
  BSDS_HAZARD_BAND: 'tamiyo.bsds.hazard_band',
  /** HandlingClass enum value of the blueprint's safety data sheet. */
  BSDS_HANDLING_CLASS: 'tamiyo.bsds.handling_class',
  BSDS_HAZARD_CRITICAL_SIGNAL: 'tamiyo.bsds.hazard_critical_signal',
  BSDS_HAZARD_HIGH_SIGNAL: 'tamiyo.bsds.hazard_high_signal',
  /** Derived by Nissa from `tamiyo.blueprint.risk`; Tamiyo does not emit it. */
  BSDS_ELEVATED_RISK_FLAG: 'tamiyo.bsds.elevated_risk_flag',
} as const;

/** Union of {@link TamiyoMetric} values. */
export type TamiyoMetric = (typeof TamiyoMetric)[keyof typeof TamiyoMetric];

/** The per-group coverage gauge `tamiyo.gnn.feature_coverage.<group>` (reference §11.1). */
export function featureCoverageMetric(group: string): string {
  return `${TamiyoMetric.GNN_FEATURE_COVERAGE}.${group}`;
}

/** Tamiyo event descriptions (reference §11.2). */
export const TamiyoEvent = {
  /** A controller call behind the bus failed; the packet was answered "no change". */
  CONTROL_FAILED: 'control_failed',
  /** Telling the controller a command's fate (from its acknowledgement) threw; the command stays pending. */
  COMMAND_OUTCOME_FAILED: 'command_outcome_failed',
  POLICY_RISK_SIGNAL: 'policy_risk_signal',
  POLICY_RISK_CRITICAL: 'policy_risk_critical',
  POLICY_RISK_ELEVATED: 'policy_risk_elevated',
  PAUSE_TRIGGERED: 'pause_triggered',
  TIMEOUT_INFERENCE: 'timeout_inference',
  BREAKER_EVENT: 'breaker_event',
  CONSERVATIVE_ENTERED: 'conservative_entered',
  CONSERVATIVE_EXITED: 'conservative_exited',
  BP_QUARANTINE: 'bp_quarantine',
  BLUEPRINT_RISK: 'blueprint_risk',
  BSDS_PRESENT: 'bsds_present',
  BSDS_HANDLING_QUARANTINE: 'bsds_handling_quarantine',
  BSDS_HAZARD_CRITICAL: 'bsds_hazard_critical',
  BSDS_HAZARD_HIGH: 'bsds_hazard_high',
  LOSS_SPIKE: 'loss_spike',
  LOSS_WARNING: 'loss_warning',
  HOOK_BUDGET: 'hook_budget',
  STEP_LATENCY_HIGH: 'step_latency_high',
  KASMINA_APPLY_SLOW: 'kasmina_apply_slow',
  KASMINA_FINALIZE_SLOW: 'kasmina_finalize_slow',
  ISOLATION_VIOLATIONS: 'isolation_violations',
  LOSS_VOLATILITY_HIGH: 'loss_volatility_high',
  GRAD_VARIANCE_HIGH: 'grad_variance_high',
  OPTIMIZER_HINT: 'optimizer_hint',
  CPU_PRESSURE_HIGH: 'cpu_pressure_high',
  DEGRADED_INPUTS: 'degraded_inputs',
  COMPILE_DISABLED_CPU: 'compile_disabled_cpu',
  COMPILE_DISABLED: 'compile_disabled',
  POLICY_UPDATE_REJECTED: 'policy_update_rejected',
  /** CRITICAL: a candidate's safety data sheet failed verification; the blueprint is never germinated. */
  INTEGRITY_FAILURE: 'integrity_failure',
} as const;

/** Union of {@link TamiyoEvent} values. */
export type TamiyoEvent = (typeof TamiyoEvent)[keyof typeof TamiyoEvent];

/** Event names of the field-report lifecycle (reference §11.2, §11.3). */
export const FieldReportEvent = {
  /** INFO: a window closed and its report was built. */
  SYNTHESISED: 'field_report_synthesised',
  /** WARNING: the oldest window was closed early because the cap was reached. */
  WINDOW_EVICTED: 'field_report_window_evicted',
  /** WARNING: a publish failed and a retry is scheduled. */
  RETRY: 'field_report_retry',
  /** ERROR: a report was given up after its last retry (or a terminal publish error). */
  DROPPED: 'field_report_dropped',
  /** WARNING: the store cut a torn tail off a log when it opened. */
  STORE_RECOVERED: 'field_report_store_recovered',
  /** Summary of one publish pass (health summary, reference §11.3). */
  PUBLISH_SUMMARY: 'field_report_publish_summary',
} as const;

/** One of {@link FieldReportEvent}. */
export type FieldReportEvent = (typeof FieldReportEvent)[keyof typeof FieldReportEvent];

/** Metric names of the field-report lifecycle (reference §11.3; Nissa maps `total`). */
export const FieldReportMetric = {
  PUBLISHED_TOTAL: 'tamiyo.field_reports.published_total',
  RETRIES_TOTAL: 'tamiyo.field_reports.retries_total',
  DROPPED_TOTAL: 'tamiyo.field_reports.dropped_total',
  PENDING_TOTAL: 'tamiyo.field_reports.pending_total',
  /** Published reports by `outcome` attribute; Nissa exposes it as `esper_field_reports_total`. */
  TOTAL: 'tamiyo.field_reports.total',
} as const;

/** One of {@link FieldReportMetric}. */
export type FieldReportMetric = (typeof FieldReportMetric)[keyof typeof FieldReportMetric];

/** Event descriptions of policy updates. */
export const PolicyUpdateEvent = {
  /** An update failed verification. CRITICAL (security reasons) or ERROR (content). */
  REJECTED: TamiyoEvent.POLICY_UPDATE_REJECTED,
  /** A staged policy went live. INFO. */
  APPLIED: 'policy_update_applied',
} as const;

/** One of {@link PolicyUpdateEvent}. */
export type PolicyUpdateEvent = (typeof PolicyUpdateEvent)[keyof typeof PolicyUpdateEvent];

/** Metric names of policy updates. */
export const PolicyUpdateMetric = {
  /** Updates that passed verification. Counter. */
  ACCEPTED_TOTAL: 'tamiyo.policy_update.accepted_total',
  /** Rejected updates, one series per `reason` attribute. Counter. */
  REJECTED_TOTAL: 'tamiyo.policy_update.rejected_total',
  /** Staged policies that went live. Counter. */
  SWAPS_TOTAL: 'tamiyo.policy_update.swaps_total',
  /** Staged policies replaced by a newer stage before going live. Counter. */
  SUPERSEDED_TOTAL: 'tamiyo.policy_update.superseded_total',
  /** 1 while a staged policy waits for the next swap, else 0. Gauge. */
  PENDING: 'tamiyo.policy_update.pending',
} as const;

/** One of {@link PolicyUpdateMetric}. */
export type PolicyUpdateMetric = (typeof PolicyUpdateMetric)[keyof typeof PolicyUpdateMetric];
