/** Options of the {@link AsyncWorker}, their defaults and their one resolver. */
import type { Clock } from './clock.js';
import { MAX_TIMER_MS, optionChecks } from './options.js';
import type { AsyncWorkerEvent } from './async-worker-types.js';

/**
 * Options of {@link AsyncWorker}; missing fields take the defaults. `settings.core.asyncWorker`
 * has this shape (its env names are given per field).
 */
export interface AsyncWorkerOptions {
  /**
   * Worker name, used in task names and error details.
   * @default 'esper-async-worker'
   */
  readonly name?: string;
  /**
   * Most tasks holding a slot at once (an integer ≥ 1). Env: `ESPER_ASYNC_WORKER_MAX_CONCURRENCY`.
   * @default 4
   */
  readonly maxConcurrency?: number;
  /**
   * Most tasks waiting for a slot (an integer ≥ 0); past it `submit` throws
   * `WORKER_QUEUE_FULL`. 0 means "run now or reject". Env: `ESPER_ASYNC_WORKER_MAX_QUEUE_DEPTH`.
   * @default 1024
   */
  readonly maxQueueDepth?: number;
  /**
   * Deadline, in milliseconds from submission, for tasks submitted without their own
   * `deadlineMs`. Undefined or `Infinity` means no default deadline.
   * Env: `ESPER_ASYNC_WORKER_DEFAULT_DEADLINE_MS`.
   * @default undefined
   */
  readonly defaultDeadlineMs?: number;
  /**
   * How long `close()` waits, in milliseconds, for aborted tasks to settle before it returns
   * anyway. Env: `ESPER_ASYNC_WORKER_SHUTDOWN_TIMEOUT_MS`.
   * @default 5000
   */
  readonly shutdownTimeoutMs?: number;
  /**
   * Time source for submission stamps and latency stats. Deadlines are enforced by real
   * timers and so are measured on the real monotonic clock (`performance.now()`), whatever
   * clock is injected.
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * Receives every {@link AsyncWorkerEvent}, synchronously. It must not throw; if it does,
   * the error is swallowed and counted in `stats().observerErrors`.
   * @default undefined
   */
  readonly observer?: (event: AsyncWorkerEvent) => void;
}

/** The data part of {@link AsyncWorkerOptions} after defaults and validation. Frozen. */
export interface ResolvedAsyncWorkerOptions {
  readonly name: string;
  readonly maxConcurrency: number;
  readonly maxQueueDepth: number;
  /** Undefined when tasks have no default deadline. */
  readonly defaultDeadlineMs: number | undefined;
  readonly shutdownTimeoutMs: number;
}

/** Defaults of {@link AsyncWorkerOptions}; the one place they live. */
export const ASYNC_WORKER_DEFAULTS: ResolvedAsyncWorkerOptions = Object.freeze({
  name: 'esper-async-worker',
  maxConcurrency: 4,
  maxQueueDepth: 1024,
  defaultDeadlineMs: undefined,
  shutdownTimeoutMs: 5000,
});

const check = optionChecks('AsyncWorker');

/** A deadline: a positive number of ms up to the timer limit; `Infinity` means none. */
export function checkDeadline(owner: string, field: string, value: unknown): number | undefined {
  if (value === Infinity) return undefined;
  return optionChecks(owner).number(field, value, { greaterThan: 0, max: MAX_TIMER_MS });
}

/** How long to wait at most: a number of ms from 0 up to the timer limit. */
export function checkTimeout(owner: string, field: string, value: unknown): number {
  return optionChecks(owner).number(field, value, { min: 0, max: MAX_TIMER_MS });
}

/**
 * Merges `options` → {@link ASYNC_WORKER_DEFAULTS}, validates every field and freezes the
 * result. Throws `INVALID_ARGUMENT` naming the bad field in the message and in
 * `details.field`. Environment variables (`ESPER_ASYNC_WORKER_*`) are read once, by
 * `loadSettings`; pass `settings.core.asyncWorker` here.
 */
export function resolveAsyncWorkerOptions(options: AsyncWorkerOptions = {}): ResolvedAsyncWorkerOptions {
  const d = ASYNC_WORKER_DEFAULTS;
  if (options.clock !== undefined && typeof options.clock.monotonicMs !== 'function') check.fail('clock', 'a Clock', options.clock);
  if (options.observer !== undefined) check.func('observer', options.observer);
  const deadline = options.defaultDeadlineMs ?? d.defaultDeadlineMs;
  return Object.freeze({
    name: check.nonEmptyString('name', options.name ?? d.name),
    maxConcurrency: check.integer('maxConcurrency', options.maxConcurrency ?? d.maxConcurrency, { min: 1 }),
    maxQueueDepth: check.integer('maxQueueDepth', options.maxQueueDepth ?? d.maxQueueDepth, { min: 0 }),
    defaultDeadlineMs: deadline === undefined ? undefined : checkDeadline('AsyncWorker', 'defaultDeadlineMs', deadline),
    shutdownTimeoutMs: checkTimeout('AsyncWorker', 'shutdownTimeoutMs', options.shutdownTimeoutMs ?? d.shutdownTimeoutMs),
  });
}
