/**
 * Small synthetic 2-D binary classification tasks for fast tests: XOR, two spirals and two
 * moons. Every point comes from the project's seeded stream: the training split from
 * `seededRng(seed).fork(1)`, the validation split from `.fork(2)`, so the same seed gives
 * the same data and the two splits are independent. Example `i` has class `i mod 2`, so
 * both classes are equally represented (odd sizes: class 0 has one more).
 */
import { optionChecks } from '../../core/index.js';
import { seededRng, type Rng } from '../../tensor/index.js';
import type { Dataset } from '../dataset.js';
import { ArraySplit } from './array-split.js';

/** Options every synthetic task takes. */
export interface SyntheticOptions {
  /** Seed of the data (non-negative safe integer). */
  readonly seed: number;
  /**
   * Training examples.
   * @default 1000
   */
  readonly trainSize?: number;
  /**
   * Validation examples.
   * @default 200
   */
  readonly validationSize?: number;
  /**
   * Standard deviation of the Gaussian noise added to each coordinate.
   * @default 0 (XOR), 0.02 (spirals), 0.1 (moons)
   */
  readonly noise?: number;
}

/** Options of {@link spiralsDataset}. */
export interface SpiralsOptions extends SyntheticOptions {
  /**
   * Turns each arm makes around the centre.
   * @default 1.5
   */
  readonly turns?: number;
}

/** Defaults of {@link SyntheticOptions}. */
export const SYNTHETIC_DEFAULTS = {
  trainSize: 1000,
  validationSize: 200,
  noise: { xor: 0, spirals: 0.02, moons: 0.1 },
  turns: 1.5,
} as const;

/** Draws one point of class `label` (0 or 1), noise-free. */
type PointSampler = (label: number, rng: Rng) => readonly [number, number];

const check = optionChecks('SyntheticOptions');

function assertCount(value: number, field: string): void {
  check.integer(field, value, { min: 1 });
}

function assertNonNegative(value: number, field: string): void {
  check.nonNegative(field, value);
}

function sampleSplit(size: number, noise: number, rng: Rng, sample: PointSampler): ArraySplit {
  const inputs = new Float32Array(size * 2);
  const labels = new Int32Array(size);
  for (let i = 0; i < size; i += 1) {
    const label = i % 2;
    const [x, y] = sample(label, rng);
    // Always draw the noise, so noise = 0 and noise > 0 consume the stream alike.
    inputs[2 * i] = x + noise * rng.nextNormal();
    inputs[2 * i + 1] = y + noise * rng.nextNormal();
    labels[i] = label;
  }
  return new ArraySplit({ inputShape: [2], inputs, labels });
}

function syntheticDataset(name: string, options: SyntheticOptions, defaultNoise: number, sample: PointSampler): Dataset {
  const trainSize = options.trainSize ?? SYNTHETIC_DEFAULTS.trainSize;
  const validationSize = options.validationSize ?? SYNTHETIC_DEFAULTS.validationSize;
  const noise = options.noise ?? defaultNoise;
  assertCount(trainSize, 'trainSize');
  assertCount(validationSize, 'validationSize');
  assertNonNegative(noise, 'noise');
  const root = seededRng(options.seed);
  return {
    name,
    inputShape: [2],
    numClasses: 2,
    train: sampleSplit(trainSize, noise, root.fork(1), sample),
    validation: sampleSplit(validationSize, noise, root.fork(2), sample),
  };
}

/**
 * XOR: points in (−1, 1)²; class 0 in the quadrants where x and y share a sign, class 1
 * where they differ.
 */
export function xorDataset(options: SyntheticOptions): Dataset {
  return syntheticDataset('xor', options, SYNTHETIC_DEFAULTS.noise.xor, (label, rng) => {
    const sign = rng.nextFloat() < 0.5 ? -1 : 1;
    const x = sign * rng.nextFloat();
    const y = sign * rng.nextFloat();
    return [x, label === 0 ? y : -y];
  });
}

/**
 * Two interleaved spirals in the unit disc: radius `0.05 + 0.95·t` at angle
 * `2π·turns·t`, t ~ U(0, 1); class 1 is class 0 rotated by π.
 */
export function spiralsDataset(options: SpiralsOptions): Dataset {
  const turns = options.turns ?? SYNTHETIC_DEFAULTS.turns;
  check.positive('turns', turns);
  return syntheticDataset('spirals', options, SYNTHETIC_DEFAULTS.noise.spirals, (label, rng) => {
    const t = rng.nextFloat();
    const radius = 0.05 + 0.95 * t;
    const angle = 2 * Math.PI * turns * t + label * Math.PI;
    return [radius * Math.cos(angle), radius * Math.sin(angle)];
  });
}

/**
 * Two moons (scikit-learn's `make_moons` geometry, with θ ~ U(0, π) instead of evenly
 * spaced): class 0 on `(cos θ, sin θ)`, class 1 on `(1 − cos θ, 0.5 − sin θ)`.
 */
export function moonsDataset(options: SyntheticOptions): Dataset {
  return syntheticDataset('moons', options, SYNTHETIC_DEFAULTS.noise.moons, (label, rng) => {
    const theta = Math.PI * rng.nextFloat();
    return label === 0 ? [Math.cos(theta), Math.sin(theta)] : [1 - Math.cos(theta), 0.5 - Math.sin(theta)];
  });
}
