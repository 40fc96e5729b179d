import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/index.js';
import { SeedLifecycleGate, SeedLifecycleStage } from '../../src/leyline/index.js';
import {
  allowedNext,
  gateName,
  isTransitionAllowed,
  LIFECYCLE_TRANSITIONS,
  SeedLifecycle,
  stageName,
} from '../../src/kasmina/lifecycle.js';
import { thrownBy } from '../support/thrown.js';

const S = SeedLifecycleStage;
const ALL_STAGES = Object.values(S).filter((v): v is SeedLifecycleStage => typeof v === 'number');

/** The reference §4.2 table, written out independently of the implementation. */
const EXPECTED: ReadonlyArray<[SeedLifecycleStage, SeedLifecycleStage[]]> = [
  [S.SEED_STAGE_UNKNOWN, [S.SEED_STAGE_DORMANT]],
  [S.SEED_STAGE_DORMANT, [S.SEED_STAGE_GERMINATED, S.SEED_STAGE_TERMINATED]],
  [S.SEED_STAGE_GERMINATED, [S.SEED_STAGE_TRAINING, S.SEED_STAGE_CULLED]],
  [S.SEED_STAGE_TRAINING, [S.SEED_STAGE_BLENDING, S.SEED_STAGE_CULLED]],
  [S.SEED_STAGE_BLENDING, [S.SEED_STAGE_SHADOWING, S.SEED_STAGE_CULLED]],
  [S.SEED_STAGE_SHADOWING, [S.SEED_STAGE_PROBATIONARY, S.SEED_STAGE_CULLED]],
  [S.SEED_STAGE_PROBATIONARY, [S.SEED_STAGE_FOSSILIZED, S.SEED_STAGE_CULLED]],
  [S.SEED_STAGE_FOSSILIZED, [S.SEED_STAGE_TERMINATED]],
  [S.SEED_STAGE_CULLED, [S.SEED_STAGE_EMBARGOED]],
  [S.SEED_STAGE_EMBARGOED, [S.SEED_STAGE_RESETTING]],
  [S.SEED_STAGE_RESETTING, [S.SEED_STAGE_DORMANT]],
  [S.SEED_STAGE_TERMINATED, []],
];

describe('lifecycle transition table', () => {
  it('matches the reference table for every pair of stages', () => {
    expect(LIFECYCLE_TRANSITIONS.size).toBe(ALL_STAGES.length);
    const expected = new Map(EXPECTED);
    for (const from of ALL_STAGES) {
      expect([...allowedNext(from)].sort()).toEqual([...(expected.get(from) ?? [])].sort());
      for (const to of ALL_STAGES) {
        expect(isTransitionAllowed(from, to), `${stageName(from)} -> ${stageName(to)}`).toBe(expected.get(from)?.includes(to) ?? false);
      }
    }
  });

  it('never allows staying in the same stage, and knows nothing of values outside the enum', () => {
    for (const stage of ALL_STAGES) expect(isTransitionAllowed(stage, stage)).toBe(false);
    expect(allowedNext(99 as SeedLifecycleStage)).toEqual([]);
    expect(isTransitionAllowed(99 as SeedLifecycleStage, S.SEED_STAGE_DORMANT)).toBe(false);
  });

  it('names stages and gates by their proto enum names', () => {
    expect(stageName(S.SEED_STAGE_TRAINING)).toBe('SEED_STAGE_TRAINING');
    expect(stageName(S.SEED_STAGE_UNKNOWN)).toBe('SEED_STAGE_UNKNOWN');
    expect(gateName(SeedLifecycleGate.SEED_GATE_G0_SANITY)).toBe('SEED_GATE_G0_SANITY');
    expect(gateName(SeedLifecycleGate.SEED_GATE_G5_RESET)).toBe('SEED_GATE_G5_RESET');
    expect(stageName(42 as SeedLifecycleStage)).toBe('SEED_STAGE_42');
  });
});

describe('SeedLifecycle', () => {
  it('starts DORMANT at step 0 with an empty history', () => {
    const lifecycle = new SeedLifecycle();
    expect(lifecycle.stage).toBe(S.SEED_STAGE_DORMANT);
    expect(lifecycle.enteredAtStep).toBe(0);
    expect(lifecycle.history).toEqual([]);
    expect(lifecycle.allowedNext()).toEqual([S.SEED_STAGE_GERMINATED, S.SEED_STAGE_TERMINATED]);
  });

  it('walks the happy path to TERMINATED, recording each move and the step it entered', () => {
    const lifecycle = new SeedLifecycle({ startStep: 5 });
    const path = [
      S.SEED_STAGE_GERMINATED,
      S.SEED_STAGE_TRAINING,
      S.SEED_STAGE_BLENDING,
      S.SEED_STAGE_SHADOWING,
      S.SEED_STAGE_PROBATIONARY,
      S.SEED_STAGE_FOSSILIZED,
      S.SEED_STAGE_TERMINATED,
    ];
    path.forEach((to, i) => {
      const record = lifecycle.transition(to, 10 + i * 3);
      expect(record.to).toBe(to);
    });
    expect(lifecycle.stage).toBe(S.SEED_STAGE_TERMINATED);
    expect(lifecycle.enteredAtStep).toBe(28);
    expect(lifecycle.stepsInStage(30)).toBe(2);
    expect(lifecycle.stepsInStage(20)).toBe(0);
    expect(lifecycle.history.map((h) => h.to)).toEqual(path);
    expect(lifecycle.history[0]).toEqual({ from: S.SEED_STAGE_DORMANT, to: S.SEED_STAGE_GERMINATED, step: 10 });
    expect(lifecycle.allowedNext()).toEqual([]);
  });

  it('walks the cull path back to DORMANT', () => {
    const lifecycle = new SeedLifecycle();
    for (const to of [
      S.SEED_STAGE_GERMINATED,
      S.SEED_STAGE_TRAINING,
      S.SEED_STAGE_CULLED,
      S.SEED_STAGE_EMBARGOED,
      S.SEED_STAGE_RESETTING,
      S.SEED_STAGE_DORMANT,
    ]) {
      lifecycle.transition(to, 1);
    }
    expect(lifecycle.stage).toBe(S.SEED_STAGE_DORMANT);
    expect(lifecycle.history).toHaveLength(6);
  });

  it('throws KASMINA_ILLEGAL_TRANSITION with stage names for an illegal move and stays put', () => {
    const lifecycle = new SeedLifecycle();
    const error = thrownBy(() => lifecycle.transition(S.SEED_STAGE_SHADOWING, 3), ErrorCode.KASMINA_ILLEGAL_TRANSITION);
    expect(error.details).toEqual({ from: 'SEED_STAGE_DORMANT', to: 'SEED_STAGE_SHADOWING' });
    expect(lifecycle.stage).toBe(S.SEED_STAGE_DORMANT);
    expect(lifecycle.history).toEqual([]);
  });

  it('rejects a move to the current stage (the prototype ignored it)', () => {
    const lifecycle = new SeedLifecycle();
    const error = thrownBy(() => lifecycle.transition(S.SEED_STAGE_DORMANT, 1), ErrorCode.KASMINA_ILLEGAL_TRANSITION);
    expect(error.details).toEqual({ from: 'SEED_STAGE_DORMANT', to: 'SEED_STAGE_DORMANT' });
  });

  it('rejects a negative or fractional step with INVALID_ARGUMENT', () => {
    const lifecycle = new SeedLifecycle();
    thrownBy(() => lifecycle.transition(S.SEED_STAGE_GERMINATED, -1), ErrorCode.INVALID_ARGUMENT);
    thrownBy(() => lifecycle.transition(S.SEED_STAGE_GERMINATED, 1.5), ErrorCode.INVALID_ARGUMENT);
    expect(lifecycle.stage).toBe(S.SEED_STAGE_DORMANT);
    thrownBy(() => new SeedLifecycle({ historyLimit: 0 }), ErrorCode.INVALID_ARGUMENT);
  });

  it('keeps only the most recent transitions and counts the dropped ones', () => {
    const lifecycle = new SeedLifecycle({ historyLimit: 3 });
    const cycle = [S.SEED_STAGE_GERMINATED, S.SEED_STAGE_CULLED, S.SEED_STAGE_EMBARGOED, S.SEED_STAGE_RESETTING, S.SEED_STAGE_DORMANT];
    cycle.forEach((to, i) => lifecycle.transition(to, i));
    expect(lifecycle.history.map((h) => h.to)).toEqual(cycle.slice(2));
    expect(lifecycle.droppedHistory).toBe(2);
  });
});
