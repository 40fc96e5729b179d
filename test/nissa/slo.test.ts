import { describe, expect, it } from 'vitest';
import { FakeClock, loadSettings } from '../../src/core/index.js';
import { SloKey, slosFromSettings, SloTracker } from '../../src/nissa/index.js';

const MIN = 60_000;

describe('SloTracker', () => {
  it('computes burn rate = (violations / total) / (1 − target) over the short and long windows', () => {
    const clock = new FakeClock({ wallMs: 10 * 3_600_000 });
    const slo = new SloTracker({ clock });
    // 100 commands over the last hour, 2 rejected 30 min ago: 2 % errors on a 1 % budget.
    for (let i = 0; i < 100; i += 1) slo.recordCommandOutcome(!(i === 40 || i === 41), clock.wallMs() - 59 * MIN + i * 35_000);
    const status = slo.status(SloKey.COMMAND_ACCEPTANCE)!;
    expect(status).toMatchObject({ target: 0.99, total: 100, violations: 2, burning: false });
    expect(status.errorBudget).toBeCloseTo(0.01);
    expect(status.burnRate).toBeCloseTo(2);
    expect(status.budgetRemaining).toBe(0);
    expect(status.short).toMatchObject({ windowMs: 5 * MIN, violations: 0 });
    expect(status.short.total).toBeGreaterThan(5);
    expect(status.lifetime).toEqual({ total: 100, violations: 2 });
  });

  it('is burning only when both windows burn at or above the threshold', () => {
    const clock = new FakeClock({ wallMs: 10 * 3_600_000 });
    const slo = new SloTracker({ clock });
    // A burst of slow decisions in the last 2 minutes after an hour of good ones.
    for (let i = 0; i < 60; i += 1) slo.recordDecisionLatency(1, clock.wallMs() - 60 * MIN + i * MIN);
    for (let i = 0; i < 20; i += 1) slo.recordDecisionLatency(50, clock.wallMs() - 2 * MIN + i * 1_000);
    const status = slo.status(SloKey.DECISION_LATENCY)!;
    expect(status.short.burnRate).toBeGreaterThanOrEqual(14.4);
    expect(status.long.burnRate).toBeCloseTo(20 / 80 / 0.01);
    expect(status.burning).toBe(true);
    expect(slo.burning()).toEqual([SloKey.DECISION_LATENCY]);
    // An hour later the burst has left both windows.
    clock.advance(61 * MIN);
    expect(slo.status(SloKey.DECISION_LATENCY)).toMatchObject({ total: 0, burnRate: 0, burning: false });
  });

  it('judges bus lag against its budget and ignores unknown keys and stale events', () => {
    const clock = new FakeClock({ wallMs: 5 * 3_600_000 });
    const slo = new SloTracker({ clock, slos: slosFromSettings(loadSettings({ env: { ESPER_NISSA_SLO_BUS_LAG_BUDGET_MS: '250' } })) });
    slo.recordBusLag(200);
    slo.recordBusLag(300);
    expect(slo.status(SloKey.BUS_LAG)).toMatchObject({ total: 2, violations: 1 });
    expect(slo.record('nope', true)).toBe(false);
    expect(slo.record(SloKey.BUS_LAG, true, clock.wallMs() - 2 * 3_600_000)).toBe(false);
    expect(slo.stats()).toEqual({ ignoredEvents: 1, staleEvents: 1 });
  });

  it('learns SLOs from the prototype’s slo.<key>_objective / _actual pairs (good iff actual ≤ objective)', () => {
    const clock = new FakeClock();
    const slo = new SloTracker({ clock, maxKeys: 4 });
    const pair = (key: string, objective: number, actual: number): Map<string, number> =>
      new Map([
        [`slo.${key}_objective`, objective],
        [`slo.${key}_actual`, actual],
      ]);
    expect(slo.recordFromMetrics(pair('epoch_ms', 100, 90))).toBe(1);
    expect(slo.recordFromMetrics(pair('epoch_ms', 100, 120))).toBe(1);
    expect(slo.recordFromMetrics(new Map([['slo.lonely_objective', 1]]))).toBe(0);
    expect(slo.summary()['epoch_ms']).toMatchObject({ total: 2, violations: 1, target: 0.99 });
    expect(slo.summary()['epoch_ms']?.burnRate).toBeCloseTo(50);
    expect(slo.recordFromMetrics(pair('second', 1, 0))).toBe(0); // maxKeys 4: three defaults + epoch_ms
    expect(slo.stats().ignoredEvents).toBe(1);
    expect(Object.keys(slo.summary())).toEqual([SloKey.DECISION_LATENCY, SloKey.COMMAND_ACCEPTANCE, SloKey.BUS_LAG, 'epoch_ms']);
  });

  it('keeps memory bounded: buckets older than the long window are pruned', () => {
    const clock = new FakeClock({ wallMs: 0 });
    const slo = new SloTracker({ clock, shortWindowMs: 60_000, longWindowMs: 600_000 });
    for (let t = 0; t < 24 * 3_600_000; t += 1_000) slo.recordCommandOutcome(true, t);
    clock.setWallMs(24 * 3_600_000);
    expect(slo.status(SloKey.COMMAND_ACCEPTANCE)!.total).toBeLessThanOrEqual(602);
  });

  it('rejects a target outside (0, 1)', () => {
    expect(() => new SloTracker({ slos: [{ key: 'k', description: 'd', target: 1 }] })).toThrow(/target/);
  });
});
