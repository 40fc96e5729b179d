/**
 * The executor as Tolaria sees it, on a small real host (no training loop): the calls of the
 * `Executor` interface, the operator API (teacher, registry reset, stats) and `close()`.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { OperatorAction, SeedEvent } from '../../src/kasmina/index.js';
import { SeedLifecycleStage, TelemetryLevel } from '../../src/leyline/index.js';
import { tf } from '../../src/tensor/index.js';
import { FAST_LIFECYCLE } from './fixtures/harness.js';
import { rejectionOf } from '../oona/fixtures/waits.js';
import { advanceTo, germinateCommand, seedCommand, setup, validation } from './fixtures/setup.js';
import { useCleanups, useTensorBackend } from './fixtures/hooks.js';

useTensorBackend();
const cleanups = useCleanups();

describe('KasminaExecutor', () => {
  it('names for measurement only grafted, unpaused seeds in BLENDING or later, and records their contribution', async () => {
    const { h, context } = await setup(cleanups);
    await h.kasmina.apply(h.sign(germinateCommand('s1', 'hidden1')), context(0));
    await h.kasmina.apply(h.sign(germinateCommand('s2', 'hidden2')), context(0));
    expect(h.kasmina.contributionProbes()).toEqual([]);
    await advanceTo(h.kasmina, context, 1, FAST_LIFECYCLE.trainingSteps);
    expect(h.kasmina.contributionProbes()).toEqual([
      { seedId: 's1', siteId: 'hidden1' },
      { seedId: 's2', siteId: 'hidden2' },
    ]);
    await h.kasmina.apply(h.sign(seedCommand(OperatorAction.PAUSE, 's2')), context(FAST_LIFECYCLE.trainingSteps));
    expect(h.kasmina.contributionProbes()).toEqual([{ seedId: 's1', siteId: 'hidden1' }]);
    await h.kasmina.recordValidation(validation('s1', 'hidden1', 0.9, 0.85), context(FAST_LIFECYCLE.trainingSteps));
    const state = h.kasmina.exportSeedStates().find((s) => s.seedId === 's1');
    expect(state?.metrics?.counterfactualContribution).toBeCloseTo(0.05, 12);
    expect(state?.stage).toBe(SeedLifecycleStage.SEED_STAGE_BLENDING);
    expect(state?.layerDepth).toBe(1);
  });

  it('registers and deregisters a teacher with telemetry (ownership conflicts are covered in registry.test.ts)', async () => {
    const { h, context } = await setup(cleanups);
    const init = tf.zeros([4]);
    const teacherWeight = tf.variable(init, true, 'teacher-executor-test/w');
    init.dispose();
    cleanups.push(() => teacherWeight.dispose());
    h.kasmina.registerTeacher([teacherWeight]);
    await h.kasmina.advance(context(1));
    expect(h.telemetry.events(SeedEvent.TEACHER_REGISTERED)[0]?.attributes['variables']).toBe('1');
    h.kasmina.resetTeacher();
    await h.kasmina.advance(context(2));
    expect(h.telemetry.events(SeedEvent.TEACHER_DEREGISTERED)).toHaveLength(1);
  });

  it('culls every live seed on a registry reset and clears the nonce ledger', async () => {
    const { h, host, context } = await setup(cleanups);
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    h.kasmina.resetRegistry();
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_EMBARGOED);
    expect(host.hooks.size).toBe(0);
    expect(h.ledger.snapshot().size).toBe(0);
    await h.kasmina.advance(context(1));
    expect(h.telemetry.events(SeedEvent.REGISTRY_RESET)[0]?.level).toBe(TelemetryLevel.WARNING);
    expect(h.kasmina.seedReports()[0]?.fateReason).toBe('registry_reset');
  });

  it('close() culls active seeds, emits the final packets, returns its first promise, and refuses later calls', async () => {
    const { h, host, context } = await setup(cleanups);
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    expect(h.kasmina.state).toBe('running');
    const first = h.kasmina.close();
    expect(h.kasmina.close()).toBe(first);
    expect(h.kasmina[Symbol.asyncDispose]()).toBe(first);
    await first;
    expect(h.kasmina.state).toBe('closed');
    expect(host.hooks.size).toBe(0);
    expect(h.kasmina.seedReports()[0]?.fateReason).toBe('shutdown');
    expect(h.telemetry.packets.at(-1)?.packetId).toBe('kasmina-global-0');
    const error = await rejectionOf(Promise.resolve().then(() => h.kasmina.advance(context(1))));
    expect(isEsperError(error, ErrorCode.INVALID_STATE)).toBe(true);
  });

  it('counts commands applied, not commands refused', async () => {
    const { h, context } = await setup(cleanups);
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await rejectionOf(h.kasmina.apply(h.sign(germinateCommand('s2', 'hidden1')), context(0)));
    await rejectionOf(h.kasmina.apply(h.sign(seedCommand(OperatorAction.CULL, 'ghost')), context(0)));
    expect(h.kasmina.stats()).toMatchObject({ commandsApplied: 1, gateFailures: 1 });
  });
});
