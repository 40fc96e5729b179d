/**
 * The supervisor's restart arithmetic, pure so it can be checked on its own: the backoff
 * schedule (prototype-tolaria-oona-nissa-weatherlight §5.3: 1 s base doubled per failure,
 * 30 s cap, up to 25 % jitter) and the restart budget the prototype did not have.
 */
import { ErrorCode, EsperError } from '../core/index.js';

/** How long a crashed service waits before it is started again. */
export interface BackoffPolicy {
  /** The base that doubles: the n-th consecutive failure waits `baseMs·2ⁿ` (capped). */
  readonly baseMs: number;
  /** Cap of the doubled base; the jitter comes on top of it. */
  readonly maxMs: number;
  /** Up to this fraction of the base is added at random. */
  readonly jitterRatio: number;
}

/** The prototype's policy: waits of 2, 4, 8, 16, 30, 30, … s, plus 0–25 %. */
export const BACKOFF_DEFAULTS: BackoffPolicy = Object.freeze({ baseMs: 1_000, maxMs: 30_000, jitterRatio: 0.25 });

/**
 * The base wait after `consecutiveFailures` (≥ 1) failures in a row: `min(baseMs·2ⁿ, maxMs)`.
 * Non-decreasing in the failure count and never above `maxMs`.
 */
export function backoffBaseMs(consecutiveFailures: number, policy: BackoffPolicy): number {
  if (!Number.isSafeInteger(consecutiveFailures) || consecutiveFailures < 1) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `consecutive failures must be an integer ≥ 1, got ${consecutiveFailures}`);
  }
  // 2ⁿ overflows to Infinity for large n, which the cap absorbs.
  return Math.min(policy.baseMs * 2 ** consecutiveFailures, policy.maxMs);
}

/**
 * The wait, jitter included: `base + u·base·jitterRatio` with `u = random()` clamped to
 * [0, 1], so within `[base, base·(1 + jitterRatio)]`.
 */
export function backoffDelayMs(consecutiveFailures: number, policy: BackoffPolicy, random: () => number): number {
  const base = backoffBaseMs(consecutiveFailures, policy);
  const u = Math.min(Math.max(random(), 0), 1);
  return base + u * base * policy.jitterRatio;
}

/** How many restarts a service may have within a sliding window. */
export interface RestartBudgetPolicy {
  /** Restarts allowed within any `windowMs`; the failure that would need one more stops the service. */
  readonly maxRestarts: number;
  /** Length of the sliding window. */
  readonly windowMs: number;
}

/**
 * Five restarts in five minutes. A service that crashes at once every time spends its five
 * restarts in about 60–75 s of backoff (2 + 4 + 8 + 16 + 30 s, plus jitter), well inside the
 * window, so it stops; one that crashes every few minutes runs on.
 */
export const RESTART_BUDGET_DEFAULTS: RestartBudgetPolicy = Object.freeze({ maxRestarts: 5, windowMs: 300_000 });

/** The restarts one service has spent within the window. */
export class RestartBudget {
  readonly #policy: RestartBudgetPolicy;
  readonly #restartsAtMs: number[] = [];

  constructor(policy: RestartBudgetPolicy) {
    this.#policy = policy;
  }

  /**
   * Spends one restart at monotonic time `nowMs` if the window still has one: returns
   * `true` (restart) or `false` (the budget is exhausted; nothing is spent).
   */
  take(nowMs: number): boolean {
    this.#forget(nowMs);
    if (this.#restartsAtMs.length >= this.#policy.maxRestarts) return false;
    this.#restartsAtMs.push(nowMs);
    return true;
  }

  /** Restarts spent within the window ending at `nowMs`. */
  spent(nowMs: number): number {
    this.#forget(nowMs);
    return this.#restartsAtMs.length;
  }

  #forget(nowMs: number): void {
    while (this.#restartsAtMs.length > 0 && (this.#restartsAtMs[0] as number) <= nowMs - this.#policy.windowMs) {
      this.#restartsAtMs.shift();
    }
  }
}
