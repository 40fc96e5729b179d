/** The records `UrzaLibrary` takes and returns, and their checks. */
import type { BlueprintDescriptor } from '../leyline/index.js';
import type { ArtifactRow } from './catalog-db.js';
import { optionChecks } from '../core/index.js';

/** Measured prewarm latencies of an artifact, in ms. */
export interface UrzaPrewarm {
  readonly p50Ms: number;
  readonly p95Ms: number;
}

/** Input of `UrzaLibrary.save`. */
export interface UrzaSaveInput {
  /** The blueprint; its `blueprintId` keys the row. */
  readonly descriptor: BlueprintDescriptor;
  /** The site shape the artifact was compiled for (opaque, non-empty). */
  readonly siteKey: string;
  /** The artifact bytes (opaque to Urza). Non-empty. */
  readonly artifact: Uint8Array;
  /** SHA-256 hex of the artifact's canonical guard spec. */
  readonly guardDigest: string;
  /** Compile time, in ms. */
  readonly compileMs: number;
  /** Measured prewarm latencies. */
  readonly prewarm: UrzaPrewarm;
}

/** The catalog row of one stored artifact. */
export interface UrzaArtifactRecord {
  readonly blueprintId: string;
  readonly siteKey: string;
  /** File name under the artifact directory: `<checksum>.esa`. */
  readonly fileName: string;
  /** SHA-256 hex of the file bytes. */
  readonly checksum: string;
  readonly guardDigest: string;
  readonly sizeBytes: number;
  readonly compileMs: number;
  readonly prewarmP50Ms: number;
  readonly prewarmP95Ms: number;
  /** Wall time of the save, ms since the epoch. */
  readonly createdAtMs: number;
}

/** Result of `UrzaLibrary.load`. */
export interface UrzaLoadResult {
  /** Verified artifact bytes (a copy the caller owns). */
  readonly bytes: Uint8Array;
  readonly record: UrzaArtifactRecord;
  /** Time the load took, in ms. */
  readonly fetchMs: number;
}

/** One blueprint of `UrzaLibrary.list`. */
export interface UrzaBlueprintEntry {
  readonly descriptor: BlueprintDescriptor;
  /** Site keys with a stored artifact, sorted. */
  readonly siteKeys: readonly string[];
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
}

/** Filter of `UrzaLibrary.list`; omitted fields match everything. */
export interface UrzaListFilter {
  readonly tier?: BlueprintDescriptor['tier'];
  readonly family?: string;
}

/** The record of an artifact row. */
export function recordFromRow(row: ArtifactRow): UrzaArtifactRecord {
  return {
    blueprintId: row.blueprint_id,
    siteKey: row.site_key,
    fileName: row.file_name,
    checksum: row.checksum,
    guardDigest: row.guard_digest,
    sizeBytes: row.size_bytes,
    compileMs: row.compile_ms,
    prewarmP50Ms: row.prewarm_p50_ms,
    prewarmP95Ms: row.prewarm_p95_ms,
    createdAtMs: row.created_at_ms,
  };
}

/** Throws `INVALID_ARGUMENT` naming the first bad field of a save. */
export function validateSaveInput(input: UrzaSaveInput): void {
  const check = optionChecks('UrzaLibrary.save');
  check.nonEmptyString('descriptor.blueprintId', input.descriptor.blueprintId);
  if (input.siteKey.length === 0 || input.siteKey.includes('\u0000'))
    check.fail('siteKey', 'a non-empty string without NUL', input.siteKey);
  if (!(input.artifact instanceof Uint8Array) || input.artifact.byteLength === 0) {
    check.fail('artifact', 'non-empty bytes', input.artifact?.byteLength);
  }
  check.nonNegative('compileMs', input.compileMs);
  check.nonNegative('prewarm.p50Ms', input.prewarm.p50Ms);
  check.nonNegative('prewarm.p95Ms', input.prewarm.p95Ms);
}
