/**
 * Options of the {@link Supervisor} (`supervisor.ts`): defaults in one place, merged and
 * validated eagerly by {@link resolveSupervisorOptions}.
 */
import { MAX_TIMER_MS, optionChecks, systemClock, type Clock, type TelemetrySink } from '../core/index.js';
import { BACKOFF_DEFAULTS, RESTART_BUDGET_DEFAULTS, type BackoffPolicy, type RestartBudgetPolicy } from './backoff.js';
import type { ServiceOutput, ServiceSpec } from './service-instance.js';

/** Timers the supervisor waits with (backoff, telemetry cadence, drain deadline); tests inject their own. */
export interface SupervisorTimers {
  /** Calls `callback` once after `delayMs`; the returned function cancels it. */
  setTimer(delayMs: number, callback: () => void): () => void;
}

/** Node's timers. */
export const realTimers: SupervisorTimers = {
  setTimer(delayMs, callback) {
    const timer = setTimeout(callback, delayMs);
    return () => clearTimeout(timer);
  },
};

/** Options of {@link Supervisor}. */
export interface SupervisorOptions {
  /** The services, started in this order; names must be unique. */
  readonly services: readonly ServiceSpec[];
  /** Receives the periodic packet and the event packets. */
  readonly telemetry: TelemetrySink;
  /**
   * Restart backoff: the n-th consecutive failure waits `min(baseMs·2ⁿ, maxMs)` plus up to
   * `jitterRatio` of it.
   * @default { baseMs: 1000, maxMs: 30000, jitterRatio: 0.25 }
   */
  readonly backoff?: Partial<BackoffPolicy>;
  /**
   * Restarts allowed per service within a sliding window; the failure past them stops the
   * service for good (CRITICAL `worker_budget_exhausted`).
   * @default { maxRestarts: 5, windowMs: 300000 }
   */
  readonly restartBudget?: Partial<RestartBudgetPolicy>;
  /**
   * A run that lasted at least this long before it crashed counts as healthy: its crash
   * waits the first backoff step again. (The prototype never reset its backoff.)
   * @default 60000
   */
  readonly healthyAfterMs?: number;
  /**
   * Cadence of the periodic telemetry packet, in ms.
   * @default 10000
   */
  readonly telemetryIntervalMs?: number;
  /**
   * How long shutdown waits for services to end after SIGTERM (or abort) before it sends
   * SIGKILL; and again for killed children to be reaped.
   * @default 10000
   */
  readonly drainDeadlineMs?: number;
  /** @default systemClock */
  readonly clock?: Clock;
  /** @default Node's timers */
  readonly timers?: SupervisorTimers;
  /**
   * Uniform random numbers in [0, 1) for the jitter.
   * @default Math.random
   */
  readonly random?: () => number;
  /**
   * Where children's stdout and stderr lines go, prefixed `[name] `.
   * @default process.stdout and process.stderr
   */
  readonly output?: ServiceOutput;
}

/** {@link SupervisorOptions} with every default applied. */
export interface ResolvedSupervisorOptions {
  readonly services: readonly ServiceSpec[];
  readonly telemetry: TelemetrySink;
  readonly backoff: BackoffPolicy;
  readonly restartBudget: RestartBudgetPolicy;
  readonly healthyAfterMs: number;
  readonly telemetryIntervalMs: number;
  readonly drainDeadlineMs: number;
  readonly clock: Clock;
  readonly timers: SupervisorTimers;
  readonly random: () => number;
  readonly output: ServiceOutput;
}

/** The defaults of {@link SupervisorOptions}. */
export const SUPERVISOR_DEFAULTS = Object.freeze({
  healthyAfterMs: 60_000,
  telemetryIntervalMs: 10_000,
  drainDeadlineMs: 10_000,
});

/** Service names: they become part of metric names. */
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Merges `options` over the defaults and validates every field.
 * @throws EsperError INVALID_ARGUMENT naming the bad field
 */
export function resolveSupervisorOptions(options: SupervisorOptions): ResolvedSupervisorOptions {
  const check = optionChecks('SupervisorOptions');
  if (!Array.isArray(options.services)) check.fail('services', 'an array of services', options.services);
  const seen = new Set<string>();
  for (const [index, service] of options.services.entries()) {
    const field = `services[${index}]`;
    if (typeof service.name !== 'string' || !SERVICE_NAME.test(service.name)) {
      check.fail(`${field}.name`, 'a name of letters, digits, ".", "_" or "-" (at most 64)', service.name);
    }
    if (seen.has(service.name)) check.fail(`${field}.name`, 'a name no other service has', service.name);
    seen.add(service.name);
    if (service.kind === 'worker') check.func(`${field}.run`, service.run);
    else if (service.kind === 'process') {
      if (!Array.isArray(service.args)) check.fail(`${field}.args`, 'an array of strings', service.args);
    } else check.fail(`${field}.kind`, '"process" or "worker"', (service as { kind: unknown }).kind);
  }
  if (typeof options.telemetry?.emit !== 'function') check.fail('telemetry', 'a TelemetrySink', options.telemetry);

  const baseMs = check.number('backoff.baseMs', options.backoff?.baseMs ?? BACKOFF_DEFAULTS.baseMs, { greaterThan: 0, max: MAX_TIMER_MS });
  const maxMs = check.number('backoff.maxMs', options.backoff?.maxMs ?? BACKOFF_DEFAULTS.maxMs, { min: baseMs, max: MAX_TIMER_MS / 2 });
  const jitterRatio = check.number('backoff.jitterRatio', options.backoff?.jitterRatio ?? BACKOFF_DEFAULTS.jitterRatio, { min: 0, max: 1 });
  const maxRestarts = check.integer(
    'restartBudget.maxRestarts',
    options.restartBudget?.maxRestarts ?? RESTART_BUDGET_DEFAULTS.maxRestarts,
    {
      min: 0,
    },
  );
  const windowMs = check.number('restartBudget.windowMs', options.restartBudget?.windowMs ?? RESTART_BUDGET_DEFAULTS.windowMs, {
    greaterThan: 0,
  });
  return {
    services: options.services,
    telemetry: options.telemetry,
    backoff: { baseMs, maxMs, jitterRatio },
    restartBudget: { maxRestarts, windowMs },
    healthyAfterMs: check.nonNegative('healthyAfterMs', options.healthyAfterMs ?? SUPERVISOR_DEFAULTS.healthyAfterMs),
    telemetryIntervalMs: check.number('telemetryIntervalMs', options.telemetryIntervalMs ?? SUPERVISOR_DEFAULTS.telemetryIntervalMs, {
      greaterThan: 0,
      max: MAX_TIMER_MS,
    }),
    drainDeadlineMs: check.number('drainDeadlineMs', options.drainDeadlineMs ?? SUPERVISOR_DEFAULTS.drainDeadlineMs, {
      min: 0,
      max: MAX_TIMER_MS,
    }),
    clock: options.clock ?? systemClock,
    timers: options.timers ?? realTimers,
    random: options.random === undefined ? Math.random : check.func<() => number>('random', options.random),
    output: options.output ?? { stdout: process.stdout, stderr: process.stderr },
  };
}
