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
import { CONTRACT_LIMITS, decodeMessage, describeError, encodeMessage } from '../core/index.js';
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
  const bytes = encodeMessage(BusEnvelopeSchema, envelope, { maxBytes: ENVELOPE_MAX_BYTES });
  return {
    [EntryField.ENVELOPE]: bytes,
    [EntryField.SIGNATURE]: signer.mac(keyId, bytes),
    [EntryField.KEY_ID]: utf8.encode(keyId),
  };
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
    keyId = strictUtf8.decode(keyIdBytes);
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
