/**
 * Parity of the generated wire codec with protobuf-es: for every message type it covers,
 * arbitrary messages encode to exactly `toBinary`'s bytes, those bytes (and random or
 * mutated byte strings) decode to what `fromBinary` gives or fail where it fails, and the
 * strict decoder built on it fails with the same typed errors as before.
 */
import { create, fromBinary, ScalarType, toBinary, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { StructSchema, TimestampSchema } from '@bufbuild/protobuf/wkt';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage } from '../../src/core/codec.js';
import { ErrorCode, isEsperError } from '../../src/core/errors.js';
import { decodeBinary, encodeBinary, hasWireCodec, TelemetryPacketSchema } from '../../src/leyline/index.js';
import { wireCodecs } from '../../src/leyline/gen/esper/leyline/v1/wire_codec.js';
import { ALL_MESSAGE_SCHEMAS } from '../support/all-messages.js';
import { varint } from '../support/wire.js';

const SCHEMAS: readonly DescMessage[] = wireCodecs.map((codec) => codec.schema);

/** Strings with what stresses an encoder: multi-byte, astral, lone surrogates, > 127 units. */
const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom('a', 'é', '😀', '\ud800', '\udfff', '\u0000', 'ß'), maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom('x', 'é', '\u20ac'), minLength: 40, maxLength: 200 }) },
);

function scalar(type: ScalarType): fc.Arbitrary<unknown> {
  switch (type) {
    case ScalarType.DOUBLE:
      return fc.double();
    case ScalarType.FLOAT:
      return fc.float();
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return fc.oneof(fc.integer(), fc.constantFrom(0, -1, 127, 128, -2147483648));
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.oneof(fc.nat({ max: 0xffffffff }), fc.constantFrom(0, 127, 128, 16383, 16384, 0xffffffff));
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.STRING:
      return text;
    case ScalarType.BYTES:
      return fc.oneof(fc.uint8Array({ maxLength: 20 }), fc.uint8Array({ minLength: 120, maxLength: 300 }));
  }
}

/** Well-formed unknown fields (numbers the type does not use), every wire type. */
function unknownFields(desc: DescMessage): fc.Arbitrary<{ no: number; wireType: number; data: Uint8Array }[]> {
  const used = new Set(desc.fields.map((f) => f.number));
  const no = fc.integer({ min: 1, max: 536_870_911 }).filter((n) => !used.has(n) && (n < 19_000 || n > 19_999));
  const field = fc.tuple(no, fc.constantFrom(0, 1, 2, 3, 5), fc.uint8Array({ maxLength: 10 }), fc.nat()).map(([n, wireType, raw, v]) => {
    const bytes = (): Uint8Array => {
      switch (wireType) {
        case 0:
          return varint(v);
        case 1:
          return Uint8Array.from({ length: 8 }, (_, i) => raw[i] ?? i);
        case 5:
          return Uint8Array.from({ length: 4 }, (_, i) => raw[i] ?? i);
        case 2:
          return Uint8Array.of(...varint(raw.length), ...raw);
        default:
          // A group holding one varint field, closed by its end tag.
          return Uint8Array.of(...varint(8), ...varint(v), ...varint(n * 8 + 4));
      }
    };
    return { no: n, wireType, data: bytes() };
  });
  return fc.array(field, { maxLength: 3 });
}

function value(field: DescField, depth: number): fc.Arbitrary<unknown> {
  switch (field.fieldKind) {
    case 'scalar':
      return scalar(field.scalar);
    case 'enum':
      return fc.oneof(fc.constantFrom(...field.enum.values.map((v) => v.number)), fc.integer({ min: -5, max: 1000 }));
    case 'message':
      return message(field.message, depth + 1);
    case 'list': {
      const item =
        field.listKind === 'scalar'
          ? scalar(field.scalar)
          : field.listKind === 'enum'
            ? fc.integer({ min: -3, max: 300 })
            : message(field.message, depth + 1);
      return fc.array(item, { maxLength: field.listKind === 'message' ? 3 : 40 });
    }
    case 'map': {
      const v =
        field.mapKind === 'scalar'
          ? scalar(field.scalar)
          : field.mapKind === 'enum'
            ? fc.integer({ min: 0, max: 9 })
            : message(field.message, depth + 1);
      return fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constant('__proto__'), text), v, { maxKeys: 4 });
    }
  }
}

const messages = new Map<string, fc.Arbitrary<Record<string, unknown>>>();

/** An arbitrary message of `desc`, possibly with unknown fields, nested ones too. */
function message(desc: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  if (depth > 6) return fc.constant(create(desc) as Record<string, unknown>);
  const key = `${desc.typeName}@${depth}`;
  const cached = messages.get(key);
  if (cached !== undefined) return cached;
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const field of desc.fields) if (field.oneof === undefined) parts[field.localName] = value(field, depth);
  for (const oneof of desc.oneofs) {
    parts[oneof.localName] = fc.oneof(
      fc.constant({ case: undefined }),
      ...oneof.fields.map((f) => value(f, depth).map((v) => ({ case: f.localName, value: v }))),
    );
  }
  const arbitrary = fc.tuple(fc.record(parts, { requiredKeys: [] }), fc.option(unknownFields(desc), { freq: 4 })).map(([init, unknown]) => {
    const built = create(desc, init as never) as Record<string, unknown>;
    if (unknown !== null && unknown.length > 0) built['$unknown'] = unknown;
    return built;
  });
  messages.set(key, arbitrary);
  return arbitrary;
}

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
