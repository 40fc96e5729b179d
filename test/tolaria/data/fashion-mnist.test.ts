/**
 * Fashion-MNIST from the `fashion-mnist` package: the fixed stratified split, pixel range,
 * layouts, determinism, and the byte cache (used when valid, rebuilt with a WARNING when
 * corrupt or truncated, never required when the package is missing).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, MemoryTelemetrySink } from '../../../src/core/index.js';
import { TelemetryLevel } from '../../../src/leyline/index.js';
import { initTensorBackend, tf } from '../../../src/tensor/index.js';
import type { Dataset, DatasetSplit } from '../../../src/tolaria/dataset.js';
import { loadDataset } from '../../../src/tolaria/data/datasets.js';
import {
  FASHION_MNIST_CACHE_FILE,
  FASHION_MNIST_SPLIT,
  loadFashionMnist,
  type FashionMnistOptions,
} from '../../../src/tolaria/data/fashion-mnist.js';
import { TolariaEvent } from '../../../src/tolaria/names.js';

const DECODE_TIMEOUT_MS = 120_000;
const NO_PACKAGE = path.join(tmpdir(), 'esper-no-such-package-dir');

let root: string;
let cacheDirectory: string;
let cacheFile: string;
let fmnist: Dataset;

beforeAll(async () => {
  await initTensorBackend();
  root = await mkdtemp(path.join(tmpdir(), 'esper-fmnist-'));
  cacheDirectory = path.join(root, 'datasets');
  cacheFile = path.join(cacheDirectory, FASHION_MNIST_CACHE_FILE);
  fmnist = await loadFashionMnist({ cacheDirectory });
}, DECODE_TIMEOUT_MS);

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Visits `split` through `batch` (the public path) in chunks of at most 5,000 examples. */
function forEachChunk(split: DatasetSplit, visit: (inputs: Float32Array, labels: Int32Array) => void): void {
  for (let start = 0; start < split.size; start += 5000) {
    const batch = split.batch(Int32Array.from({ length: Math.min(5000, split.size - start) }, (_, i) => start + i));
    visit(batch.inputs.dataSync() as Float32Array, batch.labels.dataSync() as Int32Array);
    tf.dispose([batch.inputs, batch.labels]);
  }
}

function labelsOf(split: DatasetSplit): Int32Array {
  const labels = new Int32Array(split.size);
  let offset = 0;
  forEachChunk(split, (_, chunk) => {
    labels.set(chunk, offset);
    offset += chunk.length;
  });
  return labels;
}

/** SHA-256 (first 16 hex digits) of both splits' float inputs and labels: equal digests mean an identical split. */
function digest(d: Dataset): string[] {
  return [d.train, d.validation].map((split) => {
    const hash = createHash('sha256');
    forEachChunk(split, (inputs, labels) => {
      hash.update(new Uint8Array(inputs.buffer, inputs.byteOffset, inputs.byteLength));
      hash.update(new Uint8Array(labels.buffer, labels.byteOffset, labels.byteLength));
    });
    return hash.digest('hex').slice(0, 16);
  });
}

function classCounts(labels: Int32Array): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const label of labels) counts[label] = (counts[label] as number) + 1;
  return counts;
}

async function loadWithTelemetry(options: FashionMnistOptions): Promise<{ dataset: Dataset; sink: MemoryTelemetrySink }> {
  const sink = new MemoryTelemetrySink();
  return { dataset: await loadFashionMnist({ ...options, telemetry: sink }), sink };
}

function warnings(sink: MemoryTelemetrySink): { description: string; attributes: Record<string, string> }[] {
  return sink.packets.flatMap((p) => p.events.filter((e) => e.level === TelemetryLevel.WARNING));
}

describe('loadFashionMnist', () => {
  it('splits the 70,000 images 60,000 train / 10,000 validation, exactly 6,000 / 1,000 per class', () => {
    expect(fmnist.name).toBe('fashion-mnist');
    expect(fmnist.numClasses).toBe(10);
    expect(fmnist.train.size).toBe(FASHION_MNIST_SPLIT.train);
    expect(fmnist.validation.size).toBe(FASHION_MNIST_SPLIT.validation);
    expect(classCounts(labelsOf(fmnist.train))).toEqual(new Array(10).fill(6000));
    expect(classCounts(labelsOf(fmnist.validation))).toEqual(new Array(10).fill(1000));
  });

  it('gives float32 pixels in [0, 1] with the dataset’s mean intensity, and int32 labels', () => {
    for (const split of [fmnist.train, fmnist.validation]) {
      let min = Infinity;
      let max = -Infinity;
      let sum = 0;
      forEachChunk(split, (inputs) => {
        for (const v of inputs) {
          min = Math.min(min, v);
          max = Math.max(max, v);
          sum += v;
        }
      });
      expect(min).toBe(0);
      expect(max).toBe(1);
      // Fashion-MNIST's published mean pixel is 0.286.
      expect(sum / (split.size * 784)).toBeGreaterThan(0.27);
      expect(sum / (split.size * 784)).toBeLessThan(0.3);
    }
    const batch = fmnist.train.batch(Int32Array.of(0, 59_999));
    expect(batch.inputs.dtype).toBe('float32');
    expect(batch.labels.dtype).toBe('int32');
    expect(Array.from(batch.labels.dataSync())).toEqual([0, 9]);
    tf.dispose([batch.inputs, batch.labels]);
  });

  it('holds out every seventh image of each class, in file order with empty entries skipped', async () => {
    const manifest = createRequire(import.meta.url).resolve('fashion-mnist/package.json');
    const file = path.join(path.dirname(manifest), 'src', 'clothes', '0.json');
    const images = (JSON.parse(await readFile(file, 'utf8')) as { data: number[][] }).data.filter((image) => image.length > 0);
    // Class 0 comes first in both splits. Validation example 142 is image 7·142+6 = 1000,
    // which sits after the file's first empty entry.
    const expectPixels = (split: DatasetSplit, index: number, image: number[] | undefined): void => {
      const batch = split.batch(Int32Array.of(index));
      expect(Array.from(batch.inputs.dataSync(), (v) => Math.round(v * 255))).toEqual(image);
      tf.dispose([batch.inputs, batch.labels]);
    };
    expectPixels(fmnist.validation, 0, images[6]);
    expectPixels(fmnist.validation, 142, images[1000]);
    expectPixels(fmnist.train, 0, images[0]);
    expectPixels(fmnist.train, 6, images[7]);
    expectPixels(fmnist.train, 5999, images[6998]);
  });

  it('is the same split on every load and for every seed (pinned checksums)', async () => {
    const first = digest(fmnist);
    expect(first).toEqual(['4bf5c6fcafadd601', '52c9d4c7edfcc32e']);
    const a = await loadDataset('fashion-mnist', { cacheDirectory, seed: 1 });
    const b = await loadDataset('fashion-mnist', { cacheDirectory, seed: 2 });
    expect(digest(a)).toEqual(first);
    expect(digest(b)).toEqual(first);
  });

  it('offers a [28, 28, 1] image layout with the same values', async () => {
    const images = await loadFashionMnist({ cacheDirectory, layout: 'image' });
    expect(fmnist.inputShape).toEqual([784]);
    expect(images.inputShape).toEqual([28, 28, 1]);
    const indices = Int32Array.of(3, 31_000, 59_999);
    const image = images.train.batch(indices);
    const flat = fmnist.train.batch(indices);
    expect(image.inputs.shape).toEqual([3, 28, 28, 1]);
    expect(flat.inputs.shape).toEqual([3, 784]);
    expect(image.inputs.dataSync()).toEqual(flat.inputs.dataSync());
    tf.dispose([image.inputs, image.labels, flat.inputs, flat.labels]);
  });

  it('rejects an unknown layout with INVALID_ARGUMENT', async () => {
    const error = await loadFashionMnist({ cacheDirectory, layout: 'nchw' as never }).catch((e: unknown) => e);
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
  });

  it('reads a valid cache without the package and without telemetry', async () => {
    const { dataset, sink } = await loadWithTelemetry({ cacheDirectory, packageDirectory: NO_PACKAGE });
    expect(sink.packets).toHaveLength(0);
    expect(digest(dataset)).toEqual(digest(fmnist));
  });

  it(
    'rebuilds a cache with one corrupted byte, with a WARNING, and the rebuilt cache verifies',
    async () => {
      const original = await readFile(cacheFile);
      const corrupted = Uint8Array.from(original);
      const middle = Math.floor(corrupted.length / 2);
      corrupted[middle] = ((corrupted[middle] as number) + 1) % 256;
      await writeFile(cacheFile, corrupted);
      const { dataset, sink } = await loadWithTelemetry({ cacheDirectory });
      expect(warnings(sink)).toEqual([
        expect.objectContaining({
          description: TolariaEvent.DATASET_CACHE_REBUILT,
          attributes: { file: cacheFile, reason: 'checksum mismatch' },
        }),
      ]);
      expect(digest(dataset)).toEqual(digest(fmnist));
      expect(Buffer.compare(await readFile(cacheFile), original)).toBe(0);
    },
    DECODE_TIMEOUT_MS,
  );

  it(
    'rebuilds a truncated cache with a WARNING',
    async () => {
      const size = (await stat(cacheFile)).size;
      await truncate(cacheFile, size - 1000);
      const { dataset, sink } = await loadWithTelemetry({ cacheDirectory });
      expect(warnings(sink).map((w) => w.description)).toEqual([TolariaEvent.DATASET_CACHE_REBUILT]);
      expect(warnings(sink)[0]?.attributes['reason']).toMatch(/^length/);
      expect((await stat(cacheFile)).size).toBe(size);
      expect(digest(dataset)).toEqual(digest(fmnist));
    },
    DECODE_TIMEOUT_MS,
  );

  it(
    'still loads when the cache cannot be written, with a WARNING',
    async () => {
      const blocker = path.join(root, 'a-file');
      await writeFile(blocker, 'not a directory');
      const { dataset, sink } = await loadWithTelemetry({ cacheDirectory: path.join(blocker, 'datasets') });
      expect(warnings(sink).map((w) => w.description)).toEqual([TolariaEvent.DATASET_CACHE_WRITE_FAILED]);
      expect(dataset.train.size).toBe(60_000);
    },
    DECODE_TIMEOUT_MS,
  );

  it('without a valid cache, a missing package is TOLARIA_DATASET_NOT_FOUND naming the package', async () => {
    const error = await loadFashionMnist({ cacheDirectory: path.join(root, 'empty'), packageDirectory: NO_PACKAGE }).catch(
      (e: unknown) => e,
    );
    expect(isEsperError(error, ErrorCode.TOLARIA_DATASET_NOT_FOUND)).toBe(true);
    expect(isEsperError(error) && error.details).toEqual({ package: 'fashion-mnist', version: '1.1.0' });
  });
});
