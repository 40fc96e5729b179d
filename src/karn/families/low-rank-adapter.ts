/**
 * Low-rank adapter (LoRA-style): `(alpha / r) · (x·A)·B` with rank `r = min(rank, c)`.
 * Unlike LoRA, B starts small and random rather than zero, so the adapter is not a second
 * zero control and both factors receive gradient at init. Fits DENSE and CONV sites.
 */
import { Initializer, tf } from '../../tensor/index.js';
import { assembleModule, channelsOf, dense, FamilyId, isPointwiseSite, knob, pointwise, type FamilyConfig } from '../family.js';

/** Low-rank adapter family. */
export const lowRankAdapterFamily: FamilyConfig = {
  id: FamilyId.LOW_RANK_ADAPTER,
  summary: 'rank-r factorised linear map A·B scaled by alpha/r',
  knobs: [
    { name: 'rank', min: 1, max: 64, defaultValue: 8, integer: true },
    { name: 'alpha', min: 0.01, max: 100, defaultValue: 1 },
  ],
  fits: isPointwiseSite,
  build(knobs, site, context) {
    const c = channelsOf(site);
    const r = Math.min(knob(knobs, 'rank'), c);
    const factor = knob(knobs, 'alpha') / r;
    return assembleModule(FamilyId.LOW_RANK_ADAPTER, context, (bag) => {
      const a = bag.add('a', Initializer.GLOROT_UNIFORM, [c, r]);
      const b = bag.add('b', Initializer.GLOROT_UNIFORM, [r, c], 0.1);
      return (x) => pointwise(x, (rows) => tf.mul(dense(dense(rows, a), b), tf.scalar(factor)));
    });
  },
};
