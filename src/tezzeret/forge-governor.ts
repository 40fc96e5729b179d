/**
 * The forge's failure policy: which failures are retried and after what backoff, the
 * circuit breaker over compile attempts, and conservative mode (entered after a timeout or
 * when the breaker opens, left after the next success).
 */
import { CircuitBreaker, ErrorCode, errorLabel, isEsperError, reasonOf, type CircuitBreakerSnapshot, type Clock } from '../core/index.js';
import { CircuitBreakerState } from '../leyline/index.js';
import { ForgeStrategy } from './forge-wal.js';

/** Reason of a compile that overran its deadline. */
export const TIMEOUT_REASON = 'timeout';

const TERMINAL_CODES: ReadonlySet<string> = new Set([
  ErrorCode.INVALID_ARGUMENT,
  ErrorCode.KARN_BLUEPRINT_NOT_FOUND,
  ErrorCode.KARN_PARAMETER_INVALID,
  ErrorCode.KARN_SITE_UNSUPPORTED,
]);

/** The reason recorded for a failed attempt: `timeout`, an error code, or an error class name. */
export function failureReason(error: unknown): string {
  return reasonOf(error, { [ErrorCode.TEZZERET_COMPILE_TIMEOUT]: TIMEOUT_REASON }, errorLabel);
}

/** Options of {@link ForgeGovernor} (validated by the forge). */
export interface ForgeGovernorOptions {
  readonly maxRetries: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly breakerFailureThreshold: number;
  readonly breakerOpenTimeoutMs: number;
  readonly clock: Clock;
  /** Called once each time the breaker opens. */
  readonly onBreakerOpen: (reason: string) => void;
}

/** Retry, breaker and conservative-mode state of one forge. */
export class ForgeGovernor {
  readonly #options: ForgeGovernorOptions;
  readonly #breaker: CircuitBreaker;
  #conservative = false;
  #consecutiveFailures = 0;

  constructor(options: ForgeGovernorOptions) {
    this.#options = options;
    this.#breaker = new CircuitBreaker({
      name: 'tezzeret-forge',
      failureThreshold: options.breakerFailureThreshold,
      openTimeoutMs: options.breakerOpenTimeoutMs,
      clock: options.clock,
      onStateChange: (change) => {
        if (change.to !== CircuitBreakerState.CIRCUIT_STATE_OPEN) return;
        this.#conservative = true;
        options.onBreakerOpen(change.snapshot.lastFailureReason ?? '');
      },
    });
  }

  /** The strategy of the next attempt. */
  get strategy(): ForgeStrategy {
    return this.#conservative ? ForgeStrategy.CONSERVATIVE : ForgeStrategy.STANDARD;
  }

  /** Whether conservative mode is on. */
  get conservativeMode(): boolean {
    return this.#conservative;
  }

  /** Failed attempts since the last success. */
  get consecutiveFailures(): number {
    return this.#consecutiveFailures;
  }

  /** Whether the breaker is open (the forge's packets are then WARNING). */
  get breakerOpen(): boolean {
    return this.#breaker.state === CircuitBreakerState.CIRCUIT_STATE_OPEN;
  }

  /** The breaker's snapshot (state, opened total). */
  breaker(): CircuitBreakerSnapshot {
    return this.#breaker.snapshot();
  }

  /** Whether the breaker lets another attempt start. */
  allow(): boolean {
    return this.#breaker.allow();
  }

  /** Records a successful attempt: breaker success, failures reset, conservative mode off. */
  succeeded(): void {
    this.#breaker.recordSuccess();
    this.#consecutiveFailures = 0;
    this.#conservative = false;
  }

  /**
   * Records failed attempt number `attempt` of a job (a timeout turns conservative mode on)
   * and returns the backoff before retrying it, in ms, or `undefined` when the error is
   * terminal or the job has used its retries.
   */
  failed(error: unknown, attempt: number): number | undefined {
    const reason = failureReason(error);
    this.#consecutiveFailures += 1;
    if (reason === TIMEOUT_REASON) this.#conservative = true;
    this.#breaker.recordFailure(reason);
    const terminal = isEsperError(error) && TERMINAL_CODES.has(error.code);
    if (terminal || attempt > this.#options.maxRetries) return undefined;
    return Math.min(this.#options.backoffMaxMs, this.#options.backoffBaseMs * 2 ** (attempt - 1));
  }
}

/** Resolves after `ms`, or rejects with the abort reason when `signal` aborts first. */
export function backoff(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
