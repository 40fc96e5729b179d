/** The one error of Urza's storage files: `URZA_STORAGE_INVALID`, naming the file and why. */
import { ErrorCode, EsperError } from '../core/index.js';

/** Why a storage file or directory cannot be used (`details.reason`). */
export const UrzaStorageReason = {
  /** SQLite reports a malformed file, or the file is not a database (truncated, overwritten). */
  CORRUPT: 'corrupt',
  /** The file or directory cannot be opened, read or written (permissions, a directory in its place, I/O error). */
  UNREADABLE: 'unreadable',
  /** The catalog was written by another schema version of Urza. */
  SCHEMA_VERSION: 'schema_version',
  /** The database holds tables but none of Urza's (another program's file). */
  FOREIGN_DATABASE: 'foreign_database',
  /** The catalog lists artifacts but their directory is gone (or the path is wrong). */
  ARTIFACT_DIR_MISSING: 'artifact_dir_missing',
  /** Any other SQLite failure; `details.sqliteCode` says which. */
  SQLITE_ERROR: 'sqlite_error',
} as const;

/** Union of {@link UrzaStorageReason} values. */
export type UrzaStorageReason = (typeof UrzaStorageReason)[keyof typeof UrzaStorageReason];

/** `URZA_STORAGE_INVALID` for `file`, with `details.path` and `details.reason`. */
export function storageInvalid(
  file: string,
  reason: UrzaStorageReason,
  problem: string,
  options: { readonly cause?: unknown; readonly details?: Readonly<Record<string, string | number>> } = {},
): EsperError {
  return new EsperError(ErrorCode.URZA_STORAGE_INVALID, `urza storage ${file}: ${problem}`, {
    details: { path: file, reason, ...options.details },
    ...(options.cause === undefined ? {} : { cause: options.cause }),
  });
}

/** Whether `error` is better-sqlite3's `SqliteError` (code `SQLITE_*`). */
export function isSqliteError(error: unknown): error is Error & { readonly code: string } {
  const code: unknown = error instanceof Error ? (error as unknown as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('SQLITE_');
}

/** The storage error for a SQLite failure on `file`. */
export function fromSqliteError(file: string, error: Error & { readonly code: string }): EsperError {
  const code = error.code;
  const reason =
    code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB'
      ? UrzaStorageReason.CORRUPT
      : code === 'SQLITE_CANTOPEN' ||
          code === 'SQLITE_PERM' ||
          code === 'SQLITE_AUTH' ||
          code.startsWith('SQLITE_IOERR') ||
          code.startsWith('SQLITE_READONLY')
        ? UrzaStorageReason.UNREADABLE
        : UrzaStorageReason.SQLITE_ERROR;
  return storageInvalid(file, reason, `${error.message} (${code})`, { cause: error, details: { sqliteCode: code } });
}
