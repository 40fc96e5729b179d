/**
 * Gradient probes at WIDEN sites (GradMax initialisation): `computeWidenGradients` against
 * the closed form for softmax cross-entropy, and the trainer serving an executor's probes
 * on the step's batch into that step's `advance`.
 */
import { describe, expect, it } from 'vitest';
import type { SeedState } from '../../src/leyline/index.js';
import { tf } from '../../src/tensor/index.js';
import type { Executor, ExecutorContext, GradientProbe, WidenGradient } from '../../src/tolaria/controller.js';
import { mlpHost } from '../../src/tolaria/hosts/mlp-host.js';
import { computeWidenGradients, widenGradientNorms } from '../../src/tolaria/step-compute.js';
import { oneHotFloat, topRightSingularVectors } from '../../src/tensor/index.js';
import { trainerKit } from './fixtures/trainer-kit.js';

const kit = trainerKit({ trainingRunId: 'probe-run', hostPrefix: 'probe', withWorker: true });

describe('computeWidenGradients', () => {
  it('returns M = uᵀ·G with G = (softmax(z) − y)/B at the head pre-activation, leaving no tensors', () => {
    const host = mlpHost({ inputSize: 2, hidden: [5], numClasses: 2, seed: 3, hostId: 'probe-closed-form' });
    kit.defer(() => host.dispose());
    const batch = kit.dataset().train.batch(Int32Array.from({ length: 32 }, (_, i) => i));
    kit.defer(() => tf.dispose([batch.inputs, batch.labels]));
    const tensors = tf.memory().numTensors;
    const served = computeWidenGradients({ host, numClasses: 2, batch, siteIds: ['hidden1.widen', 'hidden1', 'nope'] });
    expect(tf.memory().numTensors).toBe(tensors);
    expect([...served.keys()]).toEqual(['hidden1.widen']);
    const got = served.get('hidden1.widen') as WidenGradient;
    expect([got.inputs, got.outputs]).toEqual([2, 2]);
    const expected = tf.tidy(() => {
      // hidden1.widen widens hidden1: u is the host input, z the head's pre-activation (the logits).
      const z = host.forward(batch.inputs, { training: true });
      const g = tf.div(tf.sub(tf.softmax(z), oneHotFloat(batch.labels, 2)), 32);
      return Array.from(tf.matMul(batch.inputs as tf.Tensor2D, g as tf.Tensor2D, true, false).dataSync());
    });
    expect(Math.max(...expected.map(Math.abs))).toBeGreaterThan(1e-3);
    for (const [i, v] of expected.entries()) expect(got.matrix[i]).toBeCloseTo(v, 6);
  });
});

describe('widenGradientNorms', () => {
  it("is each WIDEN site's top singular value of M: no unit vector v gives a larger ‖M·v‖, the top one attains it", () => {
    const host = kit.host();
    const batch = kit.dataset().train.batch(Int32Array.from({ length: 32 }, (_, i) => i));
    kit.defer(() => tf.dispose([batch.inputs, batch.labels]));
    const signals = widenGradientNorms({ host, numClasses: 2, batch });
    expect(signals.map((s) => s.siteId)).toEqual(['hidden1.widen', 'hidden2.widen']);
    const served = computeWidenGradients({ host, numClasses: 2, batch, siteIds: ['hidden1.widen', 'hidden2.widen'] });
    for (const { siteId, widenGradientNorm } of signals) {
      const { matrix, inputs, outputs } = served.get(siteId) as WidenGradient;
      const norm = (v: readonly number[]): number =>
        Math.hypot(...Array.from({ length: inputs }, (_, r) => v.reduce((sum, x, c) => sum + (matrix[r * outputs + c] as number) * x, 0)));
      expect(widenGradientNorm).toBeGreaterThan(0);
      const top = Array.from(topRightSingularVectors(matrix, inputs, outputs, 1).vectors[0] as Float64Array);
      expect(norm(top)).toBeCloseTo(widenGradientNorm, 5);
      for (let k = 0; k < 20; k += 1) {
        const v = Array.from({ length: outputs }, (_, i) => Math.sin(17 * k + 3 * i + 1));
        const length = Math.hypot(...v);
        expect(norm(v.map((x) => x / length))).toBeLessThanOrEqual(widenGradientNorm * (1 + 1e-6));
      }
    }
  });
});

/** Asks for one site's gradient until served, recording what each `advance` received. */
class ProbingExecutor implements Executor {
  readonly served: { step: number; sites: string[] }[] = [];
  #pending = true;

  apply(): Promise<void> {
    return Promise.resolve();
  }
  exportSeedStates(): readonly SeedState[] {
    return [];
  }
  gradientProbes(): readonly GradientProbe[] {
    return this.#pending ? [{ seedId: 's', siteId: 'hidden2.widen' }] : [];
  }
  advance(context: ExecutorContext): Promise<void> {
    const gradients = context.lastStep?.widenGradients;
    if (gradients !== undefined) {
      this.served.push({ step: context.globalStep, sites: [...gradients.keys()] });
      this.#pending = false;
    }
    return Promise.resolve();
  }
  contributionProbes(): readonly [] {
    return [];
  }
  recordValidation(): Promise<void> {
    return Promise.resolve();
  }
}

describe('trainer: gradient probes', () => {
  it("serves the executor's probe on the next step's batch, into that step's advance, once", async () => {
    const executor = new ProbingExecutor();
    const { trainer } = kit.trainer({ executor, epochs: 1 });
    await trainer.run();
    expect(executor.served).toEqual([{ step: 1, sites: ['hidden2.widen'] }]);
  });

  it("puts every WIDEN site's growth signal and the planned epochs in a growing run's epoch packets only", async () => {
    const { trainer, states } = kit.trainer({ executor: new ProbingExecutor(), epochs: 2 });
    await trainer.run();
    const epochPackets = states.filter((p) => p.packetId.includes('-epoch-'));
    expect(epochPackets).toHaveLength(2);
    for (const p of epochPackets) {
      expect(p.siteSignals.map((s) => s.siteId)).toEqual(['hidden1.widen', 'hidden2.widen']);
      for (const s of p.siteSignals) expect(s.widenGradientNorm).toBeGreaterThan(0);
      expect(p.metrics?.epochsPlanned).toBe(2);
    }
    expect(states.filter((p) => !p.packetId.includes('-epoch-')).every((p) => p.siteSignals.length === 0)).toBe(true);
    const plain = kit.trainer({ epochs: 1 });
    await plain.trainer.run();
    expect(plain.states.every((p) => p.siteSignals.length === 0)).toBe(true);
  });
});
