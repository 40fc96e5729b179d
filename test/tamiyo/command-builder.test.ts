import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { durationMs, timestampMs } from '@bufbuild/protobuf/wkt';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  DependencyGuard,
  DependencyGuardEvent,
  DependencyViolationError,
  ErrorCode,
  FakeClock,
  isEsperError,
  MemoryTelemetrySink,
  readDecisionMetadata,
  validateCommandDependencies,
  type CoverageSummaryInput,
} from '../../src/core/index.js';
import {
  AdaptationCommandSchema,
  BlendMode,
  BlendModeSource,
  BlueprintDescriptorSchema,
  BlueprintTier,
  CircuitBreakerState,
  CommandType,
  MessagePriority,
  RiskReason,
  SeedOperation,
  SystemStatePacketSchema,
  type AdaptationCommand,
} from '../../src/leyline/index.js';
import { CommandVerifier, HmacSigner, KeyRing, NonceLedger, RejectionReason } from '../../src/security/index.js';
import { BREAKER_RATIONALE, CommandBuilder, COMMAND_VERSION } from '../../src/tamiyo/command-builder.js';
import { DecisionKind, toId, type ProposedDecision } from '../../src/tamiyo/decision.js';
import { PolicyAction } from '../../src/tamiyo/gnn-config.js';
import type { PolicyProposal } from '../../src/tamiyo/policy.js';
import { RiskEngine, type RiskVerdict } from '../../src/tamiyo/risk-engine.js';
import { errorOf as thrown } from './fixtures/errors.js';

const RUN = 'run-42';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function harness() {
  const clock = new FakeClock({ monotonicMs: 1_000 });
  const ring = new KeyRing([{ keyId: 'tamiyo-k1', secret: Buffer.from('tamiyo-command-builder-secret-0123', 'utf8') }]);
  const signer = new HmacSigner(ring, { clock });
  const sink = new MemoryTelemetrySink();
  const guard = new DependencyGuard({ subsystem: 'tamiyo', sink, clock, trainingRunId: RUN });
  const builder = new CommandBuilder({ trainingRunId: RUN, signer, guard, clock });
  // The receiving side (Kasmina) verifies with its own ledger and sink.
  const verifierSink = new MemoryTelemetrySink();
  const verifier = new CommandVerifier({ signer, ledger: new NonceLedger({ clock }), sink: verifierSink, source: 'kasmina', clock });
  return { clock, signer, sink, guard, builder, verifier, verifierSink };
}

function proposal(decision: ProposedDecision, fields: Partial<PolicyProposal> = {}): PolicyProposal {
  return { decision, policyVersion: 'gnn-v3', actionId: actionOf(decision.kind), ...fields };
}

function actionOf(kind: DecisionKind): number {
  const ids: Record<DecisionKind, number> = {
    wait: PolicyAction.WAIT,
    germinate: PolicyAction.GERMINATE,
    cull: PolicyAction.CULL,
    optimizer: PolicyAction.OPTIMIZER,
    pause: PolicyAction.PAUSE,
    breaker_open: PolicyAction.BREAKER_OPEN,
    breaker_close: PolicyAction.BREAKER_CLOSE,
  };
  return ids[kind];
}

/** The verdict of a risk engine that let the proposal stand (or shaped it into `decision`). */
function verdict(p: PolicyProposal, fields: Partial<RiskVerdict> = {}): RiskVerdict {
  return {
    proposal: p.decision,
    decision: p.decision,
    reason: RiskReason.UNSPECIFIED,
    conservativeMode: false,
    breakerConfidence: 1,
    events: [],
    metrics: [],
    ...fields,
  };
}

const GERMINATE: ProposedDecision = {
  kind: DecisionKind.GERMINATE,
  seedId: toId('s2#1', 'seed'),
  siteId: toId('s2', 'site'),
  blueprintId: toId('BP005', 'blueprint'),
  policyRiskScore: 0.25,
};

function built(command: AdaptationCommand | undefined): AdaptationCommand {
  if (command === undefined) throw new Error('expected a command');
  return command;
}

describe('CommandBuilder', () => {
  it('builds nothing for a wait', () => {
    const { builder, sink, signer } = harness();
    const sign = vi.spyOn(signer, 'sign');
    const p = proposal({ kind: DecisionKind.WAIT });
    expect(builder.build(p, verdict(p))).toBeUndefined();
    expect(sign).not.toHaveBeenCalled();
    expect(sink.packets).toHaveLength(0);
  });

  it('builds a signed GERMINATE with every field from the proposal, verdict and coverage', () => {
    const { builder, verifier, clock } = harness();
    const p = proposal(GERMINATE, {
      valueEstimate: 0.75,
      riskIndex: 2,
      blendingIndex: 1,
      blendMode: BlendMode.RESIDUAL,
      blendLogits: [0.1, 1.5, -0.5, 0.25],
      schedule: { start: 0.25, end: 0.75 },
      seedScore: 0.5,
      blueprintScore: 0.875,
    });
    const coverage: CoverageSummaryInput = {
      average: 0.75,
      groups: [
        { name: 'node.seed', value: 0.5 },
        { name: 'global', value: 1 },
      ],
    };
    const command = built(builder.build(p, verdict(p, { breakerConfidence: 0.5 }), coverage));

    expect(command.version).toBe(COMMAND_VERSION);
    expect(command.commandId).toMatch(UUID);
    expect(command.commandType).toBe(CommandType.COMMAND_SEED);
    expect(command.targetSeedId).toBe('s2#1');
    expect(command.trainingRunId).toBe(RUN);
    expect(command.issuedBy).toBe('tamiyo');
    expect(command.issuedAt && timestampMs(command.issuedAt)).toBe(clock.wallMs());
    expect(command.payload.case).toBe('seedOperation');
    const op = command.payload.case === 'seedOperation' ? command.payload.value : undefined;
    expect(op).toMatchObject({
      operation: SeedOperation.SEED_OP_GERMINATE,
      blueprintId: 'BP005',
      siteId: 's2',
      blendMode: BlendMode.RESIDUAL,
    });
    expect(op?.blendAlpha).toBeUndefined();

    const metadata = readDecisionMetadata(command);
    expect(metadata.policy).toMatchObject({
      actionId: PolicyAction.GERMINATE,
      valueEstimate: 0.75,
      riskScore: 0.25,
      policyVersion: 'gnn-v3',
      paramDelta: 0,
      riskIndex: 2,
      blendingIndex: 1,
    });
    expect(metadata.risk).toMatchObject({ reason: RiskReason.UNSPECIFIED, conservativeMode: false, breakerConfidence: 0.5 });
    expect(metadata.blend).toMatchObject({
      mode: BlendMode.RESIDUAL,
      modeSource: BlendModeSource.POLICY,
      alpha: 1,
      scheduleStart: 0.25,
      scheduleEnd: 0.75,
      policyLogits: [Math.fround(0.1), 1.5, -0.5, 0.25],
      logitsAvailable: true,
      alphaVec: [],
    });
    expect(metadata.coverage?.average).toBe(0.75);
    expect(metadata.coverage?.groups.map((g) => [g.name, g.value])).toEqual([
      ['global', 1],
      ['node.seed', 0.5],
    ]);
    expect(metadata.selection).toMatchObject({ seedId: 's2#1', blueprintId: 'BP005', seedScore: 0.5, blueprintScore: 0.875 });

    const security = command.security;
    expect(security?.nonce).toBe(command.commandId);
    expect(security?.keyId).toBe('tamiyo-k1');
    expect(security?.signature).toHaveLength(32);
    expect(security?.issuedAt && timestampMs(security.issuedAt)).toBe(clock.wallMs());
    expect(security?.freshnessWindow && durationMs(security.freshnessWindow)).toBe(60_000);
    expect(verifier.verify(command).ok).toBe(true);
  });

  it('leaves blend_mode and the blend config out when the proposal names no mode', () => {
    const { builder } = harness();
    const p = proposal(GERMINATE);
    const command = built(builder.build(p, verdict(p)));
    const op = command.payload.case === 'seedOperation' ? command.payload.value : undefined;
    expect(op?.blendMode).toBeUndefined();
    expect(command.metadata?.blend).toBeUndefined();
    expect(command.metadata?.coverage).toBeUndefined();
  });

  it('fills the confidence gate defaults for a CONFIDENCE blend and refuses one without logits', () => {
    const { builder, signer } = harness();
    const p = proposal(GERMINATE, { blendMode: BlendMode.CONFIDENCE, blendLogits: [2, 0.5] });
    const blend = readDecisionMetadata(built(builder.build(p, verdict(p)))).blend;
    expect(blend).toMatchObject({
      mode: BlendMode.CONFIDENCE,
      gateK: 1,
      gateTau: 1,
      alphaLo: 0,
      alphaHi: 1,
      confidenceLogitsRequired: true,
      policyLogits: [2, 0.5],
    });

    const sign = vi.spyOn(signer, 'sign');
    const bare = proposal(GERMINATE, { blendMode: BlendMode.CONFIDENCE });
    const error = thrown(() => builder.build(bare, verdict(bare)));
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect(sign).not.toHaveBeenCalled();
  });

  it('carries the per-channel alpha of a CHANNEL blend', () => {
    const { builder } = harness();
    const p = proposal(GERMINATE, { blendMode: BlendMode.CHANNEL, alphaVec: [0.25, 1] });
    const blend = readDecisionMetadata(built(builder.build(p, verdict(p)))).blend;
    expect(blend).toMatchObject({ mode: BlendMode.CHANNEL, alphaVec: [0.25, 1] });
  });

  it('builds a CULL by seed id', () => {
    const { builder, verifier } = harness();
    const p = proposal({
      kind: DecisionKind.CULL,
      seedId: toId('s2#1', 'seed'),
      siteId: toId('s2', 'site'),
      blueprintId: toId('BP005', 'bp'),
    });
    const command = built(builder.build(p, verdict(p)));
    expect(command.commandType).toBe(CommandType.COMMAND_SEED);
    expect(command.targetSeedId).toBe('s2#1');
    expect(command.payload).toMatchObject({
      case: 'seedOperation',
      value: { operation: SeedOperation.SEED_OP_CULL, blueprintId: '', siteId: '' },
    });
    expect(command.metadata?.blend).toBeUndefined();
    expect(command.metadata?.selection).toMatchObject({ seedId: 's2#1', blueprintId: 'BP005' });
    expect(verifier.verify(command).ok).toBe(true);
  });

  it('builds a PAUSE, with the target seed only when given', () => {
    const { builder, verifier } = harness();
    const withSeed = proposal({ kind: DecisionKind.PAUSE, seedId: toId('s0#4', 'seed') });
    const seeded = built(builder.build(withSeed, verdict(withSeed)));
    expect(seeded.commandType).toBe(CommandType.COMMAND_PAUSE);
    expect(seeded.targetSeedId).toBe('s0#4');
    expect(seeded.payload.case).toBeUndefined();

    const plain = proposal({ kind: DecisionKind.PAUSE });
    const global = built(builder.build(plain, verdict(plain)));
    expect(global.targetSeedId).toBe('');
    expect(global.metadata?.selection).toBeUndefined();
    expect(verifier.verify(seeded).ok).toBe(true);
    expect(verifier.verify(global).ok).toBe(true);
  });

  it('builds an OPTIMIZER command with the proposed learning rate and keeps the delta in the metadata', () => {
    const { builder, verifier } = harness();
    const p = proposal({ kind: DecisionKind.OPTIMIZER, paramDelta: -0.5 }, { learningRate: 0.005 });
    const command = built(builder.build(p, verdict(p)));
    expect(command.commandType).toBe(CommandType.COMMAND_OPTIMIZER);
    expect(command.payload).toMatchObject({ case: 'optimizerAdjustment', value: { learningRate: 0.005 } });
    expect(command.metadata?.policy).toMatchObject({ actionId: PolicyAction.OPTIMIZER, paramDelta: -0.5 });
    expect(verifier.verify(command).ok).toBe(true);

    // An adjustment that sets nothing is never built (Tolaria would refuse it as a whole).
    for (const bad of [
      proposal({ kind: DecisionKind.OPTIMIZER, paramDelta: 0.25 }),
      proposal({ kind: DecisionKind.OPTIMIZER }, { learningRate: Number.NaN }),
    ]) {
      expect(
        isEsperError(
          thrown(() => builder.build(bad, verdict(bad))),
          ErrorCode.INVALID_ARGUMENT,
        ),
      ).toBe(true);
    }
  });

  it('builds CIRCUIT_BREAKER commands for breaker_open and breaker_close', () => {
    const { builder, verifier } = harness();
    for (const [kind, state] of [
      [DecisionKind.BREAKER_OPEN, CircuitBreakerState.CIRCUIT_STATE_OPEN],
      [DecisionKind.BREAKER_CLOSE, CircuitBreakerState.CIRCUIT_STATE_CLOSED],
    ] as const) {
      const p = proposal({ kind });
      const command = built(builder.build(p, verdict(p)));
      expect(command.commandType).toBe(CommandType.COMMAND_CIRCUIT_BREAKER);
      expect(command.payload).toMatchObject({ case: 'circuitBreaker', value: { desiredState: state, rationale: BREAKER_RATIONALE } });
      expect(command.metadata?.policy?.actionId).toBe(actionOf(kind));
      expect(verifier.verify(command).ok).toBe(true);
    }
  });

  it('carries out the verdict, not the proposal: a risk-engine pause keeps the selection and reason but no blend', () => {
    const { builder, clock } = harness();
    const engine = new RiskEngine({ clock });
    const risky = { ...GERMINATE, policyRiskScore: 0.99 };
    const p = proposal(risky, { blendMode: BlendMode.CONVEX });
    const v = engine.evaluate(p.decision, {
      packet: create(SystemStatePacketSchema, { trainingRunId: RUN }),
      timedOut: false,
      isolationViolations: 0,
      blueprint: {
        descriptor: create(BlueprintDescriptorSchema, { blueprintId: 'BP005', tier: BlueprintTier.SAFE, risk: 0.1 }),
        quarantined: false,
        risk: 0.1,
      },
    });
    expect(v.decision.kind).toBe(DecisionKind.PAUSE);
    const command = built(builder.build(p, v));
    expect(command.commandType).toBe(CommandType.COMMAND_PAUSE);
    expect(command.targetSeedId).toBe('');
    const metadata = readDecisionMetadata(command);
    expect(metadata.risk).toMatchObject({ reason: RiskReason.POLICY_RISK_CRITICAL, conservativeMode: true });
    expect(metadata.policy?.riskScore).toBeCloseTo(0.99, 6);
    expect(metadata.selection?.seedId).toBe('s2#1');
    expect(metadata.blend).toBeUndefined();
  });

  it('returns nothing when the risk engine holds a germinate back to a wait', () => {
    const { builder } = harness();
    const p = proposal(GERMINATE);
    expect(builder.build(p, verdict(p, { decision: { kind: DecisionKind.WAIT }, reason: RiskReason.LOSS_WARNING }))).toBeUndefined();
  });

  it('property: every command it builds passes the dependency checks Kasmina applies, and verifies', () => {
    const { builder, verifier, sink } = harness();
    const checker = new DependencyGuard({ subsystem: 'kasmina', sink, trainingRunId: RUN });
    const id = fc.stringMatching(/^[A-Za-z0-9#._-]{1,12}$/).map((v) => toId(v, 'id'));
    const unit = fc.double({ min: 0, max: 1, noNaN: true });
    const base = { policyRiskScore: fc.option(unit, { nil: undefined }) };
    const decisionArb: fc.Arbitrary<ProposedDecision> = fc.oneof(
      fc.record(
        { kind: fc.constant(DecisionKind.GERMINATE), seedId: id, siteId: id, blueprintId: id, ...base },
        { requiredKeys: ['kind', 'seedId', 'siteId', 'blueprintId'] },
      ),
      fc.record(
        { kind: fc.constant(DecisionKind.CULL), seedId: id, siteId: id, blueprintId: id, ...base },
        { requiredKeys: ['kind', 'seedId'] },
      ),
      fc.record({ kind: fc.constant(DecisionKind.PAUSE), seedId: id, ...base }, { requiredKeys: ['kind'] }),
      fc.record(
        { kind: fc.constant(DecisionKind.OPTIMIZER), paramDelta: fc.double({ min: -1, max: 1, noNaN: true }), ...base },
        { requiredKeys: ['kind'] },
      ),
      fc.record(
        { kind: fc.constantFrom(DecisionKind.BREAKER_OPEN, DecisionKind.BREAKER_CLOSE, DecisionKind.WAIT), ...base },
        { requiredKeys: ['kind'] },
      ),
    );
    const shaping = fc.constantFrom('stands', 'held', 'paused');
    const extras = fc.record(
      {
        blendMode: fc.constantFrom(BlendMode.CONVEX, BlendMode.RESIDUAL),
        blendLogits: fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { maxLength: 4 }),
        schedule: fc.tuple(unit, unit).map(([a, b]) => ({ start: Math.min(a, b), end: Math.max(a, b) })),
        seedScore: unit,
        blueprintScore: unit,
        learningRate: fc.double({ min: 1e-6, max: 1, noNaN: true }),
      },
      { requiredKeys: ['learningRate'] },
    );
    fc.assert(
      fc.property(decisionArb, shaping, extras, (decision, shape, fields) => {
        const p = proposal(decision, fields);
        const decided: ProposedDecision =
          shape === 'stands' ? decision : shape === 'held' ? { kind: DecisionKind.WAIT } : { kind: DecisionKind.PAUSE };
        const command = builder.build(p, verdict(p, { decision: decided }));
        if (decided.kind === DecisionKind.WAIT) {
          expect(command).toBeUndefined();
          return;
        }
        const c = built(command);
        expect(() => validateCommandDependencies(checker, c)).not.toThrow();
        expect(verifier.verify(c).ok).toBe(true);
      }),
      { numRuns: 300 },
    );
    expect(sink.events(DependencyGuardEvent.VIOLATION)).toEqual([]);
  });

  it('refuses a blank training run id at construction with a dependency violation', () => {
    const { signer, sink, guard } = harness();
    const error = thrown(() => new CommandBuilder({ trainingRunId: ' ', signer, guard }));
    expect(error).toBeInstanceOf(DependencyViolationError);
    expect((error as DependencyViolationError).dependencyType).toBe('training_run_id');
    expect(sink.events(DependencyGuardEvent.VIOLATION)).toHaveLength(1);
  });

  it('refuses a verdict about another proposal', () => {
    const { builder } = harness();
    const p = proposal(GERMINATE);
    const other = proposal({ ...GERMINATE, seedId: toId('s1#9', 'seed') });
    const error = thrown(() => builder.build(p, verdict(other)));
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
  });

  it('gives every command a fresh UUID, so a verifier accepts each once and rejects a replay', () => {
    const { builder, verifier } = harness();
    const p = proposal(GERMINATE);
    const a = built(builder.build(p, verdict(p)));
    const b = built(builder.build(p, verdict(p)));
    expect(a.commandId).not.toBe(b.commandId);
    expect(verifier.verify(a).ok).toBe(true);
    expect(verifier.verify(b).ok).toBe(true);
    const replay = verifier.verify(a);
    expect(replay.ok === false && replay.reason).toBe(RejectionReason.NONCE_REPLAYED);
  });

  it('produces a signature that breaks when a signed field changes', () => {
    const { builder, verifier, verifierSink } = harness();
    const p = proposal(GERMINATE);
    const command = built(builder.build(p, verdict(p)));
    const tampered = fromBinary(AdaptationCommandSchema, toBinary(AdaptationCommandSchema, command));
    tampered.targetSeedId = 's0#1';
    const result = verifier.verify(tampered);
    expect(result.ok === false && result.reason).toBe(RejectionReason.INVALID_SIGNATURE);
    expect(verifierSink.packets[0]?.priority).toBe(MessagePriority.CRITICAL);
  });

  it('round-trips its decision metadata through the wire encoding and readDecisionMetadata', () => {
    const { builder, verifier } = harness();
    const p = proposal(GERMINATE, {
      valueEstimate: -1.3,
      blendMode: BlendMode.CONFIDENCE,
      blendLogits: [0.3, -0.7, 1.1],
      schedule: { start: 0.1, end: 0.9 },
      seedScore: 0.33,
    });
    const command = built(builder.build(p, verdict(p, { reason: RiskReason.LOSS_WARNING, breakerConfidence: 0.3 }), { average: 0.4 }));
    const decoded = fromBinary(AdaptationCommandSchema, toBinary(AdaptationCommandSchema, command));
    expect(readDecisionMetadata(decoded)).toEqual(readDecisionMetadata(command));
    expect(verifier.verifyEncoded(toBinary(AdaptationCommandSchema, command)).ok).toBe(true);
  });
});
