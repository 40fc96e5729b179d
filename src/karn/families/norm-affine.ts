/**
 * Normalisation + affine: layer normalisation over the last axis with learned per-channel
 * `gamma` (initialised to `gain`) and `beta`. A tiny `epsilon` makes the module fragile on
 * near-constant inputs (used on purpose by a HIGH_RISK blueprint). Fits DENSE and CONV.
 */
import { Initializer, tf } from '../../tensor/index.js';
import { assembleModule, channelsOf, FamilyId, isPointwiseSite, knob, normaliseLastAxis, type FamilyConfig } from '../family.js';

/** Normalisation + affine family. */
export const normAffineFamily: FamilyConfig = {
  id: FamilyId.NORM_AFFINE,
  summary: 'layer norm over channels with learned scale and shift',
  knobs: [
    { name: 'epsilon', min: 1e-9, max: 0.1, defaultValue: 1e-5 },
    { name: 'gain', min: 0.1, max: 2, defaultValue: 1 },
  ],
  fits: isPointwiseSite,
  build(knobs, site, context) {
    const c = channelsOf(site);
    const epsilon = knob(knobs, 'epsilon');
    return assembleModule(FamilyId.NORM_AFFINE, context, (bag) => {
      const gamma = bag.constant('gamma', [c], knob(knobs, 'gain'));
      const beta = bag.add('beta', Initializer.ZEROS, [c]);
      return (x) => tf.add(tf.mul(normaliseLastAxis(x, epsilon), gamma), beta);
    });
  },
};
