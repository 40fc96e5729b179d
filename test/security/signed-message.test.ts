import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock } from '../../src/core/index.js';
import { AdaptationCommandSchema, PolicyUpdateSchema, type SignedMessageSchema } from '../../src/leyline/index.js';
import {
  DEFAULT_FUTURE_SKEW_MS,
  DEFAULT_MAX_FRESHNESS_WINDOW_MS,
  HmacSigner,
  KeyRing,
  NonceLedger,
  resolveSignedMessageRules,
  SignedMessageFailure,
} from '../../src/security/index.js';
import { decodeSignedMessage } from '../../src/security/signed-message.js';
import { thrownBy } from '../support/thrown.js';
import { padVarint, readFields, withValue, writeFields } from '../support/wire.js';

const signer = new HmacSigner(new KeyRing([{ keyId: 'k', secret: Buffer.from('signed-message-test-secret-0001') }]), {
  clock: new FakeClock(),
});

const SIGNED = [
  { schema: AdaptationCommandSchema, message: create(AdaptationCommandSchema, { commandId: 'c-1', trainingRunId: 'run' }) },
  { schema: PolicyUpdateSchema, message: create(PolicyUpdateSchema, { policyId: 'p-1', tamiyoPolicyVersion: 'v2' }) },
] as const;

/** `bytes` with the security block's fields edited. */
function editSecurity(
  schema: SignedMessageSchema,
  bytes: Uint8Array,
  edit: (fields: ReturnType<typeof readFields>) => typeof fields,
): Uint8Array {
  const fields = readFields(bytes);
  const at = fields.findIndex((f) => f.number === schema.field.security.number);
  fields[at] = withValue(fields[at]!, writeFields(edit(readFields(fields[at]!.value))));
  return writeFields(fields);
}

describe('decodeSignedMessage', () => {
  for (const { schema, message } of SIGNED) {
    it(`returns the canonical bytes of a signed ${schema.name}`, () => {
      const { bytes, message: signed } = signer.signEncoded(schema as SignedMessageSchema, message as never);
      const decoded = decodeSignedMessage(schema as SignedMessageSchema, bytes);
      expect(decoded.ok).toBe(true);
      expect(decoded.ok && toBinary(schema as never, decoded.message as never)).toEqual(toBinary(schema as never, signed as never));
    });

    it(`refuses a ${schema.name} whose signature was moved or whose lengths are padded (non_canonical_encoding)`, () => {
      const { bytes } = signer.signEncoded(schema as SignedMessageSchema, message as never);
      const moved = editSecurity(schema, bytes, (fields) => [...fields.slice(1), fields[0]!]);
      const padded = editSecurity(schema, bytes, ([signature, ...rest]) => [
        { ...signature!, length: padVarint(signature!.length!) },
        ...rest,
      ]);
      for (const reframed of [moved, padded]) {
        const decoded = decodeSignedMessage(schema as SignedMessageSchema, reframed);
        expect(decoded.ok).toBe(false);
        expect(!decoded.ok && decoded.problem.failure).toBe(SignedMessageFailure.NON_CANONICAL_ENCODING);
      }
    });
  }
});

describe('resolveSignedMessageRules', () => {
  const clock = new FakeClock();
  const base = { signer, clock, noun: 'command' };

  it('fills the default window and skew', () => {
    const ledger = new NonceLedger({ clock });
    expect(resolveSignedMessageRules('Verifier', { ...base, ledger })).toMatchObject({
      maxFreshnessWindowMs: DEFAULT_MAX_FRESHNESS_WINDOW_MS,
      futureSkewMs: DEFAULT_FUTURE_SKEW_MS,
      ledger,
      noun: 'command',
    });
  });

  it.each([
    [{ maxFreshnessWindowMs: 0 }, 'maxFreshnessWindowMs'],
    [{ futureSkewMs: -1 }, 'futureSkewMs'],
    [{ maxFreshnessWindowMs: 300_000 }, 'ledger'],
  ])('refuses %j naming the field and the owner', (overrides, field) => {
    const ledger = new NonceLedger({ clock, ttlSeconds: 300 });
    const error = thrownBy(() => resolveSignedMessageRules('Verifier', { ...base, ledger, ...overrides }), ErrorCode.INVALID_ARGUMENT);
    expect(error.details).toMatchObject({ owner: 'Verifier', field });
  });
});
