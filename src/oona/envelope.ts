/**
 * How a Leyline message becomes a signed stream entry (`e` envelope bytes, `s` HMAC, `k`
 * key id) and back, and the dead-letter entry built from a rejected one. The entry layout
 * and the order of checks are in the Oona section of `docs/architecture.md` ("Entries");
 * nothing is decoded before the signature is checked.
 *
 * Departure from the prototype: it signed only when a secret happened to be configured
 * and dropped unsigned or badly signed entries silently; here every entry is signed and a
 * rejected entry is dead-lettered with its reason.
 */
import { clone, create, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { timestampFromMs, timestampMs } from '@bufbuild/protobuf/wkt';
import { CONTRACT_LIMITS, decodeMessage, describeError, encodeMessage, ErrorCode, EsperError } from '../core/index.js';
import {
  BusEnvelopeSchema,
  busMessageTypeOf,
  schemaForBusMessageType,
  type BusEnvelope,
  type BusMessage,
  type BusMessageType,
  type MessagePriority,
} from '../leyline/index.js';
import type { HmacSigner } from '../security/index.js';
import { DeadLetterReason } from './names.js';
import type { EntryFields } from './stream-store.js';

/** Field names of a bus entry. */
export const EntryField = {
  /** BusEnvelope bytes. */
  ENVELOPE: 'e',
  /** Raw HMAC-SHA256 of the envelope bytes. */
  SIGNATURE: 's',
  /** Id of the signing key, UTF-8. */
  KEY_ID: 'k',
} as const;

/** Fields a dead-letter entry adds to the original entry's `e`, `s` and `k`. */
export const DeadLetterField = {
  /** A {@link DeadLetterReason}. */
  REASON: 'reason',
  /** Human-readable detail (the handler's error message, the decode error, ...). */
  DETAIL: 'detail',
  /** Physical stream the entry was read from. */
  FROM: 'from',
  /** The original entry id. */
  ID: 'id',
  /** Consumer group that gave up on it. */
  GROUP: 'group',
} as const;

/**
 * Largest envelope accepted: the largest payload plus room for the envelope's own fields.
 */
export const ENVELOPE_MAX_BYTES = CONTRACT_LIMITS.messageMaxBytes + 4_096;

/** Longest `detail` written to a dead-letter entry, in UTF-16 code units. */
export const DEAD_LETTER_DETAIL_MAX_CHARS = 1_000;

/** Inputs of {@link buildEnvelope}. */
export interface EnvelopeInput {
  readonly type: BusMessageType;
  /** The inner message's binary encoding. */
  readonly payload: Uint8Array;
  readonly priority: MessagePriority;
  readonly correlationId: string;
  readonly trainingRunId: string;
  /** Wall ms of the publish. */
  readonly publishedAtMs: number;
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly messageId: string;
}

/** A message's bus type and strict binary encoding (contract and size bounds checked). */
export function encodeBusMessage(message: BusMessage): { readonly type: BusMessageType; readonly payload: Uint8Array } {
  const type = busMessageTypeOf(message);
  // busMessageTypeOf only returns types that have a schema.
  const schema = schemaForBusMessageType(type) as DescMessage;
  return { type, payload: encodeMessage(schema, message as MessageShape<DescMessage>) };
}

/** Builds a BusEnvelope. */
export function buildEnvelope(input: EnvelopeInput): BusEnvelope {
  return create(BusEnvelopeSchema, {
    messageType: input.type,
    payload: input.payload,
    priority: input.priority,
    correlationId: input.correlationId,
    trainingRunId: input.trainingRunId,
    publishedAt: timestampFromMs(input.publishedAtMs),
    attempt: input.attempt,
    messageId: input.messageId,
  });
}

/** A copy of `envelope` for another attempt (same message id, payload and publish time). */
export function withAttempt(envelope: BusEnvelope, attempt: number): BusEnvelope {
  const copy = clone(BusEnvelopeSchema, envelope);
  copy.attempt = attempt;
  return copy;
}

/** Encodes `envelope` and signs the bytes with `keyId` into the fields of one entry. */
export function sealEnvelope(signer: HmacSigner, keyId: string, envelope: BusEnvelope): EntryFields {
  const bytes = encodeEnvelope(envelope);
  return {
    [EntryField.ENVELOPE]: bytes,
    [EntryField.SIGNATURE]: signer.mac(keyId, bytes),
    [EntryField.KEY_ID]: keyIdBytes(keyId),
  };
}

/**
 * The binary encoding of `envelope`, byte for byte what `toBinary` writes, with the same
 * size bound as the codec. The envelope carries the already encoded payload, so it is
 * written directly into one buffer of the exact size (the payload copied once) instead of
 * through the reflective encoder, which grows its buffer by doubling and copies the payload
 * again each time; values the direct path does not cover (negative enums or times,
 * unknown fields) go through the codec.
 */
export function encodeEnvelope(envelope: BusEnvelope): Uint8Array {
  const bytes = encodeEnvelopeDirect(envelope) ?? encodeMessage(BusEnvelopeSchema, envelope, { maxBytes: ENVELOPE_MAX_BYTES });
  if (bytes.length > ENVELOPE_MAX_BYTES) {
    throw new EsperError(
      ErrorCode.MESSAGE_TOO_LARGE,
      `${BusEnvelopeSchema.typeName}: ${bytes.length} bytes exceeds the ${ENVELOPE_MAX_BYTES}-byte bound`,
      { details: { typeName: BusEnvelopeSchema.typeName, bytes: bytes.length, maxBytes: ENVELOPE_MAX_BYTES } },
    );
  }
  return bytes;
}

/** Wire tags of BusEnvelope's fields (`proto/esper/leyline/v1/bus.proto`) and Timestamp's. */
const Tag = {
  MESSAGE_TYPE: (1 << 3) | 0,
  PAYLOAD: (2 << 3) | 2,
  PRIORITY: (4 << 3) | 0,
  CORRELATION_ID: (5 << 3) | 2,
  TRAINING_RUN_ID: (6 << 3) | 2,
  PUBLISHED_AT: (7 << 3) | 2,
  ATTEMPT: (8 << 3) | 0,
  MESSAGE_ID: (9 << 3) | 2,
  SECONDS: (1 << 3) | 0,
  NANOS: (2 << 3) | 0,
} as const;

/** Field numbers of BusEnvelope the direct writer writes (`Tag`). */
export const DIRECT_ENVELOPE_FIELDS: readonly number[] = Object.freeze([1, 2, 4, 5, 6, 7, 8, 9]);

/**
 * Whether the direct writer covers every field the contract declares: a field added to
 * `BusEnvelope` later that the writer does not know would be dropped from the wire, so
 * until the writer learns it every envelope goes through the codec.
 */
const DIRECT_WRITER_CURRENT =
  BusEnvelopeSchema.fields.length === DIRECT_ENVELOPE_FIELDS.length &&
  BusEnvelopeSchema.fields.every((f) => DIRECT_ENVELOPE_FIELDS.includes(f.number));

/** `toBinary`'s bytes for the common envelope, or `undefined` when the codec must write it. */
function encodeEnvelopeDirect(envelope: BusEnvelope): Uint8Array | undefined {
  if (!DIRECT_WRITER_CURRENT || hasUnknown(envelope)) return undefined;
  const { messageType, payload, priority, correlationId, trainingRunId, publishedAt, attempt, messageId } = envelope;
  if (!isNonNegative(messageType, INT32_MAX) || !isNonNegative(priority, INT32_MAX) || !isNonNegative(attempt, UINT32_MAX))
    return undefined;
  let seconds = 0;
  let nanos = 0;
  let timestampBytes = 0;
  if (publishedAt !== undefined) {
    if (hasUnknown(publishedAt)) return undefined;
    seconds = Number(publishedAt.seconds);
    nanos = publishedAt.nanos;
    if (!isNonNegative(seconds, Number.MAX_SAFE_INTEGER) || !isNonNegative(nanos, INT32_MAX)) return undefined;
    timestampBytes = fieldSize(seconds, 1) + fieldSize(nanos, 1);
  }
  const correlationBytes = Buffer.byteLength(correlationId, 'utf8');
  const runBytes = Buffer.byteLength(trainingRunId, 'utf8');
  const messageIdBytes = Buffer.byteLength(messageId, 'utf8');
  const size =
    fieldSize(messageType, 1) +
    (payload.length === 0 ? 0 : 1 + varintSize(payload.length) + payload.length) +
    fieldSize(priority, 1) +
    (correlationBytes === 0 ? 0 : 1 + varintSize(correlationBytes) + correlationBytes) +
    (runBytes === 0 ? 0 : 1 + varintSize(runBytes) + runBytes) +
    (publishedAt === undefined ? 0 : 1 + varintSize(timestampBytes) + timestampBytes) +
    fieldSize(attempt, 1) +
    (messageIdBytes === 0 ? 0 : 1 + varintSize(messageIdBytes) + messageIdBytes);
  // A Buffer, so strings are written in place (`write`); returned as a plain Uint8Array view.
  // From Node's allocation pool when small, as `Buffer.from` does: a fresh ArrayBuffer per
  // envelope costs more than writing it, mostly in garbage collection.
  const out = Buffer.allocUnsafe(size);
  let at = writeScalar(out, 0, Tag.MESSAGE_TYPE, messageType);
  if (payload.length > 0) {
    out[at++] = Tag.PAYLOAD;
    at = writeVarint(out, at, payload.length);
    out.set(payload, at);
    at += payload.length;
  }
  at = writeScalar(out, at, Tag.PRIORITY, priority);
  at = writeString(out, at, Tag.CORRELATION_ID, correlationId, correlationBytes);
  at = writeString(out, at, Tag.TRAINING_RUN_ID, trainingRunId, runBytes);
  if (publishedAt !== undefined) {
    out[at++] = Tag.PUBLISHED_AT;
    at = writeVarint(out, at, timestampBytes);
    at = writeScalar(out, at, Tag.SECONDS, seconds);
    at = writeScalar(out, at, Tag.NANOS, nanos);
  }
  at = writeScalar(out, at, Tag.ATTEMPT, attempt);
  at = writeString(out, at, Tag.MESSAGE_ID, messageId, messageIdBytes);
  if (at !== size) return undefined;
  return new Uint8Array(out.buffer, out.byteOffset, size);
}

/** Writes `value` as a varint at `at`; returns the position after it. */
function writeVarint(out: Uint8Array, at: number, value: number): number {
  let rest = value;
  let position = at;
  while (rest >= 0x80) {
    out[position++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  out[position++] = rest;
  return position;
}

/** A varint field (one-byte tag), skipped when `value` is the default 0. */
function writeScalar(out: Uint8Array, at: number, tag: number, value: number): number {
  if (value === 0) return at;
  out[at] = tag;
  return writeVarint(out, at + 1, value);
}

/** A string field (one-byte tag) of `bytes` UTF-8 bytes, skipped when empty. */
function writeString(out: Buffer, at: number, tag: number, value: string, bytes: number): number {
  if (bytes === 0) return at;
  out[at] = tag;
  const start = writeVarint(out, at + 1, bytes);
  return start + out.write(value, start, bytes, 'utf8');
}

function hasUnknown(message: { readonly $unknown?: readonly unknown[] }): boolean {
  return message.$unknown !== undefined && message.$unknown.length > 0;
}

const INT32_MAX = 0x7fff_ffff;
const UINT32_MAX = 0xffff_ffff;

/** An integer in [0, max]: `toBinary` writes it as a plain varint. */
function isNonNegative(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max;
}

function varintSize(value: number): number {
  let size = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) size += 1;
  return size;
}

/** Bytes of a varint field with a one-byte tag; 0 for the default value (not written). */
function fieldSize(value: number, tagBytes: number): number {
  return value === 0 ? 0 : tagBytes + varintSize(value);
}

/** UTF-8 of the key ids sealed with so far (a ring holds a handful). */
const keyIdCache = new Map<string, Uint8Array>();
const KEY_ID_CACHE_MAX = 64;

/** The UTF-8 bytes of `keyId`, a copy per entry (entries never share a mutable array). */
function keyIdBytes(keyId: string): Uint8Array {
  let bytes = keyIdCache.get(keyId);
  if (bytes === undefined) {
    bytes = utf8.encode(keyId);
    if (keyIdCache.size < KEY_ID_CACHE_MAX) keyIdCache.set(keyId, bytes);
  }
  return bytes.slice();
}

/** A key id from its bytes, strictly UTF-8 (throws on malformed bytes); ASCII read directly. */
function decodeKeyId(bytes: Uint8Array): string {
  let ascii = '';
  for (let i = 0; i < bytes.length; i += 1) {
    const byte = bytes[i] as number;
    if (byte >= 0x80) return strictUtf8.decode(bytes);
    ascii += String.fromCharCode(byte);
  }
  return ascii;
}

/** An entry that passed {@link openEntry}. */
export interface OpenedEntry {
  readonly ok: true;
  readonly envelope: BusEnvelope;
  readonly type: BusMessageType;
  readonly message: BusMessage;
  /** Wall ms of the original publish (0 when unset). */
  readonly publishedAtMs: number;
}

/** An entry that failed {@link openEntry}. */
export interface RejectedEntry {
  readonly ok: false;
  readonly reason: DeadLetterReason;
  readonly detail: string;
}

/** Whether `reason` is a signature problem (CRITICAL `signature_invalid`). */
export function isSignatureReason(reason: DeadLetterReason): boolean {
  return (
    reason === DeadLetterReason.MISSING_SIGNATURE || reason === DeadLetterReason.UNKNOWN_KEY || reason === DeadLetterReason.BAD_SIGNATURE
  );
}

/** Verifies and decodes one entry (see the module doc for the order of checks). */
export function openEntry(signer: HmacSigner, fields: EntryFields): OpenedEntry | RejectedEntry {
  const bytes = fields[EntryField.ENVELOPE];
  if (bytes === undefined) return reject(DeadLetterReason.MALFORMED, 'entry has no envelope field');
  const signature = fields[EntryField.SIGNATURE];
  const keyIdBytes = fields[EntryField.KEY_ID];
  if (signature === undefined || keyIdBytes === undefined) {
    return reject(DeadLetterReason.MISSING_SIGNATURE, 'entry has no signature or key id');
  }
  let keyId: string;
  try {
    keyId = decodeKeyId(keyIdBytes);
  } catch {
    return reject(DeadLetterReason.UNKNOWN_KEY, 'key id is not UTF-8');
  }
  if (!signer.keyRing.has(keyId)) return reject(DeadLetterReason.UNKNOWN_KEY, `unknown key id ${JSON.stringify(keyId)}`);
  if (!signer.macMatches(keyId, bytes, signature)) {
    return reject(DeadLetterReason.BAD_SIGNATURE, `signature does not match (key ${keyId}, ${signature.length} bytes)`);
  }
  let envelope: BusEnvelope;
  try {
    envelope = decodeMessage(BusEnvelopeSchema, bytes, { maxBytes: ENVELOPE_MAX_BYTES });
  } catch (error) {
    return reject(DeadLetterReason.MALFORMED, `envelope: ${describeError(error)}`);
  }
  if (envelope.attempt < 1) return reject(DeadLetterReason.MALFORMED, `envelope attempt ${envelope.attempt} < 1`);
  if (envelope.messageId.length === 0) return reject(DeadLetterReason.MALFORMED, 'envelope has no message_id');
  const type = envelope.messageType;
  const schema = schemaForBusMessageType(type);
  if (schema === undefined) return reject(DeadLetterReason.UNKNOWN_TYPE, `unknown message type ${type}`);
  let message: BusMessage;
  try {
    message = decodeMessage(schema, envelope.payload) as BusMessage;
  } catch (error) {
    return reject(DeadLetterReason.MALFORMED, `payload (${schema.typeName}): ${describeError(error)}`);
  }
  const publishedAtMs = envelope.publishedAt === undefined ? 0 : timestampMs(envelope.publishedAt);
  return { ok: true, envelope, type, message, publishedAtMs };
}

/** Where an entry was read and why it is dead-lettered. */
export interface DeadLetterInfo {
  readonly reason: DeadLetterReason;
  readonly detail: string;
  /** Physical stream it was read from. */
  readonly from: string;
  /** Its entry id there. */
  readonly id: string;
  readonly group: string;
}

/**
 * The dead-letter entry for `original`: its `e`, `s` and `k` (those present) kept
 * byte-for-byte, plus the reason, detail (truncated), source stream, entry id and group.
 */
export function deadLetterFields(original: EntryFields, info: DeadLetterInfo): EntryFields {
  const fields: Record<string, Uint8Array> = {};
  for (const name of Object.values(EntryField)) {
    const value = original[name];
    if (value !== undefined) fields[name] = value;
  }
  const detail =
    info.detail.length <= DEAD_LETTER_DETAIL_MAX_CHARS ? info.detail : `${info.detail.slice(0, DEAD_LETTER_DETAIL_MAX_CHARS - 1)}…`;
  fields[DeadLetterField.REASON] = utf8.encode(info.reason);
  fields[DeadLetterField.DETAIL] = utf8.encode(detail);
  fields[DeadLetterField.FROM] = utf8.encode(info.from);
  fields[DeadLetterField.ID] = utf8.encode(info.id);
  fields[DeadLetterField.GROUP] = utf8.encode(info.group);
  return fields;
}

/** The text fields of a dead-letter entry (missing ones read as empty strings). */
export function readDeadLetter(fields: EntryFields): {
  readonly reason: string;
  readonly detail: string;
  readonly from: string;
  readonly id: string;
  readonly group: string;
} {
  const text = (name: string): string => {
    const value = fields[name];
    return value === undefined ? '' : lenientUtf8.decode(value);
  };
  return {
    reason: text(DeadLetterField.REASON),
    detail: text(DeadLetterField.DETAIL),
    from: text(DeadLetterField.FROM),
    id: text(DeadLetterField.ID),
    group: text(DeadLetterField.GROUP),
  };
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lenientUtf8 = new TextDecoder('utf-8');

function reject(reason: DeadLetterReason, detail: string): RejectedEntry {
  return { ok: false, reason, detail };
}
