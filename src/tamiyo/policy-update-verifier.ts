/**
 * Verifies a signed `PolicyUpdate` from Simic (reference prototype-tamiyo-simic §13, §15.6;
 * spec 00 §4 "Learning loop"). Checks run in a fixed order and the first failure wins,
 * each a distinct {@link PolicyUpdateRejection}:
 *
 * 1. (`verifyEncoded` only) `decode_failed`, `non_canonical_encoding`;
 * 2. security — the shared signed-message checks of `src/security/signed-message.ts`
 *    (key, signature, freshness, nonce);
 * 3. content: `architecture_mismatch`, `missing_version` / `version_not_newer`,
 *    `checksum_mismatch`, `invalid_payload` (a payload whose header names another GNN config
 *    is `architecture_mismatch`, read before any tensor is allocated), `validation_failed`.
 *
 * The nonce is registered only once every check passed, so a rejected update never
 * consumes one. Each rejection emits one `policy_update_rejected` event — CRITICAL for the
 * security reasons, ERROR for the content reasons — and is returned, never thrown.
 */
import {
  optionChecks,
  buildTelemetryPacket,
  errorMessage,
  invalidOption,
  systemClock,
  type Clock,
  type MetricInput,
  type TelemetrySink,
} from '../core/index.js';
import { PolicyUpdateSchema, TelemetryLevel, type PolicyUpdate, type PolicyValidationSummary } from '../leyline/index.js';
import {
  checkSignedMessage,
  clipEchoed as clip,
  decodeSignedMessage,
  replayedNonce,
  resolveSignedMessageRules,
  SignedMessageFailure,
  type HmacSigner,
  type NonceLedger,
  type SignedMessageProblem,
  type SignedMessageRules,
} from '../security/index.js';
import type { GnnConfig } from './gnn-config.js';
import { PolicyUpdateEvent, PolicyUpdateMetric, TAMIYO_TELEMETRY_SOURCE } from './names.js';
import {
  configOfArchitecture,
  loadPolicy,
  POLICY_ARCHITECTURE_ID,
  POLICY_ARCHITECTURE_VERSION,
  policyDigest,
  readPolicyFrame,
  type LoadedPolicy,
} from './policy-weights.js';

/** Why an update was rejected, in verification order. */
export const PolicyUpdateRejection = {
  DECODE_FAILED: 'decode_failed',
  NON_CANONICAL_ENCODING: 'non_canonical_encoding',
  MISSING_SECURITY: 'missing_security',
  UNKNOWN_KEY_ID: 'unknown_key_id',
  MISSING_SIGNATURE: 'missing_signature',
  MALFORMED_SIGNATURE: 'malformed_signature',
  INVALID_SIGNATURE: 'invalid_signature',
  MISSING_TIMESTAMP: 'missing_timestamp',
  STALE_UPDATE: 'stale_update',
  FUTURE_UPDATE: 'future_update',
  MISSING_NONCE: 'missing_nonce',
  NONCE_REPLAYED: 'nonce_replayed',
  ARCHITECTURE_MISMATCH: 'architecture_mismatch',
  MISSING_VERSION: 'missing_version',
  VERSION_NOT_NEWER: 'version_not_newer',
  CHECKSUM_MISMATCH: 'checksum_mismatch',
  INVALID_PAYLOAD: 'invalid_payload',
  VALIDATION_FAILED: 'validation_failed',
  /** The payload is larger than `maxPayloadBytes` (checked first, before any other work). */
  PAYLOAD_TOO_LARGE: 'payload_too_large',
} as const;

/** One of the {@link PolicyUpdateRejection} values. */
export type PolicyUpdateRejection = (typeof PolicyUpdateRejection)[keyof typeof PolicyUpdateRejection];

const REASONS: readonly PolicyUpdateRejection[] = Object.values(PolicyUpdateRejection);

/** Reasons about authenticity or replay: their rejection event is CRITICAL, the rest ERROR. */
const SECURITY_REASONS: ReadonlySet<PolicyUpdateRejection> = new Set([
  PolicyUpdateRejection.DECODE_FAILED,
  PolicyUpdateRejection.NON_CANONICAL_ENCODING,
  PolicyUpdateRejection.MISSING_SECURITY,
  PolicyUpdateRejection.UNKNOWN_KEY_ID,
  PolicyUpdateRejection.MISSING_SIGNATURE,
  PolicyUpdateRejection.MALFORMED_SIGNATURE,
  PolicyUpdateRejection.INVALID_SIGNATURE,
  PolicyUpdateRejection.MISSING_TIMESTAMP,
  PolicyUpdateRejection.STALE_UPDATE,
  PolicyUpdateRejection.FUTURE_UPDATE,
  PolicyUpdateRejection.MISSING_NONCE,
  PolicyUpdateRejection.NONCE_REPLAYED,
]);

/** Options of {@link PolicyUpdateVerifier}. */
export interface PolicyUpdateVerifierOptions {
  /** Checks signatures; holds the key ring. */
  readonly signer: HmacSigner;
  /** Remembers nonces; its TTL must cover the freshness window plus the future skew. */
  readonly ledger: NonceLedger;
  /** Where `policy_update_rejected` packets go. */
  readonly telemetry: TelemetrySink;
  /** Wall time for freshness and telemetry. @default systemClock */
  readonly clock?: Clock;
  /** {@link architectureOf} the live policy's config; payloads must match it exactly. */
  readonly expectedArchitecture: string;
  /**
   * Freshness window used when an update carries none, and the cap on the window an
   * update carries, in ms.
   * @default 60_000
   */
  readonly maxFreshnessWindowMs?: number;
  /** How far `security.issued_at` may lie ahead of the wall clock, in ms. @default 5_000 */
  readonly futureSkewMs?: number;
  /** Largest payload accepted, in bytes. @default 3.5 MiB ({@link DEFAULT_MAX_POLICY_PAYLOAD_BYTES}) */
  readonly maxPayloadBytes?: number;
}

/**
 * Default cap on a policy update's payload: 3.5 MiB — above Tamiyo's default GNN (about
 * 2.7 MB serialised), under the bus's 4 MiB bound on a whole message with room for the rest
 * of the update and its envelope (the bus refuses bigger messages at publish).
 */
export const DEFAULT_MAX_POLICY_PAYLOAD_BYTES = 3.5 * 1024 * 1024;

/**
 * Result of a verification. On success the caller owns `loaded.gnn` (stage it in a
 * {@link PolicySlot} or dispose it).
 */
export type PolicyUpdateVerification =
  | { readonly ok: true; readonly loaded: LoadedPolicy; readonly update: PolicyUpdate }
  | { readonly ok: false; readonly reason: PolicyUpdateRejection; readonly detail: string };

/** Counters of a {@link PolicyUpdateVerifier}. */
export interface PolicyUpdateVerifierSnapshot {
  readonly acceptedTotal: number;
  /** Sum of {@link PolicyUpdateVerifierSnapshot.rejectionsByReason}. */
  readonly rejectedTotal: number;
  /** Every reason, zero included. */
  readonly rejectionsByReason: Readonly<Record<PolicyUpdateRejection, number>>;
}

type Rejection = { readonly reason: PolicyUpdateRejection; readonly detail: string };

/** The shared signed-message checks' failures under the update's names. */
const REASON_OF: Readonly<Record<SignedMessageFailure, PolicyUpdateRejection>> = {
  [SignedMessageFailure.DECODE_FAILED]: PolicyUpdateRejection.DECODE_FAILED,
  [SignedMessageFailure.NON_CANONICAL_ENCODING]: PolicyUpdateRejection.NON_CANONICAL_ENCODING,
  [SignedMessageFailure.MISSING_SECURITY]: PolicyUpdateRejection.MISSING_SECURITY,
  [SignedMessageFailure.UNKNOWN_KEY_ID]: PolicyUpdateRejection.UNKNOWN_KEY_ID,
  [SignedMessageFailure.MISSING_SIGNATURE]: PolicyUpdateRejection.MISSING_SIGNATURE,
  [SignedMessageFailure.MALFORMED_SIGNATURE]: PolicyUpdateRejection.MALFORMED_SIGNATURE,
  [SignedMessageFailure.INVALID_SIGNATURE]: PolicyUpdateRejection.INVALID_SIGNATURE,
  [SignedMessageFailure.MISSING_TIMESTAMP]: PolicyUpdateRejection.MISSING_TIMESTAMP,
  [SignedMessageFailure.STALE]: PolicyUpdateRejection.STALE_UPDATE,
  [SignedMessageFailure.FUTURE]: PolicyUpdateRejection.FUTURE_UPDATE,
  [SignedMessageFailure.MISSING_NONCE]: PolicyUpdateRejection.MISSING_NONCE,
  [SignedMessageFailure.NONCE_REPLAYED]: PolicyUpdateRejection.NONCE_REPLAYED,
};

function rejectionOf(problem: SignedMessageProblem): Rejection {
  return { reason: REASON_OF[problem.failure], detail: problem.detail };
}

/** Verifies signed {@link PolicyUpdate}s (see the module doc for the order). */
export class PolicyUpdateVerifier {
  readonly #ledger: NonceLedger;
  readonly #telemetry: TelemetrySink;
  readonly #clock: Clock;
  readonly #expectedArchitecture: string;
  readonly #expectedConfig: GnnConfig;
  readonly #rules: SignedMessageRules;
  readonly #maxPayloadBytes: number;
  #acceptedTotal = 0;
  readonly #rejections = Object.fromEntries(REASONS.map((r) => [r, 0])) as Record<PolicyUpdateRejection, number>;

  constructor(options: PolicyUpdateVerifierOptions) {
    this.#ledger = options.ledger;
    this.#telemetry = options.telemetry;
    this.#clock = options.clock ?? systemClock;
    this.#expectedArchitecture = options.expectedArchitecture;
    this.#maxPayloadBytes = optionChecks('PolicyUpdateVerifier').integer(
      'maxPayloadBytes',
      options.maxPayloadBytes ?? DEFAULT_MAX_POLICY_PAYLOAD_BYTES,
      {
        min: 1,
      },
    );
    try {
      this.#expectedConfig = configOfArchitecture(options.expectedArchitecture);
    } catch (error) {
      throw invalidOption(
        'PolicyUpdateVerifier',
        'expectedArchitecture',
        `an architecture string (${errorMessage(error)})`,
        options.expectedArchitecture,
      );
    }
    // The freshness window > 0, the skew ≥ 0 and a nonce TTL covering window + skew, checked
    // by the same rules as the command verifier's.
    this.#rules = resolveSignedMessageRules('PolicyUpdateVerifier', {
      signer: options.signer,
      ledger: this.#ledger,
      clock: this.#clock,
      maxFreshnessWindowMs: options.maxFreshnessWindowMs,
      futureSkewMs: options.futureSkewMs,
      noun: 'update',
    });
  }

  /** The architecture string payloads must carry. */
  get expectedArchitecture(): string {
    return this.#expectedArchitecture;
  }

  /**
   * Verifies a decoded update against the live policy's `currentVersion` and loads its
   * weights. Never throws for a bad update. It cannot see how the update was encoded:
   * callers holding the received bytes use {@link PolicyUpdateVerifier.verifyEncoded}.
   */
  verify(update: PolicyUpdate, currentVersion: string): PolicyUpdateVerification {
    return this.#verify(update, currentVersion, undefined);
  }

  /**
   * Decodes `bytes` strictly, then verifies as {@link PolicyUpdateVerifier.verify} with the
   * MAC checked over the received bytes (signature cut out), so any change to a signed
   * update's bytes — even one the decoder would normalise — is rejected.
   */
  verifyEncoded(bytes: Uint8Array, currentVersion: string): PolicyUpdateVerification {
    const decoded = decodeSignedMessage(PolicyUpdateSchema, bytes);
    if (!decoded.ok) return this.#reject(decoded.message, rejectionOf(decoded.problem));
    return this.#verify(decoded.message, currentVersion, decoded.signedBytes);
  }

  /** Counters by outcome and reason. */
  snapshot(): PolicyUpdateVerifierSnapshot {
    return {
      acceptedTotal: this.#acceptedTotal,
      rejectedTotal: REASONS.reduce((sum, r) => sum + this.#rejections[r], 0),
      rejectionsByReason: { ...this.#rejections },
    };
  }

  /** `tamiyo.policy_update.accepted_total` and `tamiyo.policy_update.rejected_total{reason}`. */
  metrics(): MetricInput[] {
    return [
      { name: PolicyUpdateMetric.ACCEPTED_TOTAL, value: this.#acceptedTotal, unit: 'count' },
      ...REASONS.map((reason) => ({
        name: PolicyUpdateMetric.REJECTED_TOTAL,
        value: this.#rejections[reason],
        unit: 'count',
        attributes: { reason },
      })),
    ];
  }

  #verify(update: PolicyUpdate, currentVersion: string, signedBytes: Uint8Array | undefined): PolicyUpdateVerification {
    // Before the MAC: an oversized update costs nothing more than this comparison.
    if (update.payload.length > this.#maxPayloadBytes) {
      return this.#reject(update, {
        reason: PolicyUpdateRejection.PAYLOAD_TOO_LARGE,
        detail: `payload of ${update.payload.length} bytes is over the ${this.#maxPayloadBytes}-byte limit`,
      });
    }
    const problem = checkSignedMessage(PolicyUpdateSchema, update, this.#rules, signedBytes);
    if (problem !== undefined) return this.#reject(update, rejectionOf(problem));
    const content = this.#checkContent(update, currentVersion);
    if ('reason' in content) return this.#reject(update, content);
    // Registered last: a rejected update never consumes its nonce. The shared checks saw it
    // unseen and nothing ran in between, so this cannot fail; kept as a guard.
    const nonce = (update.security as { nonce: string }).nonce;
    if (!this.#ledger.register(nonce)) {
      content.gnn.dispose();
      return this.#reject(update, rejectionOf(replayedNonce(nonce)));
    }
    this.#acceptedTotal += 1;
    return { ok: true, loaded: content, update };
  }

  /** Step 3: architecture, version, checksum, payload, validation. Returns the loaded policy. */
  #checkContent(update: PolicyUpdate, currentVersion: string): Rejection | LoadedPolicy {
    const architecture = update.architecture;
    if (architecture === undefined) {
      return { reason: PolicyUpdateRejection.ARCHITECTURE_MISMATCH, detail: 'architecture is unset' };
    }
    if (architecture.id !== POLICY_ARCHITECTURE_ID || architecture.version !== POLICY_ARCHITECTURE_VERSION) {
      return {
        reason: PolicyUpdateRejection.ARCHITECTURE_MISMATCH,
        detail:
          `architecture ${JSON.stringify(clip(architecture.id))} v${architecture.version}; ` +
          `expected ${JSON.stringify(POLICY_ARCHITECTURE_ID)} v${POLICY_ARCHITECTURE_VERSION}`,
      };
    }

    const version = update.tamiyoPolicyVersion;
    if (version.length === 0) {
      return { reason: PolicyUpdateRejection.MISSING_VERSION, detail: 'tamiyo_policy_version is empty' };
    }
    if (version === currentVersion) {
      return {
        reason: PolicyUpdateRejection.VERSION_NOT_NEWER,
        detail: `tamiyo_policy_version ${JSON.stringify(clip(version))} is the live version`,
      };
    }

    const payload = update.payload;
    if (!bytesEqual(update.checksum, policyDigest(payload))) {
      return {
        reason: PolicyUpdateRejection.CHECKSUM_MISMATCH,
        detail: `checksum (${update.checksum.length} bytes) is not the SHA-256 of the ${payload.length}-byte payload`,
      };
    }

    // The header first: a payload for another config is refused before any tensor exists.
    const source = `policy update ${JSON.stringify(clip(update.policyId))} payload`;
    let header: { readonly architecture: string; readonly version: string };
    try {
      header = readPolicyFrame(payload, source).header;
    } catch (error) {
      return { reason: PolicyUpdateRejection.INVALID_PAYLOAD, detail: errorMessage(error) };
    }
    if (header.architecture !== this.#expectedArchitecture) {
      return {
        reason: PolicyUpdateRejection.ARCHITECTURE_MISMATCH,
        detail: 'payload weights are for a different GNN config than the live policy',
      };
    }
    if (header.version !== version) {
      return {
        reason: PolicyUpdateRejection.INVALID_PAYLOAD,
        detail: `payload is version ${JSON.stringify(clip(header.version))}, update says ${JSON.stringify(clip(version))}`,
      };
    }
    let loaded: LoadedPolicy;
    try {
      // loadPolicy leaves nothing allocated when it throws.
      loaded = loadPolicy(payload, this.#expectedConfig, source);
    } catch (error) {
      return { reason: PolicyUpdateRejection.INVALID_PAYLOAD, detail: errorMessage(error) };
    }

    const failed = failedValidation(update.validation);
    if (failed !== undefined) {
      loaded.gnn.dispose();
      return { reason: PolicyUpdateRejection.VALIDATION_FAILED, detail: failed };
    }
    return loaded;
  }

  #reject(update: PolicyUpdate | undefined, { reason, detail }: Rejection): PolicyUpdateVerification {
    this.#rejections[reason] += 1;
    const trainingRunId = clip(update?.trainingRunId ?? '');
    this.#telemetry.emit(
      buildTelemetryPacket({
        source: TAMIYO_TELEMETRY_SOURCE,
        clock: this.#clock,
        trainingRunId,
        events: [
          {
            description: PolicyUpdateEvent.REJECTED,
            level: SECURITY_REASONS.has(reason) ? TelemetryLevel.CRITICAL : TelemetryLevel.ERROR,
            attributes: {
              reason,
              detail,
              policy_id: clip(update?.policyId ?? ''),
              version: clip(update?.tamiyoPolicyVersion ?? ''),
              key_id: clip(update?.security?.keyId ?? ''),
              training_run_id: trainingRunId,
            },
          },
        ],
      }),
    );
    return { ok: false, reason, detail };
  }
}

/** Why a validation summary failed, or undefined when it is absent or passed. */
function failedValidation(summary: PolicyValidationSummary | undefined): string | undefined {
  if (summary === undefined) return undefined;
  const failedChecks = summary.checks.filter((check) => !check.passed).map((check) => clip(check.name));
  if (summary.passed && failedChecks.length === 0) return undefined;
  const checks = failedChecks.length === 0 ? '' : `; failed checks: ${failedChecks.slice(0, 8).join(', ')}`;
  // A "passed" summary that lists a failed check contradicts itself; refuse it too.
  return `${summary.passed ? 'validation summary is inconsistent' : 'validation failed'}${checks}`;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}
