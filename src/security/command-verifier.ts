/**
 * Verifies signed adaptation commands before anything acts on them: the shared checks of
 * `signed-message.ts` (order and reasons in `docs/contracts.md`), then the nonce
 * registered. Each rejection emits one CRITICAL `command_rejected` packet and is
 * returned, never thrown.
 *
 * The nonce is registered only after every other check passed, so forged, stale or
 * future commands never consume one (a departure from prototype-kasmina §13.3). The
 * constructor requires the ledger's TTL to cover window + future skew, so a nonce is
 * forgotten only once its command is stale.
 */
import {
  buildTelemetryPacket,
  optionChecks,
  SampleWindow,
  systemClock,
  type Clock,
  type MetricInput,
  type TelemetrySink,
} from '../core/index.js';
import { AdaptationCommandSchema, TelemetryLevel, type AdaptationCommand } from '../leyline/index.js';
import { nonceLedgerMetrics, type NonceLedger, type NonceLedgerSnapshot } from './nonce-ledger.js';
import { SecurityEvent, SecurityMetric, securityMetricName } from './names.js';
import type { HmacSigner } from './signer.js';
import {
  checkSignedMessage,
  clipEchoed as clip,
  decodeSignedMessage,
  replayedNonce,
  resolveSignedMessageRules,
  SignedMessageFailure,
  type SignedMessageProblem,
  type SignedMessageRules,
} from './signed-message.js';

/** Why a command was rejected, in verification order. */
export const RejectionReason = {
  DECODE_FAILED: 'decode_failed',
  NON_CANONICAL_ENCODING: 'non_canonical_encoding',
  MISSING_SECURITY: 'missing_security',
  UNKNOWN_KEY_ID: 'unknown_key_id',
  MISSING_SIGNATURE: 'missing_signature',
  MALFORMED_SIGNATURE: 'malformed_signature',
  INVALID_SIGNATURE: 'invalid_signature',
  MISSING_TIMESTAMP: 'missing_timestamp',
  STALE_COMMAND: 'stale_command',
  FUTURE_COMMAND: 'future_command',
  MISSING_NONCE: 'missing_nonce',
  NONCE_REPLAYED: 'nonce_replayed',
} as const;

/** One of the {@link RejectionReason} values. */
export type RejectionReason = (typeof RejectionReason)[keyof typeof RejectionReason];

const REASONS: readonly RejectionReason[] = Object.values(RejectionReason);

/** Default number of latency samples kept for the quantiles. */
export const DEFAULT_LATENCY_WINDOW_SIZE = 1024;

/** Options of {@link CommandVerifier}. */
export interface CommandVerifierOptions {
  /** Checks signatures; holds the key ring. */
  readonly signer: HmacSigner;
  /** Remembers nonces; its TTL must cover the freshness window plus the future skew. */
  readonly ledger: NonceLedger;
  /** Where `command_rejected` packets go. */
  readonly sink: TelemetrySink;
  /** Subsystem named in telemetry and as the metric prefix (`kasmina`, `tamiyo`). */
  readonly source: string;
  /**
   * Wall time for freshness (monotonic time for latency).
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * Freshness window used when a command carries none, and the cap on the window a
   * command carries, in ms.
   * @default 60_000
   */
  readonly maxFreshnessWindowMs?: number;
  /** How far `issued_at` may lie ahead of the verifier's wall clock, in ms. @default 5_000 */
  readonly futureSkewMs?: number;
  /** Latency samples kept for p50/p95. @default 1024 */
  readonly latencyWindowSize?: number;
}

/** Result of a verification: the command, or why it was rejected. */
export type VerificationResult =
  | { readonly ok: true; readonly command: AdaptationCommand }
  | { readonly ok: false; readonly reason: RejectionReason; readonly detail: string };

/** Verification latency, in ms. Zeros before the first verification. */
export interface VerificationLatencySnapshot {
  readonly lastMs: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  /** Samples the quantiles are computed over (bounded by the window size). */
  readonly samples: number;
}

/** Counters of a {@link CommandVerifier}. */
export interface CommandVerifierSnapshot {
  readonly acceptedTotal: number;
  /** Sum of {@link CommandVerifierSnapshot.rejectionsByReason}. */
  readonly rejectedTotal: number;
  /** Every reason, zero included. */
  readonly rejectionsByReason: Readonly<Record<RejectionReason, number>>;
  readonly latency: VerificationLatencySnapshot;
  readonly ledger: NonceLedgerSnapshot;
}

type Rejection = { readonly reason: RejectionReason; readonly detail: string };

/** The shared checks' failures under the names commands have always used. */
const REASON_OF: Readonly<Record<SignedMessageFailure, RejectionReason>> = {
  [SignedMessageFailure.DECODE_FAILED]: RejectionReason.DECODE_FAILED,
  [SignedMessageFailure.NON_CANONICAL_ENCODING]: RejectionReason.NON_CANONICAL_ENCODING,
  [SignedMessageFailure.MISSING_SECURITY]: RejectionReason.MISSING_SECURITY,
  [SignedMessageFailure.UNKNOWN_KEY_ID]: RejectionReason.UNKNOWN_KEY_ID,
  [SignedMessageFailure.MISSING_SIGNATURE]: RejectionReason.MISSING_SIGNATURE,
  [SignedMessageFailure.MALFORMED_SIGNATURE]: RejectionReason.MALFORMED_SIGNATURE,
  [SignedMessageFailure.INVALID_SIGNATURE]: RejectionReason.INVALID_SIGNATURE,
  [SignedMessageFailure.MISSING_TIMESTAMP]: RejectionReason.MISSING_TIMESTAMP,
  [SignedMessageFailure.STALE]: RejectionReason.STALE_COMMAND,
  [SignedMessageFailure.FUTURE]: RejectionReason.FUTURE_COMMAND,
  [SignedMessageFailure.MISSING_NONCE]: RejectionReason.MISSING_NONCE,
  [SignedMessageFailure.NONCE_REPLAYED]: RejectionReason.NONCE_REPLAYED,
};

function rejectionOf(problem: SignedMessageProblem): Rejection {
  return { reason: REASON_OF[problem.failure], detail: problem.detail };
}

/** Verifies signed {@link AdaptationCommand}s (see the module doc for the order). */
export class CommandVerifier {
  readonly #ledger: NonceLedger;
  readonly #sink: TelemetrySink;
  readonly #source: string;
  readonly #clock: Clock;
  readonly #rules: SignedMessageRules;
  readonly #latenciesMs: SampleWindow;
  #lastLatencyMs = 0;
  #acceptedTotal = 0;
  readonly #rejections = Object.fromEntries(REASONS.map((r) => [r, 0])) as Record<RejectionReason, number>;

  constructor(options: CommandVerifierOptions) {
    this.#ledger = options.ledger;
    this.#sink = options.sink;
    this.#source = options.source;
    this.#clock = options.clock ?? systemClock;
    const check = optionChecks('CommandVerifier');
    check.nonEmptyString('source', this.#source);
    this.#latenciesMs = new SampleWindow(
      check.integer('latencyWindowSize', options.latencyWindowSize ?? DEFAULT_LATENCY_WINDOW_SIZE, { min: 1 }),
    );
    this.#rules = resolveSignedMessageRules('CommandVerifier', {
      signer: options.signer,
      ledger: this.#ledger,
      clock: this.#clock,
      maxFreshnessWindowMs: options.maxFreshnessWindowMs,
      futureSkewMs: options.futureSkewMs,
      noun: 'command',
    });
  }

  /**
   * Verifies an already-decoded command. Never throws for a bad command. It cannot see
   * how the command was encoded: callers holding the received bytes use
   * {@link CommandVerifier.verifyEncoded}.
   */
  verify(command: AdaptationCommand): VerificationResult {
    const startedMs = this.#clock.monotonicMs();
    return this.#finish(startedMs, command, this.#check(command));
  }

  /**
   * Decodes `bytes` strictly, requires them to be the command's canonical encoding
   * (`non_canonical_encoding` otherwise), then verifies as {@link CommandVerifier.verify}.
   * Never throws for bad bytes.
   */
  verifyEncoded(bytes: Uint8Array): VerificationResult {
    const startedMs = this.#clock.monotonicMs();
    const decoded = decodeSignedMessage(AdaptationCommandSchema, bytes);
    if (!decoded.ok) return this.#reject(startedMs, decoded.message, rejectionOf(decoded.problem));
    return this.#finish(startedMs, decoded.message, this.#check(decoded.message, decoded.signedBytes));
  }

  /**
   * Forgets every remembered nonce (administrative reset, reference WP-K3). Returns how
   * many were dropped. Replays of commands still inside their freshness window are then
   * accepted again, so call it only when the issuer's keys or run changed.
   */
  resetNonces(): number {
    return this.#ledger.clear();
  }

  /** Purges expired nonces; call once per control-loop iteration. Returns the count. */
  maintenance(): number {
    return this.#ledger.purgeExpired();
  }

  /** Counters, latency and the ledger's snapshot. */
  snapshot(): CommandVerifierSnapshot {
    const [p50Ms = 0, p95Ms = 0] = this.#latenciesMs.quantiles([0.5, 0.95]);
    return {
      acceptedTotal: this.#acceptedTotal,
      rejectedTotal: REASONS.reduce((sum, r) => sum + this.#rejections[r], 0),
      rejectionsByReason: { ...this.#rejections },
      latency: {
        lastMs: this.#lastLatencyMs,
        p50Ms,
        p95Ms,
        samples: this.#latenciesMs.size,
      },
      ledger: this.#ledger.snapshot(),
    };
  }

  /**
   * The reference metrics (prototype-rc1-plan §2.7), prefixed with the source:
   * `<source>.command_verifier.{rejections_total{reason}, accepted_total,
   * validation_latency_ms{stat}}` and `<source>.nonce_ledger.{size, evictions_total,
   * ttl_seconds}`.
   */
  metrics(): MetricInput[] {
    const snapshot = this.snapshot();
    const name = (metric: SecurityMetric): string => securityMetricName(this.#source, metric);
    const latencyName = name(SecurityMetric.VALIDATION_LATENCY_MS);
    return [
      ...REASONS.map((reason) => ({
        name: name(SecurityMetric.REJECTIONS_TOTAL),
        value: snapshot.rejectionsByReason[reason],
        unit: 'count',
        attributes: { reason },
      })),
      { name: name(SecurityMetric.ACCEPTED_TOTAL), value: snapshot.acceptedTotal, unit: 'count' },
      { name: latencyName, value: snapshot.latency.lastMs, unit: 'ms', attributes: { stat: 'last' } },
      { name: latencyName, value: snapshot.latency.p50Ms, unit: 'ms', attributes: { stat: 'p50' } },
      { name: latencyName, value: snapshot.latency.p95Ms, unit: 'ms', attributes: { stat: 'p95' } },
      ...nonceLedgerMetrics(this.#source, snapshot.ledger),
    ];
  }

  /**
   * The shared signed-message checks, then the nonce registered (last, so a rejected
   * command never consumes one). `signedBytes`: the canonical bytes of received bytes,
   * when there are any.
   */
  #check(command: AdaptationCommand, signedBytes?: Uint8Array): Rejection | undefined {
    const problem = checkSignedMessage(AdaptationCommandSchema, command, this.#rules, signedBytes);
    if (problem !== undefined) return rejectionOf(problem);
    const nonce = (command.security as { nonce: string }).nonce;
    return this.#ledger.register(nonce) ? undefined : rejectionOf(replayedNonce(nonce));
  }

  #finish(startedMs: number, command: AdaptationCommand, rejection: Rejection | undefined): VerificationResult {
    if (rejection === undefined) {
      this.#recordLatency(startedMs);
      this.#acceptedTotal += 1;
      return { ok: true, command };
    }
    return this.#reject(startedMs, command, rejection);
  }

  #reject(startedMs: number, command: AdaptationCommand | undefined, { reason, detail }: Rejection): VerificationResult {
    this.#recordLatency(startedMs);
    this.#rejections[reason] += 1;
    const trainingRunId = clip(command?.trainingRunId ?? '');
    this.#sink.emit(
      buildTelemetryPacket({
        source: this.#source,
        clock: this.#clock,
        trainingRunId,
        events: [
          {
            description: SecurityEvent.COMMAND_REJECTED,
            level: TelemetryLevel.CRITICAL,
            attributes: {
              reason,
              detail,
              command_id: clip(command?.commandId ?? ''),
              key_id: clip(command?.security?.keyId ?? ''),
              training_run_id: trainingRunId,
            },
          },
        ],
      }),
    );
    return { ok: false, reason, detail };
  }

  #recordLatency(startedMs: number): void {
    const latencyMs = this.#clock.monotonicMs() - startedMs;
    this.#lastLatencyMs = latencyMs;
    this.#latenciesMs.record(latencyMs);
  }
}
