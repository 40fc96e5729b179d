/**
 * Gradient isolation: a direct check that a slot leaks no seed gradient into the host, and
 * the per-seed violation monitor with its breaker (shared parameters are the parameter
 * registry's to refuse). Departures from the prototype (reference prototype-kasmina §11):
 * the check measures ∂y/∂x of the slot on a random probe against the host-path gradient the
 * blend mode promises (§11.1's sampled dot products never raised a violation); the breaker
 * half-opens and closes again (§17.5); clearing a culled seed clears its share of the total
 * (§17.10).
 */
import { CircuitBreaker, optionChecks, type CircuitBreakerSnapshot, type Clock } from '../core/index.js';
import { CircuitBreakerState, isWidenSite, siteOutputShape } from '../leyline/index.js';
import { tf, type Rng } from '../tensor/index.js';
import { hostPathGradientScale } from './blending.js';
import { normalSamples, type SeedSlot } from './seed-slot.js';

/** Default relative leak tolerated by {@link checkIsolation}. */
export const ISOLATION_TOLERANCE = 1e-5;

const seedIdCheck = optionChecks('IsolationMonitor');

/** Result of {@link checkIsolation}. */
export interface IsolationCheck {
  readonly passed: boolean;
  /** ‖g − expected‖₂ over the probe. */
  readonly leakNorm: number;
  /** leakNorm / max(‖expected‖₂, 1e-12). */
  readonly relativeLeak: number;
  readonly tolerance: number;
  /** The slot phase the check ran in. */
  readonly phase: SeedSlot['phase'];
}

/**
 * Draws a probe activation x `[batch, ...site.shape]` and cotangent r from `rng`, computes
 * g = ∂/∂x Σ r ⊙ slot.apply(x), and compares it with r ⊙ (the host-path gradient scale of the
 * slot's phase, plan and effective alpha). Leaves no tensors behind.
 */
export function checkIsolation(slot: SeedSlot, rng: Rng, batch = 4, tolerance = ISOLATION_TOLERANCE): IsolationCheck {
  optionChecks('checkIsolation').integer('batch', batch, { min: 1 });
  if (isWidenSite(slot.site)) return checkWidenIsolation(slot, rng, batch, tolerance);
  const shape = [batch, ...slot.site.shape];
  const size = shape.reduce((a, b) => a * b, 1);
  const channels = slot.site.shape[slot.site.shape.length - 1] ?? 1;
  const xValues = normalSamples(rng, size);
  const rValues = normalSamples(rng, size);
  const phase = slot.phase;
  const scale = phase === 'paused' ? 1 : hostPathGradientScale(slot.plan, slot.alpha, phase, channels);
  const [leakNorm, expectedNorm] = tf.tidy(() => {
    const x = tf.tensor(xValues, shape);
    const r = tf.tensor(rValues, shape);
    const g = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(r, slot.apply(input, { training: true }))))(x);
    const expected = tf.mul(r, typeof scale === 'number' ? tf.scalar(scale) : tf.tensor1d(scale));
    const leak = tf.norm(tf.sub(g, expected)).dataSync()[0] ?? Number.NaN;
    const norm = tf.norm(expected).dataSync()[0] ?? Number.NaN;
    return [leak, norm];
  });
  const relativeLeak = leakNorm / Math.max(expectedNorm, 1e-12);
  return { passed: relativeLeak <= tolerance, leakNorm, relativeLeak, tolerance, phase };
}

/**
 * The WIDEN form of {@link checkIsolation}: the host adds the slot's contribution to the
 * next layer's pre-activation itself (gradient 1 on its own path), so what must hold is that
 * no gradient reaches the widened layer's input `u` through the seed outside the fused
 * phase: g = ∂/∂u Σ r ⊙ slot.contribute(u) must be 0. The relative leak is ‖g‖ / ‖r‖.
 */
function checkWidenIsolation(slot: SeedSlot, rng: Rng, batch: number, tolerance: number): IsolationCheck {
  const phase = slot.phase;
  // Fused units are part of the host: the gradient into u is the point, not a leak.
  if (phase === 'fused') return { passed: true, leakNorm: 0, relativeLeak: 0, tolerance, phase };
  const inputShape = [batch, ...slot.site.shape];
  const outputShape = [batch, ...siteOutputShape(slot.site)];
  const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
  const uValues = normalSamples(rng, size(inputShape));
  const rValues = normalSamples(rng, size(outputShape));
  const [leakNorm, cotangentNorm] = tf.tidy(() => {
    const u = tf.tensor(uValues, inputShape);
    const r = tf.tensor(rValues, outputShape);
    // `+ 0·Σu` keeps u on the tape when the contribution does not read it (paused).
    const g = tf.grad((input: tf.Tensor) =>
      tf.add(tf.sum(tf.mul(r, slot.contribute(input, { training: true }))), tf.mul(tf.scalar(0), tf.sum(input))),
    )(u);
    return [tf.norm(g).dataSync()[0] ?? Number.NaN, tf.norm(r).dataSync()[0] ?? Number.NaN];
  });
  const relativeLeak = leakNorm / Math.max(cotangentNorm, 1e-12);
  return { passed: relativeLeak <= tolerance, leakNorm, relativeLeak, tolerance, phase };
}

/** Options of {@link IsolationMonitor}. */
export interface IsolationMonitorOptions {
  /** Monotonic clock of the breaker. @default systemClock */
  readonly clock?: Clock;
  /** Violations in a row that open the breaker. @default 3 */
  readonly failureThreshold?: number;
  /** Passes in HALF_OPEN that close it. @default 2 */
  readonly successThreshold?: number;
  /** How long the breaker stays open, in milliseconds. @default 30000 */
  readonly openTimeoutMs?: number;
}

/** Defaults of {@link IsolationMonitorOptions} (reference §2, isolation breaker 3 / 30 s / 2). */
export const ISOLATION_MONITOR_DEFAULTS = Object.freeze({ failureThreshold: 3, successThreshold: 2, openTimeoutMs: 30_000 });

/** What {@link IsolationMonitor.recordViolation} reports. */
export interface ViolationRecord {
  readonly seedId: string;
  readonly reason: string;
  /** The seed's violations, including this one. */
  readonly seedViolations: number;
  /** Violations over all tracked seeds. */
  readonly totalViolations: number;
  /** The breaker is OPEN after recording. */
  readonly breakerOpen: boolean;
  /** Raise to CRITICAL (the breaker is open). */
  readonly escalate: boolean;
}

/** Per-seed isolation-violation counters plus a breaker that escalates repeated violations. */
export class IsolationMonitor {
  readonly #breaker: CircuitBreaker;
  readonly #counts = new Map<string, number>();
  #recordedTotal = 0;

  constructor(options: IsolationMonitorOptions = {}) {
    this.#breaker = new CircuitBreaker({
      name: 'kasmina.isolation',
      failureThreshold: options.failureThreshold ?? ISOLATION_MONITOR_DEFAULTS.failureThreshold,
      successThreshold: options.successThreshold ?? ISOLATION_MONITOR_DEFAULTS.successThreshold,
      openTimeoutMs: options.openTimeoutMs ?? ISOLATION_MONITOR_DEFAULTS.openTimeoutMs,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
  }

  /** Records one violation for `seedId` and feeds the breaker a failure. */
  recordViolation(seedId: string, reason: string): ViolationRecord {
    seedIdCheck.nonEmptyString('seedId', seedId);
    const seedViolations = (this.#counts.get(seedId) ?? 0) + 1;
    this.#counts.set(seedId, seedViolations);
    this.#recordedTotal += 1;
    // allow() moves an OPEN breaker whose window elapsed to HALF_OPEN, where this failure
    // re-opens it at once.
    this.#breaker.allow();
    this.#breaker.recordFailure(reason);
    const breakerOpen = this.#breaker.state === CircuitBreakerState.CIRCUIT_STATE_OPEN;
    return { seedId, reason, seedViolations, totalViolations: this.total, breakerOpen, escalate: breakerOpen };
  }

  /** Records a clean isolation check for `seedId` (a success, when the breaker lets one through). */
  recordPass(seedId: string): void {
    seedIdCheck.nonEmptyString('seedId', seedId);
    if (this.#breaker.allow()) this.#breaker.recordSuccess();
  }

  /** Violations recorded for `seedId` since it was last cleared. */
  violations(seedId: string): number {
    return this.#counts.get(seedId) ?? 0;
  }

  /** Violations over all tracked seeds. */
  get total(): number {
    let sum = 0;
    for (const n of this.#counts.values()) sum += n;
    return sum;
  }

  /** Violations recorded since construction or {@link reset}, cleared seeds included. */
  get recordedTotal(): number {
    return this.#recordedTotal;
  }

  /** The breaker's state (CLOSED, OPEN or HALF_OPEN). */
  get breakerState(): CircuitBreakerState {
    return this.#breaker.state;
  }

  /** The breaker's snapshot, for telemetry. */
  breakerSnapshot(): CircuitBreakerSnapshot {
    return this.#breaker.snapshot();
  }

  /** Forgets `seedId`'s violations (after the seed is reset or removed). */
  clearSeed(seedId: string): void {
    this.#counts.delete(seedId);
  }

  /** Forgets every seed and closes the breaker. */
  reset(): void {
    this.#counts.clear();
    this.#recordedTotal = 0;
    this.#breaker.reset();
  }
}
