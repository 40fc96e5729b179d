/**
 * CIFAR-10 from the standard binary distribution (`cifar-10-binary.tar.gz`, extracted to
 * `cifar-10-batches-bin/`) in a local directory. Nothing is downloaded.
 *
 * Format (https://www.cs.toronto.edu/~kriz/cifar.html, "binary version"): each file is a
 * sequence of 3,073-byte records: 1 label byte (0…9), then 3,072 pixel bytes — the 1,024
 * red values, then 1,024 green, then 1,024 blue, each plane row-major 32×32. Records are
 * transposed here to NHWC (`[32, 32, 3]`), kept as bytes, and scaled to float32 [0, 1]
 * when a batch is built.
 *
 * Split: the dataset's own — `data_batch_1.bin` … `data_batch_5.bin` (50,000 images)
 * train, `test_batch.bin` (10,000) is the validation split.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, EsperError } from '../../core/index.js';
import type { Dataset } from '../dataset.js';
import { ArraySplit } from './array-split.js';

/** Side of a CIFAR-10 image, in pixels. */
export const CIFAR10_IMAGE_SIDE = 32;
/** Colour channels. */
export const CIFAR10_CHANNELS = 3;
/** Pixel bytes per image (one plane per channel). */
export const CIFAR10_IMAGE_BYTES = CIFAR10_IMAGE_SIDE * CIFAR10_IMAGE_SIDE * CIFAR10_CHANNELS;
/** Bytes per record: 1 label byte + {@link CIFAR10_IMAGE_BYTES}. */
export const CIFAR10_RECORD_BYTES = 1 + CIFAR10_IMAGE_BYTES;
/** Training files, in the order their records are concatenated. */
export const CIFAR10_TRAIN_FILES: readonly string[] = [
  'data_batch_1.bin',
  'data_batch_2.bin',
  'data_batch_3.bin',
  'data_batch_4.bin',
  'data_batch_5.bin',
];
/** The test file, used as the validation split. */
export const CIFAR10_TEST_FILE = 'test_batch.bin';
/** Class names by label (`batches.meta.txt`). */
export const CIFAR10_CLASS_NAMES: readonly string[] = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

/** Options of {@link loadCifar10}. */
export interface Cifar10Options {
  /** Directory holding the `.bin` files (typically `…/cifar-10-batches-bin`). */
  readonly directory: string;
}

const PLANE = CIFAR10_IMAGE_SIDE * CIFAR10_IMAGE_SIDE;

function assertRecordSize(sizeBytes: number, file: string): void {
  if (sizeBytes === 0 || sizeBytes % CIFAR10_RECORD_BYTES !== 0) {
    throw new EsperError(
      ErrorCode.TOLARIA_DATASET_CORRUPT,
      `CIFAR-10: ${file} is ${sizeBytes} bytes, not a positive multiple of the ${CIFAR10_RECORD_BYTES}-byte record`,
      { details: { file, sizeBytes } },
    );
  }
}

/** Decodes the records of `bytes` into `images` (NHWC) and `labels` from example `first` on. */
function decodeInto(bytes: Uint8Array, file: string, images: Uint8Array, labels: Int32Array, first: number): void {
  assertRecordSize(bytes.length, file);
  const count = bytes.length / CIFAR10_RECORD_BYTES;
  for (let r = 0; r < count; r += 1) {
    const base = r * CIFAR10_RECORD_BYTES;
    const label = bytes[base] as number;
    if (label >= CIFAR10_CLASS_NAMES.length) {
      throw new EsperError(ErrorCode.TOLARIA_DATASET_CORRUPT, `CIFAR-10: ${file} record ${r} has label ${label} (expected 0…9)`, {
        details: { file, record: r },
      });
    }
    labels[first + r] = label;
    const pixels = base + 1;
    const out = (first + r) * CIFAR10_IMAGE_BYTES;
    for (let p = 0; p < PLANE; p += 1) {
      for (let c = 0; c < CIFAR10_CHANNELS; c += 1) {
        images[out + p * CIFAR10_CHANNELS + c] = bytes[pixels + c * PLANE + p] as number;
      }
    }
  }
}

/**
 * Decodes CIFAR-10 binary records into NHWC bytes and labels. `file` names the source in
 * errors. Throws TOLARIA_DATASET_CORRUPT when the size is not a positive multiple of
 * {@link CIFAR10_RECORD_BYTES} or a label is not 0…9.
 */
export function decodeCifar10Records(bytes: Uint8Array, file: string): { readonly images: Uint8Array; readonly labels: Int32Array } {
  assertRecordSize(bytes.length, file);
  const count = bytes.length / CIFAR10_RECORD_BYTES;
  const images = new Uint8Array(count * CIFAR10_IMAGE_BYTES);
  const labels = new Int32Array(count);
  decodeInto(bytes, file, images, labels, 0);
  return { images, labels };
}

/**
 * Reads `files` into one split. Sizes are checked first, then the files are read one at a
 * time straight into the final arrays, so peak memory is the split plus one raw file
 * (≈ 180 MB for the training set) rather than every file three times over.
 */
async function readSplit(directory: string, files: readonly string[]): Promise<ArraySplit> {
  const paths = files.map((name) => path.join(directory, name));
  const sizes = await Promise.all(paths.map(async (file) => (await stat(file)).size));
  sizes.forEach((size, i) => assertRecordSize(size, paths[i] as string));
  const total = sizes.reduce((n, size) => n + size / CIFAR10_RECORD_BYTES, 0);
  const images = new Uint8Array(total * CIFAR10_IMAGE_BYTES);
  const labels = new Int32Array(total);
  let first = 0;
  for (const [i, file] of paths.entries()) {
    const bytes = new Uint8Array(await readFile(file));
    if (bytes.length !== sizes[i]) {
      throw new EsperError(ErrorCode.TOLARIA_DATASET_CORRUPT, `CIFAR-10: ${file} changed size while being read`, { details: { file } });
    }
    decodeInto(bytes, file, images, labels, first);
    first += bytes.length / CIFAR10_RECORD_BYTES;
  }
  return new ArraySplit({ inputShape: [CIFAR10_IMAGE_SIDE, CIFAR10_IMAGE_SIDE, CIFAR10_CHANNELS], inputs: images, labels });
}

/**
 * Reads CIFAR-10 from `directory`: inputs `[32, 32, 3]` float32 in [0, 1], labels int32.
 * Throws TOLARIA_DATASET_NOT_FOUND when the directory or any of the six files is missing
 * (naming every missing file), TOLARIA_DATASET_CORRUPT for a malformed file.
 */
export async function loadCifar10(options: Cifar10Options): Promise<Dataset> {
  const directory = path.resolve(options.directory);
  const isDirectory = await stat(directory).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDirectory) {
    throw new EsperError(ErrorCode.TOLARIA_DATASET_NOT_FOUND, `CIFAR-10: ${directory} is not a directory`, { details: { directory } });
  }
  const required = [...CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE];
  const present = await Promise.all(
    required.map((name) =>
      stat(path.join(directory, name)).then(
        (s) => s.isFile(),
        () => false,
      ),
    ),
  );
  const missing = required.filter((_, i) => present[i] !== true);
  if (missing.length > 0) {
    throw new EsperError(
      ErrorCode.TOLARIA_DATASET_NOT_FOUND,
      `CIFAR-10: missing ${missing.join(', ')} in ${directory} (expected the extracted cifar-10-batches-bin directory)`,
      { details: { directory, missing: missing.join(',') } },
    );
  }
  const train = await readSplit(directory, CIFAR10_TRAIN_FILES);
  const validation = await readSplit(directory, [CIFAR10_TEST_FILE]);
  return {
    name: 'cifar10',
    inputShape: [CIFAR10_IMAGE_SIDE, CIFAR10_IMAGE_SIDE, CIFAR10_CHANNELS],
    numClasses: CIFAR10_CLASS_NAMES.length,
    train,
    validation,
  };
}
