/**
 * Kasmina's command path on a small real host: the verifier, the dependency guard, G0 on a
 * germination (a failure is refused with KASMINA_GATE_FAILED), the refusal of what Kasmina
 * does not own, illegal transitions, pause and resume, the breaker and emergency commands.
 */
import { clone, create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { DependencyViolationError, ErrorCode, FakeClock, isEsperError } from '../../src/core/index.js';
import { buildOperatorCommand, OperatorAction, SeedEvent } from '../../src/kasmina/index.js';
import {
  AdaptationCommandSchema,
  BlendMode,
  canonicalBytes,
  CircuitBreakerState,
  CommandOptimizerAdjustmentSchema,
  CommandType,
  EmergencyLevel,
  SeedLifecycleStage,
  TelemetryLevel,
  type AdaptationCommand,
  type CommandSecurity,
} from '../../src/leyline/index.js';
import { HmacSigner, KeyRing, RejectionReason } from '../../src/security/index.js';
import { RING } from './fixtures/harness.js';
import { rejectionOf } from '../oona/fixtures/waits.js';
import { advanceTo, germinateCommand, RUN, seedCommand, setup } from './fixtures/setup.js';
import { useCleanups, useTensorBackend } from './fixtures/hooks.js';

useTensorBackend();
const cleanups = useCleanups();

describe('Kasmina command security', () => {
  it('rejects every verifier reason with a typed error and CRITICAL command_rejected, creating no seed', async () => {
    const { h, context } = await setup(cleanups);
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
      const error = await rejectionOf(h.kasmina.apply(command, context(0)));
      expect(isEsperError(error, ErrorCode.COMMAND_REJECTED), reason).toBe(true);
      expect((error as { details?: Record<string, unknown> }).details?.['reason']).toBe(reason);
    }
    // A replay of an accepted command.
    await h.kasmina.apply(signed, context(0));
    const replay = await rejectionOf(h.kasmina.apply(signed, context(0)));
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
    const { h, context } = await setup(cleanups, { nonceMaxEntries: 2 });
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
    const { h, host, context } = await setup(cleanups);
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
      const error = await rejectionOf(h.kasmina.apply(command, context(0)));
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

describe('Kasmina G0 on a germination', () => {
  /** Applies `command` and returns the KASMINA_GATE_FAILED it must throw. */
  async function refused(promise: Promise<unknown>): Promise<{ gate: unknown; gate_reason: unknown; reason: unknown }> {
    const error = await rejectionOf(promise);
    expect(isEsperError(error, ErrorCode.KASMINA_GATE_FAILED)).toBe(true);
    return (error as { details: { gate: unknown; gate_reason: unknown; reason: unknown } }).details;
  }

  it('refuses an unknown site, a seed id in use, an occupied site, a blueprint that does not fit, and a bad blend config — with the gate event and a WARNING gate_failure, creating no seed', async () => {
    const { h, host, context } = await setup(cleanups, { blueprints: ['BP001'] });
    await h.kasmina.apply(h.sign(germinateCommand('s1', 'hidden1')), context(0));
    const channel = (seedId: string) =>
      buildOperatorCommand({
        action: OperatorAction.GERMINATE,
        trainingRunId: RUN,
        seedId,
        siteId: 'hidden2',
        blueprintId: 'BP001',
        alphaVec: [0.5, 0.5, 0.5],
      });
    const cases: [AdaptationCommand, string][] = [
      [germinateCommand('s2', 'nowhere'), 'unknown site'],
      [germinateCommand('s1', 'hidden2'), 'seed id in use'],
      [germinateCommand('s3', 'hidden1'), 'site occupied'],
      [germinateCommand('s4', 'hidden2', 'BP013'), 'blueprint does not fit site'],
      [channel('s5'), 'invalid blend config: alpha_vec_channel_mismatch'],
    ];
    for (const [command, reason] of cases) {
      const details = await refused(h.kasmina.apply(h.sign(command), context(0)));
      expect(details).toMatchObject({ gate: 'SEED_GATE_G0_SANITY', gate_reason: reason, reason: `SEED_GATE_G0_SANITY: ${reason}` });
    }
    await h.kasmina.advance(context(1));
    const failures = h.telemetry.events(SeedEvent.GATE_FAILURE);
    expect(failures.map((e) => e.attributes['reason'])).toEqual(cases.map(([, reason]) => reason));
    expect(failures.every((e) => e.level === TelemetryLevel.WARNING && e.attributes['gate'] === 'SEED_GATE_G0_SANITY')).toBe(true);
    const gateEvents = h.telemetry.events(SeedEvent.GATE_EVENT).filter((e) => e.attributes['passed'] === 'false');
    expect(gateEvents.map((e) => e.attributes['reason'])).toEqual(cases.map(([, reason]) => reason));
    expect(h.kasmina.exportSeedStates().map((s) => s.seedId)).toEqual(['s1']);
    expect([...host.hooks.keys()]).toEqual(['hidden1']);
    expect(h.kasmina.stats().commandsApplied).toBe(1);
  });

  it('refuses an embargoed site until the embargo is over', async () => {
    const { h, context } = await setup(cleanups);
    await h.kasmina.apply(h.sign(germinateCommand('s1', 'hidden1')), context(0));
    await h.kasmina.apply(h.sign(seedCommand(OperatorAction.CULL, 's1')), context(0));
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_EMBARGOED);
    expect(await refused(h.kasmina.apply(h.sign(germinateCommand('s4', 'hidden1')), context(1)))).toMatchObject({
      gate_reason: 'site embargoed',
    });
    await advanceTo(h.kasmina, context, 1, 5); // embargoSteps 5: reset at step 5
    expect(h.kasmina.stageOf('s1')).toBeUndefined();
    await h.kasmina.apply(h.sign(germinateCommand('s5', 'hidden1')), context(5));
    expect(h.kasmina.stageOf('s5')).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
  });

  it('refuses a CONFIDENCE blend without the controller logits, with confidence_gate_missing_logits', async () => {
    const { h, context } = await setup(cleanups);
    const command = buildOperatorCommand({
      action: OperatorAction.GERMINATE,
      trainingRunId: RUN,
      seedId: 's1',
      siteId: 'hidden1',
      blueprintId: 'BP001',
      blendMode: BlendMode.CONFIDENCE,
    });
    expect(await refused(h.kasmina.apply(h.sign(command), context(0)))).toMatchObject({
      gate_reason: 'invalid blend config: confidence_gate_missing_logits',
    });
    await h.kasmina.advance(context(1));
    expect(h.telemetry.events(SeedEvent.CONFIDENCE_GATE_MISSING_LOGITS)).toHaveLength(1);
  });
});

describe('Kasmina seed commands', () => {
  it('turns an illegal transition into KASMINA_ILLEGAL_TRANSITION and an illegal_transition event', async () => {
    const { h, context } = await setup(cleanups);
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    const error = await rejectionOf(h.kasmina.apply(h.sign(seedCommand(OperatorAction.FOSSILIZE, 's1')), context(0)));
    expect(isEsperError(error, ErrorCode.KASMINA_ILLEGAL_TRANSITION)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details['reason']).toBe(
      'illegal transition SEED_STAGE_TRAINING -> SEED_STAGE_FOSSILIZED',
    );
    await h.kasmina.advance(context(1));
    const illegal = h.telemetry.events(SeedEvent.ILLEGAL_TRANSITION);
    expect(illegal).toHaveLength(1);
    expect(illegal[0]?.attributes).toMatchObject({ from: 'SEED_STAGE_TRAINING', to: 'SEED_STAGE_FOSSILIZED' });
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
    expect(h.kasmina.stats()).toMatchObject({ illegalTransitions: 1, commandsApplied: 1 });
  });

  it('refuses a command for an unknown seed with KASMINA_SEED_NOT_FOUND', async () => {
    const { h, context } = await setup(cleanups);
    const error = await rejectionOf(h.kasmina.apply(h.sign(seedCommand(OperatorAction.CULL, 'ghost')), context(0)));
    expect(isEsperError(error, ErrorCode.KASMINA_SEED_NOT_FOUND)).toBe(true);
    await h.kasmina.advance(context(1));
    expect(h.telemetry.events(SeedEvent.SEED_OPERATION_IGNORED)[0]?.attributes['reason']).toBe('unknown seed');
  });

  it('pauses a seed (identity at its site, timers frozen) and resumes it', async () => {
    const { h, host, context } = await setup(cleanups);
    await h.kasmina.apply(h.sign(germinateCommand('s1')), context(0));
    await h.kasmina.apply(h.sign(seedCommand(OperatorAction.PAUSE, 's1')), context(0));
    const hook = host.hooks.get('hidden1');
    expect(hook?.trainableVariables()).toEqual([]);
    await advanceTo(h.kasmina, context, 1, 40);
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
    await h.kasmina.apply(h.sign(seedCommand(OperatorAction.RESUME, 's1')), context(40));
    expect((hook?.trainableVariables().length ?? 0) > 0).toBe(true);
    await advanceTo(h.kasmina, context, 41, 61);
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_BLENDING);
    expect(h.telemetry.events(SeedEvent.SEED_PAUSED)).toHaveLength(1);
    expect(h.telemetry.events(SeedEvent.SEED_RESUMED)).toHaveLength(1);
  });

  it('opens the kernel-fetch breaker on a CIRCUIT_BREAKER command (germinations then fail G1), closes it again, and pauses every seed on an EMERGENCY', async () => {
    const { h, context } = await setup(cleanups);
    const breaker = (desiredState: CircuitBreakerState, id: string): AdaptationCommand =>
      create(AdaptationCommandSchema, {
        version: 1,
        commandId: id,
        commandType: CommandType.COMMAND_CIRCUIT_BREAKER,
        trainingRunId: RUN,
        payload: { case: 'circuitBreaker', value: { desiredState, rationale: 'test' } },
      });
    await h.kasmina.apply(h.sign(breaker(CircuitBreakerState.CIRCUIT_STATE_OPEN, 'open-1')), context(0));
    await h.kasmina.apply(h.sign(germinateCommand('s1', 'hidden1')), context(0));
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_EMBARGOED);
    expect(h.kasmina.seedReports()[0]?.fateReason).toBe('SEED_GATE_G1_GRADIENT_HEALTH: kernel not attached');
    await h.kasmina.apply(h.sign(breaker(CircuitBreakerState.CIRCUIT_STATE_CLOSED, 'close-1')), context(0));
    await h.kasmina.apply(h.sign(germinateCommand('s2', 'hidden2')), context(0));
    expect(h.kasmina.stageOf('s2')).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
    const emergency = create(AdaptationCommandSchema, {
      version: 1,
      commandId: 'emergency-1',
      commandType: CommandType.COMMAND_EMERGENCY,
      trainingRunId: RUN,
      payload: { case: 'emergency', value: { level: EmergencyLevel.CONSERVATIVE, reason: 'test' } },
    });
    await h.kasmina.apply(h.sign(emergency), context(0));
    expect(h.kasmina.exportSeedStates().find((s) => s.seedId === 's2')?.metrics?.alpha).toBe(0);
    await h.kasmina.advance(context(1));
    // Seed packets precede the global one: the seed's `denied`, then both `forced`.
    expect(h.telemetry.events(SeedEvent.BREAKER_EVENT).map((e) => e.attributes['action'])).toEqual(['denied', 'forced', 'forced']);
    expect(h.telemetry.events(SeedEvent.EMERGENCY_CLEANUP)[0]?.attributes['seeds_paused']).toBe('1');
  });
});

describe('Kasmina commands it does not own', () => {
  it('refuses OPTIMIZER, ROLLBACK and STRUCTURAL_PRUNING with COMMAND_NOT_APPLIED (Tolaria owns the first two), creating nothing', async () => {
    const { h, context } = await setup(cleanups);
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
      const error = await rejectionOf(h.kasmina.apply(h.sign(command), context(0)));
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
