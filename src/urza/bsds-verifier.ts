/**
 * The signature check of blueprint safety data sheets (BSDS), in Urza so that both Urza
 * (which stores and serves sheets) and Tamiyo (which acts on them) can use it: Urabrask,
 * which signs them, imports Urza, so the check cannot live there.
 */
import { BSDSSchema, canonicalBytes, type BSDS } from '../leyline/index.js';
import { HmacSigner, type KeyRing } from '../security/index.js';

/** Why a sheet failed verification. */
export const BsdsRejection = {
  /** No `security` block or an empty signature. */
  UNSIGNED: 'unsigned',
  /** Signed under a key id the ring does not hold. */
  UNKNOWN_KEY: 'unknown_key',
  /** The signature does not match the sheet's canonical bytes: a signed field was changed. */
  BAD_SIGNATURE: 'bad_signature',
} as const;

/** Union of {@link BsdsRejection} values. */
export type BsdsRejection = (typeof BsdsRejection)[keyof typeof BsdsRejection];

/** Outcome of {@link BsdsVerifier.verify}. */
export type BsdsVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: BsdsRejection };

/** Checks that a sheet is signed, under a known key, and unchanged since. */
export interface BsdsVerifier {
  verify(bsds: BSDS): BsdsVerdict;
}

const OK: BsdsVerdict = Object.freeze({ ok: true });

/**
 * A verifier over every key of `keyRing` (HMAC-SHA256 over the sheet's canonical bytes, the
 * signature of `HmacSigner.sign`). The same ring that signs sheets must be passed to whoever
 * reads them, in this process and in later runs (a configured key, or the var dir's local key).
 */
export function createBsdsVerifier(keyRing: KeyRing): BsdsVerifier {
  const signer = new HmacSigner(keyRing);
  return {
    verify(bsds: BSDS): BsdsVerdict {
      const security = bsds.security;
      if (security === undefined || security.signature.length === 0) return { ok: false, reason: BsdsRejection.UNSIGNED };
      if (!keyRing.has(security.keyId)) return { ok: false, reason: BsdsRejection.UNKNOWN_KEY };
      return signer.macMatches(security.keyId, canonicalBytes(BSDSSchema, bsds), security.signature)
        ? OK
        : { ok: false, reason: BsdsRejection.BAD_SIGNATURE };
    },
  };
}
