/**
 * Kasmina's command path and lifecycle guard rails on a small real host (no training
 * loop): verification, dependency guard, gates, illegal transitions, pause/resume,
 * prefetch timeouts and cancellation, administrative resets.
 */
import { clone, create } from '@bufbuild/protobuf';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AsyncWorker, DependencyViolationError, ErrorCode, FakeClock, MemoryTelemetrySink, isEsperError } from '../../src/core/index.js';
import { buildOperatorCommand, OperatorAction, PrefetchCoordinator, SeedEvent, type KasminaExecutor } from '../../src/kasmina/index.js';
import {
  AdaptationCommandSchema,
  canonicalBytes,
  CommandOptimizerAdjustmentSchema,
  CommandType,
  SeedLifecycleStage,
  TelemetryLevel,
  type AdaptationCommand,
  type CommandSecurity,
} from '../../src/leyline/index.js';
import { MemoryStreamStore, StreamBus } from '../../src/oona/index.js';
import { HmacSigner, KeyRing, RejectionReason } from '../../src/security/index.js';
import { initTensorBackend, seededRng, tf } from '../../src/tensor/index.js';
import { mlpHost, type ExecutorContext, type HostModel, type ValidationReport } from '../../src/tolaria/index.js';
import { UrzaPrefetchWorker } from '../../src/urza/index.js';
import { catalog, kasminaHarness, RING, type KasminaHarness } from './fixtures/harness.js';

const RUN = 'run-kasmina';
const cleanups: (() => Promise<void> | void)[] = [];
let hostCount = 0;

beforeAll(async () => {
  await initTensorBackend();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(
  options: Parameters<typeof kasminaHarness>[0] extends infer O ? Partial<O> : never = {},
): Promise<{ h: KasminaHarness; host: HostModel; context: (step: number) => ExecutorContext }> {
  hostCount += 1;
  const host = mlpHost({ inputShape: [8], hidden: [16, 16], numClasses: 3, seed: 1, hostId: `small${hostCount}` });
  cleanups.push(() => host.dispose());
  const h = await kasminaHarness({ host, trainingRunId: RUN, ...options });
  cleanups.push(() => h.close());
  const rng = seededRng(1);
  const context = (step: number): ExecutorContext => ({
    host,
    trainingRunId: RUN,
    epoch: 0,
    globalStep: step,
    rng,
    lastStep: { trainingLoss: 1, hookGradientNorms: new Map([...host.hooks.keys()].map((site) => [site, 0.5])) },
  });
  return { h, host, context };
}

const germinateCommand = (seedId = 'seed-1', siteId = 'hidden1', blueprintId = 'BP001'): AdaptationCommand =>
  buildOperatorCommand({ action: OperatorAction.GERMINATE, trainingRunId: RUN, seedId, siteId, blueprintId });

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** A validation report: accuracy `withSeed` with every seed, `withoutSeed` with the seed's site bypassed. */
function validation(seedId: string, siteId: string, withSeed: number, withoutSeed: number): ValidationReport {
  return { baseline: { loss: 1, accuracy: withSeed }, withoutSeed: [{ seedId, siteId, validation: { loss: 1, accuracy: withoutSeed } }] };
}

async function advanceTo(kasmina: KasminaExecutor, context: (step: number) => ExecutorContext, from: number, to: number): Promise<void> {
  for (let step = from; step <= to; step += 1) await kasmina.advance(context(step));
}

describe('Kasmina command security', () => {
  it('rejects every verifier reason with a typed error and CRITICAL command_rejected, creating no seed', async () => {
    const { h, context } = await setup();
    const other = new HmacSigner(new KeyRing([{ keyId: 'k1', secret: Buffer.from('another-secret-0123456789abcdefgh', 'utf8') }]));
    const unknownKey = new HmacSigner(new KeyRing([{ keyId: 'k9', secret: Buffer.from('kasmina-test-secret-0123456789abcdef', 'utf8') }]));
    const signed = h.sign(germinateCommand('seed-a'));
    let variant = 0;
    /** A signed command with its security block changed; `resign` recomputes the MAC afterwards. */
    const withSecurity = (change: (security: CommandSecurity) => void, resign = false): AdaptationCommand => {
      variant += 1;
      const copy = clone(AdaptationCommandSchema, h.sign(germinateCommand(`seed-v${variant}`)));
      const security = copy.security as CommandSecurity;
      change(security);
      if (resign) {
        security.signature = new Uint8Array();
        security.signature = h.signer.mac(security.keyId, canonicalBytes(AdaptationCommandSchema, copy));
      }
      return copy;
    };
    const cases: [RejectionReason, AdaptationCommand][] = [
      [RejectionReason.MISSING_SECURITY, create(AdaptationCommandSchema, { ...germinateCommand('seed-b'), security: undefined })],
      [RejectionReason.UNKNOWN_KEY_ID, unknownKey.sign(AdaptationCommandSchema, germinateCommand('seed-c'))],
      [RejectionReason.MISSING_SIGNATURE, withSecurity((s) => (s.signature = new Uint8Array()))],
      [RejectionReason.MALFORMED_SIGNATURE, withSecurity((s) => (s.signature = new Uint8Array(5)))],
      [RejectionReason.INVALID_SIGNATURE, other.sign(AdaptationCommandSchema, germinateCommand('seed-d'))],
      [RejectionReason.MISSING_TIMESTAMP, withSecurity((s) => (s.issuedAt = undefined), true)],
      [
        RejectionReason.STALE_COMMAND,
        new HmacSigner(RING, { clock: new FakeClock({ wallMs: Date.now() - 3_600_000 }) }).sign(
          AdaptationCommandSchema,
          germinateCommand('seed-e'),
        ),
      ],
      [
        RejectionReason.FUTURE_COMMAND,
        new HmacSigner(RING, { clock: new FakeClock({ wallMs: Date.now() + 3_600_000 }) }).sign(
          AdaptationCommandSchema,
          germinateCommand('seed-f'),
        ),
      ],
      [RejectionReason.MISSING_NONCE, h.signer.sign(AdaptationCommandSchema, germinateCommand('seed-g'), { nonce: '' })],
    ];
    for (const [reason, command] of cases) {
      const error = await rejection(h.kasmina.apply(command, context(0)));
      expect(isEsperError(error, ErrorCode.COMMAND_REJECTED), reason).toBe(true);
      expect((error as { details?: Record<string, unknown> }).details?.['reason']).toBe(reason);
    }
    // A replay of an accepted command.
    await h.kasmina.apply(signed, context(0));
    const replay = await rejection(h.kasmina.apply(signed, context(0)));
    expect((replay as { details?: Record<string, unknown> }).details?.['reason']).toBe(RejectionReason.NONCE_REPLAYED);

    const rejected = h.telemetry.events('command_rejected');
    expect(rejected.map((e) => e.attributes['reason'])).toEqual([...cases.map(([r]) => r), RejectionReason.NONCE_REPLAYED]);
    expect(rejected.every((e) => e.level === TelemetryLevel.CRITICAL)).toBe(true);
    expect(h.kasmina.exportSeedStates().map((s) => s.seedId)).toEqual(['seed-a']);
    // Accept/reject counters and validation latency are exported on the global packet.
    await h.kasmina.advance(context(1));
    const global = h.telemetry.packets.at(-1);
    expect(global?.packetId).toBe('kasmina-global-1');
    const metric = (name: string, reason?: string) =>
      global?.metrics.find((m) => m.name === name && (reason === undefined || m.attributes['reason'] === reason))?.value;
    expect(metric('kasmina.command_verifier.accepted_total')).toBe(1);
    expect(metric('kasmina.command_verifier.rejections_total', RejectionReason.NONCE_REPLAYED)).toBe(1);
    expect(global?.metrics.some((m) => m.name === 'kasmina.command_verifier.validation_latency_ms')).toBe(true);
    expect(metric('kasmina.nonce_ledger.size')).toBe(1);
  });

  it('evicts the oldest nonce at the cap with a nonce_ledger_truncated warning', async () => {
    const { h, context } = await setup({ nonceMaxEntries: 2 });
    for (const id of ['a', 'b', 'c']) {
      await h.kasmina.apply(h.sign(buildOperatorCommand({ action: OperatorAction.PAUSE, trainingRunId: RUN, seedId: id })), context(0));
    }
    const truncated = h.telemetry.events('nonce_ledger_truncated');
    expect(truncated).toHaveLength(1);
    expect(truncated[0]?.level).toBe(TelemetryLevel.WARNING);
    expect(h.ledger.snapshot().size).toBe(2);
    expect(h.ledger.snapshot().evictionsTotal).toBe(1);
  });

  it('fails fast with DependencyViolationError and CRITICAL telemetry on a missing run id, another run, or an unknown blueprint — no kernel attached', async () => {
    const { h, host, context } = await setup();
    const noRun = h.sign(create(AdaptationCommandSchema, { ...germinateCommand('s1'), trainingRunId: '' }));
    const otherRun = h.sign(create(AdaptationCommandSchema, { ...germinateCommand('s2'), trainingRunId: 'run-other' }));
    const unknownBlueprint = h.sign(germinateCommand('s3', 'hidden1', 'BP999'));
    const siteless = germinateCommand('s4');
    if (siteless.payload.case === 'seedOperation') siteless.payload.value.siteId = '';
    const noSite = h.sign(siteless);
    for (const [command, dependency] of [
      [noRun, 'training_run_id'],
      [otherRun, 'training_run_id'],
      [unknownBlueprint, 'blueprint_id'],
      [noSite, 'site_id'],
    ] as const) {
      const error = await rejection(h.kasmina.apply(command, context(0)));
      expect(error).toBeInstanceOf(DependencyViolationError);
      expect((error as DependencyViolationError).dependencyType).toBe(dependency);
    }
    const violations = h.telemetry.events('dependency_guard.violation');
    expect(violations).toHaveLength(4);
    expect(violations.every((e) => e.level === TelemetryLevel.CRITICAL)).toBe(true);
    expect(host.hooks.size).toBe(0);
    expect(h.kasmina.exportSeedStates()).toEqual([]);
    expect(h.fetcher.stats().fetched + h.fetcher.stats().failed).toBe(0);
  });
});

describe('Kasmina lifecycle guard rails', () => {
  it('fails G0 with CRITICAL gate_failure for an occupied site, an embargoed site, and a blueprint that does not fit', async () => {
    const { h, context } = await setup({ blueprints: ['BP001'] });
    await h.kasmina.apply(h.sign(germinateCommand('s1', 'hidden1')), context(0));
    await h.kasmina.apply(h.sign(germinateCommand('s2', 'hidden1')), context(0));
    await h.kasmina.apply(h.sign(germinateCommand('s3', 'nowhere')), context(0));
    await h.kasmina.advance(context(0));
    const reasons = h.telemetry.events(SeedEvent.GATE_FAILURE).map((e) => e.attributes['reason']);
    expect(reasons).toEqual(['site occupied', 'unknown site']);
    expect(h.telemetry.events(SeedEvent.GATE_FAILURE).every((e) => e.level === TelemetryLevel.CRITICAL)).toBe(true);
    // Cull s1: the site is embargoed for embargoSteps (5) steps.
    await h.kasmina.apply(h.sign(buildOperatorCommand({ action: OperatorAction.CULL, trainingRunId: RUN, seedId: 's1' })), context(0));
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_EMBARGOED);
    await h.kasmina.apply(h.sign(germinateCommand('s4', 'hidden1')), context(1));
    await h.kasmina.advance(context(1));
    expect(h.telemetry.events(SeedEvent.GATE_FAILURE).at(-1)?.attributes['reason']).toBe('site embargoed');
    await advanceTo(h.kasmina, context, 2, 5);
    expect(h.kasmina.stageOf('s1')).toBeUndefined();
    await h.kasmina.apply(h.sign(germinateCommand('s5', 'hidden1')), context(5));
    expect(h.kasmina.stageOf('s5')).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
  });

  it('turns an illegal transition into KASMINA_ILLEGAL_TRANSITION and an illegal_transition event', async () => {
    const { h, context } = await setup();
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    const error = await rejection(
      h.kasmina.apply(h.sign(buildOperatorCommand({ action: OperatorAction.FOSSILIZE, trainingRunId: RUN, seedId: 's1' })), context(0)),
    );
    expect(isEsperError(error, ErrorCode.KASMINA_ILLEGAL_TRANSITION)).toBe(true);
    await h.kasmina.advance(context(1));
    const illegal = h.telemetry.events(SeedEvent.ILLEGAL_TRANSITION);
    expect(illegal).toHaveLength(1);
    expect(illegal[0]?.attributes).toMatchObject({ from: 'SEED_STAGE_TRAINING', to: 'SEED_STAGE_FOSSILIZED' });
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
  });

  it('pauses a seed (identity at its site, timers frozen) and resumes it', async () => {
    const { h, host, context } = await setup();
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await h.kasmina.apply(h.sign(buildOperatorCommand({ action: OperatorAction.PAUSE, trainingRunId: RUN, seedId: 's1' })), context(0));
    const hook = host.hooks.get('hidden1');
    expect(hook?.trainableVariables()).toEqual([]);
    await advanceTo(h.kasmina, context, 1, 40);
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
    await h.kasmina.apply(h.sign(buildOperatorCommand({ action: OperatorAction.RESUME, trainingRunId: RUN, seedId: 's1' })), context(40));
    expect((hook?.trainableVariables().length ?? 0) > 0).toBe(true);
    await advanceTo(h.kasmina, context, 41, 61);
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_BLENDING);
    expect(h.telemetry.events(SeedEvent.SEED_PAUSED)).toHaveLength(1);
    expect(h.telemetry.events(SeedEvent.SEED_RESUMED)).toHaveLength(1);
  });

  it('reaches TERMINATED: CANCEL on a fossil, and shutdown', async () => {
    const { h, context } = await setup({ settings: { minContribution: -1 } });
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await advanceTo(h.kasmina, context, 1, 60);
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_PROBATIONARY);
    await h.kasmina.recordValidation(validation('s1', 'hidden1', 0.5, 0.5), context(60));
    await advanceTo(h.kasmina, context, 61, 70);
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_FOSSILIZED);
    await h.kasmina
      .apply(h.sign(buildOperatorCommand({ action: OperatorAction.CULL, trainingRunId: RUN, seedId: 's1' })), context(70))
      .catch(() => undefined);
    expect(h.telemetry.events(SeedEvent.ILLEGAL_TRANSITION)).toHaveLength(0); // queued, emitted at the next advance
    await h.kasmina.advance(context(71));
    expect(h.telemetry.events(SeedEvent.ILLEGAL_TRANSITION)[0]?.attributes).toMatchObject({
      from: 'SEED_STAGE_FOSSILIZED',
      to: 'SEED_STAGE_CULLED',
    });
    await h.kasmina.close();
    expect(h.telemetry.events(SeedEvent.SEED_TERMINATED)).toHaveLength(1);
  });

  it('culls a seed whose counterfactual contribution is below the threshold (G4)', async () => {
    const { h, context } = await setup();
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await advanceTo(h.kasmina, context, 1, 60);
    await h.kasmina.recordValidation(validation('s1', 'hidden1', 0.5, 0.499), context(60));
    await advanceTo(h.kasmina, context, 61, 70);
    const failure = h.telemetry.events(SeedEvent.GATE_FAILURE)[0];
    expect(failure?.attributes).toMatchObject({ gate: 'SEED_GATE_G4_SYSTEM_IMPACT', reason: 'contribution below threshold' });
    expect(h.telemetry.events(SeedEvent.SEED_CULLED)).toHaveLength(1);
  });
});

describe('Kasmina teacher', () => {
  it('registers and deregisters a teacher with telemetry (ownership conflicts are covered in registry.test.ts)', async () => {
    const { h, context } = await setup();
    const init = tf.zeros([4]);
    const teacherWeight = tf.variable(init, true, `teacher-${hostCount}/w`);
    init.dispose();
    cleanups.push(() => teacherWeight.dispose());
    h.kasmina.registerTeacher([teacherWeight]);
    await h.kasmina.advance(context(1));
    expect(h.telemetry.events(SeedEvent.TEACHER_REGISTERED)[0]?.attributes['variables']).toBe('1');
    h.kasmina.resetTeacher();
    await h.kasmina.advance(context(2));
    expect(h.telemetry.events(SeedEvent.TEACHER_DEREGISTERED)).toHaveLength(1);
  });
});

describe('Kasmina prefetch', () => {
  it('a prefetch nobody answers raises CRITICAL prefetch_timeout and the seed fails G1; reset cancels inflight prefetches', async () => {
    const clock = new FakeClock({ wallMs: Date.now() });
    const busTelemetry = new MemoryTelemetrySink();
    const bus = new StreamBus({
      store: new MemoryStreamStore(),
      keyRing: RING,
      telemetry: busTelemetry,
      blockMs: 20,
      reclaimIntervalMs: 50,
    });
    cleanups.push(() => bus.close());
    const worker = new AsyncWorker({ name: 'kasmina-prefetch-test', maxConcurrency: 8 });
    cleanups.push(() => worker.close().then(() => undefined));
    const prefetchTelemetry = new MemoryTelemetrySink();
    const prefetch = new PrefetchCoordinator({ bus, worker, telemetry: prefetchTelemetry, timeoutMs: 150 });
    cleanups.push(() => prefetch.close());
    await prefetch.start();
    const { h, host, context } = await setup({ prefetch, clock });
    await h.kasmina.apply(h.sign(germinateCommand('s1', 'hidden1')), context(0));
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_GERMINATED);
    const deadline = Date.now() + 5_000;
    let step = 1;
    while (h.kasmina.stageOf('s1') === SeedLifecycleStage.SEED_STAGE_GERMINATED && Date.now() < deadline) {
      await new Promise((resolve) => setImmediate(resolve));
      await h.kasmina.advance(context(step));
      step += 1;
    }
    const timeout = prefetchTelemetry.events('prefetch_timeout');
    expect(timeout).toHaveLength(1);
    expect(timeout[0]?.level).toBe(TelemetryLevel.CRITICAL);
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_EMBARGOED);
    expect(host.hooks.size).toBe(0);

    // A second request stays inflight until the registry reset cancels it.
    await h.kasmina.apply(h.sign(germinateCommand('s2', 'hidden2')), context(step));
    expect(prefetch.stats().inflight).toBe(1);
    h.kasmina.resetRegistry();
    expect(prefetch.stats().inflight).toBe(0);
    expect(prefetchTelemetry.events('prefetch_canceled').length).toBeGreaterThanOrEqual(1);
    await h.kasmina.advance(context(step + 1));
    expect(h.telemetry.events(SeedEvent.REGISTRY_RESET)).toHaveLength(1);
  });
});

describe('Kasmina commands it does not own', () => {
  it('refuses OPTIMIZER, ROLLBACK and STRUCTURAL_PRUNING with COMMAND_NOT_APPLIED (Tolaria owns the first two), creating nothing', async () => {
    const { h, context } = await setup();
    const optimizer = create(AdaptationCommandSchema, {
      version: 1,
      commandId: 'opt-1',
      commandType: CommandType.COMMAND_OPTIMIZER,
      trainingRunId: RUN,
      payload: { case: 'optimizerAdjustment', value: create(CommandOptimizerAdjustmentSchema, { learningRate: 0.1 }) },
    });
    const pruning = create(AdaptationCommandSchema, {
      version: 1,
      commandId: 'prune-1',
      commandType: CommandType.COMMAND_STRUCTURAL_PRUNING,
      trainingRunId: RUN,
    });
    for (const command of [optimizer, pruning]) {
      const error = await rejection(h.kasmina.apply(h.sign(command), context(0)));
      expect(isEsperError(error, ErrorCode.COMMAND_NOT_APPLIED)).toBe(true);
    }
    await h.kasmina.advance(context(1));
    expect(h.telemetry.events(SeedEvent.UNSUPPORTED_COMMAND).map((e) => e.attributes['command_type'])).toEqual([
      'COMMAND_OPTIMIZER',
      'COMMAND_STRUCTURAL_PRUNING',
    ]);
    expect(h.kasmina.exportSeedStates()).toHaveLength(0);
  });
});

describe('Kasmina seed reports', () => {
  it('reports a culled seed as CULLED with its reason and step, after it was reset and retired', async () => {
    const { h, context } = await setup();
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await advanceTo(h.kasmina, context, 1, 3);
    await h.kasmina.apply(h.sign(buildOperatorCommand({ action: OperatorAction.CULL, trainingRunId: RUN, seedId: 's1' })), context(3));
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
    const { h, context } = await setup({ settings: { minContribution: -1 } });
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

describe('Kasmina kernel loads stay off the step', () => {
  it('a prefetch answer starts the kernel load; the next advance grafts it without any fetch inside advance', async () => {
    const bus = new StreamBus({ store: new MemoryStreamStore(), keyRing: RING, telemetry: new MemoryTelemetrySink(), blockMs: 20 });
    cleanups.push(() => bus.close());
    const worker = new AsyncWorker({ name: 'kasmina-prefetch-ok', maxConcurrency: 8 });
    cleanups.push(() => worker.close().then(() => undefined));
    const prefetch = new PrefetchCoordinator({ bus, worker, telemetry: new MemoryTelemetrySink(), timeoutMs: 10_000 });
    cleanups.push(() => prefetch.close());
    await prefetch.start();
    const { h, host, context } = await setup({ prefetch });
    const urza = new UrzaPrefetchWorker({ bus, library: h.library, catalog, telemetry: new MemoryTelemetrySink(), prewarmPasses: 1 });
    cleanups.push(() => urza.close());
    await urza.start();

    let advancing = false;
    const fetchesInAdvance: string[] = [];
    const fetches: string[] = [];
    const fetch = h.fetcher.fetch.bind(h.fetcher);
    h.fetcher.fetch = (blueprintId, siteKey, scope, options) => {
      fetches.push(blueprintId);
      if (advancing) fetchesInAdvance.push(blueprintId);
      return fetch(blueprintId, siteKey, scope, options);
    };
    await h.kasmina.apply(h.sign(germinateCommand('s1', 'hidden1')), context(0));
    expect(fetches).toHaveLength(0); // the answer has not come yet
    const deadline = Date.now() + 10_000;
    let step = 1;
    while (h.kasmina.stageOf('s1') === SeedLifecycleStage.SEED_STAGE_GERMINATED && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 2));
      advancing = true;
      await h.kasmina.advance(context(step));
      advancing = false;
      step += 1;
    }
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
    expect(host.hooks.has('hidden1')).toBe(true);
    expect(fetches).toEqual(['BP001']);
    expect(fetchesInAdvance).toEqual([]);
  });
});
