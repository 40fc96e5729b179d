/**
 * Mixture of experts (soft routing): a router `softmax(x·Wr / temperature)` over
 * `experts` two-layer ReLU MLPs of hidden width `max(1, round(c · hiddenMultiple))`; the
 * output is the router-weighted sum of expert outputs. Two experts by default. Fits DENSE
 * and CONV (position-wise, so each position is routed on its own).
 */
import { Initializer, tf } from '../../tensor/index.js';
import { assembleModule, channelsOf, dense, FamilyId, isPointwiseSite, knob, pointwise, type FamilyConfig } from '../family.js';

/** Mixture-of-experts family. */
export const mixtureOfExpertsFamily: FamilyConfig = {
  id: FamilyId.MIXTURE_OF_EXPERTS,
  summary: 'softly routed mixture of small MLP experts',
  knobs: [
    { name: 'experts', min: 2, max: 16, defaultValue: 2, integer: true },
    { name: 'hiddenMultiple', min: 0.25, max: 4, defaultValue: 1 },
    { name: 'temperature', min: 0.1, max: 4, defaultValue: 1 },
  ],
  fits: isPointwiseSite,
  build(knobs, site, context) {
    const c = channelsOf(site);
    const count = knob(knobs, 'experts');
    const hidden = Math.max(1, Math.round(c * knob(knobs, 'hiddenMultiple')));
    const temperature = knob(knobs, 'temperature');
    return assembleModule(FamilyId.MIXTURE_OF_EXPERTS, context, (bag) => {
      const router = bag.add('router/w', Initializer.GLOROT_UNIFORM, [c, count]);
      const experts = Array.from({ length: count }, (_, e) => ({
        w1: bag.add(`expert${e}/w1`, Initializer.HE_NORMAL, [c, hidden]),
        w2: bag.add(`expert${e}/w2`, Initializer.GLOROT_UNIFORM, [hidden, c]),
      }));
      return (x) =>
        pointwise(x, (rows) => {
          const gates = tf.softmax(tf.div(dense(rows, router), tf.scalar(temperature))) as tf.Tensor2D;
          let out: tf.Tensor2D | undefined;
          experts.forEach((expert, e) => {
            const y = dense(tf.relu(dense(rows, expert.w1)) as tf.Tensor2D, expert.w2);
            const weighted = tf.mul(y, tf.slice(gates, [0, e], [-1, 1])) as tf.Tensor2D;
            out = out === undefined ? weighted : (tf.add(out, weighted) as tf.Tensor2D);
          });
          return out as tf.Tensor2D;
        });
    });
  },
};
