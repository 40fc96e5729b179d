import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/index.js';
import { AdaptationCommandSchema, PolicyUpdateSchema, type SignedMessageSchema } from '../../src/leyline/index.js';
import { HmacSigner, KeyRing, SignedMessageFailure } from '../../src/security/index.js';
import { decodeSignedMessage } from '../../src/security/signed-message.js';
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
