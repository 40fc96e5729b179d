/**
 * The shared circuit breaker: `failureThreshold` consecutive failures open it for
 * `openTimeoutMs`; then a few probes pass (half-open); `successThreshold` probe successes
 * close it, one probe failure re-opens it. Departures from the prototype:
 * docs/architecture.md, Core.
 */
import { CircuitBreakerState } from '../leyline/index.js';
import { systemClock, type Clock } from './clock.js';
import { ErrorCode, EsperError, isEsperError } from './errors.js';
import { optionChecks } from './options.js';

/** Why a breaker changed state. */
export const BreakerTransitionReason = {
  /** CLOSED → OPEN: `failureThreshold` consecutive failures. */
  FAILURE_THRESHOLD: 'failure_threshold',
  /** HALF_OPEN → OPEN: a probe call failed. */
  PROBE_FAILED: 'probe_failed',
  /** OPEN → HALF_OPEN: the open window elapsed and a caller asked to pass. */
  OPEN_TIMEOUT_ELAPSED: 'open_timeout_elapsed',
  /** HALF_OPEN → CLOSED: `successThreshold` probe successes. */
  SUCCESS_THRESHOLD: 'success_threshold',
  /** → OPEN through {@link CircuitBreaker.forceOpen}. */
  FORCED_OPEN: 'forced_open',
  /** → CLOSED through {@link CircuitBreaker.reset}. */
  RESET: 'reset',
} as const;

/** Union of every {@link BreakerTransitionReason} value. */
export type BreakerTransitionReason = (typeof BreakerTransitionReason)[keyof typeof BreakerTransitionReason];

/** A point-in-time view of a breaker, safe to put in telemetry. */
export interface CircuitBreakerSnapshot {
  readonly name: string;
  readonly state: CircuitBreakerState;
  /** Failures recorded since the breaker last entered CLOSED or HALF_OPEN. */
  readonly failureCount: number;
  /** Probe successes in the current HALF_OPEN period. */
  readonly successCount: number;
  /** Monotonic time (ms) at which an OPEN breaker starts admitting probes; only when OPEN. */
  readonly openUntilMs?: number;
  /** Probe calls admitted in HALF_OPEN whose result has not been recorded yet. */
  readonly probesInFlight: number;
  /** Times the breaker has entered OPEN since construction (not cleared by `reset`). */
  readonly openedTotal: number;
  /** Calls refused since construction (not cleared by `reset`). */
  readonly rejectedTotal: number;
  /** Reason given with the most recent failure or forced open, if any. */
  readonly lastFailureReason?: string;
}

/** Passed to {@link CircuitBreakerOptions.onStateChange} after every transition. */
export interface CircuitBreakerStateChange {
  readonly name: string;
  readonly from: CircuitBreakerState;
  readonly to: CircuitBreakerState;
  readonly reason: BreakerTransitionReason;
  /** The breaker right after the transition. */
  readonly snapshot: CircuitBreakerSnapshot;
}

/** Options of {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Name used in snapshots, errors and telemetry (e.g. `karn.catalog`). Non-empty. */
  readonly name: string;
  /**
   * Consecutive failures in CLOSED that open the breaker. Integer ≥ 1.
   * @default 3
   */
  readonly failureThreshold?: number;
  /**
   * Probe successes in HALF_OPEN that close the breaker. Integer ≥ 1.
   * @default 1
   */
  readonly successThreshold?: number;
  /**
   * How long the breaker stays OPEN before it admits probes, in milliseconds. Also the
   * lease of a HALF_OPEN probe whose result is never recorded: once every probe slot has
   * been taken for this long, the slots are freed so the breaker cannot stay stuck.
   * Finite, ≥ 0.
   * @default 30000
   */
  readonly openTimeoutMs?: number;
  /**
   * Probe calls admitted at a time in HALF_OPEN. Integer ≥ 1.
   * @default successThreshold
   */
  readonly halfOpenMaxProbes?: number;
  /**
   * Monotonic time source.
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * Decides whether an error thrown inside {@link CircuitBreaker.run} counts as a failure.
   * Errors it rejects (say, a caller's validation error) pass through without touching the
   * breaker's counters.
   * @default every error is a failure
   */
  readonly isFailure?: (error: unknown) => boolean;
  /**
   * Called synchronously after every state change, with the breaker already consistent.
   * It must not throw: an exception propagates to the caller of the method that caused
   * the transition.
   */
  readonly onStateChange?: (change: CircuitBreakerStateChange) => void;
}

/** {@link CircuitBreakerOptions} after defaults and validation. */
export interface ResolvedCircuitBreakerOptions {
  readonly name: string;
  readonly failureThreshold: number;
  readonly successThreshold: number;
  readonly openTimeoutMs: number;
  readonly halfOpenMaxProbes: number;
  readonly clock: Clock;
  readonly isFailure: (error: unknown) => boolean;
  readonly onStateChange: ((change: CircuitBreakerStateChange) => void) | undefined;
}

/** Defaults of {@link CircuitBreakerOptions} (`halfOpenMaxProbes` follows `successThreshold`). */
export const CIRCUIT_BREAKER_DEFAULTS = Object.freeze({
  failureThreshold: 3,
  successThreshold: 1,
  openTimeoutMs: 30_000,
});

const MAX_REASON_CHARS = 200;
const check = optionChecks('CircuitBreaker');

/** Validates `options` and fills in defaults; throws `INVALID_ARGUMENT` naming the field. */
export function resolveCircuitBreakerOptions(options: CircuitBreakerOptions): ResolvedCircuitBreakerOptions {
  const d = CIRCUIT_BREAKER_DEFAULTS;
  check.nonEmptyString('name', options.name);
  const successThreshold = check.integer('successThreshold', options.successThreshold ?? d.successThreshold, { min: 1 });
  const failureThreshold = check.integer('failureThreshold', options.failureThreshold ?? d.failureThreshold, { min: 1 });
  const halfOpenMaxProbes = check.integer('halfOpenMaxProbes', options.halfOpenMaxProbes ?? successThreshold, { min: 1 });
  const openTimeoutMs = check.nonNegative('openTimeoutMs', options.openTimeoutMs ?? d.openTimeoutMs);
  return {
    name: options.name,
    failureThreshold,
    successThreshold,
    openTimeoutMs,
    halfOpenMaxProbes,
    clock: options.clock ?? systemClock,
    isFailure: options.isFailure ?? (() => true),
    onStateChange: options.onStateChange,
  };
}

/**
 * A three-state circuit breaker (CLOSED → OPEN → HALF_OPEN → CLOSED | OPEN) over a
 * monotonic clock. Not tied to any I/O: callers either wrap a call in {@link run}, or ask
 * {@link allow} and then report the outcome with exactly one of {@link recordSuccess},
 * {@link recordFailure} or {@link recordNeutral}.
 */
export class CircuitBreaker {
  readonly name: string;
  readonly #options: ResolvedCircuitBreakerOptions;
  #state: CircuitBreakerState = CircuitBreakerState.CIRCUIT_STATE_CLOSED;
  #failureCount = 0;
  #successCount = 0;
  #openUntilMs = 0;
  #probesInFlight = 0;
  #lastProbeAdmittedAtMs = 0;
  #openedTotal = 0;
  #rejectedTotal = 0;
  #lastFailureReason: string | undefined;

  constructor(options: CircuitBreakerOptions) {
    this.#options = resolveCircuitBreakerOptions(options);
    this.name = this.#options.name;
  }

  /** The resolved options (for logging the configuration). */
  get options(): ResolvedCircuitBreakerOptions {
    return this.#options;
  }

  /**
   * The current state. An OPEN breaker whose window has elapsed still reads OPEN until the
   * next {@link allow} moves it to HALF_OPEN.
   */
  get state(): CircuitBreakerState {
    return this.#state;
  }

  /**
   * Asks to make one call. CLOSED: always yes. OPEN: no until `openUntilMs` (inclusive of
   * that instant: at exactly `openUntilMs` the breaker half-opens and admits a probe).
   * HALF_OPEN: yes while fewer than `halfOpenMaxProbes` probes are in flight. A `true`
   * answer in HALF_OPEN takes a probe slot, which the next recorded outcome frees.
   */
  allow(): boolean {
    const now = this.#options.clock.monotonicMs();
    if (this.#state === CircuitBreakerState.CIRCUIT_STATE_OPEN) {
      if (now < this.#openUntilMs) return this.#reject();
      this.#transition(CircuitBreakerState.CIRCUIT_STATE_HALF_OPEN, BreakerTransitionReason.OPEN_TIMEOUT_ELAPSED);
    }
    if (this.#state === CircuitBreakerState.CIRCUIT_STATE_HALF_OPEN) {
      if (this.#probesInFlight >= this.#options.halfOpenMaxProbes) {
        if (now - this.#lastProbeAdmittedAtMs < this.#options.openTimeoutMs) return this.#reject();
        // Every probe has held its slot for a whole open window without reporting: its
        // caller lost track of it. Free the slots rather than stay half-open forever.
        this.#probesInFlight = 0;
      }
      this.#probesInFlight += 1;
      this.#lastProbeAdmittedAtMs = now;
    }
    return true;
  }

  /** Reports a successful call. Ignored while OPEN (a late result of an earlier call). */
  recordSuccess(): void {
    switch (this.#state) {
      case CircuitBreakerState.CIRCUIT_STATE_CLOSED:
        this.#failureCount = 0;
        return;
      case CircuitBreakerState.CIRCUIT_STATE_HALF_OPEN:
        this.#releaseProbe();
        this.#successCount += 1;
        if (this.#successCount >= this.#options.successThreshold) {
          this.#transition(CircuitBreakerState.CIRCUIT_STATE_CLOSED, BreakerTransitionReason.SUCCESS_THRESHOLD);
        }
        return;
      default:
        return;
    }
  }

  /**
   * Reports a failed call. CLOSED: opens at `failureThreshold` consecutive failures.
   * HALF_OPEN: one failure re-opens. OPEN: counted, but the open window is not extended.
   */
  recordFailure(reason?: string): void {
    this.#failureCount += 1;
    if (reason !== undefined) this.#lastFailureReason = truncate(reason);
    switch (this.#state) {
      case CircuitBreakerState.CIRCUIT_STATE_CLOSED:
        if (this.#failureCount >= this.#options.failureThreshold) {
          this.#open(BreakerTransitionReason.FAILURE_THRESHOLD);
        }
        return;
      case CircuitBreakerState.CIRCUIT_STATE_HALF_OPEN:
        this.#releaseProbe();
        this.#open(BreakerTransitionReason.PROBE_FAILED);
        return;
      default:
        return;
    }
  }

  /**
   * Reports that an admitted call ended without a verdict (cancelled, or an error that is
   * not a failure): frees its HALF_OPEN probe slot and changes nothing else.
   */
  recordNeutral(): void {
    if (this.#state === CircuitBreakerState.CIRCUIT_STATE_HALF_OPEN) this.#releaseProbe();
  }

  /** Opens the breaker now for a fresh `openTimeoutMs` (an operator or emergency trip). */
  forceOpen(reason?: string): void {
    if (reason !== undefined) this.#lastFailureReason = truncate(reason);
    this.#open(BreakerTransitionReason.FORCED_OPEN);
  }

  /** Closes the breaker and clears its counters; lifetime totals are kept. */
  reset(): void {
    const from = this.#state;
    this.#clearCounters();
    this.#state = CircuitBreakerState.CIRCUIT_STATE_CLOSED;
    if (from !== this.#state) this.#notify(from, BreakerTransitionReason.RESET);
  }

  /** A copy of the breaker's state and counters. */
  snapshot(): CircuitBreakerSnapshot {
    return {
      name: this.name,
      state: this.#state,
      failureCount: this.#failureCount,
      successCount: this.#successCount,
      ...(this.#state === CircuitBreakerState.CIRCUIT_STATE_OPEN ? { openUntilMs: this.#openUntilMs } : {}),
      probesInFlight: this.#probesInFlight,
      openedTotal: this.#openedTotal,
      rejectedTotal: this.#rejectedTotal,
      ...(this.#lastFailureReason === undefined ? {} : { lastFailureReason: this.#lastFailureReason }),
    };
  }

  /**
   * Runs `fn` under the breaker. Throws `BREAKER_OPEN` without calling `fn` when the
   * breaker refuses; otherwise records the outcome (errors pass through `isFailure`) and
   * returns or rethrows `fn`'s result unchanged.
   */
  async run<T>(fn: () => T | PromiseLike<T>): Promise<T> {
    if (!this.allow()) throw this.#openError();
    let result: T;
    try {
      result = await fn();
    } catch (error) {
      if (this.#options.isFailure(error)) this.recordFailure(describeError(error));
      else this.recordNeutral();
      throw error;
    }
    this.recordSuccess();
    return result;
  }

  #openError(): EsperError {
    const details: Record<string, string | number> = {
      breaker: this.name,
      state: stateName(this.#state),
    };
    let message = `circuit breaker ${this.name} is open`;
    if (this.#state === CircuitBreakerState.CIRCUIT_STATE_OPEN) {
      details['retryAfterMs'] = Math.max(0, this.#openUntilMs - this.#options.clock.monotonicMs());
    } else {
      message = `circuit breaker ${this.name} is half-open and every probe slot is taken`;
    }
    return new EsperError(ErrorCode.BREAKER_OPEN, message, { details });
  }

  #reject(): false {
    this.#rejectedTotal += 1;
    return false;
  }

  #releaseProbe(): void {
    if (this.#probesInFlight > 0) this.#probesInFlight -= 1;
  }

  #open(reason: BreakerTransitionReason): void {
    const from = this.#state;
    this.#openUntilMs = this.#options.clock.monotonicMs() + this.#options.openTimeoutMs;
    this.#successCount = 0;
    this.#probesInFlight = 0;
    if (from === CircuitBreakerState.CIRCUIT_STATE_OPEN) return;
    this.#state = CircuitBreakerState.CIRCUIT_STATE_OPEN;
    this.#openedTotal += 1;
    this.#notify(from, reason);
  }

  #transition(to: CircuitBreakerState, reason: BreakerTransitionReason): void {
    const from = this.#state;
    this.#clearCounters();
    this.#state = to;
    this.#notify(from, reason);
  }

  #clearCounters(): void {
    this.#failureCount = 0;
    this.#successCount = 0;
    this.#openUntilMs = 0;
    this.#probesInFlight = 0;
  }

  #notify(from: CircuitBreakerState, reason: BreakerTransitionReason): void {
    this.#options.onStateChange?.({
      name: this.name,
      from,
      to: this.#state,
      reason,
      snapshot: this.snapshot(),
    });
  }
}

function stateName(state: CircuitBreakerState): string {
  return CircuitBreakerState[state] ?? String(state);
}

function describeError(error: unknown): string {
  if (isEsperError(error)) return error.code;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

function truncate(text: string): string {
  return text.length <= MAX_REASON_CHARS ? text : `${text.slice(0, MAX_REASON_CHARS - 1)}…`;
}
