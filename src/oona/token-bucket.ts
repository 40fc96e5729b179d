/**
 * The emergency stream's budget (spec 01 "Priority routing", reference
 * prototype-tolaria-oona-nissa-weatherlight §3.6 step 5): a token bucket of capacity N,
 * starting full, refilled continuously at N/60 tokens per second and capped at N.
 *
 * Departure from the prototype: it dropped any emergency publish without a token. Here the
 * bucket only answers; the bus demotes HIGH without a token to its family stream and lets
 * CRITICAL through whether or not a token was left.
 */
import { optionChecks, systemClock, type Clock } from '../core/index.js';

/** Options of {@link TokenBucket}. */
export interface TokenBucketOptions {
  /** Tokens granted per minute, which is also the capacity. Integer ≥ 1. */
  readonly perMinute: number;
  /** Monotonic time source of the refill. @default systemClock */
  readonly clock?: Clock;
}

/** A continuously refilled token bucket over a monotonic clock. */
export class TokenBucket {
  /** Most tokens held (= `perMinute`). */
  readonly capacity: number;
  readonly #refillPerMs: number;
  readonly #clock: Clock;
  #tokens: number;
  #updatedAtMs: number;

  constructor(options: TokenBucketOptions) {
    this.capacity = optionChecks('TokenBucket').integer('perMinute', options.perMinute, { min: 1 });
    this.#refillPerMs = this.capacity / 60_000;
    this.#clock = options.clock ?? systemClock;
    this.#tokens = this.capacity;
    this.#updatedAtMs = this.#clock.monotonicMs();
  }

  /** Tokens available now (fractional while refilling). */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Takes one token if a whole one is available; returns whether it did. */
  tryTake(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #refill(): void {
    const now = this.#clock.monotonicMs();
    const elapsedMs = now - this.#updatedAtMs;
    // A clock that steps backwards must not drain the bucket.
    if (elapsedMs > 0) {
      this.#tokens = Math.min(this.capacity, this.#tokens + elapsedMs * this.#refillPerMs);
    }
    this.#updatedAtMs = now;
  }
}
