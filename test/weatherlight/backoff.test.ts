/**
 * The restart arithmetic: the prototype's backoff schedule (2, 4, 8, 16, 30, 30 … s, plus up
 * to 25 % jitter), checked as properties, and the sliding restart budget.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/index.js';
import { BACKOFF_DEFAULTS, backoffBaseMs, backoffDelayMs, RestartBudget } from '../../src/weatherlight/index.js';
import { thrownBy } from '../support/thrown.js';

const policyArb = fc
  .record({
    baseMs: fc.double({ min: 0.001, max: 60_000, noNaN: true }),
    capFactor: fc.double({ min: 1, max: 1e6, noNaN: true }),
    jitterRatio: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map(({ baseMs, capFactor, jitterRatio }) => ({ baseMs, maxMs: baseMs * capFactor, jitterRatio }));

describe('backoff schedule', () => {
  it('is the prototype sequence with the defaults: 2, 4, 8, 16, 30, 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 50].map((n) => backoffBaseMs(n, BACKOFF_DEFAULTS))).toEqual([
      2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000,
    ]);
    expect(backoffDelayMs(5, BACKOFF_DEFAULTS, () => 0.999_999)).toBeCloseTo(37_500, 0);
  });

  it('has a non-decreasing base that doubles until the cap and never exceeds it', () => {
    fc.assert(
      fc.property(policyArb, fc.integer({ min: 1, max: 2_000 }), (policy, n) => {
        const here = backoffBaseMs(n, policy);
        const next = backoffBaseMs(n + 1, policy);
        expect(next).toBeGreaterThanOrEqual(here);
        expect(here).toBeLessThanOrEqual(policy.maxMs);
        if (here < policy.maxMs) expect(here).toBeCloseTo(policy.baseMs * 2 ** n, 6);
        expect(next === policy.maxMs || next === here * 2).toBe(true);
      }),
    );
  });

  it('adds jitter within [0, jitterRatio] of the base, whatever the random source returns', () => {
    fc.assert(
      fc.property(policyArb, fc.integer({ min: 1, max: 64 }), fc.double({ min: -2, max: 3, noNaN: true }), (policy, n, u) => {
        const base = backoffBaseMs(n, policy);
        const delay = backoffDelayMs(n, policy, () => u);
        expect(delay).toBeGreaterThanOrEqual(base);
        expect(delay).toBeLessThanOrEqual(base * (1 + policy.jitterRatio) * (1 + 1e-12));
      }),
    );
  });

  it('refuses a failure count below 1', () => {
    expect(thrownBy(() => backoffBaseMs(0, BACKOFF_DEFAULTS), ErrorCode.INVALID_ARGUMENT).message).toMatch(/≥ 1/);
  });
});

describe('RestartBudget', () => {
  it('never grants more than maxRestarts within any window, and grants whenever the window has room', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 1, max: 1_000 }),
        fc.array(fc.integer({ min: 0, max: 500 }), { maxLength: 60 }),
        (maxRestarts, windowMs, gaps) => {
          const budget = new RestartBudget({ maxRestarts, windowMs });
          const granted: number[] = [];
          let now = 0;
          for (const gap of gaps) {
            now += gap;
            const inWindow = granted.filter((t) => t > now - windowMs).length;
            const ok = budget.take(now);
            expect(ok).toBe(inWindow < maxRestarts);
            if (ok) granted.push(now);
            expect(budget.spent(now)).toBe(granted.filter((t) => t > now - windowMs).length);
          }
        },
      ),
    );
  });
});
