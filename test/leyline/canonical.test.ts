import { clone, create, equals, toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AdaptationCommandSchema,
  BSDSSchema,
  canonicalBytes,
  PolicyUpdateSchema,
  signedBytesOfEncoding,
  type SignedMessageSchema,
} from '../../src/leyline/index.js';
import { arbitraryMessage } from '../support/arbitrary-message.js';

const SIGNED: readonly SignedMessageSchema[] = [AdaptationCommandSchema, PolicyUpdateSchema, BSDSSchema];

describe('canonical bytes', () => {
  for (const schema of SIGNED) {
    it(`cutting the signature out of an encoded ${schema.name} gives its canonical bytes`, () => {
      fc.assert(
        fc.property(arbitraryMessage(schema), (message) => {
          const result = signedBytesOfEncoding(schema, toBinary(schema, message));
          expect(result.ok).toBe(true);
          expect(result.ok && result.bytes).toEqual(canonicalBytes(schema, message as never));
        }),
        { numRuns: 200 },
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

  it('refuses a security block or signature that occurs twice', () => {
    const command = create(AdaptationCommandSchema, { commandId: 'c-1', security: { signature: new Uint8Array(32), nonce: 'n' } });
    const bytes = toBinary(AdaptationCommandSchema, command);
    const security = toBinary(AdaptationCommandSchema, create(AdaptationCommandSchema, { security: command.security }));
    const twice = signedBytesOfEncoding(AdaptationCommandSchema, Uint8Array.from([...bytes, ...security]));
    expect(twice).toEqual({ ok: false, problem: 'security: field 17 occurs more than once' });
    // security { signature, nonce, signature }
    const innerTwice = Uint8Array.from([
      0x8a,
      0x01,
      0x47,
      0x0a,
      0x20,
      ...new Uint8Array(32),
      0x12,
      0x01,
      0x6e,
      0x0a,
      0x20,
      ...new Uint8Array(32),
    ]);
    expect(signedBytesOfEncoding(AdaptationCommandSchema, innerTwice)).toEqual({
      ok: false,
      problem: 'signature: field 1 occurs more than once',
    });
  });

  it('returns the bytes unchanged when there is no signature to cut', () => {
    const bytes = toBinary(AdaptationCommandSchema, create(AdaptationCommandSchema, { commandId: 'c-1' }));
    expect(signedBytesOfEncoding(AdaptationCommandSchema, bytes)).toEqual({ ok: true, bytes });
  });

  it('reports malformed input instead of throwing', () => {
    const result = signedBytesOfEncoding(AdaptationCommandSchema, Uint8Array.from([0x8a, 0x01, 0x7f, 0x00]));
    expect(result.ok).toBe(false);
  });
});
