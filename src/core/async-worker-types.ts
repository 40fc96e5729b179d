/** The task, handle, stats and event types of the {@link AsyncWorker}. */
import type { ErrorCode } from './errors.js';

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
   * `ASYNC_WORKER_LATENCY_WINDOW_SAMPLES` completed, failed or timed-out tasks (cancelled ones
   * are left out: their latency is the canceller's choice), by the one quantile of core
   * (`quantile.ts`). Undefined with no samples.
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
