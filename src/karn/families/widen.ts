/**
 * Widening: k new units in the hidden dense layer a WIDEN site belongs to (Net2Net-style
 * growth, entering function-preserving). The module maps the layer's input `u`
 * `[batch, in]` to its contribution to the next layer's pre-activation `[batch, out]`:
 * `relu(u·U + c)·V`, `U: [in, k]`, `c: [k]`, `V: [k, out]`.
 *
 * Zero-out initialisation: `U` He-normal (the layer's own initialiser), `c` zeros, `V`
 * zeros — the contribution is exactly 0 at graft, so the host's outputs are unchanged, and
 * the first gradient step moves `V` (∂L/∂V = h_newᵀ·G with h_new ≠ 0) and so brings the new
 * units in. Fits WIDEN sites only.
 */
import { SeedSiteKind, type SeedSiteDescriptor } from '../../leyline/index.js';
import { Initializer, tf } from '../../tensor/index.js';
import { assembleModule, dense, FamilyId, knob, type FamilyConfig } from '../family.js';

/** True for a WIDEN site `[in]` → `[out]` with both sizes ≥ 1. */
export function isWidenableSite(site: SeedSiteDescriptor): boolean {
  return (
    site.kind === SeedSiteKind.WIDEN &&
    site.shape.length === 1 &&
    (site.shape[0] ?? 0) >= 1 &&
    site.outputShape.length === 1 &&
    (site.outputShape[0] ?? 0) >= 1
  );
}

/** Widening family: `units` new ReLU units, zero-out initialisation. */
export const widenFamily: FamilyConfig = {
  id: FamilyId.WIDEN,
  summary: 'new ReLU units in the hidden layer of a WIDEN site (zero-out: outgoing weights 0)',
  knobs: [{ name: 'units', min: 1, max: 4096, defaultValue: 24, integer: true }],
  fits: isWidenableSite,
  build(knobs, site, context) {
    const [inputs, outputs] = [site.shape[0] as number, site.outputShape[0] as number];
    const units = knob(knobs, 'units');
    return assembleModule(FamilyId.WIDEN, context, (bag) => {
      const u = bag.add('U', Initializer.HE_NORMAL, [inputs, units]);
      const c = bag.add('c', Initializer.ZEROS, [units]);
      const v = bag.add('V', Initializer.ZEROS, [units, outputs]);
      return (x) => dense(tf.relu(dense(x as tf.Tensor2D, u, c)), v);
    });
  },
};
