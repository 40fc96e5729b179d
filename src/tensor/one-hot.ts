/**
 * Float one-hot encoding that is correct on every backend. Stock wasm `OneHot` writes int32
 * bit patterns whatever dtype is asked for, so `tf.oneHot(idx, depth, 1, 0, 'float32')`
 * returns 1.4e-45 for the hot entry (reference `tensor-backend-measurements.md` §2, "Bug
 * found"). The patch kernel fixes `tf.oneHot` itself once `initTensorBackend` has run; this
 * helper is correct even without it (int32 one-hot — the dtype the stock kernel does get
 * right — then a cast), so loss code never depends on the patch being registered.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * `[...indices.shape, depth]` float32 one-hot of int32 `indices`; out-of-range indices give
 * an all-zero row. The caller owns the result.
 */
export function oneHotFloat(indices: tf.Tensor, depth: number): tf.Tensor {
  return tf.tidy(() => {
    const ids = indices.dtype === 'int32' ? indices : tf.cast(indices, 'int32');
    return tf.cast(tf.oneHot(ids, depth, 1, 0, 'int32'), 'float32');
  });
}
