import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CommandType, FieldReportOutcome, RiskReason, SeedLifecycleStage } from '../../src/leyline/index.js';
import { buildReport, classifyOutcome, wasCulled, WindowClosure, type ClosedWindow } from '../../src/tamiyo/field-report-window.js';

/** A window as it closes, but for the fields each test sets. */
const base: Omit<ClosedWindow, 'closure' | 'reason' | 'commandType' | 'lossDeltaSum' | 'hasCritical'> = {
  commandId: 'c',
  seedId: 's',
  blueprintId: 'b',
  policyVersion: 'p',
  startEpoch: 0,
  targetEpochs: 3,
  openedAtMs: 0,
  epochsObserved: 1,
  lastEpoch: 0,
  lossDeltaMin: null,
  lossDeltaMax: null,
  hookLatencySumMs: 0,
  hookLatencySamples: 0,
  firstValidationAccuracy: null,
  lastValidationAccuracy: null,
  seedStage: SeedLifecycleStage.SEED_STAGE_UNKNOWN,
  contribution: null,
  decisionDelta: {},
};

describe('classifyOutcome', () => {
  const closures = Object.values(WindowClosure);
  const reasons = [RiskReason.POLICY, RiskReason.TIMEOUT_INFERENCE, RiskReason.LOSS_SPIKE, RiskReason.UNSPECIFIED];
  const windowArb = fc.record({
    closure: fc.constantFrom(...closures),
    reason: fc.constantFrom(...reasons),
    commandType: fc.constantFrom(CommandType.COMMAND_SEED, CommandType.COMMAND_PAUSE),
    lossDeltaSum: fc.double({ min: -10, max: 10, noNaN: true }),
    hasCritical: fc.boolean(),
  });

  it('follows the documented rules for every combination', () => {
    fc.assert(
      fc.property(windowArb, (w) => {
        const outcome = classifyOutcome({ ...base, ...w });
        expect(outcome).not.toBe(FieldReportOutcome.UNSPECIFIED);
        expect(outcome === FieldReportOutcome.ABORTED).toBe(w.closure === WindowClosure.ABORTED);
        if (w.closure === WindowClosure.ABORTED) return;
        if (w.reason === RiskReason.TIMEOUT_INFERENCE) expect(outcome).toBe(FieldReportOutcome.NEUTRAL);
        else if (w.closure === WindowClosure.FOSSILIZED) expect(outcome).toBe(FieldReportOutcome.SUCCESS);
        else if (w.hasCritical || w.reason === RiskReason.LOSS_SPIKE || w.lossDeltaSum > 0) {
          expect(outcome).toBe(FieldReportOutcome.REGRESSION);
        } else if (w.closure === WindowClosure.CULLED || w.commandType === CommandType.COMMAND_PAUSE || w.lossDeltaSum === 0) {
          expect(outcome).toBe(FieldReportOutcome.NEUTRAL);
        } else expect(outcome).toBe(FieldReportOutcome.SUCCESS);
      }),
    );
  });
});

describe('wasCulled', () => {
  const S = SeedLifecycleStage;
  it('is true for a culled stage, and for DORMANT or gone after a held stage only', () => {
    for (const stage of [S.SEED_STAGE_CULLED, S.SEED_STAGE_EMBARGOED, S.SEED_STAGE_RESETTING, S.SEED_STAGE_TERMINATED]) {
      expect(wasCulled(S.SEED_STAGE_UNKNOWN, stage)).toBe(true);
    }
    expect(wasCulled(S.SEED_STAGE_PROBATIONARY, S.SEED_STAGE_DORMANT)).toBe(true);
    expect(wasCulled(S.SEED_STAGE_FOSSILIZED, S.SEED_STAGE_DORMANT)).toBe(true);
    expect(wasCulled(S.SEED_STAGE_UNKNOWN, S.SEED_STAGE_DORMANT)).toBe(false);
    expect(wasCulled(S.SEED_STAGE_DORMANT, S.SEED_STAGE_DORMANT)).toBe(false);
    expect(wasCulled(S.SEED_STAGE_TRAINING, S.SEED_STAGE_BLENDING)).toBe(false);
    // Gone from the packet: Kasmina dropped it after its reset.
    expect(wasCulled(S.SEED_STAGE_PROBATIONARY, undefined)).toBe(true);
    expect(wasCulled(S.SEED_STAGE_UNKNOWN, undefined)).toBe(false);
  });
});

describe('buildReport', () => {
  const window: ClosedWindow = {
    ...base,
    closure: WindowClosure.COMPLETED,
    reason: RiskReason.UNSPECIFIED,
    commandType: CommandType.COMMAND_SEED,
    lossDeltaSum: -0.5,
    hasCritical: false,
  };

  it('carries the contribution as a fraction when measured, and leaves it unset (not 0) when not', () => {
    expect(buildReport({ ...window, contribution: 0.098 }, 'run', 0).delta?.counterfactualContribution).toBe(Math.fround(0.098));
    expect(buildReport({ ...window, contribution: 0 }, 'run', 0).delta?.counterfactualContribution).toBe(0);
    expect(buildReport(window, 'run', 0).delta?.counterfactualContribution).toBeUndefined();
  });
});
