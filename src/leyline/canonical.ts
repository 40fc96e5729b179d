/**
 * Canonical bytes of signed messages (spec 01 "Canonical bytes and signing"): the
 * message's binary encoding with `security.signature` empty. The signer MACs
 * {@link canonicalBytes}; the verifier accepts received bytes only when they are the
 * canonical encoding ({@link signedBytesIfCanonical}).
 */
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import type { CommandSecurity } from './gen/esper/leyline/v1/security_pb.js';
import type { AdaptationCommandSchema } from './gen/esper/leyline/v1/command_pb.js';
import type { PolicyUpdateSchema } from './gen/esper/leyline/v1/policy_pb.js';
import type { BSDSSchema } from './gen/esper/leyline/v1/blueprint_pb.js';
import { encodeBinary } from './wire-codec.js';

/** Schemas of the messages that carry a `CommandSecurity` signature. */
export type SignedMessageSchema = typeof AdaptationCommandSchema | typeof PolicyUpdateSchema | typeof BSDSSchema;

/** A message of one of the {@link SignedMessageSchema} types. */
export type SignedMessage = MessageShape<SignedMessageSchema> & { security?: CommandSecurity };

const EMPTY = new Uint8Array(0);

/** `CommandSecurity.signature` field number. */
const SIGNATURE_FIELD = 1;

/**
 * The bytes a signature covers: the message encoded with `security.signature` empty.
 * The message is left as it was (the signature is blanked only for the encoding).
 */
export function canonicalBytes<Desc extends DescMessage & SignedMessageSchema>(schema: Desc, message: MessageShape<Desc>): Uint8Array {
  const security = (message as SignedMessage).security;
  if (security === undefined || security.signature.length === 0) {
    return encodeBinary(schema, message);
  }
  const signature = security.signature;
  security.signature = EMPTY;
  try {
    return encodeBinary(schema, message);
  } finally {
    security.signature = signature;
  }
}

/** Result of {@link signedBytesOfEncoding}. */
export type SignedBytesResult = { readonly ok: true; readonly bytes: Uint8Array } | { readonly ok: false; readonly problem: string };

/** Where one length-delimited field sits in an encoding. */
interface FieldSpan {
  /** First byte of the tag. */
  readonly start: number;
  /** First byte of the content (after tag and length). */
  readonly contentStart: number;
  /** One past the last byte of the content. */
  readonly end: number;
}

/** Reads a varint (up to 32 significant bits are enough for tags and lengths here). */
function readVarint(bytes: Uint8Array, pos: number): { value: number; next: number } {
  let value = 0;
  for (let shift = 0, i = pos; i < bytes.length && shift < 64; shift += 7, i += 1) {
    const byte = bytes[i] as number;
    if (shift < 35) value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return { value, next: i + 1 };
  }
  throw new RangeError(`malformed varint at ${pos}`);
}

/** Bytes needed for `value` as a varint. */
function varintLength(value: number): number {
  let length = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    length += 1;
  }
  return length;
}

/** Writes `value` as a varint at `pos`; returns the next position. */
function writeVarint(out: Uint8Array, pos: number, value: number): number {
  while (value >= 0x80) {
    out[pos++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  out[pos++] = value;
  return pos;
}

/**
 * Finds the single occurrence of length-delimited field `fieldNo` at the top level of
 * `bytes`. `undefined` when absent; a string problem when it repeats or has the wrong
 * wire type (protobuf would merge repeats, so the signed bytes would be ambiguous).
 * Throws RangeError on bytes that are not a protobuf encoding.
 */
function findField(bytes: Uint8Array, fieldNo: number): FieldSpan | undefined | string {
  let found: FieldSpan | undefined;
  let pos = 0;
  while (pos < bytes.length) {
    const start = pos;
    const tag = readVarint(bytes, pos);
    pos = tag.next;
    const no = Math.floor(tag.value / 8);
    const wireType = tag.value % 8;
    let contentStart = pos;
    switch (wireType) {
      case 0:
        pos = readVarint(bytes, pos).next;
        break;
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        const length = readVarint(bytes, pos);
        contentStart = length.next;
        pos = length.next + length.value;
        break;
      }
      default:
        throw new RangeError(`unsupported wire type ${wireType} at ${start}`);
    }
    if (pos > bytes.length) throw new RangeError(`field ${no} at ${start} runs past the end`);
    if (no !== fieldNo) continue;
    if (wireType !== 2) return `field ${fieldNo} has wire type ${wireType}`;
    if (found !== undefined) return `field ${fieldNo} occurs more than once`;
    found = { start, contentStart, end: pos };
  }
  return found;
}

/**
 * `head` + security block (tag, new length, `securityParts`) + `tail`, as one buffer.
 */
function reframeSecurity(bytes: Uint8Array, security: FieldSpan, securityField: number, securityParts: readonly Uint8Array[]): Uint8Array {
  const contentLength = securityParts.reduce((sum, part) => sum + part.length, 0);
  const tag = securityField * 8 + 2;
  const head = bytes.subarray(0, security.start);
  const tail = bytes.subarray(security.end);
  const out = new Uint8Array(head.length + varintLength(tag) + varintLength(contentLength) + contentLength + tail.length);
  out.set(head, 0);
  let pos = writeVarint(out, head.length, tag);
  pos = writeVarint(out, pos, contentLength);
  for (const part of securityParts) {
    out.set(part, pos);
    pos += part.length;
  }
  out.set(tail, pos);
  return out;
}

/**
 * The signed bytes of a received signed message, provided `received` is exactly the
 * canonical encoding of `message` (what it decoded to) with its signature in place — the
 * encoding {@link encodingWithSignature} builds. Anything else a decoder would accept for
 * the same message (fields moved or repeated, non-minimal varints in a tag or length, a
 * bool written as 0x03, unpacked repeated scalars, trailing fields) is refused, so every
 * change to the received bytes either changes the message (and breaks the MAC) or is
 * refused here.
 */
export function signedBytesIfCanonical<Desc extends SignedMessageSchema>(
  schema: Desc,
  message: MessageShape<Desc>,
  received: Uint8Array,
): SignedBytesResult {
  let canonical: Uint8Array;
  let expected: Uint8Array;
  try {
    canonical = canonicalBytes(schema, message);
    const signature = (message as SignedMessage).security?.signature;
    expected = signature === undefined || signature.length === 0 ? canonical : encodingWithSignature(schema, canonical, signature);
  } catch (error) {
    return { ok: false, problem: `cannot be encoded canonically: ${error instanceof Error ? error.message : String(error)}` };
  }
  const at = firstDifference(expected, received);
  if (at !== undefined) {
    return {
      ok: false,
      problem: `bytes differ from the canonical encoding from byte ${at} (${received.length} bytes received, ${expected.length} canonical)`,
    };
  }
  return { ok: true, bytes: canonical };
}

/** Index of the first byte where `a` and `b` differ (a length difference counts); undefined when equal. */
function firstDifference(a: Uint8Array, b: Uint8Array): number | undefined {
  const shorter = Math.min(a.length, b.length);
  for (let i = 0; i < shorter; i += 1) if (a[i] !== b[i]) return i;
  return a.length === b.length ? undefined : shorter;
}

/**
 * The full encoding of a signed message from its canonical bytes and signature: the
 * signature field is put first in the security block (fields are written in number order,
 * and the signature is field 1), so the result equals `toBinary` of the signed message
 * without encoding it a second time.
 */
export function encodingWithSignature(schema: SignedMessageSchema, canonical: Uint8Array, signature: Uint8Array): Uint8Array {
  const securityField = schema.field.security.number;
  const security = findField(canonical, securityField);
  if (typeof security === 'string') throw new TypeError(`canonical bytes: ${security}`);
  if (security === undefined) throw new TypeError('canonical bytes hold no security block');
  const content = canonical.subarray(security.contentStart, security.end);
  const signatureHeader = Uint8Array.of(SIGNATURE_FIELD * 8 + 2, 0, 0, 0, 0, 0);
  const headerLength = writeVarint(signatureHeader, 1, signature.length);
  return reframeSecurity(canonical, security, securityField, [signatureHeader.subarray(0, headerLength), signature, content]);
}
