/**
 * The CNN host family, including the bench model (two 3×3 conv + pool blocks).
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BlockActivation, SeedSiteKind, WindowPadding, type SquareWindow } from '../../../src/leyline/index.js';
import { initTensorBackend, tf } from '../../../src/tensor/index.js';
import type { BlockHost } from '../../../src/tolaria/hosts/block-host.js';
import { cnnHost, type CnnHostOptions } from '../../../src/tolaria/hosts/cnn-host.js';
import { hostGradientParity, PARITY_TOLERANCE } from './parity.js';

beforeAll(async () => {
  await initTensorBackend();
});

const live: BlockHost[] = [];
afterEach(() => {
  for (const host of live.splice(0)) host.dispose();
});
const build = (options: CnnHostOptions): BlockHost => {
  const host = cnnHost(options);
  live.push(host);
  return host;
};

const conv = (k: number, cin: number, cout: number): number => k * k * cin * cout + cout;

describe('cnnHost', () => {
  it.each([
    ['CIFAR-10 [32, 32, 3]', [32, 32, 3], [16, 16, 32], [8, 8, 64], conv(3, 3, 32) + conv(3, 32, 64) + 8 * 8 * 64 * 10 + 10],
    ['MNIST [28, 28, 1]', [28, 28, 1], [14, 14, 32], [7, 7, 64], conv(3, 1, 32) + conv(3, 32, 64) + 7 * 7 * 64 * 10 + 10],
  ] as const)('builds two conv+ReLU+pool blocks with WIDEN and CONV sites for %s', (_label, inputShape, site1, site2, parameters) => {
    const host = build({ inputShape, seed: 1 });
    const d = host.descriptor;
    expect(d.family).toBe('cnn');
    expect(d.inputShape).toEqual(inputShape);
    expect(d.numClasses).toBe(10);
    expect(host.blocks.map((b) => b.name)).toEqual(['conv1', 'pool1', 'conv2', 'pool2', 'flatten', 'head']);
    expect(d.sites.map((s) => [s.siteId, s.block, s.kind, [...s.shape], s.depth, [...s.outputShape]])).toEqual([
      ['block1.widen', 'conv1', SeedSiteKind.WIDEN, inputShape, 0, [site1[0], site1[1], 64]],
      ['block1', 'pool1', SeedSiteKind.CONV, site1, 1, []],
      ['block2.widen', 'conv2', SeedSiteKind.WIDEN, [site1[0], site1[1], 32], 2, [10]],
      ['block2', 'pool2', SeedSiteKind.CONV, site2, 3, []],
    ]);
    // The new channels' path mirrors the blocks: 3×3 same conv, ReLU, 2×2 pool, then conv2 (3×3 same) or the head.
    const plain = (w: SquareWindow | undefined) => (w === undefined ? undefined : [w.size, w.stride, w.padding]);
    for (const [path, next] of [
      [d.sites[0]?.convWiden, [3, 1, WindowPadding.SAME]],
      [d.sites[2]?.convWiden, undefined],
    ] as const) {
      expect([plain(path?.conv), path?.activation, plain(path?.pool), plain(path?.nextConv)]).toEqual([
        [3, 1, WindowPadding.SAME],
        BlockActivation.RELU,
        [2, 2, WindowPadding.VALID],
        next,
      ]);
    }
    expect(d.parameterCount).toBe(BigInt(parameters));
    expect(host.variables.map((v) => v.name)).toEqual([
      'cnn/conv1/kernel',
      'cnn/conv1/bias',
      'cnn/conv2/kernel',
      'cnn/conv2/bias',
      'cnn/head/kernel',
      'cnn/head/bias',
    ]);
    const before = tf.memory().numTensors;
    const x = tf.zeros([2, ...inputShape]);
    const logits = tf.tidy(() => host.forward(x, { training: false }));
    expect(logits.shape).toEqual([2, 10]);
    tf.dispose([x, logits]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('honours channels, kernel size and class count', () => {
    const host = build({ inputShape: [12, 12, 3], channels: [4, 6, 8], kernelSize: 5, numClasses: 4, seed: 1, hostId: 'cnn-3' });
    expect(host.descriptor.sites.filter((s) => s.kind === SeedSiteKind.CONV).map((s) => [...s.shape])).toEqual([
      [6, 6, 4],
      [3, 3, 6],
      [1, 1, 8],
    ]);
    expect(host.variables[0]?.shape).toEqual([5, 5, 3, 4]);
    expect(host.descriptor.numClasses).toBe(4);
  });

  it('matches the cpu oracle: loss and every gradient of the bench model within 1e-5', async () => {
    const host = build({ inputShape: [32, 32, 3], seed: 2, hostId: 'cnn-parity' });
    const { worst } = await hostGradientParity(host, 2, 3);
    expect(worst).toBeLessThanOrEqual(PARITY_TOLERANCE);
  });
});
