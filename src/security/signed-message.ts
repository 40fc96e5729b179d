/**
 * The checks every signed Leyline message gets before anything acts on it (commands,
 * policy updates), in the order `docs/contracts.md` gives. The nonce is checked here but
 * registered by the caller once its own checks passed too, so a rejected message never
 * consumes one.
 */
import type { MessageShape } from '@bufbuild/protobuf';
import { durationMs, timestampMs } from '@bufbuild/protobuf/wkt';
import { decodeMessage, errorMessage, isEsperError, optionChecks, type Clock } from '../core/index.js';
import { canonicalBytes, signedBytesIfCanonical, type SignedMessage, type SignedMessageSchema } from '../leyline/index.js';
import type { NonceLedger } from './nonce-ledger.js';
import { SIGNATURE_BYTES, type HmacSigner } from './signer.js';

/** Why a signed message failed the shared checks. */
export const SignedMessageFailure = {
  DECODE_FAILED: 'decode_failed',
  NON_CANONICAL_ENCODING: 'non_canonical_encoding',
  MISSING_SECURITY: 'missing_security',
  UNKNOWN_KEY_ID: 'unknown_key_id',
  MISSING_SIGNATURE: 'missing_signature',
  MALFORMED_SIGNATURE: 'malformed_signature',
  INVALID_SIGNATURE: 'invalid_signature',
  MISSING_TIMESTAMP: 'missing_timestamp',
  STALE: 'stale',
  FUTURE: 'future',
  MISSING_NONCE: 'missing_nonce',
  NONCE_REPLAYED: 'nonce_replayed',
} as const;

/** One of the {@link SignedMessageFailure} values. */
export type SignedMessageFailure = (typeof SignedMessageFailure)[keyof typeof SignedMessageFailure];

/** A failed check: its reason and a human-readable detail. */
export interface SignedMessageProblem {
  readonly failure: SignedMessageFailure;
  readonly detail: string;
}

/** What the checks need besides the message. */
export interface SignedMessageRules {
  readonly signer: HmacSigner;
  readonly ledger: NonceLedger;
  readonly clock: Clock;
  /** Cap on the message's own freshness window, ms. */
  readonly maxFreshnessWindowMs: number;
  /** How far in the future `issued_at` may be, ms. */
  readonly futureSkewMs: number;
  /** What the message is, for details ("command", "update"). */
  readonly noun: string;
}

/** Default and cap of the freshness window, in ms. */
export const DEFAULT_MAX_FRESHNESS_WINDOW_MS = 60_000;

/** Default tolerated clock skew for messages issued in the future, in ms. */
export const DEFAULT_FUTURE_SKEW_MS = 5_000;

/** What a verifier of signed messages passes to {@link resolveSignedMessageRules}. */
export interface SignedMessageRulesOptions {
  readonly signer: HmacSigner;
  /** Its TTL must cover `maxFreshnessWindowMs + futureSkewMs`. */
  readonly ledger: NonceLedger;
  readonly clock: Clock;
  /** @default 60_000 */
  readonly maxFreshnessWindowMs?: number | undefined;
  /** @default 5_000 */
  readonly futureSkewMs?: number | undefined;
  readonly noun: string;
}

/**
 * The rules of a verifier named `owner`, options checked: the freshness window > 0, the
 * skew ≥ 0, and a ledger that remembers a nonce for as long as its message stays
 * acceptable (from now − skew until `issued_at` + window), or a replay would pass once the
 * nonce is forgotten.
 * @throws EsperError `INVALID_ARGUMENT` naming the field (`ledger` for a short TTL)
 */
export function resolveSignedMessageRules(owner: string, options: SignedMessageRulesOptions): SignedMessageRules {
  const check = optionChecks(owner);
  const maxFreshnessWindowMs = check.positive('maxFreshnessWindowMs', options.maxFreshnessWindowMs ?? DEFAULT_MAX_FRESHNESS_WINDOW_MS);
  const futureSkewMs = check.nonNegative('futureSkewMs', options.futureSkewMs ?? DEFAULT_FUTURE_SKEW_MS);
  const acceptableForMs = maxFreshnessWindowMs + futureSkewMs;
  const { signer, ledger, clock, noun } = options;
  if (ledger.ttlSeconds * 1000 < acceptableForMs) {
    check.fail(
      'ledger',
      `a nonce ledger whose TTL covers maxFreshnessWindowMs + futureSkewMs (${acceptableForMs} ms)`,
      `a TTL of ${ledger.ttlSeconds} s`,
    );
  }
  return { signer, ledger, clock, maxFreshnessWindowMs, futureSkewMs, noun };
}

/** Longest identifier echoed into a detail or a telemetry attribute. */
export const MAX_ECHOED_CHARS = 128;

/** `value`, cut to {@link MAX_ECHOED_CHARS} characters. */
export function clipEchoed(value: string): string {
  return value.length <= MAX_ECHOED_CHARS ? value : `${value.slice(0, MAX_ECHOED_CHARS)}…`;
}

/** The problem of a replayed nonce (also what a caller reports when registering fails). */
export function replayedNonce(nonce: string): SignedMessageProblem {
  return {
    failure: SignedMessageFailure.NONCE_REPLAYED,
    detail: `nonce ${JSON.stringify(clipEchoed(nonce))} was already seen within the TTL`,
  };
}

/**
 * Step 1: decodes `bytes` strictly and requires them to be the canonical encoding of what
 * they decoded to. On success the decoded message and the bytes the MAC covers; on failure
 * the problem, with the message when it decoded.
 */
export function decodeSignedMessage<Desc extends SignedMessageSchema>(
  schema: Desc,
  bytes: Uint8Array,
):
  | { readonly ok: true; readonly message: MessageShape<Desc>; readonly signedBytes: Uint8Array }
  | { readonly ok: false; readonly message?: MessageShape<Desc>; readonly problem: SignedMessageProblem } {
  let message: MessageShape<Desc>;
  try {
    message = decodeMessage(schema, bytes);
  } catch (error) {
    const code = isEsperError(error) ? error.code : 'unexpected';
    return {
      ok: false,
      problem: {
        failure: SignedMessageFailure.DECODE_FAILED,
        detail: `${code}: ${errorMessage(error)}`,
      },
    };
  }
  const signed = signedBytesIfCanonical(schema, message, bytes);
  if (!signed.ok) return { ok: false, message, problem: { failure: SignedMessageFailure.NON_CANONICAL_ENCODING, detail: signed.problem } };
  return { ok: true, message, signedBytes: signed.bytes };
}

/**
 * Steps 2–4 on a decoded message. `signedBytes`: the canonical bytes from
 * {@link decodeSignedMessage}, when the caller decoded received bytes. Returns the first problem, or undefined when every check
 * passed (the nonce is then unseen but not yet registered).
 */
export function checkSignedMessage<Desc extends SignedMessageSchema>(
  schema: Desc,
  message: MessageShape<Desc>,
  rules: SignedMessageRules,
  signedBytes?: Uint8Array,
): SignedMessageProblem | undefined {
  const security = (message as SignedMessage).security;
  if (security === undefined) return { failure: SignedMessageFailure.MISSING_SECURITY, detail: `${rules.noun} has no security block` };
  if (!rules.signer.keyRing.has(security.keyId)) {
    return {
      failure: SignedMessageFailure.UNKNOWN_KEY_ID,
      detail: `key id ${JSON.stringify(clipEchoed(security.keyId))} is not in the key ring`,
    };
  }
  const signature = security.signature;
  if (signature.length === 0) return { failure: SignedMessageFailure.MISSING_SIGNATURE, detail: 'signature is empty' };
  if (signature.length !== SIGNATURE_BYTES) {
    return {
      failure: SignedMessageFailure.MALFORMED_SIGNATURE,
      detail: `signature is ${signature.length} bytes; expected ${SIGNATURE_BYTES}`,
    };
  }
  let signed: Uint8Array;
  try {
    signed = signedBytes ?? canonicalBytes(schema, message);
  } catch (error) {
    // Only a hand-built object can fail to encode, and then it cannot carry a valid MAC.
    return {
      failure: SignedMessageFailure.INVALID_SIGNATURE,
      detail: `${rules.noun} cannot be encoded: ${errorMessage(error)}`,
    };
  }
  if (!rules.signer.macMatches(security.keyId, signed, signature)) {
    return { failure: SignedMessageFailure.INVALID_SIGNATURE, detail: `signature does not match under key ${security.keyId}` };
  }

  if (security.issuedAt === undefined) return { failure: SignedMessageFailure.MISSING_TIMESTAMP, detail: 'security.issued_at is unset' };
  const ageMs = rules.clock.wallMs() - timestampMs(security.issuedAt);
  const windowMs =
    security.freshnessWindow === undefined
      ? rules.maxFreshnessWindowMs
      : Math.min(durationMs(security.freshnessWindow), rules.maxFreshnessWindowMs);
  if (ageMs > windowMs)
    return { failure: SignedMessageFailure.STALE, detail: `issued ${ageMs} ms ago; freshness window is ${windowMs} ms` };
  if (-ageMs > rules.futureSkewMs) {
    return {
      failure: SignedMessageFailure.FUTURE,
      detail: `issued ${-ageMs} ms in the future; tolerated skew is ${rules.futureSkewMs} ms`,
    };
  }

  if (security.nonce.length === 0) return { failure: SignedMessageFailure.MISSING_NONCE, detail: 'security.nonce is empty' };
  if (rules.ledger.has(security.nonce)) return replayedNonce(security.nonce);
  return undefined;
}
