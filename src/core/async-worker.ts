/**
 * The one shared async worker (spec 00 §2): bounded concurrency, a bounded FIFO queue with
 * back-pressure, deadlines measured from submission, cancellation through `AbortSignal`,
 * bounded shutdown and honest stats.
 *
 * Departures from the prototype's `esper.core.async_runner` (prototype-rc1-plan §2.2 and
 * the "AsyncWorker caveats" of its Appendix F):
 * - the deadline counts from submission, so queue wait is inside it (the prototype started
 *   `wait_for` only after a semaphore slot was acquired);
 * - the queue is bounded by `maxQueueDepth`; a full queue rejects `submit` with
 *   `WORKER_QUEUE_FULL` instead of growing without limit;
 * - cancellation and timeouts abort the task's `AbortSignal`; a task that ignores it is
 *   reported as abandoned until it finally settles, instead of running on unseen;
 * - stats carry a latency window (p50/p95), which the prototype planned but never built.
 */
import { systemClock, type Clock } from './clock.js';
import { ErrorCode, EsperError } from './errors.js';

/** Work run by the worker. It receives an `AbortSignal` that fires on timeout, cancel or close. */
export type AsyncTask<T> = (signal: AbortSignal) => Promise<T> | T;

/** Lifecycle of an {@link AsyncWorker}. */
export type AsyncWorkerState =
  /** Accepting and running tasks (from construction on). */
  | 'running'
  /** `close()` was called: no new tasks; queued ones cancelled, running ones aborted. */
  | 'draining'
  /** `close()` finished (every task settled, or the shutdown bound expired). */
  | 'stopped';

/** Lifecycle of one submitted task, as its caller sees it. */
export type AsyncTaskState =
  /** Waiting for a concurrency slot. */
  | 'queued'
  /** Holding a slot; the task function is (about to be) executing. */
  | 'running'
  /** The task returned a value; `result` fulfilled. */
  | 'completed'
  /** The task threw or rejected; `result` rejected with that same error. */
  | 'failed'
  /** Cancelled by its handle, its caller's signal or `close()`; `result` rejected with `WORKER_CANCELLED`. */
  | 'cancelled'
  /** Its deadline (counted from submission) passed first; `result` rejected with `WORKER_TIMEOUT`. */
  | 'timed_out';

/** The terminal subset of {@link AsyncTaskState}. */
export type AsyncTaskOutcome = Exclude<AsyncTaskState, 'queued' | 'running'>;

/** Who cancelled a task; carried in the `source` detail of a `WORKER_CANCELLED` error. */
export type AsyncTaskCancelSource =
  /** `handle.cancel()`. */
  | 'handle'
  /** The caller's `signal` passed to `submit`. */
  | 'signal'
  /** `AsyncWorker.close()`. */
  | 'shutdown';

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

/** Per-task options of {@link AsyncWorker.submit}. */
export interface AsyncTaskOptions {
  /**
   * Deadline in milliseconds counted from this `submit` call, queue wait included.
   * `Infinity` opts out of the worker's `defaultDeadlineMs`.
   * @default the worker's `defaultDeadlineMs`
   */
  readonly deadlineMs?: number;
  /** Aborting it cancels the task (`WORKER_CANCELLED`, `source: 'signal'`). */
  readonly signal?: AbortSignal;
  /**
   * Task name for errors and events.
   * @default `${workerName}-task-${n}`
   */
  readonly name?: string;
}

/** What `submit` returns: the task's result and a way to cancel it. */
export interface AsyncTaskHandle<T> {
  /** The task's name. */
  readonly name: string;
  /** `clock.monotonicMs()` at submission. */
  readonly submittedAtMs: number;
  /** Effective deadline in milliseconds from submission, or undefined for none. */
  readonly deadlineMs: number | undefined;
  /**
   * Settles once, with the task's value or error, `WORKER_TIMEOUT` or `WORKER_CANCELLED`.
   * It is marked handled, so dropping a handle never raises an unhandled rejection; failures
   * stay visible in {@link AsyncWorker.stats} and to the observer.
   */
  readonly result: Promise<T>;
  /** Current state; terminal once `result` has settled. */
  readonly state: AsyncTaskState;
  /**
   * True while the task function keeps running after its result was settled by a timeout,
   * cancel or close (it ignored its signal past the event-loop turn of the abort).
   */
  readonly abandoned: boolean;
  /**
   * Cancels the task: a queued task never starts; a running one sees its signal abort.
   * Returns false (and does nothing) if the result has already settled.
   * @param reason free text stored in the error's `reason` detail
   */
  cancel(reason?: string): boolean;
}

/** A snapshot of the worker's counters and gauges. Counters only grow. */
export interface AsyncWorkerStats {
  /** Tasks accepted by `submit` (rejected ones excluded). */
  readonly submitted: number;
  /** Task functions actually invoked. */
  readonly started: number;
  /** Results fulfilled. */
  readonly completed: number;
  /** Results rejected with the task's own error. */
  readonly failed: number;
  /** Results rejected with `WORKER_CANCELLED` (handle, signal or close). */
  readonly cancelled: number;
  /** Results rejected with `WORKER_TIMEOUT`. */
  readonly timedOut: number;
  /** `submit` calls refused with `WORKER_QUEUE_FULL` or `WORKER_CLOSED`. */
  readonly rejected: number;
  /** Tasks that ever kept running after their result settled (see {@link AsyncTaskHandle.abandoned}). */
  readonly abandoned: number;
  /** Abandoned tasks still running now (they still hold their slot). */
  readonly abandonedNow: number;
  /** Slots held now, abandoned tasks included; never above `maxConcurrency`. */
  readonly running: number;
  /** Tasks waiting for a slot now. */
  readonly queueDepth: number;
  /** Highest `queueDepth` so far. */
  readonly maxQueueDepthSeen: number;
  /**
   * Median submission→settle latency in milliseconds over the last
   * {@link ASYNC_WORKER_LATENCY_WINDOW_SAMPLES} completed, failed or timed-out tasks (cancelled ones are
   * left out: their latency is the canceller's choice). Undefined with no samples.
   */
  readonly latencyP50Ms: number | undefined;
  /** 95th percentile of the same window. Undefined with no samples. */
  readonly latencyP95Ms: number | undefined;
  /** Samples in the latency window now. */
  readonly latencySamples: number;
  /** Observer calls that threw. */
  readonly observerErrors: number;
}

/** What `close()` reports. */
export interface AsyncWorkerCloseSummary {
  /** Queued tasks cancelled by this close; none of them ever started. */
  readonly cancelledQueued: number;
  /** Running tasks whose results this close settled as cancelled (their signals aborted). */
  readonly abortedRunning: number;
  /** Task functions still running when close returned (including earlier-abandoned ones). */
  readonly abandoned: number;
  /** True if every task function settled within the bound. */
  readonly drained: boolean;
  /** Time close took, in milliseconds of the worker's clock. */
  readonly durationMs: number;
}

/** Options of {@link AsyncWorker.close}. */
export interface AsyncWorkerCloseOptions {
  /**
   * Longest wait in milliseconds for aborted tasks to settle.
   * @default the worker's `shutdownTimeoutMs`
   */
  readonly timeoutMs?: number;
}

/** Events passed to {@link AsyncWorkerOptions.observer}. */
export type AsyncWorkerEvent =
  /** A task's result settled. `latencyMs` is submission→settle. */
  | {
      readonly type: 'task_settled';
      readonly worker: string;
      readonly task: string;
      readonly outcome: AsyncTaskOutcome;
      readonly latencyMs: number;
    }
  /** `submit` refused a task. */
  | {
      readonly type: 'task_rejected';
      readonly worker: string;
      readonly task: string;
      readonly code: typeof ErrorCode.WORKER_QUEUE_FULL | typeof ErrorCode.WORKER_CLOSED;
    }
  /** A task kept running after its result settled; it still holds its slot. */
  | { readonly type: 'task_abandoned'; readonly worker: string; readonly task: string }
  /** An abandoned task finally settled; `overrunMs` is the time since its result settled. */
  | {
      readonly type: 'abandoned_task_settled';
      readonly worker: string;
      readonly task: string;
      readonly overrunMs: number;
    }
  /** `close()` finished. */
  | { readonly type: 'worker_closed'; readonly worker: string; readonly summary: AsyncWorkerCloseSummary };

/** Size of the latency window behind `latencyP50Ms` / `latencyP95Ms`. */
export const ASYNC_WORKER_LATENCY_WINDOW_SAMPLES = 1024;

/** Defaults of {@link AsyncWorkerOptions}; the one place they live. */
export const ASYNC_WORKER_DEFAULTS: ResolvedAsyncWorkerOptions = Object.freeze({
  name: 'esper-async-worker',
  maxConcurrency: 4,
  maxQueueDepth: 1024,
  defaultDeadlineMs: undefined,
  shutdownTimeoutMs: 5000,
});

/** Node clamps longer `setTimeout` delays to 1 ms, so longer finite deadlines are refused. */
const MAX_TIMER_MS = 2_147_483_647;

function invalid(field: string, message: string): EsperError {
  return new EsperError(ErrorCode.INVALID_ARGUMENT, `${field} ${message}`, { details: { field } });
}

function describeValue(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : String(value);
}

function checkInteger(field: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw invalid(field, `must be an integer ≥ ${min}, got ${describeValue(value)}`);
  }
  return value;
}

/** A deadline: a positive number of ms up to the timer limit; `Infinity` means none. */
function checkDeadline(field: string, value: unknown): number | undefined {
  if (value === Infinity) return undefined;
  if (typeof value !== 'number' || !(value > 0) || value > MAX_TIMER_MS) {
    throw invalid(field, `must be a number of ms in (0, ${MAX_TIMER_MS}] or Infinity, got ${describeValue(value)}`);
  }
  return value;
}

function checkTimeout(field: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0) || value > MAX_TIMER_MS) {
    throw invalid(field, `must be a number of ms in [0, ${MAX_TIMER_MS}], got ${describeValue(value)}`);
  }
  return value;
}

/**
 * Merges `options` → {@link ASYNC_WORKER_DEFAULTS}, validates every field and freezes the
 * result. Throws `INVALID_ARGUMENT` naming the bad field in the message and in
 * `details.field`. Environment variables (`ESPER_ASYNC_WORKER_*`) are read once, by
 * `loadSettings`; pass `settings.core.asyncWorker` here.
 */
export function resolveAsyncWorkerOptions(options: AsyncWorkerOptions = {}): ResolvedAsyncWorkerOptions {
  const name = options.name ?? ASYNC_WORKER_DEFAULTS.name;
  if (typeof name !== 'string' || name.length === 0) {
    throw invalid('name', `must be a non-empty string, got ${describeValue(name)}`);
  }
  type Tunable = 'maxConcurrency' | 'maxQueueDepth' | 'defaultDeadlineMs' | 'shutdownTimeoutMs';
  const pick = (field: Tunable): { field: string; value: unknown } => ({
    field,
    value: options[field] !== undefined ? options[field] : ASYNC_WORKER_DEFAULTS[field],
  });
  const concurrency = pick('maxConcurrency');
  const queueDepth = pick('maxQueueDepth');
  const deadline = pick('defaultDeadlineMs');
  const shutdown = pick('shutdownTimeoutMs');
  if (options.clock !== undefined && typeof options.clock.monotonicMs !== 'function') {
    throw invalid('clock', 'must implement monotonicMs()');
  }
  if (options.observer !== undefined && typeof options.observer !== 'function') {
    throw invalid('observer', 'must be a function');
  }
  return Object.freeze({
    name,
    maxConcurrency: checkInteger(concurrency.field, concurrency.value, 1),
    maxQueueDepth: checkInteger(queueDepth.field, queueDepth.value, 0),
    defaultDeadlineMs: deadline.value === undefined ? undefined : checkDeadline(deadline.field, deadline.value),
    shutdownTimeoutMs: checkTimeout(shutdown.field, shutdown.value),
  });
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

  #state: AsyncWorkerState = 'running';
  #closing: Promise<AsyncWorkerCloseSummary> | undefined;
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
  readonly #latencies = new Float64Array(ASYNC_WORKER_LATENCY_WINDOW_SAMPLES);
  #latencyCount = 0;
  #latencyNext = 0;

  /** @throws EsperError `INVALID_ARGUMENT` naming the bad option. */
  constructor(options: AsyncWorkerOptions = {}) {
    this.options = resolveAsyncWorkerOptions(options);
    this.#clock = options.clock ?? systemClock;
    this.#observer = options.observer;
  }

  /** The worker's name. */
  get name(): string {
    return this.options.name;
  }

  /** Current lifecycle state. */
  get state(): AsyncWorkerState {
    return this.#state;
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
    if (typeof task !== 'function') throw invalid('task', 'must be a function');
    const deadlineMs = options.deadlineMs === undefined ? this.options.defaultDeadlineMs : checkDeadline('deadlineMs', options.deadlineMs);
    if (options.name !== undefined && (typeof options.name !== 'string' || options.name.length === 0)) {
      throw invalid('name', `must be a non-empty string, got ${describeValue(options.name)}`);
    }
    this.#taskCounter += 1;
    const name = options.name ?? `${this.options.name}-task-${this.#taskCounter}`;

    if (this.#state !== 'running') {
      throw this.#reject(name, ErrorCode.WORKER_CLOSED, `worker ${this.options.name} is ${this.#state}; task ${name} refused`, {
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
    const window = Array.from(this.#latencies.subarray(0, this.#latencyCount)).sort((a, b) => a - b);
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
      latencyP50Ms: percentile(window, 0.5),
      latencyP95Ms: percentile(window, 0.95),
      latencySamples: window.length,
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
    if (this.#closing !== undefined) return this.#closing;
    let timeoutMs: number;
    try {
      timeoutMs = options.timeoutMs === undefined ? this.options.shutdownTimeoutMs : checkTimeout('timeoutMs', options.timeoutMs);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#closing = this.#shutdown(timeoutMs);
    return this.#closing;
  }

  /** Same as `close()` with default options, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #shutdown(timeoutMs: number): Promise<AsyncWorkerCloseSummary> {
    const startedAtMs = this.#clock.monotonicMs();
    this.#state = 'draining';
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
    this.#state = 'stopped';
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
    if (outcome !== 'cancelled') this.#recordLatency(latencyMs);
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

  #recordLatency(latencyMs: number): void {
    this.#latencies[this.#latencyNext] = latencyMs;
    this.#latencyNext = (this.#latencyNext + 1) % ASYNC_WORKER_LATENCY_WINDOW_SAMPLES;
    if (this.#latencyCount < ASYNC_WORKER_LATENCY_WINDOW_SAMPLES) this.#latencyCount += 1;
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

/** Nearest-rank percentile of an ascending array; undefined when empty. */
function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}
