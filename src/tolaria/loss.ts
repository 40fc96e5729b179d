/**
 * The losses the trainer can train on, and what a batch's "correct" count means for each
 * kind of dataset: softmax cross-entropy on class labels (the default), or the mean squared
 * error — on float targets (a `values` dataset, regression) or on one-hot class labels.
 * Accuracy is measured for `classes` datasets only; a `values` dataset counts 0 correct.
 */
import { optionChecks } from '../core/index.js';
import { oneHotFloat, tf } from '../tensor/index.js';
import type { Batch, Dataset } from './dataset.js';

/** Loss choices of the trainer. */
export const LossKind = {
  /** Softmax cross-entropy on int32 class labels (`classes` datasets only). */
  CROSS_ENTROPY: 'cross_entropy',
  /** Mean squared error over every output: float targets, or one-hot class labels. */
  MSE: 'mse',
} as const;
export type LossKind = (typeof LossKind)[keyof typeof LossKind];

const LOSS_KINDS: readonly LossKind[] = Object.values(LossKind);

/** What a dataset's labels are: class indices (`classes`, the default) or float targets (`values`). */
export function targetsOf(dataset: Pick<Dataset, 'targets'>): 'classes' | 'values' {
  return dataset.targets ?? 'classes';
}

/**
 * `kind` (default cross-entropy) checked against `dataset`.
 * @throws EsperError INVALID_ARGUMENT for an unknown kind, or cross-entropy on a `values` dataset
 */
export function resolveLoss(kind: LossKind | undefined, dataset: Pick<Dataset, 'targets' | 'name'>): LossKind {
  const check = optionChecks('TrainerOptions');
  const resolved = check.oneOf('loss', kind ?? LossKind.CROSS_ENTROPY, LOSS_KINDS);
  if (resolved === LossKind.CROSS_ENTROPY && targetsOf(dataset) === 'values') {
    check.fail('loss', `'mse' for dataset '${dataset.name}' (float targets)`, resolved);
  }
  return resolved;
}

/**
 * The loss of `outputs` `[batch, outputs]` against `batch.labels`: the mean over examples
 * (`'mean'`) or their sum (`'sum'`, for validation passes that divide by the split size).
 * MSE averages the squared error over the outputs of each example. Allocates: call in `tf.tidy`.
 */
export function lossOf(
  kind: LossKind,
  outputs: tf.Tensor,
  labels: Batch['labels'],
  dataset: Pick<Dataset, 'targets' | 'numClasses'>,
  reduction: 'mean' | 'sum' = 'mean',
): tf.Scalar {
  const target = targetsOf(dataset) === 'values' ? labels : oneHotFloat(labels as tf.Tensor1D, dataset.numClasses);
  if (kind === LossKind.CROSS_ENTROPY) {
    const mode = reduction === 'sum' ? tf.Reduction.SUM : tf.Reduction.SUM_BY_NONZERO_WEIGHTS;
    return tf.losses.softmaxCrossEntropy(target, outputs, undefined, undefined, mode) as tf.Scalar;
  }
  const perExample = tf.mean(tf.square(tf.sub(outputs, target)), 1);
  return reduction === 'sum' ? tf.sum(perExample) : tf.mean(perExample);
}

/** Examples of the batch whose arg-max output is their class (a float scalar); 0 for a `values` dataset. */
export function hitsOf(outputs: tf.Tensor, labels: Batch['labels'], dataset: Pick<Dataset, 'targets'>): tf.Scalar {
  if (targetsOf(dataset) === 'values') return tf.scalar(0);
  return tf.sum(tf.cast(tf.equal(tf.argMax(outputs, 1), labels), 'float32'));
}
