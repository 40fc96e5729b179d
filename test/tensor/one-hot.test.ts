/**
 * One-hot correctness: `oneHotFloat` and (with the patch registered) `tf.oneHot(…,
 * 'float32')` give exact 0/1 floats on wasm; the stock wasm kernel's bug is shown so a
 * tfjs upgrade that fixes it is noticed; and no source outside `src/tensor` calls the
 * float32 path directly.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initTensorBackend, oneHotFloat, tf } from '../../src/tensor/index.js';

beforeAll(async () => {
  await initTensorBackend();
});

afterAll(async () => {
  await initTensorBackend();
});

const expected = [
  [0, 1, 0, 0],
  [0, 0, 0, 1],
  [1, 0, 0, 0],
  [0, 0, 0, 0], // out of range → all off
];

describe('oneHotFloat', () => {
  it('returns exact float32 ones and zeros on wasm', () => {
    const ids = tf.tensor1d([1, 3, 0, 7], 'int32');
    const hot = oneHotFloat(ids, 4);
    expect(hot.dtype).toBe('float32');
    expect(hot.arraySync()).toEqual(expected);
    tf.dispose([ids, hot]);
  });

  it('is correct even with the stock (buggy) wasm OneHot kernel', async () => {
    await initTensorBackend({ patchKernels: false });
    try {
      const ids = tf.tensor1d([1, 3, 0, 7], 'int32');
      const hot = oneHotFloat(ids, 4);
      expect(hot.arraySync()).toEqual(expected);
      tf.dispose([ids, hot]);
    } finally {
      await initTensorBackend();
    }
  });

  it('accepts float-typed indices and leaves no tensors behind', () => {
    const before = tf.memory().numTensors;
    const ids = tf.tensor1d([2, 0]);
    const hot = oneHotFloat(ids, 3);
    expect(hot.arraySync()).toEqual([
      [0, 0, 1],
      [1, 0, 0],
    ]);
    tf.dispose([ids, hot]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe("tf.oneHot(…, 'float32') on wasm", () => {
  it('is exact with the OneHot patch, including label-smoothing values', () => {
    const ids = tf.tensor1d([2, 0], 'int32');
    const hot = tf.oneHot(ids, 3, 0.9, 0.05, 'float32');
    expect(Array.from(hot.dataSync())).toEqual(Array.from(new Float32Array([0.05, 0.05, 0.9, 0.9, 0.05, 0.05])));
    tf.dispose([ids, hot]);
  });

  it('is wrong with the stock kernel (the bug the patch answers)', async () => {
    await initTensorBackend({ patchKernels: false });
    try {
      const ids = tf.tensor1d([1], 'int32');
      const hot = tf.oneHot(ids, 2, 1, 0, 'float32');
      // int32 bit pattern 1 read as float32 is the smallest subnormal, not 1.
      expect(hot.dataSync()[1]).toBeLessThan(1e-40);
      tf.dispose([ids, hot]);
    } finally {
      await initTensorBackend();
    }
  });
});

describe('project sources', () => {
  it("never call tf.oneHot with 'float32' outside src/tensor", () => {
    const root = path.resolve(import.meta.dirname, '../../src');
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const full = path.join(dir, name);
        if (statSync(full).isDirectory()) {
          if (name !== 'gen') walk(full);
        } else if (name.endsWith('.ts') && !full.startsWith(path.join(root, 'tensor'))) {
          const text = readFileSync(full, 'utf8');
          if (/oneHot\([^)]*float32/s.test(text)) offenders.push(path.relative(root, full));
        }
      }
    };
    walk(root);
    expect(offenders, 'use oneHotFloat from src/tensor instead').toEqual([]);
  });
});
