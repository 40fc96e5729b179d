/**
 * Seeded weight initialisers: same {@link Rng} state → bit-identical initial weights.
 * Values are generated in JS from the project's own stream (see `rng.ts`) and uploaded
 * once, so initialisation does not depend on the active backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { optionChecks } from '../core/index.js';
import type { Rng } from './rng.js';

/** Initialiser names (Keras / PyTorch conventions noted per entry). */
export const Initializer = {
  /** U(−l, l), l = √(6 / (fanIn + fanOut)) (Glorot & Bengio; Keras default for dense). */
  GLOROT_UNIFORM: 'glorotUniform',
  /** N(0, 2 / fanIn), untruncated (He et al.; PyTorch `kaiming_normal_`), for ReLU stacks. */
  HE_NORMAL: 'heNormal',
  /** U(−l, l), l = √(6 / fanIn) (He uniform), for ReLU stacks. */
  HE_UNIFORM: 'heUniform',
  /** N(0, 1 / fanIn) (LeCun normal), for SELU/tanh stacks. */
  LECUN_NORMAL: 'lecunNormal',
  /** All zeros (biases; the identity start of a seed's output projection). */
  ZEROS: 'zeros',
  /** All ones (normalisation scales). */
  ONES: 'ones',
} as const;

/** Union of {@link Initializer} values. */
export type Initializer = (typeof Initializer)[keyof typeof Initializer];

/** Fan-in and fan-out of a weight shape. */
export interface Fans {
  readonly fanIn: number;
  readonly fanOut: number;
}

/**
 * Keras' fan computation: rank 1 → (n, n); rank 2 `[in, out]`; rank ≥ 3 (conv filters
 * `[…spatial, in, out]`) multiplies both by the receptive field size.
 */
export function computeFans(shape: readonly number[]): Fans {
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0] as number, fanOut: shape[0] as number };
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return { fanIn: receptive * (shape[shape.length - 2] as number), fanOut: receptive * (shape[shape.length - 1] as number) };
}

/** Fills a fresh float32 array for `shape` with the named initialiser. */
export function initializerValues(kind: Initializer, shape: readonly number[], rng: Rng): Float32Array {
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    optionChecks('initializer').fail('shape', 'a list of integers ≥ 0', `[${shape.join(',')}]`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  const { fanIn, fanOut } = computeFans(shape);
  switch (kind) {
    case Initializer.ZEROS:
      return out;
    case Initializer.ONES:
      return out.fill(1);
    case Initializer.GLOROT_UNIFORM:
      return fillUniform(out, Math.sqrt(6 / Math.max(1, fanIn + fanOut)), rng);
    case Initializer.HE_UNIFORM:
      return fillUniform(out, Math.sqrt(6 / Math.max(1, fanIn)), rng);
    case Initializer.HE_NORMAL:
      return fillNormal(out, Math.sqrt(2 / Math.max(1, fanIn)), rng);
    case Initializer.LECUN_NORMAL:
      return fillNormal(out, Math.sqrt(1 / Math.max(1, fanIn)), rng);
    default: {
      const never: never = kind;
      return optionChecks('initializer').fail('kind', 'an Initializer', never);
    }
  }
}

function fillUniform(out: Float32Array, limit: number, rng: Rng): Float32Array {
  for (let i = 0; i < out.length; i += 1) out[i] = (2 * rng.nextFloat() - 1) * limit;
  return out;
}

function fillNormal(out: Float32Array, std: number, rng: Rng): Float32Array {
  for (let i = 0; i < out.length; i += 1) out[i] = rng.nextNormal() * std;
  return out;
}

/** A float32 tensor initialised from `rng` (the caller owns and disposes it). */
export function initTensor(kind: Initializer, shape: readonly number[], rng: Rng): tf.Tensor {
  return tf.tensor(initializerValues(kind, shape, rng), [...shape], 'float32');
}

/**
 * A trainable, **named** variable initialised from `rng`. Give every variable a stable
 * name: checkpoints restore by name, and optimizer slots are named after their variable
 * (see `weights-io.ts`).
 */
export function initVariable(name: string, kind: Initializer, shape: readonly number[], rng: Rng, trainable = true): tf.Variable {
  optionChecks('initVariable').nonEmptyString('name', name);
  const init = initTensor(kind, shape, rng);
  try {
    return tf.variable(init, trainable, name);
  } finally {
    init.dispose();
  }
}
