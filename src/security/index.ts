/**
 * Security: key ring, HMAC signer over canonical bytes, nonce ledger and command
 * verifier. Other subsystems import only from this file.
 */
export { DEFAULT_KEY_ID, KeyRing, MIN_SECRET_BYTES, type KeyEntry } from './key-ring.js';
export { DEFAULT_FRESHNESS_WINDOW_MS, HmacSigner, SIGNATURE_BYTES, type HmacSignerOptions, type SignOptions } from './signer.js';
export {
  CommandVerifier,
  DEFAULT_FUTURE_SKEW_MS,
  DEFAULT_LATENCY_WINDOW_SIZE,
  DEFAULT_MAX_FRESHNESS_WINDOW_MS,
  RejectionReason,
  type CommandVerifierOptions,
  type CommandVerifierSnapshot,
  type VerificationLatencySnapshot,
  type VerificationResult,
} from './command-verifier.js';
export {
  DEFAULT_NONCE_LEDGER_MAX_ENTRIES,
  DEFAULT_NONCE_TTL_SECONDS,
  NonceLedger,
  nonceLedgerMetrics,
  resolveNonceLedgerOptions,
  type DurableNonceLedgerOptions,
  type NonceLedgerOptions,
  type NonceLedgerSnapshot,
  type ResolvedNonceLedgerOptions,
} from './nonce-ledger.js';
export type { NonceRecord, NonceStore, NonceStoreLoad } from './nonce-store.js';
export { FileNonceStore, type FileNonceStoreOptions } from './nonce-file-store.js';
export { RedisNonceStore, type RedisNonceStoreOptions } from './nonce-redis-store.js';
export { SecurityEvent, SecurityMetric, securityMetricName } from './names.js';
export {
  checkSignedMessage,
  clipEchoed,
  decodeSignedMessage,
  MAX_ECHOED_CHARS,
  replayedNonce,
  SignedMessageFailure,
  type SignedMessageProblem,
  type SignedMessageRules,
} from './signed-message.js';
