import { beforeAll, describe, expect, it } from 'vitest';
import { gelu, residual } from '../../src/tamiyo/gnn-layers.js';
import { initTensorBackend, tf } from '../../src/tensor/index.js';

beforeAll(async () => {
  await initTensorBackend();
});

describe('GNN layer pieces', () => {
  it('gelu is the exact erf form', () => {
    const x = tf.tensor1d([-2, -0.5, 0, 1, 3]);
    const y = Array.from(gelu(x).dataSync());
    const erf = (v: number): number => {
      // Abramowitz–Stegun 7.1.26 is too coarse here; integrate numerically instead.
      let sum = 0;
      const n = 4000;
      for (let i = 0; i < n; i += 1) {
        const t = (v * (i + 0.5)) / n;
        sum += Math.exp(-t * t);
      }
      return (2 / Math.sqrt(Math.PI)) * sum * (v / n);
    };
    [-2, -0.5, 0, 1, 3].forEach((v, i) => expect(y[i]).toBeCloseTo(0.5 * v * (1 + erf(v / Math.SQRT2)), 4));
    x.dispose();
  });

  it('residual adds when the widths match and passes the layer output through otherwise', () => {
    tf.tidy(() => {
      const x = tf.ones([2, 3]) as tf.Tensor2D;
      expect(Array.from(residual(tf.ones([2, 3]) as tf.Tensor2D, x).dataSync())).toEqual([2, 2, 2, 2, 2, 2]);
      expect(residual(tf.zeros([2, 4]) as tf.Tensor2D, x).shape).toEqual([2, 4]);
    });
  });
});
