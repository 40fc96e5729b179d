import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import {
  AdaptationCommandSchema,
  BusEnvelopeSchema,
  BusMessageType,
  CommandType,
  MessagePriority,
  type AdaptationCommand,
} from '../../src/leyline/index.js';
import { HmacSigner, KeyRing } from '../../src/security/index.js';
import {
  buildEnvelope,
  deadLetterFields,
  DIRECT_ENVELOPE_FIELDS,
  ENVELOPE_MAX_BYTES,
  encodeBusMessage,
  encodeEnvelope,
  EntryField,
  openEntry,
  readDeadLetter,
  sealEnvelope,
  withAttempt,
} from '../../src/oona/envelope.js';
import type { EntryFields } from '../../src/oona/stream-store.js';

const ring = new KeyRing([
  { keyId: 'active', secret: Buffer.from('active-secret-0123456789', 'utf8') },
  { keyId: 'previous', secret: Buffer.from('previous-secret-0123456789', 'utf8') },
]);
const signer = new HmacSigner(ring);

function command(): AdaptationCommand {
  return create(AdaptationCommandSchema, {
    version: 1,
    commandId: 'cmd-1',
    commandType: CommandType.COMMAND_SEED,
    targetSeedId: 'seed-1',
    trainingRunId: 'run-1',
  });
}

function sealed(keyId = 'active'): EntryFields {
  const { type, payload } = encodeBusMessage(command());
  const envelope = buildEnvelope({
    type,
    payload,
    priority: MessagePriority.NORMAL,
    correlationId: 'corr',
    trainingRunId: 'run-1',
    publishedAtMs: 1_700_000_000_123,
    attempt: 1,
    messageId: 'msg-1',
  });
  return sealEnvelope(signer, keyId, envelope);
}

/** Signs arbitrary envelope bytes the way the bus does. */
function signedRaw(bytes: Uint8Array): EntryFields {
  return {
    [EntryField.ENVELOPE]: bytes,
    [EntryField.SIGNATURE]: signer.mac('active', bytes),
    [EntryField.KEY_ID]: new TextEncoder().encode('active'),
  };
}

describe('bus entries', () => {
  it('round-trips a message through seal and open', () => {
    const opened = openEntry(signer, sealed());
    expect(opened.ok).toBe(true);
    if (!opened.ok) return;
    expect(opened.type).toBe(BusMessageType.ADAPTATION_COMMAND);
    expect(opened.message).toEqual(command());
    expect(opened.envelope).toMatchObject({ correlationId: 'corr', trainingRunId: 'run-1', attempt: 1, messageId: 'msg-1' });
    expect(opened.publishedAtMs).toBe(1_700_000_000_123);
  });

  it('carries a raw 32-byte signature and the key id; any key of the ring verifies', () => {
    const fields = sealed('previous');
    expect(fields[EntryField.SIGNATURE]).toHaveLength(32);
    expect(new TextDecoder().decode(fields[EntryField.KEY_ID])).toBe('previous');
    expect(openEntry(signer, fields).ok).toBe(true);
  });

  it.each([
    ['missing envelope', (f: Record<string, Uint8Array>) => delete f[EntryField.ENVELOPE], 'malformed'],
    ['missing signature', (f: Record<string, Uint8Array>) => delete f[EntryField.SIGNATURE], 'missing_signature'],
    ['missing key id', (f: Record<string, Uint8Array>) => delete f[EntryField.KEY_ID], 'missing_signature'],
    ['unknown key', (f: Record<string, Uint8Array>) => (f[EntryField.KEY_ID] = new TextEncoder().encode('rogue')), 'unknown_key'],
    ['non-UTF-8 key id', (f: Record<string, Uint8Array>) => (f[EntryField.KEY_ID] = Uint8Array.of(0xff, 0xfe)), 'unknown_key'],
    ['flipped signature bit', (f: Record<string, Uint8Array>) => (f[EntryField.SIGNATURE]![0]! ^= 1), 'bad_signature'],
    [
      'short signature',
      (f: Record<string, Uint8Array>) => (f[EntryField.SIGNATURE] = f[EntryField.SIGNATURE]!.slice(0, 16)),
      'bad_signature',
    ],
    ['tampered envelope', (f: Record<string, Uint8Array>) => (f[EntryField.ENVELOPE]![3]! ^= 1), 'bad_signature'],
  ])('rejects an entry with a %s', (_name, tamper, reason) => {
    const fields: Record<string, Uint8Array> = {};
    for (const [k, v] of Object.entries(sealed())) fields[k] = new Uint8Array(v);
    tamper(fields);
    expect(openEntry(signer, fields)).toMatchObject({ ok: false, reason });
  });

  it('rejects signed garbage, unknown types and undecodable payloads as malformed or unknown_type', () => {
    expect(openEntry(signer, signedRaw(Uint8Array.of(0xff, 0xff, 0xff)))).toMatchObject({ ok: false, reason: 'malformed' });
    const base = { payload: new Uint8Array(), priority: MessagePriority.NORMAL, attempt: 1, messageId: 'm' };
    const unknownType = toBinary(BusEnvelopeSchema, create(BusEnvelopeSchema, { ...base, messageType: 99 as BusMessageType }));
    expect(openEntry(signer, signedRaw(unknownType))).toMatchObject({ ok: false, reason: 'unknown_type' });
    const badPayload = toBinary(
      BusEnvelopeSchema,
      create(BusEnvelopeSchema, { ...base, messageType: BusMessageType.ADAPTATION_COMMAND, payload: Uint8Array.of(0x08) }),
    );
    expect(openEntry(signer, signedRaw(badPayload))).toMatchObject({ ok: false, reason: 'malformed' });
    const noAttempt = toBinary(
      BusEnvelopeSchema,
      create(BusEnvelopeSchema, { ...base, attempt: 0, messageType: BusMessageType.ADAPTATION_COMMAND }),
    );
    expect(openEntry(signer, signedRaw(noAttempt))).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('copies an envelope for another attempt keeping id, payload and publish time', () => {
    const opened = openEntry(signer, sealed());
    if (!opened.ok) throw new Error('expected an opened entry');
    const next = withAttempt(opened.envelope, 2);
    expect(next.attempt).toBe(2);
    expect(opened.envelope.attempt).toBe(1);
    expect({ ...next, attempt: 1 }).toEqual(opened.envelope);
  });

  it('keeps e, s and k in a dead-letter entry and adds where it came from and why', () => {
    const original = sealed();
    const fields = deadLetterFields(original, {
      reason: 'handler_failed',
      detail: 'x'.repeat(5_000),
      from: 'oona.normal',
      id: '1-0',
      group: 'g',
    });
    for (const name of Object.values(EntryField)) expect(fields[name]).toEqual(original[name]);
    const info = readDeadLetter(fields);
    expect(info).toMatchObject({ reason: 'handler_failed', from: 'oona.normal', id: '1-0', group: 'g' });
    expect(info.detail.length).toBe(1_000);
  });

  it('refuses to encode a message over a contract bound', () => {
    const big = command();
    big.commandId = 'x'.repeat(5 * 1024 * 1024);
    let caught: unknown;
    try {
      encodeBusMessage(big);
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.MESSAGE_TOO_LARGE)).toBe(true);
  });

  it('writes an envelope byte for byte as toBinary does, for every field combination and size', () => {
    // A deterministic spread: empty and non-empty strings (multi-byte, astral, lone
    // surrogate), payloads across varint length boundaries, enums and attempts at and past
    // one-byte varints, times with and without nanos, no time at all.
    const strings = ['', 'corr-1', 'é😀\ud800x'.repeat(40)];
    const payloadSizes = [0, 1, 127, 128, 16_383, 16_384, 70_000];
    const cases: ReturnType<typeof buildEnvelope>[] = [];
    let n = 0;
    for (const text of strings) {
      for (const size of payloadSizes) {
        for (const attempt of [1, 127, 128, 2 ** 32 - 1]) {
          n += 1;
          const envelope = buildEnvelope({
            type: n % 2 === 0 ? BusMessageType.TELEMETRY : (200 as BusMessageType),
            payload: Uint8Array.from({ length: size }, (_, i) => (i * 31 + n) % 256),
            priority: (n % 5) as MessagePriority,
            correlationId: text,
            trainingRunId: n % 3 === 0 ? '' : `run-${n}`,
            publishedAtMs: n % 4 === 0 ? 0 : 1_700_000_000_000 + n * 7,
            attempt,
            messageId: n % 7 === 0 ? '' : `msg-${n}`,
          });
          if (n % 9 === 0) envelope.publishedAt = undefined;
          cases.push(envelope);
        }
      }
    }
    for (const envelope of cases) expect(encodeEnvelope(envelope)).toEqual(toBinary(BusEnvelopeSchema, envelope));
  });

  it('writes directly exactly the fields the contract declares (a new field would send every envelope through the codec)', () => {
    expect(BusEnvelopeSchema.fields.map((f) => f.number).sort((a, b) => a - b)).toEqual([...DIRECT_ENVELOPE_FIELDS]);
  });

  it('encodes what the direct path does not cover through the codec, with the same size bound', () => {
    const base = { payload: Uint8Array.of(1, 2), priority: MessagePriority.NORMAL, attempt: 1, messageId: 'm' };
    const negative = create(BusEnvelopeSchema, { ...base, messageType: -1 as BusMessageType });
    expect(encodeEnvelope(negative)).toEqual(toBinary(BusEnvelopeSchema, negative));
    const huge = create(BusEnvelopeSchema, { ...base, messageType: BusMessageType.TELEMETRY, payload: new Uint8Array(ENVELOPE_MAX_BYTES) });
    let caught: unknown;
    try {
      encodeEnvelope(huge);
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.MESSAGE_TOO_LARGE)).toBe(true);
  });
});
