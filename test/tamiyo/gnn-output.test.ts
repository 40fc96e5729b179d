import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlendMode } from '../../src/leyline/index.js';
import { PolicyAction } from '../../src/tamiyo/gnn-config.js';
import { decodeOutput, type GnnOutput } from '../../src/tamiyo/gnn-output.js';

describe('decodeOutput', () => {
  const base = (patch: Partial<GnnOutput> = {}): GnnOutput => ({
    actionLogits: new Float32Array(32),
    paramVector: Float32Array.of(0.25, 0, 0, 0),
    blendLogits: Float32Array.of(0, 0, 3, 0),
    schedule: Float32Array.of(0.5, -0.5),
    riskLogits: Float32Array.of(0, 0, 0, 0, 0),
    value: 1.5,
    breakerLogits: Float32Array.of(0, 0),
    seedScores: Float32Array.of(0.1, 2.5, 0.4),
    siteScores: Float32Array.of(1, 1),
    blueprintScores: new Float32Array(0),
    ...patch,
  });

  it('decodes actions, with reserved indices falling back to WAIT', () => {
    const logits = new Float32Array(32);
    logits[PolicyAction.GERMINATE] = 2;
    expect(decodeOutput(base({ actionLogits: logits })).action).toBe(PolicyAction.GERMINATE);
    const reserved = new Float32Array(32);
    reserved[17] = 5;
    const decision = decodeOutput(base({ actionLogits: reserved }));
    expect(decision.action).toBe(PolicyAction.WAIT);
    expect(decision.actionIndex).toBe(17);
  });

  it('scores risk as the expected class over ordered classes, not the confidence of the argmax', () => {
    // Sure the risk is low: a low score (the prototype's confidence reading gave 0.98 here,
    // which Tamiyo's risk engine took for a critical risk).
    const low = decodeOutput(base({ riskLogits: Float32Array.of(8, 0, 0, 0, 0) }));
    expect(low.riskIndex).toBe(0);
    expect(low.riskScore).toBeLessThan(0.01);
    const critical = decodeOutput(base({ riskLogits: Float32Array.of(0, 0, 0, 0, 8) }));
    expect(critical.riskIndex).toBe(4);
    expect(critical.riskScore).toBeGreaterThan(0.99);
    expect(decodeOutput(base({ riskLogits: Float32Array.of(0, 0, 8, 0, 0) })).riskScore).toBeCloseTo(0.5, 2);
    expect(decodeOutput(base({ riskLogits: Float32Array.of(3) })).riskScore).toBe(0);
  });

  it('picks the blend mode, risk class with its score, best nodes (first max wins) and none for empty types', () => {
    const decision = decodeOutput(base());
    expect(decision.blendIndex).toBe(2);
    expect(decision.blendMode).toBe(BlendMode.CHANNEL);
    expect(decision.riskIndex).toBe(0);
    expect(decision.riskScore).toBeCloseTo(0.5, 6);
    expect(decision.seedIndex).toBe(1);
    expect(decision.siteIndex).toBe(0);
    expect(decision.blueprintIndex).toBeUndefined();
    expect(decision.paramDelta).toBeCloseTo(0.25, 6);
    expect(decision.value).toBe(1.5);
    expect(decision.breakerOpenScore).toBeCloseTo(0.5, 6);
  });

  it('maps the schedule per §8.2: (tanh+1)/2, clamped, swapped when end < start', () => {
    const decision = decodeOutput(base());
    expect(decision.scheduleStart).toBeCloseTo(0.25, 6);
    expect(decision.scheduleEnd).toBeCloseTo(0.75, 6);
    const clamped = decodeOutput(base({ schedule: Float32Array.of(3, Number.NaN) }));
    expect([clamped.scheduleStart, clamped.scheduleEnd]).toEqual([0, 1]);
  });

  it('skips non-finite node scores', () => {
    expect(decodeOutput(base({ seedScores: Float32Array.of(Number.NaN, -1, 3, Number.POSITIVE_INFINITY) })).seedIndex).toBe(2);
    expect(decodeOutput(base({ seedScores: Float32Array.of(Number.NaN) })).seedIndex).toBeUndefined();
  });

  it('always yields a defined action, an ordered schedule in [0, 1] and a risk score in [0, 1]', () => {
    const floats = (n: number) => fc.float32Array({ minLength: n, maxLength: n, noNaN: false });
    fc.assert(
      fc.property(floats(32), floats(2), floats(5), fc.float32Array({ maxLength: 6 }), (actions, schedule, risk, seeds) => {
        const d = decodeOutput(base({ actionLogits: actions, schedule, riskLogits: risk, seedScores: seeds }));
        expect(Object.values(PolicyAction)).toContain(d.action);
        expect(d.scheduleStart).toBeGreaterThanOrEqual(0);
        expect(d.scheduleEnd).toBeLessThanOrEqual(1);
        expect(d.scheduleStart).toBeLessThanOrEqual(d.scheduleEnd);
        if (risk.every((x) => Number.isFinite(x))) {
          expect(d.riskScore).toBeGreaterThanOrEqual(0);
          expect(d.riskScore).toBeLessThanOrEqual(1 + 1e-9);
        }
        if (d.seedIndex !== undefined) expect(seeds[d.seedIndex]).toBe(Math.max(...[...seeds].filter((x) => Number.isFinite(x))));
      }),
      { numRuns: 200 },
    );
  });
});
