import { create } from '@bufbuild/protobuf';
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { SeedSiteDescriptorSchema, SeedSiteKind } from '../../src/leyline/index.js';
import { initTensorBackend, seededRng, tf } from '../../src/tensor/index.js';
import { KarnCatalog } from '../../src/karn/catalog.js';
import { siteKeyOf } from '../../src/tezzeret/forge-jobs.js';

const WIDEN = create(SeedSiteDescriptorSchema, { siteId: 'hidden1.widen', kind: SeedSiteKind.WIDEN, shape: [20], outputShape: [7] });
/** A WIDEN site wider at the output than the blueprint's smallest unit count (8). */
const WIDEN_12 = create(SeedSiteDescriptorSchema, { siteId: 'hidden1.widen', kind: SeedSiteKind.WIDEN, shape: [20], outputShape: [12] });
const DENSE = create(SeedSiteDescriptorSchema, { siteId: 'hidden1', kind: SeedSiteKind.DENSE, shape: [20] });
const catalog = new KarnCatalog();

beforeAll(async () => {
  await initTensorBackend();
});

describe('widen family (BP051 widen_zero_out)', () => {
  it('fits WIDEN sites only, and Karn offers it only there', () => {
    expect(catalog.familyOf('BP051').fits(WIDEN)).toBe(true);
    expect(catalog.familyOf('BP051').fits(DENSE)).toBe(false);
    expect(catalog.list({ site: WIDEN }).map((d) => d.blueprintId)).toEqual(['BP051', 'BP052', 'BP053', 'BP054', 'BP055']);
    expect(catalog.list({ site: DENSE }).map((d) => d.blueprintId)).not.toContain('BP051');
    let error: unknown;
    try {
      catalog.build('BP051', DENSE, { seed: 1 });
    } catch (e) {
      error = e;
    }
    expect(isEsperError(error, ErrorCode.KARN_SITE_UNSUPPORTED)).toBe(true);
  });

  it('adds `units` units: U [in, k] He-normal, c [k] zeros, V [k, out] zeros; contributes exactly 0 at init', () => {
    const before = tf.memory().numTensors;
    const module = catalog.build('BP051', WIDEN, { seed: 3, parameters: { units: 16 } });
    try {
      expect(module.variables.map((v) => [v.name, v.shape])).toEqual([
        ['BP051/U', [20, 16]],
        ['BP051/c', [16]],
        ['BP051/V', [16, 7]],
      ]);
      const [u, c, v] = module.variables.map((x) => Array.from(x.dataSync()));
      expect(c?.every((x) => x === 0)).toBe(true);
      expect(v?.every((x) => x === 0)).toBe(true);
      // He-normal: variance 2 / fan_in (sampled; loose bound).
      const variance = (u ?? []).reduce((a, x) => a + x * x, 0) / (u?.length ?? 1);
      expect(variance).toBeGreaterThan(0.5 * (2 / 20));
      expect(variance).toBeLessThan(1.5 * (2 / 20));
      const rng = seededRng(1);
      const out = tf.tidy(() => {
        const x = tf.tensor2d(
          Float32Array.from({ length: 4 * 20 }, () => rng.nextNormal()),
          [4, 20],
        );
        const y = module.apply(x);
        return { shape: y.shape, values: Array.from(y.dataSync()) };
      });
      expect(out.shape).toEqual([4, 7]);
      expect(out.values.every((x) => x === 0)).toBe(true);
    } finally {
      module.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('defaults to 24 units (the bounds [8, 40] midpoint) and rejects sizes outside them', () => {
    expect(catalog.defaultParameters('BP051')).toEqual({ units: 24 });
    expect(() => catalog.validateParameters('BP051', { units: 64 })).toThrow(/outside bounds/);
  });

  it('has a site key naming the output shape', () => {
    expect(siteKeyOf(WIDEN)).toBe('widen:20->7');
    expect(siteKeyOf(DENSE)).toBe('dense:20');
  });
});

/** Row-major rows of a `[rows, cols]` array. */
const rowsOf = (values: Float32Array, cols: number): number[][] =>
  Array.from({ length: values.length / cols }, (_, r) => Array.from(values.subarray(r * cols, r * cols + cols)));
const dot = (a: readonly number[], b: readonly number[]): number => a.reduce((s, v, i) => s + v * (b[i] as number), 0);

describe('widen family, GradMax init (BP052 widen_gradmax)', () => {
  it('starts with U, c and V zero (contribution 0) and a pending gradient init; offers it only at WIDEN sites', () => {
    expect(catalog.get('BP052').name).toBe('widen_gradmax');
    expect(catalog.familyOf('BP052').fits(DENSE)).toBe(false);
    const module = catalog.build('BP052', WIDEN, { seed: 3, parameters: { units: 8 } });
    try {
      expect(module.variables.map((v) => Array.from(v.dataSync()).every((x) => x === 0))).toEqual([true, true, true]);
      expect(module.gradientInit?.pending()).toBe(true);
      expect(catalog.build('BP051', WIDEN, { seed: 3, scope: 'zero-out' }).gradientInit).toBeUndefined();
    } finally {
      module.dispose();
    }
  });

  it('sets V to the top-k right singular vectors of M (unit rows), keeps the contribution 0, and makes ∂L/∂U = M·Vᵀ non-zero', () => {
    const module = catalog.build('BP052', WIDEN_12, { seed: 3, parameters: { units: 8 }, scope: 'gm' });
    try {
      // M [20, 12] = 5·a b₁ᵀ + 2·a' b₂ᵀ + 1·a'' b₃ᵀ with orthonormal a's and b's (standard basis; b: e₆, e₀, e₃).
      const m = new Float32Array(20 * 12);
      for (const [sigma, row, col] of [
        [5, 0, 6],
        [2, 1, 0],
        [1, 2, 3],
      ] as const)
        m[row * 12 + col] = sigma;
      module.gradientInit?.apply(m, 20, 12);
      expect(module.gradientInit?.pending()).toBe(false);
      const v = rowsOf(module.variables[2]!.dataSync() as Float32Array, 12);
      for (const [i, col] of [6, 0, 3].entries()) expect(Math.abs(v[i]![col]!)).toBeCloseTo(1, 5);
      for (const [i, row] of v.entries()) for (const [j, other] of v.entries()) expect(dot(row, other)).toBeCloseTo(i === j ? 1 : 0, 5);
      const rng = seededRng(2);
      const x = tf.tensor2d(
        Float32Array.from({ length: 5 * 20 }, () => rng.nextNormal()),
        [5, 20],
      );
      try {
        expect(Array.from(tf.tidy(() => module.apply(x).dataSync())).every((y) => y === 0)).toBe(true);
        // f'(0) = 1: the gradient reaches U although every pre-activation is exactly 0.
        const gradU = tf.tidy(() =>
          tf.variableGrads(() => tf.sum(module.apply(x)) as tf.Scalar, [module.variables[0]!]).grads['gm/U']!.dataSync(),
        );
        expect(Math.max(...Array.from(gradU).map(Math.abs))).toBeGreaterThan(0);
      } finally {
        x.dispose();
      }
    } finally {
      module.dispose();
    }
  });

  it('fills rows past the output width with random unit vectors, and counts a restored non-zero V as initialised', () => {
    const module = catalog.build('BP052', WIDEN, { seed: 4, parameters: { units: 9 }, scope: 'gm-wide' });
    try {
      const m = Float32Array.from({ length: 20 * 7 }, (_, i) => Math.sin(i));
      module.gradientInit?.apply(m, 20, 7);
      const v = rowsOf(module.variables[2]!.dataSync() as Float32Array, 7);
      expect(v).toHaveLength(9);
      for (const row of v) expect(dot(row, row)).toBeCloseTo(1, 5);
      for (let i = 0; i < 7; i += 1) for (let j = i + 1; j < 7; j += 1) expect(dot(v[i]!, v[j]!)).toBeCloseTo(0, 4);
      expect(() => module.gradientInit?.apply(m, 28, 5)).toThrow(/gradient has 5 columns, V has 7/);
    } finally {
      module.dispose();
    }
    const restored = catalog.build('BP052', WIDEN, { seed: 4, parameters: { units: 8 }, scope: 'gm-restored' });
    try {
      tf.tidy(() => restored.variables[2]!.assign(tf.ones([8, 7])));
      expect(restored.gradientInit?.pending()).toBe(false);
    } finally {
      restored.dispose();
    }
  });
});

/** `[batch, 20]` standard-normal inputs. */
const inputs = (seed: number, batch = 5): tf.Tensor2D => {
  const rng = seededRng(seed);
  return tf.tensor2d(
    Float32Array.from({ length: batch * 20 }, () => rng.nextNormal()),
    [batch, 20],
  );
};

describe('widen family, one-unit growers (BP053 GradMax, BP054 random) and random init (BP055)', () => {
  it('builds BP053 and BP054 as one bias-free unit (U [in, 1], V [1, out], no c), both inert at build', () => {
    for (const id of ['BP053', 'BP054']) {
      expect(catalog.defaultParameters(id)).toEqual({ units: 1 });
      const module = catalog.build(id, WIDEN, { seed: 5, scope: `unit-${id}` });
      try {
        expect(module.variables.map((v) => [v.name, v.shape])).toEqual([
          [`unit-${id}/U`, [20, 1]],
          [`unit-${id}/V`, [1, 7]],
        ]);
        expect(module.variables.every((v) => Array.from(v.dataSync()).every((x) => x === 0))).toBe(true);
        expect(module.functionPreserving).toBe(true);
      } finally {
        module.dispose();
      }
    }
    const gradmax = catalog.build('BP053', WIDEN, { seed: 5, scope: 'bp053' });
    const random = catalog.build('BP054', WIDEN, { seed: 5, scope: 'bp054' });
    try {
      expect([gradmax.gradientInit?.pending(), gradmax.graftInit]).toEqual([true, undefined]);
      expect([random.gradientInit, typeof random.graftInit?.apply]).toEqual([undefined, 'function']);
    } finally {
      gradmax.dispose();
      random.dispose();
    }
  });

  it('draws random V rows at graft from the given stream: uniform [0, 1) entries scaled to unit rows, different per stream; output stays 0 and ∂L/∂U ≠ 0', () => {
    const before = tf.memory().numTensors;
    const a = catalog.build('BP055', WIDEN, { seed: 6, parameters: { units: 8 }, scope: 'random-a' });
    const b = catalog.build('BP055', WIDEN, { seed: 6, parameters: { units: 8 }, scope: 'random-b' });
    const x = inputs(3);
    try {
      expect(a.variables.map((v) => v.name)).toEqual(['random-a/U', 'random-a/c', 'random-a/V']);
      a.graftInit?.apply(seededRng(1));
      b.graftInit?.apply(seededRng(2));
      const va = rowsOf(a.variables[2]!.dataSync() as Float32Array, 7);
      const vb = rowsOf(b.variables[2]!.dataSync() as Float32Array, 7);
      for (const row of va) {
        expect(dot(row, row)).toBeCloseTo(1, 5);
        expect(row.every((value) => value >= 0)).toBe(true);
      }
      expect(va).not.toEqual(vb);
      expect(Array.from(tf.tidy(() => a.apply(x).dataSync())).every((y) => y === 0)).toBe(true);
      const gradU = tf.tidy(() =>
        tf.variableGrads(() => tf.sum(a.apply(x)) as tf.Scalar, [a.variables[0]!]).grads['random-a/U']!.dataSync(),
      );
      expect(Math.max(...Array.from(gradU).map(Math.abs))).toBeGreaterThan(0);
    } finally {
      x.dispose();
      a.dispose();
      b.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects BP053 and BP054 sizes other than one unit', () => {
    expect(() => catalog.validateParameters('BP053', { units: 2 })).toThrow(/outside bounds/);
    expect(() => catalog.validateParameters('BP054', { units: 2 })).toThrow(/outside bounds/);
  });
});
