/**
 * Names of the executor's telemetry (reference prototype-kasmina §14.6–§14.7 and
 * prototype-rc1-plan §3.3), for the events and metrics `executor.ts` emits. The cache,
 * fetcher and prefetch names live in `names.ts`.
 */

/** Events of the seed executor. */
export const SeedEvent = {
  SEED_OPERATION: 'seed_operation',
  SEED_STAGE: 'seed_stage',
  STAGE_TRANSITION: 'stage_transition',
  ILLEGAL_TRANSITION: 'illegal_transition',
  GATE_EVENT: 'gate_event',
  GATE_FAILURE: 'gate_failure',
  KERNEL_ATTACHED: 'kernel_attached',
  KERNEL_FETCH_FAILED: 'kernel_fetch_failed',
  BLEND_CONFIG: 'blend_config',
  CONFIDENCE_GATE_MISSING_LOGITS: 'confidence_gate_missing_logits',
  ISOLATION_VIOLATION: 'isolation_violation',
  CONTRIBUTION_MEASURED: 'contribution_measured',
  GRADIENT_INIT: 'gradient_init',
  SEED_FOSSILIZED: 'seed_fossilized',
  SEED_CULLED: 'seed_culled',
  SEED_RESET: 'seed_reset',
  SEED_TERMINATED: 'seed_terminated',
  SEED_PAUSED: 'seed_paused',
  SEED_RESUMED: 'seed_resumed',
  SEED_OPERATION_IGNORED: 'seed_operation_ignored',
  PAUSE_ACKNOWLEDGED: 'pause_acknowledged',
  OPTIMIZER_ADJUST: 'optimizer_adjust',
  BREAKER_EVENT: 'breaker_event',
  EMERGENCY_CLEANUP: 'emergency_cleanup',
  ROLLBACK_FORWARDED: 'rollback_forwarded',
  UNSUPPORTED_COMMAND: 'unsupported_command',
  REGISTRY_RESET: 'registry_reset',
  TEACHER_DEREGISTERED: 'teacher_deregistered',
  TEACHER_REGISTERED: 'teacher_registered',
  MEMORY_GC: 'memory_gc',
} as const;

/** Union of {@link SeedEvent} values. */
export type SeedEvent = (typeof SeedEvent)[keyof typeof SeedEvent];

/** Metrics of the seed executor. Per-seed ones carry the attribute `seed_id`. */
export const SeedMetric = {
  SEEDS_ACTIVE: 'kasmina.seeds.active',
  SEEDS_FOSSILIZED: 'kasmina.seeds.fossilized',
  SEEDS_CULLED_TOTAL: 'kasmina.seeds.culled_total',
  ISOLATION_VIOLATIONS: 'kasmina.isolation.violations',
  ISOLATION_CHECKS: 'kasmina.isolation.checks_total',
  BREAKER_STATE: 'kasmina.breaker.state',
  BREAKER_FAILURES: 'kasmina.breaker.failures',
  GATE_FAILURES_TOTAL: 'kasmina.gate_failures_total',
  ILLEGAL_TRANSITIONS_TOTAL: 'kasmina.illegal_transitions_total',
  COMMANDS_APPLIED_TOTAL: 'kasmina.commands.applied_total',
  REGISTRY_ENTRIES: 'kasmina.registry.entries',
  SEED_STAGE: 'kasmina.seed.stage',
  SEED_ALPHA: 'kasmina.seed.alpha',
  SEED_ALPHA_STEPS: 'kasmina.seed.alpha_steps',
  SEED_KERNEL_ATTACHED: 'kasmina.seed.kernel_attached',
  SEED_KERNEL_LATENCY_MS: 'kasmina.seed.kernel_latency_ms',
  SEED_ISOLATION_VIOLATIONS: 'kasmina.seed.isolation_violations',
  SEED_ISOLATION_LEAK: 'kasmina.seed.isolation.leak',
  SEED_GRADIENT_NORM: 'kasmina.seed.gradient_norm',
  SEED_CONTRIBUTION: 'kasmina.seed.contribution',
  SEED_PARAMETERS: 'kasmina.seed.parameters',
  SEED_STEPS_IN_STAGE: 'kasmina.seed.steps_in_stage',
} as const;

/** Union of {@link SeedMetric} values. */
export type SeedMetric = (typeof SeedMetric)[keyof typeof SeedMetric];
