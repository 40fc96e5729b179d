import { create, equals, toBinary, type DescMessage } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage } from '../../src/core/codec.js';
import { ErrorCode, isEsperError } from '../../src/core/errors.js';
import { CONTRACT_LIMITS } from '../../src/core/limits.js';
import {
  AdaptationCommandSchema,
  BlendConfigSchema,
  FieldReportSchema,
  MetricPointSchema,
  SystemStatePacketSchema,
  TrainingMetricsSchema,
} from '../../src/leyline/index.js';
import { ALL_MESSAGE_SCHEMAS } from '../support/all-messages.js';
import { arbitraryMessage } from '../support/arbitrary-message.js';

const DECODE_ERRORS = new Set<string>([ErrorCode.DECODE_FAILED, ErrorCode.MESSAGE_TOO_LARGE, ErrorCode.CONTRACT_BOUND_EXCEEDED]);

/** Runs decode and classifies the outcome: a message, or a typed decode error. */
function decodeOutcome(schema: DescMessage, bytes: Uint8Array): 'message' | 'typed-error' {
  try {
    decodeMessage(schema, bytes);
    return 'message';
  } catch (error) {
    if (isEsperError(error) && DECODE_ERRORS.has(error.code)) return 'typed-error';
    throw error;
  }
}

describe('decodeMessage', () => {
  it('covers every Leyline message', () => {
    expect(ALL_MESSAGE_SCHEMAS.length).toBeGreaterThanOrEqual(40);
  });

  for (const schema of ALL_MESSAGE_SCHEMAS) {
    it(`round-trips ${schema.name} byte for byte`, () => {
      fc.assert(
        fc.property(arbitraryMessage(schema), (message) => {
          const bytes = encodeMessage(schema, message);
          const decoded = decodeMessage(schema, bytes);
          expect(equals(schema, decoded, message)).toBe(true);
          expect(toBinary(schema, decoded)).toEqual(bytes);
        }),
        { numRuns: 60 },
      );
    });
  }

  it('turns garbage into a typed error or a fully valid message, never a crash', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ALL_MESSAGE_SCHEMAS), fc.uint8Array({ maxLength: 256 }), (schema, bytes) => {
        decodeOutcome(schema, bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it('turns every truncation of a message into a typed error or a valid prefix message', () => {
    fc.assert(
      fc.property(arbitraryMessage(SystemStatePacketSchema), (message) => {
        const bytes = toBinary(SystemStatePacketSchema, message);
        for (let cut = 0; cut < bytes.length; cut += 1) {
          decodeOutcome(SystemStatePacketSchema, bytes.subarray(0, cut));
        }
      }),
      { numRuns: 40 },
    );
  });

  it('rejects a cut inside a length-delimited field with DECODE_FAILED', () => {
    const message = create(AdaptationCommandSchema, { commandId: 'c-1', trainingRunId: 'run-1' });
    const bytes = toBinary(AdaptationCommandSchema, message);
    expect(() => decodeMessage(AdaptationCommandSchema, bytes.subarray(0, 3))).toThrow(
      expect.objectContaining({ code: ErrorCode.DECODE_FAILED }),
    );
  });

  it('rejects oversized input before parsing it, and refuses to produce it', () => {
    const bytes = new Uint8Array(CONTRACT_LIMITS.messageMaxBytes + 1);
    expect(() => decodeMessage(SystemStatePacketSchema, bytes)).toThrow(expect.objectContaining({ code: ErrorCode.MESSAGE_TOO_LARGE }));
    expect(() => decodeMessage(SystemStatePacketSchema, new Uint8Array(11), { maxBytes: 10 })).toThrow(
      expect.objectContaining({ code: ErrorCode.MESSAGE_TOO_LARGE }),
    );
    const big = create(SystemStatePacketSchema, { experimentName: 'x'.repeat(64) });
    expect(() => encodeMessage(SystemStatePacketSchema, big, { maxBytes: 32 })).toThrow(
      expect.objectContaining({ code: ErrorCode.MESSAGE_TOO_LARGE }),
    );
  });

  it('rejects fields the contract does not define', () => {
    // field 99, varint 1 — unknown to AdaptationCommand
    const bytes = Uint8Array.from([0x98, 0x06, 0x01]);
    expect(() => decodeMessage(AdaptationCommandSchema, bytes)).toThrow(
      expect.objectContaining({ code: ErrorCode.DECODE_FAILED, message: expect.stringContaining('unknown field') }),
    );
  });

  it('rejects unknown fields nested inside sub-messages too', () => {
    const inner = Uint8Array.from([0x98, 0x06, 0x01]);
    // SystemStatePacket.metrics (field 50, length-delimited) holding the unknown field
    const bytes = Uint8Array.from([0x92, 0x03, inner.length, ...inner]);
    expect(() => decodeMessage(SystemStatePacketSchema, bytes)).toThrow(expect.objectContaining({ code: ErrorCode.DECODE_FAILED }));
  });

  it('enforces the alpha_vec and extra_metrics bounds on decode and on encode', () => {
    const blend = create(BlendConfigSchema, { alphaVec: new Array<number>(65).fill(0.5) });
    const bytes = toBinary(BlendConfigSchema, blend);
    expect(() => decodeMessage(BlendConfigSchema, bytes)).toThrow(expect.objectContaining({ code: ErrorCode.CONTRACT_BOUND_EXCEEDED }));
    expect(() => encodeMessage(BlendConfigSchema, blend)).toThrow(expect.objectContaining({ code: ErrorCode.CONTRACT_BOUND_EXCEEDED }));
    const metric = create(MetricPointSchema, { name: 'm', value: 1, unit: 'count' });
    const report = create(FieldReportSchema, { extraMetrics: new Array(9).fill(metric) });
    expect(() => decodeMessage(FieldReportSchema, toBinary(FieldReportSchema, report))).toThrow(
      expect.objectContaining({ code: ErrorCode.CONTRACT_BOUND_EXCEEDED }),
    );
    const metrics = create(TrainingMetricsSchema, { extraMetrics: new Array(8).fill(metric) });
    expect(decodeMessage(TrainingMetricsSchema, toBinary(TrainingMetricsSchema, metrics)).extraMetrics).toHaveLength(8);
  });
});
