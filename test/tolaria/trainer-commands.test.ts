/**
 * Commands Tolaria owns (OPTIMIZER, ROLLBACK: verified, dependency-checked and applied
 * here, or refused as a whole) and the one-way executor protocol (advance and the
 * validation report on the worker with the executor's deadline, contribution probes served
 * by the trainer).
 */
import { create } from '@bufbuild/protobuf';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AsyncWorker, MemoryTelemetrySink } from '../../src/core/index.js';
import {
  AdaptationCommandSchema,
  CommandOptimizerAdjustmentSchema,
  CommandType,
  RollbackRequestSchema,
  RollbackTier,
  SeedOperation,
  TelemetryLevel,
  type AdaptationCommand,
  type SystemStatePacket,
} from '../../src/leyline/index.js';
import { CommandVerifier, HmacSigner, KeyRing, NonceLedger } from '../../src/security/index.js';
import { initTensorBackend, tf } from '../../src/tensor/index.js';
import type { CommandOutcome, Controller, Executor, ExecutorContext } from '../../src/tolaria/controller.js';
import { spiralsDataset } from '../../src/tolaria/data/synthetic.js';
import type { Dataset } from '../../src/tolaria/dataset.js';
import type { HostModel } from '../../src/tolaria/host-model.js';
import { mlpHost } from '../../src/tolaria/hosts/mlp-host.js';
import { TolariaEvent } from '../../src/tolaria/names.js';
import { Trainer } from '../../src/tolaria/trainer.js';
import type { StepReport, TrainerOptions } from '../../src/tolaria/trainer-options.js';
import { GraftingExecutor, ScriptedController, seedCommand } from './fixtures/fakes.js';

const RUN = 'run-commands';
const RING = new KeyRing([{ keyId: 'k1', secret: Buffer.from('tolaria-commands-secret-0123456789ab', 'utf8') }]);
const signer = new HmacSigner(RING);

let dataset: Dataset;
beforeAll(async () => {
  await initTensorBackend();
  dataset = spiralsDataset({ seed: 5, trainSize: 256, validationSize: 64 });
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let hostCounter = 0;
function newHost(): HostModel {
  hostCounter += 1;
  const h = mlpHost({ inputSize: 2, hidden: [16, 16], numClasses: 2, seed: 1, hostId: `cmd${hostCounter}` });
  cleanups.push(() => h.dispose());
  return h;
}

function newWorker(): AsyncWorker {
  const w = new AsyncWorker({ name: 'tolaria-commands-test', shutdownTimeoutMs: 100 });
  cleanups.push(() => w.close());
  return w;
}

function newVerifier(telemetry: MemoryTelemetrySink): CommandVerifier {
  return new CommandVerifier({ signer, ledger: new NonceLedger({ ttlSeconds: 600 }), sink: telemetry, source: 'tolaria' });
}

function run(overrides: Partial<TrainerOptions>): { trainer: Trainer; telemetry: MemoryTelemetrySink; steps: StepReport[] } {
  const telemetry = (overrides.telemetry as MemoryTelemetrySink | undefined) ?? new MemoryTelemetrySink();
  const steps: StepReport[] = [];
  const trainer = new Trainer({
    trainingRunId: RUN,
    host: newHost(),
    dataset,
    epochs: 1,
    batchSize: 32,
    seed: 9,
    optimizer: { kind: 'adam', learningRate: 0.01 },
    worker: newWorker(),
    telemetry,
    onStep: (r) => steps.push(r),
    ...overrides,
  });
  cleanups.push(() => trainer.dispose());
  return { trainer, telemetry, steps };
}

function optimizerCommand(id: string, fields: { learningRate?: number; momentum?: number }, runId = RUN): AdaptationCommand {
  return create(AdaptationCommandSchema, {
    version: 1,
    commandId: id,
    commandType: CommandType.COMMAND_OPTIMIZER,
    trainingRunId: runId,
    issuedBy: 'test',
    payload: { case: 'optimizerAdjustment', value: create(CommandOptimizerAdjustmentSchema, fields) },
  });
}

function rollbackCommand(id: string, fields: { tier?: RollbackTier; seedId?: string; targetGlobalStep?: bigint }): AdaptationCommand {
  return create(AdaptationCommandSchema, {
    version: 1,
    commandId: id,
    commandType: CommandType.COMMAND_ROLLBACK,
    trainingRunId: RUN,
    issuedBy: 'test',
    payload: { case: 'rollback', value: create(RollbackRequestSchema, { reason: 'test', ...fields }) },
  });
}

/** Validation accuracy of `host` over the whole split, in one pass. */
function accuracyOf(host: HostModel): number {
  const split = dataset.validation;
  const batch = split.batch(Int32Array.from({ length: split.size }, (_, i) => i));
  try {
    return tf.tidy(() => {
      const logits = host.forward(batch.inputs, { training: false });
      return (tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), batch.labels), 'float32')).dataSync()[0] as number) / split.size;
    });
  } finally {
    tf.dispose([batch.inputs, batch.labels]);
  }
}

const sign = (command: AdaptationCommand): AdaptationCommand => signer.sign(AdaptationCommandSchema, command);
const script = (entries: [number, AdaptationCommand][]): ScriptedController => new ScriptedController(new Map(entries));
const eventsOf = (telemetry: MemoryTelemetrySink, description: string) => telemetry.events(description);

describe('Trainer: OPTIMIZER commands are Tolaria’s', () => {
  it('sets the learning rate of the next step and keeps the schedule’s shape after it', async () => {
    const telemetry = new MemoryTelemetrySink();
    const { trainer, steps } = run({
      telemetry,
      controller: script([[3, sign(optimizerCommand('lr-1', { learningRate: 0.002 }))]]),
      commandVerifier: newVerifier(telemetry),
      lrSchedule: { policy: 'cosine', totalSteps: 8 },
    });
    const summary = await trainer.run();
    expect(summary.commandsRefused).toBe(0);
    const baseline = run({ lrSchedule: { policy: 'cosine', totalSteps: 8 } });
    await baseline.trainer.run();
    const scale = 0.002 / baseline.steps[3]!.learningRate;
    expect(steps[3]!.learningRate).toBeCloseTo(0.002, 12);
    for (const i of [4, 5, 6, 7]) expect(steps[i]!.learningRate).toBeCloseTo(baseline.steps[i]!.learningRate * scale, 12);
    for (const i of [0, 1, 2]) expect(steps[i]!.learningRate).toBe(baseline.steps[i]!.learningRate);
    const [applied] = eventsOf(telemetry, TolariaEvent.COMMAND_APPLIED);
    expect(applied?.attributes).toMatchObject({ command_id: 'lr-1', command_type: 'COMMAND_OPTIMIZER', learning_rate: '0.002' });
  });

  it('refuses an adjustment as a whole when it asks for something Tolaria cannot do, or an invalid rate', async () => {
    const telemetry = new MemoryTelemetrySink();
    const { trainer, steps } = run({
      telemetry,
      controller: script([
        [2, sign(optimizerCommand('mom', { learningRate: 0.5, momentum: 0.8 }))],
        [3, sign(optimizerCommand('neg', { learningRate: -1 }))],
        [4, sign(optimizerCommand('empty', {}))],
      ]),
      commandVerifier: newVerifier(telemetry),
    });
    const summary = await trainer.run();
    expect(steps.every((s) => s.learningRate === 0.01)).toBe(true);
    expect(summary.commandsRefused).toBe(3);
    const refused = eventsOf(telemetry, TolariaEvent.COMMAND_NOT_APPLIED);
    expect(refused.map((e) => [e.attributes['command_id'], e.attributes['reason']])).toEqual([
      ['mom', 'unsupported_field'],
      ['neg', 'invalid_value'],
      ['empty', 'invalid_value'],
    ]);
    expect(refused.every((e) => e.level === TelemetryLevel.WARNING)).toBe(true);
    expect(eventsOf(telemetry, TolariaEvent.COMMAND_APPLIED)).toHaveLength(0);
  });

  it('rejects forged and replayed commands (CRITICAL command_rejected) and applies nothing', async () => {
    const telemetry = new MemoryTelemetrySink();
    const forger = new HmacSigner(new KeyRing([{ keyId: 'k1', secret: Buffer.from('not-the-tolaria-secret-0123456789ab', 'utf8') }]));
    const genuine = sign(optimizerCommand('lr-ok', { learningRate: 0.005 }));
    const { trainer, steps } = run({
      telemetry,
      controller: script([
        [2, forger.sign(AdaptationCommandSchema, optimizerCommand('forged', { learningRate: 0.5 }))],
        [3, optimizerCommand('unsigned', { learningRate: 0.5 })],
        [4, genuine],
        [5, genuine],
      ]),
      commandVerifier: newVerifier(telemetry),
    });
    const summary = await trainer.run();
    const rejected = eventsOf(telemetry, 'command_rejected');
    expect(rejected.map((e) => e.attributes['reason'])).toEqual(['invalid_signature', 'missing_security', 'nonce_replayed']);
    expect(rejected.every((e) => e.level === TelemetryLevel.CRITICAL)).toBe(true);
    expect(steps[4]!.learningRate).toBeCloseTo(0.005, 12);
    expect(steps[2]!.learningRate).toBe(0.01);
    expect(summary.lastEpoch?.failureReason).toBe('command_rejected');
  });

  it('refuses OPTIMIZER commands without a verifier, and a signed command for another run is a dependency violation', async () => {
    const noVerifier = run({ controller: script([[2, sign(optimizerCommand('lr', { learningRate: 0.002 }))]]) });
    await noVerifier.trainer.run();
    expect(eventsOf(noVerifier.telemetry, TolariaEvent.COMMAND_NOT_APPLIED)[0]?.attributes['reason']).toBe('no_verifier');
    expect(noVerifier.steps.every((s) => s.learningRate === 0.01)).toBe(true);

    const telemetry = new MemoryTelemetrySink();
    const otherRun = run({
      telemetry,
      controller: script([[2, sign(optimizerCommand('lr', { learningRate: 0.002 }, 'run-elsewhere'))]]),
      commandVerifier: newVerifier(telemetry),
    });
    await otherRun.trainer.run();
    expect(telemetry.events('dependency_guard.violation')).toHaveLength(1);
    expect(otherRun.steps.every((s) => s.learningRate === 0.01)).toBe(true);
  });
});

describe('Trainer: ROLLBACK commands are Tolaria’s', () => {
  it('a FAST rollback to a step restores that snapshot and training goes on from it', async () => {
    const telemetry = new MemoryTelemetrySink();
    const { trainer, steps } = run({
      telemetry,
      controller: script([[6, sign(rollbackCommand('rb', { tier: RollbackTier.FAST, targetGlobalStep: 4n }))]]),
      commandVerifier: newVerifier(telemetry),
      rollback: { snapshotEverySteps: 2 },
    });
    const summary = await trainer.run();
    expect(steps.map((s) => s.globalStep)).toEqual([1, 2, 3, 4, 5, 4, 5, 6, 7, 8]);
    expect(summary.rollbacks.fastHits).toBe(1);
    expect(eventsOf(telemetry, TolariaEvent.COMMAND_APPLIED)[0]?.attributes).toMatchObject({ tier: 'fast', to_step: '4' });
    // Replaying the steps replays the controller's answers; the nonce ledger refuses the second rollback.
    expect(eventsOf(telemetry, 'command_rejected').map((e) => e.attributes['reason'])).toEqual(['nonce_replayed']);
  });

  it('refuses a rollback naming a seed, and one without rollback configured', async () => {
    const telemetry = new MemoryTelemetrySink();
    const { trainer } = run({
      telemetry,
      controller: script([
        [2, sign(rollbackCommand('seed', { tier: RollbackTier.FAST, seedId: 'seed-1' }))],
        [3, sign(rollbackCommand('future', { tier: RollbackTier.FAST, targetGlobalStep: 7n }))],
      ]),
      commandVerifier: newVerifier(telemetry),
      rollback: { snapshotEverySteps: 2 },
    });
    await trainer.run();
    const unconfigured = new MemoryTelemetrySink();
    const bare = run({
      telemetry: unconfigured,
      controller: script([[2, sign(rollbackCommand('none', { tier: RollbackTier.FAST }))]]),
      commandVerifier: newVerifier(unconfigured),
    });
    await bare.trainer.run();
    const reasons = [
      ...eventsOf(telemetry, TolariaEvent.COMMAND_NOT_APPLIED),
      ...eventsOf(unconfigured, TolariaEvent.COMMAND_NOT_APPLIED),
    ].map((e) => [e.attributes['command_id'], e.attributes['reason']]);
    expect(reasons).toEqual([
      ['seed', 'unsupported_field'],
      ['future', 'invalid_value'],
      ['none', 'rollback_not_configured'],
    ]);
  });
});

describe('Trainer: command outcomes', () => {
  it('tells the controller what became of each command: applied, not_applied with the reason, rejected, executor outcomes', async () => {
    const telemetry = new MemoryTelemetrySink();
    const executor = new GraftingExecutor('hidden2', 16);
    cleanups.push(() => executor.dispose());
    const forger = new HmacSigner(new KeyRing([{ keyId: 'k1', secret: Buffer.from('not-the-tolaria-secret-0123456789ab', 'utf8') }]));
    const controller = script([
      [1, sign(optimizerCommand('lr', { learningRate: 0.002 }))],
      [2, sign(optimizerCommand('mom', { learningRate: 0.002, momentum: 0.5 }))],
      [3, forger.sign(AdaptationCommandSchema, optimizerCommand('forged', { learningRate: 0.002 }))],
      [4, seedCommand(RUN, 'germ', 'seed-1', SeedOperation.SEED_OP_GERMINATE)],
    ]);
    const outcomes: CommandOutcome[] = [];
    const listening: Controller = {
      evaluateStep: (state) => controller.evaluateStep(state),
      commandOutcome: (outcome) => outcomes.push(outcome),
    };
    const { trainer } = run({ telemetry, controller: listening, executor, commandVerifier: newVerifier(telemetry) });
    await trainer.run();
    expect(outcomes).toEqual([
      { commandId: 'lr', status: 'applied', reason: '' },
      { commandId: 'mom', status: 'not_applied', reason: 'unsupported_field' },
      { commandId: 'forged', status: 'rejected', reason: 'invalid_signature' },
      { commandId: 'germ', status: 'applied', reason: '' },
    ]);
  });
});

describe('Trainer: the executor protocol goes one way', () => {
  it('serves contribution probes: one pass per probe with that site bypassed, reported once per validation', async () => {
    const executor = new GraftingExecutor('hidden2', 16);
    cleanups.push(() => executor.dispose());
    const host = newHost();
    const { trainer } = run({
      host,
      epochs: 2,
      executor,
      controller: script([[2, seedCommand(RUN, 'germ', 'seed-1', SeedOperation.SEED_OP_GERMINATE)]]),
    });
    await trainer.run();
    expect(executor.validations).toHaveLength(2);
    const last = executor.validations[1]!;
    expect(last.withoutSeed.map((p) => [p.seedId, p.siteId])).toEqual([['seed-1', 'hidden2']]);
    // The last report was measured on the final weights: with the hook, and as if it were detached.
    expect(last.baseline.accuracy).toBe(accuracyOf(host));
    const hook = host.detach('hidden2')!;
    try {
      expect(last.withoutSeed[0]!.validation.accuracy).toBe(accuracyOf(host));
      expect(last.withoutSeed[0]!.validation.accuracy).not.toBe(last.baseline.accuracy);
    } finally {
      host.attach('hidden2', hook);
    }
  });

  it('puts advance on the executor deadline: a slow advance is a kasmina_timeout and conservative mode, never a stalled run', async () => {
    let advances = 0;
    const slow: Executor = {
      apply: () => Promise.resolve(),
      exportSeedStates: () => [],
      advance: (_context: ExecutorContext, options) =>
        new Promise((resolve) => {
          advances += 1;
          options.signal.addEventListener('abort', () => resolve(), { once: true });
        }),
      contributionProbes: () => [],
      recordValidation: () => Promise.resolve(),
    };
    const controller: Controller = { evaluateStep: (_state: SystemStatePacket) => Promise.resolve(undefined) };
    const { trainer, telemetry, steps } = run({ executor: slow, controller, executorDeadlineMs: 20 });
    const summary = await trainer.run();
    expect(summary.state).toBe('completed');
    expect(steps).toHaveLength(8);
    expect(advances).toBe(8);
    expect(summary.executorTimeouts).toBe(8);
    expect(eventsOf(telemetry, TolariaEvent.KASMINA_TIMEOUT)[0]?.attributes['call']).toBe('tolaria.kasmina.advance-1');
    expect(eventsOf(telemetry, TolariaEvent.CONSERVATIVE_MODE_ENTERED)).toHaveLength(1);
  });

  it('refuses executor commands when no executor is attached', async () => {
    const { trainer, telemetry } = run({ controller: script([[2, seedCommand(RUN, 'germ', 'seed-1', SeedOperation.SEED_OP_GERMINATE)]]) });
    const summary = await trainer.run();
    expect(summary.commandsRefused).toBe(1);
    expect(eventsOf(telemetry, TolariaEvent.COMMAND_NOT_APPLIED)[0]?.attributes['reason']).toBe('no_executor');
  });
});
