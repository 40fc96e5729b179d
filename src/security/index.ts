/**
 * Security: key ring, HMAC signer over canonical bytes, nonce ledger and command
 * verifier. Other subsystems import only from this file.
 */
export { DEFAULT_KEY_ID, KeyRing, MIN_SECRET_BYTES, type KeyEntry } from './key-ring.js';
export {
  DEFAULT_FRESHNESS_WINDOW_MS,
  HmacSigner,
  SIGNATURE_BYTES,
  type HmacSignerOptions,
  type SignOptions,
} from './signer.js';
