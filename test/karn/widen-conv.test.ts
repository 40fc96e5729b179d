/**
 * The channel-widening family (BP056 widen_conv_zero_out) on the WIDEN sites of a real CNN
 * host: what it fits, the weights it lays out along the site's conv path, and its exact-zero
 * output at build.
 */
import { clone, create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { SeedSiteDescriptorSchema, SeedSiteKind, WindowPadding, type SeedSiteDescriptor } from '../../src/leyline/index.js';
import { initTensorBackend, seededRng, tf } from '../../src/tensor/index.js';
import { KarnCatalog } from '../../src/karn/catalog.js';
import { cnnHost, mlpHost } from '../../src/tolaria/index.js';
import type { BlockHost } from '../../src/tolaria/hosts/block-host.js';

const catalog = new KarnCatalog();
let cnn: BlockHost;
let mlp: BlockHost;

beforeAll(async () => {
  await initTensorBackend();
  cnn = cnnHost({ inputShape: [28, 28, 1], channels: [4, 8], seed: 1, hostId: 'karn-widen-conv' }) as BlockHost;
  mlp = mlpHost({ inputSize: 12, hidden: [6], numClasses: 3, seed: 1, hostId: 'karn-widen-conv-mlp' }) as BlockHost;
});

afterAll(() => {
  cnn.dispose();
  mlp.dispose();
});

const siteOf = (host: BlockHost, id: string): SeedSiteDescriptor => {
  const site = host.descriptor.sites.find((s) => s.siteId === id);
  if (site === undefined) throw new Error(`no site ${id}`);
  return site;
};

function buildError(site: SeedSiteDescriptor, parameters?: Record<string, number>): unknown {
  try {
    catalog.build('BP056', site, { seed: 1, ...(parameters === undefined ? {} : { parameters }) }).dispose();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('widen_conv family (BP056 widen_conv_zero_out)', () => {
  it('fits conv WIDEN sites only: not an MLP WIDEN site, a CONV site, or a conv WIDEN site whose path does not match its shapes', () => {
    const family = catalog.familyOf('BP056');
    expect(['block1.widen', 'block2.widen'].map((id) => family.fits(siteOf(cnn, id)))).toEqual([true, true]);
    expect(family.fits(siteOf(cnn, 'block2'))).toBe(false);
    expect(family.fits(siteOf(mlp, 'hidden1.widen'))).toBe(false);
    expect(catalog.familyOf('BP051').fits(siteOf(cnn, 'block2.widen'))).toBe(false);
    const wrongOutput = clone(SeedSiteDescriptorSchema, siteOf(cnn, 'block1.widen'));
    wrongOutput.outputShape = [7, 7, 8];
    const noPadding = clone(SeedSiteDescriptorSchema, siteOf(cnn, 'block1.widen'));
    if (noPadding.convWiden?.conv !== undefined) noPadding.convWiden.conv.padding = WindowPadding.UNSPECIFIED;
    const noPath = create(SeedSiteDescriptorSchema, {
      siteId: 'w',
      kind: SeedSiteKind.WIDEN,
      shape: [28, 28, 1],
      outputShape: [14, 14, 8],
    });
    expect([wrongOutput, noPadding, noPath].map((s) => family.fits(s))).toEqual([false, false, false]);
    expect(catalog.list({ site: siteOf(cnn, 'block2.widen') }).map((d) => d.blueprintId)).toEqual(['BP056']);
    expect(isEsperError(buildError(siteOf(mlp, 'hidden1.widen')), ErrorCode.KARN_SITE_UNSUPPORTED)).toBe(true);
  });

  it.each([
    ['block1.widen', [3, 3, 1, 8], [3, 3, 8, 8], [14, 14, 8]],
    ['block2.widen', [3, 3, 4, 8], [7 * 7 * 8, 10], [10]],
  ] as const)(
    'at %s: U %j He-normal, c zeros, V %j zeros; output exactly 0 of the next pre-activation shape',
    (id, uShape, vShape, out) => {
      const before = tf.memory().numTensors;
      const site = siteOf(cnn, id);
      const module = catalog.build('BP056', site, { seed: 3 });
      try {
        expect(module.functionPreserving).toBe(true);
        expect(module.variables.map((v) => [v.name, v.shape])).toEqual([
          ['BP056/U', uShape],
          ['BP056/c', [8]],
          ['BP056/V', vShape],
        ]);
        const [u, c, v] = module.variables.map((x) => Array.from(x.dataSync()));
        expect([c?.every((x) => x === 0), v?.every((x) => x === 0), u?.some((x) => x !== 0)]).toEqual([true, true, true]);
        const rng = seededRng(1);
        const size = 3 * site.shape.reduce((a, b) => a * b, 1);
        const y = tf.tidy(() => {
          const result = module.apply(
            tf.tensor(
              Float32Array.from({ length: size }, () => rng.nextNormal()),
              [3, ...site.shape],
            ),
          );
          return { shape: result.shape, maxAbs: tf.max(tf.abs(result)).dataSync()[0] };
        });
        expect(y).toEqual({ shape: [3, ...out], maxAbs: 0 });
      } finally {
        module.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
    },
  );

  it('the channels knob sets the number of new channels (bounds 4–12, midpoint 8)', () => {
    const module = catalog.build('BP056', siteOf(cnn, 'block2.widen'), { seed: 1, parameters: { channels: 12 } });
    try {
      expect(module.variables.map((v) => v.shape)).toEqual([[3, 3, 4, 12], [12], [7 * 7 * 12, 10]]);
    } finally {
      module.dispose();
    }
    expect(isEsperError(buildError(siteOf(cnn, 'block2.widen'), { channels: 13 }), ErrorCode.KARN_PARAMETER_INVALID)).toBe(true);
  });
});
