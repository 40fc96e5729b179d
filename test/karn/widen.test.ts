import { create } from '@bufbuild/protobuf';
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { SeedSiteDescriptorSchema, SeedSiteKind } from '../../src/leyline/index.js';
import { initTensorBackend, seededRng, tf } from '../../src/tensor/index.js';
import { KarnCatalog } from '../../src/karn/catalog.js';
import { siteKeyOf } from '../../src/tezzeret/forge-jobs.js';

const WIDEN = create(SeedSiteDescriptorSchema, { siteId: 'hidden1.widen', kind: SeedSiteKind.WIDEN, shape: [20], outputShape: [7] });
const DENSE = create(SeedSiteDescriptorSchema, { siteId: 'hidden1', kind: SeedSiteKind.DENSE, shape: [20] });
const catalog = new KarnCatalog();

beforeAll(async () => {
  await initTensorBackend();
});

describe('widen family (BP051 widen_zero_out)', () => {
  it('fits WIDEN sites only, and Karn offers it only there', () => {
    expect(catalog.familyOf('BP051').fits(WIDEN)).toBe(true);
    expect(catalog.familyOf('BP051').fits(DENSE)).toBe(false);
    expect(catalog.list({ site: WIDEN }).map((d) => d.blueprintId)).toEqual(['BP051']);
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
