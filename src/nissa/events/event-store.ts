/**
 * Nissa's event store: telemetry events and field reports in one SQLite file (WAL), written
 * in batches by the service and read, never written, by `esper events`. Retention is bounded
 * by age and by row count, enforced by {@link EventStore.prune}. Every storage failure
 * leaves as `NISSA_EVENT_STORE_INVALID` naming the file.
 */
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ErrorCode, EsperError, optionChecks, systemClock, type Clock, type EsperSettings } from '../../core/index.js';
import type { FieldReport, TelemetryPacket } from '../../leyline/index.js';
import { fieldReportQuerySql, telemetryQuerySql, type FieldReportQuery, type TelemetryEventQuery } from './query.js';
import {
  fieldReportParams,
  telemetryEventParams,
  toStoredFieldReport,
  toStoredTelemetryEvent,
  type FieldReportParams,
  type FieldReportRecord,
  type StoredFieldReport,
  type StoredTelemetryEvent,
  type TelemetryEventParams,
  type TelemetryEventRecord,
} from './rows.js';
import { EVENT_STORE_SCHEMA_SQL, EVENT_STORE_SCHEMA_VERSION, EVENT_STORE_TABLES } from './schema.js';
import { EventStoreFailure, eventStoreInvalid, fromStorageFailure, isSqliteError } from './storage-error.js';

/** Options of {@link EventStore.open}. */
export interface EventStoreOptions {
  /** The SQLite file; created, with its directory, when missing. */
  readonly path: string;
  /** Rows received longer ago than this are deleted by {@link EventStore.prune}. @default 168 */
  readonly retentionHours?: number;
  /** Rows kept per table (telemetry events, field reports); the oldest go first. @default 1000000 */
  readonly maxRows?: number;
  /** Wall time of receipt and of the retention cutoff. @default systemClock */
  readonly clock?: Clock;
}

/** {@link EventStoreOptions} with every default applied. */
export interface ResolvedEventStoreOptions {
  readonly path: string;
  readonly retentionHours: number;
  readonly maxRows: number;
  readonly clock: Clock;
}

/** @default of {@link EventStoreOptions.retentionHours}. */
export const DEFAULT_EVENT_RETENTION_HOURS = 168;
/** @default of {@link EventStoreOptions.maxRows}. */
export const DEFAULT_EVENT_MAX_ROWS = 1_000_000;
/** Rows one prune transaction deletes at most, so the writer and readers are never held up long. */
export const PRUNE_CHUNK_ROWS = 10_000;

/**
 * Checks `options` and applies the defaults.
 * @throws EsperError `INVALID_ARGUMENT` naming the bad field
 */
export function resolveEventStoreOptions(options: EventStoreOptions): ResolvedEventStoreOptions {
  const check = optionChecks('EventStoreOptions');
  return {
    path: check.nonEmptyString('path', options.path),
    retentionHours: check.integer('retentionHours', options.retentionHours ?? DEFAULT_EVENT_RETENTION_HOURS, { min: 1 }),
    maxRows: check.integer('maxRows', options.maxRows ?? DEFAULT_EVENT_MAX_ROWS, { min: 1 }),
    clock: options.clock ?? systemClock,
  };
}

/** The {@link EventStoreOptions} the `nissa` settings give. */
export function eventStoreOptionsFromSettings(nissa: EsperSettings['nissa'], clock?: Clock): EventStoreOptions {
  return {
    path: nissa.eventStorePath,
    retentionHours: nissa.eventRetentionHours,
    maxRows: nissa.eventMaxRows,
    ...(clock === undefined ? {} : { clock }),
  };
}

/** What one ingest call stored. */
export interface IngestResult {
  /** Rows written. */
  readonly inserted: number;
  /** Rows already stored under the same id (a redelivered packet or report), skipped. */
  readonly duplicates: number;
}

/** What {@link EventStore.prune} deleted from one table. */
export interface PrunedRows {
  /** Rows received before the retention cutoff. */
  readonly expired: number;
  /** Rows over the row cap, oldest first. */
  readonly overCap: number;
  /** Rows left. */
  readonly remaining: number;
}

/** What {@link EventStore.prune} deleted. */
export interface PruneResult {
  /** Rows received before this time (ms since the epoch) were deleted. */
  readonly cutoffMs: number;
  readonly telemetryEvents: PrunedRows;
  readonly fieldReports: PrunedRows;
}

/** Row counts of the store. */
export interface EventStoreCounts {
  readonly telemetryEvents: number;
  readonly fieldReports: number;
}

type Table = (typeof EVENT_STORE_TABLES)[number];

const TELEMETRY_INSERT = `INSERT INTO telemetry_events (event_id, packet_id, received_at_ms, time_ms, training_run_id,
  source, level, priority, description, seed_id, attributes_json)
  VALUES (@event_id, @packet_id, @received_at_ms, @time_ms, @training_run_id, @source, @level, @priority,
  @description, @seed_id, @attributes_json)
  ON CONFLICT (event_id) DO NOTHING`;

const FIELD_REPORT_INSERT = `INSERT INTO field_reports (report_id, command_id, received_at_ms, time_ms, training_run_id,
  seed_id, blueprint_id, outcome, observation_window_epochs, policy_version, notes, delta_json, extra_json)
  VALUES (@report_id, @command_id, @received_at_ms, @time_ms, @training_run_id, @seed_id, @blueprint_id, @outcome,
  @observation_window_epochs, @policy_version, @notes, @delta_json, @extra_json)
  ON CONFLICT (report_id) DO NOTHING`;

/**
 * The event store of one Nissa. One process writes it ({@link EventStore.open}); any number
 * read it at the same time ({@link EventStore.openReadOnly}), WAL keeping readers and the
 * writer from blocking each other.
 *
 * ```ts
 * const store = EventStore.open(eventStoreOptionsFromSettings(settings.nissa));
 * store.ingestTelemetry(packets);
 * const recent = store.queryTelemetry({ trainingRunId: 'run-1', minLevel: TelemetryLevel.WARNING, limit: 50 });
 * store.close();
 * ```
 */
export class EventStore {
  /** The SQLite file (named in every error). */
  readonly path: string;
  /** Whether this connection only reads (it refuses ingest and prune). */
  readonly readOnly: boolean;
  readonly #db: Database.Database;
  readonly #options: ResolvedEventStoreOptions;
  #closed = false;
  #insertTelemetry: Database.Statement<TelemetryEventParams> | undefined;
  #insertFieldReport: Database.Statement<FieldReportParams> | undefined;

  private constructor(db: Database.Database, options: ResolvedEventStoreOptions, readOnly: boolean) {
    this.path = options.path;
    this.readOnly = readOnly;
    this.#db = db;
    this.#options = options;
  }

  /**
   * Opens the store for writing, creating the file (and its directory) when missing: WAL
   * journal, `synchronous=NORMAL` (a crash of the process loses nothing; a power cut may lose
   * the last batches), an integrity check (`quick_check`) and the schema version.
   * @throws EsperError `INVALID_ARGUMENT` for bad options; `NISSA_EVENT_STORE_INVALID` naming
   *   the file when it cannot be opened, is not SQLite, is corrupt, belongs to another
   *   program or has another schema version
   */
  static open(options: EventStoreOptions): EventStore {
    const resolved = resolveEventStoreOptions(options);
    const file = resolved.path;
    let db: Database.Database;
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      db = new Database(file);
    } catch (error) {
      throw fromStorageFailure(file, error);
    }
    const store = new EventStore(db, resolved, false);
    store.#prepare({ create: true, integrityCheck: true });
    return store;
  }

  /**
   * Opens an existing store for reading only: nothing is created, written or migrated (a
   * missing file is an error, not a new store).
   * @throws EsperError `NISSA_EVENT_STORE_INVALID` naming the file (reason `missing`,
   *   `corrupt`, `foreign_database`, `schema_version`, `unreadable`)
   */
  static openReadOnly(file: string): EventStore {
    const resolved = resolveEventStoreOptions({ path: file });
    let stat;
    try {
      stat = statSync(file);
    } catch (error) {
      const missing = (error as { code?: unknown }).code === 'ENOENT';
      throw eventStoreInvalid(
        file,
        missing ? EventStoreFailure.MISSING : EventStoreFailure.UNREADABLE,
        missing ? 'does not exist (Nissa creates it when it first stores an event)' : String(error),
        { cause: error },
      );
    }
    if (!stat.isFile()) throw eventStoreInvalid(file, EventStoreFailure.UNREADABLE, 'is not a file');
    let db: Database.Database;
    try {
      db = new Database(file, { readonly: true, fileMustExist: true });
    } catch (error) {
      throw fromStorageFailure(file, error);
    }
    const store = new EventStore(db, resolved, true);
    store.#prepare({ create: false, integrityCheck: false });
    return store;
  }

  #prepare(mode: { readonly create: boolean; readonly integrityCheck: boolean }): void {
    try {
      this.#run(() => {
        const db = this.#db;
        // Read before anything writes: a file that is not SQLite fails here.
        const version = db.pragma('user_version', { simple: true }) as number;
        const tables = db
          .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
          .all()
          .map((t) => t.name);
        if (mode.integrityCheck) {
          const check = db.pragma('quick_check', { simple: true }) as string;
          if (check !== 'ok') throw eventStoreInvalid(this.path, EventStoreFailure.CORRUPT, `integrity check failed: ${check}`);
        }
        if (version === 0 && tables.length === 0) {
          if (!mode.create)
            throw eventStoreInvalid(this.path, EventStoreFailure.FOREIGN_DATABASE, 'is an empty database, not an event store');
          db.transaction(() => {
            db.exec(EVENT_STORE_SCHEMA_SQL);
            db.pragma(`user_version = ${EVENT_STORE_SCHEMA_VERSION}`);
          })();
        } else if (version === 0 || !EVENT_STORE_TABLES.every((t) => tables.includes(t))) {
          throw eventStoreInvalid(
            this.path,
            EventStoreFailure.FOREIGN_DATABASE,
            `holds tables ${tables.join(', ') || '(none)'} but no event store (user_version ${version})`,
          );
        } else if (version !== EVENT_STORE_SCHEMA_VERSION) {
          throw eventStoreInvalid(
            this.path,
            EventStoreFailure.SCHEMA_VERSION,
            `schema version ${version}, this Nissa reads ${EVENT_STORE_SCHEMA_VERSION}`,
            { details: { found: version, expected: EVENT_STORE_SCHEMA_VERSION } },
          );
        }
        if (mode.create) {
          db.pragma('journal_mode = WAL');
          db.pragma('synchronous = NORMAL');
        } else {
          db.pragma('query_only = ON');
        }
      });
    } catch (error) {
      this.#db.close();
      this.#closed = true;
      throw error;
    }
  }

  /**
   * Stores every event of `packets` in one transaction, each once: an event whose id is
   * already stored (a redelivered packet) is counted as a duplicate and skipped.
   * @param receivedAtMs receipt time of the batch @default clock.wallMs()
   */
  ingestTelemetry(packets: readonly TelemetryPacket[], receivedAtMs = this.#options.clock.wallMs()): IngestResult {
    this.#writable('ingestTelemetry');
    return this.#run(() => {
      this.#insertTelemetry ??= this.#db.prepare<TelemetryEventParams>(TELEMETRY_INSERT);
      const insert = this.#insertTelemetry;
      return this.#db.transaction(() => {
        let inserted = 0;
        let duplicates = 0;
        for (const packet of packets) {
          for (const row of telemetryEventParams(packet, receivedAtMs)) {
            if (insert.run(row).changes > 0) inserted += 1;
            else duplicates += 1;
          }
        }
        return { inserted, duplicates };
      })();
    });
  }

  /**
   * Stores `reports` in one transaction, each once (by report id).
   * @param receivedAtMs receipt time of the batch @default clock.wallMs()
   */
  ingestFieldReports(reports: readonly FieldReport[], receivedAtMs = this.#options.clock.wallMs()): IngestResult {
    this.#writable('ingestFieldReports');
    return this.#run(() => {
      this.#insertFieldReport ??= this.#db.prepare<FieldReportParams>(FIELD_REPORT_INSERT);
      const insert = this.#insertFieldReport;
      return this.#db.transaction(() => {
        let inserted = 0;
        let duplicates = 0;
        for (const report of reports) {
          if (insert.run(fieldReportParams(report, receivedAtMs)).changes > 0) inserted += 1;
          else duplicates += 1;
        }
        return { inserted, duplicates };
      })();
    });
  }

  /**
   * Telemetry events matching every filter of `query`, by event time (newest first unless
   * asked otherwise), at most `query.limit`.
   * @throws EsperError `INVALID_ARGUMENT` naming a bad filter; `NISSA_EVENT_STORE_INVALID`
   */
  queryTelemetry(query: TelemetryEventQuery = {}): StoredTelemetryEvent[] {
    this.#open('queryTelemetry');
    const sql = telemetryQuerySql(query);
    const rows = this.#run(() =>
      this.#db.prepare<(string | number)[], TelemetryEventRecord>(`SELECT * FROM telemetry_events ${sql.tail}`).all(...sql.params),
    );
    return rows.map((row) => this.#decode(row, toStoredTelemetryEvent));
  }

  /**
   * Field reports matching every filter of `query`, by `issued_at` (newest first unless
   * asked otherwise), at most `query.limit`.
   * @throws EsperError `INVALID_ARGUMENT` naming a bad filter; `NISSA_EVENT_STORE_INVALID`
   */
  queryFieldReports(query: FieldReportQuery = {}): StoredFieldReport[] {
    this.#open('queryFieldReports');
    const sql = fieldReportQuerySql(query);
    const rows = this.#run(() =>
      this.#db.prepare<(string | number)[], FieldReportRecord>(`SELECT * FROM field_reports ${sql.tail}`).all(...sql.params),
    );
    return rows.map((row) => this.#decode(row, toStoredFieldReport));
  }

  /** Rows stored per table. */
  counts(): EventStoreCounts {
    this.#open('counts');
    return this.#run(() => ({ telemetryEvents: this.#count('telemetry_events'), fieldReports: this.#count('field_reports') }));
  }

  /**
   * Enforces retention: deletes rows received more than `retentionHours` ago, then the
   * oldest rows (by insertion) over `maxRows`, per table, in transactions of at most
   * {@link PRUNE_CHUNK_ROWS} rows. The service calls it periodically
   * (`nissa.eventPruneIntervalMs`) and logs what it says it deleted.
   */
  prune(): PruneResult {
    this.#writable('prune');
    const cutoffMs = this.#options.clock.wallMs() - this.#options.retentionHours * 3_600_000;
    return this.#run(() => ({
      cutoffMs,
      telemetryEvents: this.#pruneTable('telemetry_events', cutoffMs),
      fieldReports: this.#pruneTable('field_reports', cutoffMs),
    }));
  }

  #pruneTable(table: Table, cutoffMs: number): PrunedRows {
    const expiredChunk = this.#db.prepare<[number, number]>(
      `DELETE FROM ${table} WHERE seq IN (SELECT seq FROM ${table} WHERE received_at_ms < ? ORDER BY seq LIMIT ?)`,
    );
    let expired = 0;
    for (;;) {
      const deleted = expiredChunk.run(cutoffMs, PRUNE_CHUNK_ROWS).changes;
      expired += deleted;
      if (deleted < PRUNE_CHUNK_ROWS) break;
    }
    const oldestChunk = this.#db.prepare<[number]>(`DELETE FROM ${table} WHERE seq IN (SELECT seq FROM ${table} ORDER BY seq LIMIT ?)`);
    let remaining = this.#count(table);
    let overCap = 0;
    while (remaining > this.#options.maxRows) {
      const deleted = oldestChunk.run(Math.min(PRUNE_CHUNK_ROWS, remaining - this.#options.maxRows)).changes;
      overCap += deleted;
      remaining -= deleted;
    }
    return { expired, overCap, remaining };
  }

  #count(table: Table): number {
    return this.#db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${table}`).get()?.n ?? 0;
  }

  /** Closes the connection; later calls do nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  /** Same as {@link EventStore.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #open(operation: string): void {
    if (this.#closed) throw new EsperError(ErrorCode.INVALID_STATE, `event store ${this.path}: ${operation} after close`);
  }

  #writable(operation: string): void {
    this.#open(operation);
    if (this.readOnly) throw new EsperError(ErrorCode.INVALID_STATE, `event store ${this.path}: ${operation} on a read-only connection`);
  }

  #decode<R extends { readonly seq: number }, T>(row: R, decode: (row: R) => T): T {
    try {
      return decode(row);
    } catch (error) {
      throw eventStoreInvalid(this.path, EventStoreFailure.CORRUPT, `row ${row.seq} does not decode: ${String(error)}`, { cause: error });
    }
  }

  #run<T>(body: () => T): T {
    try {
      return body();
    } catch (error) {
      // Only SQLite's own failures are the store's; anything else is a bug and stays as thrown.
      throw isSqliteError(error) ? fromStorageFailure(this.path, error) : error;
    }
  }
}
