/**
 * fast-check arbitraries for any protobuf-es message, driven by its descriptor, so every
 * Leyline message gets property tests without hand-written generators.
 */
import { create, ScalarType, type DescField, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { varint } from './wire.js';

/** Options of {@link arbitraryMessage}. */
export interface ArbitraryMessageOptions {
  /** Longest repeated message field or map generated. @default 4 */
  readonly maxListLength?: number;
  /** Deepest nesting generated (messages past it are left empty). @default 6 */
  readonly maxDepth?: number;
  /**
   * What a codec must survive, for parity tests against protobuf-es: NaN, −0 and extreme
   * scalars, strings with lone surrogates and long runs, enum numbers outside the enum,
   * `__proto__` map keys, long packed lists, and well-formed unknown fields (groups
   * included) at every depth. Off by default: such messages need not round-trip to equal
   * messages. @default false
   */
  readonly hostile?: boolean;
}

interface Resolved {
  readonly maxListLength: number;
  readonly maxDepth: number;
  readonly hostile: boolean;
  /** Arbitraries built so far, by type and depth (descriptors recur). */
  readonly cache: Map<string, fc.Arbitrary<Record<string, unknown>>>;
}

/** Longest packed scalar or enum list of a hostile message. */
const HOSTILE_PACKED_MAX = 40;

/** Strings with what stresses an encoder: multi-byte, astral, lone surrogates, > 127 units. */
const hostileText = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom('a', 'é', '😀', '\ud800', '\udfff', '\u0000', 'ß'), maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom('x', 'é', '\u20ac'), minLength: 40, maxLength: 200 }) },
);

/** Scalars that compare equal after a round trip (no NaN, no −0). */
function plainScalar(type: ScalarType): fc.Arbitrary<unknown> {
  switch (type) {
    case ScalarType.DOUBLE:
      return fc.double({ noNaN: true }).map((v) => (Object.is(v, -0) ? 0 : v));
    case ScalarType.FLOAT:
      return fc.float({ noNaN: true }).map((v) => (Object.is(v, -0) ? 0 : v));
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return fc.integer();
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.nat({ max: 0xffffffff });
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
      return fc.string({ unit: 'grapheme', maxLength: 12 });
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 40 });
  }
}

/** Scalars at and around the encodings' edges (varint lengths, sign, special floats). */
function hostileScalar(type: ScalarType): fc.Arbitrary<unknown> {
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
    case ScalarType.STRING:
      return hostileText;
    case ScalarType.BYTES:
      return fc.oneof(fc.uint8Array({ maxLength: 20 }), fc.uint8Array({ minLength: 120, maxLength: 300 }));
    default:
      return plainScalar(type);
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

function scalarArbitrary(type: ScalarType, options: Resolved): fc.Arbitrary<unknown> {
  return options.hostile ? hostileScalar(type) : plainScalar(type);
}

function enumArbitrary(numbers: readonly number[], options: Resolved): fc.Arbitrary<number> {
  const known = fc.constantFrom(...numbers);
  return options.hostile ? fc.oneof(known, fc.integer({ min: -5, max: 1000 })) : known;
}

function valueArbitrary(field: DescField, options: Resolved, depth: number): fc.Arbitrary<unknown> {
  switch (field.fieldKind) {
    case 'scalar':
      return scalarArbitrary(field.scalar, options);
    case 'enum':
      return enumArbitrary(
        field.enum.values.map((v) => v.number),
        options,
      );
    case 'message':
      return messageArbitrary(field.message, options, depth + 1);
    case 'list': {
      if (field.listKind === 'message')
        return fc.array(messageArbitrary(field.message, options, depth + 1), { maxLength: options.maxListLength });
      const item =
        field.listKind === 'scalar'
          ? scalarArbitrary(field.scalar, options)
          : enumArbitrary(
              field.enum.values.map((v) => v.number),
              options,
            );
      return fc.array(item, { maxLength: options.hostile ? HOSTILE_PACKED_MAX : options.maxListLength });
    }
    case 'map': {
      const value =
        field.mapKind === 'scalar'
          ? scalarArbitrary(field.scalar, options)
          : field.mapKind === 'enum'
            ? enumArbitrary(
                field.enum.values.map((v) => v.number),
                options,
              )
            : messageArbitrary(field.message, options, depth + 1);
      const key = options.hostile
        ? fc.oneof(fc.string({ maxLength: 6 }), fc.constant('__proto__'), hostileText)
        : fc.string({ maxLength: 8 });
      return fc.dictionary(key, value, { maxKeys: options.maxListLength });
    }
  }
}

/** Messages of `desc` made with `create` (and, when hostile, maybe given unknown fields). */
function messageArbitrary(desc: DescMessage, options: Resolved, depth: number): fc.Arbitrary<Record<string, unknown>> {
  if (depth > options.maxDepth) return fc.constant(null).map(() => create(desc) as Record<string, unknown>);
  const key = `${desc.typeName}@${depth}`;
  const cached = options.cache.get(key);
  if (cached !== undefined) return cached;
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const field of desc.fields) {
    if (field.oneof === undefined) parts[field.localName] = valueArbitrary(field, options, depth);
  }
  for (const oneof of desc.oneofs) {
    parts[oneof.localName] = fc.oneof(
      fc.constant({ case: undefined }),
      ...oneof.fields.map((f) => valueArbitrary(f, options, depth).map((value) => ({ case: f.localName, value }))),
    );
  }
  // Every field may also be left unset (proto3 optional presence, absent sub-messages).
  const init = fc.record(parts, { requiredKeys: [] });
  const arbitrary = options.hostile
    ? fc.tuple(init, fc.option(unknownFields(desc), { freq: 4 })).map(([fields, unknown]) => {
        const built = create(desc, fields as never) as Record<string, unknown>;
        if (unknown !== null && unknown.length > 0) built['$unknown'] = unknown;
        return built;
      })
    : init.map((fields) => create(desc, fields as never) as Record<string, unknown>);
  options.cache.set(key, arbitrary);
  return arbitrary;
}

/** An arbitrary message of `schema` (lists bounded; NaN and −0 excluded unless `hostile`). */
export function arbitraryMessage<Desc extends DescMessage>(
  schema: Desc,
  options: ArbitraryMessageOptions = {},
): fc.Arbitrary<MessageShape<Desc>> {
  const resolved: Resolved = {
    maxListLength: options.maxListLength ?? 4,
    maxDepth: options.maxDepth ?? 6,
    hostile: options.hostile ?? false,
    cache: new Map(),
  };
  return messageArbitrary(schema, resolved, 0) as unknown as fc.Arbitrary<MessageShape<Desc>>;
}
