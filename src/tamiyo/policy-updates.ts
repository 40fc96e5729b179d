/**
 * Policy updates from Simic: verify a signed `PolicyUpdate`, then hot-swap the GNN it
 * carries between steps (reference prototype-tamiyo-simic §13, §15.6; spec 00 §4
 * "Learning loop").
 *
 * {@link PolicyUpdateVerifier} checks in a fixed order; the first failure wins and names
 * a distinct {@link PolicyUpdateRejection}:
 *
 * 1. (`verifyEncoded` only) `decode_failed`, `non_canonical_encoding`;
 * 2. security — the shared signed-message checks of `src/security/signed-message.ts`:
 *    `missing_security`, `unknown_key_id`, `missing_signature` / `malformed_signature`,
 *    `invalid_signature`, `missing_timestamp`, `stale_update` / `future_update`
 *    (`security.issued_at` against its freshness window), `missing_nonce`,
 *    `nonce_replayed`;
 * 3. content: `architecture_mismatch` (the `architecture` message's id/version), then
 *    `missing_version` / `version_not_newer` (`tamiyo_policy_version` empty or equal to
 *    the live version), `checksum_mismatch` (`checksum` ≠ SHA-256 of `payload`),
 *    `invalid_payload` (the weights frame does not read or load; a payload whose header
 *    names another GNN config is `architecture_mismatch`, read before any tensor is
 *    allocated), `validation_failed` (a validation summary that failed, or lists a
 *    failed check).
 *
 * The nonce is checked at step 2 but registered only once every check passed (as the
 * command verifier does), so a rejected update never consumes one.
 *
 * Each rejection emits one `policy_update_rejected` event — CRITICAL for the security
 * reasons, ERROR (priority HIGH) for the content reasons — and is returned, never thrown.
 *
 * Departures from the reference (§13): updates are always verified (there is no
 * `TAMIYO_VERIFY_UPDATES` switch) and signed; "newer" means "different from the live
 * version" (version labels are opaque strings); an empty payload is `invalid_payload`
 * rather than a metadata-only update; the rejection event is ERROR/CRITICAL, not WARNING.
 *
 * {@link PolicySlot} holds the live GNN and at most one verified replacement; the service
 * calls {@link PolicySlot.swapIfPending} between steps.
 */
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  buildTelemetryPacket,
  ErrorCode,
  EsperError,
  systemClock,
  type Clock,
  type MetricInput,
  type TelemetrySink,
} from '../core/index.js';
import {
  PolicyArchitectureSchema,
  PolicyUpdateSchema,
  TelemetryLevel,
  type PolicyUpdate,
  type PolicyValidationSummary,
} from '../leyline/index.js';
import {
  checkSignedMessage,
  clipEchoed as clip,
  decodeSignedMessage,
  DEFAULT_FUTURE_SKEW_MS,
  DEFAULT_MAX_FRESHNESS_WINDOW_MS,
  replayedNonce,
  SignedMessageFailure,
  type HmacSigner,
  type NonceLedger,
  type SignedMessageProblem,
  type SignedMessageRules,
  type SignOptions,
} from '../security/index.js';
import type { GnnConfig, TamiyoGnn } from './gnn.js';
import { TAMIYO_TELEMETRY_SOURCE, TamiyoEvent } from './names.js';
import {
  architectureOf,
  configOfArchitecture,
  loadPolicy,
  POLICY_ARCHITECTURE_ID,
  POLICY_ARCHITECTURE_VERSION,
  policyDigest,
  readPolicyFrame,
  serialisePolicy,
  type LoadedPolicy,
} from './policy-weights.js';

/** `PolicyUpdate.version` (message schema version) written by {@link buildPolicyUpdate}. */
export const POLICY_UPDATE_MESSAGE_VERSION = 1;

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

/** Event descriptions of policy updates. */
export const PolicyUpdateEvent = {
  /** An update failed verification. CRITICAL (security reasons) or ERROR (content). */
  REJECTED: TamiyoEvent.POLICY_UPDATE_REJECTED,
  /** A staged policy went live. INFO. */
  APPLIED: 'policy_update_applied',
} as const;

/** One of {@link PolicyUpdateEvent}. */
export type PolicyUpdateEvent = (typeof PolicyUpdateEvent)[keyof typeof PolicyUpdateEvent];

/** Metric names of policy updates. */
export const PolicyUpdateMetric = {
  /** Updates that passed verification. Counter. */
  ACCEPTED_TOTAL: 'tamiyo.policy_update.accepted_total',
  /** Rejected updates, one series per `reason` attribute. Counter. */
  REJECTED_TOTAL: 'tamiyo.policy_update.rejected_total',
  /** Staged policies that went live. Counter. */
  SWAPS_TOTAL: 'tamiyo.policy_update.swaps_total',
  /** Staged policies replaced by a newer stage before going live. Counter. */
  SUPERSEDED_TOTAL: 'tamiyo.policy_update.superseded_total',
  /** 1 while a staged policy waits for the next swap, else 0. Gauge. */
  PENDING: 'tamiyo.policy_update.pending',
} as const;

/** One of {@link PolicyUpdateMetric}. */
export type PolicyUpdateMetric = (typeof PolicyUpdateMetric)[keyof typeof PolicyUpdateMetric];

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
}

/** Defaults of {@link PolicyUpdateVerifierOptions} (the command verifier's). */
export const POLICY_UPDATE_VERIFIER_DEFAULTS = Object.freeze({
  maxFreshnessWindowMs: DEFAULT_MAX_FRESHNESS_WINDOW_MS,
  futureSkewMs: DEFAULT_FUTURE_SKEW_MS,
});

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
  #acceptedTotal = 0;
  readonly #rejections = Object.fromEntries(REASONS.map((r) => [r, 0])) as Record<PolicyUpdateRejection, number>;

  constructor(options: PolicyUpdateVerifierOptions) {
    this.#ledger = options.ledger;
    this.#telemetry = options.telemetry;
    this.#clock = options.clock ?? systemClock;
    const maxFreshnessWindowMs = options.maxFreshnessWindowMs ?? POLICY_UPDATE_VERIFIER_DEFAULTS.maxFreshnessWindowMs;
    const futureSkewMs = options.futureSkewMs ?? POLICY_UPDATE_VERIFIER_DEFAULTS.futureSkewMs;
    this.#expectedArchitecture = options.expectedArchitecture;
    try {
      this.#expectedConfig = configOfArchitecture(options.expectedArchitecture);
    } catch (error) {
      invalidOption('expectedArchitecture', `is not an architecture string (${messageOf(error)})`);
    }
    if (!(Number.isFinite(maxFreshnessWindowMs) && maxFreshnessWindowMs > 0)) {
      invalidOption('maxFreshnessWindowMs', `must be > 0, got ${maxFreshnessWindowMs}`);
    }
    if (!(Number.isFinite(futureSkewMs) && futureSkewMs >= 0)) {
      invalidOption('futureSkewMs', `must be ≥ 0, got ${futureSkewMs}`);
    }
    // An update stays acceptable for window + skew; a shorter nonce TTL would let a replay
    // through once its nonce is forgotten.
    const acceptableForMs = maxFreshnessWindowMs + futureSkewMs;
    if (this.#ledger.ttlSeconds * 1000 < acceptableForMs) {
      invalidOption(
        'ledger',
        `nonce TTL ${this.#ledger.ttlSeconds} s is shorter than maxFreshnessWindowMs + futureSkewMs (${acceptableForMs} ms)`,
      );
    }
    this.#rules = { signer: options.signer, ledger: this.#ledger, clock: this.#clock, maxFreshnessWindowMs, futureSkewMs, noun: 'update' };
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
    let header: { readonly architecture: string; readonly version: string };
    try {
      header = readPolicyFrame(payload).header;
    } catch (error) {
      return { reason: PolicyUpdateRejection.INVALID_PAYLOAD, detail: messageOf(error) };
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
      loaded = loadPolicy(payload, this.#expectedConfig);
    } catch (error) {
      return { reason: PolicyUpdateRejection.INVALID_PAYLOAD, detail: messageOf(error) };
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

/** A policy that is live or waiting to go live. */
export interface SlotPolicy {
  readonly gnn: TamiyoGnn;
  /** The policy version label (`tamiyo_policy_version` of the update that brought it). */
  readonly version: string;
}

/** Result of {@link PolicySlot.swapIfPending}; `from === to` when nothing was pending. */
export interface PolicySwapResult {
  readonly swapped: boolean;
  readonly from: string;
  readonly to: string;
}

/** Options of {@link PolicySlot}. */
export interface PolicySlotOptions {
  /** Receives the INFO `policy_update_applied` packet of each swap. @default none */
  readonly telemetry?: TelemetrySink;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Run id stamped on telemetry packets. @default '' */
  readonly trainingRunId?: string;
}

/** Counters of a {@link PolicySlot}. */
export interface PolicySlotSnapshot {
  readonly version: string;
  /** Version of the staged policy, if one waits. */
  readonly pendingVersion: string | undefined;
  readonly swapsTotal: number;
  readonly supersededTotal: number;
}

/**
 * The hot-swap holder: the live policy and at most one staged replacement. The slot owns
 * both GNNs and disposes them when they are replaced or on {@link PolicySlot.dispose}.
 *
 * Atomicity comes from the call discipline: inference is synchronous, and the service
 * calls {@link PolicySlot.swapIfPending} between steps, so no forward sees a half-swapped
 * policy. Read {@link PolicySlot.current} at the start of each step and do not keep its
 * `gnn` across a swap — the old model is disposed by the swap.
 */
export class PolicySlot {
  #current: SlotPolicy;
  #pending: SlotPolicy | undefined;
  readonly #architecture: string;
  readonly #telemetry: TelemetrySink | undefined;
  readonly #clock: Clock;
  readonly #trainingRunId: string;
  #swapsTotal = 0;
  #supersededTotal = 0;
  #disposed = false;

  /** Takes ownership of `initial.gnn`. */
  constructor(initial: SlotPolicy, options: PolicySlotOptions = {}) {
    if (initial.gnn.disposed) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'PolicySlot initial gnn is disposed', { details: { field: 'initial' } });
    }
    if (initial.version.length === 0) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'PolicySlot initial version must not be empty', { details: { field: 'version' } });
    }
    this.#current = { gnn: initial.gnn, version: initial.version };
    this.#architecture = architectureOf(initial.gnn.config);
    this.#telemetry = options.telemetry;
    this.#clock = options.clock ?? systemClock;
    this.#trainingRunId = options.trainingRunId ?? '';
  }

  /** The live policy. */
  get current(): SlotPolicy {
    this.#assertLive();
    return this.#current;
  }

  /** The staged policy's version, if one waits for the next swap. */
  get pendingVersion(): string | undefined {
    return this.#pending?.version;
  }

  /** The architecture string every staged policy must have (the initial policy's). */
  get architecture(): string {
    return this.#architecture;
  }

  /**
   * Stages a verified policy for the next {@link PolicySlot.swapIfPending}, taking
   * ownership of `loaded.gnn`. A policy already staged is disposed and replaced (only the
   * newest waits). Throws — leaving ownership with the caller — when the slot is disposed
   * (`INVALID_STATE`), the GNN is disposed or already held by the slot
   * (`INVALID_ARGUMENT`), or its architecture differs (`TAMIYO_POLICY_INVALID`).
   */
  stage(loaded: Pick<LoadedPolicy, 'gnn' | 'version'>): void {
    this.#assertLive();
    const { gnn, version } = loaded;
    if (gnn.disposed) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'cannot stage a disposed policy', { details: { version } });
    }
    if (gnn === this.#current.gnn || gnn === this.#pending?.gnn) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'policy is already held by the slot', { details: { version } });
    }
    if (architectureOf(gnn.config) !== this.#architecture) {
      throw new EsperError(ErrorCode.TAMIYO_POLICY_INVALID, 'staged policy has a different architecture than the live one', {
        details: { version },
      });
    }
    const superseded = this.#pending;
    this.#pending = { gnn, version };
    if (superseded !== undefined) {
      this.#supersededTotal += 1;
      superseded.gnn.dispose();
    }
  }

  /**
   * Makes the staged policy live, if there is one, and disposes the one it replaces. Call
   * between steps; the next forward uses the new weights.
   */
  swapIfPending(): PolicySwapResult {
    this.#assertLive();
    const next = this.#pending;
    const previous = this.#current;
    if (next === undefined) return { swapped: false, from: previous.version, to: previous.version };
    this.#current = next;
    this.#pending = undefined;
    this.#swapsTotal += 1;
    previous.gnn.dispose();
    this.#telemetry?.emit(
      buildTelemetryPacket({
        source: TAMIYO_TELEMETRY_SOURCE,
        clock: this.#clock,
        trainingRunId: this.#trainingRunId,
        events: [
          {
            description: PolicyUpdateEvent.APPLIED,
            level: TelemetryLevel.INFO,
            attributes: { from: previous.version, to: next.version },
          },
        ],
      }),
    );
    return { swapped: true, from: previous.version, to: next.version };
  }

  /** Counters and versions. */
  snapshot(): PolicySlotSnapshot {
    return {
      version: this.#current.version,
      pendingVersion: this.#pending?.version,
      swapsTotal: this.#swapsTotal,
      supersededTotal: this.#supersededTotal,
    };
  }

  /** `tamiyo.policy_update.{swaps_total, superseded_total, pending}`. */
  metrics(): MetricInput[] {
    return [
      { name: PolicyUpdateMetric.SWAPS_TOTAL, value: this.#swapsTotal, unit: 'count' },
      { name: PolicyUpdateMetric.SUPERSEDED_TOTAL, value: this.#supersededTotal, unit: 'count' },
      { name: PolicyUpdateMetric.PENDING, value: this.#pending === undefined ? 0 : 1, unit: 'count' },
    ];
  }

  /** Whether {@link PolicySlot.dispose} ran. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Disposes the live and the staged policy. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#pending?.gnn.dispose();
    this.#pending = undefined;
    this.#current.gnn.dispose();
  }

  #assertLive(): void {
    if (this.#disposed) throw new EsperError(ErrorCode.INVALID_STATE, 'PolicySlot is disposed');
  }
}

/** Options of {@link buildPolicyUpdate}. */
export interface BuildPolicyUpdateOptions {
  readonly policyId: string;
  readonly trainingRunId: string;
  /** `tamiyo_policy_version` and the payload's version label. */
  readonly version: string;
  readonly signer: HmacSigner;
  /** The validator's verdict to ship with the weights. @default none */
  readonly validation?: PolicyValidationSummary;
  /** Stamps `issued_at`. @default systemClock */
  readonly clock?: Clock;
  /** Nonce and key id of the signature. @default a random nonce, the ring's active key */
  readonly sign?: SignOptions;
}

/**
 * A signed {@link PolicyUpdate} carrying `gnn`'s weights (what Simic emits, reference
 * §15.6): architecture id/version, payload from {@link serialisePolicy}, checksum
 * {@link policyDigest} of it, then signed over the canonical bytes.
 */
export function buildPolicyUpdate(gnn: TamiyoGnn, options: BuildPolicyUpdateOptions): PolicyUpdate {
  for (const field of ['policyId', 'trainingRunId'] as const) {
    if (options[field].length === 0) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `buildPolicyUpdate ${field} must not be empty`, { details: { field } });
    }
  }
  const payload = serialisePolicy(gnn, { version: options.version });
  const update = create(PolicyUpdateSchema, {
    version: POLICY_UPDATE_MESSAGE_VERSION,
    policyId: options.policyId,
    trainingRunId: options.trainingRunId,
    issuedAt: timestampFromMs((options.clock ?? systemClock).wallMs()),
    tamiyoPolicyVersion: options.version,
    payload,
    architecture: create(PolicyArchitectureSchema, { id: POLICY_ARCHITECTURE_ID, version: POLICY_ARCHITECTURE_VERSION }),
    checksum: policyDigest(payload),
    ...(options.validation === undefined ? {} : { validation: options.validation }),
  });
  return options.signer.sign(PolicyUpdateSchema, update, options.sign);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}

function invalidOption(field: string, problem: string): never {
  throw new EsperError(ErrorCode.INVALID_ARGUMENT, `PolicyUpdateVerifier ${field} ${problem}`, { details: { field } });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
