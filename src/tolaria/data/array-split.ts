/**
 * {@link ArraySplit}: a {@link DatasetSplit} held in typed arrays, example-major. Batches
 * are gathered in JS and uploaded as two tensors, so building one allocates exactly the
 * two tensors it returns (nothing to leak when an index is bad: indices are checked
 * before any tensor exists).
 */
import { ErrorCode, EsperError } from '../../core/index.js';
import { tf } from '../../tensor/index.js';
import type { Batch, DatasetSplit } from '../dataset.js';

/** Contents of an {@link ArraySplit}. */
export interface ArraySplitOptions {
  /** Per-example input shape (batch excluded). */
  readonly inputShape: readonly number[];
  /**
   * All examples' inputs, example-major, `size × prod(inputShape)` values. A `Uint8Array`
   * holds bytes that batches scale by `1/255` into [0, 1] (a quarter of float32 memory —
   * CIFAR-10's training set is 150 MB as bytes, 600 MB as float32).
   */
  readonly inputs: Float32Array | Uint8Array;
  /** Class index of each example. */
  readonly labels: Int32Array;
}

/** A dataset split backed by typed arrays. */
export class ArraySplit implements DatasetSplit {
  readonly size: number;
  /** Per-example input shape (batch excluded). */
  readonly inputShape: readonly number[];
  private readonly exampleLength: number;
  private readonly inputs: Float32Array | Uint8Array;
  private readonly labels: Int32Array;

  constructor(options: ArraySplitOptions) {
    this.exampleLength = options.inputShape.reduce((a, b) => a * b, 1);
    if (options.inputs.length !== options.labels.length * this.exampleLength) {
      throw new EsperError(
        ErrorCode.INVALID_ARGUMENT,
        `dataset split: ${options.inputs.length} input values for ${options.labels.length} examples of [${options.inputShape.join(', ')}]`,
        { details: { field: 'inputs' } },
      );
    }
    this.size = options.labels.length;
    this.inputShape = [...options.inputShape];
    this.inputs = options.inputs;
    this.labels = options.labels;
  }

  /** The class of example `index` (no tensor). */
  labelAt(index: number): number {
    this.assertIndex(index, 0);
    return this.labels[index] as number;
  }

  batch(indices: Int32Array): Batch {
    for (let i = 0; i < indices.length; i += 1) this.assertIndex(indices[i] as number, i);
    const n = indices.length;
    const len = this.exampleLength;
    const inputs = new Float32Array(n * len);
    const labels = new Int32Array(n);
    const source = this.inputs;
    for (let i = 0; i < n; i += 1) {
      const index = indices[i] as number;
      const start = index * len;
      if (source instanceof Float32Array) {
        inputs.set(source.subarray(start, start + len), i * len);
      } else {
        const offset = i * len;
        for (let j = 0; j < len; j += 1) inputs[offset + j] = (source[start + j] as number) / 255;
      }
      labels[i] = this.labels[index] as number;
    }
    const x = tf.tensor(inputs, [n, ...this.inputShape], 'float32');
    try {
      return { inputs: x, labels: tf.tensor1d(labels, 'int32') };
    } catch (error) {
      x.dispose();
      throw error;
    }
  }

  private assertIndex(index: number, position: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new EsperError(
        ErrorCode.INVALID_ARGUMENT,
        `dataset split: index ${index} at position ${position} is outside [0, ${this.size})`,
        {
          details: { field: 'indices', index, position },
        },
      );
    }
  }
}
