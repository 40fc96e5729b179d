/**
 * Acceptance on real data (the first criterion): the MNIST MLP host (784-256-256-10)
 * reaches ≥ 93 % validation accuracy, and two runs with the same seed produce bit-identical
 * loss sequences. Also measures both rollback tiers on this model. The one slow file of
 * the Tolaria tests (a few seconds of training on the wasm backend).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AsyncWorker, MemoryTelemetrySink } from '../../src/core/index.js';
import { initTensorBackend } from '../../src/tensor/index.js';
import { CheckpointStore } from '../../src/tolaria/checkpoint.js';
import { loadMnist } from '../../src/tolaria/data/mnist.js';
import type { Dataset } from '../../src/tolaria/dataset.js';
import type { HostModel } from '../../src/tolaria/host-model.js';
import { mlpHost } from '../../src/tolaria/hosts/mlp-host.js';
import { Trainer } from '../../src/tolaria/trainer.js';
import type { EpochReport, TrainerOptions } from '../../src/tolaria/trainer-options.js';

/** The recipe: 2 epochs of Adam 2e-3 with cosine decay, batch 64. */
const EPOCHS = 2;
const BATCH = 64;

let dataset: Dataset;
let dir: string;
const hosts: HostModel[] = [];
const workers: AsyncWorker[] = [];

beforeAll(async () => {
  await initTensorBackend();
  dataset = await loadMnist();
  dir = await mkdtemp(path.join(tmpdir(), 'esper-mnist-'));
});

afterAll(async () => {
  for (const h of hosts) h.dispose();
  for (const w of workers) await w.close();
  await rm(dir, { recursive: true, force: true });
});

function options(hostId: string, extra: Partial<TrainerOptions> = {}): TrainerOptions {
  const host = mlpHost({ inputShape: dataset.inputShape, hidden: [256, 256], numClasses: 10, seed: 1, hostId });
  hosts.push(host);
  const stepsPerEpoch = Math.ceil(dataset.train.size / BATCH);
  return {
    trainingRunId: `mnist-${hostId}`,
    host,
    dataset,
    epochs: EPOCHS,
    batchSize: BATCH,
    seed: 1,
    optimizer: { kind: 'adam', learningRate: 2e-3 },
    lrSchedule: { policy: 'cosine', totalSteps: EPOCHS * stepsPerEpoch },
    telemetry: new MemoryTelemetrySink(100),
    ...extra,
  };
}

describe('MNIST MLP acceptance', () => {
  const losses: number[] = [];
  const epochs: EpochReport[] = [];

  it(`reaches ≥ 93 % validation accuracy in ${EPOCHS} epochs (with rollback snapshots and checkpoints on)`, async () => {
    const worker = new AsyncWorker({ name: 'mnist-test' });
    workers.push(worker);
    const store = await CheckpointStore.open(dir);
    const trainer = new Trainer(
      options('mnist-a', {
        worker,
        rollback: {},
        checkpoints: { store },
        onStep: (r) => losses.push(r.loss),
        onEpoch: (r) => epochs.push(r),
      }),
    );
    const summary = await trainer.run();
    expect(summary.state).toBe('completed');
    const accuracy = summary.lastEpoch?.validationAccuracy ?? 0;
    console.info(
      `[mnist] ${dataset.train.size} train / ${dataset.validation.size} validation digits, ${summary.globalStep} steps, ` +
        `validation accuracy by epoch ${epochs.map((e) => (e.validationAccuracy * 100).toFixed(2)).join(' → ')} %, ` +
        `wall ${(summary.wallMs / 1000).toFixed(1)} s`,
    );
    expect(accuracy).toBeGreaterThanOrEqual(0.93);

    // Both rollback tiers on this model (270k parameters, Adam state).
    const fast = await trainer.rollback();
    const full = await trainer.rollback({ tier: 'full' });
    expect(fast).toMatchObject({ tier: 'fast', toStep: summary.globalStep });
    expect(full).toMatchObject({ tier: 'full', toStep: summary.globalStep });
    expect(fast!.latencyMs).toBeLessThan(500);
    expect(full!.latencyMs).toBeLessThan(12_000);
    console.info(
      `[mnist] rollback: fast ${fast!.latencyMs.toFixed(2)} ms (budget 500 ms), full ${full!.latencyMs.toFixed(1)} ms (budget 12000 ms)`,
    );
    trainer.dispose();
    await store.close();
  });

  it('replays bit-identical losses with the same seed', async () => {
    const replay: number[] = [];
    const stop = new AbortController();
    const trainer = new Trainer(
      options('mnist-b', {
        onStep: (r) => {
          replay.push(r.loss);
          if (r.globalStep === 60) stop.abort();
        },
      }),
    );
    await trainer.run({ signal: stop.signal });
    expect(replay).toHaveLength(60);
    expect(replay).toEqual(losses.slice(0, 60));
    trainer.dispose();
  });
});
