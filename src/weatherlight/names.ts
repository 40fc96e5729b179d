/**
 * Weatherlight's metric and event names, spelled as the reference gives them
 * (prototype-tolaria-oona-nissa-weatherlight §5.5). Every Weatherlight file takes its names
 * from here.
 */

/** The `source_subsystem` of every packet the supervisor emits. */
export const WEATHERLIGHT_SOURCE = 'weatherlight';

/** Metric names of the supervisor's periodic packet, in the order it lists them. */
export const WeatherlightMetric = {
  /** Services running now (unit `count`). */
  TASKS_RUNNING: 'weatherlight.tasks.running',
  /** Services waiting out a restart backoff now (unit `count`). */
  TASKS_BACKING_OFF: 'weatherlight.tasks.backing_off',
  /** Monotonic time since the supervisor started (unit `seconds`). */
  UPTIME_S: 'weatherlight.uptime_s',
  /** Restarts of every service since start (unit `count`). */
  RESTARTS_TOTAL: 'weatherlight.restarts_total',
  /** Wall time of the latest service failure, Unix seconds; present once one failed (unit `unix_s`). */
  LAST_ERROR_TS: 'weatherlight.last_error_ts',
} as const;

/** Union of {@link WeatherlightMetric} values. */
export type WeatherlightMetric = (typeof WeatherlightMetric)[keyof typeof WeatherlightMetric];

/** Per-service metric suffixes: the metric is `weatherlight.worker.<name>.<suffix>`. */
export const WorkerMetricSuffix = {
  /** 1 while the service runs, else 0 (unit `bool`). */
  RUNNING: 'running',
  /** Restarts of this service since start (unit `count`). */
  RESTARTS: 'restarts',
  /** The backoff being waited out, with its jitter; present only while backing off (unit `seconds`). */
  BACKOFF_SECONDS: 'backoff_seconds',
} as const;

/** Union of {@link WorkerMetricSuffix} values. */
export type WorkerMetricSuffix = (typeof WorkerMetricSuffix)[keyof typeof WorkerMetricSuffix];

/** `weatherlight.worker.<name>.<suffix>`. */
export function workerMetric(name: string, suffix: WorkerMetricSuffix): string {
  return `weatherlight.worker.${name}.${suffix}`;
}

/** Event descriptions. Levels (and so priorities, by the spec 01 table) are noted per event. */
export const WeatherlightEvent = {
  /** WARNING (priority NORMAL): a service crashed (attributes `worker`, `error`, ...). */
  WORKER_ERROR: 'worker_error',
  /** INFO: a crashed service was started again after its backoff. */
  WORKER_RESTARTED: 'worker_restarted',
  /** INFO: a service ended on its own, successfully; it is not restarted. */
  WORKER_COMPLETED: 'worker_completed',
  /** CRITICAL: a service crashed more often than its restart budget allows; it stays down. */
  WORKER_BUDGET_EXHAUSTED: 'worker_budget_exhausted',
  /** WARNING when the mode becomes `degraded`, INFO when it is `operational` again. */
  MODE_CHANGED: 'mode_changed',
} as const;

/** Union of {@link WeatherlightEvent} values. */
export type WeatherlightEvent = (typeof WeatherlightEvent)[keyof typeof WeatherlightEvent];

/**
 * The system mode (health indicator `system_mode`): `degraded` while any service is backing
 * off or has exhausted its restart budget, `operational` otherwise.
 */
export const SupervisorMode = {
  OPERATIONAL: 'operational',
  DEGRADED: 'degraded',
} as const;

/** Union of {@link SupervisorMode} values. */
export type SupervisorMode = (typeof SupervisorMode)[keyof typeof SupervisorMode];
