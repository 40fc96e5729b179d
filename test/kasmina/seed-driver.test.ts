/**
 * The seed driver: every gate G1–G5 failing for each of its real causes — with its
 * `gate_event`, a `gate_failure` (WARNING; ERROR for G5), the cull and the seed report's
 * fate and reason — and the lifecycle's ends (FOSSILIZED, TERMINATED).
 */
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { AsyncWorker, FakeClock, MemoryTelemetrySink, type EventInput } from '../../src/core/index.js';
import { KarnCatalog, type SeedModule } from '../../src/karn/index.js';
import { OperatorAction, SeedEvent } from '../../src/kasmina/index.js';
import { DEFAULT_BLEND_PLAN } from '../../src/kasmina/blending.js';
import { ExecutorState } from '../../src/kasmina/executor-state.js';
import { ExecutorTelemetry } from '../../src/kasmina/executor-telemetry.js';
import { IsolationMonitor } from '../../src/kasmina/isolation.js';
import { ParameterRegistry } from '../../src/kasmina/registry.js';
import { SeedDriver } from '../../src/kasmina/seed-driver.js';
import { SeedSlot } from '../../src/kasmina/seed-slot.js';
import { counterfactualContribution } from '../../src/kasmina/executor.js';
import { newSeed } from '../../src/kasmina/seed.js';
import {
  AdaptationCommandSchema,
  CommandType,
  SeedLifecycleStage,
  SeedOperation,
  TelemetryLevel,
  type TelemetryEvent,
} from '../../src/leyline/index.js';
import { MemoryStreamStore, StreamBus } from '../../src/oona/index.js';
import { tf } from '../../src/tensor/index.js';
import { mlpHost, type HostModel, type ValidationReport } from '../../src/tolaria/index.js';
import { UrzaPrefetchWorker } from '../../src/urza/index.js';
import { catalog, FAST_LIFECYCLE, RING, type KasminaHarness } from './fixtures/harness.js';
import { rejectionOf } from '../oona/fixtures/waits.js';
import { advanceTo, germinateCommand, RUN, seedCommand, setup, validation } from './fixtures/setup.js';
import { useCleanups, useTensorBackend } from './fixtures/hooks.js';

useTensorBackend();
const cleanups = useCleanups();

/** Every module the harness fetches from now on goes through `change`. */
function patchModules(h: KasminaHarness, change: (module: SeedModule) => SeedModule): void {
  const fetch = h.fetcher.fetch.bind(h.fetcher);
  h.fetcher.fetch = async (...args) => {
    const fetched = await fetch(...args);
    return { ...fetched, module: change(fetched.module) };
  };
}

/** `module` with another forward pass (same variables, same disposal). */
function withApply(module: SeedModule, apply: (x: tf.Tensor) => tf.Tensor): SeedModule {
  return { blueprintId: module.blueprintId, family: module.family, variables: module.variables, apply, dispose: () => module.dispose() };
}

/**
 * Asserts that `gate` failed once for `seedId` with `reason`: a failed `gate_event`, one
 * `gate_failure` at `level`, and (unless G5) the cull with the gate's reason.
 */
function expectGateFailure(
  h: KasminaHarness,
  seedId: string,
  gate: string,
  reason: string,
  level = TelemetryLevel.WARNING,
): TelemetryEvent {
  const failed = h.telemetry
    .events(SeedEvent.GATE_EVENT)
    .filter((e) => e.attributes['seed_id'] === seedId && e.attributes['passed'] === 'false');
  expect(failed.map((e) => [e.attributes['gate'], e.attributes['reason']])).toEqual([[gate, reason]]);
  const failures = h.telemetry.events(SeedEvent.GATE_FAILURE).filter((e) => e.attributes['seed_id'] === seedId);
  expect(failures.map((e) => [e.attributes['gate'], e.attributes['reason'], e.level])).toEqual([[gate, reason, level]]);
  if (gate !== 'SEED_GATE_G5_RESET') {
    const culled = h.telemetry.events(SeedEvent.SEED_CULLED).filter((e) => e.attributes['seed_id'] === seedId);
    expect(culled.map((e) => e.attributes['reason'])).toEqual([`${gate}: ${reason}`]);
    const report = h.kasmina.seedReports().find((r) => r.seedId === seedId);
    expect(report).toMatchObject({ fate: SeedLifecycleStage.SEED_STAGE_CULLED, fateReason: `${gate}: ${reason}` });
  }
  return failed[0] as TelemetryEvent;
}

describe('G1 gradient health (GERMINATED → TRAINING, then at every isolation check)', () => {
  it('fails a kernel Urza cannot serve: kernel not attached, with the fetch error', async () => {
    const { h, host, context } = await setup(cleanups);
    // BP002 is in the catalog and fits the site, but was never compiled into this library.
    await h.kasmina.apply(h.sign(germinateCommand('s1', 'hidden1', 'BP002')), context(0));
    await h.kasmina.advance(context(1));
    const event = expectGateFailure(h, 's1', 'SEED_GATE_G1_GRADIENT_HEALTH', 'kernel not attached');
    expect(event.attributes['kernel_error']).toBe('kernel fetch failed: ESPER_URZA_NOT_FOUND');
    expect(h.telemetry.events(SeedEvent.KERNEL_FETCH_FAILED)[0]?.level).toBe(TelemetryLevel.ERROR);
    expect(host.hooks.size).toBe(0);
  });

  it('fails a module whose output is not shaped like the site: kernel not attached, shape mismatch', async () => {
    const { h, host, context } = await setup(cleanups);
    patchModules(h, (m) => withApply(m, (x) => tf.concat([m.apply(x), m.apply(x)], -1)));
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await h.kasmina.advance(context(1));
    const event = expectGateFailure(h, 's1', 'SEED_GATE_G1_GRADIENT_HEALTH', 'kernel not attached');
    expect(String(event.attributes['kernel_error'])).toMatch(/^ESPER_KASMINA_GRAFT_SHAPE_MISMATCH: /);
    expect(host.hooks.size).toBe(0);
  });

  it('fails a module that claims a host parameter: parameter registry conflict, nothing grafted or registered', async () => {
    const { h, host, context } = await setup(cleanups);
    const hostWeight = host.variables[0] as tf.Variable;
    patchModules(h, (m) => ({ ...withApply(m, (x) => m.apply(x)), variables: [...m.variables, hostWeight] }));
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await h.kasmina.advance(context(1));
    const reason = `parameter registry conflict: variable ${hostWeight.name} cannot be registered to seed s1: already registered to host`;
    expectGateFailure(h, 's1', 'SEED_GATE_G1_GRADIENT_HEALTH', reason);
    expect(host.hooks.size).toBe(0);
    expect(hostWeight.isDisposed).toBe(false);
  });

  it('fails a grafted seed whose slot leaks gradient into the host (direct isolation check), with an isolation_violation', () => {
    const host = mlpHost({ inputShape: [8], hidden: [8], numClasses: 3, seed: 1, hostId: 'leaky-host' });
    cleanups.push(() => host.dispose());
    const site = host.descriptor.sites[0]!;
    const telemetry = new MemoryTelemetrySink();
    const state = new ExecutorState();
    const registry = new ParameterRegistry();
    registry.registerHost(host.variables);
    const executorTelemetry = new ExecutorTelemetry({ sink: telemetry, trainingRunId: 'run-leak', clock: new FakeClock() });
    /** Feeds the module the raw activation: a slot that breaks isolation. */
    class LeakySlot extends SeedSlot {
      protected override moduleInput(activation: tf.Tensor): tf.Tensor {
        return activation;
      }
    }
    const driver = new SeedDriver({
      host,
      registry,
      isolation: new IsolationMonitor(),
      state,
      telemetry: executorTelemetry,
      settings: { ...FAST_LIFECYCLE, isolationCheckEverySteps: 2 },
      prefetch: undefined,
      createSlot: (options) => new LeakySlot(options),
    });
    const module = new KarnCatalog().build('BP009', site, { seed: 3, scope: 'leaky/s1' });
    const seed = newSeed({
      seedId: 's1',
      siteId: site.siteId,
      site,
      blueprintId: 'BP009',
      commandId: 'c1',
      germinatedEpoch: 0,
      plan: DEFAULT_BLEND_PLAN,
      lossAtGermination: 1,
    });
    state.seeds.set('s1', seed);
    state.occupancy.set(site.siteId, 's1');
    driver.move(seed, SeedLifecycleStage.SEED_STAGE_GERMINATED);
    driver.graft(seed, {
      ok: true,
      fetched: { module, latencyMs: 1, overBudget: false, cacheHit: false, waitedMs: 0, checksum: '', guardDigest: '' },
    });
    expect(seed.lifecycle.stage).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
    const signals = { trainingLoss: 1, hookGradientNorms: new Map([[site.siteId, 0.5]]) };
    for (let step = 1; step <= 2; step += 1) {
      state.step = step;
      driver.advance(seed, signals);
    }
    expect(seed.lifecycle.stage).toBe(SeedLifecycleStage.SEED_STAGE_EMBARGOED);
    expect(seed.fate.cullReason).toBe('SEED_GATE_G1_GRADIENT_HEALTH: gradient isolation violations present');
    expect(host.hooks.size).toBe(0);
    expect(module.variables.every((v) => v.isDisposed)).toBe(true);
    const events = seed.events.splice(0) as EventInput[];
    expect(events.find((e) => e.description === SeedEvent.ISOLATION_VIOLATION)?.level).toBe(TelemetryLevel.WARNING);
    expect(events.find((e) => e.description === SeedEvent.GATE_FAILURE)).toMatchObject({
      level: TelemetryLevel.WARNING,
      attributes: { gate: 'SEED_GATE_G1_GRADIENT_HEALTH', reason: 'gradient isolation violations present' },
    });
  });
});

describe('G2 stability (TRAINING → BLENDING; SHADOWING → PROBATIONARY)', () => {
  it('fails a kernel whose fetch took longer than the latency budget', async () => {
    const clock = new FakeClock({ wallMs: Date.now() });
    const { h, context } = await setup(cleanups, { clock, settings: { kernelLatencyBudgetMs: 10 } });
    const load = h.library.load.bind(h.library);
    h.library.load = async (...args) => {
      clock.advance(50);
      return load(...args);
    };
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
    await advanceTo(h.kasmina, context, 1, FAST_LIFECYCLE.trainingSteps);
    const event = expectGateFailure(h, 's1', 'SEED_GATE_G2_STABILITY', 'latency budget exceeded');
    expect(event.attributes).toMatchObject({ latency_ms: '50', budget_ms: '10' });
  });

  it('fails a module that emits NaN (measured on a probe batch of the site shape)', async () => {
    const { h, context } = await setup(cleanups);
    patchModules(h, (m) => withApply(m, (x) => tf.mul(m.apply(x), tf.scalar(Number.NaN))));
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
    await advanceTo(h.kasmina, context, 1, FAST_LIFECYCLE.trainingSteps);
    const event = expectGateFailure(h, 's1', 'SEED_GATE_G2_STABILITY', 'non-finite seed output');
    expect(event.attributes['seed_output_finite']).toBe('false');
  });

  it('fails a seed whose gradient was not finite, or never arrived', async () => {
    const { h, context } = await setup(cleanups);
    await h.kasmina.apply(h.sign(germinateCommand('s1', 'hidden1')), context(0));
    await h.kasmina.apply(h.sign(germinateCommand('s2', 'hidden2')), context(0));
    const norms = (step: number) =>
      new Map([
        ['hidden1', step === 3 ? Number.NaN : 0.5],
        ['hidden2', 0],
      ]);
    for (let step = 1; step <= FAST_LIFECYCLE.trainingSteps; step += 1)
      await h.kasmina.advance(context(step, { hookGradientNorms: norms(step) }));
    expectGateFailure(h, 's1', 'SEED_GATE_G2_STABILITY', 'non-finite seed gradient');
    expectGateFailure(h, 's2', 'SEED_GATE_G2_STABILITY', 'seed gradient inactive');
  });

  it('fails a seed in SHADOWING when the training-loss EWMA rose more than 10 % over its value at germination', async () => {
    const { h, context } = await setup(cleanups);
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    const shadowing = FAST_LIFECYCLE.trainingSteps + FAST_LIFECYCLE.blendingSteps;
    await advanceTo(h.kasmina, context, 1, shadowing);
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_SHADOWING);
    for (let step = shadowing + 1; step <= shadowing + FAST_LIFECYCLE.shadowingSteps; step += 1) {
      await h.kasmina.advance(context(step, { trainingLoss: 2 }));
    }
    const event = expectGateFailure(h, 's1', 'SEED_GATE_G2_STABILITY', 'loss regressed');
    expect(event.attributes['loss_baseline']).toBe('1');
    expect(Number(event.attributes['loss_now'])).toBeGreaterThan(1.1);
  });
});

describe('G3 interface (BLENDING → SHADOWING)', () => {
  it('fails a module whose output shape follows a batch of one, not the batch it is given', async () => {
    const { h, context } = await setup(cleanups);
    // Right for the graft's one-example probe, wrong for any larger batch.
    patchModules(h, (m) => withApply(m, (x) => tf.slice(m.apply(x), [0, 0], [1, -1])));
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await advanceTo(h.kasmina, context, 1, FAST_LIFECYCLE.trainingSteps + FAST_LIFECYCLE.blendingSteps);
    const event = expectGateFailure(h, 's1', 'SEED_GATE_G3_INTERFACE', 'seed output shape mismatch');
    expect(event.attributes).toMatchObject({ expected_shape: '[4,16]', output_shape: '[1,16]' });
  });

  it('fails when the host has a variable Kasmina does not hold as host-owned (a host that built a variable after Kasmina registered it)', async () => {
    const real = mlpHost({ inputShape: [8], hidden: [16, 16], numClasses: 3, seed: 1, hostId: 'late-host' });
    cleanups.push(() => real.dispose());
    const init = tf.zeros([2]);
    const late = tf.variable(init, true, 'late-host/late/w');
    init.dispose();
    cleanups.push(() => late.dispose());
    let grown = false;
    const host: HostModel = Object.create(real, {
      variables: { get: () => (grown ? [...real.variables, late] : real.variables) },
    }) as HostModel;
    const { h, context } = await setup(cleanups, { host });
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    grown = true;
    await advanceTo(h.kasmina, context, 1, FAST_LIFECYCLE.trainingSteps + FAST_LIFECYCLE.blendingSteps);
    const event = expectGateFailure(h, 's1', 'SEED_GATE_G3_INTERFACE', 'host model not registered');
    expect(event.attributes['unregistered_host_variables']).toBe('1');
  });
});

describe('G4 system impact (PROBATIONARY → FOSSILIZED)', () => {
  const probationary = FAST_LIFECYCLE.trainingSteps + FAST_LIFECYCLE.blendingSteps + FAST_LIFECYCLE.shadowingSteps;

  it('culls a seed whose counterfactual contribution is below the threshold', async () => {
    const { h, context } = await setup(cleanups);
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await advanceTo(h.kasmina, context, 1, probationary);
    await h.kasmina.recordValidation(validation('s1', 'hidden1', 0.5, 0.499), context(probationary));
    await advanceTo(h.kasmina, context, probationary + 1, probationary + FAST_LIFECYCLE.probationSteps);
    const event = expectGateFailure(h, 's1', 'SEED_GATE_G4_SYSTEM_IMPACT', 'contribution below threshold');
    expect(event.attributes).toMatchObject({ contribution: String(0.5 - 0.499), threshold: '0.01' });
  });

  it('on a regression (no accuracy measured) measures the share of validation loss the seed removes: 5 % fossilizes, 0.5 % is culled', async () => {
    const lossReport = (seedId: string, withSeed: number, withoutSeed: number): ValidationReport => ({
      accuracyMeasured: false,
      baseline: { loss: withSeed, accuracy: 0 },
      withoutSeed: [{ seedId, siteId: 'hidden1', validation: { loss: withoutSeed, accuracy: 0 } }],
    });
    expect(counterfactualContribution({ loss: 0.95, accuracy: 0 }, { loss: 1, accuracy: 0 }, false)).toBeCloseTo(0.05, 12);
    expect(counterfactualContribution({ loss: 0, accuracy: 0 }, { loss: 0, accuracy: 0 }, false)).toBe(0);
    for (const [lossWith, fate] of [
      [0.95, SeedLifecycleStage.SEED_STAGE_FOSSILIZED],
      [0.995, SeedLifecycleStage.SEED_STAGE_EMBARGOED],
    ] as const) {
      const { h, context } = await setup(cleanups);
      await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
      await advanceTo(h.kasmina, context, 1, probationary);
      await h.kasmina.recordValidation(lossReport('s1', lossWith, 1), context(probationary));
      await advanceTo(h.kasmina, context, probationary + 1, probationary + FAST_LIFECYCLE.probationSteps);
      expect(h.kasmina.stageOf('s1'), String(lossWith)).toBe(fate);
    }
  });

  it('culls a seed fossilized by command before its contribution was measured in PROBATIONARY', async () => {
    const { h, context } = await setup(cleanups);
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await advanceTo(h.kasmina, context, 1, probationary);
    await h.kasmina.apply(h.sign(seedCommand(OperatorAction.FOSSILIZE, 's1')), context(probationary));
    await h.kasmina.advance(context(probationary + 1));
    expectGateFailure(h, 's1', 'SEED_GATE_G4_SYSTEM_IMPACT', 'contribution not measured');
  });

  it('culls a paused seed fossilized by command, even with a contribution above the threshold', async () => {
    const { h, context } = await setup(cleanups);
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await advanceTo(h.kasmina, context, 1, probationary + 1);
    await h.kasmina.recordValidation(validation('s1', 'hidden1', 0.6, 0.4), context(probationary + 1));
    await h.kasmina.apply(h.sign(seedCommand(OperatorAction.PAUSE, 's1')), context(probationary + 1));
    await h.kasmina.apply(h.sign(seedCommand(OperatorAction.FOSSILIZE, 's1')), context(probationary + 1));
    await h.kasmina.advance(context(probationary + 2));
    expectGateFailure(h, 's1', 'SEED_GATE_G4_SYSTEM_IMPACT', 'seed paused');
  });

  it('fossilizes a seed that helped and fuses it into the host; a CULL of a fossil is illegal, a CANCEL terminates it', async () => {
    const { h, host, context } = await setup(cleanups, { settings: { minContribution: -1 } });
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await advanceTo(h.kasmina, context, 1, probationary);
    await h.kasmina.recordValidation(validation('s1', 'hidden1', 0.5, 0.5), context(probationary));
    await advanceTo(h.kasmina, context, probationary + 1, probationary + FAST_LIFECYCLE.probationSteps);
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_FOSSILIZED);
    expect((host.hooks.get('hidden1') as SeedSlot).phase).toBe('fused');
    await rejectionOf(h.kasmina.apply(h.sign(seedCommand(OperatorAction.CULL, 's1')), context(70)));
    await h.kasmina.advance(context(71));
    expect(h.telemetry.events(SeedEvent.ILLEGAL_TRANSITION)[0]?.attributes).toMatchObject({
      from: 'SEED_STAGE_FOSSILIZED',
      to: 'SEED_STAGE_CULLED',
    });
    const cancel = create(AdaptationCommandSchema, {
      version: 1,
      commandId: 'cancel-1',
      commandType: CommandType.COMMAND_SEED,
      trainingRunId: RUN,
      targetSeedId: 's1',
      payload: { case: 'seedOperation', value: { operation: SeedOperation.SEED_OP_CANCEL } },
    });
    await h.kasmina.apply(h.sign(cancel), context(72));
    await h.kasmina.advance(context(73));
    expect(h.telemetry.events(SeedEvent.SEED_TERMINATED).map((e) => e.attributes['reason'])).toEqual(['cancel_command']);
    expect(h.kasmina.seedReports()[0]).toMatchObject({ fate: SeedLifecycleStage.SEED_STAGE_FOSSILIZED, fateReason: '' });
    expect(h.kasmina.seedReports()[0]?.history.at(-1)?.to).toBe(SeedLifecycleStage.SEED_STAGE_TERMINATED);
  });

  it('terminates fossils at close()', async () => {
    const { h, context } = await setup(cleanups, { settings: { minContribution: -1 } });
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await advanceTo(h.kasmina, context, 1, probationary);
    await h.kasmina.recordValidation(validation('s1', 'hidden1', 0.5, 0.5), context(probationary));
    await advanceTo(h.kasmina, context, probationary + 1, probationary + FAST_LIFECYCLE.probationSteps);
    await h.kasmina.close();
    expect(h.telemetry.events(SeedEvent.SEED_TERMINATED).map((e) => e.attributes['reason'])).toEqual(['shutdown']);
  });
});

describe('G5 reset (RESETTING → DORMANT)', () => {
  it('keeps a seed RESETTING (ERROR gate_failure, once) while a module whose dispose leaks is still alive', async () => {
    const { h, context } = await setup(cleanups, { settings: { embargoSteps: 0 } });
    let leaked: readonly tf.Variable[] = [];
    patchModules(h, (m) => {
      leaked = m.variables;
      return { ...withApply(m, (x) => m.apply(x)), dispose: () => undefined };
    });
    cleanups.push(() => leaked.forEach((v) => v.dispose()));
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await h.kasmina.apply(h.sign(seedCommand(OperatorAction.CULL, 's1')), context(1));
    await advanceTo(h.kasmina, context, 1, 4);
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_RESETTING);
    const event = expectGateFailure(h, 's1', 'SEED_GATE_G5_RESET', 'reset state not clean', TelemetryLevel.ERROR);
    expect(event.attributes['dirty']).toBe('live_tensors');
    expect(h.kasmina.seedReports()[0]).toMatchObject({ fate: SeedLifecycleStage.SEED_STAGE_CULLED, fateReason: 'cull_command' });
    // Freed at last: the next step's re-check passes and the site is free again.
    leaked.forEach((v) => v.dispose());
    await h.kasmina.advance(context(5));
    expect(h.kasmina.stageOf('s1')).toBeUndefined();
    expect(h.kasmina.seedReports()[0]?.history.at(-1)?.to).toBe(SeedLifecycleStage.SEED_STAGE_DORMANT);
  });

  it('keeps a seed RESETTING while the kernel fetch its prefetch answer started is still running', async () => {
    const bus = new StreamBus({ store: new MemoryStreamStore(), keyRing: RING, telemetry: new MemoryTelemetrySink(), blockMs: 20 });
    cleanups.push(() => bus.close());
    const worker = new AsyncWorker({ name: 'kasmina-g5', maxConcurrency: 8 });
    cleanups.push(() => worker.close());
    const { h, context } = await setup(cleanups, { prefetch: { bus, worker }, settings: { embargoSteps: 0 } });
    const urza = new UrzaPrefetchWorker({ bus, library: h.library, catalog, telemetry: new MemoryTelemetrySink(), prewarmPasses: 1 });
    cleanups.push(() => urza.close());
    await urza.start();
    let release: () => void = () => undefined;
    let started: () => void = () => undefined;
    const fetchStarted = new Promise<void>((resolve) => (started = resolve));
    const gate = new Promise<void>((resolve) => (release = resolve));
    const fetch = h.fetcher.fetch.bind(h.fetcher);
    h.fetcher.fetch = async (...args) => {
      started();
      await gate;
      return fetch(...args);
    };
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await fetchStarted;
    await h.kasmina.apply(h.sign(seedCommand(OperatorAction.CULL, 's1')), context(1));
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_RESETTING);
    await h.kasmina.advance(context(2));
    const event = expectGateFailure(h, 's1', 'SEED_GATE_G5_RESET', 'reset state not clean', TelemetryLevel.ERROR);
    expect(event.attributes['dirty']).toBe('inflight_prefetches');
    release();
    const deadline = Date.now() + 10_000;
    let step = 3;
    while (h.kasmina.stageOf('s1') !== undefined && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      await h.kasmina.advance(context(step));
      step += 1;
    }
    expect(h.kasmina.stageOf('s1')).toBeUndefined();
    expect(h.telemetry.events(SeedEvent.KERNEL_ATTACHED)).toHaveLength(0);
  });
});
