/**
 * Getting back to a sound state (`recovery.ts`): fast-tier rollback after an injected
 * non-finite loss, the full tier from the last checkpoint, and the checks a resumed
 * checkpoint must pass.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DependencyViolationError, ErrorCode } from '../../src/core/index.js';
import { EmergencyLevel, MessagePriority, TelemetryLevel } from '../../src/leyline/index.js';
import { saveVariables, tf } from '../../src/tensor/index.js';
import { CheckpointStore } from '../../src/tolaria/checkpoint.js';
import type { Executor } from '../../src/tolaria/controller.js';
import type { HostModel } from '../../src/tolaria/host-model.js';
import { TolariaEvent } from '../../src/tolaria/names.js';
import { PoisonedHost, residualHook } from './fixtures/fakes.js';
import { eventsIn, trainerKit } from './fixtures/trainer-kit.js';

const kit = trainerKit({ trainingRunId: 'run-test', hostPrefix: 'rec', withEmergency: true });

const weightsOf = (h: HostModel): number[][] => h.trainableVariables().map((v) => Array.from(v.dataSync()));

describe('Recovery: rollback tiers', () => {
  it('an injected non-finite loss raises L2, fast-rolls back weights, optimizer state and cursor, and training continues exactly as an unpoisoned run', async () => {
    const reference = kit.trainer({ rollback: { snapshotEverySteps: 5 }, worker: kit.worker() });
    await reference.trainer.run();

    const poisoned = new PoisonedHost(kit.host(), new Set([12]));
    const run = kit.trainer({ host: poisoned, rollback: { snapshotEverySteps: 5 }, worker: kit.worker() });
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
    const [nan] = eventsIn(run.telemetry.packets, TolariaEvent.NON_FINITE_LOSS);
    expect(nan?.event.attributes).toMatchObject({ step: '12', quantity: 'loss' });
    expect(nan?.packet.priority).toBe(MessagePriority.HIGH);
    const [restored] = eventsIn(run.telemetry.packets, TolariaEvent.ROLLBACK_RESTORED);
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
    const store = await kit.store();
    const h = kit.host();
    const { trainer, telemetry } = kit.trainer({ host: h, rollback: {}, worker: kit.worker(), checkpoints: { store, everySteps: 6 } });
    await trainer.run();
    const latest = await store.latest();
    expect(latest?.checkpoint.header.globalStep).toBe(16); // the epoch-end checkpoint
    // Move the weights away, then restore the checkpoint.
    for (const v of h.trainableVariables()) v.assign(tf.zerosLike(v));
    const result = await trainer.rollback({ tier: 'full' });
    expect(result).toMatchObject({ tier: 'full', toStep: 16, budgetMs: 12_000 });
    expect(result!.latencyMs).toBeLessThan(12_000);
    expect(await saveVariables(h.trainableVariables())).toEqual(latest!.checkpoint.weights);
    expect(eventsIn(telemetry.packets, TolariaEvent.ROLLBACK_RESTORED).at(-1)?.event.attributes['tier']).toBe('full');
    console.info(
      `[rollback] full tier restore (read + verify + load) of the 2-16-16-2 MLP: ${result!.latencyMs.toFixed(2)} ms (budget 12000 ms)`,
    );
  });
});

describe('Recovery: checkpoints', () => {
  it('resumes past a damaged last checkpoint from the previous one and reports what it discarded (WARNING, once)', async () => {
    const store = await kit.store();
    const h = kit.host();
    await kit.trainer({ host: h, checkpoints: { store } }).trainer.run(); // checkpoints at steps 8 and 16
    await store.close();
    const bytes = await readFile(store.path);
    bytes[bytes.length - 3] = (bytes[bytes.length - 3] as number) ^ 0x01;
    await writeFile(store.path, bytes);
    const reopened = await CheckpointStore.open(path.dirname(store.path));
    kit.defer(() => reopened.close());
    const latest = (await reopened.latest())!;
    const { trainer, telemetry } = kit.trainer({ host: h, checkpoints: { store: reopened }, rollback: {}, worker: kit.worker() });
    await trainer.restore(latest.checkpoint, { discarded: latest.discarded });
    expect(trainer.globalStep).toBe(8);
    const [discarded] = telemetry.events(TolariaEvent.CHECKPOINT_DISCARDED);
    expect(discarded?.level).toBe(TelemetryLevel.WARNING);
    expect(discarded?.attributes).toMatchObject({ file: reopened.path, record: '2', reason: 'crc', restored_step: '8' });
    // A full restore reads the same log: the same discarded record is not reported again.
    await trainer.rollback({ tier: 'full' });
    expect(telemetry.events(TolariaEvent.CHECKPOINT_DISCARDED)).toHaveLength(1);
    expect(telemetry.events(TolariaEvent.ROLLBACK_RESTORED).at(-1)?.attributes).toMatchObject({ tier: 'full', to_step: '8' });
  });

  it("refuses to resume another run's checkpoint (dependency guard) and one that does not fit the host", async () => {
    const store = await kit.store();
    const first = kit.trainer({ epochs: 1, checkpoints: { store } });
    await first.trainer.run();
    const latest = (await store.latest())!.checkpoint;
    const other = kit.trainer({ trainingRunId: 'run-other', epochs: 1 });
    await expect(other.trainer.restore(latest)).rejects.toBeInstanceOf(DependencyViolationError);
    expect(other.telemetry.events('dependency_guard.violation')).toHaveLength(1);
    const sameRun = kit.trainer({ epochs: 1 }); // another host id
    await expect(sameRun.trainer.restore(latest)).rejects.toMatchObject({ code: 'ESPER_TOLARIA_CHECKPOINT_MISMATCH' });
  });
});

describe('Recovery: a checkpoint names only what a resumed host has', () => {
  it('a hook removed at the epoch end (a seed culled there) is not in the checkpoint, so the run resumes', async () => {
    // Grafts a hook at the first step and removes it when the epoch is validated — after the
    // optimizer last synced, before the epoch-end checkpoint is cut.
    let hook: ReturnType<typeof residualHook> | undefined;
    const executor: Executor = {
      apply: () => Promise.resolve(),
      exportSeedStates: () => [],
      contributionProbes: () => [],
      advance: (context) => {
        if (hook === undefined && context.globalStep === 1) {
          hook = residualHook('culled', 16);
          context.host.attach('hidden1', hook);
        }
        return Promise.resolve();
      },
      recordValidation: (_report, context) => {
        if (hook !== undefined && context.host.hooks.has('hidden1')) context.host.detach('hidden1');
        return Promise.resolve();
      },
      exportState: () => ({}),
      restoreState: () => Promise.resolve(),
    };
    const store = await kit.store();
    const h = kit.host();
    await kit.trainer({ host: h, epochs: 1, executor, worker: kit.worker(), checkpoints: { store } }).trainer.run();
    hook?.dispose();
    const latest = (await store.latest())!.checkpoint;
    expect(latest.header.hookSites).toEqual([]);
    expect(latest.header.optimizer.variableNames.some((name) => name.startsWith('seed/culled'))).toBe(false);
    const resumed = kit.trainer({ host: h, epochs: 2, worker: kit.worker(), executor: { ...executor, advance: () => Promise.resolve() } });
    await resumed.trainer.restore(latest);
    expect(resumed.trainer.globalStep).toBe(latest.header.globalStep);
    await resumed.trainer.run();
  });
});

describe('Recovery: what it refuses and survives', () => {
  it('refuses to roll back a trainer without rollback configured (INVALID_STATE)', async () => {
    const { trainer } = kit.trainer({ epochs: 1 });
    await expect(trainer.rollback()).rejects.toMatchObject({ code: ErrorCode.INVALID_STATE });
  });

  it('reports a checkpoint it could not write at ERROR, and training goes on', async () => {
    const store = await kit.store();
    await store.close();
    const { trainer, telemetry } = kit.trainer({ epochs: 1, checkpoints: { store } });
    const summary = await trainer.run();
    expect(summary).toMatchObject({ state: 'completed', checkpointsWritten: 0 });
    const [failed] = telemetry.events(TolariaEvent.CHECKPOINT_FAILED);
    expect(failed).toMatchObject({ level: TelemetryLevel.ERROR, attributes: { trigger: 'epoch', global_step: '8' } });
  });
});
