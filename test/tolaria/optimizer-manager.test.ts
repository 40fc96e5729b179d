import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError } from '../../src/core/index.js';
import { OptimizerFamily } from '../../src/leyline/index.js';
import { Initializer, initTensorBackend, initVariable, seededRng, tf } from '../../src/tensor/index.js';
import { OptimizerManager, type OptimizerKind } from '../../src/tolaria/optimizer-manager.js';

beforeAll(async () => {
  await initTensorBackend();
});

const created: tf.Variable[] = [];
function variable(name: string, shape: number[], seed: number): tf.Variable {
  const v = initVariable(name, Initializer.GLOROT_UNIFORM, shape, seededRng(seed));
  created.push(v);
  return v;
}

afterEach(() => {
  tf.dispose(created.splice(0));
});

/** One optimizer step of loss = Σ v·target over `variables` (constant gradients). */
function step(manager: OptimizerManager, variables: readonly tf.Variable[]): void {
  tf.tidy(() => {
    const { grads } = tf.variableGrads(
      () => tf.addN(variables.map((v, i) => tf.sum(tf.mul(v, tf.scalar(i + 1))))) as tf.Scalar,
      [...variables],
    );
    manager.applyGradients(grads);
  });
}

const values = (v: tf.Tensor): number[] => Array.from(v.dataSync());

describe('OptimizerManager', () => {
  it.each([
    ['sgd', OptimizerFamily.SGD, undefined],
    ['momentum', OptimizerFamily.MOMENTUM, 0.9],
    ['adam', OptimizerFamily.ADAM, undefined],
  ] as const)('builds %s with its contract family and momentum', (kind, family, momentum) => {
    const manager = new OptimizerManager([variable('a', [2], 1)], { config: { kind, learningRate: 0.1 } });
    expect(manager.family).toBe(family);
    expect(manager.momentum).toBe(momentum);
    manager.dispose();
  });

  it.each(['sgd', 'momentum', 'adam'] as const)(
    '%s: a rebuild after a hook attaches gives the surviving variable the same update as no rebuild',
    async (kind: OptimizerKind) => {
      // Twin setups: one keeps its optimizer, one rebuilds after step 2 with an extra variable.
      const a1 = variable('host/a', [3], 1);
      const a2 = variable('host/a2', [3], 1);
      const plain = new OptimizerManager([a1], { config: { kind, learningRate: 0.05 } });
      const grown = new OptimizerManager([a2], { config: { kind, learningRate: 0.05 } });
      step(plain, [a1]);
      step(plain, [a1]);
      step(grown, [a2]);
      step(grown, [a2]);
      const seed = variable('seed/s/w', [3], 2);
      const result = await grown.sync([a2, seed], 2);
      expect(result).toMatchObject({ outcome: 'rebuilt', added: 1, removed: 0, forced: false });
      expect(grown.iterations).toBe(2);
      step(plain, [a1]);
      // The host variable's gradient is the same (coefficient 1) in both.
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => tf.add(tf.sum(a2), tf.sum(tf.mul(seed, tf.scalar(2)))) as tf.Scalar, [a2, seed]);
        grown.applyGradients(grads);
      });
      expect(values(a2)).toEqual(values(a1));
      expect(grown.stats().rebuildsTotal).toBe(1);
      plain.dispose();
      grown.dispose();
    },
  );

  it('forces a rebuild when a trained variable disappears, even inside the storm-guard interval', async () => {
    const host = variable('host/w', [4], 1);
    const seed = variable('seed/x/w', [4], 2);
    const manager = new OptimizerManager([host, seed], { config: { kind: 'adam' }, minRebuildIntervalSteps: 100 });
    step(manager, [host, seed]);
    const result = await manager.sync([host], 1);
    expect(result).toMatchObject({ outcome: 'rebuilt', removed: 1, forced: true });
    expect(manager.variables).toEqual([host]);
    step(manager, [host]);
    expect(manager.iterations).toBe(2);
    manager.dispose();
  });

  it('storm guard: defers growth within minRebuildIntervalSteps, trains only the known variables meanwhile, rebuilds when allowed', async () => {
    const host = variable('host/w', [2], 1);
    const manager = new OptimizerManager([host], { config: { kind: 'sgd', learningRate: 0.1 }, minRebuildIntervalSteps: 3 });
    const s1 = variable('seed/1/w', [2], 2);
    expect(await manager.sync([host, s1], 0)).toMatchObject({ outcome: 'rebuilt' });
    const s2 = variable('seed/2/w', [2], 3);
    expect(await manager.sync([host, s1, s2], 1)).toEqual({ outcome: 'skipped', reason: 'min_interval', pending: 1 });
    const before = values(s2);
    step(manager, [host, s1, s2]);
    expect(values(s2)).toEqual(before); // pending variable is not trained yet
    expect(await manager.sync([host, s1, s2], 2)).toMatchObject({ outcome: 'skipped' });
    expect(await manager.sync([host, s1, s2], 3)).toMatchObject({ outcome: 'rebuilt', added: 1 });
    expect(manager.stats()).toMatchObject({ rebuildsTotal: 2, rebuildSkippedTotal: 2, pendingVariables: 0 });
    manager.dispose();
  });

  it('storm guard: failed rebuilds open the breaker, which then refuses growth and fails a forced rebuild with a typed error', async () => {
    const clock = new FakeClock();
    const host = variable('host/w', [2], 1);
    const manager = new OptimizerManager([host], {
      config: { kind: 'momentum' },
      breakerFailureThreshold: 2,
      rebuildBackoffMs: 1000,
      clock,
    });
    step(manager, [host]);
    // Something that is not a tensor makes the slot transplant throw (zerosLike rejects it).
    const broken = { name: 'seed/broken', shape: [2], size: 2 } as unknown as tf.Variable;
    const grown = [host, broken];
    expect(await manager.sync(grown, 1)).toMatchObject({ outcome: 'failed' });
    expect(await manager.sync(grown, 2)).toMatchObject({ outcome: 'failed' });
    expect(manager.stats().breaker.state).toBe(2); // OPEN
    expect(await manager.sync(grown, 3)).toEqual({ outcome: 'skipped', reason: 'breaker_open', pending: 1 });
    let caught: unknown;
    try {
      await manager.sync([], 4);
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.TOLARIA_OPTIMIZER_REBUILD_FAILED)).toBe(true);
    expect(manager.stats()).toMatchObject({ rebuildFailuresTotal: 2, rebuildSkippedTotal: 1 });
    manager.dispose();
  });

  it('snapshot/restore returns Adam to the exact state, so the next step matches bit for bit', async () => {
    const w = variable('host/w', [5], 3);
    const manager = new OptimizerManager([w], { config: { kind: 'adam', learningRate: 0.01 } });
    step(manager, [w]);
    step(manager, [w]);
    const snapshot = await manager.snapshot();
    const saved = tf.keep(tf.clone(w));
    step(manager, [w]);
    const expected = values(w);
    step(manager, [w]);
    w.assign(saved);
    await manager.restoreSnapshot(snapshot);
    expect(manager.iterations).toBe(2);
    step(manager, [w]);
    expect(values(w)).toEqual(expected);
    // Restorable twice.
    w.assign(saved);
    await manager.restoreSnapshot(snapshot);
    step(manager, [w]);
    expect(values(w)).toEqual(expected);
    snapshot.dispose();
    saved.dispose();
    manager.dispose();
  });

  it('save/load round-trips through bytes into a fresh optimizer', async () => {
    const w = variable('host/w', [5], 3);
    const manager = new OptimizerManager([w], { config: { kind: 'adam', learningRate: 0.01 } });
    step(manager, [w]);
    const bytes = await manager.save();
    const saved = tf.keep(tf.clone(w));
    step(manager, [w]);
    const expected = values(w);
    w.assign(saved);
    await manager.load(bytes, [w], 0.01);
    step(manager, [w]);
    expect(values(w)).toEqual(expected);
    saved.dispose();
    manager.dispose();
  });

  it('changes the learning rate of Adam and SGD in place', () => {
    for (const kind of ['adam', 'sgd'] as const) {
      const w = variable(`host/${kind}`, [1], 1);
      const manager = new OptimizerManager([w], { config: { kind, learningRate: 0.5 } });
      manager.setLearningRate(0.25);
      expect(manager.learningRate).toBe(0.25);
      const before = values(w)[0] as number;
      step(manager, [w]);
      const moved = Math.abs((values(w)[0] as number) - before);
      expect(moved).toBeCloseTo(0.25, 5); // both take a unit-size first step scaled by lr
      manager.dispose();
    }
  });

  it('leaves no tensors behind over steps, rebuilds, snapshots and disposal', async () => {
    const host = variable('host/w', [8, 8], 1);
    const baseline = tf.memory().numTensors;
    const manager = new OptimizerManager([host], { config: { kind: 'adam' } });
    for (let i = 0; i < 5; i += 1) {
      const seed = variable(`seed/leak${i}/w`, [8], 2);
      await manager.sync([host, seed], i);
      step(manager, [host, seed]);
      const snapshot = await manager.snapshot();
      await manager.restoreSnapshot(snapshot);
      snapshot.dispose();
      await manager.sync([host], i);
      created.pop();
      seed.dispose();
    }
    manager.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });
});
