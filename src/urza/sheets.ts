/**
 * The side data of a catalogued blueprint: its safety data sheet (verified on every store
 * and every read) and its graph metadata (zod-checked on every read). A sheet always
 * describes an artifact Urza holds for the blueprint; one that does not, or that fails any
 * check, is an integrity failure — never served, never replaced by "no sheet".
 */
import { toBinary } from '@bufbuild/protobuf';
import { decodeMessage, errorMessage, ErrorCode, EsperError, optionChecks, type Clock } from '../core/index.js';
import { BSDSSchema, type BSDS } from '../leyline/index.js';
import type { BsdsVerifier } from './bsds-verifier.js';
import type { BlueprintSideColumn, CatalogDb } from './catalog-db.js';
import { parseGraphMetadata, type GraphMetadata } from './graph-metadata.js';
import type { IntegrityReporter } from './integrity.js';
import { UrzaIntegrityReason } from './names.js';

/** What {@link SheetStore} works on; `read` runs a DB read under the library's breaker. */
export interface SheetStoreContext {
  readonly db: CatalogDb;
  readonly verifier: BsdsVerifier | undefined;
  readonly integrity: IntegrityReporter;
  readonly clock: Clock;
  readonly read: <T>(query: () => T) => T;
}

/** Sheets and graph metadata of the blueprints in one catalog. */
export class SheetStore {
  readonly #context: SheetStoreContext;

  constructor(context: SheetStoreContext) {
    this.#context = context;
  }

  /** See `UrzaLibrary.saveBsds`. */
  saveBsds(blueprintId: string, bsds: BSDS): void {
    const { db } = this.#context;
    const check = optionChecks('UrzaLibrary.saveBsds');
    const verdict = this.#verifier('saveBsds').verify(bsds);
    if (!verdict.ok) check.fail('bsds.security', 'a sheet signed by a key of the ring', verdict.reason);
    if (bsds.blueprintId !== blueprintId) check.fail('bsds.blueprintId', blueprintId, bsds.blueprintId);
    if (db.blueprint(blueprintId) === undefined) throw notCatalogued(blueprintId);
    if (!this.#describesCatalogued(blueprintId, bsds.artifactChecksum)) {
      check.fail('bsds.artifactChecksum', `the checksum of an artifact of ${blueprintId}`, bsds.artifactChecksum);
    }
    this.#set(blueprintId, 'bsds', Buffer.from(toBinary(BSDSSchema, bsds)));
  }

  /** See `UrzaLibrary.getBsds`. */
  getBsds(blueprintId: string): BSDS | undefined {
    const verifier = this.#verifier('getBsds');
    const blob = this.#context.read(() => this.#context.db.sideColumn(blueprintId, 'bsds'));
    if (blob === undefined || blob === null) return undefined;
    const fail = (reason: UrzaIntegrityReason, problem: string, detail?: string, cause?: unknown): EsperError =>
      this.#context.integrity.fail({ blueprintId, reason, problem, attributes: detail === undefined ? {} : { detail }, cause });
    let bsds: BSDS;
    try {
      bsds = decodeMessage(BSDSSchema, plainBytes(blob));
    } catch (error) {
      throw fail(UrzaIntegrityReason.BSDS_UNDECODABLE, 'its safety data sheet does not decode', undefined, error);
    }
    const verdict = verifier.verify(bsds);
    if (!verdict.ok) throw fail(UrzaIntegrityReason.BSDS_UNVERIFIED, `its safety data sheet fails verification`, verdict.reason);
    if (bsds.blueprintId !== blueprintId) {
      throw fail(
        UrzaIntegrityReason.BSDS_MISMATCH,
        `its safety data sheet is of blueprint ${bsds.blueprintId}`,
        `sheet of ${bsds.blueprintId}`,
      );
    }
    if (!this.#describesCatalogued(blueprintId, bsds.artifactChecksum)) {
      throw fail(
        UrzaIntegrityReason.BSDS_MISMATCH,
        'its safety data sheet describes an artifact Urza does not hold',
        `sheet of artifact ${bsds.artifactChecksum}`,
      );
    }
    return bsds;
  }

  /** See `UrzaLibrary.saveGraphMetadata`. */
  saveGraphMetadata(blueprintId: string, metadata: GraphMetadata): void {
    if (metadata.blueprintId !== blueprintId) {
      optionChecks('UrzaLibrary.saveGraphMetadata').fail('metadata.blueprintId', blueprintId, metadata.blueprintId);
    }
    this.#set(blueprintId, 'graph_metadata_json', JSON.stringify(metadata));
  }

  /** See `UrzaLibrary.getGraphMetadata`. */
  getGraphMetadata(blueprintId: string): GraphMetadata | undefined {
    const json = this.#context.read(() => this.#context.db.sideColumn(blueprintId, 'graph_metadata_json'));
    if (json === undefined || json === null) return undefined;
    let metadata: GraphMetadata;
    try {
      metadata = parseGraphMetadata(json);
    } catch (error) {
      const detail = errorMessage(error);
      throw this.#context.integrity.fail({
        blueprintId,
        reason: UrzaIntegrityReason.GRAPH_METADATA_INVALID,
        problem: detail,
        attributes: { detail },
        cause: error,
      });
    }
    if (metadata.blueprintId !== blueprintId) {
      throw this.#context.integrity.fail({
        blueprintId,
        reason: UrzaIntegrityReason.GRAPH_METADATA_INVALID,
        problem: `its graph metadata is of ${metadata.blueprintId}`,
        attributes: { detail: `metadata of ${metadata.blueprintId}` },
      });
    }
    return metadata;
  }

  /**
   * Clears the sheet and graph metadata of `blueprintId` when the sheet describes an artifact
   * no longer catalogued (replaced or deleted). Runs inside the save or delete transaction.
   * An undecodable sheet is left for {@link getBsds} to report.
   */
  dropStale(blueprintId: string, nowMs: number): void {
    const { db } = this.#context;
    const blob = db.sideColumn(blueprintId, 'bsds');
    if (blob === undefined || blob === null) return;
    let checksum: string;
    try {
      checksum = decodeMessage(BSDSSchema, plainBytes(blob)).artifactChecksum;
    } catch {
      return;
    }
    if (this.#describesCatalogued(blueprintId, checksum)) return;
    db.setSideColumn(blueprintId, 'bsds', null, nowMs);
    db.setSideColumn(blueprintId, 'graph_metadata_json', null, nowMs);
  }

  #describesCatalogued(blueprintId: string, checksum: string): boolean {
    return this.#context.db.artifacts(blueprintId).some((row) => row.checksum === checksum);
  }

  #set(blueprintId: string, column: BlueprintSideColumn, value: Buffer | string): void {
    if (!this.#context.db.setSideColumn(blueprintId, column, value, this.#context.clock.wallMs())) throw notCatalogued(blueprintId);
  }

  #verifier(operation: string): BsdsVerifier {
    const verifier = this.#context.verifier;
    if (verifier === undefined) {
      throw new EsperError(ErrorCode.INVALID_STATE, `urza library has no bsdsVerifier; cannot ${operation}`, { details: { operation } });
    }
    return verifier;
  }
}

/** A plain `Uint8Array` view of a SQLite blob, so decoded `bytes` fields are not Node `Buffer`s. */
export function plainBytes(blob: Buffer): Uint8Array {
  return new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength);
}

/** `URZA_NOT_FOUND` for a blueprint that has no catalog row. */
export function notCatalogued(blueprintId: string): EsperError {
  return new EsperError(ErrorCode.URZA_NOT_FOUND, `blueprint ${blueprintId} is not catalogued`, { details: { blueprintId } });
}
