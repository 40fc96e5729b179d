import { describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError } from '../../src/core/index.js';
import { EmergencyLevel } from '../../src/leyline/index.js';
import { EmergencyController, EmergencyReason } from '../../src/tolaria/emergency.js';
import { MemoryEmergencySink } from './fixtures/fakes.js';

const at = { epoch: 2, globalStep: 41 };

describe('EmergencyController', () => {
  it('dispatches a complete signal for each trigger and raises the level', () => {
    const sink = new MemoryEmergencySink();
    const clock = new FakeClock({ monotonicMs: 5_000, wallMs: Date.UTC(2026, 0, 2) });
    const controller = new EmergencyController({ trainingRunId: 'run-1', sink, clock });
    expect(controller.level).toBe(EmergencyLevel.NOTICE);
    const result = controller.escalate(EmergencyLevel.ELEVATED, EmergencyReason.NON_FINITE_LOSS, at);
    expect(result).toMatchObject({
      requested: EmergencyLevel.ELEVATED,
      previous: EmergencyLevel.NOTICE,
      level: EmergencyLevel.ELEVATED,
      dispatched: true,
    });
    expect(sink.signals).toHaveLength(1);
    const signal = sink.signals[0]!;
    expect(signal).toMatchObject({
      version: 1,
      level: EmergencyLevel.ELEVATED,
      reason: 'non_finite_loss',
      origin: 'tolaria',
      trainingRunId: 'run-1',
      epoch: 2,
      globalStep: 41n,
      monotonicTimeMs: 5000n,
      operatorInitiated: false,
    });
    expect(Number(signal.triggeredAt?.seconds)).toBe(Date.UTC(2026, 0, 2) / 1000);
  });

  it('dispatches even when the level does not rise, and never lowers it on a weaker trigger', () => {
    const sink = new MemoryEmergencySink();
    const controller = new EmergencyController({ trainingRunId: 'run-1', sink });
    controller.escalate(EmergencyLevel.CONSERVATIVE, EmergencyReason.BREAKER_OPEN, at);
    const second = controller.escalate(EmergencyLevel.ELEVATED, EmergencyReason.TAMIYO_TIMEOUT, at);
    expect(second.level).toBe(EmergencyLevel.CONSERVATIVE);
    expect(sink.signals.map((s) => s.level)).toEqual([EmergencyLevel.CONSERVATIVE, EmergencyLevel.ELEVATED]);
  });

  it('resets to NOTICE after recovery, but a HALT is final', () => {
    const controller = new EmergencyController({ trainingRunId: 'run-1', sink: new MemoryEmergencySink() });
    controller.escalate(EmergencyLevel.ELEVATED, EmergencyReason.EPOCH_BUDGET, at);
    controller.reset();
    expect(controller.level).toBe(EmergencyLevel.NOTICE);
    controller.escalate(EmergencyLevel.HALT, EmergencyReason.FAILED_EPOCHS_STREAK, at);
    controller.reset();
    expect(controller.level).toBe(EmergencyLevel.HALT);
    expect(controller.stats()).toMatchObject({ halted: true, haltsTotal: 1 });
  });

  it('suppresses repeats of one level and reason beyond the per-minute cap, but never a HALT', () => {
    const sink = new MemoryEmergencySink();
    const clock = new FakeClock();
    const controller = new EmergencyController({ trainingRunId: 'run-1', sink, clock, maxRepeatsPerMinute: 2 });
    for (let i = 0; i < 4; i += 1) controller.escalate(EmergencyLevel.ELEVATED, EmergencyReason.HOOK_BUDGET, at);
    controller.escalate(EmergencyLevel.ELEVATED, EmergencyReason.EPOCH_BUDGET, at);
    for (let i = 0; i < 3; i += 1) controller.escalate(EmergencyLevel.HALT, EmergencyReason.ROLLBACK_DEADLINE, at);
    expect(controller.stats()).toMatchObject({ broadcastsTotal: 6, suppressedTotal: 2 });
    clock.advance(60_000);
    expect(controller.escalate(EmergencyLevel.ELEVATED, EmergencyReason.HOOK_BUDGET, at).dispatched).toBe(true);
    expect(sink.signals).toHaveLength(7);
  });

  it('rejects a level outside NOTICE..HALT and a blank run id', () => {
    const controller = new EmergencyController({ trainingRunId: 'run-1', sink: new MemoryEmergencySink() });
    expect(() => controller.escalate(EmergencyLevel.UNSPECIFIED, EmergencyReason.HOOK_BUDGET, at)).toThrow(/NOTICE..HALT/);
    let caught: unknown;
    try {
      new EmergencyController({ trainingRunId: ' ', sink: new MemoryEmergencySink() });
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
  });
});
