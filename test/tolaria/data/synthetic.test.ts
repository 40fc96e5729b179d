/**
 * Synthetic 2-D tasks: shapes, sizes, balance, geometry, determinism from the seed, and
 * that a small MLP host can learn them.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../../src/core/index.js';
import { initTensorBackend, oneHotFloat, tf } from '../../../src/tensor/index.js';
import type { Dataset, DatasetSplit } from '../../../src/tolaria/dataset.js';
import { mlpHost } from '../../../src/tolaria/hosts/mlp-host.js';
import { moonsDataset, spiralsDataset, xorDataset, type SyntheticOptions } from '../../../src/tolaria/data/synthetic.js';

beforeAll(async () => {
  await initTensorBackend();
});

function contents(split: DatasetSplit): { points: Float32Array; labels: Int32Array } {
  const batch = split.batch(Int32Array.from({ length: split.size }, (_, i) => i));
  const out = { points: Float32Array.from(batch.inputs.dataSync()), labels: Int32Array.from(batch.labels.dataSync()) };
  tf.dispose([batch.inputs, batch.labels]);
  return out;
}

const TASKS: readonly [string, (options: SyntheticOptions) => Dataset][] = [
  ['xor', xorDataset],
  ['spirals', spiralsDataset],
  ['moons', moonsDataset],
];

describe.each(TASKS)('%s', (name, make) => {
  it('has 2-D inputs, two balanced classes and the requested sizes', () => {
    const d = make({ seed: 1, trainSize: 101, validationSize: 40 });
    expect(d.name).toBe(name);
    expect(d.inputShape).toEqual([2]);
    expect(d.numClasses).toBe(2);
    expect([d.train.size, d.validation.size]).toEqual([101, 40]);
    const { points, labels } = contents(d.train);
    expect(points.length).toBe(202);
    expect(points.every(Number.isFinite)).toBe(true);
    expect(labels.filter((l) => l === 0).length).toBe(51);
    expect(labels.filter((l) => l === 1).length).toBe(50);
    const defaults = make({ seed: 1 });
    expect([defaults.train.size, defaults.validation.size]).toEqual([1000, 200]);
  });

  it('is a pure function of the seed, with independent train and validation draws', () => {
    const a = contents(make({ seed: 5, trainSize: 50, validationSize: 50 }).train);
    const b = contents(make({ seed: 5, trainSize: 50, validationSize: 50 }).train);
    const c = contents(make({ seed: 6, trainSize: 50, validationSize: 50 }).train);
    const v = contents(make({ seed: 5, trainSize: 50, validationSize: 50 }).validation);
    expect(b.points).toEqual(a.points);
    expect(c.points).not.toEqual(a.points);
    expect(v.points).not.toEqual(a.points);
  });

  it('refuses bad sizes and noise', () => {
    for (const options of [{ seed: 1, trainSize: 0 }, { seed: 1, validationSize: 2.5 }, { seed: 1, noise: -0.1 }, { seed: -1 }]) {
      let error: unknown;
      try {
        make(options);
      } catch (e) {
        error = e;
      }
      expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT), JSON.stringify(options)).toBe(true);
    }
  });
});

describe('task geometry (noise 0)', () => {
  it('labels XOR by whether the coordinates share a sign', () => {
    const { points, labels } = contents(xorDataset({ seed: 2, trainSize: 200, noise: 0 }).train);
    labels.forEach((label, i) => {
      const product = (points[2 * i] as number) * (points[2 * i + 1] as number);
      expect(label === 0 ? product >= 0 : product <= 0).toBe(true);
    });
  });

  it('puts spiral points on two arms in the unit disc, class 1 the rotation of class 0 by π', () => {
    const { points, labels } = contents(spiralsDataset({ seed: 2, trainSize: 200, noise: 0, turns: 1.5 }).train);
    labels.forEach((label, i) => {
      const x = points[2 * i] as number;
      const y = points[2 * i + 1] as number;
      const r = Math.hypot(x, y);
      expect(r).toBeGreaterThanOrEqual(0.05 - 1e-6);
      expect(r).toBeLessThanOrEqual(1 + 1e-6);
      // The arm's angle is a function of the radius: 2π·turns·t + label·π, t = (r − 0.05)/0.95.
      const angle = 2 * Math.PI * 1.5 * ((r - 0.05) / 0.95) + label * Math.PI;
      expect(x).toBeCloseTo(r * Math.cos(angle), 4);
      expect(y).toBeCloseTo(r * Math.sin(angle), 4);
    });
  });

  it('puts moon points on the two half circles', () => {
    const { points, labels } = contents(moonsDataset({ seed: 2, trainSize: 200, noise: 0 }).train);
    labels.forEach((label, i) => {
      const x = points[2 * i] as number;
      const y = points[2 * i + 1] as number;
      const r = label === 0 ? Math.hypot(x, y) : Math.hypot(x - 1, y - 0.5);
      expect(r).toBeCloseTo(1, 5);
      expect(label === 0 ? y >= -1e-6 : y <= 0.5 + 1e-6).toBe(true);
    });
  });
});

describe('learnability', () => {
  it('lets a small MLP host fit XOR to ≥ 95% validation accuracy', () => {
    const before = tf.memory().numTensors;
    const data = xorDataset({ seed: 3, trainSize: 256, validationSize: 256 });
    const host = mlpHost({ inputSize: 2, hidden: [16, 16], numClasses: 2, seed: 4, hostId: 'xor-mlp' });
    const optimizer = tf.train.adam(0.03);
    const train = data.train.batch(Int32Array.from({ length: 256 }, (_, i) => i));
    const validation = data.validation.batch(Int32Array.from({ length: 256 }, (_, i) => i));
    try {
      for (let step = 0; step < 150; step += 1) {
        const loss = optimizer.minimize(
          () => tf.losses.softmaxCrossEntropy(oneHotFloat(train.labels, 2), host.forward(train.inputs, { training: true })) as tf.Scalar,
          false,
          host.trainableVariables(),
        );
        loss?.dispose();
      }
      const accuracy = tf.tidy(() => {
        const predicted = tf.argMax(host.forward(validation.inputs, { training: false }), 1);
        return tf.mean(tf.cast(tf.equal(predicted, validation.labels), 'float32')).dataSync()[0] as number;
      });
      expect(accuracy).toBeGreaterThanOrEqual(0.95);
    } finally {
      optimizer.dispose();
      host.dispose();
      tf.dispose([train.inputs, train.labels, validation.inputs, validation.labels]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
