import { getEventListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AsyncWorkerOptions } from '../../src/core/async-worker-options.js';
import type { AsyncWorkerEvent } from '../../src/core/async-worker-types.js';
import { AsyncWorker, rejectionOutcome } from '../../src/core/async-worker.js';
import { FakeClock } from '../../src/core/clock.js';
import { ErrorCode, isEsperError, type EsperError } from '../../src/core/errors.js';
import { thrownBy } from '../support/thrown.js';

/** A promise with its settle functions exposed, to drive tasks step by step. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A task that waits for `gate` and honours its signal. */
function gated<T>(gate: Promise<T>, onStart?: (signal: AbortSignal) => void) {
  return (signal: AbortSignal): Promise<T> => {
    onStart?.(signal);
    return new Promise<T>((resolve, reject) => {
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      gate.then(resolve, reject);
    });
  };
}

/** Resolves to the rejection reason; fails the test if `promise` fulfils. */
async function rejectionOf(promise: Promise<unknown>): Promise<EsperError> {
  try {
    await promise;
  } catch (error) {
    return error as EsperError;
  }
  throw new Error('expected the promise to reject');
}

function expectInvalid(fn: () => unknown, field: string): void {
  const error = thrownBy(fn, ErrorCode.INVALID_ARGUMENT);
  expect(error.details.field).toBe(field);
  expect(error.message).toContain(field);
}

const workers: AsyncWorker[] = [];
function makeWorker(options: AsyncWorkerOptions = {}): AsyncWorker {
  const worker = new AsyncWorker({ shutdownTimeoutMs: 200, ...options });
  workers.push(worker);
  return worker;
}

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.close()));
});

describe('AsyncWorker', () => {
  it('runs a task and fulfils its result with the returned value', async () => {
    const worker = makeWorker();
    const handle = worker.submit(async () => 'ok', { name: 'answer' });
    expect(handle.name).toBe('answer');
    await expect(handle.result).resolves.toBe('ok');
    expect(handle.state).toBe('completed');
    const stats = worker.stats();
    expect(stats).toMatchObject({ submitted: 1, started: 1, completed: 1, failed: 0, running: 0, queueDepth: 0 });
    expect(stats.latencySamples).toBe(1);
  });

  it('accepts synchronous tasks and never runs them inside submit', async () => {
    const worker = makeWorker();
    let ran = false;
    const handle = worker.submit(() => {
      ran = true;
      return 42;
    });
    expect(ran).toBe(false);
    await expect(handle.result).resolves.toBe(42);
    expect(ran).toBe(true);
  });

  it('names tasks after the worker by default', () => {
    const worker = makeWorker({ name: 'tolaria-worker' });
    expect(worker.submit(() => 1).name).toBe('tolaria-worker-task-1');
    expect(worker.submit(() => 2).name).toBe('tolaria-worker-task-2');
  });

  it('propagates a task failure as the same error and counts it failed', async () => {
    const worker = makeWorker();
    const boom = new Error('boom');
    const asyncFailure = worker.submit(async () => {
      throw boom;
    });
    const syncFailure = worker.submit(() => {
      throw boom;
    });
    expect(await rejectionOf(asyncFailure.result)).toBe(boom);
    expect(await rejectionOf(syncFailure.result)).toBe(boom);
    expect(asyncFailure.state).toBe('failed');
    expect(worker.stats()).toMatchObject({ failed: 2, completed: 0, started: 2 });
  });

  it('never runs more than maxConcurrency tasks and starts queued ones in FIFO order', async () => {
    const worker = makeWorker({ maxConcurrency: 2 });
    const gates = Array.from({ length: 5 }, () => deferred<number>());
    const order: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const handles = gates.map((gate, index) =>
      worker.submit(async () => {
        order.push(index);
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          return await gate.promise;
        } finally {
          inFlight -= 1;
        }
      }),
    );
    await vi.waitFor(() => expect(order).toEqual([0, 1]));
    expect(worker.stats()).toMatchObject({ running: 2, queueDepth: 3, maxQueueDepthSeen: 3 });
    expect(handles[2]?.state).toBe('queued');
    gates.forEach((gate, index) => gate.resolve(index));
    await expect(Promise.all(handles.map((handle) => handle.result))).resolves.toEqual([0, 1, 2, 3, 4]);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(maxInFlight).toBe(2);
  });

  it('rejects submit with WORKER_QUEUE_FULL when the queue is full, and accepts again once it drains', async () => {
    const events: AsyncWorkerEvent[] = [];
    const worker = makeWorker({ maxConcurrency: 1, maxQueueDepth: 2, observer: (event) => events.push(event) });
    const gate = deferred();
    const accepted = [0, 1, 2].map(() => worker.submit(gated(gate.promise)));
    let caught: unknown;
    try {
      worker.submit(() => 'overflow', { name: 'overflow' });
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.WORKER_QUEUE_FULL)).toBe(true);
    expect((caught as EsperError).details).toMatchObject({ maxQueueDepth: 2, task: 'overflow' });
    expect(worker.stats()).toMatchObject({ rejected: 1, submitted: 3, queueDepth: 2 });
    expect(events).toContainEqual({
      type: 'task_rejected',
      worker: 'esper-async-worker',
      task: 'overflow',
      code: ErrorCode.WORKER_QUEUE_FULL,
    });

    gate.resolve();
    await Promise.all(accepted.map((handle) => handle.result));
    await expect(worker.submit(() => 'again').result).resolves.toBe('again');
  });

  it('with maxQueueDepth 0 runs a task only if a slot is free', async () => {
    const worker = makeWorker({ maxConcurrency: 1, maxQueueDepth: 0 });
    const gate = deferred();
    const first = worker.submit(gated(gate.promise));
    expect(() => worker.submit(() => 1)).toThrow(expect.objectContaining({ code: ErrorCode.WORKER_QUEUE_FULL }));
    gate.resolve();
    await first.result;
  });

  it('rejects invalid submit arguments with INVALID_ARGUMENT and does not count them', () => {
    const worker = makeWorker();
    expectInvalid(() => worker.submit('not a function' as unknown as () => void), 'task');
    expectInvalid(() => worker.submit(() => 1, { deadlineMs: 0 }), 'deadlineMs');
    expectInvalid(() => worker.submit(() => 1, { deadlineMs: Number.NaN }), 'deadlineMs');
    expectInvalid(() => worker.submit(() => 1, { name: '' }), 'name');
    expect(worker.stats()).toMatchObject({ submitted: 0, rejected: 0 });
  });

  describe('deadlines', () => {
    it('times out a running task at its deadline, aborting its signal with the timeout error', async () => {
      const worker = makeWorker();
      let seen: AbortSignal | undefined;
      const submittedAt = performance.now();
      const handle = worker.submit(
        gated(new Promise<never>(() => {}), (signal) => (seen = signal)),
        { deadlineMs: 40 },
      );
      const error = await rejectionOf(handle.result);
      const elapsedMs = performance.now() - submittedAt;
      expect(isEsperError(error, ErrorCode.WORKER_TIMEOUT)).toBe(true);
      expect(error.details).toMatchObject({ deadlineMs: 40, wasQueued: false });
      expect(elapsedMs).toBeGreaterThanOrEqual(40);
      expect(elapsedMs).toBeLessThan(40 + 25);
      expect(seen?.aborted).toBe(true);
      expect(seen?.reason).toBe(error);
      expect(handle.state).toBe('timed_out');
      expect(worker.stats()).toMatchObject({ timedOut: 1, abandoned: 0 });
    });

    it('counts the deadline from submission, so a task that waited in the queue times out without starting', async () => {
      const worker = makeWorker({ maxConcurrency: 1 });
      const gate = deferred();
      const blocker = worker.submit(gated(gate.promise));
      const neverStarted = vi.fn();
      const submittedAt = performance.now();
      const queued = worker.submit(neverStarted, { deadlineMs: 30 });
      const error = await rejectionOf(queued.result);
      expect(performance.now() - submittedAt).toBeLessThan(30 + 25);
      expect(isEsperError(error, ErrorCode.WORKER_TIMEOUT)).toBe(true);
      expect(error.details.wasQueued).toBe(true);
      expect(worker.stats().queueDepth).toBe(0);
      gate.resolve();
      await blocker.result;
      expect(neverStarted).not.toHaveBeenCalled();
    });

    it('applies defaultDeadlineMs unless the task opts out with Infinity', async () => {
      const worker = makeWorker({ defaultDeadlineMs: 20 });
      const gate = deferred<string>();
      const withDefault = worker.submit(gated(new Promise<never>(() => {})));
      const optedOut = worker.submit(gated(gate.promise), { deadlineMs: Infinity });
      expect(withDefault.deadlineMs).toBe(20);
      expect(optedOut.deadlineMs).toBeUndefined();
      expect(isEsperError(await rejectionOf(withDefault.result), ErrorCode.WORKER_TIMEOUT)).toBe(true);
      expect(optedOut.state).toBe('running');
      gate.resolve('late but fine');
      await expect(optedOut.result).resolves.toBe('late but fine');
    });

    it('does not count a cooperative task that stops on abort as abandoned', async () => {
      const worker = makeWorker();
      const handle = worker.submit((signal) => sleep(10_000, undefined, { signal }), { deadlineMs: 15 });
      await rejectionOf(handle.result);
      await vi.waitFor(() => expect(worker.stats().running).toBe(0));
      // The abandonment check runs one event-loop turn after the abort; let it pass.
      await new Promise((resolve) => setImmediate(resolve));
      expect(worker.stats()).toMatchObject({ abandoned: 0, abandonedNow: 0, timedOut: 1 });
      expect(handle.abandoned).toBe(false);
    });

    it('reports a task that ignores its signal as abandoned and keeps its slot until it settles', async () => {
      const events: AsyncWorkerEvent[] = [];
      const worker = makeWorker({ maxConcurrency: 1, observer: (event) => events.push(event) });
      const runaway = deferred<string>();
      const stuck = worker.submit(() => runaway.promise, { name: 'stuck', deadlineMs: 20 });
      const next = vi.fn(() => 'next');
      const waiting = worker.submit(next, { name: 'waiting' });

      const submittedAt = performance.now();
      expect(isEsperError(await rejectionOf(stuck.result), ErrorCode.WORKER_TIMEOUT)).toBe(true);
      expect(performance.now() - submittedAt).toBeLessThan(20 + 25);
      await vi.waitFor(() => expect(worker.stats().abandonedNow).toBe(1));
      expect(stuck.abandoned).toBe(true);
      expect(worker.stats()).toMatchObject({ abandoned: 1, running: 1, queueDepth: 1 });
      expect(waiting.state).toBe('queued');
      expect(next).not.toHaveBeenCalled();
      expect(events.some((event) => event.type === 'task_abandoned' && event.task === 'stuck')).toBe(true);

      runaway.resolve('too late');
      await expect(waiting.result).resolves.toBe('next');
      expect(stuck.state).toBe('timed_out');
      expect(stuck.abandoned).toBe(true);
      expect(worker.stats()).toMatchObject({ abandoned: 1, abandonedNow: 0, completed: 1, timedOut: 1 });
      expect(events.some((event) => event.type === 'abandoned_task_settled' && event.task === 'stuck')).toBe(true);
    });
  });

  describe('cancellation', () => {
    it('cancels a running task through its handle: the signal aborts and the result rejects WORKER_CANCELLED', async () => {
      const worker = makeWorker();
      const started = deferred<AbortSignal>();
      const handle = worker.submit(gated(new Promise<never>(() => {}), started.resolve));
      const signal = await started.promise;
      expect(handle.cancel('operator asked')).toBe(true);
      expect(handle.cancel()).toBe(false);
      const error = await rejectionOf(handle.result);
      expect(isEsperError(error, ErrorCode.WORKER_CANCELLED)).toBe(true);
      expect(error.details).toMatchObject({ source: 'handle', reason: 'operator asked', wasQueued: false });
      expect(signal.aborted).toBe(true);
      expect(signal.reason).toBe(error);
      expect(handle.state).toBe('cancelled');
      await vi.waitFor(() => expect(worker.stats()).toMatchObject({ cancelled: 1, running: 0 }));
    });

    it('never starts a queued task that is cancelled, even after a slot frees', async () => {
      const worker = makeWorker({ maxConcurrency: 1 });
      const gate = deferred();
      const blocker = worker.submit(gated(gate.promise));
      const neverStarted = vi.fn();
      const queued = worker.submit(neverStarted);
      expect(queued.cancel()).toBe(true);
      expect(isEsperError(await rejectionOf(queued.result), ErrorCode.WORKER_CANCELLED)).toBe(true);
      expect(worker.stats().queueDepth).toBe(0);
      gate.resolve();
      await blocker.result;
      await expect(worker.submit(() => 'after').result).resolves.toBe('after');
      expect(neverStarted).not.toHaveBeenCalled();
      expect(worker.stats()).toMatchObject({ started: 2, cancelled: 1 });
    });

    it('never starts a task cancelled in the same tick it was submitted', async () => {
      const worker = makeWorker();
      const neverStarted = vi.fn();
      const handle = worker.submit(neverStarted);
      handle.cancel();
      await rejectionOf(handle.result);
      await vi.waitFor(() => expect(worker.stats().running).toBe(0));
      expect(neverStarted).not.toHaveBeenCalled();
    });

    it("cancels through the caller's signal, keeping the signal's reason as the cause", async () => {
      const worker = makeWorker();
      const controller = new AbortController();
      const started = deferred<AbortSignal>();
      const handle = worker.submit(gated(new Promise<never>(() => {}), started.resolve), { signal: controller.signal });
      const taskSignal = await started.promise;
      const reason = new Error('caller gave up');
      controller.abort(reason);
      const error = await rejectionOf(handle.result);
      expect(isEsperError(error, ErrorCode.WORKER_CANCELLED)).toBe(true);
      expect(error.details.source).toBe('signal');
      expect(error.cause).toBe(reason);
      expect(taskSignal.aborted).toBe(true);
    });

    it('never starts a task whose signal is already aborted', async () => {
      const worker = makeWorker();
      const neverStarted = vi.fn();
      const handle = worker.submit(neverStarted, { signal: AbortSignal.abort() });
      expect(handle.state).toBe('cancelled');
      expect(isEsperError(await rejectionOf(handle.result), ErrorCode.WORKER_CANCELLED)).toBe(true);
      expect(neverStarted).not.toHaveBeenCalled();
      expect(worker.stats()).toMatchObject({ submitted: 1, cancelled: 1, started: 0 });
    });

    it("leaves no listener on the caller's signal once the task settles, whatever the outcome", async () => {
      const worker = makeWorker();
      const controller = new AbortController();
      const { signal } = controller;

      await worker.submit(() => 'done', { signal }).result;
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);

      await rejectionOf(worker.submit(() => Promise.reject(new Error('x')), { signal }).result);
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);

      await rejectionOf(worker.submit(gated(new Promise<never>(() => {})), { signal, deadlineMs: 10 }).result);
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);

      const cancelled = worker.submit(gated(new Promise<never>(() => {})), { signal });
      expect(getEventListeners(signal, 'abort')).toHaveLength(1);
      cancelled.cancel();
      await rejectionOf(cancelled.result);
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);
      expect(signal.aborted).toBe(false);
    });
  });

  describe('stats', () => {
    it('reports p50/p95 latency from submission to settle over the sample window', async () => {
      const clock = new FakeClock();
      const worker = makeWorker({ clock });
      expect(worker.stats().latencyP50Ms).toBeUndefined();
      for (let latencyMs = 1; latencyMs <= 100; latencyMs += 1) {
        const gate = deferred();
        const handle = worker.submit(() => gate.promise);
        clock.advance(latencyMs);
        gate.resolve();
        await handle.result;
      }
      const stats = worker.stats();
      expect(stats.latencySamples).toBe(100);
      // The one quantile of core: linear interpolation between order statistics.
      expect(stats.latencyP50Ms).toBeCloseTo(50.5, 9);
      expect(stats.latencyP95Ms).toBeCloseTo(95.05, 9);
    });

    it('keeps counting when the observer throws', async () => {
      const worker = makeWorker({
        observer: () => {
          throw new Error('observer bug');
        },
      });
      await expect(worker.submit(() => 'ok').result).resolves.toBe('ok');
      expect(worker.stats()).toMatchObject({ completed: 1, observerErrors: 1 });
    });
  });

  describe('close', () => {
    it('cancels queued tasks, aborts running ones, waits for them and reports a summary', async () => {
      const events: AsyncWorkerEvent[] = [];
      const worker = makeWorker({ maxConcurrency: 2, observer: (event) => events.push(event) });
      const signals: AbortSignal[] = [];
      const running = [0, 1].map(() =>
        worker.submit((signal) => {
          signals.push(signal);
          return sleep(10_000, undefined, { signal });
        }),
      );
      const neverStarted = vi.fn();
      const queued = [0, 1, 2].map(() => worker.submit(neverStarted));
      await vi.waitFor(() => expect(signals).toHaveLength(2));

      const closing = worker.close();
      expect(worker.state).toBe('draining');
      expect(worker.close({ timeoutMs: 1 })).toBe(closing);
      const summary = await closing;

      expect(summary).toMatchObject({ cancelledQueued: 3, abortedRunning: 2, abandoned: 0, drained: true });
      expect(worker.state).toBe('stopped');
      expect(signals.every((signal) => signal.aborted)).toBe(true);
      for (const handle of [...running, ...queued]) {
        const error = await rejectionOf(handle.result);
        expect(isEsperError(error, ErrorCode.WORKER_CANCELLED)).toBe(true);
        expect(error.details.source).toBe('shutdown');
      }
      expect(neverStarted).not.toHaveBeenCalled();
      expect(worker.stats()).toMatchObject({ cancelled: 5, running: 0, queueDepth: 0 });
      expect(events.at(-1)).toEqual({ type: 'worker_closed', worker: 'esper-async-worker', summary });
    });

    it('returns within its bound even when a task never settles, reporting it abandoned', async () => {
      const worker = makeWorker();
      const never = worker.submit(() => new Promise<never>(() => {}), { name: 'never' });
      await vi.waitFor(() => expect(worker.stats().started).toBe(1));
      const startedAt = performance.now();
      const summary = await worker.close({ timeoutMs: 50 });
      const tookMs = performance.now() - startedAt;
      expect(tookMs).toBeGreaterThanOrEqual(45);
      expect(tookMs).toBeLessThan(50 + 200);
      expect(summary).toMatchObject({ abortedRunning: 1, abandoned: 1, drained: false });
      expect(worker.stats()).toMatchObject({ abandoned: 1, abandonedNow: 1, running: 1 });
      expect(never.state).toBe('cancelled');
      expect(never.abandoned).toBe(true);
    });

    it('rejects submit after close with WORKER_CLOSED and counts it rejected', async () => {
      const worker = makeWorker();
      await worker.close();
      let caught: unknown;
      try {
        worker.submit(() => 1);
      } catch (error) {
        caught = error;
      }
      expect(isEsperError(caught, ErrorCode.WORKER_CLOSED)).toBe(true);
      expect(worker.stats().rejected).toBe(1);
    });

    it('rejects submit while draining', async () => {
      const worker = makeWorker();
      worker.submit(() => new Promise<never>(() => {}));
      await vi.waitFor(() => expect(worker.stats().started).toBe(1));
      const closing = worker.close({ timeoutMs: 20 });
      expect(() => worker.submit(() => 1)).toThrow(expect.objectContaining({ code: ErrorCode.WORKER_CLOSED }));
      await closing;
    });

    it('rejects a bad timeoutMs without closing', async () => {
      const worker = makeWorker();
      const error = await rejectionOf(worker.close({ timeoutMs: -1 }));
      expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
      expect(error.details.field).toBe('timeoutMs');
      expect(worker.state).toBe('running');
    });

    it('closes through Symbol.asyncDispose with await using', async () => {
      let outer: AsyncWorker | undefined;
      {
        await using worker = new AsyncWorker({ shutdownTimeoutMs: 100 });
        outer = worker;
        await worker.submit(() => 1).result;
      }
      expect(outer.state).toBe('stopped');
    });
  });
});

describe('rejectionOutcome', () => {
  it('names what a rejected result stands for: timeout, cancel, or the task failing', async () => {
    const worker = makeWorker();
    const timedOut = worker.submit(() => new Promise<never>(() => {}), { deadlineMs: 5 });
    const cancelled = worker.submit(() => new Promise<never>(() => {}));
    cancelled.cancel();
    const failed = worker.submit(() => Promise.reject(new Error('boom')));
    expect(rejectionOutcome(await rejectionOf(timedOut.result))).toBe(timedOut.state);
    expect(rejectionOutcome(await rejectionOf(cancelled.result))).toBe(cancelled.state);
    expect(rejectionOutcome(await rejectionOf(failed.result))).toBe(failed.state);
    expect([timedOut.state, cancelled.state, failed.state]).toEqual(['timed_out', 'cancelled', 'failed']);
  });
});
