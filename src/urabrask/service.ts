/**
 * The Urabrask certification service (reference prototype-blueprint-pipeline §6.5): probe
 * the artifact Urza serves, issue a signed BSDS, store it and refreshed graph metadata in
 * Urza, announce it on Oona (departures in docs/architecture.md, Urabrask).
 */
import { create } from '@bufbuild/protobuf';
import { describeError, ErrorCode, EsperError, systemClock, type Clock } from '../core/index.js';
import { BSDSFailedSchema, BSDSIssuedSchema, type BlueprintDescriptor, type BSDS } from '../leyline/index.js';
import type { Bus } from '../oona/index.js';
import type { HmacSigner } from '../security/index.js';
import { decodeArtifact, sha256Hex } from '../tezzeret/index.js';
import { buildGraphMetadata, type GraphMetadata, type UrzaLibrary } from '../urza/index.js';
import { assessHazards, issueBsds, type BsdsAssessment, type BsdsOptions } from './bsds.js';
import { Crucible } from './crucible.js';
import type { HazardReport } from './crucible.js';

/** Options of {@link UrabraskService}. */
export interface UrabraskServiceOptions {
  /** Library the sheets (and refreshed graph metadata) are stored in. */
  readonly library: UrzaLibrary;
  /** Signs every sheet (HMAC-SHA256 under the key ring's active key). */
  readonly signer: HmacSigner;
  /** Bus for `BSDSIssued` / `BSDSFailed`. @default none (nothing published) */
  readonly bus?: Bus;
  /** The hazard battery. @default new Crucible() */
  readonly crucible?: Crucible;
  /** Scoring options (thresholds, resource hint). @default BSDS_DEFAULTS */
  readonly bsds?: Omit<BsdsOptions, 'clock'>;
  /** Clock of `issued_at`. @default systemClock */
  readonly clock?: Clock;
}

/** Input of {@link UrabraskService.certify}. */
export interface CertifyInput {
  readonly descriptor: BlueprintDescriptor;
  /** The compiled artifact, as Urza stores it for `siteKey`. */
  readonly artifactBytes: Uint8Array;
  /** Site key the artifact is catalogued under in Urza. */
  readonly siteKey: string;
}

/** Result of {@link UrabraskService.certify}. */
export interface CertifyResult {
  /** The signed, stored sheet. */
  readonly bsds: BSDS;
  readonly report: HazardReport;
  readonly assessment: BsdsAssessment;
  /** Graph metadata stored alongside, monitors tightened by the band. */
  readonly graphMetadata: GraphMetadata;
  /** Whether `BSDSIssued` reached the bus (false without a bus or when publishing failed). */
  readonly published: boolean;
}

/** Counters of an {@link UrabraskService}. */
export interface UrabraskServiceStats {
  readonly issued: number;
  readonly failed: number;
  /** Publishes of `BSDSIssued` or `BSDSFailed` that threw (fail-open). */
  readonly publishErrors: number;
}

/** Probes artifacts, issues signed BSDS, stores them in Urza and announces them on Oona. */
export class UrabraskService {
  readonly #library: UrzaLibrary;
  readonly #signer: HmacSigner;
  readonly #bus: Bus | undefined;
  readonly #crucible: Crucible;
  readonly #bsdsOptions: BsdsOptions;
  #issued = 0;
  #failed = 0;
  #publishErrors = 0;

  constructor(options: UrabraskServiceOptions) {
    this.#library = options.library;
    this.#signer = options.signer;
    this.#bus = options.bus;
    this.#crucible = options.crucible ?? new Crucible();
    this.#bsdsOptions = { ...options.bsds, clock: options.clock ?? systemClock };
  }

  /**
   * Checks `artifactBytes` against Urza's record for `(descriptor, siteKey)`, probes them,
   * issues and stores the signed sheet and refreshed graph metadata, then publishes
   * `BSDSIssued`.
   * @throws EsperError `URABRASK_CERTIFY_FAILED` (after publishing `BSDSFailed`) when the
   *   artifact is not catalogued, differs from the catalogued bytes, cannot be decoded or
   *   probed, or the sheet cannot be stored; the original error is the `cause`.
   */
  async certify(input: CertifyInput): Promise<CertifyResult> {
    const blueprintId = input.descriptor.blueprintId;
    let bsds: BSDS;
    let report: HazardReport;
    let assessment: BsdsAssessment;
    let graphMetadata: GraphMetadata;
    try {
      this.#assertCatalogued(input);
      const { header } = decodeArtifact(input.artifactBytes);
      report = this.#crucible.probe(input.artifactBytes);
      assessment = assessHazards(input.descriptor, report, this.#bsdsOptions);
      bsds = issueBsds(this.#signer, input.descriptor, report, this.#bsdsOptions);
      graphMetadata = buildGraphMetadata(input.descriptor, header, { bsds });
      this.#library.saveBsds(blueprintId, bsds);
      this.#library.saveGraphMetadata(blueprintId, graphMetadata);
    } catch (error) {
      this.#failed += 1;
      const reason = describeError(error);
      await this.#publish(create(BSDSFailedSchema, { blueprintId, reason }));
      throw new EsperError(ErrorCode.URABRASK_CERTIFY_FAILED, `certifying ${blueprintId} at ${input.siteKey} failed: ${reason}`, {
        cause: error,
        details: { blueprintId, siteKey: input.siteKey },
      });
    }
    this.#issued += 1;
    const published = await this.#publish(create(BSDSIssuedSchema, { bsds }));
    return { bsds, report, assessment, graphMetadata, published };
  }

  /** Counters since construction. */
  stats(): UrabraskServiceStats {
    return { issued: this.#issued, failed: this.#failed, publishErrors: this.#publishErrors };
  }

  #assertCatalogued(input: CertifyInput): void {
    const blueprintId = input.descriptor.blueprintId;
    const record = this.#library.artifacts(blueprintId).find((r) => r.siteKey === input.siteKey);
    if (record === undefined) {
      throw new EsperError(ErrorCode.URZA_NOT_FOUND, `no artifact for blueprint ${blueprintId} at site ${input.siteKey}`, {
        details: { blueprintId, siteKey: input.siteKey },
      });
    }
    const checksum = sha256Hex(input.artifactBytes);
    if (checksum !== record.checksum) {
      throw new EsperError(
        ErrorCode.URZA_INTEGRITY_FAILURE,
        `artifact bytes (sha256 ${checksum}) differ from the catalogued ${record.checksum}`,
        {
          details: { blueprintId, siteKey: input.siteKey, reason: 'checksum_mismatch' },
        },
      );
    }
  }

  /** Fail-open publish: resolves false (and counts) instead of throwing. */
  async #publish(message: Parameters<Bus['publish']>[0]): Promise<boolean> {
    if (this.#bus === undefined) return false;
    try {
      await this.#bus.publish(message);
      return true;
    } catch {
      this.#publishErrors += 1;
      return false;
    }
  }
}
