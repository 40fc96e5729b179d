/**
 * Security: key ring, HMAC signer over canonical bytes, nonce ledger (and where it is kept)
 * and command verifier. Other subsystems import only from this file.
 */
export {
  DEFAULT_KEY_ID,
  KeyRing,
  LOCAL_KEY_FILE,
  MIN_SECRET_BYTES,
  openLocalKeyRing,
  type KeyEntry,
  type LocalKeyRing,
} from './key-ring.js';
export { HmacSigner, type SignOptions } from './signer.js';
export { CommandVerifier, RejectionReason, type VerificationResult } from './command-verifier.js';
export { NonceLedger } from './nonce-ledger.js';
export type { NonceStore } from './nonce-store.js';
export { FileNonceStore } from './nonce-file-store.js';
export { RedisNonceStore } from './nonce-redis-store.js';
export { openCommandVerifier, runNonceFile, type CommandVerifierDeps, type OpenedCommandVerifier } from './open-command-verifier.js';
export {
  checkSignedMessage,
  clipEchoed,
  decodeSignedMessage,
  DEFAULT_FUTURE_SKEW_MS,
  DEFAULT_MAX_FRESHNESS_WINDOW_MS,
  replayedNonce,
  resolveSignedMessageRules,
  SignedMessageFailure,
  type SignedMessageProblem,
  type SignedMessageRules,
  type SignedMessageRulesOptions,
} from './signed-message.js';
