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
  BREAKER_METADATA_STATE: 'tamiyo.breaker.metadata_state',
  BREAKER_INFERENCE_FAILURES: 'tamiyo.breaker.inference_failures',
  BREAKER_METADATA_FAILURES: 'tamiyo.breaker.metadata_failures',
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
  FIELD_REPORTS_PUBLISHED_TOTAL: 'tamiyo.field_reports.published_total',
  FIELD_REPORTS_RETRIES_TOTAL: 'tamiyo.field_reports.retries_total',
  FIELD_REPORTS_DROPPED_TOTAL: 'tamiyo.field_reports.dropped_total',
  FIELD_REPORTS_PENDING_TOTAL: 'tamiyo.field_reports.pending_total',
} as const;

/** Union of {@link TamiyoMetric} values. */
export type TamiyoMetric = (typeof TamiyoMetric)[keyof typeof TamiyoMetric];

/** The per-group coverage gauge `tamiyo.gnn.feature_coverage.<group>` (reference §11.1). */
export function featureCoverageMetric(group: string): string {
  return `${TamiyoMetric.GNN_FEATURE_COVERAGE}.${group}`;
}

/** Tamiyo event descriptions (reference §11.2). */
export const TamiyoEvent = {
  POLICY_RISK_SIGNAL: 'policy_risk_signal',
  POLICY_RISK_CRITICAL: 'policy_risk_critical',
  POLICY_RISK_ELEVATED: 'policy_risk_elevated',
  PAUSE_TRIGGERED: 'pause_triggered',
  TIMEOUT_INFERENCE: 'timeout_inference',
  TIMEOUT_URZA: 'timeout_urza',
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
  GRAD_CONFLICT_HIGH: 'grad_conflict_high',
  OPTIMIZER_HINT: 'optimizer_hint',
  DEVICE_PRESSURE_HIGH: 'device_pressure_high',
  CPU_PRESSURE_HIGH: 'cpu_pressure_high',
  DEGRADED_INPUTS: 'degraded_inputs',
  COMPILE_DISABLED_CPU: 'compile_disabled_cpu',
  COMPILE_DISABLED: 'compile_disabled',
  FIELD_REPORT_SYNTHESISED: 'field_report_synthesised',
  FIELD_REPORT_RETRY: 'field_report_retry',
  FIELD_REPORT_DROP: 'field_report_drop',
  POLICY_UPDATE_REJECTED: 'policy_update_rejected',
} as const;

/** Union of {@link TamiyoEvent} values. */
export type TamiyoEvent = (typeof TamiyoEvent)[keyof typeof TamiyoEvent];
