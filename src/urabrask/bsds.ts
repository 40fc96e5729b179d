/**
 * Blueprint safety data sheets (BSDS) from crucible measurements (reference
 * prototype-blueprint-pipeline §6.1–§6.4, §6.6), signed with the key ring.
 *
 * Scoring (documented changes from the prototype's v1 battery):
 * - `risk = min(1, descriptor.risk + Σ hazard additions)`, no tier priors (as v1).
 * - Additions: nan_inf +0.6, grad explode +0.4, grad vanish +0.2, output blow-up +0.3,
 *   memory high +0.2, latency slow +0.1. The prototype added +0.3 for an explosion and had
 *   no output-scale or latency probe; its probes never looked at the blueprint, ours
 *   measure the artifact, so an explosion together with an output blow-up (0.7) reaches
 *   HIGH on the measurements alone, whatever the prior.
 * - Band from the score only: ≥ 0.85 CRITICAL, ≥ 0.60 HIGH, ≥ 0.30 MEDIUM, else LOW. The
 *   prototype's v1 also forced CRITICAL for `quarantine_only`; here that flag acts on the
 *   handling class alone (as in its heuristic §6.2), so the band reports what was measured.
 * - Handling: `quarantine_only` or CRITICAL → QUARANTINE, HIGH → RESTRICTED, else STANDARD.
 * - Resource profile: MEMORY_HEAVY when the memory probe fired, else from the hint
 *   (gpu/cuda, cpu, memory_heavy/mem/memory, io_heavy/io), else MIXED.
 * - Recommendation (HIGH and CRITICAL only): the reference text followed by the fired
 *   hazards, e.g. `Prefer optimizer downgrade; avoid aggressive grafting (hazards:
 *   grad_instability=explode)`, since the BSDS message has no hazards field.
 * - Signing: always (the prototype signed only when enabled and skipped silently without a
 *   secret); the signature is `HmacSigner`'s over the BSDS canonical bytes, in `security`.
 */
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { ErrorCode, EsperError, systemClock, type Clock } from '../core/index.js';
import {
  BSDSSchema,
  canonicalBytes,
  HandlingClass,
  HazardBand,
  Provenance,
  ResourceProfile,
  type BlueprintDescriptor,
  type BSDS,
} from '../leyline/index.js';
import type { HmacSigner } from '../security/index.js';
import { HazardStatus, type HazardMap, type HazardReport } from './crucible.js';

/** Version stamped on every BSDS. */
export const BSDS_VERSION = 1;

/** Recommendation for HIGH and CRITICAL bands (reference §6.1). */
export const HIGH_HAZARD_RECOMMENDATION = 'Prefer optimizer downgrade; avoid aggressive grafting';

/** Score added per fired hazard status (see the file comment for the changes from v1). */
export const HAZARD_SCORE_ADDITIONS: Readonly<Record<keyof HazardMap, Readonly<Partial<Record<HazardStatus, number>>>>> = {
  nan_inf: { [HazardStatus.PRESENT]: 0.6 },
  grad_instability: { [HazardStatus.EXPLODE]: 0.4, [HazardStatus.VANISH]: 0.2 },
  output_scale: { [HazardStatus.BLOWUP]: 0.3 },
  memory_watermark: { [HazardStatus.HIGH]: 0.2 },
  latency: { [HazardStatus.SLOW]: 0.1 },
};

/** Options of {@link buildBsds} and {@link issueBsds}. */
export interface BsdsOptions {
  /** Clock of `issued_at`. @default systemClock */
  readonly clock?: Clock;
  /** Score from which the band is MEDIUM. @default 0.30 */
  readonly mediumThreshold?: number;
  /** Score from which the band is HIGH. @default 0.60 */
  readonly highThreshold?: number;
  /** Score from which the band is CRITICAL. @default 0.85 */
  readonly criticalThreshold?: number;
  /** Resource hint (`gpu`, `cpu`, `memory_heavy`, `io_heavy`, ...; case-insensitive). @default none (MIXED) */
  readonly resourceHint?: string;
}

/** Defaults of {@link BsdsOptions}, in one place. */
export const BSDS_DEFAULTS = { mediumThreshold: 0.3, highThreshold: 0.6, criticalThreshold: 0.85 } as const;

/** The scoring outcome before it becomes a message. */
export interface BsdsAssessment {
  /** In [0, 1]. */
  readonly riskScore: number;
  readonly hazardBand: HazardBand;
  readonly handlingClass: HandlingClass;
  readonly resourceProfile: ResourceProfile;
  /** Empty below HIGH. */
  readonly recommendation: string;
}

/**
 * Scores `report` against `descriptor`'s risk prior and applies the banding, handling and
 * resource rules of the file comment. Throws `INVALID_ARGUMENT` when the report is of
 * another blueprint or a threshold is out of order.
 */
export function assessHazards(descriptor: BlueprintDescriptor, report: HazardReport, options: BsdsOptions = {}): BsdsAssessment {
  if (descriptor.blueprintId !== report.blueprintId) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `hazard report is for ${report.blueprintId}, descriptor is ${descriptor.blueprintId}`, {
      details: { blueprintId: descriptor.blueprintId },
    });
  }
  const medium = options.mediumThreshold ?? BSDS_DEFAULTS.mediumThreshold;
  const high = options.highThreshold ?? BSDS_DEFAULTS.highThreshold;
  const critical = options.criticalThreshold ?? BSDS_DEFAULTS.criticalThreshold;
  if (!(medium > 0 && medium <= high && high <= critical && critical <= 1)) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `BSDS thresholds must satisfy 0 < medium ≤ high ≤ critical ≤ 1, got ${medium}/${high}/${critical}`, {
      details: { field: 'thresholds' },
    });
  }
  let riskScore = Number.isFinite(descriptor.risk) ? descriptor.risk : 0;
  for (const name of report.fired) riskScore += HAZARD_SCORE_ADDITIONS[name][report.hazards[name]] ?? 0;
  riskScore = Math.min(1, Math.max(0, riskScore));
  const hazardBand =
    riskScore >= critical ? HazardBand.CRITICAL : riskScore >= high ? HazardBand.HIGH : riskScore >= medium ? HazardBand.MEDIUM : HazardBand.LOW;
  const handlingClass =
    descriptor.quarantineOnly || hazardBand === HazardBand.CRITICAL
      ? HandlingClass.QUARANTINE
      : hazardBand === HazardBand.HIGH
        ? HandlingClass.RESTRICTED
        : HandlingClass.STANDARD;
  const resourceProfile = report.hazards.memory_watermark === HazardStatus.HIGH ? ResourceProfile.MEMORY_HEAVY : profileFromHint(options.resourceHint);
  const recommendation =
    hazardBand === HazardBand.HIGH || hazardBand === HazardBand.CRITICAL
      ? report.fired.length === 0
        ? HIGH_HAZARD_RECOMMENDATION
        : `${HIGH_HAZARD_RECOMMENDATION} (hazards: ${report.fired.map((name) => `${name}=${report.hazards[name]}`).join(', ')})`
      : '';
  return { riskScore, hazardBand, handlingClass, resourceProfile, recommendation };
}

function profileFromHint(hint: string | undefined): ResourceProfile {
  switch (hint?.toLowerCase()) {
    case 'gpu':
    case 'cuda':
      return ResourceProfile.GPU;
    case 'cpu':
      return ResourceProfile.CPU;
    case 'memory_heavy':
    case 'mem':
    case 'memory':
      return ResourceProfile.MEMORY_HEAVY;
    case 'io_heavy':
    case 'io':
      return ResourceProfile.IO_HEAVY;
    default:
      return ResourceProfile.MIXED;
  }
}

/** An unsigned BSDS (version 1, provenance URABRASK) for `descriptor` from `report`. */
export function buildBsds(descriptor: BlueprintDescriptor, report: HazardReport, options: BsdsOptions = {}): BSDS {
  const assessment = assessHazards(descriptor, report, options);
  return create(BSDSSchema, {
    version: BSDS_VERSION,
    blueprintId: descriptor.blueprintId,
    riskScore: assessment.riskScore,
    hazardBand: assessment.hazardBand,
    handlingClass: assessment.handlingClass,
    resourceProfile: assessment.resourceProfile,
    recommendation: assessment.recommendation,
    issuedAt: timestampFromMs((options.clock ?? systemClock).wallMs()),
    provenance: Provenance.URABRASK,
    artifactChecksum: report.artifactChecksum,
  });
}

/** {@link buildBsds}, then signed by `signer` (security block filled, HMAC-SHA256). */
export function issueBsds(signer: HmacSigner, descriptor: BlueprintDescriptor, report: HazardReport, options: BsdsOptions = {}): BSDS {
  return signer.sign(BSDSSchema, buildBsds(descriptor, report, options));
}

/**
 * True when `bsds` carries a signature that matches its canonical bytes under the key it
 * names. False when unsigned, the key is unknown, or any signed field changed.
 */
export function verifyBsds(signer: HmacSigner, bsds: BSDS): boolean {
  const security = bsds.security;
  if (security === undefined || security.signature.length === 0) return false;
  return signer.macMatches(security.keyId, canonicalBytes(BSDSSchema, bsds), security.signature);
}
