/**
 * MNIST from the `mnist` package: the fixed stratified split, value range, label balance,
 * layouts and determinism.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { crc32c } from '../../../src/core/index.js';
import { initTensorBackend, tf } from '../../../src/tensor/index.js';
import type { Dataset, DatasetSplit } from '../../../src/tolaria/dataset.js';
import { loadMnist, MNIST_CLASS_COUNTS, MNIST_SPLIT } from '../../../src/tolaria/data/mnist.js';

let mnist: Dataset;

beforeAll(async () => {
  await initTensorBackend();
  mnist = await loadMnist();
});

interface Contents {
  readonly inputs: Float32Array;
  readonly labels: Int32Array;
}

const memo = new WeakMap<DatasetSplit, Contents>();

/** Every example of `split`, read once per split through `batch` (the public path). */
function contents(split: DatasetSplit): Contents {
  const known = memo.get(split);
  if (known !== undefined) return known;
  const batch = split.batch(Int32Array.from({ length: split.size }, (_, i) => i));
  const out = { inputs: Float32Array.from(batch.inputs.dataSync()), labels: Int32Array.from(batch.labels.dataSync()) };
  tf.dispose([batch.inputs, batch.labels]);
  memo.set(split, out);
  return out;
}

const bytes = (a: Float32Array | Int32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

const classCounts = (labels: Int32Array): number[] => {
  const counts = new Array<number>(10).fill(0);
  for (const label of labels) counts[label] = (counts[label] as number) + 1;
  return counts;
};

describe('loadMnist', () => {
  it('splits the 10,000 digits 8,500 train / 1,500 validation, 15% of each class held out', () => {
    expect(mnist.name).toBe('mnist');
    expect(mnist.numClasses).toBe(10);
    expect(mnist.inputShape).toEqual([784]);
    expect(mnist.train.size).toBe(8500);
    expect(mnist.validation.size).toBe(1500);
    expect(MNIST_SPLIT.validationPerClass).toEqual([150, 169, 149, 155, 147, 129, 152, 160, 142, 147]);
    expect(classCounts(contents(mnist.train).labels)).toEqual(MNIST_SPLIT.trainPerClass);
    expect(classCounts(contents(mnist.validation).labels)).toEqual(MNIST_SPLIT.validationPerClass);
    MNIST_CLASS_COUNTS.forEach((n, digit) => {
      expect(Math.abs((MNIST_SPLIT.validationPerClass[digit] as number) - 0.15 * n)).toBeLessThan(1);
    });
  });

  it('gives float32 inputs in [0, 1] that look like digits, and int32 labels 0…9', () => {
    const { inputs, labels } = contents(mnist.validation);
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    for (const v of inputs) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
    }
    expect(min).toBe(0);
    expect(max).toBeCloseTo(1, 2);
    // Real MNIST: ~13% mean intensity (mostly black background).
    expect(sum / inputs.length).toBeGreaterThan(0.08);
    expect(sum / inputs.length).toBeLessThan(0.2);
    expect(labels.every((l) => Number.isInteger(l) && l >= 0 && l <= 9)).toBe(true);
    const batch = mnist.train.batch(Int32Array.of(0, 1));
    expect(batch.inputs.dtype).toBe('float32');
    expect(batch.labels.dtype).toBe('int32');
    tf.dispose([batch.inputs, batch.labels]);
  });

  it('keeps the class balance of the source (every class 8.5%–11.5% of each split)', () => {
    for (const split of [mnist.train, mnist.validation]) {
      for (const count of classCounts(contents(split).labels)) {
        expect(count / split.size).toBeGreaterThan(0.085);
        expect(count / split.size).toBeLessThan(0.115);
      }
    }
  });

  it('is the same split on every load and every machine (pinned checksums, independent of any seed)', async () => {
    const again = await loadMnist();
    const first = contents(mnist.validation);
    const second = contents(again.validation);
    // (Checksums rather than toEqual: deep-equal over 1.2 M elements takes seconds.)
    expect(crc32c(bytes(second.inputs))).toBe(crc32c(bytes(first.inputs)));
    expect(crc32c(bytes(second.labels))).toBe(crc32c(bytes(first.labels)));
    expect(crc32c(bytes(first.inputs)).toString(16)).toBe('a23afcaa');
    expect(crc32c(bytes(first.labels)).toString(16)).toBe('7cfa6716');
    const train = contents(mnist.train);
    expect(crc32c(bytes(train.inputs)).toString(16)).toBe('637b1313');
    expect(crc32c(bytes(train.labels)).toString(16)).toBe('c624ccf8');
  });

  it('offers a [28, 28, 1] image layout with the same values', async () => {
    const images = await loadMnist({ layout: 'image' });
    expect(images.inputShape).toEqual([28, 28, 1]);
    const indices = Int32Array.of(5, 4000, 8499);
    const image = images.train.batch(indices);
    const flat = mnist.train.batch(indices);
    expect(image.inputs.shape).toEqual([3, 28, 28, 1]);
    expect(flat.inputs.shape).toEqual([3, 784]);
    expect(image.inputs.dataSync()).toEqual(flat.inputs.dataSync());
    expect(image.labels.dataSync()).toEqual(flat.labels.dataSync());
    tf.dispose([image.inputs, image.labels, flat.inputs, flat.labels]);
  });

  it('builds batches without leaking tensors', () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i += 1) {
      const batch = mnist.train.batch(Int32Array.from({ length: 64 }, (_, j) => (i * 64 + j) * 7));
      expect(tf.memory().numTensors).toBe(before + 2);
      tf.dispose([batch.inputs, batch.labels]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
