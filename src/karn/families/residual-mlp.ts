/**
 * Residual MLP: `depth` blocks `h ← h + relu(h·W1 + b1)·W2` on the last axis, hidden width
 * `round(c·hiddenMultiple)` (≥ 1). Fits DENSE and CONV sites (position-wise over channels).
 */
import { tf } from '../../tensor/index.js';
import { Initializer } from '../../tensor/index.js';
import { assembleModule, channelsOf, dense, FamilyId, isPointwiseSite, knob, pointwise, type FamilyConfig } from '../family.js';

/** Residual MLP family. */
export const residualMlpFamily: FamilyConfig = {
  id: FamilyId.RESIDUAL_MLP,
  summary: 'stack of residual two-layer ReLU MLP blocks on the last axis',
  knobs: [
    { name: 'depth', min: 1, max: 10, defaultValue: 2, integer: true },
    { name: 'hiddenMultiple', min: 0.25, max: 20, defaultValue: 2 },
  ],
  fits: isPointwiseSite,
  build(knobs, site, context) {
    const c = channelsOf(site);
    const depth = knob(knobs, 'depth');
    const hidden = Math.max(1, Math.round(c * knob(knobs, 'hiddenMultiple')));
    return assembleModule(FamilyId.RESIDUAL_MLP, context, (bag) => {
      const blocks = Array.from({ length: depth }, (_, i) => ({
        w1: bag.add(`block${i}/w1`, Initializer.HE_NORMAL, [c, hidden]),
        b1: bag.add(`block${i}/b1`, Initializer.ZEROS, [hidden]),
        // Scaled by 1/√depth so the residual stream's variance stays O(1) at init.
        w2: bag.add(`block${i}/w2`, Initializer.GLOROT_UNIFORM, [hidden, c], 1 / Math.sqrt(depth)),
      }));
      return (x) =>
        pointwise(x, (rows) => {
          let h = rows;
          for (const b of blocks) h = tf.add(h, dense(tf.relu(dense(h, b.w1, b.b1)), b.w2));
          return h;
        });
    });
  },
};
