import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeedLifecycleGate, SeedLifecycleStage } from '../../src/leyline/index.js';
import {
  evaluateG0,
  evaluateG1,
  evaluateG2,
  evaluateG3,
  evaluateG4,
  evaluateG5,
  G4_MIN_CONTRIBUTION,
  gateForTransition,
  type GateResult,
  type SanityGateInputs,
  type StabilityGateInputs,
} from '../../src/kasmina/gates.js';

const G = SeedLifecycleGate;
const S = SeedLifecycleStage;

/** Every attribute finite (numbers) and stringify-able. */
function expectWellFormed(result: GateResult, gate: SeedLifecycleGate): void {
  expect(result.gate).toBe(gate);
  expect(result.passed).toBe(result.reason === '');
  for (const [key, value] of Object.entries(result.attributes)) {
    expect(['string', 'number', 'boolean']).toContain(typeof value);
    if (typeof value === 'number') expect(Number.isFinite(value), key).toBe(true);
    expect(typeof String(value)).toBe('string');
  }
}

/** The first failing condition's reason, '' if none: the spec, written independently. */
function firstFailure(checks: ReadonlyArray<[boolean, string]>): string {
  return checks.find(([failed]) => failed)?.[1] ?? '';
}

const count = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5 }));
const anyNumber = fc.oneof(fc.double({ noNaN: false }), fc.constantFrom(0, 1, 0.95, 0.01));

const PASSING_G0: SanityGateInputs = {
  blueprintId: 'BP009',
  siteId: 'hidden1',
  siteExists: true,
  seedIdInUse: false,
  siteOccupied: false,
  siteEmbargoed: false,
  blueprintFitsSite: true,
};

const PASSING_G2: StabilityGateInputs = {
  kernelLatencyMs: 2,
  latencyBudgetMs: 10,
  enforceLatency: true,
  seedGradNormMean: 0.5,
  seedGradFinite: true,
  seedOutputFinite: true,
  requireActiveGradient: true,
  maxLossRegression: 0.1,
};

describe('gate ↔ transition mapping', () => {
  it('maps each gated move to its gate and leaves culls ungated', () => {
    expect(gateForTransition(S.SEED_STAGE_DORMANT, S.SEED_STAGE_GERMINATED)).toBe(G.SEED_GATE_G0_SANITY);
    expect(gateForTransition(S.SEED_STAGE_GERMINATED, S.SEED_STAGE_TRAINING)).toBe(G.SEED_GATE_G1_GRADIENT_HEALTH);
    expect(gateForTransition(S.SEED_STAGE_TRAINING, S.SEED_STAGE_BLENDING)).toBe(G.SEED_GATE_G2_STABILITY);
    expect(gateForTransition(S.SEED_STAGE_SHADOWING, S.SEED_STAGE_PROBATIONARY)).toBe(G.SEED_GATE_G2_STABILITY);
    expect(gateForTransition(S.SEED_STAGE_BLENDING, S.SEED_STAGE_SHADOWING)).toBe(G.SEED_GATE_G3_INTERFACE);
    expect(gateForTransition(S.SEED_STAGE_PROBATIONARY, S.SEED_STAGE_FOSSILIZED)).toBe(G.SEED_GATE_G4_SYSTEM_IMPACT);
    expect(gateForTransition(S.SEED_STAGE_RESETTING, S.SEED_STAGE_DORMANT)).toBe(G.SEED_GATE_G5_RESET);
    expect(gateForTransition(S.SEED_STAGE_TRAINING, S.SEED_STAGE_CULLED)).toBeUndefined();
  });
});

describe('G0_SANITY', () => {
  it('passes a complete germination request with the ids as attributes', () => {
    const result = evaluateG0(PASSING_G0);
    expectWellFormed(result, G.SEED_GATE_G0_SANITY);
    expect(result).toMatchObject({ passed: true, reason: '', attributes: { blueprint_id: 'BP009', site_id: 'hidden1' } });
  });

  it('refuses an embargoed site (the prototype never enforced the embargo)', () => {
    expect(evaluateG0({ ...PASSING_G0, siteEmbargoed: true })).toMatchObject({ passed: false, reason: 'site embargoed' });
  });

  it('reports a blend config error with its text', () => {
    const result = evaluateG0({ ...PASSING_G0, blendConfigError: 'confidence_gate_missing_logits' });
    expect(result.reason).toBe('invalid blend config: confidence_gate_missing_logits');
    expect(result.attributes['blend_config_error']).toBe('confidence_gate_missing_logits');
  });

  it('passes iff no failure condition holds, reporting the first in order (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          blueprintId: fc.constantFrom('BP001', 'BP009'),
          siteId: fc.constantFrom('hidden1', 'nowhere'),
          siteExists: fc.boolean(),
          seedIdInUse: fc.boolean(),
          siteOccupied: fc.boolean(),
          siteEmbargoed: fc.boolean(),
          blueprintFitsSite: fc.boolean(),
          blendConfigError: fc.option(fc.constantFrom('', 'alpha_vec_too_long'), { nil: undefined }),
        }),
        (inputs) => {
          const result = evaluateG0(inputs);
          expectWellFormed(result, G.SEED_GATE_G0_SANITY);
          expect(result.reason).toBe(
            firstFailure([
              [!inputs.siteExists, 'unknown site'],
              [inputs.seedIdInUse, 'seed id in use'],
              [inputs.siteOccupied, 'site occupied'],
              [inputs.siteEmbargoed, 'site embargoed'],
              [!inputs.blueprintFitsSite, 'blueprint does not fit site'],
              [(inputs.blendConfigError ?? '') !== '', `invalid blend config: ${inputs.blendConfigError ?? ''}`],
            ]),
          );
        },
      ),
    );
  });
});

describe('G1_GRADIENT_HEALTH', () => {
  it('lets a parameter-free seed through', () => {
    const result = evaluateG1({ kernelAttached: true, isolationViolations: 0, trainableParameters: 0 });
    expectWellFormed(result, G.SEED_GATE_G1_GRADIENT_HEALTH);
    expect(result.passed).toBe(true);
    expect(result.attributes['trainable_parameters']).toBe(0);
  });

  it('names the registry conflict, and why a kernel is not attached', () => {
    const result = evaluateG1({
      kernelAttached: false,
      isolationViolations: 0,
      registryConflict: 'BP009/w owned by seed-a',
      trainableParameters: 10,
    });
    expect(result.reason).toBe('parameter registry conflict: BP009/w owned by seed-a');
    expect(result.attributes['registry_conflict']).toBe('BP009/w owned by seed-a');
    const missing = evaluateG1({
      kernelAttached: false,
      kernelError: 'kernel fetch failed: ESPER_URZA_NOT_FOUND',
      isolationViolations: 0,
      trainableParameters: 0,
    });
    expect(missing.reason).toBe('kernel not attached');
    expect(missing.attributes['kernel_error']).toBe('kernel fetch failed: ESPER_URZA_NOT_FOUND');
  });

  it('fails a function-preserving claim unless the output at graft is exactly 0 (NaN fails too)', () => {
    const g1 = (entryOutputMaxAbs: number) =>
      evaluateG1({ kernelAttached: true, isolationViolations: 0, trainableParameters: 4, entryOutputMaxAbs });
    expect(g1(0).passed).toBe(true);
    expect(g1(0).attributes['entry_output_max_abs']).toBe(0);
    for (const bad of [1e-30, 3, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(g1(bad).reason, String(bad)).toBe('function-preserving module has a non-zero output at graft');
    }
    expect(g1(Number.NaN).attributes['entry_output_max_abs']).toBe('NaN');
    expect(evaluateG1({ kernelAttached: true, isolationViolations: 0, trainableParameters: 4 }).attributes).not.toHaveProperty(
      'entry_output_max_abs',
    );
  });

  it('passes iff no failure condition holds (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          kernelAttached: fc.boolean(),
          isolationViolations: count,
          registryConflict: fc.option(fc.constantFrom('', 'shared'), { nil: undefined }),
          trainableParameters: fc.nat(),
        }),
        (inputs) => {
          const result = evaluateG1(inputs);
          expectWellFormed(result, G.SEED_GATE_G1_GRADIENT_HEALTH);
          expect(result.reason).toBe(
            firstFailure([
              [(inputs.registryConflict ?? '') !== '', `parameter registry conflict: ${inputs.registryConflict ?? ''}`],
              [!inputs.kernelAttached, 'kernel not attached'],
              [inputs.isolationViolations > 0, 'gradient isolation violations present'],
            ]),
          );
        },
      ),
    );
  });
});

describe('G2_STABILITY', () => {
  it('fails strictly above the latency budget, not at it', () => {
    expect(evaluateG2({ ...PASSING_G2, kernelLatencyMs: 10 }).passed).toBe(true);
    expect(evaluateG2({ ...PASSING_G2, kernelLatencyMs: 10.01 })).toMatchObject({ passed: false, reason: 'latency budget exceeded' });
    // Observed budgets (core.latencyBudgets: observe) report the latency and fail nothing.
    expect(evaluateG2({ ...PASSING_G2, kernelLatencyMs: 10.01, enforceLatency: false })).toMatchObject({
      passed: true,
      attributes: { latency_ms: 10.01, budget_ms: 10 },
    });
  });

  it('requires an active gradient only when asked (TRAINING)', () => {
    expect(evaluateG2({ ...PASSING_G2, seedGradNormMean: 0 }).reason).toBe('seed gradient inactive');
    expect(evaluateG2({ ...PASSING_G2, seedGradNormMean: 0, requireActiveGradient: false }).passed).toBe(true);
  });

  it('checks the loss only with both losses given, and fails a NaN loss', () => {
    expect(evaluateG2({ ...PASSING_G2, lossNow: 100 }).passed).toBe(true);
    expect(evaluateG2({ ...PASSING_G2, lossBaseline: 1, lossNow: 1.1 }).passed).toBe(true);
    const regressed = evaluateG2({ ...PASSING_G2, lossBaseline: 1, lossNow: 1.2 });
    expect(regressed).toMatchObject({ passed: false, reason: 'loss regressed' });
    expect(regressed.attributes).toMatchObject({ loss_baseline: 1, loss_now: 1.2 });
    const nan = evaluateG2({ ...PASSING_G2, lossBaseline: 1, lossNow: Number.NaN });
    expectWellFormed(nan, G.SEED_GATE_G2_STABILITY);
    expect(nan.reason).toBe('loss regressed');
    expect(nan.attributes['loss_now']).toBe('NaN');
  });

  it('passes iff no failure condition holds (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          kernelLatencyMs: fc.oneof(fc.double({ min: 0, max: 50, noNaN: true }), fc.constant(Number.NaN)),
          latencyBudgetMs: fc.constantFrom(5, 10, 20),
          enforceLatency: fc.boolean(),
          seedGradNormMean: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 10, noNaN: true })),
          seedGradFinite: fc.boolean(),
          seedOutputFinite: fc.boolean(),
          requireActiveGradient: fc.boolean(),
          lossBaseline: fc.option(fc.double({ min: 0, max: 5, noNaN: true }), { nil: undefined }),
          lossNow: fc.option(fc.oneof(fc.double({ min: 0, max: 8, noNaN: true }), fc.constant(Number.POSITIVE_INFINITY)), {
            nil: undefined,
          }),
          maxLossRegression: fc.constantFrom(0, 0.1, 0.5),
        }),
        (inputs) => {
          const result = evaluateG2(inputs);
          expectWellFormed(result, G.SEED_GATE_G2_STABILITY);
          const both = inputs.lossBaseline !== undefined && inputs.lossNow !== undefined;
          expect(result.reason).toBe(
            firstFailure([
              [
                inputs.enforceLatency && (Number.isNaN(inputs.kernelLatencyMs) || inputs.kernelLatencyMs > inputs.latencyBudgetMs),
                'latency budget exceeded',
              ],
              [!inputs.seedOutputFinite, 'non-finite seed output'],
              [!inputs.seedGradFinite, 'non-finite seed gradient'],
              [inputs.requireActiveGradient && inputs.seedGradNormMean === 0, 'seed gradient inactive'],
              [both && (inputs.lossNow as number) > (inputs.lossBaseline as number) * (1 + inputs.maxLossRegression), 'loss regressed'],
            ]),
          );
        },
      ),
    );
  });
});

describe('G3_INTERFACE', () => {
  it('fails an unregistered host variable, then an output shaped unlike the probe, naming both shapes', () => {
    const base = { unregisteredHostVariables: 0, expectedShape: [4, 16], outputShape: [4, 16] };
    expect(evaluateG3(base).passed).toBe(true);
    expect(evaluateG3({ ...base, unregisteredHostVariables: 1 }).reason).toBe('host model not registered');
    const wrong = evaluateG3({ ...base, outputShape: [1, 16] });
    expect(wrong.reason).toBe('seed output shape mismatch');
    expect(wrong.attributes).toMatchObject({ expected_shape: '[4,16]', output_shape: '[1,16]' });
    expect(evaluateG3({ ...base, outputShape: [] }).reason).toBe('seed output shape mismatch');
  });

  it('passes iff no failure condition holds (property)', () => {
    const shape = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 3 });
    fc.assert(
      fc.property(fc.record({ unregisteredHostVariables: count, expectedShape: shape, outputShape: shape }), (inputs) => {
        const result = evaluateG3(inputs);
        expectWellFormed(result, G.SEED_GATE_G3_INTERFACE);
        expect(result.reason).toBe(
          firstFailure([
            [inputs.unregisteredHostVariables > 0, 'host model not registered'],
            [JSON.stringify(inputs.outputShape) !== JSON.stringify(inputs.expectedShape), 'seed output shape mismatch'],
          ]),
        );
      }),
    );
  });
});

describe('G4_SYSTEM_IMPACT', () => {
  it('fossilizes at ≥ 1 % contribution and carries contribution and threshold', () => {
    expect(G4_MIN_CONTRIBUTION).toBe(0.01);
    const base = { minContribution: G4_MIN_CONTRIBUTION, paused: false };
    expect(evaluateG4({ ...base, contribution: 0.02 }).passed).toBe(true);
    const low = evaluateG4({ ...base, contribution: 0.005 });
    expect(low.reason).toBe('contribution below threshold');
    expect(low.attributes).toMatchObject({ contribution: 0.005, threshold: 0.01 });
    expect(evaluateG4(base).reason).toBe('contribution not measured');
    expect(evaluateG4({ ...base, contribution: Number.NaN }).reason).toBe('contribution not measured');
  });

  it('passes iff no failure condition holds (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          contribution: fc.option(fc.double({ min: -0.5, max: 0.5, noNaN: true }), { nil: undefined }),
          minContribution: fc.constantFrom(0, 0.01, 0.1),
          paused: fc.boolean(),
        }),
        (inputs) => {
          const result = evaluateG4(inputs);
          expectWellFormed(result, G.SEED_GATE_G4_SYSTEM_IMPACT);
          expect(result.reason).toBe(
            firstFailure([
              [inputs.contribution === undefined, 'contribution not measured'],
              [inputs.paused, 'seed paused'],
              [(inputs.contribution ?? 0) < inputs.minContribution, 'contribution below threshold'],
            ]),
          );
        },
      ),
    );
  });
});

describe('G5_RESET', () => {
  it('names what is still dirty', () => {
    const result = evaluateG5({ kernelAttached: true, liveTensors: 3, registryEntries: 0, inflightPrefetches: 1 });
    expect(result).toMatchObject({ passed: false, reason: 'reset state not clean' });
    expect(result.attributes['dirty']).toBe('kernel_attached,live_tensors,inflight_prefetches');
  });

  it('passes iff nothing is left (property)', () => {
    fc.assert(
      fc.property(
        fc.record({ kernelAttached: fc.boolean(), liveTensors: count, registryEntries: count, inflightPrefetches: count }),
        (inputs) => {
          const result = evaluateG5(inputs);
          expectWellFormed(result, G.SEED_GATE_G5_RESET);
          const clean =
            !inputs.kernelAttached && inputs.liveTensors === 0 && inputs.registryEntries === 0 && inputs.inflightPrefetches === 0;
          expect(result.passed).toBe(clean);
          expect(result.reason).toBe(clean ? '' : 'reset state not clean');
        },
      ),
    );
  });
});

describe('attribute hygiene', () => {
  it('turns non-finite measurements into text', () => {
    fc.assert(
      fc.property(anyNumber, anyNumber, (a, b) => {
        expectWellFormed(evaluateG2({ ...PASSING_G2, kernelLatencyMs: a, seedGradNormMean: b }), G.SEED_GATE_G2_STABILITY);
        expectWellFormed(evaluateG3({ unregisteredHostVariables: a, expectedShape: [1], outputShape: [1] }), G.SEED_GATE_G3_INTERFACE);
        expectWellFormed(evaluateG4({ contribution: a, minContribution: b, paused: false }), G.SEED_GATE_G4_SYSTEM_IMPACT);
      }),
    );
  });
});
