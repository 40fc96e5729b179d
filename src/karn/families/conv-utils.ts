/**
 * Convolution helpers shared by the conv families.
 */
import { tf } from '../../tensor/index.js';

/**
 * Spreads a `[k, k, in, out]` kernel to the dilated `[(k−1)d+1, (k−1)d+1, in, out]` kernel
 * by inserting `d−1` zero taps between taps. tfjs-core's Conv2D/DepthwiseConv2D gradients
 * reject dilations > 1, so dilation is realised in the kernel (pad + reshape + slice all
 * have gradients) and the conv itself runs at dilation 1.
 */
export function dilateKernel(kernel: tf.Tensor4D, dilation: number): tf.Tensor4D {
  if (dilation === 1) return kernel;
  const [k, , cin, cout] = kernel.shape;
  const span = (k - 1) * dilation + 1;
  const spread = tf.pad(tf.reshape(kernel, [k, 1, k, 1, cin, cout]), [
    [0, 0],
    [0, dilation - 1],
    [0, 0],
    [0, dilation - 1],
    [0, 0],
    [0, 0],
  ]);
  const full = tf.reshape(spread, [k * dilation, k * dilation, cin, cout]);
  return tf.slice(full, [0, 0, 0, 0], [span, span, cin, cout]) as tf.Tensor4D;
}

/** Largest dilation whose 3-tap span still fits inside a `size`-wide map (≥ 1). */
export function maxDilationFor(size: number, kernel: number): number {
  return Math.max(1, Math.floor((size - 1) / Math.max(1, kernel - 1)));
}
