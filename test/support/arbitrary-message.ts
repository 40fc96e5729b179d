/**
 * fast-check arbitraries for any protobuf-es message, driven by its descriptor, so every
 * Leyline message gets property tests without hand-written generators.
 */
import { create, ScalarType, type DescField, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import fc from 'fast-check';

/** Options of {@link arbitraryMessage}. */
export interface ArbitraryMessageOptions {
  /** Longest repeated field or map generated. @default 4 */
  readonly maxListLength?: number;
  /** Deepest nesting generated (messages past it are left unset). @default 6 */
  readonly maxDepth?: number;
}

function scalarArbitrary(type: ScalarType): fc.Arbitrary<unknown> {
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

function valueArbitrary(field: DescField, options: Required<ArbitraryMessageOptions>, depth: number): fc.Arbitrary<unknown> {
  switch (field.fieldKind) {
    case 'scalar':
      return scalarArbitrary(field.scalar);
    case 'enum':
      return fc.constantFrom(...field.enum.values.map((v) => v.number));
    case 'message':
      return arbitraryInit(field.message, options, depth + 1);
    case 'list': {
      const item =
        field.listKind === 'scalar'
          ? scalarArbitrary(field.scalar)
          : field.listKind === 'enum'
            ? fc.constantFrom(...field.enum.values.map((v) => v.number))
            : arbitraryInit(field.message, options, depth + 1);
      return fc.array(item, { maxLength: options.maxListLength });
    }
    case 'map': {
      const value =
        field.mapKind === 'scalar'
          ? scalarArbitrary(field.scalar)
          : field.mapKind === 'enum'
            ? fc.constantFrom(...field.enum.values.map((v) => v.number))
            : arbitraryInit(field.message, options, depth + 1);
      return fc.dictionary(fc.string({ maxLength: 8 }), value, { maxKeys: options.maxListLength });
    }
  }
}

function arbitraryInit(
  desc: DescMessage,
  options: Required<ArbitraryMessageOptions>,
  depth: number,
): fc.Arbitrary<Record<string, unknown>> {
  if (depth > options.maxDepth) return fc.constant({});
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const field of desc.fields) {
    if (field.oneof !== undefined) continue;
    parts[field.localName] = valueArbitrary(field, options, depth);
  }
  for (const oneof of desc.oneofs) {
    parts[oneof.localName] = fc.oneof(
      fc.constant({ case: undefined }),
      ...oneof.fields.map((f) => valueArbitrary(f, options, depth).map((value) => ({ case: f.localName, value }))),
    );
  }
  // Every field may also be left unset (proto3 optional presence, absent sub-messages).
  return fc.record(parts, { requiredKeys: [] });
}

/** An arbitrary message of `schema` (lists bounded, NaN and -0 excluded). */
export function arbitraryMessage<Desc extends DescMessage>(
  schema: Desc,
  options: ArbitraryMessageOptions = {},
): fc.Arbitrary<MessageShape<Desc>> {
  const resolved = { maxListLength: options.maxListLength ?? 4, maxDepth: options.maxDepth ?? 6 };
  return arbitraryInit(schema, resolved, 0).map((init) => create(schema, init as never));
}
