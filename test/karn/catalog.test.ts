import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import { BlueprintTier, CircuitBreakerState, SeedSiteDescriptorSchema, SeedSiteKind, TelemetryLevel } from '../../src/leyline/index.js';
import { seededRng } from '../../src/tensor/index.js';
import { contextIndex, KarnCatalog } from '../../src/karn/catalog.js';
import { KarnEvent, KarnMetric } from '../../src/karn/names.js';

const DENSE = create(SeedSiteDescriptorSchema, { siteId: 'd', kind: SeedSiteKind.DENSE, shape: [256] });
const CONV = create(SeedSiteDescriptorSchema, { siteId: 'c', kind: SeedSiteKind.CONV, shape: [16, 16, 32] });

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('KarnCatalog descriptors', () => {
  const catalog = new KarnCatalog();

  it('holds 56 blueprints with unique ids BP001–BP056: the prototype 35 SAFE / 7 EXPERIMENTAL / 8 HIGH_RISK, then SAFE growth', () => {
    const all = catalog.list();
    expect(all).toHaveLength(56);
    expect(all.map((d) => d.blueprintId)).toEqual(Array.from({ length: 56 }, (_, i) => `BP${String(i + 1).padStart(3, '0')}`));
    expect(catalog.list({ tier: BlueprintTier.SAFE })).toHaveLength(41);
    for (const [id, name, family] of [
      ['BP051', 'widen_zero_out', 'widen'],
      ['BP052', 'widen_gradmax', 'widen'],
      ['BP053', 'widen_gradmax_unit', 'widen'],
      ['BP054', 'widen_random_unit', 'widen'],
      ['BP055', 'widen_random', 'widen'],
      ['BP056', 'widen_conv_zero_out', 'widen_conv'],
    ] as const) {
      expect([catalog.get(id).name, catalog.get(id).family, catalog.get(id).tier]).toEqual([name, family, BlueprintTier.SAFE]);
    }
    expect(catalog.defaultParameters('BP056')).toEqual({ channels: 8 });
    expect(catalog.list({ tier: BlueprintTier.EXPERIMENTAL })).toHaveLength(7);
    expect(catalog.list({ tier: BlueprintTier.HIGH_RISK })).toHaveLength(8);
  });

  it('carries the reference flags, stages, risks and bounds', () => {
    const bp001 = catalog.get('BP001');
    expect([bp001.stage, bp001.risk, bp001.allowedParameters.length]).toEqual([0, 0, 0]);
    for (const d of catalog.list({ tier: BlueprintTier.EXPERIMENTAL })) {
      expect([d.stage, d.approvalRequired, d.quarantineOnly]).toEqual([5, true, false]);
    }
    for (const d of catalog.list({ tier: BlueprintTier.HIGH_RISK })) {
      expect([d.stage, d.approvalRequired, d.quarantineOnly]).toEqual([6, true, true]);
    }
    const moe = catalog.get('BP036');
    expect(moe.allowedParameters.map((p) => [p.name, p.minValue, p.maxValue])).toEqual([
      ['capacity', 1, 2],
      ['experts', 4, 8],
    ]);
    expect(catalog.defaultParameters('BP036')).toEqual({ capacity: 1.5, experts: 6 });
    expect(catalog.get('BP043').name).toBe('exploding_gradient');
  });

  it('returns copies, so callers cannot change the catalog', () => {
    const d = catalog.get('BP002');
    d.risk = 0.99;
    expect(catalog.get('BP002').risk).toBeCloseTo(0.1);
  });

  it('rejects an unknown id with KARN_BLUEPRINT_NOT_FOUND', () => {
    expect(
      isEsperError(
        errorOf(() => catalog.get('BP999')),
        ErrorCode.KARN_BLUEPRINT_NOT_FOUND,
      ),
    ).toBe(true);
  });

  it('lists by site: conv-only families are absent at a DENSE site and dense-only ones at a CONV site', () => {
    const dense = catalog.list({ site: DENSE }).map((d) => d.family);
    const conv = catalog.list({ site: CONV }).map((d) => d.family);
    expect(dense).not.toContain('conv3x3_block');
    expect(conv).not.toContain('gated_linear_unit');
    expect(conv).toContain('squeeze_excite');
    expect(dense).toContain('bottleneck_mlp');
  });
});

describe('KarnCatalog.validateParameters', () => {
  const catalog = new KarnCatalog();

  it('accepts in-bound values, including the inclusive bounds', () => {
    expect(catalog.validateParameters('BP036', { experts: 8, capacity: 1 })).toEqual({ experts: 8, capacity: 1 });
    expect(catalog.validateParameters('BP001', {})).toEqual({});
  });

  it.each([
    ['missing', { experts: 5 }, 'capacity'],
    ['unknown', { experts: 5, capacity: 1, alpha: 0.5 }, 'alpha'],
    ['out_of_bounds', { experts: 9, capacity: 1 }, 'experts'],
    ['out_of_bounds', { experts: Number.NaN, capacity: 1 }, 'experts'],
  ])('rejects a %s parameter naming it', (problem, params, parameter) => {
    const error = errorOf(() => catalog.validateParameters('BP036', params));
    expect(isEsperError(error, ErrorCode.KARN_PARAMETER_INVALID)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({ parameter, problem });
  });
});

describe('KarnCatalog.select', () => {
  it('chooses by tier within the site, excluding quarantine_only unless asked', () => {
    const catalog = new KarnCatalog();
    const safe = catalog.select({ tier: BlueprintTier.SAFE, site: CONV, rng: seededRng(1) });
    expect(safe.descriptor.tier).toBe(BlueprintTier.SAFE);
    expect(catalog.familyOf(safe.descriptor.blueprintId).fits(CONV)).toBe(true);
    const noQuarantine = errorOf(() => catalog.select({ tier: BlueprintTier.HIGH_RISK, site: DENSE }));
    expect(isEsperError(noQuarantine, ErrorCode.KARN_NO_CANDIDATES)).toBe(true);
    const risky = catalog.select({ tier: BlueprintTier.HIGH_RISK, site: DENSE, allowQuarantine: true });
    expect(risky.descriptor.blueprintId).toBe('BP043');
    for (let seed = 0; seed < 20; seed += 1) {
      const pick = catalog.select({ site: DENSE, rng: seededRng(seed) });
      expect(pick.descriptor.quarantineOnly).toBe(false);
      expect(catalog.familyOf(pick.descriptor.blueprintId).fits(DENSE)).toBe(true);
    }
  });

  it('is deterministic for a context and uses the reference sha256 index', () => {
    expect(contextIndex('control-run', 42)).toBe(1436219274 % 42);
    expect(contextIndex('exp', 42)).toBe(39);
    expect(contextIndex('run-1', 42)).toBe(17);
    const catalog = new KarnCatalog();
    const a = catalog.select({ tier: BlueprintTier.EXPERIMENTAL, site: DENSE, context: 'exp' });
    const b = catalog.select({ tier: BlueprintTier.EXPERIMENTAL, site: DENSE, context: 'exp' });
    expect(a.descriptor.blueprintId).toBe(b.descriptor.blueprintId);
    expect(a.descriptor.tier).toBe(BlueprintTier.EXPERIMENTAL);
  });

  it('fills missing parameters with bound midpoints and validates given ones', () => {
    const catalog = new KarnCatalog();
    const s = catalog.select({ tier: BlueprintTier.EXPERIMENTAL, site: DENSE, parameters: {} });
    expect(s.parameters).toEqual(catalog.defaultParameters(s.descriptor.blueprintId));
  });

  it('counts successes per tier and emits karn.selection_succeeded with the reference attributes', () => {
    const sink = new MemoryTelemetrySink();
    const catalog = new KarnCatalog({ telemetry: sink, clock: new FakeClock() });
    catalog.select({ tier: BlueprintTier.SAFE, site: DENSE });
    const m = catalog.metricsSnapshot();
    expect([m[KarnMetric.REQUESTS_TOTAL], m[KarnMetric.REQUESTS_FAILED], m[KarnMetric.SELECTION_SAFE]]).toEqual([1, 0, 1]);
    const [event] = sink.events(KarnEvent.SELECTION_SUCCEEDED);
    expect(event?.attributes).toMatchObject({ blueprint_id: 'BP001', tier: 'BLUEPRINT_TIER_SAFE', latency_ms: '0.00' });
    expect(sink.packets[0]?.sourceSubsystem).toBe('karn');
    expect(sink.packets[0]?.metrics.map((x) => x.name)).toContain(KarnMetric.SELECTION_LATENCY_MS);
  });

  it('opens the breaker after failures, then refuses with BREAKER_OPEN and half-opens after the timeout', () => {
    const sink = new MemoryTelemetrySink();
    const clock = new FakeClock();
    const catalog = new KarnCatalog({ telemetry: sink, clock, breakerFailureThreshold: 1, breakerOpenTimeoutMs: 1000 });
    const bad = { tier: BlueprintTier.SAFE, site: DENSE, parameters: { nope: 1 } };
    expect(
      isEsperError(
        errorOf(() => catalog.select(bad)),
        ErrorCode.KARN_PARAMETER_INVALID,
      ),
    ).toBe(true);
    expect(
      isEsperError(
        errorOf(() => catalog.select({ site: DENSE })),
        ErrorCode.BREAKER_OPEN,
      ),
    ).toBe(true);
    const m = catalog.metricsSnapshot();
    expect(m[KarnMetric.REQUESTS_FAILED]).toBe(1);
    expect(m[KarnMetric.BREAKER_DENIED]).toBe(1);
    expect(m[KarnMetric.BREAKER_OPEN_TOTAL]).toBe(1);
    expect(m[KarnMetric.BREAKER_STATE]).toBe(CircuitBreakerState.CIRCUIT_STATE_OPEN);
    expect(sink.events(KarnEvent.SELECTION_FAILED)[0]?.attributes).toMatchObject({ error: ErrorCode.KARN_PARAMETER_INVALID });
    expect(sink.events(KarnEvent.BREAKER_OPENED)).toHaveLength(1);
    expect(sink.events(KarnEvent.BREAKER_DENIED)[0]?.level).toBe(TelemetryLevel.WARNING);
    clock.advance(1000);
    expect(catalog.select({ site: DENSE }).descriptor.blueprintId).toBe('BP001');
    expect(catalog.metricsSnapshot()[KarnMetric.BREAKER_STATE]).toBe(CircuitBreakerState.CIRCUIT_STATE_CLOSED);
  });
});
