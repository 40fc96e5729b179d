/**
 * Feature coverage of a policy graph (reference prototype-tamiyo-simic §5.9): which
 * expected inputs were present, per key (`node.seed.gradient_norm`, `edges.layer_connects`)
 * and per group, plus the metrics and the degraded-inputs rule built on it (§10.6, §11.1).
 *
 * Grouping: a node key `node.<type>.<feature>` belongs to group `node.<type>`; an edge key
 * `edges.<name>` is its own group, except those in {@link UNGROUPED_COVERAGE_KEYS}
 * (legitimately empty relations; the prototype left `edges.seed_param_allowed` out too).
 */
import type { CoverageSummaryInput, MetricInput } from '../core/index.js';
import type { FeatureCoverage } from './graph-types.js';

/** Metric name of the average coverage (a Nissa contract name; spec 00 §2). */
export const FEATURE_COVERAGE_METRIC = 'tamiyo.gnn.feature_coverage';

/** Metric name of one group's coverage: `tamiyo.gnn.feature_coverage.<group>`. */
export function featureCoverageGroupMetric(group: string): string {
  return `${FEATURE_COVERAGE_METRIC}.${group}`;
}

/** Group the prototype always reported, 0 when missing (§11.1). */
export const ALWAYS_REPORTED_COVERAGE_GROUP = 'edges.layer_connects';

/** Keys recorded per key but left out of every group. */
export const UNGROUPED_COVERAGE_KEYS: ReadonlySet<string> = new Set(['edges.seed_param_allowed']);

/** Group of `key`, or undefined when the key is ungrouped. */
export function coverageGroupOf(key: string): string | undefined {
  if (UNGROUPED_COVERAGE_KEYS.has(key)) return undefined;
  if (key.startsWith('edges.')) return key;
  if (key.startsWith('node.')) {
    const end = key.indexOf('.', 'node.'.length);
    return end < 0 ? key : key.slice(0, end);
  }
  return undefined;
}

/** Counts present/total observations per key while a graph is built. */
export class CoverageRecorder {
  readonly #present = new Map<string, number>();
  readonly #total = new Map<string, number>();

  /** Records one expected input `key`, present or not. */
  observe(key: string, present: boolean): void {
    this.#total.set(key, (this.#total.get(key) ?? 0) + 1);
    this.#present.set(key, (this.#present.get(key) ?? 0) + (present ? 1 : 0));
  }

  /** Per-key ratios, count-weighted group ratios (empty groups omitted) and their average. */
  finish(): FeatureCoverage {
    const byKey = new Map<string, number>();
    const groupPresent = new Map<string, number>();
    const groupTotal = new Map<string, number>();
    let present = 0;
    let total = 0;
    for (const key of [...this.#total.keys()].sort()) {
      const t = this.#total.get(key) ?? 0;
      const p = this.#present.get(key) ?? 0;
      byKey.set(key, t === 0 ? 0 : p / t);
      const group = coverageGroupOf(key);
      if (group === undefined || t === 0) continue;
      groupPresent.set(group, (groupPresent.get(group) ?? 0) + p);
      groupTotal.set(group, (groupTotal.get(group) ?? 0) + t);
      present += p;
      total += t;
    }
    const byGroup = new Map<string, number>();
    for (const group of [...groupTotal.keys()].sort()) byGroup.set(group, (groupPresent.get(group) ?? 0) / (groupTotal.get(group) ?? 1));
    return { byKey, byGroup, average: total === 0 ? 0 : present / total };
  }
}

/**
 * Coverage metrics for a decision packet: the average, then one per group (sorted), with
 * {@link ALWAYS_REPORTED_COVERAGE_GROUP} added as 0 when absent (§11.1). Unit `ratio`.
 */
export function coverageMetrics(coverage: FeatureCoverage): MetricInput[] {
  const metrics: MetricInput[] = [{ name: FEATURE_COVERAGE_METRIC, value: coverage.average, unit: 'ratio' }];
  const groups = new Map(coverage.byGroup);
  if (!groups.has(ALWAYS_REPORTED_COVERAGE_GROUP)) groups.set(ALWAYS_REPORTED_COVERAGE_GROUP, 0);
  for (const group of [...groups.keys()].sort()) {
    metrics.push({ name: featureCoverageGroupMetric(group), value: groups.get(group) ?? 0, unit: 'ratio' });
  }
  return metrics;
}

/** Coverage in the shape of `DecisionMetadata.coverage` (core's `buildDecisionMetadata`). */
export function coverageSummary(coverage: FeatureCoverage): CoverageSummaryInput {
  return { average: coverage.average, groups: [...coverage.byGroup].map(([name, value]) => ({ name, value })) };
}

/** Outcome of {@link assessCoverage}. */
export type CoverageLevel = 'ok' | 'degraded' | 'critical';

/** Thresholds of the degraded-inputs rule (§10.6). */
export const COVERAGE_THRESHOLDS = Object.freeze({ critical: 0.1, degraded: 0.3 });

/** The degraded-inputs verdict on one graph. */
export interface CoverageAssessment {
  /** Mean of the non-zero per-key ratios (0 when every key is 0). */
  readonly average: number;
  /** Number of keys with ratio 0. */
  readonly missingFeatures: number;
  /** `critical` when average ≤ 0.10, `degraded` when < 0.30, else `ok`. */
  readonly level: CoverageLevel;
}

/**
 * The degraded-inputs rule (§10.6): average the non-zero per-key ratios (zeros are counted
 * as missing features instead), then ≤ 0.10 is critical and < 0.30 degraded.
 */
export function assessCoverage(coverage: FeatureCoverage): CoverageAssessment {
  let sum = 0;
  let nonZero = 0;
  let missingFeatures = 0;
  for (const value of coverage.byKey.values()) {
    if (value > 0) {
      sum += value;
      nonZero += 1;
    } else {
      missingFeatures += 1;
    }
  }
  const average = nonZero === 0 ? 0 : sum / nonZero;
  const level: CoverageLevel =
    average <= COVERAGE_THRESHOLDS.critical ? 'critical' : average < COVERAGE_THRESHOLDS.degraded ? 'degraded' : 'ok';
  return { average, missingFeatures, level };
}
