/**
 * Options of the `RedisStreamStore` (`redis-stream-store.ts`): defaults, validation,
 * and the parts of a Redis Cluster URL.
 */
import type { Cluster, Redis } from 'ioredis';
import { MAX_TIMER_MS, optionChecks, redactUrl } from '../core/index.js';

/** Options of `RedisStreamStore`. Give exactly one of `url` and `redis`. */
export interface RedisStreamStoreOptions {
  /**
   * `redis://` or `rediss://` URL of one Redis, or `redis+cluster://` / `rediss+cluster://`
   * URL of one node of a Redis Cluster (`[user:password@]host:port`, no database); the
   * store creates its connections and quits them on close.
   */
  readonly url?: string;
  /**
   * A client to use for commands instead of `url`. It is not quit on close (whoever created
   * it closes it); the store's own duplicates of it (for blocking reads) are. Its own
   * retry and offline-queue settings govern its commands; the reconnect options below
   * apply to the duplicates.
   */
  readonly redis?: Redis | Cluster;
  /** CLIENT SETNAME of the store's connections (blocking ones get `:block`). @default 'esper-oona' */
  readonly connectionName?: string;
  /**
   * Reconnect attempts a command waits through (in the offline queue) before it fails with
   * `OONA_STORE_UNAVAILABLE`. @default 4
   */
  readonly maxRetriesPerRequest?: number;
  /** First reconnect delay, doubled per attempt up to `reconnectMaxDelayMs`, in ms. @default 50 */
  readonly reconnectBaseDelayMs?: number;
  /** Cap of the reconnect delay, in ms. @default 2_000 */
  readonly reconnectMaxDelayMs?: number;
  /** TCP connect timeout, in ms. @default 5_000 */
  readonly connectTimeoutMs?: number;
  /** Idle blocking-read connections kept for reuse. @default 4 */
  readonly maxIdleBlockingConnections?: number;
}

/** Defaults of {@link RedisStreamStoreOptions}; the one place they live. */
export const REDIS_STREAM_STORE_DEFAULTS = Object.freeze({
  connectionName: 'esper-oona',
  maxRetriesPerRequest: 4,
  reconnectBaseDelayMs: 50,
  reconnectMaxDelayMs: 2_000,
  connectTimeoutMs: 5_000,
  maxIdleBlockingConnections: 4,
});

/** {@link RedisStreamStoreOptions} with defaults applied. */
export interface ResolvedRedisStreamStoreOptions {
  readonly url: string | undefined;
  readonly redis: Redis | Cluster | undefined;
  readonly connectionName: string;
  readonly maxRetriesPerRequest: number;
  readonly reconnectBaseDelayMs: number;
  readonly reconnectMaxDelayMs: number;
  readonly connectTimeoutMs: number;
  readonly maxIdleBlockingConnections: number;
}

/**
 * Applies {@link REDIS_STREAM_STORE_DEFAULTS} and validates eagerly.
 *
 * @throws EsperError `INVALID_ARGUMENT` naming the bad field (a URL is shown redacted).
 */
export function resolveRedisStreamStoreOptions(options: RedisStreamStoreOptions): ResolvedRedisStreamStoreOptions {
  const check = optionChecks('RedisStreamStore');
  const { url, redis } = options;
  if ((url === undefined) === (redis === undefined)) {
    check.fail('url', 'given exactly when redis is not', url === undefined ? url : redactUrl(url));
  }
  if (url !== undefined && !/^rediss?(\+cluster)?:\/\//.test(url)) {
    check.fail('url', 'a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL', redactUrl(url));
  }
  if (url !== undefined && isClusterUrl(url)) clusterSeed(url);
  const d = REDIS_STREAM_STORE_DEFAULTS;
  const connectionName = options.connectionName ?? d.connectionName;
  if (typeof connectionName !== 'string' || !/^[!-~]+$/.test(connectionName)) {
    check.fail('connectionName', 'printable ASCII without spaces', connectionName);
  }
  const nonNegativeInteger = (field: 'maxRetriesPerRequest' | 'connectTimeoutMs' | 'maxIdleBlockingConnections', max?: number): number =>
    check.integer(field, options[field] ?? d[field], max === undefined ? { min: 0 } : { min: 0, max });
  // A zero delay would spin reconnecting while Redis is down.
  const reconnectBaseDelayMs = check.integer('reconnectBaseDelayMs', options.reconnectBaseDelayMs ?? d.reconnectBaseDelayMs, {
    min: 1,
    max: MAX_TIMER_MS,
  });
  const resolved: ResolvedRedisStreamStoreOptions = {
    url,
    redis,
    connectionName,
    maxRetriesPerRequest: nonNegativeInteger('maxRetriesPerRequest'),
    reconnectBaseDelayMs,
    reconnectMaxDelayMs: check.integer('reconnectMaxDelayMs', options.reconnectMaxDelayMs ?? d.reconnectMaxDelayMs, {
      min: reconnectBaseDelayMs,
      max: MAX_TIMER_MS,
    }),
    connectTimeoutMs: nonNegativeInteger('connectTimeoutMs', MAX_TIMER_MS),
    maxIdleBlockingConnections: nonNegativeInteger('maxIdleBlockingConnections'),
  };
  return Object.freeze(resolved);
}

/** Whether `url` names a Redis Cluster (`redis+cluster://`, `rediss+cluster://`). */
export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:\/\//.test(url);
}

/** The seed node and credentials of a cluster URL. */
export interface ClusterSeed {
  readonly host: string;
  readonly port: number;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: boolean;
}

/** @throws EsperError `INVALID_ARGUMENT` (field `url`, shown redacted) for a bad cluster URL. */
export function clusterSeed(url: string): ClusterSeed {
  const check = optionChecks('RedisStreamStore');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return check.fail('url', 'a URL redis+cluster://[user:password@]host:port', redactUrl(url));
  }
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  // Redis Cluster has database 0 only; a seed list or a query would be silently ignored.
  if (parsed.hostname === '' || !['', '/', '/0'].includes(parsed.pathname) || parsed.search !== '' || parsed.hash !== '') {
    check.fail('url', 'a URL redis+cluster://[user:password@]host:port (one seed node, no database)', redactUrl(url));
  }
  const decode = (part: string): string | undefined => (part === '' ? undefined : decodeURIComponent(part));
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    username: decode(parsed.username),
    password: decode(parsed.password),
    tls: parsed.protocol === 'rediss+cluster:',
  };
}
