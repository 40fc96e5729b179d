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
  /** `[batch]`, int32 class indices. */
  readonly labels: tf.Tensor1D;
}

/** One split (train or validation). */
export interface DatasetSplit {
  readonly size: number;
  /** The examples at `indices`, in that order. */
  batch(indices: Int32Array): Batch;
}

/** A classification dataset with a fixed split. */
export interface Dataset {
  readonly name: string;
  /** Per-example input shape, e.g. `[784]` or `[32, 32, 3]`. */
  readonly inputShape: readonly number[];
  readonly numClasses: number;
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
