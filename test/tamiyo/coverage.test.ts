import { describe, expect, it } from 'vitest';
import { buildDecisionMetadata } from '../../src/core/index.js';
import {
  assessCoverage,
  coverageGroupOf,
  coverageMetrics,
  CoverageRecorder,
  coverageSummary,
  FEATURE_COVERAGE_METRIC,
  featureCoverageGroupMetric,
} from '../../src/tamiyo/coverage.js';
import type { FeatureCoverage } from '../../src/tamiyo/graph-types.js';

function coverageOf(byKey: Record<string, number>): FeatureCoverage {
  return { byKey: new Map(Object.entries(byKey)), byGroup: new Map(), average: 0 };
}

describe('CoverageRecorder', () => {
  it('reports present/total per key and count-weighted ratios per group and overall', () => {
    const r = new CoverageRecorder();
    r.observe('node.seed.contribution', true);
    r.observe('node.seed.contribution', false);
    r.observe('node.seed.stage', true);
    r.observe('node.seed.stage', true);
    r.observe('node.seed.stage', true);
    r.observe('node.global.loss', false);
    r.observe('edges.layer_connects', true);
    r.observe('edges.seed_param_allowed', false);
    const c = r.finish();
    expect(Object.fromEntries(c.byKey)).toEqual({
      'edges.layer_connects': 1,
      'edges.seed_param_allowed': 0,
      'node.global.loss': 0,
      'node.seed.contribution': 0.5,
      'node.seed.stage': 1,
    });
    // node.seed: 4 present of 5 observations (count-weighted), not 0.75, the mean of its key ratios.
    expect(Object.fromEntries(c.byGroup)).toEqual({ 'edges.layer_connects': 1, 'node.global': 0, 'node.seed': 0.8 });
    // Ungrouped edges.seed_param_allowed is left out of the average: 5 present of 7.
    expect(c.average).toBeCloseTo(5 / 7, 12);
  });

  it('gives an empty coverage with average 0 when nothing was observed', () => {
    const c = new CoverageRecorder().finish();
    expect(c.byKey.size).toBe(0);
    expect(c.byGroup.size).toBe(0);
    expect(c.average).toBe(0);
  });

  it('groups node keys by type and edge keys by themselves', () => {
    expect(coverageGroupOf('node.layer.parameter_count')).toBe('node.layer');
    expect(coverageGroupOf('edges.seed_monitors')).toBe('edges.seed_monitors');
    expect(coverageGroupOf('edges.seed_param_allowed')).toBeUndefined();
    expect(coverageGroupOf('other')).toBeUndefined();
  });
});

describe('coverageMetrics', () => {
  it('emits the average and one metric per group, always including edges.layer_connects', () => {
    const r = new CoverageRecorder();
    r.observe('node.seed.stage', true);
    r.observe('node.global.loss', false);
    const metrics = coverageMetrics(r.finish());
    expect(metrics).toEqual([
      { name: 'tamiyo.gnn.feature_coverage', value: 0.5, unit: 'ratio' },
      { name: 'tamiyo.gnn.feature_coverage.edges.layer_connects', value: 0, unit: 'ratio' },
      { name: 'tamiyo.gnn.feature_coverage.node.global', value: 0, unit: 'ratio' },
      { name: 'tamiyo.gnn.feature_coverage.node.seed', value: 1, unit: 'ratio' },
    ]);
    expect(FEATURE_COVERAGE_METRIC).toBe('tamiyo.gnn.feature_coverage');
    expect(featureCoverageGroupMetric('node.site')).toBe('tamiyo.gnn.feature_coverage.node.site');
  });

  it('converts to the DecisionMetadata coverage summary core accepts', () => {
    const r = new CoverageRecorder();
    r.observe('node.seed.stage', true);
    r.observe('node.global.loss', false);
    const summary = coverageSummary(r.finish());
    expect(summary).toEqual({
      average: 0.5,
      groups: [
        { name: 'node.global', value: 0 },
        { name: 'node.seed', value: 1 },
      ],
    });
    const metadata = buildDecisionMetadata({ coverage: summary });
    expect(metadata.coverage?.groups.map((g) => g.name)).toEqual(['node.global', 'node.seed']);
  });
});

describe('assessCoverage (reference §10.6)', () => {
  it('averages only non-zero keys and counts zero keys as missing features', () => {
    const a = assessCoverage(coverageOf({ a: 1, b: 0.5, c: 0, d: 0 }));
    expect(a).toEqual({ average: 0.75, missingFeatures: 2, level: 'ok' });
  });

  it('is critical at or below 0.10, degraded below 0.30, ok from 0.30', () => {
    expect(assessCoverage(coverageOf({ a: 0.1 })).level).toBe('critical');
    expect(assessCoverage(coverageOf({ a: 0.1, b: 0 })).level).toBe('critical');
    expect(assessCoverage(coverageOf({ a: 0.11 })).level).toBe('degraded');
    expect(assessCoverage(coverageOf({ a: 0.29 })).level).toBe('degraded');
    expect(assessCoverage(coverageOf({ a: 0.3 })).level).toBe('ok');
  });

  it('is critical with average 0 when every key is missing or there are none', () => {
    expect(assessCoverage(coverageOf({ a: 0, b: 0 }))).toEqual({ average: 0, missingFeatures: 2, level: 'critical' });
    expect(assessCoverage(coverageOf({}))).toEqual({ average: 0, missingFeatures: 0, level: 'critical' });
  });
});
