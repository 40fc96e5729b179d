/**
 * Seed-site hooks for the host tests: a small residual "seed" `x + alpha·tanh(seed(x))`
 * (a dense or 1×1-conv projection), in the three gradient modes Kasmina needs to tell
 * apart, recording what each call saw.
 */
import { Initializer, initVariable, seededRng, tf } from '../../../src/tensor/index.js';
import type { SeedSiteHook } from '../../../src/tolaria/host-model.js';
import { stopGradient } from '../../../src/tensor/index.js';

/**
 * - `isolated`: `x + alpha·seed(stopGradient(x))` — the seed trains, the host's gradients
 *   see the seed's contribution as a constant.
 * - `constant`: `x + stopGradient(alpha·seed(x))` — the reference for `isolated`'s host
 *   gradients (same forward value, nothing flows through the seed).
 * - `joint`: `x + alpha·seed(x)` — gradients flow through the seed into the host.
 */
export type HookMode = 'isolated' | 'constant' | 'joint';

/** A residual seed for a DENSE (`[features]`) or CONV (`[h, w, c]`) site. */
export class ResidualSeedHook implements SeedSiteHook {
  readonly weight: tf.Variable;
  readonly seenShapes: number[][] = [];
  readonly seenTraining: boolean[] = [];

  constructor(
    name: string,
    readonly shape: readonly number[],
    readonly mode: HookMode,
    readonly alpha = 0.5,
    seed = 99,
  ) {
    const channels = shape[shape.length - 1] as number;
    const weightShape = shape.length === 1 ? [channels, channels] : [1, 1, channels, channels];
    this.weight = initVariable(`${name}/weight`, Initializer.GLOROT_UNIFORM, weightShape, seededRng(seed));
  }

  apply(x: tf.Tensor, context: { readonly training: boolean }): tf.Tensor {
    this.seenShapes.push([...x.shape]);
    this.seenTraining.push(context.training);
    const input = this.mode === 'isolated' ? stopGradient(x) : x;
    const projected =
      this.shape.length === 1 ? tf.matMul(input, this.weight) : tf.conv2d(input as tf.Tensor4D, this.weight as tf.Tensor4D, 1, 'same');
    const delta = tf.mul(tf.scalar(this.alpha), tf.tanh(projected));
    return tf.add(x, this.mode === 'constant' ? stopGradient(delta) : delta);
  }

  trainableVariables(): readonly tf.Variable[] {
    return [this.weight];
  }

  dispose(): void {
    this.weight.dispose();
  }
}

/** A hook that returns an activation of the wrong shape (drops the last feature). */
export class ShapeBreakingHook implements SeedSiteHook {
  apply(x: tf.Tensor): tf.Tensor {
    const size = x.shape.map((d, i) => (i === x.rank - 1 ? d - 1 : d));
    return tf.slice(
      x,
      x.shape.map(() => 0),
      size,
    );
  }

  trainableVariables(): readonly tf.Variable[] {
    return [];
  }
}
