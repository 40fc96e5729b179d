/**
 * Who applies a command (`commands.ts`): OPTIMIZER and ROLLBACK are Tolaria's — verified,
 * dependency-checked and applied here, or refused as a whole; every other type goes to the
 * executor as it is; the controller hears each command's outcome.
 */
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { DependencyViolationError, EsperError, ErrorCode, MemoryTelemetrySink } from '../../src/core/index.js';
import {
  AdaptationCommandSchema,
  CommandOptimizerAdjustmentSchema,
  CommandType,
  RollbackRequestSchema,
  RollbackTier,
  SeedOperation,
  TelemetryLevel,
  type AdaptationCommand,
} from '../../src/leyline/index.js';
import { CommandVerifier, HmacSigner, KeyRing, NonceLedger } from '../../src/security/index.js';
import { outcomeOfError } from '../../src/tolaria/commands.js';
import type { CommandOutcome, Controller, Executor } from '../../src/tolaria/controller.js';
import { TolariaEvent } from '../../src/tolaria/names.js';
import type { TrainerOptions } from '../../src/tolaria/trainer-options.js';
import { GraftingExecutor, ScriptedController, seedCommand } from './fixtures/fakes.js';
import { trainerKit } from './fixtures/trainer-kit.js';

const RUN = 'run-commands';
const RING = new KeyRing([{ keyId: 'k1', secret: Buffer.from('tolaria-commands-secret-0123456789ab', 'utf8') }]);
const signer = new HmacSigner(RING);

const kit = trainerKit({ trainingRunId: RUN, hostPrefix: 'cmd', epochs: 1, withWorker: true });
const run = (overrides: Partial<TrainerOptions>) => kit.trainer(overrides);

function newVerifier(telemetry: MemoryTelemetrySink): CommandVerifier {
  return new CommandVerifier({ signer, ledger: new NonceLedger({ ttlSeconds: 600 }), sink: telemetry, source: 'tolaria' });
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
    kit.defer(() => executor.dispose());
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

describe('Trainer: commands for the executor', () => {
  it('hands executor commands to the executor as they are: it checks them where it applies them, not Tolaria', async () => {
    const executor = new GraftingExecutor('hidden1', 16);
    kit.defer(() => executor.dispose());
    const controller = new ScriptedController(new Map([[2, seedCommand('other-run', 'cmd-1', 'seed-a', SeedOperation.SEED_OP_GERMINATE)]]));
    const { trainer, telemetry } = kit.trainer({ controller, executor, worker: kit.worker(), epochs: 1 });
    await trainer.run();
    expect(executor.applied.map((c) => c.commandId)).toEqual(['cmd-1']);
    expect(telemetry.events('dependency_guard.violation')).toHaveLength(0);
  });
  it('a refusal by the executor is reported and does not fail the epoch; an unexpected executor error does', async () => {
    const throwing = (error: Error): Executor => ({
      apply: () => Promise.reject(error),
      exportSeedStates: () => [],
      advance: () => Promise.resolve(),
      contributionProbes: () => [],
      recordValidation: () => Promise.resolve(),
    });
    const command = seedCommand(RUN, 'germ', 'seed-1', SeedOperation.SEED_OP_GERMINATE);
    const refusal = new EsperError(ErrorCode.KASMINA_GATE_FAILED, 'G0', { details: { reason: 'SEED_GATE_G0_SANITY: site occupied' } });
    const refused = run({ controller: script([[2, command]]), executor: throwing(refusal) });
    const refusedSummary = await refused.trainer.run();
    expect(refusedSummary.lastEpoch?.failureReason).toBe('');
    expect(refusedSummary.commandsRefused).toBe(1);
    expect(eventsOf(refused.telemetry, TolariaEvent.COMMAND_NOT_APPLIED)[0]?.attributes).toMatchObject({
      command_id: 'germ',
      reason: 'SEED_GATE_G0_SANITY: site occupied',
    });
    expect(eventsOf(refused.telemetry, TolariaEvent.KASMINA_ERROR)).toHaveLength(0);

    const broken = run({ controller: script([[2, command]]), executor: throwing(new TypeError('boom')) });
    const brokenSummary = await broken.trainer.run();
    expect(brokenSummary.lastEpoch?.failureReason).toBe('kasmina_error');
    expect(eventsOf(broken.telemetry, TolariaEvent.KASMINA_ERROR)[0]?.attributes['error']).toBe('TypeError: boom');
  });

  it('refuses executor commands when no executor is attached', async () => {
    const { trainer, telemetry } = run({ controller: script([[2, seedCommand(RUN, 'germ', 'seed-1', SeedOperation.SEED_OP_GERMINATE)]]) });
    const summary = await trainer.run();
    expect(summary.commandsRefused).toBe(1);
    expect(eventsOf(telemetry, TolariaEvent.COMMAND_NOT_APPLIED)[0]?.attributes['reason']).toBe('no_executor');
  });
});

describe('outcomeOfError', () => {
  it('maps what an owner threw to the outcome the controller hears', () => {
    const rejected = new EsperError(ErrorCode.COMMAND_REJECTED, 'bad', { details: { reason: 'stale' } });
    const notApplied = new EsperError(ErrorCode.COMMAND_NOT_APPLIED, 'no', { details: { reason: 'illegal_transition' } });
    const violation = new DependencyViolationError({
      subsystem: 'kasmina',
      dependencyType: 'seed_id',
      identifier: undefined,
      reason: 'missing',
    });
    expect(outcomeOfError(rejected)).toEqual({ status: 'rejected', reason: 'stale' });
    expect(outcomeOfError(notApplied)).toEqual({ status: 'not_applied', reason: 'illegal_transition' });
    expect(outcomeOfError(violation)).toEqual({ status: 'rejected', reason: 'dependency_violation' });
    expect(outcomeOfError(new EsperError(ErrorCode.INVALID_STATE, 'x'))).toEqual({
      status: 'not_applied',
      reason: ErrorCode.INVALID_STATE,
    });
    expect(outcomeOfError(new TypeError('boom'))).toEqual({ status: 'failed', reason: 'TypeError: boom' });
  });
});
