/**
 * Bottleneck MLP: `outputScale · (gelu(norm(x)·Wd + bd)·Wu)` with a hidden width of
 * `max(1, round(features / reduction))`. DENSE sites only.
 */
import { Initializer, tf } from '../../tensor/index.js';
import { assembleModule, channelsOf, dense, FamilyId, gelu, isDenseSite, knob, normaliseLastAxis, type FamilyConfig } from '../family.js';

/** Bottleneck MLP family. */
export const bottleneckMlpFamily: FamilyConfig = {
  id: FamilyId.BOTTLENECK_MLP,
  summary: 'normalise, squeeze to features/reduction with GELU, expand back, scale',
  knobs: [
    { name: 'reduction', min: 1, max: 16, defaultValue: 4 },
    { name: 'outputScale', min: 0, max: 2, defaultValue: 1 },
  ],
  fits: isDenseSite,
  build(knobs, site, context) {
    const f = channelsOf(site);
    const hidden = Math.max(1, Math.round(f / knob(knobs, 'reduction')));
    const scale = knob(knobs, 'outputScale');
    return assembleModule(FamilyId.BOTTLENECK_MLP, context, (bag) => {
      const wDown = bag.add('down/w', Initializer.HE_NORMAL, [f, hidden]);
      const bDown = bag.add('down/b', Initializer.ZEROS, [hidden]);
      const wUp = bag.add('up/w', Initializer.GLOROT_UNIFORM, [hidden, f]);
      const bUp = bag.add('up/b', Initializer.ZEROS, [f]);
      return (x) => {
        const h = gelu(dense(normaliseLastAxis(x, 1e-5) as tf.Tensor2D, wDown, bDown)) as tf.Tensor2D;
        return tf.mul(dense(h, wUp, bUp), tf.scalar(scale));
      };
    });
  },
};
