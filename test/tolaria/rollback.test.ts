import { beforeAll, describe, expect, it } from 'vitest';
import { initTensorBackend, tf } from '../../src/tensor/index.js';
import type { OptimizerStateSnapshot } from '../../src/tolaria/optimizer-manager.js';
import { FastRollbackCache, cloneWeights, makeSnapshot, restoreWeights, type TrainingSnapshot } from '../../src/tolaria/rollback.js';
import type { TrainerProgress } from '../../src/tolaria/trainer-stats.js';

beforeAll(async () => {
  await initTensorBackend();
});

const progress = {} as TrainerProgress;

function snapshot(globalStep: number, variable: tf.Variable, optimizerBytes = 0): TrainingSnapshot & { disposed: () => boolean } {
  let optimizerDisposed = false;
  const optimizer: OptimizerStateSnapshot = {
    kind: 'sgd',
    iterations: globalStep,
    learningRate: 0.1,
    bytes: optimizerBytes,
    dispose: () => {
      optimizerDisposed = true;
    },
  };
  const snap = makeSnapshot({
    globalStep,
    cursor: { seed: 0, epoch: 0, position: globalStep },
    rng: [1, 2, 3, 4],
    progress,
    weights: cloneWeights([variable]),
    optimizer,
  });
  return Object.assign(snap, { disposed: () => optimizerDisposed });
}

describe('FastRollbackCache', () => {
  it('returns the newest snapshot at or before a step', () => {
    const v = tf.variable(tf.zeros([4]), true, 'rb/nearest');
    const cache = new FastRollbackCache({ maxBytes: 1 << 20 });
    for (const step of [0, 5, 10]) cache.put(snapshot(step, v));
    expect(cache.nearest(7)?.globalStep).toBe(5);
    expect(cache.nearest(10)?.globalStep).toBe(10);
    expect(cache.nearest(100)?.globalStep).toBe(10);
    cache.clear();
    expect(cache.nearest(100)).toBeUndefined();
    v.dispose();
  });

  it('evicts oldest first past the byte cap, keeps the newest even when it alone exceeds the cap, and frees what it drops', () => {
    const v = tf.variable(tf.zeros([16]), true, 'rb/evict'); // 64 bytes per weight snapshot
    const baseline = tf.memory().numTensors;
    const cache = new FastRollbackCache({ maxBytes: 200 });
    const snaps = [0, 1, 2, 3].map((s) => snapshot(s, v));
    for (const s of snaps) cache.put(s);
    expect(cache.count).toBe(3);
    expect(cache.sizeBytes).toBe(192);
    expect(snaps[0]!.disposed()).toBe(true);
    cache.put(snapshot(4, v, 1000));
    expect(cache.count).toBe(1);
    expect(cache.sizeBytes).toBe(1064);
    cache.clear();
    expect(cache.sizeBytes).toBe(0);
    expect(tf.memory().numTensors).toBe(baseline);
    v.dispose();
  });

  it('replaces a snapshot of the same step without double-counting its bytes, and drops the abandoned timeline', () => {
    const v = tf.variable(tf.zeros([16]), true, 'rb/replace');
    const cache = new FastRollbackCache({ maxBytes: 1 << 20 });
    for (const step of [0, 1, 2, 3]) cache.put(snapshot(step, v));
    const again = snapshot(2, v);
    cache.put(again);
    expect(cache.count).toBe(3);
    expect(cache.sizeBytes).toBe(3 * 64);
    expect(cache.nearest(3)).toBe(again);
    cache.clear();
    v.dispose();
  });

  it('restores weights by variable identity and leaves variables created later untouched', () => {
    const a = tf.variable(tf.tensor1d([1, 2]), true, 'rb/a');
    const clones = cloneWeights([a]);
    a.assign(tf.tensor1d([9, 9]));
    const b = tf.variable(tf.tensor1d([5]), true, 'rb/b');
    expect(restoreWeights(clones, [a, b])).toBe(1);
    expect(Array.from(a.dataSync())).toEqual([1, 2]);
    expect(Array.from(b.dataSync())).toEqual([5]);
    tf.dispose([a, b, ...clones.values()]);
  });
});
