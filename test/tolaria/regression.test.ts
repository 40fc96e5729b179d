/**
 * Regression in Tolaria: the loss choice (`cross_entropy` | `mse`), `values` datasets with
 * float targets (`ValueSplit`), validation reporting loss (accuracy only for classes), and
 * bias-free MLP hosts.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { seededRng, tf } from '../../src/tensor/index.js';
import type { Dataset } from '../../src/tolaria/dataset.js';
import { ValueSplit } from '../../src/tolaria/data/value-split.js';
import { mlpHost } from '../../src/tolaria/hosts/mlp-host.js';
import { hitsOf, LossKind, lossOf, resolveLoss } from '../../src/tolaria/loss.js';
import { validate } from '../../src/tolaria/step-compute.js';
import { trainerKit } from './fixtures/trainer-kit.js';

const kit = trainerKit({ trainingRunId: 'regression-run', hostPrefix: 'regression' });

/** y = x·W for a fixed W [3, 2]: a linear regression dataset of `size` examples per split. */
function linearDataset(size: number): Dataset {
  const rng = seededRng(11);
  const w = [0.5, -1, 2, 0.25, -0.75, 1.5];
  const split = (): ValueSplit => {
    const x = Float32Array.from({ length: size * 3 }, () => rng.nextNormal());
    const y = Float32Array.from({ length: size * 2 }, (_, k) => {
      const [n, o] = [Math.floor(k / 2), k % 2];
      return [0, 1, 2].reduce((s, i) => s + x[n * 3 + i]! * w[i * 2 + o]!, 0);
    });
    return new ValueSplit({ inputShape: [3], outputs: 2, inputs: x, targets: y });
  };
  return { name: 'linear', inputShape: [3], numClasses: 2, targets: 'values', train: split(), validation: split() };
}

describe('losses', () => {
  it('MSE is the mean squared error over outputs and examples; sum reduction sums the per-example means', () => {
    const values = { numClasses: 2, targets: 'values' as const };
    const [mean, sum, hits] = tf.tidy(() => {
      const out = tf.tensor2d([
        [1, 2],
        [3, 5],
      ]);
      const y = tf.tensor2d([
        [0, 2],
        [3, 1],
      ]);
      return [lossOf(LossKind.MSE, out, y, values), lossOf(LossKind.MSE, out, y, values, 'sum'), hitsOf(out, y, values)].map(
        (t) => t.dataSync()[0],
      );
    });
    // Per example: (1 + 0)/2 = 0.5 and (0 + 16)/2 = 8.
    expect([mean, sum, hits]).toEqual([4.25, 8.5, 0]);
  });

  it('MSE on class labels uses one-hot targets; cross-entropy is the default and refused for float targets', () => {
    const classes = { numClasses: 3 };
    const mse = tf.tidy(() => lossOf(LossKind.MSE, tf.tensor2d([[1, 0, 0]]), tf.tensor1d([0], 'int32'), classes).dataSync()[0]);
    expect(mse).toBe(0);
    expect(resolveLoss(undefined, { name: 'c' })).toBe('cross_entropy');
    expect(resolveLoss('mse', { name: 'v', targets: 'values' })).toBe('mse');
    for (const bad of [
      () => resolveLoss('cross_entropy', { name: 'v', targets: 'values' }),
      () => resolveLoss('hinge' as LossKind, { name: 'c' }),
    ]) {
      let error: unknown;
      try {
        bad();
      } catch (e) {
        error = e;
      }
      expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    }
  });
});

describe('ValueSplit', () => {
  it('batches float inputs and [batch, outputs] float targets by index, and refuses bad shapes and indices', () => {
    const split = new ValueSplit({
      inputShape: [2],
      outputs: 3,
      inputs: Float32Array.from([1, 2, 3, 4]),
      targets: Float32Array.from([1, 2, 3, 4, 5, 6]),
    });
    expect(split.size).toBe(2);
    const batch = split.batch(Int32Array.from([1, 0]));
    expect([batch.labels.shape, batch.labels.dtype, Array.from(batch.labels.dataSync())]).toEqual([[2, 3], 'float32', [4, 5, 6, 1, 2, 3]]);
    expect(Array.from(batch.inputs.dataSync())).toEqual([3, 4, 1, 2]);
    tf.dispose([batch.inputs, batch.labels]);
    expect(() => split.batch(Int32Array.from([2]))).toThrow(/outside \[0, 2\)/);
    expect(() => new ValueSplit({ inputShape: [2], outputs: 3, inputs: new Float32Array(6), targets: new Float32Array(6) })).toThrow(
      /whole examples/,
    );
  });
});

describe('bias-free MLP host', () => {
  it('has kernels only (10·5 + 5·10 = 100 parameters) and maps 0 to 0', () => {
    const host = mlpHost({ inputSize: 10, hidden: [5], numClasses: 10, bias: false, seed: 1, hostId: 'no-bias' });
    kit.defer(() => host.dispose());
    expect(host.variables.map((v) => v.name)).toEqual(['no-bias/hidden1/kernel', 'no-bias/head/kernel']);
    expect(Number(host.descriptor.parameterCount)).toBe(100);
    const out = tf.tidy(() => Array.from(host.forward(tf.zeros([1, 10]), { training: false }).dataSync()));
    expect(out.every((v) => v === 0)).toBe(true);
  });
});

describe('trainer with MSE on float targets', () => {
  it('trains a regression (loss falls), validates with loss only (accuracy 0), and refuses cross-entropy on it', async () => {
    const dataset = linearDataset(128);
    const host = mlpHost({ inputSize: 3, hidden: [16], numClasses: 2, seed: 2, hostId: 'regression-host' });
    kit.defer(() => host.dispose());
    const before = validate(host, dataset, 1000, undefined, LossKind.MSE);
    const { trainer, steps } = kit.trainer({ host, dataset, loss: 'mse', epochs: 10, optimizer: { kind: 'sgd', learningRate: 0.05 } });
    const summary = await trainer.run();
    expect(summary.state).toBe('completed');
    const after = validate(host, dataset, 1000, undefined, LossKind.MSE);
    expect(after.accuracy).toBe(0);
    expect(after.loss).toBeLessThan(0.5 * before.loss);
    expect(steps.at(-1)!.loss).toBeLessThan(steps[0]!.loss);
    let error: unknown;
    try {
      kit.trainer({ host, dataset });
    } catch (e) {
      error = e;
    }
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((error as Error).message).toMatch(/loss/);
  });
});
