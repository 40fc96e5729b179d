/**
 * {@link ValueSplit}: a {@link DatasetSplit} of float inputs and float targets (a `values`
 * dataset: regression), example-major in typed arrays. A batch is exactly the two tensors
 * it returns: `inputs` `[batch, ...inputShape]` and `labels` `[batch, outputs]` float32.
 */
import { ErrorCode, EsperError } from '../../core/index.js';
import { tf } from '../../tensor/index.js';
import type { Batch, DatasetSplit } from '../dataset.js';

/** Contents of a {@link ValueSplit}. */
export interface ValueSplitOptions {
  /** Per-example input shape (batch excluded). */
  readonly inputShape: readonly number[];
  /** Values per example's target. */
  readonly outputs: number;
  /** All examples' inputs, example-major. */
  readonly inputs: Float32Array;
  /** All examples' targets, example-major, `size × outputs` values. */
  readonly targets: Float32Array;
}

/** A regression split backed by typed arrays. */
export class ValueSplit implements DatasetSplit {
  readonly size: number;
  readonly inputShape: readonly number[];
  readonly outputs: number;
  readonly #exampleLength: number;
  readonly #inputs: Float32Array;
  readonly #targets: Float32Array;

  /** @throws EsperError INVALID_ARGUMENT when the arrays do not hold the same number of whole examples */
  constructor(options: ValueSplitOptions) {
    this.#exampleLength = options.inputShape.reduce((a, b) => a * b, 1);
    const outputs = options.outputs;
    const size = Number.isInteger(outputs) && outputs >= 1 ? options.targets.length / outputs : Number.NaN;
    if (!Number.isInteger(size) || options.inputs.length !== size * this.#exampleLength) {
      throw new EsperError(
        ErrorCode.INVALID_ARGUMENT,
        `value split: ${options.inputs.length} input values and ${options.targets.length} target values are not whole examples of [${options.inputShape.join(', ')}] → [${outputs}]`,
        { details: { field: 'targets' } },
      );
    }
    this.size = size;
    this.inputShape = [...options.inputShape];
    this.outputs = outputs;
    this.#inputs = options.inputs;
    this.#targets = options.targets;
  }

  batch(indices: Int32Array): Batch {
    for (const [position, index] of indices.entries()) {
      if (!Number.isInteger(index) || index < 0 || index >= this.size) {
        throw new EsperError(
          ErrorCode.INVALID_ARGUMENT,
          `value split: index ${index} at position ${position} is outside [0, ${this.size})`,
          {
            details: { field: 'indices', index, position },
          },
        );
      }
    }
    const n = indices.length;
    const [len, outputs] = [this.#exampleLength, this.outputs];
    const inputs = new Float32Array(n * len);
    const targets = new Float32Array(n * outputs);
    for (const [i, index] of indices.entries()) {
      inputs.set(this.#inputs.subarray(index * len, (index + 1) * len), i * len);
      targets.set(this.#targets.subarray(index * outputs, (index + 1) * outputs), i * outputs);
    }
    const x = tf.tensor(inputs, [n, ...this.inputShape], 'float32');
    try {
      return { inputs: x, labels: tf.tensor2d(targets, [n, outputs], 'float32') };
    } catch (error) {
      x.dispose();
      throw error;
    }
  }
}
