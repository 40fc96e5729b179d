/**
 * Cross-language Leyline test vectors, TypeScript side (spec 01 "Canonical bytes and
 * signing").
 *
 * Builds the same messages as `scripts/leyline_vectors.py` (same names, same content)
 * with `create(Schema, …)`, signs the signed ones with {@link HmacSigner} on a
 * {@link FakeClock}, and writes one JSON file per vector to `test/vectors/typescript/`.
 * `/usr/bin/python3 scripts/leyline_vectors.py --check` then proves Python re-encodes
 * every one byte for byte and verifies every signature; `test/leyline/vectors.test.ts`
 * does the reverse and checks these files never drift from {@link buildTypeScriptVectors}.
 *
 * Run: `npx tsx scripts/make-ts-vectors.ts`
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { create, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { DurationSchema, timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  AdaptationCommandSchema,
  BlendMode,
  BlendModeSource,
  BSDSSchema,
  BusEnvelopeSchema,
  BusMessageType,
  CircuitBreakerState,
  CommandType,
  EmergencyLevel,
  EmergencySignalSchema,
  FieldReportOutcome,
  FieldReportSchema,
  HandlingClass,
  HazardBand,
  HealthStatus,
  MessagePriority,
  OptimizerFamily,
  PolicyUpdateSchema,
  Provenance,
  ResourceProfile,
  RiskReason,
  RollbackTier,
  SeedLifecycleStage,
  SeedOperation,
  SystemStatePacketSchema,
  TelemetryLevel,
  TelemetryPacketSchema,
  type AdaptationCommand,
  type SignedMessageSchema,
  type TelemetryPacket,
} from '../src/leyline/index.js';
import { FakeClock, toAttributeMap } from '../src/core/index.js';
import { KeyRing } from '../src/security/key-ring.js';
import { HmacSigner } from '../src/security/signer.js';

/** One test vector as stored in `test/vectors/{python,typescript}/<name>.json`. */
export interface LeylineVector {
  /** Vector name, also the file stem. */
  readonly name: string;
  /** Fully qualified message type, e.g. `esper.leyline.v1.AdaptationCommand`. */
  readonly type: string;
  /** Hex of the full binary encoding, signature included. */
  readonly hex: string;
  /** Whether the message carries a `security` block. */
  readonly signed: boolean;
  /** Hex of `security.signature` (signed vectors only). */
  readonly signature_hex?: string;
  /** `security.key_id` (signed vectors only). */
  readonly key_id?: string;
  readonly description: string;
  /**
   * Python-made vectors only: why TypeScript cannot re-encode these bytes identically
   * (decoded messages are still equal).
   */
  readonly known_divergence?: string;
}

/** Key id of the fixed vector key. Never use these keys outside test vectors. */
export const VECTOR_KEY_ID = 'vector-test';

/** Key id of the second (rotated-in) vector key. */
export const VECTOR_NEXT_KEY_ID = 'vector-test-next';

/** The test secrets, shared verbatim with `scripts/leyline_vectors.py`. */
const VECTOR_SECRETS: Readonly<Record<string, string>> = {
  [VECTOR_KEY_ID]: 'esper-vector-test-secret-0001',
  [VECTOR_NEXT_KEY_ID]: 'esper-vector-test-secret-0002',
};

/** Signer clock reading: 2026-01-02T03:04:05.678Z, in Unix ms. */
export const VECTOR_SIGNED_AT_MS = 1_767_323_045_678;

const ISSUED_AT_MS = 1_767_323_045_000;
const RUN_ID = 'run-2026-01-02-vectors';
const UINT32_MAX = 4_294_967_295;
const UINT64_MAX = 2n ** 64n - 1n;

/** Directory of the committed TypeScript-made vectors. */
export const TYPESCRIPT_VECTORS_DIR = fileURLToPath(new URL('../test/vectors/typescript/', import.meta.url));

/** Directory of the committed Python-made vectors. */
export const PYTHON_VECTORS_DIR = fileURLToPath(new URL('../test/vectors/python/', import.meta.url));

/** The key ring holding both vector keys, `vector-test` active. */
export function vectorKeyRing(): KeyRing {
  return new KeyRing(
    Object.entries(VECTOR_SECRETS).map(([keyId, secret]) => ({
      keyId,
      secret: Buffer.from(secret, 'utf8'),
    })),
  );
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

function vector<Desc extends DescMessage>(name: string, schema: Desc, message: MessageShape<Desc>, description: string): LeylineVector {
  const security = (message as { security?: { signature: Uint8Array; keyId: string } }).security;
  const base = { name, type: schema.typeName, hex: hex(toBinary(schema, message)) };
  if (security === undefined) return { ...base, signed: false, description };
  return {
    ...base,
    signed: true,
    signature_hex: hex(security.signature),
    key_id: security.keyId,
    description,
  };
}

/**
 * Builds the TypeScript vector set. Deterministic: fixed clock, keys and nonces.
 * Keep in step with `build_vectors` in `scripts/leyline_vectors.py`.
 */
export function buildTypeScriptVectors(): LeylineVector[] {
  const ring = vectorKeyRing();
  const clock = new FakeClock({ wallMs: VECTOR_SIGNED_AT_MS });
  const signer = new HmacSigner(ring, { clock });
  const shortWindowSigner = new HmacSigner(ring, { clock, freshnessWindowMs: 1_500 });
  const signCommand = (
    init: Parameters<typeof create<typeof AdaptationCommandSchema>>[1],
    options?: { nonce: string; keyId: string },
  ): AdaptationCommand => signer.sign(AdaptationCommandSchema, create(AdaptationCommandSchema, init), options);
  const sign = <Desc extends SignedMessageSchema>(
    schema: Desc,
    message: MessageShape<Desc>,
    nonce: string,
    withSigner: HmacSigner = signer,
  ): MessageShape<Desc> => withSigner.sign(schema, message, { nonce });

  const vectors: LeylineVector[] = [];

  // --- Signed: AdaptationCommand, one vector per payload case ---------------------------
  const seedDefaults = signCommand({
    version: 1,
    commandId: 'cmd-0001-seed-germinate',
    commandType: CommandType.COMMAND_SEED,
    targetSeedId: 'seed-r0c1',
    executionDeadlineMs: 250,
    issuedAt: timestampFromMs(ISSUED_AT_MS),
    issuedBy: 'tamiyo',
    trainingRunId: RUN_ID,
    payload: {
      case: 'seedOperation',
      value: {
        operation: SeedOperation.SEED_OP_GERMINATE,
        blueprintId: 'bp-residual-mlp',
        blendAlpha: 0,
        blendMode: BlendMode.UNSPECIFIED,
        scheduleStart: 0,
        scheduleEnd: -0,
        resumeFlag: false,
        includeTeacher: false,
      },
    },
    metadata: {
      policy: {
        actionId: 7,
        valueEstimate: -1.25,
        riskScore: 0.375,
        policyVersion: 'policy-v3.1',
        paramDelta: -0,
        riskIndex: 2,
        blendingIndex: 0,
      },
      risk: { reason: RiskReason.POLICY_RISK_ELEVATED, conservativeMode: true, breakerConfidence: 0.9 },
      blend: {
        mode: BlendMode.CHANNEL,
        alpha: 0.5,
        scheduleStart: 0,
        scheduleEnd: 1,
        alphaVec: [0, 0.125, 0.25, -0, 1, 0.1, 1e-45, 3.4028234663852886e38],
        logitsAvailable: false,
        gateK: 4,
        gateTau: 0.2,
        alphaLo: 0.05,
        alphaHi: 0.95,
        modeSource: BlendModeSource.POLICY,
        confidenceLogitsRequired: false,
      },
      coverage: {
        average: 0.875,
        groups: [
          { name: 'blueprint', value: 1 },
          { name: 'seed', value: 0.75 },
          { name: 'telemetry', value: 0 },
        ],
      },
      selection: {
        seedId: 'seed-r0c1',
        blueprintId: 'bp-residual-mlp',
        seedScore: 0.6,
        blueprintScore: -0.3,
      },
    },
  });
  vectors.push(
    vector(
      'command-seed-optional-defaults',
      AdaptationCommandSchema,
      seedDefaults,
      'COMMAND_SEED whose proto3 optional fields are all explicitly set to their default values ' +
        '(0, UNSPECIFIED, false; scheduleEnd -0), so each is present on the wire; full ' +
        'DecisionMetadata with a packed alphaVec (incl. -0, a subnormal and FLT_MAX) and ' +
        'ordered coverage groups; implicit float paramDelta = -0 is written.',
    ),
  );

  vectors.push(
    vector(
      'command-seed-optional-unset',
      AdaptationCommandSchema,
      signCommand({
        version: 1,
        commandId: 'cmd-0002-seed-cull',
        commandType: CommandType.COMMAND_SEED,
        targetSeedId: 'seed-r1c0',
        issuedAt: timestampFromMs(ISSUED_AT_MS),
        issuedBy: 'tamiyo',
        trainingRunId: RUN_ID,
        payload: { case: 'seedOperation', value: { operation: SeedOperation.SEED_OP_CULL } },
      }),
      'COMMAND_SEED with every proto3 optional field unset (absent on the wire), no metadata, ' + 'executionDeadlineMs 0 (omitted).',
    ),
  );

  vectors.push(
    vector(
      'command-seed-empty-payload',
      AdaptationCommandSchema,
      signCommand({
        version: 1,
        commandId: 'cmd-0003-seed-empty',
        commandType: CommandType.COMMAND_SEED,
        issuedAt: timestampFromMs(ISSUED_AT_MS),
        trainingRunId: RUN_ID,
        payload: { case: 'seedOperation', value: {} },
      }),
      'Oneof case seedOperation set to an all-default message: encoded as a zero-length field ' + '10, distinct from an unset oneof.',
    ),
  );

  vectors.push(
    vector(
      'command-optimizer-adjustment',
      AdaptationCommandSchema,
      signCommand({
        version: 1,
        commandId: 'cmd-0004-optimizer',
        commandType: CommandType.COMMAND_OPTIMIZER,
        executionDeadlineMs: UINT32_MAX,
        issuedAt: timestampFromMs(ISSUED_AT_MS),
        issuedBy: 'tamiyo',
        trainingRunId: RUN_ID,
        payload: {
          case: 'optimizerAdjustment',
          value: {
            optimizerId: 'opt-main',
            learningRate: 3e-4,
            weightDecay: 0,
            optimizerFamily: OptimizerFamily.ADAMW,
          },
        },
        metadata: { risk: { reason: RiskReason.OPTIMIZER_HINT } },
      }),
      'COMMAND_OPTIMIZER: learningRate set, momentum unset, weightDecay explicitly 0, enum ' +
        'optional set; executionDeadlineMs = uint32 max; partial DecisionMetadata.',
    ),
  );

  vectors.push(
    vector(
      'command-circuit-breaker',
      AdaptationCommandSchema,
      signCommand({
        version: 1,
        commandId: 'cmd-0005-breaker',
        commandType: CommandType.COMMAND_CIRCUIT_BREAKER,
        issuedAt: timestampFromMs(ISSUED_AT_MS),
        issuedBy: 'operator:ßørén',
        trainingRunId: RUN_ID,
        payload: {
          case: 'circuitBreaker',
          value: {
            desiredState: CircuitBreakerState.CIRCUIT_STATE_OPEN,
            rationale: 'Überlast — ρ>0.9 ⚠️ 断路器 🔌',
          },
        },
      }),
      'COMMAND_CIRCUIT_BREAKER with non-ASCII strings (Latin-1, Greek, CJK, emoji with a ' + 'variation selector, astral plane).',
    ),
  );

  vectors.push(
    vector(
      'command-rollback',
      AdaptationCommandSchema,
      signCommand({
        version: 1,
        commandId: 'cmd-0006-rollback',
        commandType: CommandType.COMMAND_ROLLBACK,
        targetSeedId: 'seed-r0c2',
        issuedAt: timestampFromMs(ISSUED_AT_MS),
        issuedBy: 'tolaria',
        trainingRunId: RUN_ID,
        payload: {
          case: 'rollback',
          value: {
            seedId: 'seed-r0c2',
            stage: SeedLifecycleStage.SEED_STAGE_BLENDING,
            reason: 'loss_spike',
            tier: RollbackTier.FULL,
            targetGlobalStep: UINT64_MAX,
          },
        },
      }),
      'COMMAND_ROLLBACK with targetGlobalStep = uint64 max (10-byte varint).',
    ),
  );

  vectors.push(
    vector(
      'command-emergency',
      AdaptationCommandSchema,
      signCommand({
        version: 1,
        commandId: 'cmd-0007-emergency',
        commandType: CommandType.COMMAND_EMERGENCY,
        executionDeadlineMs: 50,
        issuedAt: timestampFromMs(ISSUED_AT_MS),
        issuedBy: 'weatherlight',
        trainingRunId: RUN_ID,
        payload: { case: 'emergency', value: { level: EmergencyLevel.HALT, reason: 'epoch_budget' } },
      }),
      'COMMAND_EMERGENCY at level HALT.',
    ),
  );

  vectors.push(
    vector(
      'command-pause-rotated-key',
      AdaptationCommandSchema,
      signCommand(
        {
          version: 1,
          commandId: 'cmd-0008-pause',
          commandType: CommandType.COMMAND_PAUSE,
          issuedAt: timestampFromMs(ISSUED_AT_MS),
          issuedBy: 'operator',
          trainingRunId: RUN_ID,
        },
        { nonce: 'nonce-pause-0008', keyId: VECTOR_NEXT_KEY_ID },
      ),
      'COMMAND_PAUSE with no payload (oneof unset), an explicit nonce, signed with the second ' +
        "ring key 'vector-test-next' (secret esper-vector-test-secret-0002): the verifier must " +
        'pick the key by security.keyId.',
    ),
  );

  vectors.push(
    vector(
      'command-open-enum-values',
      AdaptationCommandSchema,
      signCommand({
        version: 1,
        commandId: 'cmd-0009-open-enums',
        commandType: CommandType.COMMAND_STRUCTURAL_PRUNING,
        issuedAt: timestampFromMs(ISSUED_AT_MS),
        trainingRunId: RUN_ID,
        // Numbers no enum value of this schema has: proto3 enums are open.
        payload: { case: 'emergency', value: { level: 9 as EmergencyLevel, reason: 'future_level' } },
        metadata: { risk: { reason: 999 as RiskReason } },
      }),
      'Enum numbers unknown to this schema (EmergencyLevel 9, RiskReason 999): proto3 enums are ' +
        'open, both runtimes keep and re-encode the number, the signature holds.',
    ),
  );

  // --- Signed: PolicyUpdate and BSDS ----------------------------------------------------
  const weights = new Uint8Array([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, ...Buffer.from('weights:tamiyo-gnn', 'utf8')]);
  vectors.push(
    vector(
      'policy-update',
      PolicyUpdateSchema,
      sign(
        PolicyUpdateSchema,
        create(PolicyUpdateSchema, {
          version: 1,
          policyId: 'policy-0042',
          trainingRunId: RUN_ID,
          issuedAt: timestampFromMs(ISSUED_AT_MS + 123),
          tamiyoPolicyVersion: 'policy-v3.2',
          payload: weights,
          architecture: { id: 'tamiyo-gnn', version: 3 },
          checksum: sha256(weights),
          validation: {
            passed: true,
            checks: [
              { name: 'mean_reward', passed: true, value: 12.5, threshold: 10 },
              { name: 'loss_regression', passed: false, value: -0, threshold: 1e-300 },
              { name: 'latency_p95_ms', passed: true, value: 4.2, threshold: 5e-324 },
            ],
            episodes: 128,
            meanReward: -3.75,
            validatedAt: timestampFromMs(ISSUED_AT_MS - 60_000),
          },
        }),
        'nonce-policy-0010',
      ),
      'PolicyUpdate with binary payload (0x00, 0xff bytes), SHA-256 checksum, validation checks ' +
        'with doubles -0, 1e-300 and the smallest subnormal.',
    ),
  );

  vectors.push(
    vector(
      'bsds',
      BSDSSchema,
      sign(
        BSDSSchema,
        create(BSDSSchema, {
          version: 1,
          blueprintId: 'bp-conv3x3',
          riskScore: 0.35,
          hazardBand: HazardBand.HIGH,
          handlingClass: HandlingClass.RESTRICTED,
          resourceProfile: ResourceProfile.GPU,
          recommendation: 'Use behind a breaker; ≤ 2 concurrent grafts',
          issuedAt: timestampFromMs(ISSUED_AT_MS + 456),
          provenance: Provenance.URABRASK,
          artifactChecksum: `sha256:${hex(sha256(Buffer.from('bp-conv3x3', 'utf8')))}`,
        }),
        'nonce-bsds-0011',
        shortWindowSigner,
      ),
      'Blueprint safety data sheet; freshness window 1.5 s (Duration with nanos).',
    ),
  );

  // --- Unsigned: SystemStatePacket ------------------------------------------------------
  vectors.push(
    vector(
      'system-state-full',
      SystemStatePacketSchema,
      create(SystemStatePacketSchema, {
        version: 1,
        currentEpoch: 42,
        validationAccuracy: 0.8125,
        validationLoss: Number.POSITIVE_INFINITY,
        timestampNs: 1_767_323_045_678_000_123n,
        hardwareContext: {
          deviceType: 'cpu',
          deviceId: 'cpu:0',
          totalMemoryGb: 31.25,
          availableMemoryGb: 12.5,
          temperatureCelsius: -40,
          utilizationPercent: 87.5,
          computeCapability: 0,
        },
        seedStates: [
          {
            seedId: 'seed-r0c1',
            stage: SeedLifecycleStage.SEED_STAGE_BLENDING,
            gradientNorm: 0.0123,
            learningRate: 1e-3,
            layerDepth: 3,
            ageEpochs: 5,
            riskScore: 0.25,
            metrics: {
              alpha: 0.4,
              alphaSteps: 40,
              alphaTotalSteps: 100,
              alphaTemperature: 1,
              blendAllowed: true,
              riskTolerance: 0.5,
              isolationViolations: 0,
              kernelLatencyMs: 0.75,
              parameterCount: 2n ** 53n + 1n,
            },
            blueprintId: 'bp-residual-mlp',
            siteId: 'r0c1',
          },
          { seedId: 'seed-r1c0', stage: SeedLifecycleStage.SEED_STAGE_DORMANT, siteId: 'r1c0' },
        ],
        packetId: 'ssp-0001',
        globalStep: 2n ** 63n,
        trainingLoss: 0.6931472,
        sourceSubsystem: 'tolaria',
        trainingRunId: RUN_ID,
        experimentName: 'mnist·grow 成長 🌱',
        metrics: {
          optimizerLr: 0.01,
          optimizerMomentum: 0.9,
          lossDelta: -0.015625,
          lossEwma: 0.7,
          lossVolatility: 0.02,
          gradNormEwma: 1.5,
          gradConflictRate: 0,
          tamiyoLatencyMs: 3.5,
          kasminaApplyMs: 1.25,
          kasminaFinalizeMs: 0.5,
          stepLatencyMs: 120,
          cpuUtilPercent: 97.5,
          samplesPerS: 2048,
          hookLatencyMs: 0.125,
          optimizerFamily: OptimizerFamily.SGD,
          inputWaitMs: 8,
          gradVar: 1e-6,
          epochsTotal: 100,
          gradientNorm: Number.NEGATIVE_INFINITY,
          extraMetrics: [
            {
              name: 'tolaria.epoch_ms',
              value: 1234.5,
              unit: 'ms',
              attributes: toAttributeMap({ phase: 'train', device: 'cpu' }),
            },
            { name: 'tolaria.rollback_count', value: 0, unit: 'count' },
          ],
        },
      }),
      'SystemStatePacket with nested seed states and SeedMetrics, TrainingMetrics with ' +
        'extraMetrics (attribute map), uint64 fields above 2^53 (timestampNs, parameterCount = ' +
        '2^53+1, globalStep = 2^63), +inf and -inf floats, unicode.',
    ),
  );

  vectors.push(
    vector(
      'system-state-sparse',
      SystemStatePacketSchema,
      create(SystemStatePacketSchema, {
        version: 1,
        packetId: 'ssp-0002',
        seedStates: [{}],
        metrics: {},
      }),
      'Mostly-default SystemStatePacket: an all-default repeated seed state and an empty ' +
        'TrainingMetrics are each written as zero-length fields; unset ones are absent.',
    ),
  );

  // --- Unsigned: FieldReport ------------------------------------------------------------
  vectors.push(
    vector(
      'field-report',
      FieldReportSchema,
      create(FieldReportSchema, {
        version: 1,
        reportId: 'fr-0001',
        commandId: 'cmd-0001-seed-germinate',
        trainingRunId: RUN_ID,
        seedId: 'seed-r0c1',
        blueprintId: 'bp-residual-mlp',
        outcome: FieldReportOutcome.REGRESSION,
        observationWindowEpochs: 3,
        issuedAt: timestampFromMs(ISSUED_AT_MS + 3_600_000),
        tamiyoPolicyVersion: 'policy-v3.1',
        followUpActions: [{ actionType: 'rollback', rationale: 'loss rose 12 % after blending' }, { actionType: 'reduce_alpha' }],
        notes: 'Regression — see trace 🔎',
        delta: {
          lossDelta: 0.125,
          paramDelta: -0,
          riskIndex: 2,
          riskScore: 0.5,
          tamiyoLatencyMs: 3.25,
          hookLatencyMs: 0,
          kasminaApplyMs: 1.5,
          kasminaFinalizeMs: 0.25,
          valueEstimate: -2.5,
          blendingIndex: 1,
          selectedSeedScore: 0.6,
          scheduleStart: 0,
          scheduleEnd: 1,
          blueprintRisk: 0.35,
        },
        extraMetrics: [
          {
            name: 'simic.reward',
            value: -0.75,
            unit: 'ratio',
            attributes: toAttributeMap({ shaped: 'true', component: 'pbrs' }),
          },
          { name: 'simic.window_steps', value: 300, unit: 'count' },
        ],
      }),
      'FieldReport with a typed delta (incl. -0), two follow-up actions (one with an empty ' +
        'rationale), ordered extraMetrics with an attribute map.',
    ),
  );

  // --- Unsigned: TelemetryPacket --------------------------------------------------------
  const telemetry: TelemetryPacket = create(TelemetryPacketSchema, {
    packetId: 'tp-0001',
    timestamp: timestampFromMs(VECTOR_SIGNED_AT_MS),
    sourceSubsystem: 'kasmina',
    level: TelemetryLevel.WARNING,
    metrics: [
      {
        name: 'kasmina.apply_ms',
        value: 1.25,
        unit: 'ms',
        attributes: toAttributeMap({ stage: 'BLENDING', seed_id: 'seed-r0c1', blueprint: 'bp-residual-mlp' }),
      },
      { name: 'kasmina.isolation_violations', value: 2, unit: 'count' },
    ],
    events: [
      {
        eventId: 'tp-0001:evt-1',
        description: 'isolation_violation',
        level: TelemetryLevel.WARNING,
        attributes: toAttributeMap({
          violations: '2',
          über: 'ja',
          seed_id: 'seed-r0c1',
          größe: '3×3',
          Zone: 'host',
          empty: '',
        }),
      },
      { eventId: 'tp-0001:evt-2', description: 'seed_stage_changed', level: TelemetryLevel.INFO },
    ],
    spans: [
      {
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        spanId: '00f067aa0ba902b7',
        name: 'kasmina.apply',
        startTime: timestampFromMs(VECTOR_SIGNED_AT_MS - 78),
        duration: create(DurationSchema, { seconds: 0n, nanos: 1_250_000 }),
        attributes: toAttributeMap({ seed_id: 'seed-r0c1', '': 'empty key' }),
      },
      {
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        spanId: '00f067aa0ba902b8',
        parentSpanId: '00f067aa0ba902b7',
        name: 'kasmina.graft',
        startTime: timestampFromMs(VECTOR_SIGNED_AT_MS - 77),
        duration: create(DurationSchema, { seconds: 2n, nanos: 5 }),
      },
    ],
    systemHealth: {
      status: HealthStatus.DEGRADED,
      summary: '1 seed isolating',
      indicators: toAttributeMap({ 'seed-r1c0': 'DORMANT', 'seed-r0c1': 'BLENDING' }),
    },
    priority: MessagePriority.HIGH,
    trainingRunId: RUN_ID,
  });
  vectors.push(
    vector(
      'telemetry-packet',
      TelemetryPacketSchema,
      telemetry,
      'TelemetryPacket with metrics, events, spans and health, each with attribute maps whose ' +
        'keys are inserted sorted by toAttributeMap (BMP-only keys, where UTF-16 order equals ' +
        "Python's code point order); includes an empty key and an empty value (map entries " +
        'always carry both key and value).',
    ),
  );

  vectors.push(
    vector(
      'telemetry-special-doubles',
      TelemetryPacketSchema,
      create(TelemetryPacketSchema, {
        packetId: 'tp-0002',
        timestamp: timestampFromMs(0),
        sourceSubsystem: 'tolaria',
        level: TelemetryLevel.INFO,
        metrics: [
          { name: 'neg_zero', value: -0, unit: 'ratio' },
          { name: 'neg_inf', value: Number.NEGATIVE_INFINITY, unit: 'ms' },
          { name: 'pos_inf', value: Number.POSITIVE_INFINITY, unit: 'ms' },
          { name: 'min_subnormal', value: Number.MIN_VALUE, unit: 'ratio' },
          { name: 'max_double', value: Number.MAX_VALUE, unit: 'ratio' },
          { name: 'tiny_negative', value: -2.2250738585072014e-308, unit: 'ratio' },
          { name: 'third', value: 1 / 3, unit: 'ratio' },
          // 2^53 + 1 is not a double; it rounds to 2^53, as Python's float(2**53 + 1) does.
          { name: 'two_pow_53_plus_1', value: 2 ** 53 + 1, unit: 'count' },
        ],
        priority: MessagePriority.LOW,
      }),
      'Special double values: -0 (written for an implicit-presence field by both runtimes), ' +
        '+/-inf, smallest subnormal, DBL_MAX, 1/3, 2^53+1 (rounds to 2^53). Timestamp at the ' +
        'epoch: present but empty. NaN is deliberately absent: ECMAScript leaves the NaN bit ' +
        'pattern written by DataView implementation-defined.',
    ),
  );

  // --- Unsigned: EmergencySignal and BusEnvelope ----------------------------------------
  vectors.push(
    vector(
      'emergency-signal',
      EmergencySignalSchema,
      create(EmergencySignalSchema, {
        version: 1,
        level: EmergencyLevel.CONSERVATIVE,
        reason: 'rollback_deadline',
        origin: 'tolaria',
        triggeredAt: timestampFromMs(-1_500),
        monotonicTimeMs: 123_456_789_012n,
        trainingRunId: RUN_ID,
        payloadChecksum: sha256(Buffer.from('checkpoint-epoch-41', 'utf8')),
        epoch: 41,
        operatorInitiated: true,
      }),
      'EmergencySignal with a pre-epoch timestamp (negative seconds: 10-byte varint, positive ' +
        'nanos), bytes checksum and uint64 monotonic time.',
    ),
  );

  vectors.push(
    vector(
      'bus-envelope-command',
      BusEnvelopeSchema,
      create(BusEnvelopeSchema, {
        messageType: BusMessageType.ADAPTATION_COMMAND,
        payload: toBinary(AdaptationCommandSchema, seedDefaults),
        priority: MessagePriority.CRITICAL,
        correlationId: 'cmd-0001-seed-germinate',
        trainingRunId: RUN_ID,
        publishedAt: timestampFromMs(VECTOR_SIGNED_AT_MS + 22),
        attempt: 1,
        messageId: 'msg-0001',
      }),
      'BusEnvelope whose payload is the encoding of command-seed-optional-defaults (signed ' + 'command carried as opaque bytes).',
    ),
  );

  vectors.push(
    vector(
      'bus-envelope-telemetry',
      BusEnvelopeSchema,
      create(BusEnvelopeSchema, {
        messageType: BusMessageType.TELEMETRY,
        payload: toBinary(TelemetryPacketSchema, telemetry),
        priority: MessagePriority.HIGH,
        trainingRunId: RUN_ID,
        publishedAt: timestampFromMs(VECTOR_SIGNED_AT_MS + 23),
        attempt: 3,
        messageId: 'msg-0002',
      }),
      'BusEnvelope on its third delivery attempt carrying the telemetry-packet encoding; empty ' + 'correlationId omitted.',
    ),
  );

  return vectors;
}

/** The exact text of a vector file: 2-space JSON plus a final newline. */
export function renderVector(vector: LeylineVector): string {
  return `${JSON.stringify(vector, null, 2)}\n`;
}

/** Reads every `*.json` vector in `dir`, sorted by file name. */
export function readVectors(dir: string): LeylineVector[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as LeylineVector);
}

/** Replaces every `*.json` in `dir` with the current vector set; returns how many it wrote. */
export function writeTypeScriptVectors(dir: string = TYPESCRIPT_VECTORS_DIR): number {
  mkdirSync(dir, { recursive: true });
  for (const file of readdirSync(dir)) {
    if (file.endsWith('.json')) unlinkSync(join(dir, file));
  }
  const vectors = buildTypeScriptVectors();
  for (const v of vectors) writeFileSync(join(dir, `${v.name}.json`), renderVector(v), 'utf8');
  return vectors.length;
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  const written = writeTypeScriptVectors();
  console.log(`wrote ${written} vectors to test/vectors/typescript`);
}
