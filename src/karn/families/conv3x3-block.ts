/**
 * 3×3 conv block: `layers` residual units `h ← h + conv3x3(relu(conv3x3(h)))`, the inner
 * width `max(1, round(c / reduction))`, each conv dilated by `dilation` (capped so the
 * kernel span fits the feature map; dilation is realised by zero-stuffing the kernel, see
 * `conv-utils.ts`). CONV sites only.
 */
import { Initializer, tf } from '../../tensor/index.js';
import { assembleModule, FamilyId, isConvSite, knob, type FamilyConfig } from '../family.js';
import { dilateKernel, maxDilationFor } from './conv-utils.js';

/** 3×3 conv block family. */
export const conv3x3BlockFamily: FamilyConfig = {
  id: FamilyId.CONV3X3_BLOCK,
  summary: 'residual units of two (dilated) 3×3 convolutions with ReLU',
  knobs: [
    { name: 'layers', min: 1, max: 4, defaultValue: 1, integer: true },
    { name: 'dilation', min: 1, max: 8, defaultValue: 1, integer: true },
    { name: 'reduction', min: 1, max: 8, defaultValue: 1 },
  ],
  fits: isConvSite,
  build(knobs, site, context) {
    const [h, w, c] = site.shape as [number, number, number];
    const layers = knob(knobs, 'layers');
    const dilation = Math.min(knob(knobs, 'dilation'), maxDilationFor(Math.min(h, w), 3));
    const mid = Math.max(1, Math.round(c / knob(knobs, 'reduction')));
    return assembleModule(FamilyId.CONV3X3_BLOCK, context, (bag) => {
      const units = Array.from({ length: layers }, (_, i) => ({
        k1: bag.add(`unit${i}/k1`, Initializer.HE_NORMAL, [3, 3, c, mid]),
        b1: bag.add(`unit${i}/b1`, Initializer.ZEROS, [mid]),
        k2: bag.add(`unit${i}/k2`, Initializer.GLOROT_UNIFORM, [3, 3, mid, c], 1 / Math.sqrt(layers)),
      }));
      return (x) => {
        let y = x as tf.Tensor4D;
        for (const u of units) {
          const a = tf.relu(tf.add(tf.conv2d(y, dilateKernel(u.k1 as tf.Tensor4D, dilation), 1, 'same'), u.b1)) as tf.Tensor4D;
          y = tf.add(y, tf.conv2d(a, dilateKernel(u.k2 as tf.Tensor4D, dilation), 1, 'same'));
        }
        return y;
      };
    });
  },
};
