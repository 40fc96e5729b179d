/**
 * Small multi-head self-attention with learned positions.
 *
 * Tokens: at a CONV site `[h, w, c]` the `h·w` positions are the tokens, each embedded
 * from its `c` channels; at a DENSE site `[f]` each of the `f` features is a token whose
 * one value is embedded (so attention runs over features, like channel attention). Tokens
 * get a learned position embedding `[tokens, heads·keyDim]`, then `rounds` residual
 * attention passes with shared weights (`s ← s + MHA(s)`), and a linear read-out maps each
 * token back to its `c` (or 1) values. Fits DENSE and CONV sites with at most
 * {@link MAX_ATTENTION_TOKENS} tokens (the score matrix is tokens²).
 */
import { Initializer, tf } from '../../tensor/index.js';
import { assembleModule, dense, FamilyId, isConvSite, isDenseSite, knob, MAX_ATTENTION_TOKENS, type FamilyConfig } from '../family.js';
import type { SeedSiteDescriptor } from '../../leyline/index.js';

function tokenLayout(site: SeedSiteDescriptor): { tokens: number; width: number } {
  if (isDenseSite(site)) return { tokens: site.shape[0] as number, width: 1 };
  const [h, w, c] = site.shape as [number, number, number];
  return { tokens: h * w, width: c };
}

/** Self-attention family. */
export const selfAttentionFamily: FamilyConfig = {
  id: FamilyId.SELF_ATTENTION,
  summary: 'multi-head self-attention over positions (CONV) or features (DENSE)',
  knobs: [
    { name: 'heads', min: 1, max: 10, defaultValue: 2, integer: true },
    { name: 'keyDim', min: 1, max: 16, defaultValue: 8, integer: true },
    { name: 'rounds', min: 1, max: 3, defaultValue: 1, integer: true },
  ],
  fits(site) {
    if (!isDenseSite(site) && !isConvSite(site)) return false;
    return tokenLayout(site).tokens <= MAX_ATTENTION_TOKENS;
  },
  build(knobs, site, context) {
    const { tokens, width } = tokenLayout(site);
    const heads = knob(knobs, 'heads');
    const keyDim = knob(knobs, 'keyDim');
    const rounds = knob(knobs, 'rounds');
    const embed = heads * keyDim;
    return assembleModule(FamilyId.SELF_ATTENTION, context, (bag) => {
      const wIn = bag.add('embed/w', Initializer.GLOROT_UNIFORM, [width, embed]);
      const pos = bag.add('embed/position', Initializer.GLOROT_UNIFORM, [tokens, embed], 0.1);
      const wq = bag.add('query/w', Initializer.GLOROT_UNIFORM, [embed, embed]);
      const wk = bag.add('key/w', Initializer.GLOROT_UNIFORM, [embed, embed]);
      const wv = bag.add('value/w', Initializer.GLOROT_UNIFORM, [embed, embed]);
      const wo = bag.add('output/w', Initializer.GLOROT_UNIFORM, [embed, embed]);
      const wOut = bag.add('readout/w', Initializer.GLOROT_UNIFORM, [embed, width]);
      const scale = 1 / Math.sqrt(keyDim);
      const split = (rows: tf.Tensor2D, n: number): tf.Tensor3D =>
        tf.reshape(tf.transpose(tf.reshape(rows, [n, tokens, heads, keyDim]), [0, 2, 1, 3]), [n * heads, tokens, keyDim]);
      const forward = (x: tf.Tensor): tf.Tensor => {
        const n = x.shape[0] as number;
        let s = tf.add(tf.reshape(dense(tf.reshape(x, [n * tokens, width]), wIn), [n, tokens, embed]), pos) as tf.Tensor3D;
        for (let r = 0; r < rounds; r += 1) {
          const rows = tf.reshape(s, [n * tokens, embed]) as tf.Tensor2D;
          const q = split(dense(rows, wq), n);
          const k = split(dense(rows, wk), n);
          const v = split(dense(rows, wv), n);
          const weights = tf.softmax(tf.mul(tf.matMul(q, k, false, true), tf.scalar(scale)));
          const mixed = tf.reshape(tf.transpose(tf.reshape(tf.matMul(weights, v), [n, heads, tokens, keyDim]), [0, 2, 1, 3]), [
            n * tokens,
            embed,
          ]);
          s = tf.add(s, tf.reshape(dense(mixed as tf.Tensor2D, wo), [n, tokens, embed]));
        }
        return tf.reshape(dense(tf.reshape(s, [n * tokens, embed]) as tf.Tensor2D, wOut), x.shape);
      };
      return forward;
    });
  },
};
