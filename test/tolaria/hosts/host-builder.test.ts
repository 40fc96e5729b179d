/**
 * HostBuilder: shape inference, stable variable names, seed-site descriptors, seeded
 * initialisation and the typed errors of malformed hosts.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, type EsperError } from '../../../src/core/index.js';
import { SeedSiteKind } from '../../../src/leyline/index.js';
import { Initializer, initTensorBackend, tf } from '../../../src/tensor/index.js';
import type { BlockHost } from '../../../src/tolaria/hosts/block-host.js';
import { HostBuilder } from '../../../src/tolaria/hosts/host-builder.js';

beforeAll(async () => {
  await initTensorBackend();
});

const live: BlockHost[] = [];
afterEach(() => {
  for (const host of live.splice(0)) host.dispose();
});

function keep(host: BlockHost): BlockHost {
  live.push(host);
  return host;
}

function caught(fn: () => unknown): EsperError {
  try {
    fn();
  } catch (error) {
    if (isEsperError(error)) return error;
    throw error;
  }
  throw new Error('expected an EsperError');
}

const smallCnn = (seed: number, hostId = 'hb'): BlockHost =>
  keep(
    new HostBuilder({ hostId, family: 'test', inputShape: [6, 6, 2], seed })
      .conv2d(3, { activation: 'relu' })
      .maxPool(2)
      .site('after-pool')
      .conv2d(4, { strides: 2, padding: 'valid', kernelSize: 2 })
      .flatten()
      .dense(5, 'tanh')
      .site('hidden')
      .dense(2)
      .build(),
  );

const weights = (host: BlockHost): Float32Array[] => host.variables.map((v) => Float32Array.from(v.dataSync()));

describe('HostBuilder', () => {
  it('names variables <hostId>/<block>/<param> with default block names per kind', () => {
    const host = smallCnn(1);
    expect(host.variables.map((v) => `${v.name} [${v.shape.join(',')}]`)).toEqual([
      'hb/conv1/kernel [3,3,2,3]',
      'hb/conv1/bias [3]',
      'hb/conv2/kernel [2,2,3,4]',
      'hb/conv2/bias [4]',
      'hb/dense1/kernel [4,5]',
      'hb/dense1/bias [5]',
      'hb/dense2/kernel [5,2]',
      'hb/dense2/bias [2]',
    ]);
    expect(host.blocks.map((b) => b.name)).toEqual(['conv1', 'pool1', 'conv2', 'flatten1', 'dense1', 'dense2']);
  });

  it('describes the host: family, input shape, classes, sites with kind/shape/depth, parameter count', () => {
    const d = smallCnn(1).descriptor;
    expect(d.hostId).toBe('hb');
    expect(d.family).toBe('test');
    expect(d.inputShape).toEqual([6, 6, 2]);
    expect(d.numClasses).toBe(2);
    expect(d.sites.map((s) => ({ siteId: s.siteId, block: s.block, kind: s.kind, shape: s.shape, depth: s.depth }))).toEqual([
      { siteId: 'after-pool', block: 'pool1', kind: SeedSiteKind.CONV, shape: [3, 3, 3], depth: 1 },
      { siteId: 'hidden', block: 'dense1', kind: SeedSiteKind.DENSE, shape: [5], depth: 4 },
    ]);
    expect(d.parameterCount).toBe(BigInt(3 * 3 * 2 * 3 + 3 + (2 * 2 * 3 * 4 + 4) + (4 * 5 + 5) + (5 * 2 + 2)));
  });

  it('produces the shapes it describes, at every site and at the output', () => {
    const host = smallCnn(1);
    const seen: number[][] = [];
    const recorder = { apply: (x: tf.Tensor) => (seen.push([...x.shape]), x), trainableVariables: () => [] };
    host.attach('after-pool', recorder);
    host.attach('hidden', recorder);
    const x = tf.ones([3, 6, 6, 2]);
    const out = tf.tidy(() => host.forward(x, { training: false }));
    expect(out.shape).toEqual([3, 2]);
    expect(seen).toEqual(host.descriptor.sites.map((s) => [3, ...s.shape]));
    tf.dispose([x, out]);
  });

  it('initialises bit-identical weights from the same seed and different weights from another', () => {
    const a = weights(smallCnn(7, 'hb-a'));
    const b = weights(smallCnn(7, 'hb-b'));
    const c = weights(smallCnn(8, 'hb-c'));
    expect(a).toEqual(b);
    expect(a.filter((w, i) => w.some((v) => v !== 0) && w.every((v, j) => v === c[i]?.[j]))).toEqual([]);
  });

  it("keeps a block's initial weights independent of the blocks after it", () => {
    const base = new HostBuilder({ hostId: 'hb-short', inputShape: [4], seed: 3 }).dense(6, 'relu').dense(2).build();
    const longer = new HostBuilder({ hostId: 'hb-long', inputShape: [4], seed: 3 }).dense(6, 'relu').dense(9, 'relu').dense(2).build();
    keep(base);
    keep(longer);
    expect(weights(longer)[0]).toEqual(weights(base)[0]);
  });

  it('uses He initialisation before ReLU and Glorot otherwise, with zero biases', () => {
    const host = keep(new HostBuilder({ hostId: 'hb-init', inputShape: [400], seed: 4 }).dense(300, 'relu').dense(10).build());
    const [k1, b1, k2, b2] = weights(host) as [Float32Array, Float32Array, Float32Array, Float32Array];
    const std = Math.sqrt(k1.reduce((s, v) => s + v * v, 0) / k1.length);
    expect(std).toBeGreaterThan(Math.sqrt(2 / 400) * 0.97);
    expect(std).toBeLessThan(Math.sqrt(2 / 400) * 1.03);
    const glorotLimit = Math.sqrt(6 / (300 + 10));
    expect(k2.every((v) => Math.abs(v) <= glorotLimit)).toBe(true);
    expect(Math.max(...k2.map(Math.abs))).toBeGreaterThan(0.9 * glorotLimit);
    expect([...b1, ...b2].every((v) => v === 0)).toBe(true);
    const custom = keep(
      new HostBuilder({ hostId: 'hb-zero', inputShape: [3], seed: 4 })
        .dense(2, 'linear', { initializer: Initializer.ZEROS, useBias: false })
        .build(),
    );
    expect(custom.variables.map((v) => v.name)).toEqual(['hb-zero/dense1/kernel']);
    expect(weights(custom)[0]?.every((v) => v === 0)).toBe(true);
  });

  it('refuses a second live host with the same hostId, and accepts it once the first is disposed', () => {
    const first = smallCnn(1, 'hb-dup');
    const error = caught(() => smallCnn(2, 'hb-dup'));
    expect(error.code).toBe(ErrorCode.INVALID_STATE);
    expect(error.details.hostId).toBe('hb-dup');
    first.dispose();
    expect(smallCnn(2, 'hb-dup').descriptor.hostId).toBe('hb-dup');
  });

  it('rejects malformed hosts with typed errors', () => {
    const builder = (inputShape: readonly number[] = [6, 6, 2]): HostBuilder => new HostBuilder({ hostId: 'hb-bad', inputShape, seed: 0 });
    const cases: [string, () => unknown, string][] = [
      ['dense on an image', () => builder().dense(3), ErrorCode.INVALID_ARGUMENT],
      ['conv on a vector', () => builder([4]).conv2d(3), ErrorCode.INVALID_ARGUMENT],
      ['pool larger than the map', () => builder([2, 2, 1]).maxPool(3), ErrorCode.INVALID_ARGUMENT],
      ['site before any block', () => builder().site('s'), ErrorCode.INVALID_STATE],
      ['duplicate site id', () => builder([4]).dense(3).site('s').dense(2).site('s'), ErrorCode.INVALID_ARGUMENT],
      ['two sites after one block', () => builder([4]).dense(3).site('s').site('t'), ErrorCode.INVALID_ARGUMENT],
      [
        'duplicate block name',
        () => builder([4]).dense(3, 'relu', { name: 'x' }).dense(2, 'relu', { name: 'x' }),
        ErrorCode.INVALID_ARGUMENT,
      ],
      ['slash in a block name', () => builder([4]).dense(3, 'relu', { name: 'a/b' }), ErrorCode.INVALID_ARGUMENT],
      ['slash in the host id', () => new HostBuilder({ hostId: 'a/b', inputShape: [4], seed: 0 }), ErrorCode.INVALID_ARGUMENT],
      ['negative seed', () => new HostBuilder({ hostId: 'h', inputShape: [4], seed: -1 }), ErrorCode.INVALID_ARGUMENT],
      ['empty input shape', () => new HostBuilder({ hostId: 'h', inputShape: [], seed: 0 }), ErrorCode.INVALID_ARGUMENT],
      ['unknown activation', () => builder([4]).dense(3, 'gelu' as 'relu'), ErrorCode.INVALID_ARGUMENT],
      ['zero units', () => builder([4]).dense(0), ErrorCode.INVALID_ARGUMENT],
      ['no blocks', () => builder().build(), ErrorCode.INVALID_STATE],
      ['image output', () => builder().conv2d(3).build(), ErrorCode.INVALID_STATE],
    ];
    for (const [label, fn, code] of cases) expect(caught(fn).code, label).toBe(code);
    const used = builder([4]).dense(2);
    keep(used.build());
    expect(caught(() => used.dense(2)).code).toBe(ErrorCode.INVALID_STATE);
    expect(caught(() => used.build()).code).toBe(ErrorCode.INVALID_STATE);
    expect(tf.engine().registeredVariables['hb-bad/conv1/kernel']).toBeUndefined();
  });
});
