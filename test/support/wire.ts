/**
 * Protobuf wire-format surgery for tests that attack signed bytes: split an encoding into
 * its fields as written, and re-frame it (move, repeat, pad a varint, append bytes) without
 * going through a protobuf runtime, which would normalise exactly what is under test.
 */
import fc from 'fast-check';

/** One field of an encoding, as written. */
export interface WireField {
  readonly number: number;
  /** The tag varint's bytes. */
  readonly tag: Uint8Array;
  /** The length varint's bytes (length-delimited fields only). */
  readonly length?: Uint8Array;
  /** The value bytes (the content of a length-delimited field). */
  readonly value: Uint8Array;
}

function varintEnd(bytes: Uint8Array, pos: number): number {
  let i = pos;
  while (((bytes[i] as number) & 0x80) !== 0) i += 1;
  return i + 1;
}

function varintValue(bytes: Uint8Array): number {
  let value = 0;
  for (let i = bytes.length - 1; i >= 0; i -= 1) value = value * 128 + ((bytes[i] as number) & 0x7f);
  return value;
}

/** A minimal varint. */
export function varint(value: number): Uint8Array {
  const out: number[] = [];
  while (value >= 0x80) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return Uint8Array.from(out);
}

/** The same varint value in one more byte than needed (`0x05` → `0x85 0x00`). */
export function padVarint(bytes: Uint8Array): Uint8Array {
  const out = Uint8Array.from([...bytes, 0x00]);
  out[bytes.length - 1]! |= 0x80;
  return out;
}

/** The top-level fields of `bytes` (a well-formed encoding). */
export function readFields(bytes: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const tagEnd = varintEnd(bytes, pos);
    const tag = bytes.slice(pos, tagEnd);
    const key = varintValue(tag);
    const wireType = key % 8;
    const number = Math.floor(key / 8);
    if (wireType === 2) {
      const lengthEnd = varintEnd(bytes, tagEnd);
      const length = bytes.slice(tagEnd, lengthEnd);
      const end = lengthEnd + varintValue(length);
      fields.push({ number, tag, length, value: bytes.slice(lengthEnd, end) });
      pos = end;
    } else {
      const end = wireType === 0 ? varintEnd(bytes, tagEnd) : tagEnd + (wireType === 1 ? 8 : 4);
      fields.push({ number, tag, value: bytes.slice(tagEnd, end) });
      pos = end;
    }
  }
  return fields;
}

/** The bytes of `fields`, as written (lengths as given). */
export function writeFields(fields: readonly WireField[]): Uint8Array {
  const parts = fields.flatMap((f) => (f.length === undefined ? [f.tag, f.value] : [f.tag, f.length, f.value]));
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

/** `field` holding `value`, with a minimal length prefix. */
export function withValue(field: WireField, value: Uint8Array): WireField {
  return { ...field, length: varint(value.length), value };
}

/** A way to re-frame an encoding that a lenient decoder reads as the same message. */
export type Reframing =
  | { readonly kind: 'pad-tag'; readonly index: number }
  | { readonly kind: 'pad-length'; readonly index: number }
  | { readonly kind: 'swap'; readonly index: number }
  | { readonly kind: 'repeat'; readonly index: number }
  | { readonly kind: 'append'; readonly bytes: Uint8Array };

/** Any {@link Reframing}; indexes are taken modulo the field count. */
export const reframingArbitrary: fc.Arbitrary<Reframing> = fc.oneof(
  fc.record({ kind: fc.constant('pad-tag' as const), index: fc.nat() }),
  fc.record({ kind: fc.constant('pad-length' as const), index: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const), index: fc.nat() }),
  fc.record({ kind: fc.constant('repeat' as const), index: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }) }),
);

/** `fields` re-framed by `reframing`. */
export function reframeFields(fields: readonly WireField[], reframing: Reframing): WireField[] {
  const out = [...fields];
  if (reframing.kind === 'append') return out;
  if (out.length === 0) return out;
  const i = reframing.index % out.length;
  const field = out[i]!;
  switch (reframing.kind) {
    case 'pad-tag':
      out[i] = { ...field, tag: padVarint(field.tag) };
      break;
    case 'pad-length':
      if (field.length !== undefined) out[i] = { ...field, length: padVarint(field.length) };
      break;
    case 'swap':
      if (out.length > 1) {
        const j = (i + 1) % out.length;
        out[i] = out[j]!;
        out[j] = field;
      }
      break;
    case 'repeat':
      out.splice(i, 0, field);
      break;
  }
  return out;
}

/**
 * `bytes` re-framed by `reframing`, at the top level or (when `inField` is given and
 * present) inside that length-delimited field.
 */
export function reframe(bytes: Uint8Array, reframing: Reframing, inField?: number): Uint8Array {
  const fields = readFields(bytes);
  if (reframing.kind === 'append') return Uint8Array.from([...bytes, ...reframing.bytes]);
  const at = inField === undefined ? -1 : fields.findIndex((f) => f.number === inField && f.length !== undefined);
  if (at < 0) return writeFields(reframeFields(fields, reframing));
  const outer = fields[at]!;
  fields[at] = withValue(outer, writeFields(reframeFields(readFields(outer.value), reframing)));
  return writeFields(fields);
}
