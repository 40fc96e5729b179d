import { clone, create, equals, toBinary, type MessageShape } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AdaptationCommandSchema,
  BSDSSchema,
  canonicalBytes,
  CommandSecuritySchema,
  PolicyUpdateSchema,
  encodingWithSignature,
  signedBytesIfCanonical,
  type SignedMessageSchema,
} from '../../src/leyline/index.js';
import { decodeMessage } from '../../src/core/index.js';
import { arbitraryMessage } from '../support/arbitrary-message.js';
import { reframe, reframingArbitrary } from '../support/wire.js';

const SIGNED: readonly SignedMessageSchema[] = [AdaptationCommandSchema, PolicyUpdateSchema, BSDSSchema];

describe('canonical bytes', () => {
  for (const schema of SIGNED) {
    const security = schema.field.security.number;

    it(`accepts the encoding of any signed ${schema.name} and gives its canonical bytes`, () => {
      fc.assert(
        fc.property(arbitraryMessage(schema), (message) => {
          const result = signedBytesIfCanonical(schema, message as never, toBinary(schema, message));
          expect(result.ok).toBe(true);
          expect(result.ok && result.bytes).toEqual(canonicalBytes(schema, message as never));
        }),
        { numRuns: 200 },
      );
    });

    it(`refuses any re-framing of a ${schema.name} encoding that decodes to the same message (property)`, () => {
      fc.assert(
        fc.property(arbitraryMessage(schema), reframingArbitrary, fc.boolean(), (message, reframing, inSecurity) => {
          const bytes = toBinary(schema, message);
          const reframed = reframe(bytes, reframing, inSecurity ? security : undefined);
          fc.pre(!equalBytes(reframed, bytes));
          let decoded: MessageShape<typeof schema>;
          try {
            decoded = decodeMessage(schema, reframed);
          } catch {
            return; // not an encoding at all: the strict decoder refuses it first
          }
          // A re-framing that made another message (a list element repeated) is the MAC's job.
          fc.pre(equals(schema, decoded as never, message as never));
          expect(signedBytesIfCanonical(schema, decoded as never, reframed).ok).toBe(false);
        }),
        { numRuns: 300 },
      );
    });
  }

  it('leaves the message as it was', () => {
    const command = create(AdaptationCommandSchema, {
      commandId: 'c-1',
      security: { signature: new Uint8Array(32).fill(7), nonce: 'n', keyId: 'k' },
    });
    const before = clone(AdaptationCommandSchema, command);
    const bytes = canonicalBytes(AdaptationCommandSchema, command);
    expect(equals(AdaptationCommandSchema, command, before)).toBe(true);
    const unsigned = create(AdaptationCommandSchema, { ...before, security: { ...before.security!, signature: new Uint8Array(0) } });
    expect(bytes).toEqual(toBinary(AdaptationCommandSchema, unsigned));
  });

  it('names the first byte where received bytes leave the canonical encoding', () => {
    const command = create(AdaptationCommandSchema, { commandId: 'c-1', security: { signature: new Uint8Array(32), nonce: 'n' } });
    const bytes = toBinary(AdaptationCommandSchema, command);
    const result = signedBytesIfCanonical(AdaptationCommandSchema, command, Uint8Array.from([...bytes, 0x08, 0x01]));
    expect(result).toEqual({
      ok: false,
      problem: `bytes differ from the canonical encoding from byte ${bytes.length} (${bytes.length + 2} bytes received, ${bytes.length} canonical)`,
    });
  });

  it('builds the wire bytes from canonical bytes and signature exactly as toBinary does', () => {
    fc.assert(
      fc.property(arbitraryMessage(AdaptationCommandSchema), fc.uint8Array({ minLength: 32, maxLength: 32 }), (message, signature) => {
        const signed = clone(AdaptationCommandSchema, message);
        signed.security = signed.security ?? create(CommandSecuritySchema);
        signed.security.signature = signature;
        const canonical = canonicalBytes(AdaptationCommandSchema, signed);
        expect(encodingWithSignature(AdaptationCommandSchema, canonical, signature)).toEqual(toBinary(AdaptationCommandSchema, signed));
      }),
      { numRuns: 200 },
    );
  });
});

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
