/**
 * The executor's state: seed reports (fates from the seeds' own histories, retired seeds
 * kept), the training-loss EWMA, and a checkpoint's state restored — or refused with
 * KASMINA_STATE_INVALID naming what is wrong.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, PersistedStateError } from '../../src/core/index.js';
import { OperatorAction, SeedEvent, type KasminaState } from '../../src/kasmina/index.js';
import { ExecutorState, LOSS_EWMA_ALPHA } from '../../src/kasmina/executor-state.js';
import { SeedLifecycleStage, TelemetryLevel } from '../../src/leyline/index.js';
import { mlpHost } from '../../src/tolaria/index.js';
import { FAST_LIFECYCLE } from './fixtures/harness.js';
import { SAMPLE_STATE } from './fixtures/state.js';
import { rejectionOf } from '../oona/fixtures/waits.js';
import { advanceTo, germinateCommand, seedCommand, setup, validation } from './fixtures/setup.js';
import { useCleanups, useTensorBackend } from './fixtures/hooks.js';

useTensorBackend();
const cleanups = useCleanups();

describe('Kasmina seed reports', () => {
  it('reports a culled seed as CULLED with its reason and step, after it was reset and retired', async () => {
    const { h, context } = await setup(cleanups);
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await advanceTo(h.kasmina, context, 1, 3);
    await h.kasmina.apply(h.sign(seedCommand(OperatorAction.CULL, 's1')), context(3));
    await advanceTo(h.kasmina, context, 4, 20); // embargo over: reset to DORMANT and retired
    expect(h.kasmina.stageOf('s1')).toBeUndefined();
    const [report] = h.kasmina.seedReports();
    expect(report).toMatchObject({
      seedId: 's1',
      siteId: 'hidden1',
      blueprintId: 'BP001',
      germinatedStep: 0,
      fate: SeedLifecycleStage.SEED_STAGE_CULLED,
      fateStep: 3,
      fateReason: 'cull_command',
    });
    expect(report!.parameters).toBeGreaterThan(0);
    expect(report!.history.at(-1)?.to).toBe(SeedLifecycleStage.SEED_STAGE_DORMANT);
    // The quality gate a cull follows is not an incident: gate failures are WARNING.
    expect(h.telemetry.events(SeedEvent.GATE_FAILURE).every((e) => e.level === TelemetryLevel.WARNING)).toBe(true);
  });

  it('reports a fossil as FOSSILIZED with its contribution even after close() terminates it', async () => {
    const { h, context } = await setup(cleanups, { settings: { minContribution: -1 } });
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await advanceTo(h.kasmina, context, 1, 60);
    await h.kasmina.recordValidation(validation('s1', 'hidden1', 0.5, 0.42), context(60));
    await h.kasmina.close();
    const [report] = h.kasmina.seedReports();
    expect(report?.fate).toBe(SeedLifecycleStage.SEED_STAGE_FOSSILIZED);
    expect(report?.contribution).toBeCloseTo(0.08, 12);
    expect(report?.history.at(-1)?.to).toBe(SeedLifecycleStage.SEED_STAGE_TERMINATED);
  });
});

describe('training-loss EWMA', () => {
  it('starts at the first finite loss, smooths later ones, and skips non-finite losses', () => {
    const state = new ExecutorState();
    state.recordLoss(undefined);
    state.recordLoss(Number.NaN);
    expect(state.lossEwma).toBeUndefined();
    state.recordLoss(2);
    state.recordLoss(Number.POSITIVE_INFINITY);
    state.recordLoss(1);
    expect(state.lossEwma).toBeCloseTo(2 + LOSS_EWMA_ALPHA * (1 - 2), 12);
  });
});

describe('Kasmina state restored from a checkpoint', () => {
  /** A state with a seed BLENDING at `hidden1` and one culled earlier at `hidden2`. */
  async function blendingState(): Promise<KasminaState> {
    const { h, context } = await setup(cleanups, { settings: { embargoSteps: 2 } });
    await h.kasmina.apply(h.sign(germinateCommand('gone', 'hidden2')), context(0));
    await h.kasmina.apply(h.sign(seedCommand(OperatorAction.CULL, 'gone')), context(0));
    await h.kasmina.apply(h.sign(germinateCommand('s1', 'hidden1')), context(0));
    await advanceTo(h.kasmina, context, 1, FAST_LIFECYCLE.trainingSteps + 3);
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_BLENDING);
    // Through JSON, as in a checkpoint header.
    const state = JSON.parse(JSON.stringify(h.kasmina.exportState())) as KasminaState;
    await h.close();
    return state;
  }

  it('re-attaches a grafted seed where it was, with its alpha, counters and the retired seeds', async () => {
    const saved = await blendingState();
    const { h, host, context } = await setup(cleanups);
    await h.kasmina.restoreState(saved, context(saved.step));
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_BLENDING);
    expect(host.hooks.has('hidden1')).toBe(true);
    expect(h.kasmina.exportState()).toEqual(saved);
    expect(h.kasmina.seedReports().map((r) => [r.seedId, r.fate])).toEqual([
      ['gone', SeedLifecycleStage.SEED_STAGE_CULLED],
      ['s1', SeedLifecycleStage.SEED_STAGE_BLENDING],
    ]);
  });

  it('refuses a state that does not fit the schema, naming every bad path, and changes nothing', async () => {
    const saved = await blendingState();
    const { h, host, context } = await setup(cleanups);
    const seed = saved.seeds[0]!;
    const cases: [unknown, string][] = [
      [null, '$'],
      [{ ...saved, version: 2 }, '$.version'],
      [{ ...saved, step: -1 }, '$.step'],
      [{ ...saved, seeds: [{ ...seed, blend: { ...seed.blend, alpha: 1.5 } }] }, '$.seeds[0].blend.alpha'],
      [{ ...saved, seeds: [{ ...seed, history: [] }] }, '$.seeds[0].history'],
      [{ ...saved, seeds: [{ ...seed, kernel: { ...seed.kernel, phase: 'melted' } }] }, '$.seeds[0].kernel.phase'],
      [{ ...saved, seeds: [{ ...seed, siteId: 'nowhere' }] }, '$.seeds[0].siteId'],
      [{ ...saved, seeds: [{ ...seed, history: [{ from: 1, to: 6, step: 0 }] }] }, '$.seeds[0].history'],
      [{ ...saved, retired: [{ ...saved.retired[0], fate: 99 }] }, '$.retired[0].fate'],
      [{ ...saved, extra: true }, '$'],
    ];
    for (const [state, path] of cases) {
      const error = await rejectionOf(h.kasmina.restoreState(state, context(0)));
      expect(isEsperError(error, ErrorCode.KASMINA_STATE_INVALID), path).toBe(true);
      expect(String((error as { details: Record<string, unknown> }).details['paths']).split(','), path).toContain(path);
      expect((error as Error).message, path).toContain(path);
    }
    expect(h.kasmina.seedReports()).toEqual([]);
    expect(host.hooks.size).toBe(0);
  });

  it('names every seed that cannot be restored at once: a site the host lacks, an impossible history', async () => {
    const saved = await blendingState();
    const { h, host, context } = await setup(cleanups);
    const seed = saved.seeds[0]!;
    const seeds = [
      { ...seed, siteId: 'nowhere' },
      {
        ...seed,
        seedId: 's2',
        history: [{ from: SeedLifecycleStage.SEED_STAGE_DORMANT, to: SeedLifecycleStage.SEED_STAGE_BLENDING, step: 0 }],
      },
    ];
    const error = await rejectionOf(h.kasmina.restoreState({ ...saved, seeds }, context(0)));
    expect(error).toBeInstanceOf(PersistedStateError);
    expect(isEsperError(error, ErrorCode.KASMINA_STATE_INVALID)).toBe(true);
    expect((error as PersistedStateError).issues.map((issue) => issue.path)).toEqual(['$.seeds[0].siteId', '$.seeds[1].history']);
    expect(h.kasmina.seedReports()).toEqual([]);
    expect(host.hooks.size).toBe(0);
  });

  it('refuses to restore into an executor that holds seeds already', async () => {
    const saved = await blendingState();
    const { h, context } = await setup(cleanups);
    await h.kasmina.apply(h.sign(germinateCommand('s9', 'hidden2')), context(0));
    const error = await rejectionOf(h.kasmina.restoreState(saved, context(0)));
    expect(isEsperError(error, ErrorCode.INVALID_STATE)).toBe(true);
  });

  it('culls a seed that was waiting for its kernel (resume_prefetch_lost)', async () => {
    const host = mlpHost({ inputShape: [8], hidden: [16, 16], numClasses: 3, seed: 1, hostId: 'restore-wait' });
    cleanups.push(() => host.dispose());
    const { h, context } = await setup(cleanups, { host });
    const sample = SAMPLE_STATE.seeds[0]!;
    const waiting: KasminaState = {
      ...SAMPLE_STATE,
      step: 4,
      embargo: [],
      retired: [],
      seeds: [
        {
          ...sample,
          history: [{ from: SeedLifecycleStage.SEED_STAGE_DORMANT, to: SeedLifecycleStage.SEED_STAGE_GERMINATED, step: 3 }],
          kernel: { ...sample.kernel, attached: false },
        },
      ],
    };
    await h.kasmina.restoreState(waiting, context(4));
    expect(h.kasmina.seedReports()[0]).toMatchObject({ fate: SeedLifecycleStage.SEED_STAGE_CULLED, fateReason: 'resume_prefetch_lost' });
  });
});
