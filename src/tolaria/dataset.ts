/**
 * Datasets as Tolaria consumes them: a fixed train/validation split of examples, read in
 * batches by index. Order comes from a {@link DataCursor}, so shuffling is deterministic
 * and resumable.
 */
import type { tf } from '../tensor/index.js';

/** A batch of examples. Tensors are owned by the caller (dispose or use inside tidy). */
export interface Batch {
  /** `[batch, ...inputShape]`, float32. */
  readonly inputs: tf.Tensor;
  /**
   * `[batch]` int32 class indices (a `classes` dataset), or `[batch, numClasses]` float32
   * targets (a `values` dataset).
   */
  readonly labels: tf.Tensor1D | tf.Tensor2D;
}

/** One split (train or validation). */
export interface DatasetSplit {
  readonly size: number;
  /** The examples at `indices`, in that order. */
  batch(indices: Int32Array): Batch;
}

/** A dataset with a fixed split: classification (class labels) or regression (float targets). */
export interface Dataset {
  readonly name: string;
  /** Per-example input shape, e.g. `[784]` or `[32, 32, 3]`. */
  readonly inputShape: readonly number[];
  /** Classes of a `classes` dataset; outputs per example of a `values` dataset. */
  readonly numClasses: number;
  /**
   * What the labels are: `classes` (int32 class indices; softmax cross-entropy or MSE on
   * one-hot, accuracy measured) or `values` (float targets `[numClasses]` per example; MSE
   * only, no accuracy).
   * @default 'classes'
   */
  readonly targets?: 'classes' | 'values';
  readonly train: DatasetSplit;
  readonly validation: DatasetSplit;
}

/** Serializable position of a {@link DataCursor} (for checkpoints). */
export interface DataCursorState {
  readonly seed: number;
  readonly epoch: number;
  /** Examples of the current epoch already handed out. */
  readonly position: number;
}
