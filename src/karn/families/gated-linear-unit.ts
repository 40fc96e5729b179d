/**
 * Gated linear unit (GLU): `((x·Wa + ba) ⊙ σ(x·Wb + bb))·Wo` with hidden width
 * `max(1, round(features · hiddenMultiple))`. DENSE sites only.
 */
import { Initializer, tf } from '../../tensor/index.js';
import { assembleModule, channelsOf, dense, FamilyId, isDenseSite, knob, type FamilyConfig } from '../family.js';

/** Gated linear unit family. */
export const gatedLinearUnitFamily: FamilyConfig = {
  id: FamilyId.GATED_LINEAR_UNIT,
  summary: 'value branch gated by a sigmoid branch, projected back',
  knobs: [{ name: 'hiddenMultiple', min: 0.5, max: 8, defaultValue: 2 }],
  fits: isDenseSite,
  build(knobs, site, context) {
    const f = channelsOf(site);
    const hidden = Math.max(1, Math.round(f * knob(knobs, 'hiddenMultiple')));
    return assembleModule(FamilyId.GATED_LINEAR_UNIT, context, (bag) => {
      const wa = bag.add('value/w', Initializer.GLOROT_UNIFORM, [f, hidden]);
      const ba = bag.add('value/b', Initializer.ZEROS, [hidden]);
      const wb = bag.add('gate/w', Initializer.GLOROT_UNIFORM, [f, hidden]);
      const bb = bag.add('gate/b', Initializer.ZEROS, [hidden]);
      const wo = bag.add('out/w', Initializer.GLOROT_UNIFORM, [hidden, f]);
      return (x) => {
        const rows = x as tf.Tensor2D;
        return dense(tf.mul(dense(rows, wa, ba), tf.sigmoid(dense(rows, wb, bb))) as tf.Tensor2D, wo);
      };
    });
  },
};
