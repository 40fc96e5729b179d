/**
 * Urza's SQLite catalog: one row per blueprint (descriptor, safety data sheet, graph
 * metadata) and one per stored artifact. Only SQL lives here; every SQLite failure leaves as
 * `URZA_STORAGE_INVALID` naming the database file.
 */
import Database from 'better-sqlite3';
import { fromSqliteError, isSqliteError, storageInvalid, UrzaStorageReason } from './storage-error.js';

/** `PRAGMA user_version` of the catalog layout below. */
export const URZA_SCHEMA_VERSION = 1;

const SCHEMA_SQL = `
CREATE TABLE blueprints (
  blueprint_id TEXT PRIMARY KEY,
  descriptor BLOB NOT NULL,
  tier INTEGER NOT NULL,
  family TEXT NOT NULL,
  graph_metadata_json TEXT,
  bsds BLOB,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
);
CREATE INDEX blueprints_tier_family ON blueprints (tier, family);
CREATE TABLE artifacts (
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
CREATE INDEX artifacts_file_name ON artifacts (file_name);
`;

/** A row of `artifacts`. */
export interface ArtifactRow {
  readonly blueprint_id: string;
  readonly site_key: string;
  readonly file_name: string;
  readonly checksum: string;
  readonly guard_digest: string;
  readonly size_bytes: number;
  readonly compile_ms: number;
  readonly prewarm_p50_ms: number;
  readonly prewarm_p95_ms: number;
  readonly created_at_ms: number;
}

/** The descriptor columns of a row of `blueprints`. */
export interface BlueprintRow {
  readonly blueprint_id: string;
  readonly descriptor: Buffer;
  readonly created_at_ms: number;
  readonly updated_at_ms: number;
}

/** The columns of a blueprint an artifact save writes. */
export interface BlueprintUpsert {
  readonly blueprintId: string;
  readonly descriptor: Buffer;
  readonly tier: number;
  readonly family: string;
  readonly nowMs: number;
}

/** A blueprint's side columns, written by the certification service. */
export type BlueprintSideColumn = 'bsds' | 'graph_metadata_json';

/** The catalog database of one library root. One process writes it at a time. */
export class CatalogDb {
  /** Absolute path of the database file (named in every error). */
  readonly path: string;
  readonly #db: Database.Database;

  private constructor(file: string, db: Database.Database) {
    this.path = file;
    this.#db = db;
  }

  /**
   * Opens (creating when new) the catalog at `file`: WAL journal, `synchronous=FULL` (a save
   * is acknowledged once durable), foreign keys, an integrity check (`quick_check`), and the
   * schema version. A new, empty file gets the schema.
   * @throws EsperError `URZA_STORAGE_INVALID` naming `file` when it cannot be opened, is
   *   corrupt or truncated, belongs to another program, or has another schema version.
   */
  static open(file: string): CatalogDb {
    let db: Database.Database;
    try {
      db = new Database(file);
    } catch (error) {
      throw isSqliteError(error)
        ? fromSqliteError(file, error)
        : storageInvalid(file, UrzaStorageReason.UNREADABLE, String(error), { cause: error });
    }
    const catalog = new CatalogDb(file, db);
    try {
      catalog.#run(() => catalog.#prepare(db));
    } catch (error) {
      db.close();
      throw error;
    }
    return catalog;
  }

  #prepare(db: Database.Database): void {
    // Read before anything writes: a truncated file fails here, not halfway through a save.
    const version = db.pragma('user_version', { simple: true }) as number;
    const check = db.pragma('quick_check', { simple: true }) as string;
    if (check !== 'ok') throw storageInvalid(this.path, UrzaStorageReason.CORRUPT, `integrity check failed: ${check}`);
    const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
    if (version === 0 && tables.length === 0) {
      db.exec(SCHEMA_SQL);
      db.pragma(`user_version = ${URZA_SCHEMA_VERSION}`);
    } else if (version === 0) {
      throw storageInvalid(
        this.path,
        UrzaStorageReason.FOREIGN_DATABASE,
        `holds tables ${tables.map((t) => t.name).join(', ')} but no Urza catalog`,
      );
    } else if (version !== URZA_SCHEMA_VERSION) {
      throw storageInvalid(
        this.path,
        UrzaStorageReason.SCHEMA_VERSION,
        `schema version ${version}, this Urza reads ${URZA_SCHEMA_VERSION}`,
        {
          details: { found: version, expected: URZA_SCHEMA_VERSION },
        },
      );
    }
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
  }

  /** The artifact row of `(blueprintId, siteKey)`. */
  artifact(blueprintId: string, siteKey: string): ArtifactRow | undefined {
    return this.#run(() =>
      this.#db
        .prepare<[string, string], ArtifactRow>('SELECT * FROM artifacts WHERE blueprint_id = ? AND site_key = ?')
        .get(blueprintId, siteKey),
    );
  }

  /** The artifact rows of `blueprintId`, by site key. */
  artifacts(blueprintId: string): ArtifactRow[] {
    return this.#run(() =>
      this.#db.prepare<[string], ArtifactRow>('SELECT * FROM artifacts WHERE blueprint_id = ? ORDER BY site_key').all(blueprintId),
    );
  }

  /** The descriptor columns of `blueprintId`. */
  blueprint(blueprintId: string): BlueprintRow | undefined {
    return this.#run(() =>
      this.#db
        .prepare<[string], BlueprintRow>(
          'SELECT blueprint_id, descriptor, created_at_ms, updated_at_ms FROM blueprints WHERE blueprint_id = ?',
        )
        .get(blueprintId),
    );
  }

  /** Blueprints matching the filter, by id, each with its artifacts' site keys (sorted). */
  list(filter: { readonly tier?: number; readonly family?: string }): (BlueprintRow & { readonly siteKeys: readonly string[] })[] {
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
    const rows = this.#run(() =>
      this.#db
        .prepare<(string | number)[], BlueprintRow & { site_keys: string | null }>(
          `SELECT b.blueprint_id, b.descriptor, b.created_at_ms, b.updated_at_ms,
             (SELECT group_concat(site_key, char(0)) FROM
               (SELECT site_key FROM artifacts a WHERE a.blueprint_id = b.blueprint_id ORDER BY site_key)
             ) AS site_keys
           FROM blueprints b ${where} ORDER BY b.blueprint_id`,
        )
        .all(...params),
    );
    return rows.map(({ site_keys, ...row }) => ({ ...row, siteKeys: site_keys === null ? [] : site_keys.split('\u0000') }));
  }

  /** A side column of `blueprintId`: `undefined` when the blueprint is not catalogued, `null` when unset. */
  sideColumn(blueprintId: string, column: 'bsds'): Buffer | null | undefined;
  sideColumn(blueprintId: string, column: 'graph_metadata_json'): string | null | undefined;
  sideColumn(blueprintId: string, column: BlueprintSideColumn): Buffer | string | null | undefined {
    const row = this.#run(() =>
      this.#db
        .prepare<[string], { value: Buffer | string | null }>(`SELECT ${column} AS value FROM blueprints WHERE blueprint_id = ?`)
        .get(blueprintId),
    );
    return row?.value;
  }

  /** Sets (or with `null` clears) a side column; false when the blueprint is not catalogued. */
  setSideColumn(blueprintId: string, column: BlueprintSideColumn, value: Buffer | string | null, nowMs: number): boolean {
    return this.#run(
      () =>
        this.#db.prepare(`UPDATE blueprints SET ${column} = ?, updated_at_ms = ? WHERE blueprint_id = ?`).run(value, nowMs, blueprintId)
          .changes > 0,
    );
  }

  /** Inserts or updates the blueprint row (its side columns are kept). */
  upsertBlueprint(row: BlueprintUpsert): void {
    this.#run(() =>
      this.#db
        .prepare(
          `INSERT INTO blueprints (blueprint_id, descriptor, tier, family, created_at_ms, updated_at_ms)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (blueprint_id) DO UPDATE SET descriptor = excluded.descriptor,
             tier = excluded.tier, family = excluded.family, updated_at_ms = excluded.updated_at_ms`,
        )
        .run(row.blueprintId, row.descriptor, row.tier, row.family, row.nowMs, row.nowMs),
    );
  }

  /** Inserts or replaces the artifact row of `(blueprint_id, site_key)`. */
  putArtifact(row: ArtifactRow): void {
    this.#run(() =>
      this.#db
        .prepare(
          `INSERT OR REPLACE INTO artifacts (blueprint_id, site_key, file_name, checksum,
             guard_digest, size_bytes, compile_ms, prewarm_p50_ms, prewarm_p95_ms, created_at_ms)
           VALUES (@blueprint_id, @site_key, @file_name, @checksum, @guard_digest, @size_bytes,
             @compile_ms, @prewarm_p50_ms, @prewarm_p95_ms, @created_at_ms)`,
        )
        .run(row),
    );
  }

  /** Deletes the whole blueprint (`siteKey` omitted; artifacts cascade) or one artifact. Returns the rows deleted. */
  delete(blueprintId: string, siteKey?: string): number {
    return this.#run(() =>
      siteKey === undefined
        ? this.#db.prepare('DELETE FROM blueprints WHERE blueprint_id = ?').run(blueprintId).changes
        : this.#db.prepare('DELETE FROM artifacts WHERE blueprint_id = ? AND site_key = ?').run(blueprintId, siteKey).changes,
    );
  }

  /** Whether any artifact row names `fileName`. */
  referencesFile(fileName: string): boolean {
    return (
      this.#run(
        () => this.#db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM artifacts WHERE file_name = ?').get(fileName)?.n ?? 0,
      ) > 0
    );
  }

  /** Every file name an artifact row names. */
  referencedFiles(): Set<string> {
    return this.#run(
      () =>
        new Set(
          this.#db
            .prepare<[], { file_name: string }>('SELECT DISTINCT file_name FROM artifacts')
            .all()
            .map((row) => row.file_name),
        ),
    );
  }

  /**
   * Runs `body` in one transaction. A SQLite failure rolls back and becomes the storage
   * error; any other throw (a simulated crash) rolls back and propagates unchanged.
   */
  transaction<T>(body: () => T): T {
    return this.#run(() => this.#db.transaction(body)());
  }

  /** Closes the connection. */
  close(): void {
    this.#db.close();
  }

  #run<T>(body: () => T): T {
    try {
      return body();
    } catch (error) {
      throw isSqliteError(error) ? fromSqliteError(this.path, error) : error;
    }
  }
}
