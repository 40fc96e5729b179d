import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/index.js';
import { summarize, tQuantileOf, twoSidedP, welchTest } from '../../src/study/index.js';
import { thrownBy } from '../support/thrown.js';

describe('study statistics', () => {
  it('gives the tabulated t quantiles', () => {
    expect(tQuantileOf(0.975, 4)).toBeCloseTo(2.776445, 6);
    expect(tQuantileOf(0.975, 10)).toBeCloseTo(2.228139, 6);
    expect(twoSidedP(2.776445105197794, 4)).toBeCloseTo(0.05, 9);
  });

  it('summarizes an arm with the sample std and the 95 % t interval of the mean', () => {
    // scipy: np.std(a, ddof=1) = 0.5916079783099604; stats.t.interval(0.95, 4, 84.6, s/√5) = (83.865421672, 85.334578328).
    const s = summarize([84.1, 85.3, 83.9, 84.7, 85.0]);
    expect(s.n).toBe(5);
    expect(s.mean).toBeCloseTo(84.6, 12);
    expect(s.std).toBeCloseTo(0.5916079783099604, 12);
    expect(s.ci95?.[0]).toBeCloseTo(83.86542167228241, 9);
    expect(s.ci95?.[1]).toBeCloseTo(85.33457832771758, 9);
  });

  it('has no spread or interval for one value', () => {
    expect(summarize([0.8])).toEqual({ n: 1, mean: 0.8, std: undefined, ci95: undefined });
  });

  it("matches scipy's Welch test (ttest_ind equal_var=False) on a worked example", () => {
    // scipy 1.17.1: statistic 8.67500882536638, pvalue 1.2506455561025784e-05, df 8.886509500440946,
    // confidence_interval(0.95) = (2.720967954761716, 4.64569871190493).
    const w = welchTest([84.1, 85.3, 83.9, 84.7, 85.0], [80.2, 81.5, 79.8, 82.0, 80.9, 81.1]);
    expect(w.difference).toBeCloseTo(84.6 - 80.91666666666667, 12);
    expect(w.t).toBeCloseTo(8.67500882536638, 9);
    expect(w.df).toBeCloseTo(8.886509500440946, 9);
    expect(w.p).toBeCloseTo(1.2506455561025784e-5, 12);
    expect(w.ci95[0]).toBeCloseTo(2.720967954761716, 8);
    expect(w.ci95[1]).toBeCloseTo(4.64569871190493, 8);
  });

  it('is antisymmetric and gives p = 1 for equal samples', () => {
    const a = [1, 2, 3];
    const b = [2, 4, 7, 9];
    const ab = welchTest(a, b);
    const ba = welchTest(b, a);
    expect(ba.t).toBeCloseTo(-ab.t, 12);
    expect(ba.p).toBeCloseTo(ab.p, 12);
    expect(welchTest(a, a).p).toBeCloseTo(1, 12);
  });

  it('handles two constant samples without dividing by zero', () => {
    expect(welchTest([1, 1], [1, 1])).toMatchObject({ difference: 0, t: 0, p: 1, ci95: [0, 0] });
    expect(welchTest([2, 2], [1, 1])).toMatchObject({ difference: 1, t: Number.POSITIVE_INFINITY, p: 0, ci95: [1, 1] });
  });

  it('refuses samples it cannot test, with a typed error', () => {
    thrownBy(() => welchTest([1], [1, 2]), ErrorCode.INVALID_ARGUMENT);
    expect(() => summarize([])).toThrow(/one or more finite numbers/);
    expect(() => summarize([1, Number.NaN])).toThrow(/finite/);
  });
});
