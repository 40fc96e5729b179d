/**
 * Squeeze-and-excitation: global average pool to `[batch, c]`, `relu(·W1 + b1)` down to
 * `max(1, round(c / reduction))`, `sigmoid(·W2 + b2)` back to c, and the input rescaled
 * per channel by that gate. CONV sites only.
 */
import { Initializer, tf } from '../../tensor/index.js';
import { assembleModule, dense, FamilyId, isConvSite, knob, type FamilyConfig } from '../family.js';

/** Squeeze-and-excitation family. */
export const squeezeExciteFamily: FamilyConfig = {
  id: FamilyId.SQUEEZE_EXCITE,
  summary: 'channel gate from globally pooled features',
  knobs: [{ name: 'reduction', min: 1, max: 64, defaultValue: 4 }],
  fits: isConvSite,
  build(knobs, site, context) {
    const c = site.shape[2] as number;
    const hidden = Math.max(1, Math.round(c / knob(knobs, 'reduction')));
    return assembleModule(FamilyId.SQUEEZE_EXCITE, context, (bag) => {
      const w1 = bag.add('squeeze/w', Initializer.HE_NORMAL, [c, hidden]);
      const b1 = bag.add('squeeze/b', Initializer.ZEROS, [hidden]);
      const w2 = bag.add('excite/w', Initializer.GLOROT_UNIFORM, [hidden, c]);
      const b2 = bag.add('excite/b', Initializer.ZEROS, [c]);
      return (x) => {
        const pooled = tf.mean(x, [1, 2]) as tf.Tensor2D;
        const gate = tf.sigmoid(dense(tf.relu(dense(pooled, w1, b1)) as tf.Tensor2D, w2, b2));
        return tf.mul(x, tf.reshape(gate, [-1, 1, 1, c]));
      };
    });
  },
};
