/**
 * The one shared async worker (spec 00 §2): bounded concurrency, a bounded FIFO queue with
 * back-pressure, deadlines measured from submission, `AbortSignal` cancellation, bounded
 * shutdown and stats. Departures from the prototype: docs/architecture.md, Core.
 */
import { systemClock, type Clock } from './clock.js';
import { closeOnce } from './close.js';
import { ErrorCode, EsperError } from './errors.js';
import { reasonOf } from './failure.js';
import {
  checkDeadline,
  checkTimeout,
  resolveAsyncWorkerOptions,
  type AsyncWorkerOptions,
  type ResolvedAsyncWorkerOptions,
} from './async-worker-options.js';
import type {
  AsyncTask,
  AsyncTaskCancelSource,
  AsyncTaskHandle,
  AsyncTaskOptions,
  AsyncTaskOutcome,
  AsyncTaskState,
  AsyncWorkerCloseOptions,
  AsyncWorkerCloseSummary,
  AsyncWorkerEvent,
  AsyncWorkerState,
  AsyncWorkerStats,
} from './async-worker-types.js';
import { optionChecks } from './options.js';
import { SampleWindow } from './quantile.js';
import { ServiceState } from './service-state.js';

/** Size of the latency window behind `latencyP50Ms` / `latencyP95Ms`. */
export const ASYNC_WORKER_LATENCY_WINDOW_SAMPLES = 1024;

const taskCheck = optionChecks('AsyncTaskOptions');

/**
 * The outcome a task's rejected `result` stands for: `timed_out` (`WORKER_TIMEOUT`),
 * `cancelled` (`WORKER_CANCELLED`), else `failed` (the task's own error).
 *
 * ```ts
 * handle.result.catch((error) => count(rejectionOutcome(error)));
 * ```
 */
export function rejectionOutcome(error: unknown): Exclude<AsyncTaskOutcome, 'completed'> {
  return reasonOf<Exclude<AsyncTaskOutcome, 'completed'>>(
    error,
    { [ErrorCode.WORKER_TIMEOUT]: 'timed_out', [ErrorCode.WORKER_CANCELLED]: 'cancelled' },
    () => 'failed',
  );
}

/** Internal bookkeeping of one task. */
interface TaskRecord {
  readonly name: string;
  readonly fn: AsyncTask<unknown>;
  readonly controller: AbortController;
  readonly submittedAtMs: number;
  readonly deadlineMs: number | undefined;
  /** `performance.now()` at which the deadline passes (Infinity without one). */
  readonly deadlineAt: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  state: AsyncTaskState;
  /** Holds one of the `maxConcurrency` slots (from dispatch until the function settles). */
  holdsSlot: boolean;
  /** The task function was called and has not settled yet. */
  executing: boolean;
  abandoned: boolean;
  settledAtMs: number;
  timer: NodeJS.Timeout | undefined;
  callerSignal: AbortSignal | undefined;
  onCallerAbort: (() => void) | undefined;
}

const noop = (): void => {};

/**
 * Esper's one shared async worker. Runs at most `maxConcurrency` tasks at once, queues up
 * to `maxQueueDepth` more in FIFO order, and enforces per-task deadlines counted from
 * submission.
 *
 * **Abandoned tasks keep their slot.** JavaScript cannot kill a function that ignores its
 * `AbortSignal`. When a timeout, cancel or close settles a running task's result, the caller
 * is released at once, but the slot stays held until the function really settles. A
 * runaway task still burns the event loop, holds sockets and loads whatever it calls;
 * handing its slot to the next task would put more work in flight than `maxConcurrency`
 * allows, which is exactly what the limit protects. The price is that stuck tasks can
 * starve the pool. That is made visible rather than hidden: `abandoned`/`abandonedNow`
 * stats and `task_abandoned` events report them, queued tasks still time out on their own
 * deadlines (counted from submission) so callers never hang, a full queue rejects new work
 * (`WORKER_QUEUE_FULL`), and `close()` returns within its bound regardless.
 *
 * A task counts as abandoned if it has not settled by the event-loop turn after its abort:
 * a cooperative task (one that rejects from its abort listener, e.g. an aborted
 * `timers/promises` sleep or `fetch`) settles within the same turn and is not counted.
 *
 * Deadlines use one timer per task, armed at submission and cleared when the result
 * settles, so a timed-out result rejects as soon as Node runs that timer. A deadline never
 * fires early: Node truncates delays to whole milliseconds and measures them on a
 * millisecond loop clock, so a timer can fire up to ~2 ms before the exact deadline; the
 * handler checks `performance.now()` and re-arms for any remainder.
 */
export class AsyncWorker implements AsyncDisposable {
  /** The resolved, frozen configuration (log it at start). */
  readonly options: ResolvedAsyncWorkerOptions;
  readonly #clock: Clock;
  readonly #observer: ((event: AsyncWorkerEvent) => void) | undefined;

  readonly #state: ServiceState<AsyncWorkerState>;
  readonly #shutdownOnce = closeOnce((timeoutMs: number) => this.#shutdown(timeoutMs));
  #taskCounter = 0;
  /** Tasks waiting for a slot, in FIFO order (a Set gives O(1) removal on cancel). */
  readonly #queue = new Set<TaskRecord>();
  /** Tasks holding a slot, abandoned ones included. */
  readonly #slotHolders = new Set<TaskRecord>();
  #idleWaiters: Array<() => void> = [];

  #submitted = 0;
  #started = 0;
  #completed = 0;
  #failed = 0;
  #cancelled = 0;
  #timedOut = 0;
  #rejected = 0;
  #abandoned = 0;
  #abandonedNow = 0;
  #maxQueueDepthSeen = 0;
  #observerErrors = 0;
  readonly #latencies = new SampleWindow(ASYNC_WORKER_LATENCY_WINDOW_SAMPLES);

  /** @throws EsperError `INVALID_ARGUMENT` naming the bad option. */
  constructor(options: AsyncWorkerOptions = {}) {
    this.options = resolveAsyncWorkerOptions(options);
    this.#state = new ServiceState<AsyncWorkerState>(`async worker ${this.options.name}`, 'running');
    this.#clock = options.clock ?? systemClock;
    this.#observer = options.observer;
  }

  /** The worker's name. */
  get name(): string {
    return this.options.name;
  }

  /** Current lifecycle state. */
  get state(): AsyncWorkerState {
    return this.#state.current;
  }

  /**
   * Submits a task. It starts (on a microtask, never inside this call) as soon as a slot is
   * free; otherwise it waits in the queue.
   *
   * @throws EsperError `WORKER_CLOSED` after `close()`; `WORKER_QUEUE_FULL` when all slots
   *   are held and `maxQueueDepth` tasks already wait (both counted in `rejected`);
   *   `INVALID_ARGUMENT` for a non-function task or a bad option.
   */
  submit<T>(task: AsyncTask<T>, options: AsyncTaskOptions = {}): AsyncTaskHandle<T> {
    taskCheck.func('task', task);
    const deadlineMs =
      options.deadlineMs === undefined
        ? this.options.defaultDeadlineMs
        : checkDeadline('AsyncTaskOptions', 'deadlineMs', options.deadlineMs);
    if (options.name !== undefined) taskCheck.nonEmptyString('name', options.name);
    this.#taskCounter += 1;
    const name = options.name ?? `${this.options.name}-task-${this.#taskCounter}`;

    if (!this.#state.is('running')) {
      throw this.#reject(name, ErrorCode.WORKER_CLOSED, `worker ${this.options.name} is ${this.#state.current}; task ${name} refused`, {
        worker: this.options.name,
        task: name,
      });
    }
    const signal = options.signal;
    const slotFree = this.#slotHolders.size < this.options.maxConcurrency;
    if (!slotFree && !signal?.aborted && this.#queue.size >= this.options.maxQueueDepth) {
      throw this.#reject(
        name,
        ErrorCode.WORKER_QUEUE_FULL,
        `worker ${this.options.name} queue is full (${this.options.maxQueueDepth} waiting); task ${name} refused`,
        { worker: this.options.name, task: name, maxQueueDepth: this.options.maxQueueDepth },
      );
    }

    const now = performance.now();
    let resolve!: (value: unknown) => void;
    let reject!: (error: unknown) => void;
    const result = new Promise<T>((res, rej) => {
      resolve = res as (value: unknown) => void;
      reject = rej;
    });
    // Marked handled on purpose: cancel-and-forget must not crash the process with an
    // unhandled rejection. Callers that await `result` still see every rejection.
    result.catch(noop);

    const record: TaskRecord = {
      name,
      fn: task as AsyncTask<unknown>,
      controller: new AbortController(),
      submittedAtMs: this.#clock.monotonicMs(),
      deadlineMs,
      deadlineAt: deadlineMs === undefined ? Infinity : now + deadlineMs,
      resolve,
      reject,
      state: 'queued',
      holdsSlot: false,
      executing: false,
      abandoned: false,
      settledAtMs: 0,
      timer: undefined,
      callerSignal: undefined,
      onCallerAbort: undefined,
    };
    this.#submitted += 1;
    const handle: AsyncTaskHandle<T> = {
      name,
      submittedAtMs: record.submittedAtMs,
      deadlineMs,
      result,
      get state() {
        return record.state;
      },
      get abandoned() {
        return record.abandoned;
      },
      cancel: (reason?: string) => this.#cancel(record, 'handle', reason, undefined),
    };

    if (signal !== undefined) {
      if (signal.aborted) {
        this.#cancel(record, 'signal', undefined, signal.reason);
        return handle;
      }
      record.callerSignal = signal;
      record.onCallerAbort = () => this.#cancel(record, 'signal', undefined, signal.reason);
      signal.addEventListener('abort', record.onCallerAbort, { once: true });
    }
    if (deadlineMs !== undefined) {
      record.timer = setTimeout(() => this.#expire(record), deadlineMs);
    }
    if (slotFree) {
      this.#start(record);
    } else {
      this.#queue.add(record);
      if (this.#queue.size > this.#maxQueueDepthSeen) this.#maxQueueDepthSeen = this.#queue.size;
    }
    return handle;
  }

  /** A consistent snapshot of counters, gauges and latency percentiles. */
  stats(): AsyncWorkerStats {
    const [latencyP50Ms, latencyP95Ms] = this.#latencies.quantiles([0.5, 0.95]);
    return Object.freeze({
      submitted: this.#submitted,
      started: this.#started,
      completed: this.#completed,
      failed: this.#failed,
      cancelled: this.#cancelled,
      timedOut: this.#timedOut,
      rejected: this.#rejected,
      abandoned: this.#abandoned,
      abandonedNow: this.#abandonedNow,
      running: this.#slotHolders.size,
      queueDepth: this.#queue.size,
      maxQueueDepthSeen: this.#maxQueueDepthSeen,
      latencyP50Ms,
      latencyP95Ms,
      latencySamples: this.#latencies.size,
      observerErrors: this.#observerErrors,
    });
  }

  /**
   * Stops accepting tasks, cancels queued ones (they never start), aborts running ones, then
   * waits at most `timeoutMs` for every task function to settle and returns a summary, even
   * if some never settle (those stay counted in `abandonedNow`). Never rejects once started.
   * Idempotent: later calls return the first call's promise, whatever their options.
   */
  close(options: AsyncWorkerCloseOptions = {}): Promise<AsyncWorkerCloseSummary> {
    // Once closing, later calls get the first call's promise whatever their options.
    if (!this.#state.is('running')) return this.#shutdownOnce(this.options.shutdownTimeoutMs);
    let timeoutMs: number;
    try {
      timeoutMs =
        options.timeoutMs === undefined
          ? this.options.shutdownTimeoutMs
          : checkTimeout('AsyncWorkerCloseOptions', 'timeoutMs', options.timeoutMs);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#shutdownOnce(timeoutMs);
  }

  /** Same as `close()` with default options, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #shutdown(timeoutMs: number): Promise<AsyncWorkerCloseSummary> {
    const startedAtMs = this.#clock.monotonicMs();
    this.#state.set('draining');
    let cancelledQueued = 0;
    for (const record of [...this.#queue]) {
      if (this.#cancel(record, 'shutdown', undefined, undefined)) cancelledQueued += 1;
    }
    let abortedRunning = 0;
    for (const record of [...this.#slotHolders]) {
      if (this.#cancel(record, 'shutdown', undefined, undefined)) abortedRunning += 1;
    }

    let drained = this.#slotHolders.size === 0;
    if (!drained) {
      let bound: NodeJS.Timeout | undefined;
      let onIdle: (() => void) | undefined;
      drained = await new Promise<boolean>((settle) => {
        onIdle = () => settle(true);
        this.#idleWaiters.push(onIdle);
        bound = setTimeout(() => settle(false), timeoutMs);
      });
      clearTimeout(bound);
      this.#idleWaiters = this.#idleWaiters.filter((waiter) => waiter !== onIdle);
    }
    // Whatever still runs now has outlived the bound: report it as abandoned right away
    // rather than waiting for the next-turn check.
    for (const record of this.#slotHolders) this.#markAbandoned(record);
    this.#state.set('stopped');
    const summary: AsyncWorkerCloseSummary = Object.freeze({
      cancelledQueued,
      abortedRunning,
      abandoned: [...this.#slotHolders].filter((record) => record.executing).length,
      drained,
      durationMs: this.#clock.monotonicMs() - startedAtMs,
    });
    this.#emit({ type: 'worker_closed', worker: this.options.name, summary });
    return summary;
  }

  /** Takes a slot and calls the task function on a microtask (never inside `submit`). */
  #start(record: TaskRecord): void {
    record.state = 'running';
    record.holdsSlot = true;
    this.#slotHolders.add(record);
    queueMicrotask(() => this.#invoke(record));
  }

  #invoke(record: TaskRecord): void {
    // Settled between dispatch and this microtask (cancelled or timed out): never start.
    if (record.state !== 'running') {
      this.#releaseSlot(record);
      return;
    }
    record.executing = true;
    this.#started += 1;
    let pending: Promise<unknown>;
    try {
      pending = Promise.resolve(record.fn(record.controller.signal));
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (value) => this.#onTaskSettled(record, true, value),
      (error: unknown) => this.#onTaskSettled(record, false, error),
    );
  }

  /** The task function settled: free its slot, then settle the result if nobody else has. */
  #onTaskSettled(record: TaskRecord, ok: boolean, valueOrError: unknown): void {
    record.executing = false;
    if (record.abandoned) {
      this.#abandonedNow -= 1;
      this.#emit({
        type: 'abandoned_task_settled',
        worker: this.options.name,
        task: record.name,
        overrunMs: this.#clock.monotonicMs() - record.settledAtMs,
      });
    }
    this.#releaseSlot(record);
    if (record.state === 'running') this.#finish(record, ok ? 'completed' : 'failed', valueOrError);
  }

  #releaseSlot(record: TaskRecord): void {
    if (!record.holdsSlot) return;
    record.holdsSlot = false;
    this.#slotHolders.delete(record);
    this.#dispatch();
    if (this.#slotHolders.size === 0 && this.#idleWaiters.length > 0) {
      for (const waiter of this.#idleWaiters) waiter();
    }
  }

  #dispatch(): void {
    while (this.#slotHolders.size < this.options.maxConcurrency) {
      const next = this.#queue.values().next();
      if (next.done === true) return;
      this.#queue.delete(next.value);
      this.#start(next.value);
    }
  }

  #expire(record: TaskRecord): void {
    const remainingMs = record.deadlineAt - performance.now();
    if (remainingMs > 0) {
      record.timer = setTimeout(() => this.#expire(record), Math.ceil(remainingMs));
      return;
    }
    record.timer = undefined;
    const elapsedMs = this.#clock.monotonicMs() - record.submittedAtMs;
    const error = new EsperError(
      ErrorCode.WORKER_TIMEOUT,
      `task ${record.name} exceeded its ${record.deadlineMs} ms deadline (counted from submission, ${record.state === 'queued' ? 'still queued' : 'running'})`,
      {
        details: {
          worker: this.options.name,
          task: record.name,
          deadlineMs: record.deadlineMs ?? 0,
          elapsedMs,
          wasQueued: record.state === 'queued',
        },
      },
    );
    this.#abort(record, 'timed_out', error);
  }

  #cancel(record: TaskRecord, source: AsyncTaskCancelSource, reason: string | undefined, cause: unknown): boolean {
    if (record.state !== 'queued' && record.state !== 'running') return false;
    const details: Record<string, string | number | boolean> = {
      worker: this.options.name,
      task: record.name,
      source,
      wasQueued: record.state === 'queued',
    };
    if (reason !== undefined) details.reason = reason;
    const error = new EsperError(
      ErrorCode.WORKER_CANCELLED,
      `task ${record.name} cancelled (${source}${reason === undefined ? '' : `: ${reason}`})`,
      cause === undefined ? { details } : { details, cause },
    );
    return this.#abort(record, 'cancelled', error);
  }

  /** Settles the result with `error`, then aborts the task's signal; checks abandonment next turn. */
  #abort(record: TaskRecord, outcome: 'timed_out' | 'cancelled', error: EsperError): boolean {
    const wasRunning = record.state === 'running';
    // Settle first so that anything the abort listeners do re-entrantly sees a final state.
    if (!this.#finish(record, outcome, error)) return false;
    record.controller.abort(error);
    if (wasRunning && record.executing) {
      setImmediate(() => this.#markAbandoned(record));
    }
    return true;
  }

  #markAbandoned(record: TaskRecord): void {
    if (!record.executing || record.abandoned) return;
    record.abandoned = true;
    this.#abandoned += 1;
    this.#abandonedNow += 1;
    this.#emit({ type: 'task_abandoned', worker: this.options.name, task: record.name });
  }

  /** The single place a result settles. Returns false if it had already settled. */
  #finish(record: TaskRecord, outcome: AsyncTaskOutcome, valueOrError: unknown): boolean {
    if (record.state !== 'queued' && record.state !== 'running') return false;
    if (record.state === 'queued') this.#queue.delete(record);
    record.state = outcome;
    record.settledAtMs = this.#clock.monotonicMs();
    if (record.timer !== undefined) {
      clearTimeout(record.timer);
      record.timer = undefined;
    }
    if (record.callerSignal !== undefined && record.onCallerAbort !== undefined) {
      record.callerSignal.removeEventListener('abort', record.onCallerAbort);
      record.callerSignal = undefined;
      record.onCallerAbort = undefined;
    }
    const latencyMs = record.settledAtMs - record.submittedAtMs;
    switch (outcome) {
      case 'completed':
        this.#completed += 1;
        break;
      case 'failed':
        this.#failed += 1;
        break;
      case 'cancelled':
        this.#cancelled += 1;
        break;
      case 'timed_out':
        this.#timedOut += 1;
        break;
    }
    if (outcome !== 'cancelled') this.#latencies.record(latencyMs);
    if (outcome === 'completed') record.resolve(valueOrError);
    else record.reject(valueOrError);
    this.#emit({ type: 'task_settled', worker: this.options.name, task: record.name, outcome, latencyMs });
    return true;
  }

  #reject(
    task: string,
    code: typeof ErrorCode.WORKER_QUEUE_FULL | typeof ErrorCode.WORKER_CLOSED,
    message: string,
    details: Record<string, string | number | boolean>,
  ): EsperError {
    this.#rejected += 1;
    this.#emit({ type: 'task_rejected', worker: this.options.name, task, code });
    return new EsperError(code, message, { details });
  }

  #emit(event: AsyncWorkerEvent): void {
    if (this.#observer === undefined) return;
    try {
      this.#observer(event);
    } catch {
      this.#observerErrors += 1;
    }
  }
}
