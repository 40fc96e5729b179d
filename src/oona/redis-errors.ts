/**
 * The one place where Redis and ioredis failures become typed errors (spec 02 "Errors":
 * parse server errors once, at the adapter edge; split transient from terminal).
 *
 * - `OONA_STORE_UNAVAILABLE` (transient: retry later) — the connection is refused, reset,
 *   closed or still reconnecting after `maxRetriesPerRequest`, no node of a cluster
 *   answers (or its slot map cannot be refreshed), or the server answers with
 *   a "not now" code (`LOADING`, `BUSY`, `TRYAGAIN`, `MASTERDOWN`, `READONLY`,
 *   `CLUSTERDOWN`, `OOM`).
 * - `OONA_NO_GROUP` — `NOGROUP`, or `UNBLOCKED` (the stream of a blocked read was deleted).
 * - `OONA_STORE_FAILED` (terminal: retrying the same call will fail the same way) —
 *   every other server reply error (`WRONGTYPE`, `ERR ...`) and anything unrecognised.
 */
import { errorMessage, ErrorCode, EsperError, isEsperError } from '../core/index.js';

/** Socket error codes meaning "the server cannot be reached right now". */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
]);

/** Redis reply error codes meaning "not now": the same call may succeed later. */
const TRANSIENT_REPLY_CODES: ReadonlySet<string> = new Set(['LOADING', 'BUSY', 'TRYAGAIN', 'MASTERDOWN', 'READONLY', 'CLUSTERDOWN', 'OOM']);

/** ioredis's fixed messages for a closed or not-yet-writable connection (single node or cluster). */
const CONNECTION_CLOSED_MESSAGES: readonly string[] = [
  'Connection is closed.',
  "Stream isn't writeable and enableOfflineQueue options is false",
  'None of startup nodes is available',
  'Cluster is disconnected.',
  'Cluster is disconnecting.',
  "Cluster isn't ready and enableOfflineQueue options is false",
  'Node is disconnected',
];

/**
 * The Redis error code of a server reply error (its first word, e.g. `NOGROUP`), or
 * `undefined` when `error` is not a reply error.
 */
export function redisReplyCode(error: unknown): string | undefined {
  if (!(error instanceof Error) || error.name !== 'ReplyError') return undefined;
  const match = /^([A-Z][A-Z_-]*)\b/.exec(error.message);
  return match?.[1];
}

function isUnreachable(error: Error): boolean {
  if (error.name === 'MaxRetriesPerRequestError' || error.name === 'ClusterAllFailedError') return true;
  if (CONNECTION_CLOSED_MESSAGES.includes(error.message)) return true;
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === 'string' && UNREACHABLE_CODES.has(code);
}

/**
 * Maps a failure of `command` to a typed {@link EsperError} (see the module comment). An
 * `EsperError` passes through unchanged.
 */
export function toStoreError(error: unknown, command: string): EsperError {
  if (isEsperError(error)) return error;
  const message = errorMessage(error);
  const replyCode = redisReplyCode(error);
  if (replyCode !== undefined) {
    const details = { command, redisCode: replyCode };
    if (replyCode === 'NOGROUP' || replyCode === 'UNBLOCKED') {
      return new EsperError(ErrorCode.OONA_NO_GROUP, `${command}: ${message}`, { cause: error, details });
    }
    const code = TRANSIENT_REPLY_CODES.has(replyCode) ? ErrorCode.OONA_STORE_UNAVAILABLE : ErrorCode.OONA_STORE_FAILED;
    return new EsperError(code, `${command}: ${message}`, { cause: error, details });
  }
  if (error instanceof Error && isUnreachable(error)) {
    return new EsperError(ErrorCode.OONA_STORE_UNAVAILABLE, `${command}: Redis is unreachable: ${message}`, {
      cause: error,
      details: { command },
    });
  }
  return new EsperError(ErrorCode.OONA_STORE_FAILED, `${command}: ${message}`, { cause: error, details: { command } });
}
