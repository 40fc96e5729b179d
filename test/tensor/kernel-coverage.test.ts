/**
 * Kernel coverage: every kernel a computation needs is listed, and the ones wasm lacks are
 * named — the mechanism the gradient-parity tests rely on.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { findMissingKernels, initTensorBackend, kernelsUsedBy, missingKernelFromError, tf } from '../../src/tensor/index.js';

beforeAll(async () => {
  await initTensorBackend();
});

const convGrad = (): tf.Tensor => {
  const x = tf.ones([1, 5, 5, 2]);
  const w = tf.ones([3, 3, 2, 2]);
  return tf.grad((k: tf.Tensor) => tf.sum(tf.conv2d(x as tf.Tensor4D, k as tf.Tensor4D, 1, 'same')))(w);
};

describe('kernel coverage', () => {
  it('lists forward and backward kernels, without custom-gradient op names', async () => {
    const used = await kernelsUsedBy(() => {
      const logits = tf.ones([2, 3]);
      return tf.grad((l: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([0, 1], 'int32'), 3), l))(logits);
    });
    expect(used).toEqual(expect.arrayContaining(['Exp', 'OneHot', 'Sub']));
    expect(used.some((name) => name.includes('__op'))).toBe(false);
    const conv = await kernelsUsedBy(convGrad);
    expect(conv).toEqual(expect.arrayContaining(['Conv2D', 'Conv2DBackpropFilter']));
  });

  it('finds nothing missing with the patches and names the gap without them', async () => {
    expect(await findMissingKernels(convGrad)).toEqual([]);
    await initTensorBackend({ patchKernels: false });
    try {
      expect(await findMissingKernels(convGrad)).toEqual(['Conv2DBackpropFilter']);
      let caught: unknown;
      try {
        tf.tidy(() => convGrad());
      } catch (error) {
        caught = error;
      }
      expect(missingKernelFromError(caught)).toBe('Conv2DBackpropFilter');
    } finally {
      await initTensorBackend();
    }
  });

  it('rethrows an error of the profiled function and leaves the engine usable', async () => {
    const before = tf.memory().numTensors;
    await expect(
      kernelsUsedBy(() => {
        tf.ones([2]);
        throw new Error('bad model');
      }),
    ).rejects.toThrow('bad model');
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.getBackend()).toBe('wasm');
    const t = tf.add(tf.scalar(1), tf.scalar(2));
    expect(t.dataSync()[0]).toBe(3);
    t.dispose();
    expect(missingKernelFromError(new Error('other'))).toBeUndefined();
  });
});
