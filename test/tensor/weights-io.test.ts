/**
 * In-memory save/load: variables and optimizer state round-trip exactly through one
 * checksummed buffer; corruption, shape drift and reordered optimizer slots are refused.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, type PersistedStateError } from '../../src/core/index.js';
import {
  decodeWeights,
  decodeWeightsFromBytes,
  encodeWeights,
  encodeWeightsToBytes,
  Initializer,
  initTensorBackend,
  initVariable,
  restoreOptimizerState,
  restoreVariables,
  saveOptimizerState,
  saveVariables,
  seededRng,
  tf,
} from '../../src/tensor/index.js';

beforeAll(async () => {
  await initTensorBackend();
});

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

function model(prefix: string, seed: number): tf.Variable[] {
  const rng = seededRng(seed);
  return [
    initVariable(`${prefix}/w1`, Initializer.HE_NORMAL, [6, 5], rng),
    initVariable(`${prefix}/b1`, Initializer.ZEROS, [5], rng),
    initVariable(`${prefix}/w2`, Initializer.GLOROT_UNIFORM, [5, 3], rng),
  ];
}

function trainStep(vars: tf.Variable[], optimizer: tf.Optimizer, x: tf.Tensor): number {
  const [w1, b1, w2] = vars as [tf.Variable, tf.Variable, tf.Variable];
  const loss = optimizer.minimize(() => tf.mean(tf.square(tf.matMul(tf.relu(tf.add(tf.matMul(x, w1), b1)), w2))) as tf.Scalar, true, vars);
  const value = (loss as tf.Scalar).dataSync()[0] as number;
  (loss as tf.Scalar).dispose();
  return value;
}

const snapshot = (vars: readonly tf.Variable[]): number[][] => vars.map((v) => Array.from(v.dataSync()));

describe('weights round trip', () => {
  it('encodes and decodes named tensors of every dtype exactly', async () => {
    const a = tf.tensor([1.5, -2.25, 3e-38, Number.MAX_VALUE > 0 ? 3.4e38 : 0], [2, 2]);
    const b = tf.tensor([7, -8], [2], 'int32');
    const c = tf.tensor([1, 0, 1], [3], 'bool');
    const bytes = encodeWeightsToBytes(await encodeWeights({ a, b, c }));
    const back = decodeWeights(decodeWeightsFromBytes(bytes));
    expect(Array.from(back['a']!.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(back['b']!.dtype).toBe('int32');
    expect(Array.from(back['b']!.dataSync())).toEqual([7, -8]);
    expect(Array.from(back['c']!.dataSync())).toEqual([1, 0, 1]);
    tf.dispose([a, b, c, ...Object.values(back)]);
  });

  it('restores variables in place after training, bit for bit, leaving no tensors', async () => {
    const vars = model('rt', 1);
    const bytes = await saveVariables(vars);
    const saved = snapshot(vars);
    const x = tf.randomUniform([4, 6], -1, 1, 'float32', 3);
    const optimizer = tf.train.sgd(0.1);
    trainStep(vars, optimizer, x);
    expect(snapshot(vars)).not.toEqual(saved);
    const before = tf.memory().numTensors;
    restoreVariables(vars, bytes);
    expect(snapshot(vars)).toEqual(saved);
    expect(tf.memory().numTensors).toBe(before);
    optimizer.dispose();
    tf.dispose([x, ...vars]);
  });

  it('refuses corrupted, truncated and foreign blobs', async () => {
    const vars = model('bad', 2);
    const bytes = await saveVariables(vars);
    const flipped = bytes.slice();
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 0xff;
    expect(
      isEsperError(
        errorOf(() => restoreVariables(vars, flipped)),
        ErrorCode.TENSOR_WEIGHTS_INVALID,
      ),
    ).toBe(true);
    expect(
      isEsperError(
        errorOf(() => decodeWeightsFromBytes(bytes.subarray(0, bytes.length - 4))),
        ErrorCode.TENSOR_WEIGHTS_INVALID,
      ),
    ).toBe(true);
    expect(
      isEsperError(
        errorOf(() => decodeWeightsFromBytes(new Uint8Array(20))),
        ErrorCode.TENSOR_WEIGHTS_INVALID,
      ),
    ).toBe(true);
    tf.dispose(vars);
  });

  it('refuses a blob whose header specs are malformed with a typed error naming the path', () => {
    const blob = (header: unknown): Uint8Array => {
      const json = new TextEncoder().encode(JSON.stringify(header));
      const out = new Uint8Array(12 + json.byteLength);
      const view = new DataView(out.buffer);
      view.setUint32(0, 0x57505345, true);
      view.setUint32(4, 1, true);
      view.setUint32(8, json.byteLength, true);
      out.set(json, 12);
      return out;
    };
    for (const [header, path] of [
      [{ specs: [{ name: 'w', shape: 'x', dtype: 'float32' }], crc32c: 0 }, '$.specs[0].shape'],
      [{ specs: [{ name: 'w', shape: [2], dtype: 'string' }], crc32c: 0 }, '$.specs[0].dtype'],
      [{ specs: [] }, '$.crc32c'],
      ['not an object', '$'],
    ] as const) {
      const error = errorOf(() => decodeWeightsFromBytes(blob(header)));
      expect(isEsperError(error, ErrorCode.TENSOR_WEIGHTS_INVALID), JSON.stringify(header)).toBe(true);
      expect((error as PersistedStateError).issues.map((issue) => issue.path)).toEqual([path]);
    }
  });

  it('refuses a blob whose names or shapes do not fit, assigning nothing', async () => {
    const vars = model('fit', 3);
    const ones = tf.ones([6, 4]);
    const bytes = encodeWeightsToBytes(await encodeWeights({ 'fit/w1': ones }));
    const before = snapshot(vars);
    const error = errorOf(() => restoreVariables(vars, bytes, { allowMissing: true }));
    expect(isEsperError(error, ErrorCode.TENSOR_WEIGHTS_INVALID)).toBe(true);
    expect(String((error as Error).message)).toContain("'fit/w1' is float32[6,5], saved float32[6,4]");
    expect(snapshot(vars)).toEqual(before);
    const missing = errorOf(() => restoreVariables(vars, bytes));
    expect(String((missing as Error).message)).toContain("missing 'fit/b1'");
    tf.dispose([...vars, ones]);
  });
});

describe('optimizer state round trip', () => {
  it('restores Adam moments and iteration so the next step matches an uninterrupted run', async () => {
    const x = tf.randomUniform([4, 6], -1, 1, 'float32', 5);
    // Uninterrupted: 3 steps.
    const varsA = model('adamA', 7);
    const optA = tf.train.adam(0.05);
    for (let i = 0; i < 2; i += 1) trainStep(varsA, optA, x);
    const weightsBytes = await saveVariables(varsA);
    const stateBytes = await saveOptimizerState(optA);
    const lossA = trainStep(varsA, optA, x);
    const afterA = snapshot(varsA);

    tf.dispose(varsA);
    optA.dispose();

    // Resumed: fresh variables with the same names and other values, a fresh optimizer.
    const varsB = model('adamA', 99);
    const optB = tf.train.adam(0.05);
    restoreVariables(varsB, weightsBytes);
    const before = tf.memory().numTensors;
    await restoreOptimizerState(optB, stateBytes, { variableNames: varsB.map((v) => v.name) });
    expect(optB.iterations).toBe(2);
    const lossB = trainStep(varsB, optB, x);
    expect(lossB).toBe(lossA);
    expect(snapshot(varsB)).toEqual(afterA);
    // Restoring again replaces the slots without leaking the old ones.
    const mid = tf.memory().numTensors;
    await restoreOptimizerState(optB, stateBytes, { variableNames: varsB.map((v) => v.name) });
    expect(tf.memory().numTensors).toBe(mid);
    expect(mid).toBeGreaterThan(before);
    optB.dispose();
    tf.dispose([x, ...varsB]);
  });

  it('refuses optimizer state whose slots follow other variables or another order', async () => {
    const x = tf.randomUniform([4, 6], -1, 1, 'float32', 6);
    const vars = model('order', 8);
    const opt = tf.train.adam(0.01);
    trainStep(vars, opt, x);
    const bytes = await saveOptimizerState(opt);
    const fresh = tf.train.adam(0.01);
    const reversed = vars.map((v) => v.name).reverse();
    await expect(restoreOptimizerState(fresh, bytes, { variableNames: reversed })).rejects.toMatchObject({
      code: ErrorCode.TENSOR_OPTIMIZER_STATE_MISMATCH,
    });
    await expect(restoreOptimizerState(fresh, bytes, { variableNames: ['order/w1'] })).rejects.toMatchObject({
      code: ErrorCode.TENSOR_OPTIMIZER_STATE_MISMATCH,
    });
    opt.dispose();
    fresh.dispose();
    tf.dispose([x, ...vars]);
  });
});
