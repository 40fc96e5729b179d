/**
 * What the trainer does when something goes wrong (`incidents.ts`): epoch verdicts on the
 * hook budget, halts on failed-epoch and failed-step streaks, and a failed step without
 * rollback.
 */
import { describe, expect, it } from 'vitest';
import { EmergencyLevel, MessagePriority } from '../../src/leyline/index.js';
import type { Controller } from '../../src/tolaria/controller.js';
import { TolariaEvent } from '../../src/tolaria/names.js';
import { MemoryEmergencySink, PoisonedHost } from './fixtures/fakes.js';
import { eventsIn, trainerKit } from './fixtures/trainer-kit.js';

const kit = trainerKit({ trainingRunId: 'run-test', hostPrefix: 'inc', withEmergency: true });

describe('Incidents: epoch verdicts', () => {
  it('a slow hook fails the epoch on its budget (HIGH); conservative mode then skips the controller and the next epoch clears it', async () => {
    let calls = 0;
    const slow: Controller = {
      evaluateStep: () => {
        calls += 1;
        return new Promise((resolve) => setTimeout(() => resolve(undefined), 3));
      },
    };
    // A generous epoch budget, so that only the hook budget can fail the epoch on a loaded machine.
    const { trainer, telemetry, emergency } = kit.trainer({
      controller: slow,
      worker: kit.worker(),
      hookBudgetMs: 1,
      epochBudgetMs: 60_000,
      epochs: 2,
    });
    const summary = await trainer.run();
    expect(summary.state).toBe('completed');
    expect(calls).toBe(8); // every step of epoch 0; none in epoch 1 (conservative)
    const [budget] = eventsIn(telemetry.packets, TolariaEvent.HOOK_BUDGET);
    expect(budget?.packet.priority).toBe(MessagePriority.HIGH);
    expect(emergency.signals.map((s) => [s.level, s.reason])).toEqual([[EmergencyLevel.ELEVATED, 'hook_budget']]);
    expect(eventsIn(telemetry.packets, TolariaEvent.CONSERVATIVE_MODE_CLEARED)).toHaveLength(1);
  });

  it('a streak of failed epochs halts training (L4 failed_epochs_streak, signal dispatched, CRITICAL)', async () => {
    const poisoned = new PoisonedHost(kit.host(), new Set([3, 11, 19]));
    const sink = new MemoryEmergencySink();
    const { trainer, telemetry } = kit.trainer({ host: poisoned, epochs: 4, emergency: { sink, failedEpochsToHalt: 2 } });
    const summary = await trainer.run();
    expect(summary).toMatchObject({ state: 'halted', epochsCompleted: 2 });
    const halt = eventsIn(telemetry.packets, TolariaEvent.EMERGENCY_HALT);
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
});

describe('Incidents: failed steps', () => {
  it('halts (L4, failed_steps_streak) when rollbacks cannot get past a persistent non-finite loss', async () => {
    const poisonFrom = new Set(Array.from({ length: 100 }, (_, i) => i + 5));
    const { trainer, emergency } = kit.trainer({ host: new PoisonedHost(kit.host(), poisonFrom), rollback: {}, worker: kit.worker() });
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
    const poisoned = new PoisonedHost(kit.host(), new Set([3]));
    const { trainer, steps, telemetry } = kit.trainer({ host: poisoned, epochs: 1 });
    const summary = await trainer.run();
    expect(summary).toMatchObject({ state: 'completed', globalStep: 7, nonFiniteLossTotal: 1 });
    expect(steps.map((s) => s.globalStep)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(eventsIn(telemetry.packets, TolariaEvent.ROLLBACK_RESTORED)).toHaveLength(0);
    expect(trainer.cursorState).toMatchObject({ epoch: 0, position: 256 });
  });
});

describe('Incidents: budgets', () => {
  it('fails an epoch whose summed hook time exceeds the epoch budget (epoch_budget) before looking at single steps', async () => {
    const slow: Controller = { evaluateStep: () => new Promise((resolve) => setTimeout(() => resolve(undefined), 3)) };
    const { trainer, telemetry } = kit.trainer({ controller: slow, worker: kit.worker(), epochBudgetMs: 10, hookBudgetMs: 1, epochs: 1 });
    const summary = await trainer.run();
    expect(summary.lastEpoch?.failureReason).toBe('epoch_budget');
    expect(eventsIn(telemetry.packets, TolariaEvent.EPOCH_BUDGET)[0]?.event.attributes['budget_ms']).toBe('10');
    expect(eventsIn(telemetry.packets, TolariaEvent.HOOK_BUDGET)).toHaveLength(0);
    expect(eventsIn(telemetry.packets, TolariaEvent.EPOCH_FAILED)[0]?.event.attributes).toMatchObject({
      epoch: '0',
      reason: 'epoch_budget',
    });
  });

  it('with observed budgets (core.latencyBudgets: observe) reports both overruns and fails nothing', async () => {
    const slow: Controller = { evaluateStep: () => new Promise((resolve) => setTimeout(() => resolve(undefined), 3)) };
    const { trainer, telemetry, emergency } = kit.trainer({
      controller: slow,
      worker: kit.worker(),
      epochBudgetMs: 10,
      hookBudgetMs: 1,
      latencyBudgets: 'observe',
      epochs: 2,
    });
    const summary = await trainer.run();
    expect(summary).toMatchObject({ state: 'completed', epochsCompleted: 2 });
    expect(summary.lastEpoch?.failureReason).toBe('');
    expect(eventsIn(telemetry.packets, TolariaEvent.EPOCH_BUDGET)).toHaveLength(2);
    expect(eventsIn(telemetry.packets, TolariaEvent.HOOK_BUDGET)).toHaveLength(2);
    expect(eventsIn(telemetry.packets, TolariaEvent.EPOCH_FAILED)).toHaveLength(0);
    expect(emergency.signals).toEqual([]);
  });
});
