/**
 * Highway gate: `t ⊙ H(x) + (1 − t) ⊙ x` with transform `H(x) = transformScale ·
 * tanh(x·Wh + bh)` and carry gate `t = σ(x·Wt + bt)`, bt initialised to `gateBias`
 * (negative → mostly carry at init). DENSE sites only.
 */
import { Initializer, tf } from '../../tensor/index.js';
import { assembleModule, channelsOf, dense, FamilyId, isDenseSite, knob, type FamilyConfig } from '../family.js';

/** Highway gate family. */
export const highwayGateFamily: FamilyConfig = {
  id: FamilyId.HIGHWAY_GATE,
  summary: 'sigmoid-gated mix of a tanh transform and the carried input',
  knobs: [
    { name: 'gateBias', min: -3, max: 3, defaultValue: -1 },
    { name: 'transformScale', min: 0.1, max: 25, defaultValue: 1 },
  ],
  fits: isDenseSite,
  build(knobs, site, context) {
    const f = channelsOf(site);
    const scale = knob(knobs, 'transformScale');
    return assembleModule(FamilyId.HIGHWAY_GATE, context, (bag) => {
      const wh = bag.add('transform/w', Initializer.GLOROT_UNIFORM, [f, f]);
      const bh = bag.add('transform/b', Initializer.ZEROS, [f]);
      const wt = bag.add('gate/w', Initializer.GLOROT_UNIFORM, [f, f]);
      const bt = bag.constant('gate/b', [f], knob(knobs, 'gateBias'));
      return (x) => {
        const rows = x as tf.Tensor2D;
        const t = tf.sigmoid(dense(rows, wt, bt));
        const hx = tf.mul(tf.tanh(dense(rows, wh, bh)), tf.scalar(scale));
        return tf.add(tf.mul(t, hx), tf.mul(tf.sub(tf.scalar(1), t), rows));
      };
    });
  },
};
