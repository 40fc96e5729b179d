/**
 * `stopGradient`: the identity in the forward pass, a zero gradient in the backward pass.
 * TensorFlow.js 4.22 has no `tf.stopGradient` (TensorFlow's `StopGradient` op is not
 * ported), yet a seed trained in isolation needs one: the site hook computes
 * `x + alpha·seed(stopGradient(x))`, so the host's gradients are exactly those of
 * `x + constant` while the seed's own variables still receive gradients.
 *
 * Built on `tf.customGrad`: the forward value is a clone (shares the input's data, no
 * copy); the gradient is `zerosLike(dy)`, which the tape adds to the input's other
 * gradient contributions — adding zeros leaves them bit-identical.
 */
import * as tf from '@tensorflow/tfjs-core';

type CustomGradientFunc = Parameters<typeof tf.customGrad>[0];

const stopGradientOp = tf.customGrad(((x: tf.Tensor) => ({
  value: tf.clone(x),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as unknown as CustomGradientFunc);

/** `x` in the forward pass; blocks every gradient from flowing back into `x`. */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  return stopGradientOp(x) as T;
}
