/**
 * WIDEN sites: the MLP host declares them, a hook there contributes to the next dense
 * block's pre-activation, and the widened host computes exactly what an explicitly wider
 * MLP with the concatenated weights computes.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../../src/core/index.js';
import { SeedSiteKind } from '../../../src/leyline/index.js';
import { Initializer, initTensorBackend, initVariable, seededRng, tf } from '../../../src/tensor/index.js';
import type { WidenSiteHook } from '../../../src/tolaria/host-model.js';
import { Activation } from '../../../src/tolaria/hosts/blocks.js';
import type { BlockHost } from '../../../src/tolaria/hosts/block-host.js';
import { HostBuilder } from '../../../src/tolaria/hosts/host-builder.js';
import { mlpHost } from '../../../src/tolaria/hosts/mlp-host.js';

beforeAll(async () => {
  await initTensorBackend();
});

/** `relu(u·U + c)·V` with given or random weights. */
class UnitsHook implements WidenSiteHook {
  readonly u: tf.Variable;
  readonly c: tf.Variable;
  readonly v: tf.Variable;
  calls = 0;
  constructor(name: string, inputs: number, units: number, outputs: number, seed = 5) {
    const rng = seededRng(seed);
    this.u = initVariable(`${name}/U`, Initializer.HE_NORMAL, [inputs, units], rng);
    this.c = initVariable(`${name}/c`, Initializer.GLOROT_UNIFORM, [1, units], rng);
    this.v = initVariable(`${name}/V`, Initializer.GLOROT_UNIFORM, [units, outputs], rng);
  }
  contribute(input: tf.Tensor): tf.Tensor {
    this.calls += 1;
    return tf.matMul(tf.relu(tf.add(tf.matMul(input as tf.Tensor2D, this.u as tf.Tensor2D), this.c)), this.v as tf.Tensor2D);
  }
  trainableVariables(): readonly tf.Variable[] {
    return [this.u, this.c, this.v];
  }
  dispose(): void {
    tf.dispose([this.u, this.c, this.v]);
  }
}

const live: { dispose(): void }[] = [];
afterEach(() => {
  for (const item of live.splice(0)) item.dispose();
});

function track<T extends { dispose(): void }>(item: T): T {
  live.push(item);
  return item;
}

function inputs(batch: number, size: number, seed: number): tf.Tensor2D {
  const rng = seededRng(seed);
  return tf.tensor2d(
    Float32Array.from({ length: batch * size }, () => rng.nextNormal()),
    [batch, size],
  );
}

const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] as number);

describe('WIDEN sites', () => {
  it('the MLP host declares one per hidden layer by default, with the layer input and next pre-activation shapes', () => {
    const host = track(mlpHost({ inputSize: 12, hidden: [8, 6], numClasses: 3, seed: 1, hostId: 'widen-desc' }));
    const sites = host.descriptor.sites.map((s) => ({ id: s.siteId, kind: s.kind, shape: s.shape, out: s.outputShape, depth: s.depth }));
    expect(sites).toEqual([
      { id: 'hidden1', kind: SeedSiteKind.DENSE, shape: [8], out: [], depth: 0 },
      { id: 'hidden1.widen', kind: SeedSiteKind.WIDEN, shape: [12], out: [6], depth: 0 },
      { id: 'hidden2', kind: SeedSiteKind.DENSE, shape: [6], out: [], depth: 1 },
      { id: 'hidden2.widen', kind: SeedSiteKind.WIDEN, shape: [8], out: [3], depth: 1 },
    ]);
  });

  it('with widenSlots n, declares n WIDEN sites per hidden layer (growth slots), still refusing a second DENSE site on a block', () => {
    const host = track(mlpHost({ inputSize: 12, hidden: [8, 6], numClasses: 3, seed: 1, widenSlots: 3, hostId: 'widen-slots' }));
    expect(host.descriptor.sites.map((s) => [s.siteId, s.block, s.kind])).toEqual([
      ['hidden1', 'hidden1', SeedSiteKind.DENSE],
      ['hidden1.widen', 'hidden1', SeedSiteKind.WIDEN],
      ['hidden1.widen2', 'hidden1', SeedSiteKind.WIDEN],
      ['hidden1.widen3', 'hidden1', SeedSiteKind.WIDEN],
      ['hidden2', 'hidden2', SeedSiteKind.DENSE],
      ['hidden2.widen', 'hidden2', SeedSiteKind.WIDEN],
      ['hidden2.widen2', 'hidden2', SeedSiteKind.WIDEN],
      ['hidden2.widen3', 'hidden2', SeedSiteKind.WIDEN],
    ]);
    expect(host.descriptor.parameterCount).toBe(
      track(mlpHost({ inputSize: 12, hidden: [8, 6], numClasses: 3, seed: 1, hostId: 'widen-one' })).descriptor.parameterCount,
    );
    const builder = new HostBuilder({ hostId: 'two-dense', inputShape: [4], seed: 1 }).dense(3, Activation.RELU).site('a');
    expect(() => builder.site('b')).toThrow(/already has a seed site/);
    expect(() => mlpHost({ inputSize: 4, hidden: [3], seed: 1, widenSlots: 0, hostId: 'no-slots' })).toThrow(/widenSlots/);
  });

  it('hooks on two slots of one layer equal the layer widened by both units at once (≤ 1e-5)', () => {
    const [n, size, classes] = [6, 10, 4];
    const host = track(mlpHost({ inputSize: size, hidden: [n], numClasses: classes, seed: 2, widenSlots: 2, hostId: 'slots-small' }));
    const wide = track(mlpHost({ inputSize: size, hidden: [n + 3], numClasses: classes, seed: 3, hostId: 'slots-wide' }));
    const first = track(new UnitsHook('slot-1', size, 1, classes, 6));
    const second = track(new UnitsHook('slot-2', size, 2, classes, 7));
    host.attach('hidden1.widen', first);
    host.attach('hidden1.widen2', second);
    const [h1, head] = host.blocks.map((b) => b.dense);
    const [w1, wHead] = wide.blocks.map((b) => b.dense);
    tf.tidy(() => {
      w1?.kernel.assign(tf.concat([h1?.kernel as tf.Tensor2D, first.u, second.u], 1));
      w1?.bias?.assign(tf.concat([h1?.bias as tf.Tensor1D, tf.reshape(first.c, [1]), tf.reshape(second.c, [2])], 0));
      wHead?.kernel.assign(tf.concat([head?.kernel as tf.Tensor2D, first.v, second.v], 0));
      wHead?.bias?.assign(head?.bias as tf.Tensor);
    });
    const x = track(inputs(16, size, 9));
    expect(tf.tidy(() => maxAbsDiff(host.forward(x, { training: false }), wide.forward(x, { training: false })))).toBeLessThanOrEqual(1e-5);
  });

  it('equals an explicitly wider MLP built with the concatenated weights', () => {
    const [n, k, size, classes] = [8, 5, 12, 4];
    const host = track(mlpHost({ inputSize: size, hidden: [n, 6], numClasses: classes, seed: 2, hostId: 'widen-small' }));
    const wide = track(mlpHost({ inputSize: size, hidden: [n + k, 6], numClasses: classes, seed: 3, hostId: 'widen-wide' }));
    const hook = track(new UnitsHook('widen-hook', size, k, 6));
    host.attach('hidden1.widen', hook);
    const [h1, h2, head] = host.blocks.map((b) => b.dense);
    const [w1, w2, wHead] = wide.blocks.map((b) => b.dense);
    tf.tidy(() => {
      w1?.kernel.assign(tf.concat([h1?.kernel as tf.Tensor2D, hook.u], 1));
      w1?.bias?.assign(tf.concat([h1?.bias as tf.Tensor1D, tf.reshape(hook.c, [k])], 0));
      w2?.kernel.assign(tf.concat([h2?.kernel as tf.Tensor2D, hook.v], 0));
      w2?.bias?.assign(h2?.bias as tf.Tensor);
      wHead?.kernel.assign(head?.kernel as tf.Tensor);
      wHead?.bias?.assign(head?.bias as tf.Tensor);
    });
    const x = track(inputs(16, size, 9));
    const diff = tf.tidy(() => maxAbsDiff(host.forward(x, { training: false }), wide.forward(x, { training: false })));
    expect(hook.calls).toBe(1);
    expect(diff).toBeLessThanOrEqual(1e-5);
  });

  it('a bypassed WIDEN site contributes nothing (the counterfactual pass)', () => {
    const host = track(mlpHost({ inputSize: 10, hidden: [6], numClasses: 3, seed: 4, hostId: 'widen-bypass' }));
    const x = track(inputs(5, 10, 1));
    const before = track(tf.tidy(() => host.forward(x, { training: false })));
    const hook = track(new UnitsHook('widen-bypass-hook', 10, 4, 3));
    host.attach('hidden1.widen', hook);
    const bypassed = track(tf.tidy(() => host.forward(x, { training: false, bypassSites: new Set(['hidden1.widen']) })));
    const grown = track(tf.tidy(() => host.forward(x, { training: false })));
    expect(maxAbsDiff(bypassed, before)).toBe(0);
    expect(maxAbsDiff(grown, before)).toBeGreaterThan(0);
    expect(host.trainableVariables()).toContain(hook.v);
  });

  it('refuses a hook without contribute(), and a contribution of the wrong shape', () => {
    const host = track(mlpHost({ inputSize: 10, hidden: [6], numClasses: 3, seed: 4, hostId: 'widen-errors' }));
    const activationHook = { apply: (x: tf.Tensor) => x, trainableVariables: () => [] };
    expect(() => host.attach('hidden1.widen', activationHook as never)).toThrow(/contribute\(\)/);
    const wrong = track(new UnitsHook('widen-wrong', 10, 4, 5));
    host.attach('hidden1.widen', wrong);
    const x = track(inputs(2, 10, 1));
    let error: unknown;
    try {
      tf.tidy(() => host.forward(x, { training: false }));
    } catch (e) {
      error = e;
    }
    expect(isEsperError(error, ErrorCode.TOLARIA_SITE_SHAPE_MISMATCH)).toBe(true);
  });

  it('the builder refuses a WIDEN site that is not on a dense or conv block followed by the block it adds to', () => {
    const pool = new HostBuilder({ hostId: 'widen-pool', inputShape: [4, 4, 1], seed: 1 }).conv2d(2).maxPool(2);
    expect(() => pool.widenSite('p.widen')).toThrow(/needs a dense or conv2d block/);
    const buildError = (builder: HostBuilder): unknown => {
      try {
        builder.build();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const last = new HostBuilder({ hostId: 'widen-last', inputShape: [4], seed: 1 }).dense(3, Activation.LINEAR).widenSite('d.widen');
    // conv → pool → pool: at most one pool between a widened conv and the next weighted block.
    const twoPools = new HostBuilder({ hostId: 'widen-pools', inputShape: [8, 8, 1], seed: 1 })
      .conv2d(2)
      .widenSite('c.widen')
      .maxPool(2)
      .maxPool(2);
    const noFlatten = new HostBuilder({ hostId: 'widen-flat', inputShape: [8, 8, 1], seed: 1 }).conv2d(2).widenSite('c.widen').flatten();
    expect(isEsperError(buildError(last), ErrorCode.INVALID_STATE)).toBe(true);
    expect(isEsperError(buildError(twoPools.flatten().dense(2)), ErrorCode.INVALID_STATE)).toBe(true);
    // conv → flatten → dense is a valid path (the dense block is the one it adds to).
    const flat = noFlatten.dense(2).build();
    expect(flat.descriptor.sites.map((s) => [s.siteId, [...s.outputShape], s.convWiden?.pool])).toEqual([['c.widen', [2], undefined]]);
    flat.dispose();
  });

  it('leaves no tensors behind on a widened forward pass', () => {
    const host: BlockHost = track(mlpHost({ inputSize: 10, hidden: [6], numClasses: 3, seed: 4, hostId: 'widen-memory' }));
    host.attach('hidden1.widen', track(new UnitsHook('widen-memory-hook', 10, 4, 3)));
    const x = track(inputs(2, 10, 1));
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      host.forward(x, { training: true });
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});
