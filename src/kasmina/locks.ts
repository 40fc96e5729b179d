/**
 * Per-key FIFO async mutexes: the per-blueprint locks of rc1 plan WP-K4, shared by kernel
 * attach, prefetch-ready and resume so two paths never load or cache the same blueprint at
 * once. A key's state exists only while the lock is held or awaited.
 */
import { systemClock, type Clock } from '../core/index.js';

/** Options of {@link KeyedLocks}. */
export interface KeyedLocksOptions {
  /** Time source of `waitedMs`. @default systemClock */
  readonly clock?: Clock;
}

/** Per-call options of {@link KeyedLocks.runExclusive}. */
export interface RunExclusiveOptions {
  /** Aborting it while the lock is awaited gives up the wait (rejects with the signal's reason). */
  readonly signal?: AbortSignal;
}

/** What {@link KeyedLocks.runExclusive} resolves to. */
export interface ExclusiveResult<T> {
  readonly value: T;
  /** Time spent waiting for the lock, in ms of the injected clock (0 when it was free). */
  readonly waitedMs: number;
}

interface Waiter {
  readonly grant: () => void;
}

interface KeyState {
  /** Waiters in arrival order; the holder is not in it. */
  readonly waiters: Waiter[];
}

/** A map of FIFO mutexes keyed by string. */
export class KeyedLocks {
  readonly #clock: Clock;
  /** Present only while a key is held; absent keys are free. */
  readonly #held = new Map<string, KeyState>();

  constructor(options: KeyedLocksOptions = {}) {
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Runs `fn` while holding `key`'s lock. Waiters are served in arrival order; the lock is
   * handed straight to the next waiter on release (no barging) and released whether `fn`
   * returns or throws (its error propagates).
   */
  async runExclusive<T>(key: string, fn: () => Promise<T> | T, options: RunExclusiveOptions = {}): Promise<ExclusiveResult<T>> {
    const requestedAtMs = this.#clock.monotonicMs();
    await this.#acquire(key, options.signal);
    const waitedMs = this.#clock.monotonicMs() - requestedAtMs;
    try {
      return { value: await fn(), waitedMs };
    } finally {
      this.#release(key);
    }
  }

  /** Whether `key` is held now. */
  isLocked(key: string): boolean {
    return this.#held.has(key);
  }

  /** Callers waiting for `key` now (the holder excluded). */
  waiting(key: string): number {
    return this.#held.get(key)?.waiters.length ?? 0;
  }

  /** Keys held now. */
  get size(): number {
    return this.#held.size;
  }

  #acquire(key: string, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    const state = this.#held.get(key);
    if (state === undefined) {
      this.#held.set(key, { waiters: [] });
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const index = state.waiters.indexOf(waiter);
        if (index >= 0) state.waiters.splice(index, 1);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      state.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #release(key: string): void {
    const state = this.#held.get(key);
    if (state === undefined) return;
    const next = state.waiters.shift();
    if (next === undefined) {
      this.#held.delete(key);
      return;
    }
    next.grant();
  }
}
