/**
 * Depthwise-separable conv: a `kernel`×`kernel` depthwise conv (one filter per channel,
 * `kernel` forced odd), bias and ReLU, then a 1×1 pointwise conv mixing channels.
 * CONV sites only.
 */
import { Initializer, tf } from '../../tensor/index.js';
import { assembleModule, FamilyId, isConvSite, knob, type FamilyConfig } from '../family.js';

/** Depthwise-separable conv family. */
export const depthwiseSeparableFamily: FamilyConfig = {
  id: FamilyId.DEPTHWISE_SEPARABLE,
  summary: 'k×k depthwise conv + ReLU + 1×1 pointwise conv',
  knobs: [{ name: 'kernel', min: 1, max: 11, defaultValue: 3, integer: true }],
  fits: isConvSite,
  build(knobs, site, context) {
    const c = site.shape[2] as number;
    const raw = knob(knobs, 'kernel');
    const k = raw % 2 === 1 ? raw : raw + 1;
    return assembleModule(FamilyId.DEPTHWISE_SEPARABLE, context, (bag) => {
      const depthwise = bag.add('depthwise/k', Initializer.HE_NORMAL, [k, k, c, 1]);
      const bias = bag.add('depthwise/b', Initializer.ZEROS, [c]);
      const pw = bag.add('pointwise/k', Initializer.GLOROT_UNIFORM, [1, 1, c, c]);
      return (x) => {
        const d = tf.relu(tf.add(tf.depthwiseConv2d(x as tf.Tensor4D, depthwise as tf.Tensor4D, 1, 'same'), bias)) as tf.Tensor4D;
        return tf.conv2d(d, pw as tf.Tensor4D, 1, 'same');
      };
    });
  },
};
