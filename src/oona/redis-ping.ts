/**
 * One PING to a Redis URL with a hard deadline, on a connection of its own that never
 * retries and is closed afterwards: the preflight question "does the bus's Redis answer?".
 * For a cluster URL the seed node is asked, and it must also report `cluster_state:ok`.
 */
import { Redis } from 'ioredis';
import { ErrorCode, EsperError, errorMessage, MAX_TIMER_MS, optionChecks, redactUrl } from '../core/index.js';
import { redisReplyCode } from './redis-errors.js';
import { isClusterUrl } from './redis-store-options.js';

/** Options of {@link pingRedis}. */
export interface PingRedisOptions {
  /**
   * Deadline of connecting (AUTH and SELECT included) and the PING, in ms.
   * @default 2000
   */
  readonly timeoutMs?: number;
}

/**
 * Connects to `url` (`redis://` or `rediss://`, credentials and db as in the URL), sends
 * PING and resolves with the round trip in ms once PONG arrives. For `redis+cluster://` /
 * `rediss+cluster://` it connects to that seed node and also requires CLUSTER INFO to say
 * `cluster_state:ok` (every slot served).
 * @throws EsperError `OONA_STORE_UNAVAILABLE` naming the URL with its password redacted and
 *   why: refused, timed out, or the server's error (a wrong password, ...)
 */
export async function pingRedis(url: string, options: PingRedisOptions = {}): Promise<number> {
  const timeoutMs = optionChecks('PingRedisOptions').integer('timeoutMs', options.timeoutMs ?? 2_000, { min: 1, max: MAX_TIMER_MS });
  const shown = redactUrl(url);
  let lastError: unknown;
  let connection: Redis;
  try {
    // The seed node of a cluster speaks plain Redis; ioredis does not know the +cluster scheme.
    connection = new Redis(url.replace(/^(rediss?)\+cluster:/, '$1:'), {
      lazyConnect: true,
      connectTimeout: timeoutMs,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      // One attempt: a preflight reports, it does not wait for Redis to come back.
      retryStrategy: () => null,
      reconnectOnError: () => false,
      // A server that accepted but never answers may never read our FIN either.
      disconnectTimeout: 100,
    });
  } catch (error) {
    throw unavailable(shown, `is not a usable Redis URL (${errorMessage(error)})`, error);
  }
  connection.on('error', (error: unknown) => {
    lastError = error;
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  const started = performance.now();
  try {
    await Promise.race([
      (async () => {
        await connection.connect();
        const reply = await connection.ping();
        if (reply !== 'PONG') throw new Error(`answered PING with ${JSON.stringify(reply).slice(0, 40)}`);
        if (isClusterUrl(url)) {
          const info = String(await connection.call('CLUSTER', 'INFO'));
          const state = /cluster_state:(\w+)/.exec(info)?.[1] ?? 'unknown';
          if (state !== 'ok') throw new Error(`is a cluster node whose cluster_state is ${state}, not ok`);
        }
      })(),
      deadline,
    ]);
    return performance.now() - started;
  } catch (error) {
    throw unavailable(shown, `did not answer PING: ${reason(error, lastError)}`, error);
  } finally {
    clearTimeout(timer);
    connection.disconnect();
  }
}

/** The most telling reason: the server's reply code, the socket error code, else the message. */
function reason(error: unknown, lastError: unknown): string {
  const replyCode = redisReplyCode(error);
  if (replyCode !== undefined) return `${replyCode} (${errorMessage(error)})`;
  for (const candidate of [error, lastError]) {
    const code = (candidate as NodeJS.ErrnoException | undefined)?.code;
    if (typeof code === 'string') return `${code} (${errorMessage(candidate)})`;
  }
  return lastError === undefined ? errorMessage(error) : `${errorMessage(error)}; ${errorMessage(lastError)}`;
}

function unavailable(shownUrl: string, what: string, cause: unknown): EsperError {
  return new EsperError(ErrorCode.OONA_STORE_UNAVAILABLE, `Redis at ${shownUrl} ${what}`, { cause, details: { url: shownUrl } });
}
