import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BSDSSchema, HandlingClass, HazardBand, Provenance, ResourceProfile, type BSDS } from '../../src/leyline/index.js';
import { HmacSigner, KeyRing } from '../../src/security/index.js';
import { BsdsRejection, createBsdsVerifier } from '../../src/urza/bsds-verifier.js';

const secret = (text: string): Uint8Array => new TextEncoder().encode(text);
const ring = new KeyRing([
  { keyId: 'urabrask-2026', secret: secret('urabrask-test-secret-0123456789') },
  { keyId: 'old', secret: secret('another-test-secret-9876543210') },
]);
const signer = new HmacSigner(ring);
const verifier = createBsdsVerifier(ring);

function sheet(fields: Partial<Omit<BSDS, '$typeName'>> = {}): BSDS {
  return signer.sign(
    BSDSSchema,
    create(BSDSSchema, {
      version: 1,
      blueprintId: 'BP043',
      riskScore: 0.9,
      hazardBand: HazardBand.CRITICAL,
      handlingClass: HandlingClass.QUARANTINE,
      resourceProfile: ResourceProfile.MIXED,
      recommendation: 'Prefer optimizer downgrade; avoid aggressive grafting',
      issuedAt: timestampFromMs(Date.UTC(2026, 10, 27)),
      provenance: Provenance.URABRASK,
      artifactChecksum: 'ab'.repeat(32),
      ...fields,
    }),
  );
}

describe('createBsdsVerifier', () => {
  it('accepts a signed sheet under any key of the ring, also after a binary round trip', () => {
    const bsds = sheet();
    expect(verifier.verify(bsds)).toEqual({ ok: true });
    expect(verifier.verify(fromBinary(BSDSSchema, toBinary(BSDSSchema, bsds)))).toEqual({ ok: true });
    expect(verifier.verify(signer.sign(BSDSSchema, bsds, { keyId: 'old' }))).toEqual({ ok: true });
  });

  it.each([
    ['a downgraded hazard band', { hazardBand: HazardBand.LOW }],
    ['a relaxed handling class', { handlingClass: HandlingClass.STANDARD }],
    ['a lowered risk score', { riskScore: 0.1 }],
    ['another blueprint id', { blueprintId: 'BP009' }],
    ['another artifact checksum', { artifactChecksum: 'cd'.repeat(32) }],
  ])('rejects %s with the old signature kept as bad_signature', (_label, change) => {
    expect(verifier.verify({ ...sheet(), ...change })).toEqual({ ok: false, reason: BsdsRejection.BAD_SIGNATURE });
  });

  it('rejects an upgrade just as a downgrade: a LOW sheet set to CRITICAL', () => {
    const low = sheet({ hazardBand: HazardBand.LOW, handlingClass: HandlingClass.STANDARD, riskScore: 0.1 });
    expect(verifier.verify({ ...low, hazardBand: HazardBand.CRITICAL })).toEqual({ ok: false, reason: BsdsRejection.BAD_SIGNATURE });
  });

  it('rejects an unsigned sheet, an unknown key id and a sheet signed under another ring', () => {
    const bsds = sheet();
    expect(verifier.verify({ ...bsds, security: undefined })).toEqual({ ok: false, reason: BsdsRejection.UNSIGNED });
    expect(verifier.verify({ ...bsds, security: { ...bsds.security!, signature: new Uint8Array() } })).toEqual({
      ok: false,
      reason: BsdsRejection.UNSIGNED,
    });
    expect(verifier.verify({ ...bsds, security: { ...bsds.security!, keyId: 'missing' } })).toEqual({
      ok: false,
      reason: BsdsRejection.UNKNOWN_KEY,
    });
    const stranger = new HmacSigner(new KeyRing([{ keyId: 'urabrask-2026', secret: secret('a-different-secret-000000000') }]));
    expect(verifier.verify(stranger.sign(BSDSSchema, bsds))).toEqual({ ok: false, reason: BsdsRejection.BAD_SIGNATURE });
  });

  it('rejects every change to the signed fields or the signature (property)', () => {
    const bsds = sheet();
    const encoded = toBinary(BSDSSchema, bsds);
    fc.assert(
      fc.property(
        fc.record({
          riskScore: fc.float({ min: 0, max: 1, noNaN: true }),
          hazardBand: fc.constantFrom(HazardBand.LOW, HazardBand.MEDIUM, HazardBand.HIGH, HazardBand.CRITICAL),
          handlingClass: fc.constantFrom(HandlingClass.STANDARD, HandlingClass.RESTRICTED, HandlingClass.QUARANTINE),
          recommendation: fc.string({ maxLength: 20 }),
        }),
        fc.nat(31),
        (fields, bit) => {
          const changed = { ...bsds, ...fields };
          const same =
            toBinary(BSDSSchema, changed).every((byte, i) => byte === encoded[i]) &&
            toBinary(BSDSSchema, changed).length === encoded.length;
          expect(verifier.verify(changed).ok).toBe(same);
          const signature = Uint8Array.from(bsds.security!.signature);
          signature[bit] = (signature[bit] as number) ^ 1;
          expect(verifier.verify({ ...bsds, security: { ...bsds.security!, signature } }).ok).toBe(false);
        },
      ),
    );
  });
});
