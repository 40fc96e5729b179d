import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/index.js';
import {
  BlendConfigSchema,
  BlendMode,
  BlendModeSource,
  CommandSeedOperationSchema,
  SeedOperation,
  SeedSiteDescriptorSchema,
  SeedSiteKind,
  type BlendConfig,
  type CommandSeedOperation,
} from '../../src/leyline/index.js';
import { stopGradient, tf } from '../../src/tensor/index.js';
import {
  alphaSchedule,
  blendActivation,
  DEFAULT_BLEND_PLAN,
  effectiveAlphas,
  hostPathGradientScale,
  resolveBlendPlan,
  type BlendPhase,
  type BlendPlan,
} from '../../src/kasmina/blending.js';
import { thrownBy } from '../support/thrown.js';
import { normals, useTensorBackend } from './fixtures/hooks.js';

const site8 = create(SeedSiteDescriptorSchema, { siteId: 'hidden1', kind: SeedSiteKind.DENSE, shape: [8] });
const site128 = create(SeedSiteDescriptorSchema, { siteId: 'wide', kind: SeedSiteKind.DENSE, shape: [128] });
const conv = create(SeedSiteDescriptorSchema, { siteId: 'conv1', kind: SeedSiteKind.CONV, shape: [4, 4, 6] });

const op = (fields: Partial<CommandSeedOperation> = {}): CommandSeedOperation =>
  create(CommandSeedOperationSchema, { operation: SeedOperation.SEED_OP_GERMINATE, blueprintId: 'BP009', siteId: 'hidden1', ...fields });
const blendCfg = (fields: MessageInitShape<typeof BlendConfigSchema>): BlendConfig => create(BlendConfigSchema, fields);

function expectBlendError(fn: () => unknown, reason: string): void {
  expect(thrownBy(fn, ErrorCode.KASMINA_BLEND_CONFIG_INVALID).details['reason']).toBe(reason);
}

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

useTensorBackend({ leakCheck: true });

describe('alphaSchedule', () => {
  it('is the reference logistic (total 20, temperature 2) rescaled to run from exactly 0 to exactly 1', () => {
    // Reference §10.1 table: σ((step − 10)/2) at steps 0, 10, 20 is 0.006693, 0.5, 0.993307.
    const low = 0.0066928509;
    const high = 0.9933071491;
    const table: Array<[number, number]> = [
      [1, 0.010987],
      [5, 0.075858],
      [8, 0.268941],
      [12, 0.731059],
      [15, 0.924142],
    ];
    expect(alphaSchedule(0, 20, 2)).toBe(0);
    expect(alphaSchedule(10, 20, 2)).toBeCloseTo(0.5, 12);
    expect(alphaSchedule(20, 20, 2)).toBe(1);
    expect(alphaSchedule(30, 20, 2)).toBe(1);
    expect(alphaSchedule(-3, 20, 2)).toBe(0);
    for (const [step, raw] of table) {
      expect(Math.abs(alphaSchedule(step, 20, 2) - (raw - low) / (high - low)), `step ${step}`).toBeLessThan(2e-6);
    }
    // Whatever the temperature, the ramp ends at 1 (G3's 0.95 target is always reachable).
    for (const temperature of [0.5, 2, 3, 8, 50]) expect(alphaSchedule(16, 16, temperature)).toBe(1);
  });

  it('is 1 without a schedule and stays within [0, 1] and monotone', () => {
    expect(alphaSchedule(0, 0, 2)).toBe(1);
    expect(alphaSchedule(3, -5, 2)).toBe(1);
    let previous = 0;
    for (let step = 0; step <= 40; step += 1) {
      const a = alphaSchedule(step, 20, 0);
      expect(a).toBeGreaterThanOrEqual(previous);
      expect(a).toBeLessThanOrEqual(1);
      previous = a;
    }
  });
});

describe('resolveBlendPlan', () => {
  it('defaults to CONVEX with source DEFAULT', () => {
    expect(resolveBlendPlan(op(), undefined, site8)).toEqual(DEFAULT_BLEND_PLAN);
    expect(resolveBlendPlan(op(), blendCfg({ mode: BlendMode.UNSPECIFIED }), site8)).toMatchObject({
      mode: BlendMode.CONVEX,
      source: BlendModeSource.DEFAULT,
    });
  });

  it('prefers the operation mode over the decision metadata mode', () => {
    const blend = blendCfg({ mode: BlendMode.CONVEX, modeSource: BlendModeSource.POLICY });
    expect(resolveBlendPlan(op({ blendMode: BlendMode.RESIDUAL }), blend, site8)).toMatchObject({
      mode: BlendMode.RESIDUAL,
      source: BlendModeSource.OPERATOR,
    });
    expect(resolveBlendPlan(op(), blend, site8)).toMatchObject({ mode: BlendMode.CONVEX, source: BlendModeSource.POLICY });
    expect(resolveBlendPlan(op({ blendMode: BlendMode.UNSPECIFIED }), blendCfg({ mode: BlendMode.RESIDUAL }), site8)).toMatchObject({
      mode: BlendMode.RESIDUAL,
      source: BlendModeSource.POLICY,
    });
  });

  it('accepts a CHANNEL vector whose length divides the channel count', () => {
    const vec = Array.from({ length: 64 }, (_, i) => i / 63);
    const plan = resolveBlendPlan(op(), blendCfg({ mode: BlendMode.CHANNEL, alphaVec: vec }), site128);
    expect(plan.mode).toBe(BlendMode.CHANNEL);
    expect(plan.alphaVec).toHaveLength(64);
    const a = effectiveAlphas(plan, 1, 128) as Float32Array;
    // Entry i covers channels [2i, 2i + 2).
    expect(a[0]).toBe(a[1]);
    expect(a[126]).toBeCloseTo(1, 6);
    expect(a[2]).toBeCloseTo(1 / 63, 6);
  });

  it('rejects CHANNEL without a vector, with too many entries, or with a length not dividing the channels', () => {
    expectBlendError(() => resolveBlendPlan(op({ blendMode: BlendMode.CHANNEL }), undefined, site8), 'channel_alpha_vec_missing');
    expectBlendError(
      () => resolveBlendPlan(op(), blendCfg({ mode: BlendMode.CHANNEL, alphaVec: new Array<number>(65).fill(0.5) }), site128),
      'alpha_vec_too_long',
    );
    expectBlendError(
      () => resolveBlendPlan(op(), blendCfg({ mode: BlendMode.CHANNEL, alphaVec: [0.1, 0.2, 0.3] }), site8),
      'alpha_vec_channel_mismatch',
    );
    expectBlendError(
      () => resolveBlendPlan(op(), blendCfg({ mode: BlendMode.CHANNEL, alphaVec: [0.1, 1.5] }), site8),
      'alpha_vec_out_of_range',
    );
  });

  it('rejects CONFIDENCE without at least two policy logits with reason confidence_gate_missing_logits', () => {
    expectBlendError(() => resolveBlendPlan(op({ blendMode: BlendMode.CONFIDENCE }), undefined, site8), 'confidence_gate_missing_logits');
    expectBlendError(
      () => resolveBlendPlan(op(), blendCfg({ mode: BlendMode.CONFIDENCE, policyLogits: [2] }), site8),
      'confidence_gate_missing_logits',
    );
  });

  it('computes the CONFIDENCE gate from the softmax top-2 margin, with defaults k 4 and τ 0.2', () => {
    const logits = [2, 1, 0];
    const exps = logits.map(Math.exp);
    const sum = exps.reduce((a, b) => a + b, 0);
    const margin = ((exps[0] as number) - (exps[1] as number)) / sum;
    const plan = resolveBlendPlan(op(), blendCfg({ mode: BlendMode.CONFIDENCE, policyLogits: logits }), site8);
    expect(plan.confidenceGate).toBeCloseTo(sigmoid(4 * (margin - 0.2)), 12);
    expect(plan).toMatchObject({ alphaLo: 0, alphaHi: 1 });

    const tuned = resolveBlendPlan(
      op(),
      blendCfg({ mode: BlendMode.CONFIDENCE, policyLogits: logits, gateK: 4, gateTau: 0.1, alphaLo: 0.1, alphaHi: 0.9 }),
      site8,
    );
    const gate = sigmoid(4 * (margin - 0.1));
    expect(tuned.confidenceGate).toBeCloseTo(gate, 12);
    expect(effectiveAlphas(tuned, 0.5, 8)).toBeCloseTo(Math.min(0.9, Math.max(0.1, 0.5 * gate)), 12);
    expect(effectiveAlphas(tuned, 1, 8)).toBeLessThanOrEqual(0.9);
    expect(effectiveAlphas(tuned, 0.01, 8)).toBe(0.1);
    // Alpha 0 stays 0 (the prototype clamped it up to alpha_lo).
    expect(effectiveAlphas(tuned, 0, 8)).toBe(0);
  });
});

interface GradFacts {
  readonly y: Float32Array;
  readonly dx: Float32Array;
  readonly dw: Float32Array;
}

/** y = blend(x, s) with s = w ⊙ stopGradient(x); gradients of Σ r ⊙ y. */
function run(
  x: tf.Tensor,
  w: tf.Variable,
  r: tf.Tensor,
  alpha: number,
  plan: BlendPlan,
  phase: BlendPhase,
  seedOut?: (xs: tf.Tensor) => tf.Tensor,
): GradFacts {
  return tf.tidy(() => {
    const f = (input: tf.Tensor): tf.Tensor => {
      const xs = stopGradient(input);
      const s = seedOut === undefined ? tf.mul(xs, w) : seedOut(xs);
      return blendActivation(input, s, alpha, plan, phase);
    };
    const y = f(x).dataSync() as Float32Array;
    const dx = tf
      .grad((input: tf.Tensor) => tf.sum(tf.mul(r, f(input))))(x)
      .dataSync() as Float32Array;
    // With every effective alpha 0 the seed is off the graph: no gradient reaches w.
    const connected = phase === 'isolated' || f(x) !== x;
    const dw = connected
      ? ((tf.variableGrads(() => tf.sum(tf.mul(r, f(x))) as tf.Scalar, [w]).grads[w.name]?.dataSync() ??
          new Float32Array()) as Float32Array)
      : new Float32Array();
    return { y: Float32Array.from(y), dx: Float32Array.from(dx), dw: Float32Array.from(dw) };
  });
}

describe('blendActivation', () => {
  const channels = 6;
  const shape = [3, 4, 4, channels];
  let x: tf.Tensor;
  let r: tf.Tensor;
  let w: tf.Variable;
  let xv: Float32Array;
  let rv: Float32Array;
  let wv: Float32Array;

  beforeAll(() => {
    x = normals(1, shape);
    r = normals(2, shape);
    const init = normals(3, [channels]);
    w = tf.variable(init, true, 'blend-test/w');
    init.dispose();
    xv = x.dataSync() as Float32Array;
    rv = r.dataSync() as Float32Array;
    wv = w.dataSync() as Float32Array;
  });
  afterAll(() => {
    x.dispose();
    r.dispose();
    w.dispose();
  });

  const plans = (): Record<string, BlendPlan> => ({
    convex: DEFAULT_BLEND_PLAN,
    residual: resolveBlendPlan(op({ blendMode: BlendMode.RESIDUAL }), undefined, conv),
    channel: resolveBlendPlan(op(), blendCfg({ mode: BlendMode.CHANNEL, alphaVec: [0.2, 0.6, 1] }), conv),
    confidence: resolveBlendPlan(op(), blendCfg({ mode: BlendMode.CONFIDENCE, policyLogits: [3, 0.5], alphaLo: 0.1, alphaHi: 0.9 }), conv),
  });

  it('isolated: forward bit-identical to x, host gradient exactly r, seed gradient as at alpha 1', () => {
    const facts = run(x, w, r, 0.3, DEFAULT_BLEND_PLAN, 'isolated');
    expect(facts.y).toEqual(xv);
    expect(facts.dx).toEqual(rv);
    const expected = new Float64Array(channels);
    xv.forEach((v, i) => (expected[i % channels] = (expected[i % channels] as number) + v * (rv[i] as number)));
    facts.dw.forEach((g, c) => expect(g).toBeCloseTo(expected[c] as number, 3));
  });

  for (const name of ['convex', 'residual', 'channel', 'confidence']) {
    it(`${name}: alpha 0 returns x bit-identically, even for a non-finite seed output`, () => {
      const plan = plans()[name] as BlendPlan;
      const facts = run(x, w, r, 0, plan, 'blended');
      expect(facts.y).toEqual(xv);
      expect(facts.dx).toEqual(rv);
      const inf = run(x, w, r, 0, plan, 'blended', (xs) => tf.div(xs, tf.scalar(0)));
      expect(inf.y).toEqual(xv);
    });

    it(`${name}: forward x + a·s, host gradient r·hostPathGradientScale, seed gradient a·r·x`, () => {
      const plan = plans()[name] as BlendPlan;
      const alpha = 0.4;
      const a = effectiveAlphas(plan, alpha, channels);
      const aOf = (c: number): number => (typeof a === 'number' ? a : (a[c] as number));
      const scale = hostPathGradientScale(plan, alpha, 'blended', channels);
      const scaleOf = (c: number): number => (typeof scale === 'number' ? scale : (scale[c] as number));
      const facts = run(x, w, r, alpha, plan, 'blended');
      const dw = new Float64Array(channels);
      for (let i = 0; i < xv.length; i += 1) {
        const c = i % channels;
        const xi = xv[i] as number;
        const ri = rv[i] as number;
        expect(facts.y[i]).toBeCloseTo(xi + aOf(c) * (wv[c] as number) * xi, 5);
        expect(facts.dx[i]).toBeCloseTo(ri * scaleOf(c), 5);
        dw[c] = (dw[c] as number) + aOf(c) * ri * xi;
      }
      facts.dw.forEach((g, c) => expect(g).toBeCloseTo(dw[c] as number, 3));
    });
  }

  it('scales the host path by 1 − a except in RESIDUAL and isolated phases', () => {
    const p = plans();
    expect(hostPathGradientScale(p['convex'] as BlendPlan, 0.25, 'blended', channels)).toBe(0.75);
    expect(hostPathGradientScale(p['residual'] as BlendPlan, 0.25, 'blended', channels)).toBe(1);
    expect(hostPathGradientScale(p['convex'] as BlendPlan, 0.25, 'isolated', channels)).toBe(1);
    const perChannel = hostPathGradientScale(p['channel'] as BlendPlan, 0.5, 'blended', channels) as Float32Array;
    expect(Array.from(perChannel)).toEqual([0.9, 0.9, 0.7, 0.7, 0.5, 0.5].map((v) => Math.fround(v)));
  });

  it('leaves no tensors behind', () => {
    const before = tf.memory().numTensors;
    for (const plan of Object.values(plans())) run(x, w, r, 0.7, plan, 'blended');
    run(x, w, r, 0.7, DEFAULT_BLEND_PLAN, 'isolated');
    expect(tf.memory().numTensors).toBe(before);
  });
});
