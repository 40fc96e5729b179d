import { createHmac } from 'node:crypto';
import { clone, create, equals, toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { durationMs, timestampMs } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError } from '../../src/core/index.js';
import { AdaptationCommandSchema, BSDSSchema, canonicalBytes, CommandType, PolicyUpdateSchema } from '../../src/leyline/index.js';
import { KeyRing } from '../../src/security/key-ring.js';
import { arbitraryMessage } from '../support/arbitrary-message.js';
import { DEFAULT_FRESHNESS_WINDOW_MS, HmacSigner, SIGNATURE_BYTES } from '../../src/security/signer.js';

const SECRET_NEW = Buffer.from('new-secret-0123456789abcdef', 'utf8');
const SECRET_OLD = Buffer.from('old-secret-0123456789abcdef', 'utf8');

function ring(): KeyRing {
  return new KeyRing([
    { keyId: 'k-new', secret: SECRET_NEW },
    { keyId: 'k-old', secret: SECRET_OLD },
  ]);
}

function command() {
  return create(AdaptationCommandSchema, {
    version: 1,
    commandId: 'cmd-1',
    commandType: CommandType.COMMAND_SEED,
    targetSeedId: 'seed-0',
    trainingRunId: 'run-1',
  });
}

/** HMAC computed independently of the signer, over the message with the signature emptied. */
function expectedMac(secret: Uint8Array, signed: ReturnType<typeof command>): Uint8Array {
  const unsigned = clone(AdaptationCommandSchema, signed);
  unsigned.security!.signature = new Uint8Array(0);
  return new Uint8Array(createHmac('sha256', secret).update(toBinary(AdaptationCommandSchema, unsigned)).digest());
}

describe('HmacSigner', () => {
  it('fills the security block: active key, command id as nonce, issue time, window', () => {
    const clock = new FakeClock({ wallMs: Date.UTC(2026, 5, 1, 12) });
    const signed = new HmacSigner(ring(), { clock }).sign(AdaptationCommandSchema, command());
    const security = signed.security!;
    expect(security.keyId).toBe('k-new');
    expect(security.nonce).toBe('cmd-1');
    expect(timestampMs(security.issuedAt!)).toBe(Date.UTC(2026, 5, 1, 12));
    expect(durationMs(security.freshnessWindow!)).toBe(DEFAULT_FRESHNESS_WINDOW_MS);
    expect(security.signature).toHaveLength(SIGNATURE_BYTES);
  });

  it('signs the canonical bytes with HMAC-SHA256 of the chosen key', () => {
    const signer = new HmacSigner(ring(), { clock: new FakeClock() });
    const byActive = signer.sign(AdaptationCommandSchema, command());
    expect(byActive.security!.signature).toEqual(expectedMac(SECRET_NEW, byActive));
    const byOld = signer.sign(AdaptationCommandSchema, command(), { keyId: 'k-old' });
    expect(byOld.security!.keyId).toBe('k-old');
    expect(byOld.security!.signature).toEqual(expectedMac(SECRET_OLD, byOld));
  });

  it('does not modify the message it signs', () => {
    const original = command();
    const before = toBinary(AdaptationCommandSchema, original);
    new HmacSigner(ring(), { clock: new FakeClock() }).sign(AdaptationCommandSchema, original);
    expect(original.security).toBeUndefined();
    expect(toBinary(AdaptationCommandSchema, original)).toEqual(before);
  });

  it('replaces an existing security block when re-signing', () => {
    const clock = new FakeClock();
    const signer = new HmacSigner(ring(), { clock });
    const first = signer.sign(AdaptationCommandSchema, command(), { nonce: 'n-1' });
    clock.advance(1_000);
    const second = signer.sign(AdaptationCommandSchema, first);
    expect(second.security!.nonce).toBe('cmd-1');
    expect(timestampMs(second.security!.issuedAt!)).toBe(timestampMs(first.security!.issuedAt!) + 1_000);
    expect(signer.macMatches('k-new', canonicalBytes(AdaptationCommandSchema, second), second.security!.signature)).toBe(true);
  });

  it('uses a random UUID nonce when there is no command id', () => {
    const signer = new HmacSigner(ring(), { clock: new FakeClock() });
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const a = signer.sign(AdaptationCommandSchema, create(AdaptationCommandSchema, {}));
    const b = signer.sign(PolicyUpdateSchema, create(PolicyUpdateSchema, { policyId: 'p-1' }));
    expect(a.security!.nonce).toMatch(uuid);
    expect(b.security!.nonce).toMatch(uuid);
    expect(a.security!.nonce).not.toBe(b.security!.nonce);
  });

  it('honours an explicit nonce and freshness window', () => {
    const signer = new HmacSigner(ring(), { clock: new FakeClock(), freshnessWindowMs: 15_000 });
    const signed = signer.sign(AdaptationCommandSchema, command(), { nonce: 'n-7' });
    expect(signed.security!.nonce).toBe('n-7');
    expect(durationMs(signed.security!.freshnessWindow!)).toBe(15_000);
  });

  it('signs policy updates over their canonical bytes', () => {
    const signer = new HmacSigner(ring(), { clock: new FakeClock() });
    const update = signer.sign(PolicyUpdateSchema, create(PolicyUpdateSchema, { policyId: 'p-1', payload: Uint8Array.of(1, 2, 3) }));
    const bytes = canonicalBytes(PolicyUpdateSchema, update);
    expect(signer.macMatches('k-new', bytes, update.security!.signature)).toBe(true);
  });

  it('refuses to sign or MAC with an unknown key', () => {
    const signer = new HmacSigner(ring(), { clock: new FakeClock() });
    let caught: unknown;
    try {
      signer.sign(AdaptationCommandSchema, command(), { keyId: 'k-missing' });
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.UNKNOWN_KEY)).toBe(true);
    expect(() => signer.mac('k-missing', new Uint8Array(1))).toThrow(/unknown key id/);
  });

  describe('macMatches', () => {
    const signer = new HmacSigner(ring(), { clock: new FakeClock() });
    const bytes = Uint8Array.of(1, 2, 3, 4);
    const mac = signer.mac('k-new', bytes);

    it('accepts the matching MAC', () => {
      expect(signer.macMatches('k-new', bytes, mac)).toBe(true);
    });

    it('rejects a MAC of other bytes, under another key, or with a flipped bit', () => {
      expect(signer.macMatches('k-new', Uint8Array.of(1, 2, 3, 5), mac)).toBe(false);
      expect(signer.macMatches('k-old', bytes, mac)).toBe(false);
      const flipped = Uint8Array.from(mac);
      flipped[31]! ^= 0x80;
      expect(signer.macMatches('k-new', bytes, flipped)).toBe(false);
    });

    it('returns false, without throwing, for an unknown key or a wrong-length signature', () => {
      expect(signer.macMatches('k-missing', bytes, mac)).toBe(false);
      expect(signer.macMatches('k-new', bytes, mac.subarray(0, 31))).toBe(false);
      expect(signer.macMatches('k-new', bytes, new Uint8Array(0))).toBe(false);
      expect(signer.macMatches('k-new', bytes, Uint8Array.from([...mac, 0]))).toBe(false);
    });
  });

  it.each([0, -1, Number.NaN])('refuses a freshness window of %d ms', (freshnessWindowMs) => {
    let caught: unknown;
    try {
      new HmacSigner(ring(), { freshnessWindowMs });
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
  });

  it('exposes its key ring', () => {
    const keys = ring();
    expect(new HmacSigner(keys).keyRing).toBe(keys);
  });
});

describe('HmacSigner.signEncoded', () => {
  for (const schema of [AdaptationCommandSchema, PolicyUpdateSchema, BSDSSchema] as const) {
    it(`returns exactly toBinary of the signed ${schema.name}, without a second encoding`, () => {
      const signer = new HmacSigner(ring(), { clock: new FakeClock() });
      fc.assert(
        fc.property(arbitraryMessage(schema), (message) => {
          const { message: signed, bytes } = signer.signEncoded(schema, message as never, { nonce: 'n-1' });
          expect(bytes).toEqual(toBinary(schema, signed as never));
          expect(equals(schema, signed as never, signer.sign(schema, message as never, { nonce: 'n-1' }) as never)).toBe(true);
        }),
        { numRuns: 100 },
      );
    });
  }
});
