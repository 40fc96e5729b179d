/**
 * The statistics of a study: per arm the mean, the sample standard deviation and the 95 %
 * Student-t confidence interval of the mean; between two arms Welch's unequal-variance
 * t-test (Welch–Satterthwaite degrees of freedom, two-sided p) and the 95 % confidence
 * interval of the difference of means. The t distribution is @stdlib's
 * (`@stdlib/stats-base-dists-t-quantile`, `-t-cdf`).
 */
import tCdf from '@stdlib/stats-base-dists-t-cdf';
import tQuantile from '@stdlib/stats-base-dists-t-quantile';
import { ErrorCode, EsperError } from '../core/index.js';

/** Confidence level of every interval the study reports. */
export const CONFIDENCE_LEVEL = 0.95;

/** Mean, spread and confidence interval of one arm's values. */
export interface Summary {
  readonly n: number;
  readonly mean: number;
  /** Sample standard deviation (n − 1 denominator); undefined for n < 2. */
  readonly std: number | undefined;
  /** 95 % t interval of the mean `[low, high]`; undefined for n < 2. */
  readonly ci95: readonly [number, number] | undefined;
}

/** Welch's t-test of mean(a) − mean(b). */
export interface WelchTest {
  /** mean(a) − mean(b). */
  readonly difference: number;
  /** Standard error of the difference, √(s²ₐ/nₐ + s²ᵦ/nᵦ). */
  readonly standardError: number;
  /** Welch–Satterthwaite degrees of freedom. */
  readonly df: number;
  /** t statistic (±Infinity when both samples are constant and differ). */
  readonly t: number;
  /** Two-sided p value. */
  readonly p: number;
  /** 95 % confidence interval of the difference. */
  readonly ci95: readonly [number, number];
}

function finiteValues(values: readonly number[], field: string): void {
  if (values.length === 0 || values.some((v) => !Number.isFinite(v))) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `${field} must be one or more finite numbers, got [${values.join(', ')}]`, {
      details: { field },
    });
  }
}

function mean(values: readonly number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
}

/** Sample variance (n − 1 denominator); 0 for one value. */
function variance(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  return values.reduce((s, v) => s + (v - m) ** 2, 0) / (values.length - 1);
}

/** The quantile of Student's t with `df` degrees of freedom at probability `p`. */
export function tQuantileOf(p: number, df: number): number {
  return tQuantile(p, df);
}

/** Two-sided p value of statistic `t` under Student's t with `df` degrees of freedom. */
export function twoSidedP(t: number, df: number): number {
  if (Number.isNaN(t)) return Number.NaN;
  return Math.min(1, 2 * tCdf(-Math.abs(t), df));
}

/**
 * Mean, sample standard deviation and 95 % t confidence interval of `values`.
 * @throws EsperError INVALID_ARGUMENT for no values or a non-finite one
 */
export function summarize(values: readonly number[]): Summary {
  finiteValues(values, 'values');
  const n = values.length;
  const m = mean(values);
  if (n < 2) return { n, mean: m, std: undefined, ci95: undefined };
  const std = Math.sqrt(variance(values));
  const half = tQuantile(0.5 + CONFIDENCE_LEVEL / 2, n - 1) * (std / Math.sqrt(n));
  return { n, mean: m, std, ci95: [m - half, m + half] };
}

/**
 * Welch's t-test of mean(a) − mean(b), with the 95 % interval of the difference. Needs at
 * least two values per sample. When both samples are constant the standard error is 0: the
 * p value is 1 if the means are equal and 0 otherwise, and the interval is the point itself.
 * @throws EsperError INVALID_ARGUMENT for a sample with fewer than two values or a non-finite one
 */
export function welchTest(a: readonly number[], b: readonly number[]): WelchTest {
  finiteValues(a, 'a');
  finiteValues(b, 'b');
  if (a.length < 2 || b.length < 2) {
    throw new EsperError(
      ErrorCode.INVALID_ARGUMENT,
      `Welch's t-test needs two or more values per sample, got ${a.length} and ${b.length}`,
      {
        details: { field: a.length < 2 ? 'a' : 'b' },
      },
    );
  }
  const va = variance(a) / a.length;
  const vb = variance(b) / b.length;
  const difference = mean(a) - mean(b);
  const standardError = Math.sqrt(va + vb);
  if (standardError === 0) {
    return {
      difference,
      standardError,
      df: a.length + b.length - 2,
      t: difference === 0 ? 0 : Math.sign(difference) * Number.POSITIVE_INFINITY,
      p: difference === 0 ? 1 : 0,
      ci95: [difference, difference],
    };
  }
  const df = (va + vb) ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1));
  const t = difference / standardError;
  const half = tQuantile(0.5 + CONFIDENCE_LEVEL / 2, df) * standardError;
  return { difference, standardError, df, t, p: twoSidedP(t, df), ci95: [difference - half, difference + half] };
}
