/**
 * Deliberately unstable feedback loop (HIGH_RISK by design): `steps` un-normalised
 * iterations `h ← gain·(h·W) + x` with a shared LeCun-normal W (gain ≈ 1 per step). The
 * output and the gradients grow roughly like `gain^steps`: with gain 12.5 and 3 steps
 * (BP043 at its midpoint) gradients are thousands of times those of a safe family, which
 * is what Urabrask's crucible must detect. With gain < 1 the same loop makes gradients
 * vanish instead (BP044), and at gain 0.5 it is a stable recursion (BP042). Nothing clips
 * or normalises on purpose. Fits DENSE and CONV (position-wise).
 */
import { Initializer, tf } from '../../tensor/index.js';
import { assembleModule, channelsOf, dense, FamilyId, isPointwiseSite, knob, pointwise, type FamilyConfig } from '../family.js';

/** Unstable feedback family. */
export const unstableFeedbackFamily: FamilyConfig = {
  id: FamilyId.UNSTABLE_FEEDBACK,
  summary: 'un-normalised recurrent feedback h ← gain·hW + x (explodes for gain > 1)',
  knobs: [
    { name: 'gain', min: 0, max: 100, defaultValue: 1 },
    { name: 'steps', min: 1, max: 10, defaultValue: 3, integer: true },
  ],
  fits: isPointwiseSite,
  build(knobs, site, context) {
    const c = channelsOf(site);
    const gain = knob(knobs, 'gain');
    const steps = knob(knobs, 'steps');
    return assembleModule(FamilyId.UNSTABLE_FEEDBACK, context, (bag) => {
      const w = bag.add('w', Initializer.LECUN_NORMAL, [c, c]);
      return (x) =>
        pointwise(x, (rows) => {
          let h = rows;
          for (let t = 0; t < steps; t += 1) h = tf.add(tf.mul(dense(h, w), tf.scalar(gain)), rows);
          return h;
        });
    });
  },
};
