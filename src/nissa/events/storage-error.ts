/**
 * The one error of Nissa's event store: `NISSA_EVENT_STORE_INVALID`, naming the file and why.
 * Every SQLite failure is turned into it at the store's edge, so no caller ever sees a bare
 * SQLite message without the file it concerns.
 */
import { ErrorCode, EsperError } from '../../core/index.js';

/** Why the event store cannot be used (`details.reason`). */
export const EventStoreFailure = {
  /** SQLite reports a malformed file, or the file is not a database (truncated, overwritten). */
  CORRUPT: 'corrupt',
  /** The file was opened read-only and does not exist (nothing has written it yet, or a wrong path). */
  MISSING: 'missing',
  /** The file or its directory cannot be opened, read or written (permissions, a directory in its place, I/O). */
  UNREADABLE: 'unreadable',
  /** The store was written by another schema version of Nissa. */
  SCHEMA_VERSION: 'schema_version',
  /** The database holds tables but no event store (another program's file). */
  FOREIGN_DATABASE: 'foreign_database',
  /** Any other SQLite failure; `details.sqliteCode` says which. */
  SQLITE_ERROR: 'sqlite_error',
} as const;

/** Union of {@link EventStoreFailure} values. */
export type EventStoreFailure = (typeof EventStoreFailure)[keyof typeof EventStoreFailure];

/** `NISSA_EVENT_STORE_INVALID` for `file`, with `details.path` and `details.reason`. */
export function eventStoreInvalid(
  file: string,
  reason: EventStoreFailure,
  problem: string,
  options: { readonly cause?: unknown; readonly details?: Readonly<Record<string, string | number>> } = {},
): EsperError {
  return new EsperError(ErrorCode.NISSA_EVENT_STORE_INVALID, `event store ${file}: ${problem}`, {
    details: { path: file, reason, ...options.details },
    ...(options.cause === undefined ? {} : { cause: options.cause }),
  });
}

/** Whether `error` is better-sqlite3's `SqliteError` (code `SQLITE_*`). */
export function isSqliteError(error: unknown): error is Error & { readonly code: string } {
  const code: unknown = error instanceof Error ? (error as unknown as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('SQLITE_');
}

/** The store error for any failure on `file`: a SQLite error by its code, anything else as unreadable. */
export function fromStorageFailure(file: string, error: unknown): EsperError {
  if (!isSqliteError(error)) {
    return eventStoreInvalid(file, EventStoreFailure.UNREADABLE, error instanceof Error ? error.message : String(error), {
      cause: error,
    });
  }
  const code = error.code;
  const reason =
    code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB'
      ? EventStoreFailure.CORRUPT
      : code === 'SQLITE_CANTOPEN' ||
          code === 'SQLITE_PERM' ||
          code === 'SQLITE_AUTH' ||
          code.startsWith('SQLITE_IOERR') ||
          code.startsWith('SQLITE_READONLY')
        ? EventStoreFailure.UNREADABLE
        : EventStoreFailure.SQLITE_ERROR;
  const what = reason === EventStoreFailure.CORRUPT ? 'not an event store (not a SQLite database, or corrupt)' : 'cannot be used';
  return eventStoreInvalid(file, reason, `${what}: ${error.message} (${code})`, { cause: error, details: { sqliteCode: code } });
}
