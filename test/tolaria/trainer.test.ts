/**
 * The trainer on the real wasm backend with a small MLP on two spirals (8 steps per
 * epoch): the control loop, deadline misses, injected non-finite losses with rollback,
 * the optimizer rebuild storm guard, cancellation, dependency checks and tensor hygiene.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AsyncWorker, DependencyViolationError, MemoryTelemetrySink } from '../../src/core/index.js';
import {
  EmergencyLevel,
  MessagePriority,
  OptimizerFamily,
  SeedOperation,
  TelemetryLevel,
  type SystemStatePacket,
  type TelemetryPacket,
} from '../../src/leyline/index.js';
import { initTensorBackend, saveVariables, tf } from '../../src/tensor/index.js';
import { CheckpointStore } from '../../src/tolaria/checkpoint.js';
import type { Controller } from '../../src/tolaria/controller.js';
import { spiralsDataset } from '../../src/tolaria/data/synthetic.js';
import type { Dataset } from '../../src/tolaria/dataset.js';
import type { HostModel } from '../../src/tolaria/host-model.js';
import { mlpHost } from '../../src/tolaria/hosts/mlp-host.js';
import { TolariaEvent, TolariaMetric } from '../../src/tolaria/names.js';
import { Trainer } from '../../src/tolaria/trainer.js';
import type { StepReport, TrainerOptions } from '../../src/tolaria/trainer-options.js';
import { GraftingExecutor, MemoryEmergencySink, PoisonedHost, ScriptedController, StuckController, seedCommand } from './fixtures/fakes.js';

let dataset: Dataset;
beforeAll(async () => {
  await initTensorBackend();
  dataset = spiralsDataset({ seed: 5, trainSize: 256, validationSize: 64 });
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let hostCounter = 0;
function host(): HostModel {
  hostCounter += 1;
  const h = mlpHost({ inputSize: 2, hidden: [16, 16], numClasses: 2, seed: 1, hostId: `h${hostCounter}` });
  cleanups.push(() => h.dispose());
  return h;
}

function worker(): AsyncWorker {
  const w = new AsyncWorker({ name: 'tolaria-test', shutdownTimeoutMs: 100 });
  cleanups.push(() => w.close());
  return w;
}

interface Harness {
  readonly host: HostModel;
  readonly trainer: Trainer;
  readonly telemetry: MemoryTelemetrySink;
  readonly states: SystemStatePacket[];
  readonly steps: StepReport[];
  readonly emergency: MemoryEmergencySink;
}

function harness(overrides: Partial<TrainerOptions> & { host?: HostModel } = {}): Harness {
  const telemetry = new MemoryTelemetrySink();
  const states: SystemStatePacket[] = [];
  const steps: StepReport[] = [];
  const emergency = new MemoryEmergencySink();
  const model = overrides.host ?? host();
  const trainer = new Trainer({
    trainingRunId: 'run-test',
    host: model,
    dataset,
    epochs: 2,
    batchSize: 32,
    seed: 9,
    optimizer: { kind: 'adam', learningRate: 0.01 },
    telemetry,
    stateSink: { emit: (p) => states.push(p) },
    emergency: { sink: emergency },
    onStep: (r) => steps.push(r),
    ...overrides,
  });
  cleanups.push(() => trainer.dispose());
  return { host: model, trainer, telemetry, states, steps, emergency };
}

const weightsOf = (h: HostModel): number[][] => h.trainableVariables().map((v) => Array.from(v.dataSync()));
const events = (packets: readonly TelemetryPacket[], description: string) =>
  packets.flatMap((p) => p.events.filter((e) => e.description === description).map((e) => ({ packet: p, event: e })));
const metric = (packet: TelemetryPacket | undefined, name: string) => packet?.metrics.find((m) => m.name === name)?.value;

describe('Trainer: loops and packets', () => {
  it('trains and validates each epoch, emitting one state packet and one telemetry packet per epoch with units on every metric', async () => {
    const { trainer, telemetry, states, steps } = harness();
    const summary = await trainer.run();
    expect(summary).toMatchObject({ state: 'completed', epochsCompleted: 2, globalStep: 16 });
    expect(steps.map((s) => s.globalStep)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(steps[7]).toMatchObject({ epoch: 0, stepInEpoch: 8, stepsPerEpoch: 8 });
    expect(states.map((s) => s.packetId)).toEqual(['run-test-epoch-0', 'run-test-epoch-1']);
    const last = states[1]!;
    expect(last).toMatchObject({ version: 1, currentEpoch: 1, globalStep: 16n, sourceSubsystem: 'tolaria', trainingRunId: 'run-test' });
    expect(last.validationAccuracy).toBeGreaterThan(0);
    expect(last.validationLoss).toBeGreaterThan(0);
    expect(last.hardwareContext?.deviceType).toBe('cpu');
    expect(last.metrics?.optimizerFamily).toBe(OptimizerFamily.ADAM);
    expect(last.metrics?.epochsTotal).toBe(2);
    const epochPackets = telemetry.packets.filter((p) => p.metrics.some((m) => m.name === TolariaMetric.TRAINING_LOSS.name));
    expect(epochPackets).toHaveLength(2);
    const names = new Set(epochPackets[1]!.metrics.map((m) => m.name));
    for (const expected of [
      TolariaMetric.TRAINING_LOSS,
      TolariaMetric.TRAINING_ACCURACY,
      TolariaMetric.TRAINING_LATENCY_MS,
      TolariaMetric.SEEDS_ACTIVE,
      TolariaMetric.VALIDATION_ACCURACY,
      TolariaMetric.EPOCHS_TOTAL,
      TolariaMetric.BREAKER_STATE,
    ]) {
      expect(names.has(expected.name)).toBe(true);
    }
    expect(telemetry.packets.every((p) => p.metrics.every((m) => m.unit.length > 0))).toBe(true);
    expect(metric(epochPackets[1], TolariaMetric.VALIDATION_ACCURACY.name)).toBeCloseTo(last.validationAccuracy, 6);
    expect(epochPackets[1]!.priority).toBe(MessagePriority.NORMAL);
  });

  it('hands the controller one typed step packet per step with the measured training metrics', async () => {
    const controller = new ScriptedController();
    const { trainer } = harness({
      controller,
      worker: worker(),
      epochs: 1,
      lrSchedule: { policy: 'cosine', totalSteps: 8, warmupSteps: 2 },
    });
    await trainer.run();
    expect(controller.packets.map((p) => Number(p.globalStep))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const [first, second] = controller.packets as [SystemStatePacket, SystemStatePacket];
    expect(first.packetId).toBe('run-test-step-1');
    expect(first.metrics?.lossDelta).toBe(0);
    expect(first.metrics?.optimizerLr).toBeCloseTo(0.005, 7); // warm-up step 1 of 2
    expect(second.metrics?.optimizerLr).toBeCloseTo(0.01, 7);
    for (const packet of controller.packets) {
      const m = packet.metrics!;
      expect(Number.isFinite(packet.trainingLoss)).toBe(true);
      expect(m.gradientNorm).toBeGreaterThan(0);
      expect(m.samplesPerS).toBeGreaterThan(0);
      expect(m.lossEwma).toBeGreaterThan(0);
      expect(m.optimizerFamily).toBe(OptimizerFamily.ADAM);
      expect(m.inputWaitMs).toBeGreaterThanOrEqual(0);
      expect(m.gpuUtilPercent).toBe(0); // not measurable here: left unset
    }
    // Hook timings describe the previous step.
    expect(first.metrics?.stepLatencyMs).toBe(0);
    expect(second.metrics?.stepLatencyMs).toBeGreaterThan(0);
    expect(second.metrics?.tamiyoLatencyMs).toBeGreaterThan(0);
  });

  it('requires a training run id: the dependency guard throws and emits CRITICAL telemetry', () => {
    const telemetry = new MemoryTelemetrySink();
    expect(() => new Trainer({ trainingRunId: '', host: host(), dataset, epochs: 1, telemetry })).toThrow(DependencyViolationError);
    const violation = telemetry.events('dependency_guard.violation');
    expect(violation).toHaveLength(1);
    expect(violation[0]?.level).toBe(TelemetryLevel.CRITICAL);
  });
});

describe('Trainer: epoch control and checkpoints', () => {
  it('calls evaluateEpoch with the validated epoch packet and applies its command', async () => {
    const executor = new GraftingExecutor('hidden2', 16);
    cleanups.push(() => executor.dispose());
    const seen: SystemStatePacket[] = [];
    const controller: Controller = {
      evaluateStep: async () => undefined,
      evaluateEpoch: async (state) => {
        seen.push(state);
        return seen.length === 1 ? seedCommand('run-test', 'cmd-epoch', 'seed-e', SeedOperation.SEED_OP_GERMINATE) : undefined;
      },
    };
    const { trainer, telemetry } = harness({ controller, executor, worker: worker() });
    await trainer.run();
    expect(seen.map((p) => p.packetId)).toEqual(['run-test-epoch-0', 'run-test-epoch-1']);
    expect(seen[0]!.validationAccuracy).toBeGreaterThan(0);
    expect(executor.applied.map((c) => c.commandId)).toEqual(['cmd-epoch']);
    expect(events(telemetry.packets, TolariaEvent.OPTIMIZER_REBUILT)[0]?.event.attributes).toMatchObject({ step: '8', added: '1' });
  });

  it("refuses to resume another run's checkpoint (dependency guard) and one that does not fit the host", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'esper-trainer-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const store = await CheckpointStore.open(dir);
    cleanups.push(() => store.close());
    const first = harness({ epochs: 1, checkpoints: { store } });
    await first.trainer.run();
    const latest = (await store.latest())!.checkpoint;
    const other = harness({ trainingRunId: 'run-other', epochs: 1 });
    await expect(other.trainer.restore(latest)).rejects.toBeInstanceOf(DependencyViolationError);
    expect(other.telemetry.events('dependency_guard.violation')).toHaveLength(1);
    const sameRun = harness({ epochs: 1 }); // another host id
    await expect(sameRun.trainer.restore(latest)).rejects.toMatchObject({ code: 'ESPER_TOLARIA_CHECKPOINT_MISMATCH' });
  });
});

describe('Trainer: control loop deadlines', () => {
  it('a controller that misses its deadline does not stall the step: the step proceeds, the miss is counted, the packet is HIGH', async () => {
    const controller = new StuckController();
    cleanups.push(() => controller.release());
    const { trainer, telemetry, emergency, steps } = harness({ controller, worker: worker(), controllerDeadlineMs: 25, epochs: 1 });
    const summary = await trainer.run();
    // The run finished although the controller never answered.
    expect(summary.state).toBe('completed');
    expect(steps).toHaveLength(8);
    expect(summary.controllerTimeouts).toBe(1);
    expect(controller.calls).toBe(1); // conservative mode skips the controller for the rest of the epoch
    const [miss] = events(telemetry.packets, TolariaEvent.TAMIYO_TIMEOUT);
    expect(miss?.event.level).toBe(TelemetryLevel.WARNING);
    expect(miss?.packet.priority).toBe(MessagePriority.HIGH);
    expect(metric(miss?.packet, TolariaMetric.TIMEOUT_TAMIYO_TOTAL.name)).toBe(1);
    expect(miss?.event.attributes['deadline_ms']).toBe('25');
    expect(events(telemetry.packets, TolariaEvent.CONSERVATIVE_MODE_ENTERED)).toHaveLength(1);
    // The epoch failed with the miss as its reason, and the emergency protocol saw it.
    const epochPacket = telemetry.packets.at(-1)!;
    expect(epochPacket.systemHealth?.summary).toBe('tamiyo_timeout');
    expect(metric(epochPacket, TolariaMetric.MODE_CONSERVATIVE.name)).toBe(1);
    expect(emergency.signals.map((s) => [s.level, s.reason])).toEqual([[EmergencyLevel.ELEVATED, 'tamiyo_timeout']]);
  });

  it('a slow hook fails the epoch on its budget (HIGH); conservative mode then skips the controller and the next epoch clears it', async () => {
    let calls = 0;
    const slow: Controller = {
      evaluateStep: () => {
        calls += 1;
        return new Promise((resolve) => setTimeout(() => resolve(undefined), 3));
      },
    };
    const { trainer, telemetry, emergency } = harness({ controller: slow, worker: worker(), hookBudgetMs: 1, epochs: 2 });
    const summary = await trainer.run();
    expect(summary.state).toBe('completed');
    expect(calls).toBe(8); // every step of epoch 0; none in epoch 1 (conservative)
    const [budget] = events(telemetry.packets, TolariaEvent.HOOK_BUDGET);
    expect(budget?.packet.priority).toBe(MessagePriority.HIGH);
    expect(emergency.signals.map((s) => [s.level, s.reason])).toEqual([[EmergencyLevel.ELEVATED, 'hook_budget']]);
    expect(events(telemetry.packets, TolariaEvent.CONSERVATIVE_MODE_CLEARED)).toHaveLength(1);
  });

  it('a streak of failed epochs halts training (L4 failed_epochs_streak, signal dispatched, CRITICAL)', async () => {
    const poisoned = new PoisonedHost(host(), new Set([3, 11, 19]));
    const sink = new MemoryEmergencySink();
    const { trainer, telemetry } = harness({ host: poisoned, epochs: 4, emergency: { sink, failedEpochsToHalt: 2 } });
    const summary = await trainer.run();
    expect(summary).toMatchObject({ state: 'halted', epochsCompleted: 2 });
    const halt = events(telemetry.packets, TolariaEvent.EMERGENCY_HALT);
    expect(halt).toHaveLength(1);
    expect(halt[0]?.event.attributes['reason']).toBe('failed_epochs_streak');
    expect(halt[0]?.packet.priority).toBe(MessagePriority.CRITICAL);
    expect(telemetry.packets.at(-1)?.systemHealth?.summary).toBe('halted');
    expect(sink.signals.map((s) => [s.level, s.reason])).toEqual([
      [EmergencyLevel.ELEVATED, 'non_finite_loss'], // step of epoch 0
      [EmergencyLevel.ELEVATED, 'non_finite_loss'], // epoch 0 failed
      [EmergencyLevel.ELEVATED, 'non_finite_loss'], // step of epoch 1
      [EmergencyLevel.ELEVATED, 'non_finite_loss'], // epoch 1 failed
      [EmergencyLevel.HALT, 'failed_epochs_streak'],
    ]);
    expect(trainer.state).toBe('halted');
  });

  it('hands executor commands to the executor as they are: it checks them where it applies them, not Tolaria', async () => {
    const executor = new GraftingExecutor('hidden1', 16);
    cleanups.push(() => executor.dispose());
    const controller = new ScriptedController(new Map([[2, seedCommand('other-run', 'cmd-1', 'seed-a', SeedOperation.SEED_OP_GERMINATE)]]));
    const { trainer, telemetry } = harness({ controller, executor, worker: worker(), epochs: 1 });
    await trainer.run();
    expect(executor.applied.map((c) => c.commandId)).toEqual(['cmd-1']);
    expect(telemetry.events('dependency_guard.violation')).toHaveLength(0);
  });
});

describe('Trainer: non-finite loss, rollback and emergencies', () => {
  it('an injected non-finite loss raises L2, fast-rolls back weights, optimizer state and cursor, and training continues exactly as an unpoisoned run', async () => {
    const reference = harness({ rollback: { snapshotEverySteps: 5 }, worker: worker() });
    await reference.trainer.run();

    const poisoned = new PoisonedHost(host(), new Set([12]));
    const run = harness({ host: poisoned, rollback: { snapshotEverySteps: 5 }, worker: worker() });
    const summary = await run.trainer.run();

    expect(summary).toMatchObject({
      state: 'completed',
      globalStep: 16,
      nonFiniteLossTotal: 1,
      rollbacks: { fastHits: 1, fullRestores: 0, failures: 0 },
    });
    expect(run.emergency.signals.map((s) => [s.level, s.reason, Number(s.globalStep)])).toEqual([
      [EmergencyLevel.ELEVATED, 'non_finite_loss', 11],
      [EmergencyLevel.ELEVATED, 'non_finite_loss', 16], // the failed epoch, at its end
    ]);
    const [nan] = events(run.telemetry.packets, TolariaEvent.NON_FINITE_LOSS);
    expect(nan?.event.attributes).toMatchObject({ step: '12', quantity: 'loss' });
    expect(nan?.packet.priority).toBe(MessagePriority.HIGH);
    const [restored] = events(run.telemetry.packets, TolariaEvent.ROLLBACK_RESTORED);
    expect(restored?.event.attributes).toMatchObject({ tier: 'fast', from_step: '11', to_step: '10', budget_ms: '500' });
    const fastMs = Number(restored?.event.attributes['latency_ms']);
    expect(fastMs).toBeLessThan(500);
    // After the rollback, steps 11.. replay the reference run bit for bit: the weights,
    // the Adam moments and the data cursor all came back.
    const replayed = run.steps.filter((s) => s.globalStep >= 11).slice(-6);
    const expected = reference.steps.filter((s) => s.globalStep >= 11);
    expect(replayed.map((s) => [s.globalStep, s.loss])).toEqual(expected.map((s) => [s.globalStep, s.loss]));
    expect(weightsOf(poisoned)).toEqual(weightsOf(reference.host));
    expect(run.trainer.cursorState).toEqual(reference.trainer.cursorState);
    expect(run.states[1]?.metrics?.epochsTotal).toBe(2);
    console.info(`[rollback] fast tier restore of the 2-16-16-2 MLP: ${fastMs.toFixed(3)} ms (budget 500 ms)`);
  });

  it('restores the full tier from the last checkpoint within its deadline and reports the time', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'esper-trainer-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const store = await CheckpointStore.open(dir);
    cleanups.push(() => store.close());
    const h = host();
    const { trainer, telemetry } = harness({ host: h, rollback: {}, worker: worker(), checkpoints: { store, everySteps: 6 } });
    await trainer.run();
    const latest = await store.latest();
    expect(latest?.checkpoint.header.globalStep).toBe(16); // the epoch-end checkpoint
    // Move the weights away, then restore the checkpoint.
    for (const v of h.trainableVariables()) v.assign(tf.zerosLike(v));
    const result = await trainer.rollback({ tier: 'full' });
    expect(result).toMatchObject({ tier: 'full', toStep: 16, budgetMs: 12_000 });
    expect(result!.latencyMs).toBeLessThan(12_000);
    expect(await saveVariables(h.trainableVariables())).toEqual(latest!.checkpoint.weights);
    expect(events(telemetry.packets, TolariaEvent.ROLLBACK_RESTORED).at(-1)?.event.attributes['tier']).toBe('full');
    console.info(
      `[rollback] full tier restore (read + verify + load) of the 2-16-16-2 MLP: ${result!.latencyMs.toFixed(2)} ms (budget 12000 ms)`,
    );
  });

  it('halts (L4, failed_steps_streak) when rollbacks cannot get past a persistent non-finite loss', async () => {
    const poisonFrom = new Set(Array.from({ length: 100 }, (_, i) => i + 5));
    const { trainer, emergency } = harness({ host: new PoisonedHost(host(), poisonFrom), rollback: {}, worker: worker() });
    const summary = await trainer.run();
    expect(summary.state).toBe('halted');
    expect(summary.globalStep).toBe(4);
    expect(emergency.signals.map((s) => [s.level, s.reason])).toEqual([
      [EmergencyLevel.ELEVATED, 'non_finite_loss'],
      [EmergencyLevel.ELEVATED, 'non_finite_loss'],
      [EmergencyLevel.ELEVATED, 'non_finite_loss'],
      [EmergencyLevel.HALT, 'failed_steps_streak'],
    ]);
  });

  it('without rollback, skips the poisoned batch (no update) and carries on', async () => {
    const poisoned = new PoisonedHost(host(), new Set([3]));
    const { trainer, steps, telemetry } = harness({ host: poisoned, epochs: 1 });
    const summary = await trainer.run();
    expect(summary).toMatchObject({ state: 'completed', globalStep: 7, nonFiniteLossTotal: 1 });
    expect(steps.map((s) => s.globalStep)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(events(telemetry.packets, TolariaEvent.ROLLBACK_RESTORED)).toHaveLength(0);
    expect(trainer.cursorState).toMatchObject({ epoch: 0, position: 256 });
  });
});

describe('Trainer: seeds and the optimizer', () => {
  it('rebuilds the optimizer when the executor grafts and removes hooks, deferring growth within the storm-guard interval', async () => {
    const executor = new GraftingExecutor('hidden1', 16);
    cleanups.push(() => executor.dispose());
    const script = new Map([
      [2, seedCommand('run-test', 'cmd-1', 'seed-a', SeedOperation.SEED_OP_GERMINATE)],
      [4, seedCommand('run-test', 'cmd-2', 'seed-a', SeedOperation.SEED_OP_CULL)],
      [5, seedCommand('run-test', 'cmd-3', 'seed-b', SeedOperation.SEED_OP_GERMINATE)],
    ]);
    const controller = new ScriptedController(script);
    const { trainer, telemetry } = harness({
      controller,
      executor,
      worker: worker(),
      epochs: 2,
      optimizerRebuild: { minIntervalSteps: 4 },
    });
    const summary = await trainer.run();
    expect(summary.state).toBe('completed');
    expect(executor.applied.map((c) => c.commandId)).toEqual(['cmd-1', 'cmd-2', 'cmd-3']);
    expect(executor.advanced).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    const rebuilt = events(telemetry.packets, TolariaEvent.OPTIMIZER_REBUILT).map((e) => e.event.attributes);
    expect(rebuilt.map((a) => [a['step'], a['added'], a['removed'], a['forced']])).toEqual([
      ['2', '1', '0', 'false'],
      ['4', '0', '1', 'true'],
      ['8', '1', '0', 'false'],
    ]);
    expect(trainer.optimizerStats()).toMatchObject({ rebuildsTotal: 3, rebuildSkippedTotal: 3, pendingVariables: 0 });
    // Per-seed attribution of the seed grafted at hidden1.
    const lastEpoch = telemetry.packets.filter((p) => p.metrics.some((m) => m.name === TolariaMetric.TRAINING_LOSS.name)).at(-1)!;
    const seedNorm = lastEpoch.metrics.find((m) => m.name === TolariaMetric.SEED_GRAD_NORM.name);
    expect(seedNorm?.attributes).toMatchObject({ seed_id: 'seed-b', site_id: 'hidden1' });
    expect(seedNorm?.value).toBeGreaterThan(0);
    const share = lastEpoch.metrics.find((m) => m.name === TolariaMetric.SEED_GRAD_SHARE.name)?.value ?? -1;
    expect(share).toBeGreaterThan(0);
    expect(share).toBeLessThan(1);
    expect(metric(lastEpoch, TolariaMetric.SEEDS_ACTIVE.name)).toBe(1);
    expect(metric(lastEpoch, TolariaMetric.OPT_REBUILD_SKIPPED_TOTAL.name)).toBe(3);
  });
});

describe('Trainer: cancellation and tensors', () => {
  it('stops at a step boundary when aborted, and a second run continues to the same result as an uninterrupted one', async () => {
    const reference = harness();
    await reference.trainer.run();
    const h = host();
    const controller = new AbortController();
    const resumed = harness({
      host: h,
      onStep: (r) => {
        resumed.steps.push(r);
        if (r.globalStep === 5) controller.abort();
      },
    });
    const first = await resumed.trainer.run({ signal: controller.signal });
    expect(first).toMatchObject({ state: 'aborted', globalStep: 5 });
    expect(resumed.trainer.cursorState).toMatchObject({ epoch: 0, position: 160 });
    expect(events(resumed.telemetry.packets, TolariaEvent.TRAINING_ABORTED)).toHaveLength(1);
    const second = await resumed.trainer.run();
    expect(second).toMatchObject({ state: 'completed', globalStep: 16 });
    expect(resumed.steps.map((s) => s.loss)).toEqual(reference.steps.map((s) => s.loss));
  });

  it('keeps tf.memory().numTensors flat over steps and returns to the baseline after dispose', async () => {
    const h = host();
    const baseline = tf.memory().numTensors;
    const stop = new AbortController();
    const { trainer } = harness({
      host: h,
      epochs: 3,
      onStep: (r) => {
        if (r.globalStep === 3) stop.abort();
      },
    });
    await trainer.run({ signal: stop.signal }); // three steps: the optimizer's slots exist now
    const warm = tf.memory().numTensors;
    const summary = await trainer.run(); // 21 more steps and three validation passes
    expect(summary.globalStep).toBe(24);
    expect(tf.memory().numTensors).toBe(warm);
    trainer.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('frees every snapshot and optimizer slot on dispose with rollback, checkpoints, seeds and the control loop on', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'esper-trainer-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const store = await CheckpointStore.open(dir);
    cleanups.push(() => store.close());
    const h = host();
    const executor = new GraftingExecutor('hidden2', 16);
    const baseline = tf.memory().numTensors;
    const controller = new ScriptedController(new Map([[3, seedCommand('run-test', 'cmd-1', 'seed-a', SeedOperation.SEED_OP_GERMINATE)]]));
    const { trainer } = harness({
      host: new PoisonedHost(h, new Set([7])),
      controller,
      executor,
      worker: worker(),
      rollback: { snapshotEverySteps: 2 },
      checkpoints: { store, everySteps: 5 },
    });
    await trainer.run();
    trainer.dispose();
    executor.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });
});
