/**
 * Tezzeret metric names, spelled as reference prototype-blueprint-pipeline §2.4 gives them
 * (the subset the compiler core maintains; job, retry and strategy metrics belong to the forge).
 */
export const TezzeretMetric = {
  COMPILATION_TOTAL: 'tezzeret.compilation.total',
  COMPILATION_FAILED: 'tezzeret.compilation.failed',
  LAST_COMPILE_MS: 'tezzeret.compilation.last_compile_ms',
  LAST_PREWARM_MS: 'tezzeret.compilation.last_prewarm_ms',
} as const;

/** Union of {@link TezzeretMetric} values. */
export type TezzeretMetric = (typeof TezzeretMetric)[keyof typeof TezzeretMetric];

/** Forge metric names, spelled as reference §3.3 / §7 gives them (plus `skipped`/`resumed`/`timed_out`). */
export const TezzeretForgeMetric = {
  BREAKER_STATE: 'tezzeret.breaker.state',
  BREAKER_OPEN_TOTAL: 'tezzeret.breaker.open_total',
  COMPILE_CONSECUTIVE_FAILURES: 'tezzeret.compile.consecutive_failures',
  BREAKER_CONSECUTIVE_FAILURES: 'tezzeret.breaker.consecutive_failures',
  MODE_CONSERVATIVE: 'tezzeret.mode.conservative',
  JOBS_TOTAL: 'tezzeret.jobs.total',
  JOBS_STARTED: 'tezzeret.jobs.started',
  JOBS_COMPLETED: 'tezzeret.jobs.completed',
  JOBS_FAILED: 'tezzeret.jobs.failed',
  JOBS_RETRIED: 'tezzeret.jobs.retried',
  /** Jobs skipped because the WAL says done and Urza holds the same checksum. */
  JOBS_SKIPPED: 'tezzeret.jobs.skipped',
  /** Jobs redone because the WAL shows them started but not done (a crash). */
  JOBS_RESUMED: 'tezzeret.jobs.resumed',
  FAILED_ATTEMPTS: 'tezzeret.compilation.failed_attempts',
  TIMED_OUT: 'tezzeret.compilation.timed_out',
  PUBLISH_FAILED: 'tezzeret.publish.failed',
} as const;

/** Union of {@link TezzeretForgeMetric} values. */
export type TezzeretForgeMetric = (typeof TezzeretForgeMetric)[keyof typeof TezzeretForgeMetric];

/** Forge event names (reference §3.1–§3.2, §7). */
export const TezzeretForgeEvent = {
  COMPILE_STARTED: 'tezzeret.compile_started',
  COMPILE_SUCCEEDED: 'tezzeret.compile_succeeded',
  COMPILE_FAILED: 'tezzeret.compile_failed',
  BREAKER_OPEN: 'tezzeret.breaker_open',
  BREAKER_OPEN_SKIP: 'tezzeret.breaker_open_skip',
  PUBLISH_FAILED: 'tezzeret.publish_failed',
} as const;

/** Union of {@link TezzeretForgeEvent} values. */
export type TezzeretForgeEvent = (typeof TezzeretForgeEvent)[keyof typeof TezzeretForgeEvent];
