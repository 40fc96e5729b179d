/**
 * Blueprint safety data sheets (BSDS) from crucible measurements, signed with the key ring
 * (reference prototype-blueprint-pipeline §6.1–§6.4, §6.6). The scoring rule and how it
 * departs from the prototype: docs/architecture.md (Urabrask).
 */
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { ErrorCode, EsperError, optionChecks, systemClock, type Clock } from '../core/index.js';
import {
  BlueprintTier,
  BSDSSchema,
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
  /** In [0, 1]: the measured score, raised by the prior at most to just below the next band. */
  readonly riskScore: number;
  /** In [0, 1]: Σ of the fired hazards' additions × severity (see the file comment). */
  readonly measuredScore: number;
  /** The descriptor's risk prior, clamped to [0, 1] (recorded; never lifts the band). */
  readonly priorRisk: number;
  readonly hazardBand: HazardBand;
  readonly handlingClass: HandlingClass;
  readonly resourceProfile: ResourceProfile;
  /** Empty below HIGH. */
  readonly recommendation: string;
}

/** The prior may sit this far below the next band's threshold at most. */
const BAND_CEILING_MARGIN = 0.01;

/**
 * How far `measured` overshot `threshold`: 1 at the threshold, rising by ½ per decade up
 * to 1.5 (also for a non-finite measurement).
 */
function overshoot(measured: number, threshold: number): number {
  if (!Number.isFinite(measured)) return 1.5;
  if (!(threshold > 0) || measured <= threshold) return 1;
  return 1 + 0.5 * Math.min(1, Math.log10(measured / threshold));
}

/** Severity factor of one fired hazard of `report` (see the file comment). */
function severity(report: HazardReport, name: keyof HazardMap): number {
  const m = report.measurements;
  const t = report.thresholds;
  switch (name) {
    case 'grad_instability':
      return report.hazards.grad_instability === HazardStatus.EXPLODE ? overshoot(m.gradNorm, t.gradExplode) : 1;
    case 'output_scale':
      return overshoot(m.outputScaleRatio, t.outputScale);
    case 'memory_watermark':
      return overshoot(m.memoryDeltaBytes, t.memoryWatermarkBytes);
    case 'latency':
      return overshoot(m.latencyP50Ms, t.latencyBudgetMs);
    case 'nan_inf':
      return 1;
  }
}

/**
 * Scores `report`'s measurements, bands them, records `descriptor`'s risk prior within the
 * band, and applies the handling and resource rules of the file comment. Throws
 * `INVALID_ARGUMENT` when the report is of another blueprint or a threshold is out of order.
 */
export function assessHazards(descriptor: BlueprintDescriptor, report: HazardReport, options: BsdsOptions = {}): BsdsAssessment {
  if (descriptor.blueprintId !== report.blueprintId) {
    throw new EsperError(
      ErrorCode.INVALID_ARGUMENT,
      `hazard report is for ${report.blueprintId}, descriptor is ${descriptor.blueprintId}`,
      {
        details: { blueprintId: descriptor.blueprintId },
      },
    );
  }
  const medium = options.mediumThreshold ?? BSDS_DEFAULTS.mediumThreshold;
  const high = options.highThreshold ?? BSDS_DEFAULTS.highThreshold;
  const critical = options.criticalThreshold ?? BSDS_DEFAULTS.criticalThreshold;
  if (!(medium > BAND_CEILING_MARGIN && medium <= high && high <= critical && critical <= 1)) {
    optionChecks('BsdsOptions').fail(
      'thresholds',
      `medium/high/critical with ${BAND_CEILING_MARGIN} < medium ≤ high ≤ critical ≤ 1`,
      `${medium}/${high}/${critical}`,
    );
  }
  let measured = 0;
  for (const name of report.fired) measured += (HAZARD_SCORE_ADDITIONS[name][report.hazards[name]] ?? 0) * severity(report, name);
  const measuredScore = clamp01(measured);
  const hazardBand =
    measuredScore >= critical
      ? HazardBand.CRITICAL
      : measuredScore >= high
        ? HazardBand.HIGH
        : measuredScore >= medium
          ? HazardBand.MEDIUM
          : HazardBand.LOW;
  const priorRisk = clamp01(Number.isFinite(descriptor.risk) ? descriptor.risk : 0);
  const nextThreshold =
    hazardBand === HazardBand.LOW
      ? medium
      : hazardBand === HazardBand.MEDIUM
        ? high
        : hazardBand === HazardBand.HIGH
          ? critical
          : undefined;
  const ceiling = nextThreshold === undefined ? 1 : nextThreshold - BAND_CEILING_MARGIN;
  const riskScore = Math.max(measuredScore, Math.min(priorRisk, ceiling));
  const handlingClass =
    descriptor.quarantineOnly || hazardBand === HazardBand.CRITICAL
      ? HandlingClass.QUARANTINE
      : hazardBand === HazardBand.HIGH || (descriptor.tier !== BlueprintTier.SAFE && priorRisk >= high)
        ? HandlingClass.RESTRICTED
        : HandlingClass.STANDARD;
  const resourceProfile =
    report.hazards.memory_watermark === HazardStatus.HIGH ? ResourceProfile.MEMORY_HEAVY : profileFromHint(options.resourceHint);
  const recommendation =
    hazardBand === HazardBand.HIGH || hazardBand === HazardBand.CRITICAL
      ? `${HIGH_HAZARD_RECOMMENDATION} (hazards: ${report.fired.map((name) => `${name}=${report.hazards[name]}`).join(', ')})`
      : '';
  return { riskScore, measuredScore, priorRisk, hazardBand, handlingClass, resourceProfile, recommendation };
}

function clamp01(value: number): number {
  return Math.min(1, Math.max(0, value));
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
