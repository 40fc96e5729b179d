/**
 * Event and metric names of the security subsystem, spelled as the reference gives them
 * (prototype-rc1-plan §2.7–2.8). Metric names are prefixed with the producing subsystem
 * (`kasmina.command_verifier.accepted_total`, `tamiyo.nonce_ledger.size`), so only the
 * part after the prefix lives here; {@link securityMetricName} joins the two.
 */

/** Telemetry event descriptions emitted by the security subsystem. */
export const SecurityEvent = {
  /** A command failed verification. CRITICAL (spec 01 priority table). */
  COMMAND_REJECTED: 'command_rejected',
  /** The nonce ledger hit its entry cap and evicted its oldest nonces. WARNING. */
  NONCE_LEDGER_TRUNCATED: 'nonce_ledger_truncated',
  /** Opening a nonce store cut off a torn tail (an append cut short by a crash). WARNING. */
  NONCE_STORE_RECOVERED: 'nonce_store_recovered',
  /** A nonce store write failed; the ledger refuses further nonces. CRITICAL. */
  NONCE_STORE_FAILED: 'nonce_store_failed',
  /** A nonce accepted here was already in a store shared with another verifier. CRITICAL. */
  NONCE_STORE_CONFLICT: 'nonce_store_conflict',
} as const;

/** One of the {@link SecurityEvent} values. */
export type SecurityEvent = (typeof SecurityEvent)[keyof typeof SecurityEvent];

/** Metric names after the subsystem prefix. */
export const SecurityMetric = {
  /** Rejected commands, one series per `reason` attribute. Counter. */
  REJECTIONS_TOTAL: 'command_verifier.rejections_total',
  /** Accepted commands. Counter. */
  ACCEPTED_TOTAL: 'command_verifier.accepted_total',
  /** Verification latency in ms, one series per `stat` attribute (last, p50, p95). */
  VALIDATION_LATENCY_MS: 'command_verifier.validation_latency_ms',
  /** Nonces currently held. Gauge. */
  NONCE_LEDGER_SIZE: 'nonce_ledger.size',
  /** Unexpired nonces evicted because the ledger was full. Counter. */
  NONCE_LEDGER_EVICTIONS_TOTAL: 'nonce_ledger.evictions_total',
  /** The ledger's TTL, exported for runbook parity. Constant gauge. */
  NONCE_LEDGER_TTL_SECONDS: 'nonce_ledger.ttl_seconds',
} as const;

/** One of the {@link SecurityMetric} suffixes. */
export type SecurityMetric = (typeof SecurityMetric)[keyof typeof SecurityMetric];

/** The full metric name for `source` (e.g. `kasmina` + `nonce_ledger.size`). */
export function securityMetricName(source: string, metric: SecurityMetric): string {
  return `${source}.${metric}`;
}
