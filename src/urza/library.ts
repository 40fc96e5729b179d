/**
 * The Urza library: blueprints, their compiled artifacts, safety data sheets and graph
 * metadata, over the SQLite catalog (`catalog-db.ts`), the content-addressed artifact files
 * (`artifact-files.ts`) and a cache of verified bytes (`artifact-cache.ts`). Every artifact
 * load checks the file's SHA-256 against its row; every sheet is checked with the injected
 * `BsdsVerifier` (`sheets.ts`); anything that fails is an integrity failure, never served. One
 * process writes a library root at a time; saves within the process are serialised.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { toBinary } from '@bufbuild/protobuf';
import {
  CircuitBreaker,
  closeOnce,
  decodeMessage,
  ErrorCode,
  errorMessage,
  EsperError,
  runCleanup,
  ServiceState,
  type CircuitBreakerSnapshot,
} from '../core/index.js';
import { BlueprintDescriptorSchema, type BlueprintDescriptor, type BSDS, type CircuitBreakerState } from '../leyline/index.js';
import { ArtifactCache } from './artifact-cache.js';
import { ArtifactFiles, sha256Hex } from './artifact-files.js';
import { formatUrzaArtifactRef } from './artifact-ref.js';
import { CatalogDb, type ArtifactRow } from './catalog-db.js';
import type { GraphMetadata } from './graph-metadata.js';
import { IntegrityReporter } from './integrity.js';
import {
  resolveUrzaLibraryOptions,
  SaveFaults,
  UrzaSaveStep,
  type ResolvedUrzaLibraryOptions,
  type UrzaLibraryOptions,
} from './library-options.js';
import {
  recordFromRow,
  validateSaveInput,
  type UrzaArtifactRecord,
  type UrzaBlueprintEntry,
  type UrzaListFilter,
  type UrzaLoadResult,
  type UrzaSaveInput,
} from './library-records.js';
import { UrzaIntegrityReason } from './names.js';
import { plainBytes, SheetStore } from './sheets.js';
import { storageInvalid, UrzaStorageReason } from './storage-error.js';

/** Counters and gauges of an {@link UrzaLibrary}. */
export interface UrzaLibraryStats {
  readonly cacheHits: number;
  readonly cacheMisses: number;
  /** Cache entries dropped because their TTL elapsed (then re-verified on reload). */
  readonly cacheExpired: number;
  /** Cache entries dropped to stay within `cacheMaxEntries`. */
  readonly evictions: number;
  readonly cacheSize: number;
  /** Artifacts, descriptors, sheets and graph metadata refused as integrity failures. */
  readonly integrityFailures: number;
  readonly slowQueries: number;
  readonly breakerDenied: number;
  readonly breakerOpenTotal: number;
  readonly breakerState: CircuitBreakerState;
  readonly saves: number;
  /** Unreferenced artifact and temp files removed at open. */
  readonly orphansRemoved: number;
  /** Latency of the last load, in ms. */
  readonly lookupLatencyMs: number;
  readonly breaker: CircuitBreakerSnapshot;
}

/** Lifecycle of an {@link UrzaLibrary}. */
export type UrzaLibraryState = 'running' | 'closing' | 'closed';

/**
 * The artifact library. Open with {@link UrzaLibrary.open}; close with {@link close} or
 * `await using`.
 */
export class UrzaLibrary {
  readonly #options: ResolvedUrzaLibraryOptions;
  readonly #db: CatalogDb;
  readonly #files: ArtifactFiles;
  readonly #breaker: CircuitBreaker;
  readonly #cache: ArtifactCache<UrzaArtifactRecord>;
  readonly #integrity: IntegrityReporter;
  readonly #sheets: SheetStore;
  readonly #state = new ServiceState<UrzaLibraryState>('urza library', 'running');
  readonly #close = closeOnce(() => this.#closeCatalog());
  /** Tail of the save/delete chain: file operations of two saves never interleave. */
  #writeChain: Promise<unknown> = Promise.resolve();
  #slowQueries = 0;
  #breakerDenied = 0;
  #saves = 0;
  #orphansRemoved = 0;
  #lookupLatencyMs = 0;

  private constructor(options: ResolvedUrzaLibraryOptions, db: CatalogDb, files: ArtifactFiles) {
    this.#options = options;
    this.#db = db;
    this.#files = files;
    this.#cache = new ArtifactCache({ maxEntries: options.cacheMaxEntries, ttlMs: options.cacheTtlMs, clock: options.clock });
    this.#integrity = new IntegrityReporter(options.telemetry, options.clock);
    this.#sheets = new SheetStore({
      db,
      verifier: options.bsdsVerifier,
      integrity: this.#integrity,
      clock: options.clock,
      read: (query) => this.#read(query),
    });
    this.#breaker = new CircuitBreaker({
      name: 'urza.library',
      failureThreshold: options.breakerFailureThreshold,
      successThreshold: options.breakerSuccessThreshold,
      openTimeoutMs: options.breakerOpenTimeoutMs,
      clock: options.clock,
    });
  }

  /**
   * Opens (creating if needed) the library: the catalog (integrity and schema version
   * checked), the artifact directory, then removes temp files and artifact files no row
   * references — the debris of a save that crashed before its row committed, or after it
   * committed but before the superseded file was removed.
   * @throws EsperError `URZA_STORAGE_INVALID` naming the database file or artifact directory
   *   when it is corrupt, unreadable, of another schema version, or missing.
   */
  static async open(options: UrzaLibraryOptions): Promise<UrzaLibrary> {
    const resolved = resolveUrzaLibraryOptions(options);
    for (const dir of [resolved.rootDir, path.dirname(resolved.dbPath)]) {
      try {
        await mkdir(dir, { recursive: true });
      } catch (error) {
        throw storageInvalid(dir, UrzaStorageReason.UNREADABLE, `cannot be created (${(error as NodeJS.ErrnoException).code ?? 'error'})`, {
          cause: error,
        });
      }
    }
    const db = CatalogDb.open(resolved.dbPath);
    try {
      const referenced = db.referencedFiles();
      const files = await ArtifactFiles.open(resolved.artifactDir, referenced.size > 0);
      const library = new UrzaLibrary(resolved, db, files);
      library.#orphansRemoved = await files.sweep(referenced);
      return library;
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /** The resolved options (for logging the configuration once at start). */
  get options(): ResolvedUrzaLibraryOptions {
    return this.#options;
  }

  /** `running` until {@link close} is called. */
  get state(): UrzaLibraryState {
    return this.#state.current;
  }

  /**
   * Stores an artifact for `(descriptor.blueprintId, siteKey)` and upserts the descriptor.
   * The file is durable under its content-addressed name before the row commits, so the
   * catalog never names a file that is not there. A sheet (and the graph metadata made with
   * it) that described the artifact this save replaces is dropped in the same transaction.
   * Resolves to the committed record.
   */
  async save(input: UrzaSaveInput): Promise<UrzaArtifactRecord> {
    this.#state.require('running', 'save');
    validateSaveInput(input);
    return this.#serialised(() => this.#save(input));
  }

  /** The reference an artifact is fetched by: `urza://<blueprintId>/<siteKey>`. */
  artifactRef(blueprintId: string, siteKey: string): string {
    return formatUrzaArtifactRef({ blueprintId, siteKey });
  }

  /**
   * Loads the verified artifact of `(blueprintId, siteKey)`. A cache hit serves bytes
   * verified within `cacheTtlMs`; otherwise the row is read (under the slow-query breaker)
   * and the file's SHA-256 is checked against it.
   * @throws EsperError `URZA_NOT_FOUND` when no such artifact is catalogued;
   *   `URZA_INTEGRITY_FAILURE` when the file is missing or its checksum differs (never
   *   served; counted; CRITICAL `integrity_failure` event); `BREAKER_OPEN` when the
   *   breaker refuses a DB read; `URZA_STORAGE_INVALID` when a storage file is unusable.
   */
  async load(blueprintId: string, siteKey: string): Promise<UrzaLoadResult> {
    this.#state.require('running', 'load');
    const startMs = this.#options.clock.monotonicMs();
    const cached = this.#cache.get(blueprintId, siteKey);
    if (cached !== undefined) return this.#loaded(cached.bytes, cached.record, startMs);
    const row = this.#read(() => this.#db.artifact(blueprintId, siteKey));
    if (row === undefined) {
      throw new EsperError(ErrorCode.URZA_NOT_FOUND, `no artifact for blueprint ${blueprintId} at site ${siteKey}`, {
        details: { blueprintId, siteKey },
      });
    }
    const record = recordFromRow(row);
    const generation = this.#cache.generation;
    const bytes = await this.#readVerified(record);
    if (this.#state.is('running')) this.#cache.put(blueprintId, siteKey, bytes, record, generation);
    return this.#loaded(bytes, record, startMs);
  }

  /**
   * The stored descriptor of `blueprintId`, or `undefined`. Reads under the breaker.
   * @throws EsperError `URZA_INTEGRITY_FAILURE` when the stored descriptor does not decode.
   */
  get(blueprintId: string): BlueprintDescriptor | undefined {
    this.#state.require('running', 'get');
    const row = this.#read(() => this.#db.blueprint(blueprintId));
    return row === undefined ? undefined : this.#descriptorOf(row.blueprint_id, row.descriptor);
  }

  /**
   * Stores `bsds` with its blueprint, replacing any earlier sheet.
   * @throws EsperError `INVALID_STATE` when the library has no `bsdsVerifier`;
   *   `INVALID_ARGUMENT` when the sheet fails verification, names another blueprint, or
   *   describes an artifact Urza does not hold for it; `URZA_NOT_FOUND` when the blueprint
   *   is not catalogued (save an artifact first).
   */
  saveBsds(blueprintId: string, bsds: BSDS): void {
    this.#state.require('running', 'saveBsds');
    this.#sheets.saveBsds(blueprintId, bsds);
  }

  /**
   * The stored, verified BSDS of `blueprintId`, or `undefined` when it has none. The sheet
   * is decoded strictly and must verify, name `blueprintId`, and describe one of its
   * catalogued artifacts; otherwise the blueprint's sheet is an integrity failure and the
   * blueprint must not be offered (never fall back to the descriptor's risk).
   * @throws EsperError `URZA_INTEGRITY_FAILURE` (details `blueprintId`, `reason`, `detail`;
   *   counted; CRITICAL `integrity_failure` event) for a sheet that fails any check;
   *   `INVALID_STATE` when the library has no `bsdsVerifier`.
   */
  getBsds(blueprintId: string): BSDS | undefined {
    this.#state.require('running', 'getBsds');
    return this.#sheets.getBsds(blueprintId);
  }

  /**
   * Stores `metadata` (as JSON) with its blueprint, replacing any earlier metadata.
   * @throws EsperError `INVALID_ARGUMENT` when it names another blueprint; `URZA_NOT_FOUND`
   *   when the blueprint is not catalogued.
   */
  saveGraphMetadata(blueprintId: string, metadata: GraphMetadata): void {
    this.#state.require('running', 'saveGraphMetadata');
    this.#sheets.saveGraphMetadata(blueprintId, metadata);
  }

  /**
   * The stored graph metadata of `blueprintId`, or `undefined`.
   * @throws EsperError `URZA_INTEGRITY_FAILURE` (reason `graph_metadata_invalid`) when the
   *   stored JSON is not of the current layout or names another blueprint.
   */
  getGraphMetadata(blueprintId: string): GraphMetadata | undefined {
    this.#state.require('running', 'getGraphMetadata');
    return this.#sheets.getGraphMetadata(blueprintId);
  }

  /** Catalogued artifact records of `blueprintId`, sorted by site key. */
  artifacts(blueprintId: string): UrzaArtifactRecord[] {
    this.#state.require('running', 'artifacts');
    return this.#read(() => this.#db.artifacts(blueprintId)).map(recordFromRow);
  }

  /**
   * Blueprints matching `filter`, sorted by id, with the site keys they have artifacts for.
   * @throws EsperError `URZA_INTEGRITY_FAILURE` naming the first blueprint whose stored descriptor does not decode.
   */
  list(filter: UrzaListFilter = {}): UrzaBlueprintEntry[] {
    this.#state.require('running', 'list');
    return this.#read(() => this.#db.list(filter)).map((row) => ({
      descriptor: this.#descriptorOf(row.blueprint_id, row.descriptor),
      siteKeys: row.siteKeys,
      createdAtMs: row.created_at_ms,
      updatedAtMs: row.updated_at_ms,
    }));
  }

  /**
   * Deletes one artifact (`siteKey` given) or a whole blueprint with all its artifacts.
   * The rows go first, then files no other row references. Resolves to whether anything
   * was catalogued.
   */
  async delete(blueprintId: string, siteKey?: string): Promise<boolean> {
    this.#state.require('running', 'delete');
    return this.#serialised(() => this.#delete(blueprintId, siteKey));
  }

  /** Counters, gauges and the breaker snapshot. */
  stats(): UrzaLibraryStats {
    const breaker = this.#breaker.snapshot();
    const cache = this.#cache.stats();
    return {
      cacheHits: cache.hits,
      cacheMisses: cache.misses,
      cacheExpired: cache.expired,
      evictions: cache.evictions,
      cacheSize: cache.size,
      integrityFailures: this.#integrity.count,
      slowQueries: this.#slowQueries,
      breakerDenied: this.#breakerDenied,
      breakerOpenTotal: breaker.openedTotal,
      breakerState: breaker.state,
      saves: this.#saves,
      orphansRemoved: this.#orphansRemoved,
      lookupLatencyMs: this.#lookupLatencyMs,
      breaker,
    };
  }

  /**
   * Waits for pending saves and deletes (their failures are the callers' to handle), then
   * closes the database. Idempotent: every call returns the first call's promise.
   */
  close(): Promise<void> {
    return this.#close();
  }

  /** `await using` support: same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }

  async #closeCatalog(): Promise<void> {
    this.#state.set('closing');
    try {
      await runCleanup('urza library', [() => this.#writeChain, () => this.#cache.clear(), () => this.#db.close()]);
    } finally {
      this.#state.set('closed');
    }
  }

  #serialised<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#writeChain.then(operation);
    this.#writeChain = run.catch(() => undefined);
    return run;
  }

  async #save(input: UrzaSaveInput): Promise<UrzaArtifactRecord> {
    const { descriptor, siteKey, artifact } = input;
    const faults = new SaveFaults(this.#options.faults?.atSaveStep);
    const fileName = await this.#files.write(artifact, faults);
    const nowMs = this.#options.clock.wallMs();
    const row: ArtifactRow = {
      blueprint_id: descriptor.blueprintId,
      site_key: siteKey,
      file_name: fileName,
      checksum: sha256Hex(artifact),
      guard_digest: input.guardDigest,
      size_bytes: artifact.byteLength,
      compile_ms: input.compileMs,
      prewarm_p50_ms: input.prewarm.p50Ms,
      prewarm_p95_ms: input.prewarm.p95Ms,
      created_at_ms: nowMs,
    };
    const previous = this.#db.artifact(row.blueprint_id, siteKey);
    try {
      this.#db.transaction(() => {
        this.#db.upsertBlueprint({
          blueprintId: row.blueprint_id,
          descriptor: Buffer.from(toBinary(BlueprintDescriptorSchema, descriptor)),
          tier: descriptor.tier,
          family: descriptor.family,
          nowMs,
        });
        this.#db.putArtifact(row);
        this.#sheets.dropStale(row.blueprint_id, nowMs);
        faults.at(UrzaSaveStep.BEFORE_COMMIT);
      });
    } catch (error) {
      // A real DB error (not a simulated crash): drop the file the row would have named,
      // unless another row already shares it.
      if (!faults.crashed) await this.#removeIfUnreferenced(fileName);
      throw error;
    }
    this.#cache.invalidate(row.blueprint_id, siteKey);
    this.#saves += 1;
    faults.at(UrzaSaveStep.COMMITTED);
    if (previous !== undefined && previous.file_name !== fileName) await this.#removeIfUnreferenced(previous.file_name);
    return recordFromRow(row);
  }

  async #delete(blueprintId: string, siteKey: string | undefined): Promise<boolean> {
    const files = (siteKey === undefined ? this.#db.artifacts(blueprintId) : [this.#db.artifact(blueprintId, siteKey)]).flatMap((row) =>
      row === undefined ? [] : [row.file_name],
    );
    const changes = this.#db.transaction(() => {
      const deleted = this.#db.delete(blueprintId, siteKey);
      if (siteKey !== undefined) this.#sheets.dropStale(blueprintId, this.#options.clock.wallMs());
      return deleted;
    });
    this.#cache.invalidate(blueprintId, siteKey);
    for (const fileName of files) await this.#removeIfUnreferenced(fileName);
    return changes > 0;
  }

  async #readVerified(record: UrzaArtifactRecord): Promise<Uint8Array> {
    const bytes = await this.#files.read(record.fileName);
    const actual = bytes === undefined ? '' : sha256Hex(bytes);
    if (bytes !== undefined && actual === record.checksum) return bytes;
    const missing = bytes === undefined;
    throw this.#integrity.fail({
      blueprintId: record.blueprintId,
      reason: missing ? UrzaIntegrityReason.MISSING_ARTIFACT : UrzaIntegrityReason.CHECKSUM_MISMATCH,
      problem: `its artifact at site ${record.siteKey} ${missing ? 'is missing' : 'does not match its checksum'}`,
      attributes: { site_key: record.siteKey, expected_checksum: record.checksum, actual_checksum: actual, file_name: record.fileName },
    });
  }

  #descriptorOf(blueprintId: string, blob: Buffer): BlueprintDescriptor {
    try {
      return decodeMessage(BlueprintDescriptorSchema, plainBytes(blob));
    } catch (error) {
      throw this.#integrity.fail({
        blueprintId,
        reason: UrzaIntegrityReason.DESCRIPTOR_UNDECODABLE,
        problem: 'its stored descriptor does not decode',
        cause: error,
      });
    }
  }

  /** Runs a DB read under the slow-query breaker: a read slower than `slowQueryMs` is a failure. */
  #read<T>(query: () => T): T {
    if (!this.#breaker.allow()) {
      this.#breakerDenied += 1;
      throw new EsperError(ErrorCode.BREAKER_OPEN, 'urza library breaker is open; DB reads refused', {
        details: { breaker: this.#breaker.name },
      });
    }
    const clock = this.#options.clock;
    const startMs = clock.monotonicMs();
    let result: T;
    try {
      result = query();
    } catch (error) {
      this.#breaker.recordFailure(errorMessage(error));
      throw error;
    }
    const elapsedMs = clock.monotonicMs() - startMs;
    if (elapsedMs > this.#options.slowQueryMs) {
      this.#slowQueries += 1;
      this.#breaker.recordFailure(`slow query: ${elapsedMs.toFixed(1)} ms`);
    } else {
      this.#breaker.recordSuccess();
    }
    return result;
  }

  #loaded(bytes: Uint8Array, record: UrzaArtifactRecord, startMs: number): UrzaLoadResult {
    const fetchMs = this.#options.clock.monotonicMs() - startMs;
    this.#lookupLatencyMs = fetchMs;
    // A copy, so a caller that mutates its bytes cannot poison the cache.
    return { bytes: bytes.slice(), record, fetchMs };
  }

  async #removeIfUnreferenced(fileName: string): Promise<void> {
    if (!this.#db.referencesFile(fileName)) await this.#files.remove(fileName);
  }
}
