/**
 * loadDataset: datasets chosen by name, as the CLI does.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../../src/core/index.js';
import { initTensorBackend, tf } from '../../../src/tensor/index.js';
import { DATASET_NAMES, isDatasetName, loadDataset } from '../../../src/tolaria/data/datasets.js';
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
  it('knows mnist, cifar10 and the synthetic tasks', () => {
    expect([...DATASET_NAMES]).toEqual(['mnist', 'cifar10', 'xor', 'spirals', 'moons']);
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

  it('rejects an unknown name and cifar10 without a directory with INVALID_ARGUMENT', async () => {
    expect(await rejectsWith(loadDataset('imagenet'), ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect(await rejectsWith(loadDataset('cifar10'), ErrorCode.INVALID_ARGUMENT)).toBe(true);
  });
});
