/**
 * Zero-initialised control: a position-wise linear map `x·W + b` with W and b all zero, so
 * the module outputs exactly 0 at init (the host sees `x + seed(x) = x`) yet every weight
 * receives gradient and can learn. Fits DENSE and CONV.
 */
import { Initializer } from '../../tensor/index.js';
import { assembleModule, channelsOf, dense, FamilyId, isPointwiseSite, pointwise, type FamilyConfig } from '../family.js';

/** Zero-initialised control family. */
export const zeroControlFamily: FamilyConfig = {
  id: FamilyId.ZERO_CONTROL,
  summary: 'zero-initialised linear map: output 0 at init, trainable',
  knobs: [],
  fits: isPointwiseSite,
  build(_knobs, site, context) {
    const c = channelsOf(site);
    return assembleModule(FamilyId.ZERO_CONTROL, context, (bag) => {
      const w = bag.add('w', Initializer.ZEROS, [c, c]);
      const b = bag.add('b', Initializer.ZEROS, [c]);
      return (x) => pointwise(x, (rows) => dense(rows, w, b));
    });
  },
};
