/**
 * Channel widening: k new output channels of the conv block a conv WIDEN site belongs to
 * (the CNN counterpart of `widen.ts`). The module maps the block's input `u`
 * `[batch, h, w, c]` to the new channels' contribution to the next weighted block's
 * pre-activation, along the path the site descriptor gives (`ConvWidenPath`), which mirrors
 * the host's blocks exactly:
 *
 *   h_new = f(conv(u, U) + c)            U: [k_c, k_c, c, k], c: [k], f the block's activation
 *   h_new = maxPool(h_new)               when the path has a pool
 *   out   = conv(h_new, V)               V: [k_n, k_n, k, c_next]  (next block a convolution)
 *   out   = flatten(h_new) · V           V: [h'·w'·k, units]       (next block dense, after a flatten)
 *
 * so a fused seed makes the host the same function as one whose widened convolution has
 * `c_out + k` filters and whose next block has the matching extra input weights (V's rows
 * are the new channels' rows of that block's kernel; after a flatten, NHWC order with the
 * channel fastest, as the host flattens).
 *
 * Zero-out initialisation (BP056): `U` as the host initialises the block (He-normal for
 * ReLU, Glorot-uniform otherwise), `c` and `V` zeros — the contribution is exactly 0 at
 * graft (function-preserving), and the first gradient step moves `V` and brings the channels
 * in. ReLU is `tf.maximum(x, 0)` as in `widen.ts` (the same function; derivative 1 at 0).
 *
 * Fits conv WIDEN sites only (MLP WIDEN sites have no `conv_widen`).
 */
import { ErrorCode, EsperError } from '../../core/index.js';
import {
  BlockActivation,
  convWidenMaps,
  SeedSiteKind,
  WindowPadding,
  type SeedSiteDescriptor,
  type SquareWindow,
} from '../../leyline/index.js';
import { Initializer, tf } from '../../tensor/index.js';
import { assembleModule, FamilyId, knob, type FamilyConfig, type SeedModule } from '../family.js';

/** The block activations the family mirrors (ReLU with derivative 1 at 0, as `widen.ts`). */
const ACTIVATIONS: Readonly<Record<number, (x: tf.Tensor) => tf.Tensor>> = {
  [BlockActivation.LINEAR]: (x) => x,
  [BlockActivation.RELU]: (x) => tf.maximum(x, tf.scalar(0)),
  [BlockActivation.TANH]: (x) => tf.tanh(x),
  [BlockActivation.SIGMOID]: (x) => tf.sigmoid(x),
};

/** True for a WIDEN site on a conv block whose path (`conv_widen`) is well formed and matches its shapes. */
export function isConvWidenSite(site: SeedSiteDescriptor): boolean {
  const path = site.convWiden;
  if (site.kind !== SeedSiteKind.WIDEN || path === undefined || ACTIVATIONS[path.activation] === undefined) return false;
  if (!site.shape.every((d) => d >= 1)) return false;
  const maps = convWidenMaps(site);
  if (maps === undefined) return false;
  const out = site.outputShape;
  if (maps.next === undefined) return out.length === 1 && (out[0] ?? 0) >= 1;
  return out.length === 3 && out[0] === maps.next[0] && out[1] === maps.next[1] && (out[2] ?? 0) >= 1;
}

const padding = (window: SquareWindow): 'same' | 'valid' => (window.padding === WindowPadding.SAME ? 'same' : 'valid');

/** Channel-widening family: `channels` new output channels, zero-out initialisation. */
export const widenConvFamily: FamilyConfig = {
  id: FamilyId.WIDEN_CONV,
  summary: 'new output channels of the conv block of a conv WIDEN site, through its activation and pool into the next block (outgoing 0)',
  knobs: [{ name: 'channels', min: 1, max: 1024, defaultValue: 8, integer: true }],
  fits: isConvWidenSite,
  build(knobs, site, context): SeedModule {
    const path = site.convWiden;
    const maps = convWidenMaps(site);
    if (path?.conv === undefined || maps === undefined || !isConvWidenSite(site)) {
      throw new EsperError(ErrorCode.KARN_SITE_UNSUPPORTED, `${context.blueprintId}: site ${site.siteId} is not a conv WIDEN site`, {
        details: { blueprintId: context.blueprintId, family: FamilyId.WIDEN_CONV, siteKind: site.kind },
      });
    }
    const { conv, pool, nextConv } = path;
    const activate = ACTIVATIONS[path.activation] as (x: tf.Tensor) => tf.Tensor;
    const inputs = site.shape[2] as number;
    const channels = knob(knobs, 'channels');
    const init = path.activation === BlockActivation.RELU ? Initializer.HE_NORMAL : Initializer.GLOROT_UNIFORM;
    const module = assembleModule(FamilyId.WIDEN_CONV, context, (bag) => {
      const u = bag.add('U', init, [conv.size, conv.size, inputs, channels]);
      const c = bag.add('c', Initializer.ZEROS, [channels]);
      const outputs = site.outputShape[site.outputShape.length - 1] as number;
      const v =
        nextConv === undefined
          ? bag.add('V', Initializer.ZEROS, [maps.pooled[0] * maps.pooled[1] * channels, outputs])
          : bag.add('V', Initializer.ZEROS, [nextConv.size, nextConv.size, channels, outputs]);
      return (x) => {
        let h = activate(tf.add(tf.conv2d(x as tf.Tensor4D, u as tf.Tensor4D, conv.stride, padding(conv)), c)) as tf.Tensor4D;
        if (pool !== undefined) h = tf.maxPool(h, pool.size, pool.stride, padding(pool));
        if (nextConv !== undefined) return tf.conv2d(h, v as tf.Tensor4D, nextConv.stride, padding(nextConv));
        return tf.matMul(tf.reshape(h, [h.shape[0], -1]) as tf.Tensor2D, v as tf.Tensor2D);
      };
    });
    return { ...module, functionPreserving: true };
  },
};
