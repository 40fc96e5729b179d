import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeedSiteDescriptorSchema, SeedSiteKind, siteOutputShape, type SeedSiteDescriptor } from '../../src/leyline/index.js';
import { initTensorBackend, seededRng, tf } from '../../src/tensor/index.js';
import { KarnCatalog } from '../../src/karn/catalog.js';
import { SEED_FAMILIES } from '../../src/karn/families/register-all.js';
import { FamilyId, type SeedModule } from '../../src/karn/family.js';
import { convWidenSite } from '../support/conv-widen-site.js';

const site = (kind: SeedSiteKind, shape: number[]): SeedSiteDescriptor =>
  create(SeedSiteDescriptorSchema, { siteId: `s-${shape.join('x')}`, kind, shape });

/**
 * The two bench hosts' site shapes, plus a tiny dense one, plus a WIDEN site (784 → 256) and
 * two conv WIDEN sites (a 3×3 conv + 2×2 pool into the next 3×3 conv, or into the head).
 */
const SITES: readonly SeedSiteDescriptor[] = [
  site(SeedSiteKind.DENSE, [256]),
  site(SeedSiteKind.DENSE, [2]),
  site(SeedSiteKind.CONV, [16, 16, 32]),
  site(SeedSiteKind.CONV, [8, 8, 64]),
  create(SeedSiteDescriptorSchema, { siteId: 's-widen', kind: SeedSiteKind.WIDEN, shape: [784], outputShape: [256] }),
  convWidenSite([28, 28, 1], [14, 14, 8]),
  convWidenSite([14, 14, 4], [10]),
];
const BATCH = 4;

const catalog = new KarnCatalog();

beforeAll(async () => {
  await initTensorBackend();
});

function input(s: SeedSiteDescriptor, seed: number, perExample: readonly number[] = s.shape): tf.Tensor {
  const rng = seededRng(seed);
  const shape = [BATCH, ...perExample];
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i += 1) values[i] = rng.nextNormal();
  return tf.tensor(values, shape);
}

interface GradReport {
  readonly outputShape: number[];
  readonly gradNorm: number;
  readonly finite: boolean;
  readonly perVariable: readonly number[];
}

/** Forward + backward of `sum(seed(x) · r)` with fixed x, r; returns gradient facts. */
function forwardBackward(module: SeedModule, s: SeedSiteDescriptor): GradReport {
  return tf.tidy(() => {
    const x = input(s, 11);
    const r = input(s, 12, siteOutputShape(s));
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(module.apply(x), r)) as tf.Scalar, [...module.variables]);
    const perVariable = module.variables.map((v) => {
      const g = grads[v.name];
      return g === undefined ? Number.NaN : (tf.norm(g).dataSync()[0] as number);
    });
    const total = Math.sqrt(perVariable.reduce((a, n) => a + n * n, 0));
    const outputShape = module.apply(x).shape;
    return {
      outputShape,
      gradNorm: total,
      finite: Number.isFinite(value.dataSync()[0] as number) && perVariable.every(Number.isFinite),
      perVariable,
    };
  });
}

describe('seed-module families', () => {
  const before = { tensors: 0 };
  beforeAll(() => {
    before.tensors = tf.memory().numTensors;
  });
  afterAll(() => {
    expect(tf.memory().numTensors).toBe(before.tensors);
  });

  it('registers at least 12 families, each prototype family used by at least two of BP001–BP050', () => {
    expect(SEED_FAMILIES.length).toBeGreaterThanOrEqual(12);
    const uses = new Map<string, number>();
    const prototype = catalog.list().filter((d) => Number(d.blueprintId.slice(2)) <= 50);
    for (const d of prototype) uses.set(d.family, (uses.get(d.family) ?? 0) + 1);
    // The growth families (widen, widen_conv; BP051 on) are Esper's own, not a mapping of the prototype's.
    const growth: readonly string[] = [FamilyId.WIDEN, FamilyId.WIDEN_CONV];
    for (const f of SEED_FAMILIES.filter((x) => !growth.includes(x.id))) expect(uses.get(f.id) ?? 0, f.id).toBeGreaterThanOrEqual(2);
    for (const id of growth) expect(catalog.list().some((d) => d.family === id)).toBe(true);
  });

  it('every blueprint fits at least one bench site shape', () => {
    for (const d of catalog.list())
      expect(
        SITES.some((s) => catalog.familyOf(d.blueprintId).fits(s)),
        d.blueprintId,
      ).toBe(true);
  });

  for (const descriptor of catalog.list()) {
    it(`${descriptor.blueprintId} (${descriptor.family}) builds and runs forward+backward at every site it fits`, () => {
      const tensorsBefore = tf.memory().numTensors;
      for (const s of SITES) {
        if (!catalog.familyOf(descriptor.blueprintId).fits(s)) {
          expect(() => catalog.build(descriptor.blueprintId, s, { seed: 1 })).toThrow(/does not fit/);
          continue;
        }
        const module = catalog.build(descriptor.blueprintId, s, { seed: 1 });
        try {
          expect(module.variables.length).toBeGreaterThan(0);
          for (const v of module.variables) expect(v.name.startsWith(`${descriptor.blueprintId}/`)).toBe(true);
          const report = forwardBackward(module, s);
          expect(report.outputShape).toEqual([BATCH, ...siteOutputShape(s)]);
          expect(report.finite, `${descriptor.blueprintId} at [${s.shape.join(',')}]`).toBe(true);
        } finally {
          module.dispose();
        }
      }
      expect(tf.memory().numTensors).toBe(tensorsBefore);
    });
  }

  it('families differ in structure (variable count and shapes) at a shared site', () => {
    const dense = SITES[0] as SeedSiteDescriptor;
    const conv = SITES[3] as SeedSiteDescriptor;
    const signatures = new Map<string, string>();
    for (const family of SEED_FAMILIES) {
      const s = family.fits(dense) ? dense : family.fits(conv) ? conv : (SITES.find((x) => family.fits(x)) as SeedSiteDescriptor);
      const id = catalog.list().find((d) => d.family === family.id)?.blueprintId as string;
      const module = catalog.build(id, s, { seed: 3 });
      try {
        signatures.set(family.id, `${s.kind}:${module.variables.map((v) => `${v.name.slice(id.length)}[${v.shape.join(',')}]`).join(';')}`);
      } finally {
        module.dispose();
      }
    }
    expect(new Set(signatures.values()).size).toBe(SEED_FAMILIES.length);
  });

  it('the zero-initialised control outputs exactly zero at init', () => {
    for (const s of [SITES[0], SITES[2]] as SeedSiteDescriptor[]) {
      const module = catalog.build('BP001', s, { seed: 5 });
      try {
        const maxAbs = tf.tidy(() => tf.max(tf.abs(module.apply(input(s, 1)))).dataSync()[0] as number);
        expect(maxAbs).toBe(0);
      } finally {
        module.dispose();
      }
    }
  });

  it('the unstable feedback design (BP043) has gradients ≥ 100× those of a safe design (BP009) at init', () => {
    const s = SITES[0] as SeedSiteDescriptor;
    const unstable = catalog.build('BP043', s, { seed: 7 });
    const safe = catalog.build('BP009', s, { seed: 7 });
    try {
      const u = forwardBackward(unstable, s).gradNorm;
      const g = forwardBackward(safe, s).gradNorm;
      console.log(
        `gradient norm at init: BP043 unstable_feedback ${u.toExponential(3)}, BP009 residual_mlp ${g.toExponential(3)}, ratio ${(u / g).toExponential(3)}`,
      );
      // Documented threshold: two orders of magnitude (expected ~gain^steps = 12.5³ ≈ 2000×).
      expect(u / g).toBeGreaterThanOrEqual(100);
    } finally {
      unstable.dispose();
      safe.dispose();
    }
  });

  it('the same seed gives the same weights and a different seed different weights', () => {
    const s = SITES[2] as SeedSiteDescriptor;
    const weights = (seed: number, scope: string): Float32Array[] => {
      const m = catalog.build('BP016', s, { seed, scope });
      try {
        return m.variables.map((v) => v.dataSync() as Float32Array);
      } finally {
        m.dispose();
      }
    };
    const a = weights(42, 'a');
    const b = weights(42, 'b');
    const c = weights(43, 'c');
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('leaves tf.memory().numTensors flat after build + apply + dispose', () => {
    const s = SITES[3] as SeedSiteDescriptor;
    const start = tf.memory().numTensors;
    for (const id of ['BP013', 'BP022', 'BP036']) {
      const m = catalog.build(id, s, { seed: 1 });
      tf.tidy(() => {
        m.apply(input(s, 2));
      });
      m.dispose();
      m.dispose();
    }
    expect(tf.memory().numTensors).toBe(start);
  });
});
