/**
 * The trainer on the real wasm backend with a small MLP on two spirals (8 steps per
 * epoch): the loops and their packets, optimizer rebuilds as hooks come and go,
 * cancellation and tensor hygiene. Each part of the trainer has its own test file.
 */
import { describe, expect, it } from 'vitest';
import { DependencyViolationError, MemoryTelemetrySink } from '../../src/core/index.js';
import { MessagePriority, OptimizerFamily, SeedOperation, TelemetryLevel, type SystemStatePacket } from '../../src/leyline/index.js';
import { tf } from '../../src/tensor/index.js';
import { TolariaEvent, TolariaMetric } from '../../src/tolaria/names.js';
import { Trainer } from '../../src/tolaria/trainer.js';
import { GraftingExecutor, PoisonedHost, ScriptedController, seedCommand } from './fixtures/fakes.js';
import { eventsIn, metricIn, trainerKit } from './fixtures/trainer-kit.js';

const kit = trainerKit({ trainingRunId: 'run-test', hostPrefix: 'h', withEmergency: true });

describe('Trainer: loops and packets', () => {
  it('trains and validates each epoch, emitting one state packet and one telemetry packet per epoch with units on every metric', async () => {
    const { trainer, telemetry, states, steps } = kit.trainer();
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
    expect(metricIn(epochPackets[1], TolariaMetric.VALIDATION_ACCURACY.name)).toBeCloseTo(last.validationAccuracy, 6);
    expect(epochPackets[1]!.priority).toBe(MessagePriority.NORMAL);
  });

  it('hands the controller one typed step packet per step with the measured training metrics', async () => {
    const controller = new ScriptedController();
    const { trainer } = kit.trainer({
      controller,
      worker: kit.worker(),
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
    expect(() => new Trainer({ trainingRunId: '', host: kit.host(), dataset: kit.dataset(), epochs: 1, telemetry })).toThrow(
      DependencyViolationError,
    );
    const violation = telemetry.events('dependency_guard.violation');
    expect(violation).toHaveLength(1);
    expect(violation[0]?.level).toBe(TelemetryLevel.CRITICAL);
  });
});

describe('Trainer: seeds and the optimizer', () => {
  it('rebuilds the optimizer when the executor grafts and removes hooks, deferring growth within the storm-guard interval', async () => {
    const executor = new GraftingExecutor('hidden1', 16);
    kit.defer(() => executor.dispose());
    const script = new Map([
      [2, seedCommand('run-test', 'cmd-1', 'seed-a', SeedOperation.SEED_OP_GERMINATE)],
      [4, seedCommand('run-test', 'cmd-2', 'seed-a', SeedOperation.SEED_OP_CULL)],
      [5, seedCommand('run-test', 'cmd-3', 'seed-b', SeedOperation.SEED_OP_GERMINATE)],
    ]);
    const controller = new ScriptedController(script);
    const { trainer, telemetry } = kit.trainer({
      controller,
      executor,
      worker: kit.worker(),
      epochs: 2,
      optimizerRebuild: { minIntervalSteps: 4 },
    });
    const summary = await trainer.run();
    expect(summary.state).toBe('completed');
    expect(executor.applied.map((c) => c.commandId)).toEqual(['cmd-1', 'cmd-2', 'cmd-3']);
    expect(executor.advanced).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    const rebuilt = eventsIn(telemetry.packets, TolariaEvent.OPTIMIZER_REBUILT).map((e) => e.event.attributes);
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
    expect(metricIn(lastEpoch, TolariaMetric.SEEDS_ACTIVE.name)).toBe(1);
    expect(metricIn(lastEpoch, TolariaMetric.OPT_REBUILD_SKIPPED_TOTAL.name)).toBe(3);
  });
});

describe('Trainer: cancellation and tensors', () => {
  it('stops at a step boundary when aborted, and a second run continues to the same result as an uninterrupted one', async () => {
    const reference = kit.trainer();
    await reference.trainer.run();
    const h = kit.host();
    const controller = new AbortController();
    const resumed = kit.trainer({
      host: h,
      onStep: (r) => {
        resumed.steps.push(r);
        if (r.globalStep === 5) controller.abort();
      },
    });
    const first = await resumed.trainer.run({ signal: controller.signal });
    expect(first).toMatchObject({ state: 'aborted', globalStep: 5 });
    expect(resumed.trainer.cursorState).toMatchObject({ epoch: 0, position: 160 });
    expect(eventsIn(resumed.telemetry.packets, TolariaEvent.TRAINING_ABORTED)).toHaveLength(1);
    const second = await resumed.trainer.run();
    expect(second).toMatchObject({ state: 'completed', globalStep: 16 });
    expect(resumed.steps.map((s) => s.loss)).toEqual(reference.steps.map((s) => s.loss));
  });

  it('keeps tf.memory().numTensors flat over steps and returns to the baseline after dispose', async () => {
    const h = kit.host();
    const baseline = tf.memory().numTensors;
    const stop = new AbortController();
    const { trainer } = kit.trainer({
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
    const store = await kit.store();
    const h = kit.host();
    const executor = new GraftingExecutor('hidden2', 16);
    const baseline = tf.memory().numTensors;
    const controller = new ScriptedController(new Map([[3, seedCommand('run-test', 'cmd-1', 'seed-a', SeedOperation.SEED_OP_GERMINATE)]]));
    const { trainer } = kit.trainer({
      host: new PoisonedHost(h, new Set([7])),
      controller,
      executor,
      worker: kit.worker(),
      rollback: { snapshotEverySteps: 2 },
      checkpoints: { store, everySteps: 5 },
    });
    await trainer.run();
    trainer.dispose();
    executor.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });
});
