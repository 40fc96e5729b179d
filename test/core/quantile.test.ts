import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/errors.js';
import { quantile, quantileOfSorted, SampleWindow } from '../../src/core/quantile.js';

describe('quantile', () => {
  it('interpolates linearly between order statistics (type 7, as numpy)', () => {
    const values = [15, 20, 35, 40, 50];
    // numpy.quantile([15, 20, 35, 40, 50], [0, .25, .4, .5, .95, 1]) = 15, 20, 29, 35, 48, 50
    expect([0, 0.25, 0.4, 0.5, 0.95, 1].map((q) => quantile(values, q))).toEqual([15, 20, 29, 35, 48, 50]);
    expect(quantile([1, 2], 0.5)).toBe(1.5);
  });

  it('ignores input order and leaves the input alone', () => {
    const values = [3, 1, 2];
    expect(quantile(values, 0.5)).toBe(2);
    expect(values).toEqual([3, 1, 2]);
  });

  it('is undefined for no samples and the sample itself for one', () => {
    expect(quantile([], 0.5)).toBeUndefined();
    expect(quantile([7], 0.99)).toBe(7);
  });

  it.each([-0.1, 1.1, Number.NaN])('refuses q = %s with INVALID_ARGUMENT', (q) => {
    expect(() => quantile([1], q)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });

  it('stays within the samples and grows with q (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), { minLength: 1, maxLength: 50 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (values, a, b) => {
          const sorted = Float64Array.from(values).sort();
          const [lo, hi] = a <= b ? [a, b] : [b, a];
          const qLo = quantileOfSorted(sorted, lo) as number;
          const qHi = quantileOfSorted(sorted, hi) as number;
          expect(qLo).toBeGreaterThanOrEqual(sorted[0] as number);
          expect(qHi).toBeLessThanOrEqual(sorted[sorted.length - 1] as number);
          expect(qLo).toBeLessThanOrEqual(qHi + 1e-9 * Math.max(1, Math.abs(qHi)));
        },
      ),
    );
  });

  it('hits each order statistic exactly at q = k / (n − 1) (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 2, maxLength: 30 }), (values) => {
        const sorted = [...values].sort((x, y) => x - y);
        sorted.forEach((value, k) => expect(quantileOfSorted(sorted, k / (sorted.length - 1))).toBeCloseTo(value, 9));
      }),
    );
  });
});

describe('SampleWindow', () => {
  it('keeps the last `capacity` samples and takes quantiles over them', () => {
    const window = new SampleWindow(4);
    expect(window.quantiles([0.5])).toEqual([undefined]);
    for (const sample of [100, 1, 2, 3, 4]) window.record(sample);
    expect(window.size).toBe(4);
    expect(window.capacity).toBe(4);
    expect(Array.from(window.sorted())).toEqual([1, 2, 3, 4]);
    expect(window.quantiles([0, 0.5, 1])).toEqual([1, 2.5, 4]);
  });

  it.each([0, 1.5, -1])('refuses capacity %s', (capacity) => {
    expect(() => new SampleWindow(capacity)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });
});
