/**
 * The parity measure itself: relative to the reference tensor's largest magnitude, exact
 * zero when equal, infinite when NaN/∞ placement or length differs.
 */
import { describe, expect, it } from 'vitest';
import { compareOnBackends, initTensorBackend, maxRelativeError, tf } from '../../src/tensor/index.js';

describe('maxRelativeError', () => {
  it('divides the largest difference by the largest reference magnitude', () => {
    expect(maxRelativeError([1, 2, 4.004], [1, 2, 4])).toBeCloseTo(1e-3, 12);
    expect(maxRelativeError([0.001, 10], [0.002, 10])).toBeCloseTo(1e-4, 12);
    expect(maxRelativeError([3, -0], [3, 0])).toBe(0);
  });

  it('treats matching NaN/∞ as equal and mismatches as infinite', () => {
    expect(maxRelativeError([Number.NaN, 1], [Number.NaN, 1])).toBe(0);
    expect(maxRelativeError([Number.POSITIVE_INFINITY], [Number.POSITIVE_INFINITY])).toBe(0);
    expect(maxRelativeError([Number.NaN], [1])).toBe(Number.POSITIVE_INFINITY);
    expect(maxRelativeError([1, 2], [1])).toBe(Number.POSITIVE_INFINITY);
    expect(maxRelativeError([1e-9], [0])).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('compareOnBackends', () => {
  it('runs the same function on wasm and cpu and reports each output', async () => {
    await initTensorBackend();
    const before = tf.memory().numTensors;
    const result = await compareOnBackends({ a: { shape: [2, 3], values: new Float32Array([1, 2, 3, 4, 5, 6]) } }, (t) => [
      tf.matMul(t['a'] as tf.Tensor, t['a'] as tf.Tensor, false, true),
      tf.sum(t['a'] as tf.Tensor),
    ]);
    expect(result.relativeErrors).toHaveLength(2);
    expect(result.worstRelativeError).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
  });
});
