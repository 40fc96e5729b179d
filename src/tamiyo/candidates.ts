/**
 * The blueprints Tamiyo may germinate, checked once where they enter Tamiyo: ids non-blank
 * and unique, and every safety data sheet verified — a sheet that fails is a CRITICAL
 * `integrity_failure` and its blueprint is left out, never treated as sheet-less.
 */
import { buildTelemetryPacket, ErrorCode, EsperError, type Clock, type TelemetrySink } from '../core/index.js';
import { HealthStatus, TelemetryLevel, type BlueprintDescriptor, type BSDS } from '../leyline/index.js';
import type { GraphMetadata } from '../urza/index.js';
import { TAMIYO_TELEMETRY_SOURCE, TamiyoEvent } from './names.js';

/** A blueprint the policy may choose, with what is known about it. */
export interface BlueprintCandidate {
  readonly descriptor: BlueprintDescriptor;
  /** Graph metadata of its compiled artifact (Urza). @default none: no layer/activation nodes */
  readonly graph?: GraphMetadata;
  /** Its safety data sheet; verified by the service's {@link BsdsVerifier}. @default none */
  readonly bsds?: BSDS;
  /** Quarantined by the operator or the risk engine. @default false */
  readonly quarantined?: boolean;
}

/** Result of {@link BsdsVerifier.verify}. */
export type BsdsVerification = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Checks a safety data sheet (its signature, in production Urabrask's HMAC). */
export interface BsdsVerifier {
  verify(bsds: BSDS): BsdsVerification;
}

/** What {@link admitCandidates} needs. */
export interface AdmitCandidatesOptions {
  /** Required when any candidate carries a sheet. */
  readonly verifier: BsdsVerifier | undefined;
  /** Receives the CRITICAL `integrity_failure` of each rejected sheet. */
  readonly telemetry: TelemetrySink;
  readonly trainingRunId: string;
  readonly clock: Clock;
}

/** A candidate left out because its sheet failed verification. */
export interface RejectedCandidate {
  readonly blueprintId: string;
  readonly reason: string;
}

/** Candidates after {@link admitCandidates}. */
export interface AdmittedCandidates {
  readonly accepted: readonly BlueprintCandidate[];
  readonly rejected: readonly RejectedCandidate[];
}

/**
 * Checks `candidates` once: blueprint ids non-blank and unique, each sheet for its own
 * blueprint and verified. A sheet that fails verification (or names another blueprint)
 * drops its blueprint with a CRITICAL `integrity_failure` {blueprint_id, reason}.
 *
 * @throws EsperError INVALID_ARGUMENT for a blank or duplicate blueprint id, or a sheet
 *   without a verifier to check it.
 */
export function admitCandidates(candidates: readonly BlueprintCandidate[], options: AdmitCandidatesOptions): AdmittedCandidates {
  const seen = new Set<string>();
  for (const [index, { descriptor }] of candidates.entries()) {
    const id = descriptor.blueprintId;
    if (id.trim().length === 0 || seen.has(id)) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `candidate #${index}: blueprint id ${JSON.stringify(id)} is blank or duplicated`, {
        details: { field: `candidates[${index}].descriptor.blueprintId` },
      });
    }
    seen.add(id);
  }
  const verifier = options.verifier;
  const accepted: BlueprintCandidate[] = [];
  const rejected: RejectedCandidate[] = [];
  for (const candidate of candidates) {
    const bsds = candidate.bsds;
    if (bsds === undefined) {
      accepted.push(candidate);
      continue;
    }
    const blueprintId = candidate.descriptor.blueprintId;
    if (verifier === undefined) {
      throw new EsperError(
        ErrorCode.INVALID_ARGUMENT,
        `candidate ${blueprintId} carries a safety data sheet and no bsdsVerifier was given`,
        {
          details: { field: 'bsdsVerifier', blueprintId },
        },
      );
    }
    const verdict =
      bsds.blueprintId === blueprintId ? verifier.verify(bsds) : { ok: false as const, reason: `sheet is for ${bsds.blueprintId}` };
    if (verdict.ok) {
      accepted.push(candidate);
      continue;
    }
    rejected.push({ blueprintId, reason: verdict.reason });
    options.telemetry.emit(
      buildTelemetryPacket({
        source: TAMIYO_TELEMETRY_SOURCE,
        trainingRunId: options.trainingRunId,
        clock: options.clock,
        events: [
          {
            description: TamiyoEvent.INTEGRITY_FAILURE,
            level: TelemetryLevel.CRITICAL,
            attributes: { subject: 'bsds', blueprint_id: blueprintId, reason: verdict.reason },
          },
        ],
        health: { status: HealthStatus.CRITICAL, summary: `safety data sheet of ${blueprintId} failed verification` },
      }),
    );
  }
  return { accepted, rejected };
}
