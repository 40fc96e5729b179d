/**
 * From a thrown value to what telemetry, dead letters and reports say about it: its message,
 * a one-line description, a short label, or a reason picked by its error code.
 */
import { isEsperError, type ErrorCode } from './errors.js';

/** `error.message` of an `Error`, else `String(error)`. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * One line about a thrown value: `<code>: <message>` for an `EsperError`, the message of any
 * other `Error`, else `String(error)`. For `detail`/`reason` attributes and dead letters.
 */
export function describeError(error: unknown): string {
  return isEsperError(error) ? `${error.code}: ${error.message}` : errorMessage(error);
}

/**
 * A short, stable label of a thrown value, for counters and `reason` attributes: the code of
 * an `EsperError`, the `name` of any other `Error` (`TypeError`), else its `typeof`.
 */
export function errorLabel(error: unknown): string {
  if (isEsperError(error)) return error.code;
  return error instanceof Error ? error.name : typeof error;
}

/**
 * The reason `byCode` gives the code of an `EsperError`; `otherwise(error)` for other codes
 * and for anything that is not an `EsperError`.
 *
 * ```ts
 * const reason = reasonOf(error, { [ErrorCode.TEZZERET_COMPILE_TIMEOUT]: 'timeout' }, errorLabel);
 * ```
 */
export function reasonOf<R>(error: unknown, byCode: Readonly<Partial<Record<ErrorCode, R>>>, otherwise: (error: unknown) => R): R {
  if (isEsperError(error) && Object.hasOwn(byCode, error.code)) return byCode[error.code] as R;
  return otherwise(error);
}
