/**
 * ArraySplit: batches gathered by index, byte inputs scaled to [0, 1], bad indices refused
 * before any tensor exists.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../../src/core/index.js';
import { initTensorBackend, tf } from '../../../src/tensor/index.js';
import { ArraySplit } from '../../../src/tolaria/data/array-split.js';

beforeAll(async () => {
  await initTensorBackend();
});

// Three examples of shape [2, 2]: example i holds i*10 + 0…3.
const floatSplit = (): ArraySplit =>
  new ArraySplit({
    inputShape: [2, 2],
    inputs: Float32Array.from({ length: 12 }, (_, k) => Math.floor(k / 4) * 10 + (k % 4)),
    labels: Int32Array.of(7, 8, 9),
  });

describe('ArraySplit', () => {
  it('returns the examples at the given indices, in that order, repeats allowed', () => {
    const split = floatSplit();
    const batch = split.batch(Int32Array.of(2, 0, 2));
    expect(batch.inputs.shape).toEqual([3, 2, 2]);
    expect(Array.from(batch.inputs.dataSync())).toEqual([20, 21, 22, 23, 0, 1, 2, 3, 20, 21, 22, 23]);
    expect(Array.from(batch.labels.dataSync())).toEqual([9, 7, 9]);
    expect(batch.labels.dtype).toBe('int32');
    expect(split.labelAt(1)).toBe(8);
    tf.dispose([batch.inputs, batch.labels]);
  });

  it('scales byte inputs by 1/255 into float32 [0, 1]', () => {
    const split = new ArraySplit({ inputShape: [3], inputs: Uint8Array.of(0, 128, 255, 1, 2, 3), labels: Int32Array.of(0, 1) });
    const batch = split.batch(Int32Array.of(0));
    expect(batch.inputs.dtype).toBe('float32');
    expect(Array.from(batch.inputs.dataSync())).toEqual([0, Math.fround(128 / 255), 1]);
    tf.dispose([batch.inputs, batch.labels]);
  });

  it('allocates exactly the two tensors it returns, and none for an out-of-range index', () => {
    const split = floatSplit();
    const before = tf.memory().numTensors;
    const batch = split.batch(Int32Array.of(0, 1));
    expect(tf.memory().numTensors).toBe(before + 2);
    tf.dispose([batch.inputs, batch.labels]);
    for (const bad of [3, -1]) {
      let error: unknown;
      try {
        split.batch(Int32Array.of(0, bad));
      } catch (e) {
        error = e;
      }
      expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses inputs whose length does not match the labels and shape', () => {
    expect(() => new ArraySplit({ inputShape: [2], inputs: new Float32Array(5), labels: new Int32Array(3) })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });
});
