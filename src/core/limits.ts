/**
 * Contract bounds (spec 01 rule 3), in one place. Producers that exceed a bound fail with
 * a typed error; consumers reject.
 */
export const CONTRACT_LIMITS = {
  /** `BlendConfig.alpha_vec` entries. */
  alphaVecMaxEntries: 64,
  /** `BlendConfig.policy_logits` entries. */
  policyLogitsMaxEntries: 64,
  /** `extra_metrics` entries on TrainingMetrics and FieldReport. */
  extraMetricsMaxEntries: 8,
  /** Largest encoded message accepted by {@link decodeMessage}. @default 4 MiB */
  messageMaxBytes: 4 * 1024 * 1024,
  /** Deepest message nesting walked when validating a decoded message. */
  messageMaxDepth: 32,
} as const;
