/**
 * Abortable waits and capped exponential backoff for the bus's retry loops (publish under
 * back-pressure or store outage, consumer loops after store errors).
 */

/**
 * Waits `ms` on a real timer. Resolves `true` when the time elapsed, `false` as soon as
 * any of `signals` aborts (at once when one already has). Never rejects; the timer and
 * listeners are always cleared.
 */
export function delay(ms: number, signals: readonly (AbortSignal | undefined)[] = []): Promise<boolean> {
  const live = signals.filter((s): s is AbortSignal => s !== undefined);
  if (live.some((s) => s.aborted)) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    const finish = (elapsed: boolean): void => {
      clearTimeout(timer);
      for (const s of live) s.removeEventListener('abort', onAbort);
      resolve(elapsed);
    };
    const onAbort = (): void => finish(false);
    const timer = setTimeout(() => finish(true), Math.max(0, ms));
    for (const s of live) s.addEventListener('abort', onAbort, { once: true });
  });
}

/** The first aborted signal among `signals`, if any. */
export function firstAborted(signals: readonly (AbortSignal | undefined)[]): AbortSignal | undefined {
  return signals.find((s): s is AbortSignal => s !== undefined && s.aborted);
}

/**
 * Capped exponential backoff with equal jitter: attempt n waits between half and all of
 * `min(maxMs, initialMs · 2^n)`, so processes retrying the same outage spread out.
 */
export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  #attempt = 0;

  constructor(initialMs: number, maxMs: number) {
    if (!(initialMs > 0) || !(maxMs >= initialMs)) {
      throw new RangeError(`backoff needs 0 < initialMs ≤ maxMs, got ${initialMs}, ${maxMs}`);
    }
    this.initialMs = initialMs;
    this.maxMs = maxMs;
  }

  /** Consecutive waits handed out since the last {@link reset}. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The next wait in ms. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt += 1;
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /** Starts again from `initialMs` (after a success). */
  reset(): void {
    this.#attempt = 0;
  }
}

/** Why a wait ended early: the reason of the first aborted signal. */
export function abortReason(signals: readonly (AbortSignal | undefined)[]): unknown {
  const aborted = firstAborted(signals);
  return aborted === undefined ? new Error('aborted') : aborted.reason;
}

/**
 * Settles like `promise`, or rejects with the reason of the first of `signals` to abort,
 * whichever comes first. Listeners are removed either way; `promise` keeps running.
 */
export function raceAbort<T>(promise: Promise<T>, signals: readonly (AbortSignal | undefined)[]): Promise<T> {
  const live = signals.filter((s): s is AbortSignal => s !== undefined);
  const aborted = firstAborted(live);
  if (aborted !== undefined) {
    // The caller no longer waits for `promise`; its rejection must not go unhandled.
    promise.catch(() => undefined);
    return Promise.reject(aborted.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const cleanup = (): void => {
      for (const s of live) s.removeEventListener('abort', onAbort);
    };
    const onAbort = (event: Event): void => {
      cleanup();
      reject((event.target as AbortSignal).reason as Error);
    };
    for (const s of live) s.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (error: unknown) => {
        cleanup();
        reject(error as Error);
      },
    );
  });
}
