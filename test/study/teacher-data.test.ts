import { beforeAll, describe, expect, it } from 'vitest';
import { initTensorBackend, seededRng, tf } from '../../src/tensor/index.js';
import { drawTeacher, teacherDataset, teacherOutputs } from '../../src/study/teacher-data.js';

const OPTIONS = { examples: 50, inputSize: 10, teacherHidden: 10, outputSize: 10, teacherBias: false, dataSeed: 0 };

beforeAll(async () => {
  await initTensorBackend();
});

describe('student–teacher data', () => {
  it('is a values dataset of Gaussian inputs and the teacher’s outputs, the same for the same data seed', () => {
    const a = teacherDataset(OPTIONS);
    const b = teacherDataset(OPTIONS);
    expect([a.targets, a.numClasses, a.inputShape, a.train.size, a.validation.size]).toEqual(['values', 10, [10], 50, 50]);
    const all = Int32Array.from({ length: 50 }, (_, i) => i);
    const [ba, bb] = [a.train.batch(all), b.train.batch(all)];
    try {
      expect(Array.from(ba.labels.dataSync())).toEqual(Array.from(bb.labels.dataSync()));
      const x = Array.from(ba.inputs.dataSync());
      const mean = x.reduce((s, v) => s + v, 0) / x.length;
      const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length;
      expect(Math.abs(mean)).toBeLessThan(0.15);
      expect(variance).toBeGreaterThan(0.8);
      expect(variance).toBeLessThan(1.2);
      const other = teacherDataset({ ...OPTIONS, dataSeed: 1 }).train.batch(all);
      expect(Array.from(other.labels.dataSync())).not.toEqual(Array.from(ba.labels.dataSync()));
      tf.dispose([other.inputs, other.labels]);
    } finally {
      tf.dispose([ba.inputs, ba.labels, bb.inputs, bb.labels]);
    }
  });

  it('draws the teacher uniform(−r, r) with a weight range (the notebook), Glorot uniform without', () => {
    const uniform = drawTeacher({ ...OPTIONS, teacherWeightRange: 1 }, seededRng(5));
    const glorot = drawTeacher(OPTIONS, seededRng(5));
    const all = [...uniform.w1, ...uniform.w2];
    expect(Math.max(...all.map(Math.abs))).toBeLessThanOrEqual(1);
    // Uniform(−1, 1): mean 0, variance 1/3 (200 draws, loose bounds); Glorot 10 → 10 is uniform(±√(6/20)), variance 0.1.
    const variance = (values: readonly number[]): number => values.reduce((a, v) => a + v * v, 0) / values.length;
    expect(variance(all)).toBeGreaterThan(0.25);
    expect(variance(all)).toBeLessThan(0.42);
    expect(variance([...glorot.w1, ...glorot.w2])).toBeLessThan(0.13);
  });

  it('labels with relu(x·W1)·W2 (no bias): checked against TF.js', () => {
    const teacher = drawTeacher(OPTIONS, seededRng(3));
    const rng = seededRng(4);
    const x = Float32Array.from({ length: 7 * 10 }, () => rng.nextNormal());
    const got = teacherOutputs(teacher, x, OPTIONS);
    const expected = tf.tidy(() =>
      tf
        .matMul(tf.relu(tf.matMul(tf.tensor2d(x, [7, 10]), tf.tensor2d(teacher.w1, [10, 10]))), tf.tensor2d(teacher.w2, [10, 10]))
        .dataSync(),
    );
    for (const [i, v] of expected.entries()) expect(got[i]).toBeCloseTo(v, 5);
    expect(Array.from(teacherOutputs(teacher, new Float32Array(10), OPTIONS))).toEqual(new Array(10).fill(0));
  });
});
