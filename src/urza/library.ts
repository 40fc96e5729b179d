/**
 * Urza's storage core: a SQLite catalog (better-sqlite3, WAL journal) of blueprint
 * descriptors and compiled artifacts, with the artifact bytes in content-addressed files
 * (`<sha256>.esa`) under one directory.
 *
 * Deliberate departures from the prototype (reference prototype-blueprint-pipeline §4.1–§4.5):
 * - No JSON side-WAL: a save writes the file (temp + fsync + rename + directory fsync)
 *   *before* the row commits, so a crash leaves the old state or the new one; the only
 *   debris is an unreferenced file, removed when the library next opens.
 * - The artifact's SHA-256 is checked against its row on every load that reads the file,
 *   and a mismatch or a missing file is refused with a typed error, counted and reported
 *   as a CRITICAL `integrity_failure` event. The cache holds only verified bytes and
 *   re-reads and re-verifies an entry once it expires.
 * - TTL expiry drops the cache entry only; it never deletes rows or artifact files (the
 *   prototype deleted both on expiry, so an idle blueprint silently vanished).
 * - Artifacts are keyed by blueprint *and* site key, so one blueprint compiled for several
 *   site shapes keeps one artifact per shape.
 *
 * One process writes a library root at a time; saves within the process are serialised.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import Database from 'better-sqlite3';
import {
  buildTelemetryPacket,
  CircuitBreaker,
  ErrorCode,
  EsperError,
  systemClock,
  type CircuitBreakerSnapshot,
  type Clock,
  type TelemetrySink,
} from '../core/index.js';
import {
  BlueprintDescriptorSchema,
  BSDSSchema,
  TelemetryLevel,
  type BlueprintDescriptor,
  type BSDS,
  type CircuitBreakerState,
} from '../leyline/index.js';
import { formatUrzaArtifactRef } from './artifact-ref.js';
import { parseGraphMetadata, type GraphMetadata } from './graph-metadata.js';
import { UrzaEvent, UrzaIntegrityReason, UrzaMetric } from './names.js';

/** File extension of a stored artifact. */
export const URZA_ARTIFACT_EXTENSION = '.esa';
const TEMP_SUFFIX = '.tmp';
const SCHEMA_VERSION = 1;

/**
 * The points of a save at which the `faults` hook is called, in order. A hook that throws
 * at a step simulates a crash there: the save stops without cleaning up.
 */
export const UrzaSaveStep = {
  /** The temp file is written and fsynced; nothing is renamed yet. */
  TEMP_WRITTEN: 'temp_written',
  /** The temp file has its final content-addressed name; the directory is not fsynced. */
  RENAMED: 'renamed',
  /** The directory entry is durable; the row is not written. */
  DIR_SYNCED: 'dir_synced',
  /** Inside the DB transaction, rows written but not committed. */
  BEFORE_COMMIT: 'before_commit',
  /** The row is committed; the superseded artifact file is not removed yet. */
  COMMITTED: 'committed',
} as const;

/** Union of {@link UrzaSaveStep} values. */
export type UrzaSaveStep = (typeof UrzaSaveStep)[keyof typeof UrzaSaveStep];

/** Every save step, in the order a save reaches them. */
export const URZA_SAVE_STEPS: readonly UrzaSaveStep[] = Object.freeze(Object.values(UrzaSaveStep));

/** Test-only failure injection. Live code never passes it. */
export interface UrzaFaults {
  /** Called at each {@link UrzaSaveStep}; throwing simulates a crash at that step. */
  readonly atSaveStep?: (step: UrzaSaveStep) => void;
}

/** Options of {@link UrzaLibrary}. */
export interface UrzaLibraryOptions {
  /** Root directory; created if missing. Required. */
  readonly rootDir: string;
  /**
   * SQLite database file.
   * @default `<rootDir>/catalog.db`
   */
  readonly dbPath?: string;
  /**
   * Directory of artifact files.
   * @default `<rootDir>/artifacts`
   */
  readonly artifactDir?: string;
  /**
   * Verified artifacts kept in the LRU cache. Integer ≥ 0 (0 disables the cache).
   * @default 128
   */
  readonly cacheMaxEntries?: number;
  /**
   * How long a cached artifact is served before it is re-read and re-verified, in ms.
   * Finite, ≥ 0.
   * @default 60000
   */
  readonly cacheTtlMs?: number;
  /**
   * A DB read slower than this counts as a breaker failure (reference §4.4: 250 ms).
   * Finite, ≥ 0.
   * @default 250
   */
  readonly slowQueryMs?: number;
  /**
   * Consecutive slow or failed reads that open the breaker (reference §4.1).
   * @default 3
   */
  readonly breakerFailureThreshold?: number;
  /**
   * Probe successes that close a half-open breaker (reference §4.1).
   * @default 2
   */
  readonly breakerSuccessThreshold?: number;
  /**
   * How long an open breaker refuses DB reads, in ms (reference §4.1).
   * @default 30000
   */
  readonly breakerOpenTimeoutMs?: number;
  /**
   * Time source for latencies, TTL and timestamps.
   * @default systemClock
   */
  readonly clock?: Clock;
  /** Receives the CRITICAL `integrity_failure` events. @default none (counted only) */
  readonly telemetry?: TelemetrySink;
  /** Failure injection for crash tests only. @default none */
  readonly faults?: UrzaFaults;
}

/** {@link UrzaLibraryOptions} after defaults and validation. */
export interface ResolvedUrzaLibraryOptions {
  readonly rootDir: string;
  readonly dbPath: string;
  readonly artifactDir: string;
  readonly cacheMaxEntries: number;
  readonly cacheTtlMs: number;
  readonly slowQueryMs: number;
  readonly breakerFailureThreshold: number;
  readonly breakerSuccessThreshold: number;
  readonly breakerOpenTimeoutMs: number;
  readonly clock: Clock;
  readonly telemetry: TelemetrySink | undefined;
  readonly faults: UrzaFaults | undefined;
}

/** Defaults of {@link UrzaLibraryOptions}. */
export const URZA_LIBRARY_DEFAULTS = Object.freeze({
  cacheMaxEntries: 128,
  cacheTtlMs: 60_000,
  slowQueryMs: 250,
  breakerFailureThreshold: 3,
  breakerSuccessThreshold: 2,
  breakerOpenTimeoutMs: 30_000,
});

/** Validates `options` and fills in defaults; throws `INVALID_ARGUMENT` naming the field. */
export function resolveUrzaLibraryOptions(options: UrzaLibraryOptions): ResolvedUrzaLibraryOptions {
  if (typeof options.rootDir !== 'string' || options.rootDir.length === 0) {
    throw invalidArgument('rootDir', 'a non-empty path', options.rootDir);
  }
  const rootDir = path.resolve(options.rootDir);
  const resolved: ResolvedUrzaLibraryOptions = {
    rootDir,
    dbPath: path.resolve(options.dbPath ?? path.join(rootDir, 'catalog.db')),
    artifactDir: path.resolve(options.artifactDir ?? path.join(rootDir, 'artifacts')),
    cacheMaxEntries: options.cacheMaxEntries ?? URZA_LIBRARY_DEFAULTS.cacheMaxEntries,
    cacheTtlMs: options.cacheTtlMs ?? URZA_LIBRARY_DEFAULTS.cacheTtlMs,
    slowQueryMs: options.slowQueryMs ?? URZA_LIBRARY_DEFAULTS.slowQueryMs,
    breakerFailureThreshold: options.breakerFailureThreshold ?? URZA_LIBRARY_DEFAULTS.breakerFailureThreshold,
    breakerSuccessThreshold: options.breakerSuccessThreshold ?? URZA_LIBRARY_DEFAULTS.breakerSuccessThreshold,
    breakerOpenTimeoutMs: options.breakerOpenTimeoutMs ?? URZA_LIBRARY_DEFAULTS.breakerOpenTimeoutMs,
    clock: options.clock ?? systemClock,
    telemetry: options.telemetry,
    faults: options.faults,
  };
  if (!Number.isSafeInteger(resolved.cacheMaxEntries) || resolved.cacheMaxEntries < 0) {
    throw invalidArgument('cacheMaxEntries', 'an integer ≥ 0', resolved.cacheMaxEntries);
  }
  for (const field of ['cacheTtlMs', 'slowQueryMs', 'breakerOpenTimeoutMs'] as const) {
    const value = resolved[field];
    if (!Number.isFinite(value) || value < 0) throw invalidArgument(field, 'a finite number ≥ 0', value);
  }
  for (const field of ['breakerFailureThreshold', 'breakerSuccessThreshold'] as const) {
    const value = resolved[field];
    if (!Number.isSafeInteger(value) || value < 1) throw invalidArgument(field, 'an integer ≥ 1', value);
  }
  return resolved;
}

/** Measured prewarm latencies of an artifact, in ms. */
export interface UrzaPrewarm {
  readonly p50Ms: number;
  readonly p95Ms: number;
}

/** Input of {@link UrzaLibrary.save}. */
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

/** Result of {@link UrzaLibrary.load}. */
export interface UrzaLoadResult {
  /** Verified artifact bytes (a copy the caller owns). */
  readonly bytes: Uint8Array;
  readonly record: UrzaArtifactRecord;
  /** Time the load took, in ms. */
  readonly fetchMs: number;
}

/** One blueprint of {@link UrzaLibrary.list}. */
export interface UrzaBlueprintEntry {
  readonly descriptor: BlueprintDescriptor;
  /** Site keys with a stored artifact, sorted. */
  readonly siteKeys: readonly string[];
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
}

/** Filter of {@link UrzaLibrary.list}; omitted fields match everything. */
export interface UrzaListFilter {
  readonly tier?: BlueprintDescriptor['tier'];
  readonly family?: string;
}

/** Counters and gauges of an {@link UrzaLibrary}. */
export interface UrzaLibraryStats {
  readonly cacheHits: number;
  readonly cacheMisses: number;
  /** Cache entries dropped because their TTL elapsed (then re-verified on reload). */
  readonly cacheExpired: number;
  /** Cache entries dropped to stay within `cacheMaxEntries`. */
  readonly evictions: number;
  readonly cacheSize: number;
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

interface CacheEntry {
  readonly bytes: Uint8Array;
  readonly record: UrzaArtifactRecord;
  readonly verifiedAtMs: number;
}

interface ArtifactRow {
  blueprint_id: string;
  site_key: string;
  file_name: string;
  checksum: string;
  guard_digest: string;
  size_bytes: number;
  compile_ms: number;
  prewarm_p50_ms: number;
  prewarm_p95_ms: number;
  created_at_ms: number;
}

interface BlueprintRow {
  blueprint_id: string;
  descriptor: Buffer;
  created_at_ms: number;
  updated_at_ms: number;
}

const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS blueprints (
  blueprint_id TEXT PRIMARY KEY,
  descriptor BLOB NOT NULL,
  tier INTEGER NOT NULL,
  family TEXT NOT NULL,
  graph_metadata_json TEXT,
  bsds BLOB,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS blueprints_tier_family ON blueprints (tier, family);
CREATE TABLE IF NOT EXISTS artifacts (
  blueprint_id TEXT NOT NULL REFERENCES blueprints (blueprint_id) ON DELETE CASCADE,
  site_key TEXT NOT NULL,
  file_name TEXT NOT NULL,
  checksum TEXT NOT NULL,
  guard_digest TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  compile_ms REAL NOT NULL,
  prewarm_p50_ms REAL NOT NULL,
  prewarm_p95_ms REAL NOT NULL,
  created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (blueprint_id, site_key)
);
CREATE INDEX IF NOT EXISTS artifacts_file_name ON artifacts (file_name);
`;

/**
 * The artifact library. Open with {@link UrzaLibrary.open}; close with {@link close} or
 * `await using`.
 */
export class UrzaLibrary {
  readonly #options: ResolvedUrzaLibraryOptions;
  readonly #db: Database.Database;
  readonly #breaker: CircuitBreaker;
  readonly #cache = new Map<string, CacheEntry>();
  #state: UrzaLibraryState = 'running';
  #closePromise: Promise<void> | undefined;
  /** Tail of the save/delete chain: file operations of two saves never interleave. */
  #writeChain: Promise<unknown> = Promise.resolve();
  #cacheHits = 0;
  #cacheMisses = 0;
  #cacheExpired = 0;
  #evictions = 0;
  #integrityFailures = 0;
  #slowQueries = 0;
  #breakerDenied = 0;
  #saves = 0;
  #orphansRemoved = 0;
  #lookupLatencyMs = 0;
  /** Bumped by every save and delete, so a load racing one does not cache stale bytes. */
  #generation = 0;

  private constructor(options: ResolvedUrzaLibraryOptions, db: Database.Database) {
    this.#options = options;
    this.#db = db;
    this.#breaker = new CircuitBreaker({
      name: 'urza.library',
      failureThreshold: options.breakerFailureThreshold,
      successThreshold: options.breakerSuccessThreshold,
      openTimeoutMs: options.breakerOpenTimeoutMs,
      clock: options.clock,
    });
  }

  /**
   * Opens (creating if needed) the library: directories, schema, WAL journal mode, then
   * removes temp files and artifact files no row references — the debris of a save that
   * crashed before its row committed, or after it committed but before the superseded
   * file was removed.
   */
  static async open(options: UrzaLibraryOptions): Promise<UrzaLibrary> {
    const resolved = resolveUrzaLibraryOptions(options);
    mkdirSync(resolved.rootDir, { recursive: true });
    mkdirSync(resolved.artifactDir, { recursive: true });
    mkdirSync(path.dirname(resolved.dbPath), { recursive: true });
    const db = new Database(resolved.dbPath);
    try {
      db.pragma('journal_mode = WAL');
      // FULL: a save is acknowledged only once its row is durable, not just consistent.
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.exec(SCHEMA_SQL);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    } catch (error) {
      db.close();
      throw error;
    }
    const library = new UrzaLibrary(resolved, db);
    try {
      await library.#removeOrphans();
    } catch (error) {
      db.close();
      throw error;
    }
    return library;
  }

  /** The resolved options (for logging the configuration once at start). */
  get options(): ResolvedUrzaLibraryOptions {
    return this.#options;
  }

  /** `running` until {@link close} is called. */
  get state(): UrzaLibraryState {
    return this.#state;
  }

  /**
   * Stores an artifact for `(descriptor.blueprintId, siteKey)` and upserts the descriptor.
   * The file is durable under its content-addressed name before the row commits, so the
   * catalog never names a file that is not there. Resolves to the committed record.
   */
  async save(input: UrzaSaveInput): Promise<UrzaArtifactRecord> {
    this.#assertRunning('save');
    validateSaveInput(input);
    const run = this.#writeChain.then(() => this.#save(input));
    this.#writeChain = run.catch(() => undefined);
    return run;
  }

  /**
   * Loads the verified artifact of `(blueprintId, siteKey)`. A cache hit serves bytes
   * verified within `cacheTtlMs`; otherwise the row is read (under the slow-query breaker)
   * and the file's SHA-256 is checked against it.
   * @throws EsperError `URZA_NOT_FOUND` when no such artifact is catalogued;
   *   `URZA_INTEGRITY_FAILURE` when the file is missing or its checksum differs (never
   *   served; counted; CRITICAL `integrity_failure` event); `BREAKER_OPEN` when the
   *   breaker refuses a DB read.
   */
  /** The reference an artifact is fetched by: `urza://<blueprintId>/<siteKey>`. */
  artifactRef(blueprintId: string, siteKey: string): string {
    return formatUrzaArtifactRef({ blueprintId, siteKey });
  }

  async load(blueprintId: string, siteKey: string): Promise<UrzaLoadResult> {
    this.#assertRunning('load');
    const clock = this.#options.clock;
    const startMs = clock.monotonicMs();
    const key = cacheKey(blueprintId, siteKey);
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      if (clock.monotonicMs() - cached.verifiedAtMs < this.#options.cacheTtlMs) {
        this.#cache.delete(key);
        this.#cache.set(key, cached);
        this.#cacheHits += 1;
        return this.#loaded(cached.bytes, cached.record, startMs);
      }
      this.#cache.delete(key);
      this.#cacheExpired += 1;
    }
    this.#cacheMisses += 1;
    const row = this.#read(() =>
      this.#db
        .prepare<[string, string], ArtifactRow>('SELECT * FROM artifacts WHERE blueprint_id = ? AND site_key = ?')
        .get(blueprintId, siteKey),
    );
    if (row === undefined) {
      throw new EsperError(ErrorCode.URZA_NOT_FOUND, `no artifact for blueprint ${blueprintId} at site ${siteKey}`, {
        details: { blueprintId, siteKey },
      });
    }
    const record = recordFromRow(row);
    const generation = this.#generation;
    const bytes = await this.#readVerified(record);
    // A save or delete may have replaced the row while the file was read; cache only if
    // nothing was written meanwhile.
    const unchanged = generation === this.#generation;
    if (unchanged && this.#options.cacheMaxEntries > 0 && this.#state === 'running') {
      this.#cachePut(key, { bytes, record, verifiedAtMs: clock.monotonicMs() });
    }
    return this.#loaded(bytes, record, startMs);
  }

  /** The stored descriptor of `blueprintId`, or `undefined`. Reads under the breaker. */
  get(blueprintId: string): BlueprintDescriptor | undefined {
    this.#assertRunning('get');
    const row = this.#read(() =>
      this.#db.prepare<[string], BlueprintRow>('SELECT * FROM blueprints WHERE blueprint_id = ?').get(blueprintId),
    );
    return row === undefined ? undefined : fromBinary(BlueprintDescriptorSchema, row.descriptor);
  }

  /**
   * Stores `bsds` (protobuf bytes) with its blueprint, replacing any earlier sheet.
   * @throws EsperError `INVALID_ARGUMENT` when the sheet is unsigned (no signature in
   *   `security`) or names another blueprint; `URZA_NOT_FOUND` when the blueprint is not
   *   catalogued (save an artifact first).
   */
  saveBsds(blueprintId: string, bsds: BSDS): void {
    this.#assertRunning('saveBsds');
    if (bsds.security === undefined || bsds.security.signature.length === 0 || bsds.security.keyId.length === 0) {
      throw invalidArgument('bsds.security', 'a signed BSDS', 'an unsigned sheet');
    }
    if (bsds.blueprintId !== blueprintId) throw invalidArgument('bsds.blueprintId', blueprintId, bsds.blueprintId);
    this.#updateBlueprintColumn(blueprintId, 'bsds', Buffer.from(toBinary(BSDSSchema, bsds)));
  }

  /** The stored BSDS of `blueprintId` (signature intact, verify with `verifyBsds`), or `undefined`. */
  getBsds(blueprintId: string): BSDS | undefined {
    this.#assertRunning('getBsds');
    const row = this.#read(() =>
      this.#db.prepare<[string], { bsds: Buffer | null }>('SELECT bsds FROM blueprints WHERE blueprint_id = ?').get(blueprintId),
    );
    return row?.bsds == null ? undefined : fromBinary(BSDSSchema, row.bsds);
  }

  /**
   * Stores `metadata` (as JSON) with its blueprint, replacing any earlier metadata.
   * @throws EsperError `INVALID_ARGUMENT` when it names another blueprint; `URZA_NOT_FOUND`
   *   when the blueprint is not catalogued.
   */
  saveGraphMetadata(blueprintId: string, metadata: GraphMetadata): void {
    this.#assertRunning('saveGraphMetadata');
    if (metadata.blueprintId !== blueprintId) throw invalidArgument('metadata.blueprintId', blueprintId, metadata.blueprintId);
    this.#updateBlueprintColumn(blueprintId, 'graph_metadata_json', JSON.stringify(metadata));
  }

  /** The stored graph metadata of `blueprintId`, or `undefined`. */
  getGraphMetadata(blueprintId: string): GraphMetadata | undefined {
    this.#assertRunning('getGraphMetadata');
    const row = this.#read(() =>
      this.#db
        .prepare<[string], { graph_metadata_json: string | null }>('SELECT graph_metadata_json FROM blueprints WHERE blueprint_id = ?')
        .get(blueprintId),
    );
    return row?.graph_metadata_json == null ? undefined : parseGraphMetadata(row.graph_metadata_json);
  }

  /** Catalogued artifact records of `blueprintId`, sorted by site key. */
  artifacts(blueprintId: string): UrzaArtifactRecord[] {
    this.#assertRunning('artifacts');
    const rows = this.#read(() =>
      this.#db.prepare<[string], ArtifactRow>('SELECT * FROM artifacts WHERE blueprint_id = ? ORDER BY site_key').all(blueprintId),
    );
    return rows.map(recordFromRow);
  }

  /** Blueprints matching `filter`, sorted by id, with the site keys they have artifacts for. */
  list(filter: UrzaListFilter = {}): UrzaBlueprintEntry[] {
    this.#assertRunning('list');
    const clauses: string[] = [];
    const params: (string | number)[] = [];
    if (filter.tier !== undefined) {
      clauses.push('b.tier = ?');
      params.push(filter.tier);
    }
    if (filter.family !== undefined) {
      clauses.push('b.family = ?');
      params.push(filter.family);
    }
    const where = clauses.length === 0 ? '' : `WHERE ${clauses.join(' AND ')}`;
    const rows = this.#read(() =>
      this.#db
        .prepare<(string | number)[], BlueprintRow & { site_keys: string | null }>(
          `SELECT b.*, (SELECT group_concat(site_key, char(0)) FROM
             (SELECT site_key FROM artifacts a WHERE a.blueprint_id = b.blueprint_id ORDER BY site_key)
           ) AS site_keys
           FROM blueprints b ${where} ORDER BY b.blueprint_id`,
        )
        .all(...params),
    );
    return rows.map((row) => ({
      descriptor: fromBinary(BlueprintDescriptorSchema, row.descriptor),
      siteKeys: row.site_keys === null ? [] : row.site_keys.split('\u0000'),
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
    this.#assertRunning('delete');
    const run = this.#writeChain.then(() => this.#delete(blueprintId, siteKey));
    this.#writeChain = run.catch(() => undefined);
    return run;
  }

  /** Counters, gauges and the breaker snapshot. */
  stats(): UrzaLibraryStats {
    const breaker = this.#breaker.snapshot();
    return {
      cacheHits: this.#cacheHits,
      cacheMisses: this.#cacheMisses,
      cacheExpired: this.#cacheExpired,
      evictions: this.#evictions,
      cacheSize: this.#cache.size,
      integrityFailures: this.#integrityFailures,
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
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  /** `await using` support: same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    this.#state = 'closing';
    try {
      await this.#writeChain;
    } finally {
      this.#cache.clear();
      this.#db.close();
      this.#state = 'closed';
    }
  }

  async #save(input: UrzaSaveInput): Promise<UrzaArtifactRecord> {
    const { descriptor, siteKey, artifact } = input;
    const checksum = sha256Hex(artifact);
    const fileName = `${checksum}${URZA_ARTIFACT_EXTENSION}`;
    const dir = this.#options.artifactDir;
    const finalPath = path.join(dir, fileName);
    const tempPath = path.join(dir, `.${randomUUID()}${URZA_ARTIFACT_EXTENSION}${TEMP_SUFFIX}`);
    const injected = { crashed: false };
    try {
      const handle = await open(tempPath, 'wx');
      try {
        await handle.writeFile(artifact);
        await handle.sync();
      } finally {
        await handle.close();
      }
      this.#fault(UrzaSaveStep.TEMP_WRITTEN, injected);
      // Same content ⇒ same name, so replacing an existing file is harmless.
      await rename(tempPath, finalPath);
      this.#fault(UrzaSaveStep.RENAMED, injected);
      await fsyncDirectory(dir);
      this.#fault(UrzaSaveStep.DIR_SYNCED, injected);
    } catch (error) {
      if (!injected.crashed) await rm(tempPath, { force: true });
      throw error;
    }

    const nowMs = this.#options.clock.wallMs();
    const record: UrzaArtifactRecord = {
      blueprintId: descriptor.blueprintId,
      siteKey,
      fileName,
      checksum,
      guardDigest: input.guardDigest,
      sizeBytes: artifact.byteLength,
      compileMs: input.compileMs,
      prewarmP50Ms: input.prewarm.p50Ms,
      prewarmP95Ms: input.prewarm.p95Ms,
      createdAtMs: nowMs,
    };
    const descriptorBytes = Buffer.from(toBinary(BlueprintDescriptorSchema, descriptor));
    const previous = this.#db
      .prepare<[string, string], { file_name: string }>('SELECT file_name FROM artifacts WHERE blueprint_id = ? AND site_key = ?')
      .get(record.blueprintId, siteKey);
    const commit = this.#db.transaction(() => {
      this.#db
        .prepare(
          `INSERT INTO blueprints (blueprint_id, descriptor, tier, family, created_at_ms, updated_at_ms)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (blueprint_id) DO UPDATE SET descriptor = excluded.descriptor,
             tier = excluded.tier, family = excluded.family, updated_at_ms = excluded.updated_at_ms`,
        )
        .run(record.blueprintId, descriptorBytes, descriptor.tier, descriptor.family, nowMs, nowMs);
      this.#db
        .prepare(
          `INSERT OR REPLACE INTO artifacts (blueprint_id, site_key, file_name, checksum,
             guard_digest, size_bytes, compile_ms, prewarm_p50_ms, prewarm_p95_ms, created_at_ms)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          record.blueprintId,
          siteKey,
          fileName,
          checksum,
          record.guardDigest,
          record.sizeBytes,
          record.compileMs,
          record.prewarmP50Ms,
          record.prewarmP95Ms,
          nowMs,
        );
      this.#fault(UrzaSaveStep.BEFORE_COMMIT, injected);
    });
    try {
      commit();
    } catch (error) {
      // A real DB error (not a simulated crash): drop the file the row would have named,
      // unless another row already shares it.
      if (!injected.crashed) await this.#removeIfUnreferenced(fileName);
      throw error;
    }
    this.#generation += 1;
    this.#cache.delete(cacheKey(record.blueprintId, siteKey));
    this.#saves += 1;
    this.#fault(UrzaSaveStep.COMMITTED, injected);
    if (previous !== undefined && previous.file_name !== fileName) {
      await this.#removeIfUnreferenced(previous.file_name);
    }
    return record;
  }

  async #delete(blueprintId: string, siteKey: string | undefined): Promise<boolean> {
    const files =
      siteKey === undefined
        ? this.#db.prepare<[string], { file_name: string }>('SELECT file_name FROM artifacts WHERE blueprint_id = ?').all(blueprintId)
        : this.#db
            .prepare<[string, string], { file_name: string }>('SELECT file_name FROM artifacts WHERE blueprint_id = ? AND site_key = ?')
            .all(blueprintId, siteKey);
    const changes =
      siteKey === undefined
        ? this.#db.prepare('DELETE FROM blueprints WHERE blueprint_id = ?').run(blueprintId).changes
        : this.#db.prepare('DELETE FROM artifacts WHERE blueprint_id = ? AND site_key = ?').run(blueprintId, siteKey).changes;
    this.#generation += 1;
    for (const key of [...this.#cache.keys()]) {
      const entry = this.#cache.get(key);
      if (entry?.record.blueprintId === blueprintId && (siteKey === undefined || entry.record.siteKey === siteKey)) {
        this.#cache.delete(key);
      }
    }
    for (const { file_name } of files) await this.#removeIfUnreferenced(file_name);
    return changes > 0;
  }

  async #readVerified(record: UrzaArtifactRecord): Promise<Uint8Array> {
    let bytes: Uint8Array;
    try {
      const buffer = await readFile(path.join(this.#options.artifactDir, record.fileName));
      // A plain Uint8Array view: callers get bytes, not Node's Buffer API.
      bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw this.#integrityFailure(record, UrzaIntegrityReason.MISSING_ARTIFACT, '', error);
      }
      throw error;
    }
    const actual = sha256Hex(bytes);
    if (actual !== record.checksum) {
      throw this.#integrityFailure(record, UrzaIntegrityReason.CHECKSUM_MISMATCH, actual);
    }
    return bytes;
  }

  #integrityFailure(record: UrzaArtifactRecord, reason: UrzaIntegrityReason, actualChecksum: string, cause?: unknown): EsperError {
    this.#integrityFailures += 1;
    this.#cache.delete(cacheKey(record.blueprintId, record.siteKey));
    const attributes = {
      blueprint_id: record.blueprintId,
      site_key: record.siteKey,
      reason,
      expected_checksum: record.checksum,
      actual_checksum: actualChecksum,
      file_name: record.fileName,
    };
    this.#options.telemetry?.emit(
      buildTelemetryPacket({
        source: 'urza',
        clock: this.#options.clock,
        events: [{ description: UrzaEvent.INTEGRITY_FAILURE, level: TelemetryLevel.CRITICAL, attributes }],
        metrics: [{ name: UrzaMetric.INTEGRITY_FAILURES, value: this.#integrityFailures, unit: 'count' }],
      }),
    );
    return new EsperError(
      ErrorCode.URZA_INTEGRITY_FAILURE,
      `artifact of blueprint ${record.blueprintId} at site ${record.siteKey} failed its integrity check: ${reason}`,
      { cause, details: { blueprintId: record.blueprintId, siteKey: record.siteKey, reason } },
    );
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
      this.#breaker.recordFailure(error instanceof Error ? error.message : String(error));
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

  #cachePut(key: string, entry: CacheEntry): void {
    this.#cache.delete(key);
    this.#cache.set(key, entry);
    while (this.#cache.size > this.#options.cacheMaxEntries) {
      const oldest = this.#cache.keys().next();
      if (oldest.done === true) break;
      this.#cache.delete(oldest.value);
      this.#evictions += 1;
    }
  }

  async #removeIfUnreferenced(fileName: string): Promise<void> {
    const referenced = this.#db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM artifacts WHERE file_name = ?').get(fileName);
    if ((referenced?.n ?? 0) === 0) {
      await rm(path.join(this.#options.artifactDir, fileName), { force: true });
    }
  }

  async #removeOrphans(): Promise<void> {
    const referenced = new Set(
      this.#db
        .prepare<[], { file_name: string }>('SELECT DISTINCT file_name FROM artifacts')
        .all()
        .map((row) => row.file_name),
    );
    for (const name of await readdir(this.#options.artifactDir)) {
      const isTemp = name.endsWith(TEMP_SUFFIX);
      const isOrphan = name.endsWith(URZA_ARTIFACT_EXTENSION) && !referenced.has(name);
      if (isTemp || isOrphan) {
        await rm(path.join(this.#options.artifactDir, name), { force: true });
        this.#orphansRemoved += 1;
      }
    }
  }

  #fault(step: UrzaSaveStep, injected: { crashed: boolean }): void {
    const hook = this.#options.faults?.atSaveStep;
    if (hook === undefined) return;
    try {
      hook(step);
    } catch (error) {
      injected.crashed = true;
      throw error;
    }
  }

  /** One-statement update of a blueprint row's side column (atomic on its own). */
  #updateBlueprintColumn(blueprintId: string, column: 'bsds' | 'graph_metadata_json', value: Buffer | string): void {
    const changes = this.#db
      .prepare(`UPDATE blueprints SET ${column} = ?, updated_at_ms = ? WHERE blueprint_id = ?`)
      .run(value, this.#options.clock.wallMs(), blueprintId).changes;
    if (changes === 0) {
      throw new EsperError(ErrorCode.URZA_NOT_FOUND, `blueprint ${blueprintId} is not catalogued`, { details: { blueprintId } });
    }
  }

  #assertRunning(operation: string): void {
    if (this.#state !== 'running') {
      throw new EsperError(ErrorCode.INVALID_STATE, `urza library is ${this.#state}; cannot ${operation}`, {
        details: { state: this.#state, operation },
      });
    }
  }
}

/** SHA-256 of `bytes` as lower-case hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function cacheKey(blueprintId: string, siteKey: string): string {
  return `${blueprintId}\u0000${siteKey}`;
}

function recordFromRow(row: ArtifactRow): UrzaArtifactRecord {
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

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function validateSaveInput(input: UrzaSaveInput): void {
  if (input.descriptor.blueprintId.length === 0) {
    throw invalidArgument('descriptor.blueprintId', 'a non-empty id', input.descriptor.blueprintId);
  }
  if (input.siteKey.length === 0 || input.siteKey.includes('\u0000')) {
    throw invalidArgument('siteKey', 'a non-empty string without NUL', input.siteKey);
  }
  if (!(input.artifact instanceof Uint8Array) || input.artifact.byteLength === 0) {
    throw invalidArgument('artifact', 'non-empty bytes', input.artifact?.byteLength);
  }
  for (const [field, value] of [
    ['compileMs', input.compileMs],
    ['prewarm.p50Ms', input.prewarm.p50Ms],
    ['prewarm.p95Ms', input.prewarm.p95Ms],
  ] as const) {
    if (!Number.isFinite(value) || value < 0) throw invalidArgument(field, 'a finite number ≥ 0', value);
  }
}

function invalidArgument(field: string, expected: string, got: unknown): EsperError {
  return new EsperError(ErrorCode.INVALID_ARGUMENT, `UrzaLibrary ${field}: expected ${expected}, got ${String(got)}`, {
    details: { field },
  });
}
