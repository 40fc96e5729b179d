/**
 * loadDataset: datasets chosen by name, as the CLI does.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../../src/core/index.js';
import { initTensorBackend, tf } from '../../../src/tensor/index.js';
import { writeDatasetCache } from '../../../src/tolaria/data/byte-dataset-cache.js';
import { DATASET_NAMES, isDatasetName, loadDataset } from '../../../src/tolaria/data/datasets.js';
import { FASHION_MNIST_CACHE_FILE, FASHION_MNIST_CACHE_SHAPE, FASHION_MNIST_SPLIT } from '../../../src/tolaria/data/fashion-mnist.js';
import { moonsDataset } from '../../../src/tolaria/data/synthetic.js';

beforeAll(async () => {
  await initTensorBackend();
});

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<boolean> {
  try {
    await promise;
  } catch (error) {
    return isEsperError(error) && error.code === code;
  }
  return false;
}

describe('loadDataset', () => {
  it('knows mnist, fashion-mnist, cifar10 and the synthetic tasks', () => {
    expect([...DATASET_NAMES]).toEqual(['mnist', 'fashion-mnist', 'cifar10', 'xor', 'spirals', 'moons']);
    expect(isDatasetName('moons')).toBe(true);
    expect(isDatasetName('imagenet')).toBe(false);
  });

  it('builds a synthetic task by name with the same data as its function', async () => {
    const named = await loadDataset('moons', { seed: 4, trainSize: 20 });
    const direct = moonsDataset({ seed: 4, trainSize: 20 });
    const indices = Int32Array.from({ length: 20 }, (_, i) => i);
    const a = named.train.batch(indices);
    const b = direct.train.batch(indices);
    expect(a.inputs.dataSync()).toEqual(b.inputs.dataSync());
    tf.dispose([a.inputs, a.labels, b.inputs, b.labels]);
  });

  it('loads MNIST in the requested layout', async () => {
    const d = await loadDataset('mnist', { layout: 'image' });
    expect(d.inputShape).toEqual([28, 28, 1]);
  });

  it('loads Fashion-MNIST from the given cache directory in the requested layout', async () => {
    // A valid cache file of the right shape (blank images, labels i mod 10): read by name
    // without decoding the package, which the fashion-mnist tests cover.
    const root = await mkdtemp(path.join(tmpdir(), 'esper-datasets-'));
    try {
      const { train, validation } = FASHION_MNIST_SPLIT;
      const split = (n: number) => ({ inputs: new Uint8Array(n * 784), labels: Uint8Array.from({ length: n }, (_, i) => i % 10) });
      await writeDatasetCache(path.join(root, FASHION_MNIST_CACHE_FILE), FASHION_MNIST_CACHE_SHAPE, {
        train: split(train),
        validation: split(validation),
      });
      const d = await loadDataset('fashion-mnist', { layout: 'image', cacheDirectory: root });
      expect(d.name).toBe('fashion-mnist');
      expect(d.inputShape).toEqual([28, 28, 1]);
      const batch = d.validation.batch(Int32Array.of(9_999));
      expect(Array.from(batch.labels.dataSync())).toEqual([9]);
      tf.dispose([batch.inputs, batch.labels]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('rejects an unknown name and cifar10 without a directory with INVALID_ARGUMENT', async () => {
    expect(await rejectsWith(loadDataset('imagenet'), ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect(await rejectsWith(loadDataset('cifar10'), ErrorCode.INVALID_ARGUMENT)).toBe(true);
  });
});
