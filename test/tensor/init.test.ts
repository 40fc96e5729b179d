/**
 * Deterministic initialisation: same seed → bit-identical weights; fans and scales follow
 * the documented conventions; named variables are required.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/index.js';
import {
  computeFans,
  Initializer,
  initializerValues,
  initTensor,
  initTensorBackend,
  initVariable,
  seededRng,
  tf,
} from '../../src/tensor/index.js';

beforeAll(async () => {
  await initTensorBackend();
});

describe('seeded initialisers', () => {
  it('produce bit-identical weights for the same seed and different ones for another', () => {
    for (const kind of Object.values(Initializer)) {
      const a = initializerValues(kind, [5, 7], seededRng(123));
      const b = initializerValues(kind, [5, 7], seededRng(123));
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), kind).toBe(true);
    }
    const c = initializerValues(Initializer.GLOROT_UNIFORM, [5, 7], seededRng(124));
    expect(Array.from(c)).not.toEqual(Array.from(initializerValues(Initializer.GLOROT_UNIFORM, [5, 7], seededRng(123))));
  });

  it('gives the same initial model for the same seed across backends', async () => {
    const build = (): number[] => {
      const rng = seededRng(99);
      const t = initTensor(Initializer.HE_NORMAL, [3, 3, 2, 4], rng);
      const values = Array.from(t.dataSync());
      t.dispose();
      return values;
    };
    const wasm = build();
    await tf.setBackend('cpu');
    const cpu = build();
    await tf.setBackend('wasm');
    expect(cpu).toEqual(wasm);
  });

  it('computes Keras fans for dense, conv and bias shapes', () => {
    expect(computeFans([784, 256])).toEqual({ fanIn: 784, fanOut: 256 });
    expect(computeFans([3, 3, 32, 64])).toEqual({ fanIn: 288, fanOut: 576 });
    expect(computeFans([10])).toEqual({ fanIn: 10, fanOut: 10 });
  });

  it('scales glorot-uniform within its limit and he-normal to its variance', () => {
    const glorot = initializerValues(Initializer.GLOROT_UNIFORM, [100, 50], seededRng(1));
    const limit = Math.sqrt(6 / 150);
    expect(glorot.every((v) => Math.abs(v) <= limit)).toBe(true);
    const he = initializerValues(Initializer.HE_NORMAL, [200, 100], seededRng(2));
    const variance = he.reduce((s, v) => s + v * v, 0) / he.length;
    expect(Math.abs(variance - 2 / 200) / (2 / 200)).toBeLessThan(0.05);
    expect(initializerValues(Initializer.ZEROS, [3], seededRng(1))).toEqual(new Float32Array(3));
    expect(Array.from(initializerValues(Initializer.ONES, [2], seededRng(1)))).toEqual([1, 1]);
  });

  it('creates named, trainable variables and refuses an empty name', () => {
    const before = tf.memory().numTensors;
    const v = initVariable('init-test/w', Initializer.GLOROT_UNIFORM, [4, 2], seededRng(3));
    expect(v.name).toBe('init-test/w');
    expect(v.trainable).toBe(true);
    expect(tf.memory().numTensors).toBe(before + 1);
    v.dispose();
    expect(() => initVariable('', Initializer.ZEROS, [1], seededRng(3))).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });
});
