/**
 * The MLP host family, including the bench model 784-256-256-10.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../../src/core/index.js';
import { SeedSiteKind } from '../../../src/leyline/index.js';
import { initTensorBackend, tf } from '../../../src/tensor/index.js';
import type { BlockHost } from '../../../src/tolaria/hosts/block-host.js';
import { mlpHost, type MlpHostOptions } from '../../../src/tolaria/hosts/mlp-host.js';
import { hostGradientParity, PARITY_TOLERANCE } from './parity.js';

beforeAll(async () => {
  await initTensorBackend();
});

const live: BlockHost[] = [];
afterEach(() => {
  for (const host of live.splice(0)) host.dispose();
});
const build = (options: MlpHostOptions): BlockHost => {
  const host = mlpHost(options);
  live.push(host);
  return host;
};

describe('mlpHost', () => {
  it('builds the bench model 784-256-256-10 with a DENSE and a WIDEN site on each hidden layer', () => {
    const host = build({ inputSize: 784, seed: 1 });
    const d = host.descriptor;
    expect(d.family).toBe('mlp');
    expect(d.hostId).toBe('mlp');
    expect(d.inputShape).toEqual([784]);
    expect(d.numClasses).toBe(10);
    expect(d.sites.map((s) => [s.siteId, s.block, s.kind, [...s.shape], s.depth])).toEqual([
      ['hidden1', 'hidden1', SeedSiteKind.DENSE, [256], 0],
      ['hidden1.widen', 'hidden1', SeedSiteKind.WIDEN, [784], 0],
      ['hidden2', 'hidden2', SeedSiteKind.DENSE, [256], 1],
      ['hidden2.widen', 'hidden2', SeedSiteKind.WIDEN, [256], 1],
    ]);
    expect(d.sites.map((s) => [...s.outputShape])).toEqual([[], [256], [], [10]]);
    expect(d.parameterCount).toBe(BigInt(784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10));
    expect(host.variables.map((v) => v.name)).toEqual([
      'mlp/hidden1/kernel',
      'mlp/hidden1/bias',
      'mlp/hidden2/kernel',
      'mlp/hidden2/bias',
      'mlp/head/kernel',
      'mlp/head/bias',
    ]);
    const before = tf.memory().numTensors;
    const x = tf.zeros([64, 784]);
    const logits = tf.tidy(() => host.forward(x, { training: false }));
    expect(logits.shape).toEqual([64, 10]);
    tf.dispose([x, logits]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('flattens an image-shaped input first, so its sites sit one block deeper', () => {
    const host = build({ inputShape: [28, 28, 1], hidden: [32], numClasses: 10, seed: 1, hostId: 'mlp-image' });
    expect(host.blocks.map((b) => b.name)).toEqual(['flatten', 'hidden1', 'head']);
    expect(host.descriptor.sites.map((s) => [s.siteId, s.depth])).toEqual([
      ['hidden1', 1],
      ['hidden1.widen', 1],
    ]);
    const x = tf.zeros([2, 28, 28, 1]);
    const logits = tf.tidy(() => host.forward(x, { training: false }));
    expect(logits.shape).toEqual([2, 10]);
    tf.dispose([x, logits]);
  });

  it('needs exactly one of inputSize and inputShape', () => {
    const both = { inputSize: 4, inputShape: [4], seed: 0 } as unknown as MlpHostOptions;
    const neither = { seed: 0 } as unknown as MlpHostOptions;
    for (const options of [both, neither]) {
      let error: unknown;
      try {
        build(options);
      } catch (e) {
        error = e;
      }
      expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    }
  });

  it('matches the cpu oracle: loss and every gradient of the bench model within 1e-5', async () => {
    const host = build({ inputSize: 784, seed: 2, hostId: 'mlp-parity' });
    const { worst } = await hostGradientParity(host, 8, 3);
    expect(worst).toBeLessThanOrEqual(PARITY_TOLERANCE);
  });
});
