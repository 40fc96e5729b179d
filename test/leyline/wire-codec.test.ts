/**
 * Parity of the generated wire codec with protobuf-es: for every message type it covers,
 * arbitrary messages encode to exactly `toBinary`'s bytes, those bytes (and random or
 * mutated byte strings) decode to what `fromBinary` gives or fail where it fails, and the
 * strict decoder built on it fails with the same typed errors as before.
 */
import { create, fromBinary, toBinary, type DescMessage } from '@bufbuild/protobuf';
import { StructSchema, TimestampSchema } from '@bufbuild/protobuf/wkt';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage } from '../../src/core/codec.js';
import { ErrorCode, isEsperError } from '../../src/core/errors.js';
import { decodeBinary, encodeBinary, hasWireCodec, TelemetryPacketSchema } from '../../src/leyline/index.js';
import { wireCodecs } from '../../src/leyline/gen/esper/leyline/v1/wire_codec.js';
import { ALL_MESSAGE_SCHEMAS } from '../support/all-messages.js';
import { arbitraryMessage } from '../support/arbitrary-message.js';

const SCHEMAS: readonly DescMessage[] = wireCodecs.map((codec) => codec.schema);

/** Messages of `desc` with what stresses a codec (see `hostile`), unknown fields included. */
const message = (desc: DescMessage): fc.Arbitrary<Record<string, unknown>> =>
  arbitraryMessage(desc, { hostile: true, maxListLength: 3 }) as unknown as fc.Arbitrary<Record<string, unknown>>;

type Outcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

function outcome(run: () => unknown): Outcome {
  try {
    return { ok: true, value: run() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Whether any message in the tree of `value` kept unknown fields. */
function hasUnknown(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return false;
  const unknown = (value as { $unknown?: unknown[] }).$unknown;
  if (Array.isArray(unknown) && unknown.length > 0) return true;
  return Object.values(value).some(hasUnknown);
}

/** Decodes `bytes` both ways and asserts the same outcome (equal messages, or both fail). */
function expectSameDecode(schema: DescMessage, bytes: Uint8Array): void {
  const reference = outcome(() => fromBinary(schema, bytes));
  const generated = outcome(() => decodeBinary(schema, bytes));
  expect(generated.ok, `generated ${generated.ok ? 'decoded' : String((generated as { error: unknown }).error)}`).toBe(reference.ok);
  if (reference.ok && generated.ok) {
    const decoded = generated.value as { message: unknown; unknownFields: boolean };
    expect(decoded.message).toStrictEqual(reference.value);
    expect(decoded.unknownFields).toBe(hasUnknown(reference.value));
  }
}

/** One edit of a byte string. */
const edit = fc.oneof(
  fc.record({
    kind: fc.constant('set' as const),
    at: fc.nat(),
    byte: fc.oneof(fc.nat({ max: 255 }), fc.constantFrom(0, 0x7f, 0x80, 0xff)),
  }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

type Edit = { readonly kind: string; readonly at: number } & Record<string, unknown>;

function applyEdits(bytes: Uint8Array, edits: readonly Edit[]): Uint8Array {
  let out = [...bytes];
  for (const e of edits) {
    const at = out.length === 0 ? 0 : e.at % (out.length + 1);
    if (e.kind === 'set' && at < out.length) out[at] = e['byte'] as number;
    else if (e.kind === 'insert') out.splice(at, 0, ...(e['bytes'] as Uint8Array));
    else if (e.kind === 'delete') out.splice(at, e['count'] as number);
    else if (e.kind === 'truncate') out = out.slice(0, at);
  }
  return Uint8Array.from(out);
}

describe('generated wire codec', () => {
  it('covers every Leyline message and nothing the generator did not see', () => {
    for (const schema of ALL_MESSAGE_SCHEMAS) expect(hasWireCodec(schema), schema.typeName).toBe(true);
    expect(hasWireCodec(TimestampSchema)).toBe(true);
    expect(hasWireCodec(StructSchema)).toBe(false);
  });

  for (const schema of SCHEMAS) {
    it(`encodes any ${schema.typeName} to exactly toBinary's bytes and decodes them to fromBinary's message`, () => {
      fc.assert(
        fc.property(message(schema), (m) => {
          const bytes = toBinary(schema, m as never);
          expect(encodeBinary(schema, m as never)).toStrictEqual(bytes);
          expectSameDecode(schema, bytes);
        }),
        { numRuns: 80 },
      );
    });

    it(`decodes random and mutated ${schema.typeName} bytes as fromBinary does (same message or both fail)`, () => {
      fc.assert(
        fc.property(
          message(schema),
          fc.array(edit, { minLength: 1, maxLength: 3 }),
          fc.uint8Array({ maxLength: 64 }),
          (m, edits, noise) => {
            expectSameDecode(schema, applyEdits(toBinary(schema, m as never), edits));
            expectSameDecode(schema, noise);
          },
        ),
        { numRuns: 150 },
      );
    });
  }

  it('refuses the values toBinary refuses, and writes the loosely typed ones it accepts the same way', () => {
    const bad = fc.oneof(
      fc.constantFrom<unknown>(
        1.5,
        -1,
        2 ** 32,
        2 ** 31,
        -(2 ** 31) - 1,
        1e39,
        -1e39,
        NaN,
        Infinity,
        '12',
        'x',
        '',
        true,
        null,
        7n,
        2n ** 70n,
        -1n,
      ),
      fc.constantFrom<unknown>({}, [], new Uint8Array(2), [1, 2]),
    );
    const scalarFields = SCHEMAS.flatMap((schema) =>
      schema.fields.filter((f) => f.fieldKind === 'scalar' && f.oneof === undefined).map((field) => ({ schema, field })),
    );
    fc.assert(
      fc.property(fc.constantFrom(...scalarFields), bad, ({ schema, field }, v) => {
        const m = create(schema) as Record<string, unknown>;
        m[field.localName] = v;
        const reference = outcome(() => toBinary(schema, m as never));
        const generated = outcome(() => encodeBinary(schema, m as never));
        expect(generated.ok, `${field.parent.typeName}.${field.name} = ${String(v)}`).toBe(reference.ok);
        if (reference.ok && generated.ok) expect(generated.value).toStrictEqual(reference.value);
      }),
      { numRuns: 1500 },
    );
  });

  it('refuses a message of another type in a message field, as toBinary does', () => {
    const packet = create(TelemetryPacketSchema, { packetId: 'p' });
    (packet as Record<string, unknown>)['timestamp'] = create(StructSchema);
    expect(() => toBinary(TelemetryPacketSchema, packet)).toThrow();
    expect(() => encodeBinary(TelemetryPacketSchema, packet)).toThrow();
  });

  it('encodes and decodes a schema without a generated codec through protobuf-es', () => {
    const struct = create(StructSchema, { fields: { a: { kind: { case: 'numberValue', value: 1 } } } });
    const bytes = encodeBinary(StructSchema, struct);
    expect(bytes).toStrictEqual(toBinary(StructSchema, struct));
    expect(decodeBinary(StructSchema, bytes).message).toStrictEqual(fromBinary(StructSchema, bytes));
  });

  it('gives every message its own buffer (the scratch writer is reused)', () => {
    const a = encodeBinary(TelemetryPacketSchema, create(TelemetryPacketSchema, { packetId: 'first' }));
    const before = Uint8Array.from(a);
    encodeBinary(TelemetryPacketSchema, create(TelemetryPacketSchema, { packetId: 'second, longer' }));
    expect(a).toStrictEqual(before);
  });
});

describe('strict codec on the generated codec', () => {
  /** The strict decoder's outcome as protobuf-es plus the contract walk would have it. */
  function expectedStrict(schema: DescMessage, bytes: Uint8Array): 'ok' | string {
    let reference: unknown;
    try {
      reference = fromBinary(schema, bytes);
    } catch {
      return ErrorCode.DECODE_FAILED;
    }
    return hasUnknown(reference) ? ErrorCode.DECODE_FAILED : 'ok';
  }

  for (const schema of ALL_MESSAGE_SCHEMAS) {
    it(`fails on mutated ${schema.name} bytes exactly where protobuf-es fails or keeps unknown fields`, () => {
      fc.assert(
        fc.property(message(schema), fc.array(edit, { maxLength: 3 }), (m, edits) => {
          const bytes = applyEdits(toBinary(schema, m as never), edits);
          const expected = expectedStrict(schema, bytes);
          let actual: string;
          try {
            const decoded = decodeMessage(schema, bytes);
            expect(decoded).toStrictEqual(fromBinary(schema, bytes));
            actual = 'ok';
          } catch (error) {
            if (!isEsperError(error)) throw error;
            actual = error.code;
          }
          // A list over its contract bound is refused whatever the bytes; it is not a decode problem.
          if (actual === ErrorCode.CONTRACT_BOUND_EXCEEDED) {
            expect(expected).toBe('ok');
            return;
          }
          expect(actual).toBe(expected);
        }),
        { numRuns: 60 },
      );
    });
  }

  it('encodes through the generated codec with the contract checks first', () => {
    fc.assert(
      fc.property(message(TelemetryPacketSchema), (m) => {
        const clean = m as Record<string, unknown>;
        delete clean['$unknown'];
        expect(encodeMessage(TelemetryPacketSchema, clean as never)).toStrictEqual(toBinary(TelemetryPacketSchema, clean as never));
      }),
      { numRuns: 50 },
    );
  });
});
