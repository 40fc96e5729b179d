/** The tensor work of a step and of a validation pass (`step-compute.ts`), on the wasm backend. */
import { beforeAll, describe, expect, it } from 'vitest';
import { TelemetryLevel } from '../../src/leyline/index.js';
import { initTensorBackend, tf } from '../../src/tensor/index.js';
import { spiralsDataset } from '../../src/tolaria/data/synthetic.js';
import type { Dataset } from '../../src/tolaria/dataset.js';
import { mlpHost } from '../../src/tolaria/hosts/mlp-host.js';
import { TolariaEvent } from '../../src/tolaria/names.js';
import { OptimizerManager } from '../../src/tolaria/optimizer-manager.js';
import { computeStep, syncOptimizer, validate } from '../../src/tolaria/step-compute.js';
import type { EventAttributes } from '../../src/tolaria/trainer-telemetry.js';
import { PoisonedHost, residualHook } from './fixtures/fakes.js';

let dataset: Dataset;
beforeAll(async () => {
  await initTensorBackend();
  dataset = spiralsDataset({ seed: 5, trainSize: 64, validationSize: 64 });
});

const firstBatch = () => dataset.train.batch(Int32Array.from({ length: 32 }, (_, i) => i));
const valuesOf = (variables: readonly tf.Variable[]): number[][] => variables.map((v) => Array.from(v.dataSync()));

describe('computeStep', () => {
  it('applies a sound step and measures the host and hook gradient norms from one read-back', () => {
    const host = mlpHost({ inputSize: 2, hidden: [8, 8], numClasses: 2, seed: 1 });
    const hook = residualHook('s', 8);
    host.attach('hidden1', hook);
    const optimizer = new OptimizerManager(host.trainableVariables(), { config: { kind: 'sgd', learningRate: 0.1 } });
    const before = valuesOf(host.trainableVariables());
    const batch = firstBatch();
    const tensors = tf.memory().numTensors;
    const result = computeStep({ host, numClasses: 2, batch, variables: host.trainableVariables(), optimizer, divergence: undefined });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(result.failure).toBeUndefined();
    expect(Number.isFinite(result.loss)).toBe(true);
    expect(result.hookNorms).toEqual([{ siteId: 'hidden1', norm: expect.any(Number), params: 64 }]);
    expect(result.gradNorm ** 2).toBeCloseTo(result.hostNorm ** 2 + result.hookNorms[0]!.norm ** 2, 5);
    expect(valuesOf(host.trainableVariables())).not.toEqual(before);
    tf.dispose([batch.inputs, batch.labels]);
    optimizer.dispose();
    host.detach('hidden1');
    hook.dispose();
    host.dispose();
  });

  it('fails a step with a non-finite loss before the update: weights and optimizer stay as they were', () => {
    const inner = mlpHost({ inputSize: 2, hidden: [8, 8], numClasses: 2, seed: 1, hostId: 'nan' });
    const host = new PoisonedHost(inner, new Set([1]));
    const optimizer = new OptimizerManager(host.trainableVariables(), { config: { kind: 'sgd', learningRate: 0.1 } });
    const before = valuesOf(host.trainableVariables());
    const batch = firstBatch();
    const result = computeStep({ host, numClasses: 2, batch, variables: host.trainableVariables(), optimizer, divergence: undefined });
    expect(result.failure).toMatchObject({ reason: 'non_finite_loss', quantity: 'loss' });
    expect(valuesOf(host.trainableVariables())).toEqual(before);
    tf.dispose([batch.inputs, batch.labels]);
    optimizer.dispose();
    host.dispose();
  });
});

describe('validate', () => {
  it('measures the whole split, and with a site bypassed as if its hook were detached', () => {
    const host = mlpHost({ inputSize: 2, hidden: [8, 8], numClasses: 2, seed: 1, hostId: 'val' });
    const hook = residualHook('v', 8, 3);
    host.attach('hidden2', hook);
    const withHook = validate(host, dataset, 10);
    const bypassed = validate(host, dataset, 10, new Set(['hidden2']));
    host.detach('hidden2');
    const detached = validate(host, dataset, 10);
    expect(bypassed).toEqual(detached);
    expect(withHook.loss).not.toBe(detached.loss);
    expect(withHook.accuracy).toBeGreaterThanOrEqual(0);
    hook.dispose();
    host.dispose();
  });
});

describe('syncOptimizer', () => {
  it('rebuilds the optimizer for a newly attached hook and reports it', async () => {
    const host = mlpHost({ inputSize: 2, hidden: [8, 8], numClasses: 2, seed: 1, hostId: 'sync' });
    const optimizer = new OptimizerManager(host.trainableVariables(), { config: { kind: 'adam', learningRate: 0.01 } });
    const hook = residualHook('r', 8);
    host.attach('hidden1', hook);
    const raised: { description: string; level: TelemetryLevel; attributes: EventAttributes }[] = [];
    const events = {
      event: (description: string, level: TelemetryLevel, attributes: EventAttributes) => raised.push({ description, level, attributes }),
    };
    const variables = await syncOptimizer(host, optimizer, 5, events);
    expect(variables).toEqual(host.trainableVariables());
    expect(optimizer.variables).toHaveLength(variables.length);
    expect(raised).toEqual([
      {
        description: TolariaEvent.OPTIMIZER_REBUILT,
        level: TelemetryLevel.INFO,
        attributes: expect.objectContaining({ added: 1, removed: 0, step: 5 }),
      },
    ]);
    await syncOptimizer(host, optimizer, 6, events);
    expect(raised).toHaveLength(1); // unchanged: nothing to report
    optimizer.dispose();
    host.detach('hidden1');
    hook.dispose();
    host.dispose();
  });
});
