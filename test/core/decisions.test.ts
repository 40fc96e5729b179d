import { create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  attachDecisionMetadata,
  buildDecisionMetadata,
  MAX_ALPHA_VEC_ENTRIES,
  readDecisionMetadata,
  type DecisionMetadataInput,
} from '../../src/core/decisions.js';
import { ErrorCode, isEsperError, type EsperError } from '../../src/core/errors.js';
import {
  AdaptationCommandSchema,
  BlendConfigSchema,
  BlendMode,
  BlendModeSource,
  CommandSecuritySchema,
  CommandType,
  CoverageGroupSchema,
  CoverageSummarySchema,
  DecisionMetadataSchema,
  RiskReason,
  SelectionContextSchema,
  type DecisionMetadata,
} from '../../src/leyline/index.js';

/** A decision with every section set and every value valid. */
const FULL_INPUT: DecisionMetadataInput = {
  policy: {
    actionId: 2,
    policyVersion: 'tamiyo_gnn_v1',
    valueEstimate: -0.25,
    riskScore: 0.5,
    paramDelta: 0.1,
    riskIndex: 3,
    blendingIndex: 1,
  },
  risk: { reason: RiskReason.LOSS_SPIKE, conservativeMode: true, breakerConfidence: 0.75 },
  blend: {
    mode: BlendMode.CHANNEL,
    modeSource: BlendModeSource.POLICY,
    alpha: 0.3,
    scheduleStart: 0.1,
    scheduleEnd: 0.9,
    alphaVec: [0, 0.5, 1],
  },
  coverage: {
    average: 0.8,
    groups: [
      { name: 'seed', value: 0.5 },
      { name: 'layer', value: 1 },
      { name: 'global', value: 0.9 },
    ],
  },
  selection: { seedId: 'seed-1', blueprintId: 'bp-conv', seedScore: 2.5, blueprintScore: -1 },
};

const CONFIDENCE_BLEND = {
  mode: BlendMode.CONFIDENCE,
  modeSource: BlendModeSource.OPERATOR,
  alpha: 0.5,
  gateK: 4,
  gateTau: 0.2,
  alphaLo: 0,
  alphaHi: 1,
  confidenceLogitsRequired: true,
} as const;

function roundTrip(metadata: DecisionMetadata): DecisionMetadata {
  return fromBinary(DecisionMetadataSchema, toBinary(DecisionMetadataSchema, metadata));
}

function commandWith(metadata: DecisionMetadata | undefined) {
  return create(AdaptationCommandSchema, {
    commandId: 'cmd-1',
    commandType: CommandType.COMMAND_SEED,
    trainingRunId: 'run-1',
    targetSeedId: 'seed-1',
    metadata,
  });
}

/** Runs `fn` and returns the typed error it throws. */
function typedError(fn: () => unknown): EsperError {
  try {
    fn();
  } catch (error) {
    if (isEsperError(error)) return error;
    throw error;
  }
  throw new Error('expected a typed error, nothing was thrown');
}

describe('buildDecisionMetadata', () => {
  it('builds every section and survives a binary round trip unchanged', () => {
    const metadata = buildDecisionMetadata(FULL_INPUT);

    expect(metadata.policy?.policyVersion).toBe('tamiyo_gnn_v1');
    expect(metadata.risk?.reason).toBe(RiskReason.LOSS_SPIKE);
    expect(metadata.blend?.alphaVec).toEqual([0, 0.5, 1]);
    expect(metadata.selection?.seedId).toBe('seed-1');
    expect(equals(DecisionMetadataSchema, roundTrip(metadata), metadata)).toBe(true);
  });

  it('rounds floats to the float32 value the wire carries', () => {
    const metadata = buildDecisionMetadata(FULL_INPUT);

    expect(metadata.blend?.alpha).toBe(Math.fround(0.3));
    expect(metadata.policy?.paramDelta).toBe(Math.fround(0.1));
  });

  it('sorts coverage groups by name', () => {
    const metadata = buildDecisionMetadata(FULL_INPUT);

    expect(metadata.coverage?.groups.map((g) => g.name)).toEqual(['global', 'layer', 'seed']);
  });

  it('sorts group names by code point, as Python does, not by UTF-16 code unit', () => {
    // U+FF5E sorts before U+1F600 by code point, after it by UTF-16 code unit.
    const metadata = buildDecisionMetadata({
      coverage: {
        average: 0.5,
        groups: [
          { name: '😀', value: 1 },
          { name: '～', value: 0 },
        ],
      },
    });

    expect(metadata.coverage?.groups.map((g) => g.name)).toEqual(['～', '😀']);
  });

  it('leaves absent sections unset and defaults omitted optional fields to zero', () => {
    const metadata = buildDecisionMetadata({ risk: { reason: RiskReason.POLICY } });

    expect(metadata.policy).toBeUndefined();
    expect(metadata.blend).toBeUndefined();
    expect(metadata.risk?.conservativeMode).toBe(false);
    expect(metadata.risk?.breakerConfidence).toBe(0);
  });

  it('accepts a confidence blend with its gate parameters', () => {
    const metadata = buildDecisionMetadata({ blend: CONFIDENCE_BLEND });

    expect(metadata.blend?.gateTau).toBe(Math.fround(0.2));
    expect(metadata.blend?.confidenceLogitsRequired).toBe(true);
  });

  it(`accepts an alpha_vec of exactly ${MAX_ALPHA_VEC_ENTRIES} entries`, () => {
    const alphaVec = Array.from({ length: MAX_ALPHA_VEC_ENTRIES }, () => 0.5);
    const metadata = buildDecisionMetadata({ blend: { ...FULL_INPUT.blend!, alphaVec } });

    expect(metadata.blend?.alphaVec).toHaveLength(64);
  });

  it('rejects an alpha_vec over the 64-entry bound with CONTRACT_BOUND_EXCEEDED', () => {
    const alphaVec = Array.from({ length: MAX_ALPHA_VEC_ENTRIES + 1 }, () => 0.5);
    const error = typedError(() => buildDecisionMetadata({ blend: { ...FULL_INPUT.blend!, alphaVec } }));

    expect(error.code).toBe(ErrorCode.CONTRACT_BOUND_EXCEEDED);
    expect(error.details).toMatchObject({ field: 'metadata.blend.alpha_vec', entries: 65, max: 64 });
  });

  const blend = FULL_INPUT.blend!;
  const policy = FULL_INPUT.policy!;
  const coverage = FULL_INPUT.coverage!;
  const invalidCases: [string, DecisionMetadataInput, string][] = [
    ['no section at all', {}, 'metadata'],
    ['alpha above 1', { blend: { ...blend, alpha: 1.5 } }, 'metadata.blend.alpha'],
    ['negative alpha', { blend: { ...blend, alpha: -0.1 } }, 'metadata.blend.alpha'],
    ['NaN alpha', { blend: { ...blend, alpha: Number.NaN } }, 'metadata.blend.alpha'],
    ['schedule_start after schedule_end', { blend: { ...blend, scheduleStart: 0.8, scheduleEnd: 0.2 } }, 'metadata.blend.schedule_start'],
    ['schedule_end above 1', { blend: { ...blend, scheduleEnd: 2 } }, 'metadata.blend.schedule_end'],
    ['alpha_lo above alpha_hi', { blend: { ...CONFIDENCE_BLEND, alphaLo: 0.9, alphaHi: 0.1 } }, 'metadata.blend.alpha_lo'],
    ['alpha_hi above 1', { blend: { ...CONFIDENCE_BLEND, alphaHi: 1.1 } }, 'metadata.blend.alpha_hi'],
    ['an alpha_vec entry outside [0, 1]', { blend: { ...blend, alphaVec: [0.5, 1.2] } }, 'metadata.blend.alpha_vec[1]'],
    ['CHANNEL without alpha_vec', { blend: { ...blend, alphaVec: [] } }, 'metadata.blend.alpha_vec'],
    ['alpha_vec outside CHANNEL mode', { blend: { ...blend, mode: BlendMode.CONVEX } }, 'metadata.blend.alpha_vec'],
    ['CONFIDENCE with gate_tau 0', { blend: { ...CONFIDENCE_BLEND, gateTau: 0 } }, 'metadata.blend.gate_tau'],
    ['CONFIDENCE with gate_k 0', { blend: { ...CONFIDENCE_BLEND, gateK: 0 } }, 'metadata.blend.gate_k'],
    ['CONFIDENCE with alpha_hi 0', { blend: { ...CONFIDENCE_BLEND, alphaLo: 0, alphaHi: 0 } }, 'metadata.blend.alpha_hi'],
    ['negative gate_k', { blend: { ...blend, alphaVec: [1], gateK: -1 } }, 'metadata.blend.gate_k'],
    ['an UNSPECIFIED blend mode', { blend: { ...blend, mode: BlendMode.UNSPECIFIED } }, 'metadata.blend.mode'],
    ['an UNSPECIFIED mode source', { blend: { ...blend, modeSource: BlendModeSource.UNSPECIFIED } }, 'metadata.blend.mode_source'],
    ['an undeclared blend mode', { blend: { ...blend, mode: 42 as BlendMode } }, 'metadata.blend.mode'],
    ['an undeclared risk reason', { risk: { reason: 999 as RiskReason } }, 'metadata.risk.reason'],
    ['breaker_confidence above 1', { risk: { reason: RiskReason.POLICY, breakerConfidence: 3 } }, 'metadata.risk.breaker_confidence'],
    ['an empty policy_version', { policy: { ...policy, policyVersion: '' } }, 'metadata.policy.policy_version'],
    ['a blank policy_version', { policy: { ...policy, policyVersion: '  ' } }, 'metadata.policy.policy_version'],
    ['a fractional action_id', { policy: { ...policy, actionId: 1.5 } }, 'metadata.policy.action_id'],
    ['a negative action_id', { policy: { ...policy, actionId: -1 } }, 'metadata.policy.action_id'],
    ['a risk_score above 1', { policy: { ...policy, riskScore: 1.01 } }, 'metadata.policy.risk_score'],
    ['an infinite value_estimate', { policy: { ...policy, valueEstimate: Infinity } }, 'metadata.policy.value_estimate'],
    ['a value_estimate beyond the float32 range', { policy: { ...policy, valueEstimate: 1e39 } }, 'metadata.policy.value_estimate'],
    ['a coverage average above 1', { coverage: { ...coverage, average: 1.5 } }, 'metadata.coverage.average'],
    [
      'a coverage group value below 0',
      { coverage: { average: 0.5, groups: [{ name: 'seed', value: -0.5 }] } },
      'metadata.coverage.groups[0].value',
    ],
    [
      'a blank coverage group name',
      { coverage: { average: 0.5, groups: [{ name: ' ', value: 0.5 }] } },
      'metadata.coverage.groups[0].name',
    ],
    [
      'duplicate coverage group names',
      {
        coverage: {
          average: 0.5,
          groups: [
            { name: 'seed', value: 0.5 },
            { name: 'seed', value: 1 },
          ],
        },
      },
      'metadata.coverage.groups[1].name',
    ],
    [
      'a group name with a lone surrogate',
      { coverage: { average: 0.5, groups: [{ name: 'a\uD800', value: 0.5 }] } },
      'metadata.coverage.groups[0].name',
    ],
    ['an empty selection seed_id', { selection: { seedId: '' } }, 'metadata.selection.seed_id'],
    ['a NaN seed_score', { selection: { seedId: 's', seedScore: Number.NaN } }, 'metadata.selection.seed_score'],
  ];

  it.each(invalidCases)('rejects %s with INVALID_ARGUMENT naming the field', (_name, input, field) => {
    const error = typedError(() => buildDecisionMetadata(input));

    expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(error.details['field']).toBe(field);
  });
});

describe('readDecisionMetadata', () => {
  it('returns the validated metadata equal to what the producer built, after the wire', () => {
    const metadata = roundTrip(buildDecisionMetadata(FULL_INPUT));
    const view = readDecisionMetadata(commandWith(metadata));

    expect(view.policy).toMatchObject({
      actionId: 2,
      policyVersion: 'tamiyo_gnn_v1',
      valueEstimate: -0.25,
      riskScore: 0.5,
      paramDelta: Math.fround(0.1),
      riskIndex: 3,
      blendingIndex: 1,
    });
    expect(view.risk).toMatchObject({
      reason: RiskReason.LOSS_SPIKE,
      conservativeMode: true,
      breakerConfidence: 0.75,
    });
    expect(view.blend?.alphaVec).toEqual([0, 0.5, 1]);
    expect(view.coverage?.groups).toMatchObject([
      { name: 'global', value: Math.fround(0.9) },
      { name: 'layer', value: 1 },
      { name: 'seed', value: 0.5 },
    ]);
    expect(view.selection).toMatchObject({
      seedId: 'seed-1',
      blueprintId: 'bp-conv',
      seedScore: 2.5,
      blueprintScore: -1,
    });
  });

  it('reports absent sections as undefined', () => {
    const view = readDecisionMetadata(commandWith(buildDecisionMetadata({ selection: { seedId: 'seed-9' } })));

    expect(view.policy).toBeUndefined();
    expect(view.selection?.seedId).toBe('seed-9');
  });

  it('rejects a command without metadata with CONTRACT_FIELD_MISSING', () => {
    const error = typedError(() => readDecisionMetadata(commandWith(undefined)));

    expect(error.code).toBe(ErrorCode.CONTRACT_FIELD_MISSING);
    expect(error.details).toMatchObject({ field: 'metadata', commandId: 'cmd-1' });
  });

  it('rejects an empty required id with CONTRACT_FIELD_MISSING', () => {
    const metadata = create(DecisionMetadataSchema, {
      selection: create(SelectionContextSchema, { seedId: '' }),
    });
    const error = typedError(() => readDecisionMetadata(commandWith(metadata)));

    expect(error.code).toBe(ErrorCode.CONTRACT_FIELD_MISSING);
    expect(error.details['field']).toBe('metadata.selection.seed_id');
  });

  it('rejects a received alpha_vec over the bound with CONTRACT_BOUND_EXCEEDED', () => {
    const metadata = create(DecisionMetadataSchema, {
      blend: create(BlendConfigSchema, {
        mode: BlendMode.CHANNEL,
        modeSource: BlendModeSource.POLICY,
        alpha: 0.5,
        alphaVec: Array.from({ length: 65 }, () => 0.5),
      }),
    });
    const error = typedError(() => readDecisionMetadata(commandWith(roundTrip(metadata))));

    expect(error.code).toBe(ErrorCode.CONTRACT_BOUND_EXCEEDED);
    expect(error.details['field']).toBe('metadata.blend.alpha_vec');
  });

  it('rejects received coverage groups that are not sorted by name', () => {
    const metadata = create(DecisionMetadataSchema, {
      coverage: create(CoverageSummarySchema, {
        average: 0.5,
        groups: [create(CoverageGroupSchema, { name: 'seed', value: 0.5 }), create(CoverageGroupSchema, { name: 'layer', value: 0.5 })],
      }),
    });
    const error = typedError(() => readDecisionMetadata(commandWith(metadata)));

    expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(error.details['field']).toBe('metadata.coverage.groups[1].name');
  });

  it('rejects a received NaN alpha', () => {
    const metadata = create(DecisionMetadataSchema, {
      blend: create(BlendConfigSchema, {
        mode: BlendMode.CONVEX,
        modeSource: BlendModeSource.DEFAULT,
        alpha: Number.NaN,
      }),
    });
    const error = typedError(() => readDecisionMetadata(commandWith(roundTrip(metadata))));

    expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(error.details['field']).toBe('metadata.blend.alpha');
  });
});

describe('attachDecisionMetadata', () => {
  it('returns a copy of the command carrying the metadata, leaving the inputs untouched', () => {
    const command = commandWith(undefined);
    const metadata = buildDecisionMetadata(FULL_INPUT);

    const attached = attachDecisionMetadata(command, metadata);

    expect(command.metadata).toBeUndefined();
    expect(attached).not.toBe(command);
    expect(attached.commandId).toBe('cmd-1');
    expect(equals(DecisionMetadataSchema, attached.metadata!, metadata)).toBe(true);
    expect(attached.metadata).not.toBe(metadata);
    expect(readDecisionMetadata(attached).selection?.seedId).toBe('seed-1');
  });

  it('refuses a command that is already signed, since metadata is part of the signed bytes', () => {
    const signed = create(AdaptationCommandSchema, {
      ...commandWith(undefined),
      security: create(CommandSecuritySchema, { signature: new Uint8Array([1, 2, 3]) }),
    });
    const error = typedError(() => attachDecisionMetadata(signed, buildDecisionMetadata(FULL_INPUT)));

    expect(error.code).toBe(ErrorCode.INVALID_STATE);
  });

  it('refuses metadata that breaks a rule', () => {
    const bad = create(DecisionMetadataSchema, {
      blend: create(BlendConfigSchema, { mode: BlendMode.CHANNEL, modeSource: BlendModeSource.POLICY }),
    });
    const error = typedError(() => attachDecisionMetadata(commandWith(undefined), bad));

    expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(error.details['field']).toBe('metadata.blend.alpha_vec');
  });
});

describe('buildDecisionMetadata on arbitrary input', () => {
  // Mostly valid values, so that whole inputs often pass, mixed with every kind of bad one.
  const anyNumber = fc.oneof(fc.double(), fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 1e39, 1e-50, 3.5e38));
  const unit = fc.oneof({ arbitrary: fc.double({ min: 0, max: 1, noNaN: true }), weight: 8 }, { arbitrary: anyNumber, weight: 1 });
  const real = fc.oneof({ arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true }), weight: 8 }, { arbitrary: anyNumber, weight: 1 });
  const positive = fc.oneof({ arbitrary: fc.double({ min: 0.01, max: 10, noNaN: true }), weight: 8 }, { arbitrary: anyNumber, weight: 1 });
  const uint = fc.oneof(
    { arbitrary: fc.nat({ max: 0xffffffff }), weight: 8 },
    { arbitrary: fc.oneof(fc.integer({ min: -5, max: -1 }), fc.double(), fc.constant(2 ** 32)), weight: 1 },
  );
  const text = fc.oneof(
    { arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }), weight: 8 },
    { arbitrary: fc.string({ unit: 'binary', maxLength: 4 }), weight: 1 },
    { arbitrary: fc.constantFrom('', ' '), weight: 1 },
  );
  const enumOf = (max: number) =>
    fc.oneof({ arbitrary: fc.integer({ min: 1, max }), weight: 8 }, { arbitrary: fc.integer({ min: -2, max: max + 3 }), weight: 1 });
  const sorted = (a: number, b: number): [number, number] => (a <= b ? [a, b] : [b, a]);

  const input: fc.Arbitrary<DecisionMetadataInput> = fc.record(
    {
      policy: fc.record({
        actionId: uint,
        policyVersion: text,
        valueEstimate: real,
        riskScore: unit,
        paramDelta: real,
        riskIndex: uint,
        blendingIndex: uint,
      }),
      risk: fc.record({ reason: enumOf(28), conservativeMode: fc.boolean(), breakerConfidence: unit }),
      blend: fc
        .record({
          mode: enumOf(4),
          modeSource: enumOf(3),
          alpha: unit,
          schedule: fc.tuple(unit, unit),
          alphaVec: fc.array(unit, { maxLength: 70 }),
          logitsAvailable: fc.boolean(),
          gateK: positive,
          gateTau: positive,
          alphaRange: fc.tuple(unit, unit),
          confidenceLogitsRequired: fc.boolean(),
          keepOrder: fc.boolean(),
        })
        .map(({ schedule, alphaRange, keepOrder, ...rest }) => {
          const [scheduleStart, scheduleEnd] = keepOrder ? schedule : sorted(...schedule);
          const [alphaLo, alphaHi] = keepOrder ? alphaRange : sorted(...alphaRange);
          // Usually pair alpha_vec with CHANNEL mode, as producers do.
          const alphaVec = rest.mode === BlendMode.CHANNEL || keepOrder ? rest.alphaVec : [];
          return { ...rest, scheduleStart, scheduleEnd, alphaLo, alphaHi, alphaVec };
        }),
      coverage: fc.record({
        average: unit,
        groups: fc.array(fc.record({ name: text, value: unit }), { maxLength: 6 }),
      }),
      selection: fc.record({ seedId: text, blueprintId: text, seedScore: real, blueprintScore: real }),
    },
    { requiredKeys: [] },
  ) as fc.Arbitrary<DecisionMetadataInput>;

  it('returns metadata that round-trips unchanged and reads back, or throws a typed error', () => {
    let built = 0;
    let rejected = 0;
    fc.assert(
      fc.property(input, (value) => {
        let metadata: DecisionMetadata;
        try {
          metadata = buildDecisionMetadata(value);
        } catch (error) {
          expect(isEsperError(error)).toBe(true);
          expect([ErrorCode.INVALID_ARGUMENT, ErrorCode.CONTRACT_BOUND_EXCEEDED]).toContain((error as EsperError).code);
          rejected += 1;
          return;
        }
        const decoded = roundTrip(metadata);
        expect(equals(DecisionMetadataSchema, decoded, metadata)).toBe(true);
        // What a producer can build, a consumer accepts.
        expect(() => readDecisionMetadata(commandWith(decoded))).not.toThrow();
        built += 1;
      }),
      { numRuns: 500 },
    );
    expect(built).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
  });
});
