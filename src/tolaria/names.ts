/**
 * Tolaria's telemetry names and units: the one place they are spelled. Names follow the
 * prototype (reference prototype-tolaria-oona-nissa-weatherlight §2.7, prototype-rc1-plan
 * §3.1 "Tolaria metric and event inventory"); names the prototype lacked (validation,
 * checkpoints, rollback budgets) follow the same `tolaria.<area>.<what>` scheme.
 *
 * Deliberate departures (reference §2.7):
 * - The controller/executor timeout events are spelled `tamiyo_timeout` and
 *   `kasmina_timeout`, without the prototype's `tolaria.` prefix, because those are the
 *   names the spec 01 priority table (`src/core/priority.ts`) escalates to HIGH; the
 *   prefixed names would be routed NORMAL.
 * - The `tolaria.train.{compile,amp,tf32,foreach}_enabled` and `pin_memory` flags, the
 *   PCGrad aggregation metrics and the profiler counters are not emitted: nothing here
 *   compiles, autocasts, pins memory, aggregates micro-batches or profiles, so they would
 *   be invented constants.
 */

/** Telemetry source of every Tolaria packet. */
export const TOLARIA_SOURCE = 'tolaria';

/** A metric name with its unit. */
export interface MetricName {
  readonly name: string;
  readonly unit: string;
}

const metric = (name: string, unit: string): MetricName => Object.freeze({ name, unit });

/** Every metric Tolaria emits, with its unit. */
export const TolariaMetric = {
  /** Mean training loss of the epoch's batches (sample-weighted). */
  TRAINING_LOSS: metric('tolaria.training.loss', 'loss'),
  /** Training accuracy of the epoch (correct / samples). */
  TRAINING_ACCURACY: metric('tolaria.training.accuracy', 'ratio'),
  /** Wall time of the epoch's training steps. */
  TRAINING_LATENCY_MS: metric('tolaria.training.latency_ms', 'ms'),
  /** Training throughput of the epoch. */
  TRAINING_SAMPLES_PER_S: metric('tolaria.training.samples_per_s', 'samples/s'),
  /** Median wall time of one training step in the epoch. */
  TRAINING_STEP_LATENCY_MS: metric('tolaria.training.step_latency_ms', 'ms'),
  /** Loss on the validation split after the epoch. */
  VALIDATION_LOSS: metric('tolaria.validation.loss', 'loss'),
  /** Accuracy on the validation split after the epoch. */
  VALIDATION_ACCURACY: metric('tolaria.validation.accuracy', 'ratio'),
  /** Wall time of the validation pass. */
  VALIDATION_LATENCY_MS: metric('tolaria.validation.latency_ms', 'ms'),
  /** Seeds the executor exports (any stage). */
  SEEDS_ACTIVE: metric('tolaria.seeds.active', 'count'),
  /** Hook (controller + executor) latency of the epoch's last step; only when non-zero. */
  EPOCH_HOOK_LATENCY_MS: metric('tolaria.epoch_hook.latency_ms', 'ms'),
  /** Largest hook latency of the epoch's steps. */
  HOOK_LATENCY_MS: metric('tolaria.hook.latency_ms', 'ms'),
  /** State of the trainer's breaker (CircuitBreakerState number). */
  BREAKER_STATE: metric('tolaria.breaker.state', 'state'),
  /** 1 while conservative mode is active (the controller is not called). */
  MODE_CONSERVATIVE: metric('tolaria.mode.conservative', 'bool'),
  EPOCHS_TOTAL: metric('tolaria.epochs.total', 'count'),
  EPOCHS_FAILED: metric('tolaria.epochs.failed', 'count'),
  /** Global optimizer steps taken so far. */
  STEPS_TOTAL: metric('tolaria.steps.total', 'count'),
  LR_CONTROLLER_ENABLED: metric('tolaria.lr_controller.enabled', 'bool'),
  LR_CONTROLLER_CURRENT_LR: metric('tolaria.lr_controller.current_lr', 'lr'),
  OPT_REBUILDS_TOTAL: metric('tolaria.opt.rebuilds_total', 'count'),
  OPT_REBUILD_FAILURES_TOTAL: metric('tolaria.opt.rebuild_failures_total', 'count'),
  OPT_REBUILD_SKIPPED_TOTAL: metric('tolaria.opt.rebuild_skipped_total', 'count'),
  OPT_REBUILD_LATENCY_MS: metric('tolaria.opt.rebuild_latency_ms', 'ms'),
  TIMEOUT_TAMIYO_TOTAL: metric('tolaria.timeout.tamiyo_total', 'count'),
  TIMEOUT_KASMINA_TOTAL: metric('tolaria.timeout.kasmina_total', 'count'),
  /** Elapsed time of the last controller call that missed its deadline. */
  TIMEOUT_TAMIYO_LAST_MS: metric('tolaria.timeout.tamiyo_last_ms', 'ms'),
  TIMEOUT_KASMINA_LAST_MS: metric('tolaria.timeout.kasmina_last_ms', 'ms'),
  /** Bytes held by the fast rollback cache. */
  ROLLBACK_FAST_SIZE_BYTES: metric('tolaria.rollback.fast_size_bytes', 'bytes'),
  ROLLBACK_FAST_HITS_TOTAL: metric('tolaria.rollback.fast_hits_total', 'count'),
  ROLLBACK_FAST_MISSES_TOTAL: metric('tolaria.rollback.fast_misses_total', 'count'),
  ROLLBACK_SNAPSHOTS_TOTAL: metric('tolaria.rollback.snapshots_total', 'count'),
  ROLLBACK_FAILURES_TOTAL: metric('tolaria.rollback.failures_total', 'count'),
  ROLLBACK_DEADLINE_EXCEEDED_TOTAL: metric('tolaria.rollback.deadline_exceeded_total', 'count'),
  /** Duration of the last restore; attribute `tier` = fast | full. */
  ROLLBACK_RESTORE_LATENCY_MS: metric('tolaria.rollback.restore_latency_ms', 'ms'),
  /** The restore budget of a tier (reference SLA: fast 500 ms, full 12 s); attribute `tier`. */
  ROLLBACK_BUDGET_MS: metric('tolaria.rollback.budget_ms', 'ms'),
  CHECKPOINT_WRITES_TOTAL: metric('tolaria.checkpoint.writes_total', 'count'),
  CHECKPOINT_WRITE_LATENCY_MS: metric('tolaria.checkpoint.write_latency_ms', 'ms'),
  CHECKPOINT_BYTES: metric('tolaria.checkpoint.bytes', 'bytes'),
  /** Current emergency level (EmergencyLevel number). */
  EMERGENCY_LEVEL: metric('tolaria.emergency.level', 'level'),
  EMERGENCY_BROADCASTS_TOTAL: metric('tolaria.emergency.broadcasts_total', 'count'),
  EMERGENCY_HALTS_TOTAL: metric('tolaria.emergency.halts_total', 'count'),
  EMERGENCY_HALT: metric('tolaria.emergency.halt', 'bool'),
  /** Steps whose loss was not finite. */
  NON_FINITE_LOSS_TOTAL: metric('tolaria.training.non_finite_loss_total', 'count'),
  /** Mean per-step gradient L2 norm of one seed's variables; attributes `seed_id`, `site_id`, `stage`. */
  SEED_GRAD_NORM: metric('tolaria.grad_agg.seed.norm', 'grad'),
  /** Mean per-step share of one seed in the summed gradient norms (host included). */
  SEED_GRAD_SHARE: metric('tolaria.grad_agg.seed.share', 'ratio'),
  /** Parameters of one seed. */
  SEED_PARAMS: metric('tolaria.grad_agg.seed.params', 'elems'),
  /** Parameters of one seed over all trainable parameters. */
  SEED_MASK_FRACTION: metric('tolaria.grad_agg.seed.mask_fraction', 'ratio'),
  /** Process CPU time over wall time during the epoch (may exceed 100 on several cores). */
  CPU_UTIL_PERCENT: metric('tolaria.process.cpu_util_percent', 'percent'),
} as const;

/** Event descriptions Tolaria emits. */
export const TolariaEvent = {
  /** The controller missed its deadline (WARNING; escalates to HIGH). */
  TAMIYO_TIMEOUT: 'tamiyo_timeout',
  /** The controller threw (WARNING). */
  TAMIYO_ERROR: 'tolaria.tamiyo_error',
  /** The executor missed its deadline (WARNING; escalates to HIGH). */
  KASMINA_TIMEOUT: 'kasmina_timeout',
  /** The executor threw (WARNING). */
  KASMINA_ERROR: 'tolaria.kasmina_error',
  /** The epoch's summed hook time exceeded the epoch budget (WARNING; escalates to HIGH). */
  EPOCH_BUDGET: 'epoch_budget',
  /** A step's hook time exceeded the hook budget (WARNING; escalates to HIGH). */
  HOOK_BUDGET: 'hook_budget',
  /** An epoch failed; attribute `reason` (WARNING). */
  EPOCH_FAILED: 'tolaria.epoch_failed',
  BREAKER_OPENED: 'tolaria.breaker_opened',
  CONSERVATIVE_MODE_ENTERED: 'tolaria.conservative_mode_entered',
  CONSERVATIVE_MODE_CLEARED: 'tolaria.conservative_mode_cleared',
  /** A step's loss was NaN or infinite (ERROR). */
  NON_FINITE_LOSS: 'tolaria.non_finite_loss',
  /** A step's loss diverged from its recent history (ERROR). */
  LOSS_EXPLOSION: 'tolaria.loss_explosion',
  EMERGENCY_ESCALATED: 'tolaria.emergency.escalated',
  EMERGENCY_HALT: 'tolaria.emergency.halt',
  /** A rollback restored a snapshot; attributes `tier`, `latency_ms`, `budget_ms`, `to_step`. */
  ROLLBACK_RESTORED: 'tolaria.rollback.restored',
  /** A restore took longer than its tier's budget (WARNING; escalates as `rollback_deadline`). */
  ROLLBACK_DEADLINE: 'rollback_deadline',
  /** No tier could restore (CRITICAL). */
  ROLLBACK_RESTORE_FAILED: 'tolaria.rollback.restore_failed',
  /** A dataset's byte cache failed verification and was rebuilt; attributes `file`, `reason` (WARNING). */
  DATASET_CACHE_REBUILT: 'tolaria.dataset.cache_rebuilt',
  /** A dataset's byte cache could not be written (the load goes on); attributes `file`, `error` (WARNING). */
  DATASET_CACHE_WRITE_FAILED: 'tolaria.dataset.cache_write_failed',
  OPTIMIZER_REBUILT: 'tolaria.opt.rebuilt',
  OPTIMIZER_REBUILD_SKIPPED: 'tolaria.opt.rebuild_skipped',
  OPTIMIZER_REBUILD_FAILED: 'tolaria.opt.rebuild_failed',
  CHECKPOINT_WRITTEN: 'tolaria.checkpoint.written',
  CHECKPOINT_FAILED: 'tolaria.checkpoint.failed',
  CHECKPOINT_RESTORED: 'tolaria.checkpoint.restored',
  /** A checkpoint record passed over on resume or restore: truncated, CRC, SHA-256 or malformed (WARNING). */
  CHECKPOINT_DISCARDED: 'tolaria.checkpoint.discarded',
  /** An OPTIMIZER or ROLLBACK command Tolaria verified and applied. */
  COMMAND_APPLIED: 'tolaria.command.applied',
  /** A command Tolaria did not apply, with its reason (`CommandRefusal`). */
  COMMAND_NOT_APPLIED: 'tolaria.command.not_applied',
  /** Training stopped at a step boundary because its signal aborted (INFO). */
  TRAINING_ABORTED: 'tolaria.training.aborted',
  /** The epoch had no training samples (ERROR). */
  ZERO_SAMPLES: 'zero_samples',
} as const;

/** Union of {@link TolariaEvent} values. */
export type TolariaEvent = (typeof TolariaEvent)[keyof typeof TolariaEvent];
