import { describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError } from '../../src/core/index.js';
import { TokenBucket } from '../../src/oona/token-bucket.js';

describe('TokenBucket', () => {
  it('starts full and grants exactly its capacity at once', () => {
    const bucket = new TokenBucket({ perMinute: 3, clock: new FakeClock() });
    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([true, true, true, false]);
  });

  it('refills continuously at perMinute/60 tokens per second', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket({ perMinute: 120, clock });
    while (bucket.tryTake());
    clock.advance(499);
    expect(bucket.tryTake()).toBe(false);
    clock.advance(1);
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tokens).toBeCloseTo(0, 9);
  });

  it('never holds more than its capacity', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket({ perMinute: 2, clock });
    clock.advance(3_600_000);
    expect(bucket.tokens).toBe(2);
  });

  it('rejects a non-integer or zero rate naming the field', () => {
    for (const perMinute of [0, -1, 1.5, Number.NaN]) {
      let caught: unknown;
      try {
        new TokenBucket({ perMinute });
      } catch (error) {
        caught = error;
      }
      expect(isEsperError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
      expect((caught as { details: Record<string, unknown> }).details['field']).toBe('perMinute');
    }
  });
});
