/**
 * Time sources. Everything that measures durations reads {@link Clock.monotonicMs};
 * everything that stamps messages reads {@link Clock.wallMs}. Inject {@link FakeClock} in
 * tests.
 */

/** A source of monotonic and wall time. */
export interface Clock {
  /** Milliseconds on CLOCK_MONOTONIC (comparable across processes on one host). */
  monotonicMs(): number;
  /** Milliseconds since the Unix epoch. */
  wallMs(): number;
}

/** The process clock: `process.hrtime` for monotonic, `Date.now` for wall time. */
export const systemClock: Clock = {
  monotonicMs: () => Number(process.hrtime.bigint()) / 1e6,
  wallMs: () => Date.now(),
};

/** A manually advanced clock for tests. Both readings move together. */
export class FakeClock implements Clock {
  #monotonicMs: number;
  #wallMs: number;

  constructor(options: { monotonicMs?: number; wallMs?: number } = {}) {
    this.#monotonicMs = options.monotonicMs ?? 0;
    this.#wallMs = options.wallMs ?? Date.UTC(2026, 0, 1);
  }

  monotonicMs(): number {
    return this.#monotonicMs;
  }

  wallMs(): number {
    return this.#wallMs;
  }

  /** Moves both readings forward by `ms` (must be ≥ 0). */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`cannot advance a clock by ${ms} ms`);
    this.#monotonicMs += ms;
    this.#wallMs += ms;
  }

  /** Sets the wall reading without touching the monotonic one (clock skew tests). */
  setWallMs(ms: number): void {
    this.#wallMs = ms;
  }
}
