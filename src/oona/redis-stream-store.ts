/**
 * {@link StreamStore} over Redis 7 Streams with ioredis 5 (binary-safe `callBuffer`; values
 * copied both ways). One command connection (quit on close unless injected) and a small
 * pool of duplicates for blocking reads, one per concurrent blocking `readGroup`.
 *
 * A blocked read is aborted with `CLIENT UNBLOCK <id>` over the command connection, which
 * ends it at once and keeps the connection; only when that cannot work (the read has not
 * reached the server, or the command connection is down) is that duplicate disconnected
 * after a short grace. Chosen over short block slices (delayed aborts, a round trip per
 * slice) and over always disconnecting (a reconnect per stop, a reply lost mid-send).
 * Errors are mapped once, in `redis-errors.ts`.
 *
 * Redis Cluster: a `redis+cluster://` / `rediss+cluster://` URL (one seed node; ioredis
 * discovers the others) or an injected `Cluster` client. Every command names its keys, so
 * ioredis routes it to the master of their slot; the bus keeps all its streams in one slot
 * (`streams.ts`), so its multi-stream XREADGROUP is legal. CLIENT ID and CLIENT UNBLOCK
 * carry no key and client ids are per node, so on a cluster an abort disconnects the
 * blocking connection instead (entries Redis had already delivered stay pending and are
 * reclaimed).
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { closeOnce, ErrorCode, EsperError, isEsperError, runCleanup } from '../core/index.js';
import { toStoreError, redisReplyCode } from './redis-errors.js';
import { integer, parseEntries, parseReadReply, parseRecord, text } from './redis-replies.js';
import {
  clusterSeed,
  isClusterUrl,
  resolveRedisStreamStoreOptions,
  type ClusterSeed,
  type RedisStreamStoreOptions,
  type ResolvedRedisStreamStoreOptions,
} from './redis-store-options.js';
import { ENSURE_GROUP_SCRIPT, TRIM_BEFORE_SCRIPT, type LuaScript } from './redis-scripts.js';
import { checkCount, checkDurationMs, checkEntryId, checkFields, checkName, checkReadGroup, checkStart } from './store-arguments.js';
import type { EntryFields, GroupInfo, ReadGroupOptions, StreamEntry, StreamStore } from './stream-store.js';

/** A single-node client or a cluster client. */
type Client = Redis | Cluster;

/** One blocking `readGroup` call's hold on a pooled connection. */
interface Lease {
  readonly connection: Client;
  /** Server-side id of `connection` when the read was sent (for CLIENT UNBLOCK). */
  clientId: Promise<number | undefined>;
  /** The read returned; the connection may already serve another read. */
  settled: boolean;
  /** The connection was disconnected and must not go back to the pool. */
  broken: boolean;
  interrupting: boolean;
}

/** How long an abort keeps retrying CLIENT UNBLOCK before disconnecting the connection, in ms. */
const INTERRUPT_GRACE_MS = 250;
/** Pause between CLIENT UNBLOCK attempts while the read has not reached the server, in ms. */
const INTERRUPT_RETRY_MS = 10;
/** How long close() lets QUIT finish before disconnecting, in ms. */
const QUIT_TIMEOUT_MS = 1_000;

type Arg = string | Buffer | number;

/** One XADD or XACK waiting to be sent with the others of its tick. */
interface PendingAdd {
  readonly command: 'XADD' | 'XACK';
  readonly args: Arg[];
  readonly resolve: (reply: unknown) => void;
  readonly reject: (error: unknown) => void;
}

export {
  isClusterUrl,
  REDIS_STREAM_STORE_DEFAULTS,
  resolveRedisStreamStoreOptions,
  type RedisStreamStoreOptions,
  type ResolvedRedisStreamStoreOptions,
} from './redis-store-options.js';

/** Redis-backed stream store; see the module comment. */
export class RedisStreamStore implements StreamStore {
  // Private: `url` may carry a password.
  readonly #options: ResolvedRedisStreamStoreOptions;
  /** ioredis `keyPrefix` of the command connection, stripped from stream names in replies. */
  readonly #keyPrefix: string;
  readonly #main: Client;
  readonly #ownsMain: boolean;
  readonly #idle: Client[] = [];
  readonly #busy = new Map<Lease, Promise<unknown>>();
  readonly #duplicates = new Set<Client>();
  /** CLIENT ID of each blocking connection while it stays connected (see `#clientId`). */
  readonly #clientIds = new WeakMap<Redis, Promise<number | undefined>>();
  readonly #onError = (error: Error): void => {
    this.#connectionErrorCount += 1;
    this.#lastConnectionError = error;
  };
  #connectionErrorCount = 0;
  #lastConnectionError: Error | undefined;
  #closed = false;
  /** XADDs and XACKs called in the current tick, sent together at its end (see {@link add}). */
  #pendingAdds: PendingAdd[] | undefined;
  readonly #close = closeOnce(() => this.#closeConnections());

  /** @throws EsperError `INVALID_ARGUMENT` for bad options. */
  constructor(options: RedisStreamStoreOptions) {
    this.#options = resolveRedisStreamStoreOptions(options);
    if (this.#options.redis !== undefined) {
      this.#main = this.#options.redis;
      this.#ownsMain = false;
    } else if (isClusterUrl(this.#options.url as string)) {
      const seed = clusterSeed(this.#options.url as string);
      this.#main = new Cluster([{ host: seed.host, port: seed.port }], this.#clusterOptions(seed));
      this.#ownsMain = true;
    } else {
      this.#main = new Redis(this.#options.url as string, {
        ...this.#connectionOptions(),
        connectionName: this.#options.connectionName,
      });
      this.#ownsMain = true;
    }
    this.#keyPrefix = this.#main.options.keyPrefix ?? '';
    this.#main.on('error', this.#onError);
  }

  /** Connection errors ioredis reported (each failed connect or reset counts once). */
  get connectionErrorCount(): number {
    return this.#connectionErrorCount;
  }

  /** The last connection error ioredis reported, if any. */
  get lastConnectionError(): Error | undefined {
    return this.#lastConnectionError;
  }

  /**
   * XADD `stream` * fields. The XADDs called in one tick (concurrent publishes) leave in one
   * pipeline, one write to the socket, when the tick's microtasks are done — or before any
   * other command of this store, so the command connection still sees every command in call
   * order. Each add keeps its own reply and error. On a cluster each is sent on its own (a
   * pipeline there must stay within one slot).
   */
  async add(stream: string, fields: EntryFields): Promise<string> {
    this.#assertOpen();
    checkName('stream', stream);
    checkFields(fields);
    const args: Arg[] = [stream, '*'];
    for (const [name, value] of Object.entries(fields)) args.push(name, Buffer.from(value));
    if (this.#main instanceof Cluster) return text(await this.#call('XADD', args));
    return text(await this.#queue('XADD', args));
  }

  /** Queues `command` for the pipeline of this tick (see {@link add}). */
  #queue(command: PendingAdd['command'], args: Arg[]): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      if (this.#pendingAdds === undefined) {
        this.#pendingAdds = [];
        process.nextTick(() => this.#flushAdds());
      }
      this.#pendingAdds.push({ command, args, resolve, reject });
    });
  }

  /** Sends the commands waiting in {@link add} and {@link ack}: one as a plain command, several as one pipeline. */
  #flushAdds(): void {
    const adds = this.#pendingAdds;
    this.#pendingAdds = undefined;
    if (adds === undefined || adds.length === 0) return;
    const [only] = adds;
    if (adds.length === 1 && only !== undefined) {
      this.#main.callBuffer(only.command, only.args).then(only.resolve, (error: unknown) => only.reject(toStoreError(error, only.command)));
      return;
    }
    const pipeline = this.#main.pipeline();
    for (const add of adds) void pipeline.callBuffer(add.command, add.args);
    pipeline.exec().then(
      (results) => {
        adds.forEach((add, index) => {
          const [error, reply] = results?.[index] ?? [new Error(`${add.command}: no reply in the pipeline`), undefined];
          if (error === null) add.resolve(reply);
          else add.reject(toStoreError(error, add.command));
        });
      },
      (error: unknown) => {
        for (const add of adds) add.reject(toStoreError(error, add.command));
      },
    );
  }

  /**
   * XGROUP CREATE `stream` `group` `start` MKSTREAM, ignoring BUSYGROUP — run as a script
   * that also sets an exact ENTRIESREAD, so `groups()` always knows the lag (see
   * `./redis-scripts.ts`).
   */
  async ensureGroup(stream: string, group: string, start: '$' | '0'): Promise<void> {
    this.#assertOpen();
    checkName('stream', stream);
    checkName('group', group);
    checkStart(start);
    await this.#script(ENSURE_GROUP_SCRIPT, stream, [group, start], 'XGROUP CREATE');
  }

  /** XGROUP DESTROY; no error when the stream or group is absent. */
  async destroyGroup(stream: string, group: string): Promise<void> {
    this.#assertOpen();
    checkName('stream', stream);
    checkName('group', group);
    try {
      await this.#call('XGROUP', ['DESTROY', stream, group]);
    } catch (error) {
      // XGROUP answers a missing key with a plain ERR; nothing to destroy then.
      if (isEsperError(error, ErrorCode.OONA_STORE_FAILED) && (await this.#call('EXISTS', [stream])) === 0) return;
      throw error;
    }
  }

  /**
   * XREADGROUP GROUP `group` `consumer` COUNT `count` [BLOCK `blockMs`] STREAMS ... `>`.
   * With `blockMs` 0 it runs on the command connection and returns at once; otherwise on a
   * pooled blocking connection. An abort ends the wait promptly with `[]` — or with the
   * entries Redis had already delivered when the abort arrived (rather than leaving them
   * pending until reclaimed). `close()` ends it with `[]`.
   *
   * @throws EsperError `OONA_NO_GROUP` when a stream or its group is missing (also when
   *   deleted or destroyed during the wait), `OONA_STORE_UNAVAILABLE`, `OONA_CLOSED`.
   */
  async readGroup(group: string, consumer: string, streams: readonly string[], options: ReadGroupOptions): Promise<StreamEntry[]> {
    this.#assertOpen();
    checkReadGroup(group, consumer, streams, options);
    if (options.signal?.aborted === true) return [];
    const args: Arg[] = ['GROUP', group, consumer, 'COUNT', options.count];
    // BLOCK 0 would block forever in Redis; 0 means "do not wait" here.
    if (options.blockMs > 0) args.push('BLOCK', options.blockMs);
    args.push('STREAMS', ...streams, ...streams.map(() => '>'));
    if (options.blockMs === 0) return parseReadReply(await this.#call('XREADGROUP', args), streams, this.#keyPrefix);
    return this.#readBlocking(args, streams, options.signal);
  }

  /** XACK. */
  async ack(stream: string, group: string, ids: readonly string[]): Promise<number> {
    this.#assertOpen();
    checkName('stream', stream);
    checkName('group', group);
    for (const id of ids) checkEntryId('ids[]', id);
    if (ids.length === 0) return 0;
    // Rides in the pipeline of the tick's XADDs (one write to the socket for both).
    if (this.#main instanceof Cluster) return integer(await this.#call('XACK', [stream, group, ...ids]));
    return integer(await this.#queue('XACK', [stream, group, ...ids]));
  }

  /**
   * XAUTOCLAIM from 0-0, following the cursor until `count` entries are claimed or the
   * pending list is exhausted (Redis 7 drops trimmed entries from it on the way and reports
   * them apart), then reads each claimed entry's delivery count with XPENDING.
   *
   * @throws EsperError `OONA_NO_GROUP` when the stream or group is missing.
   */
  async autoClaim(stream: string, group: string, consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]> {
    this.#assertOpen();
    checkName('stream', stream);
    checkName('group', group);
    checkName('consumer', consumer);
    checkDurationMs('minIdleMs', minIdleMs);
    checkCount('count', count);
    const claimed: StreamEntry[] = [];
    let cursor = '0-0';
    do {
      const remaining = count - claimed.length;
      const reply = await this.#call('XAUTOCLAIM', [stream, group, consumer, minIdleMs, cursor, 'COUNT', remaining]);
      if (!Array.isArray(reply)) throw new EsperError(ErrorCode.OONA_STORE_FAILED, 'XAUTOCLAIM: unexpected reply');
      cursor = text(reply[0]);
      claimed.push(...parseEntries(stream, reply[1], 0));
    } while (cursor !== '0-0' && claimed.length < count);
    if (claimed.length === 0) return [];
    const details = await Promise.all(claimed.map((entry) => this.#call('XPENDING', [stream, group, entry.id, entry.id, 1])));
    const result: StreamEntry[] = [];
    claimed.forEach((entry, index) => {
      const row: unknown = (details[index] as unknown[] | undefined)?.[0];
      // Acknowledged by someone else in between: no longer ours to handle.
      if (!Array.isArray(row)) return;
      result.push({ ...entry, deliveryCount: integer(row[3]) });
    });
    return result;
  }

  /** XINFO GROUPS plus the XPENDING summary of each group (for the oldest pending id). */
  async groups(stream: string): Promise<GroupInfo[]> {
    this.#assertOpen();
    checkName('stream', stream);
    let reply: unknown;
    try {
      reply = await this.#call('XINFO', ['GROUPS', stream]);
    } catch (error) {
      if (!isEsperError(error, ErrorCode.OONA_STORE_FAILED)) throw error;
      // XINFO answers a missing key with a plain ERR; that is "no groups" here — unless
      // another client created the stream in between (its first XADD, a group's MKSTREAM),
      // which a fleet does all the time: then the stream is there to be asked again.
      if ((await this.#call('EXISTS', [stream])) === 0) return [];
      reply = await this.#call('XINFO', ['GROUPS', stream]);
    }
    if (!Array.isArray(reply)) return [];
    const infos = reply.map(parseRecord);
    const summaries = await Promise.all(
      infos.map((info) =>
        this.#call('XPENDING', [stream, text(info.get('name'))]).catch((error: unknown) => {
          if (isEsperError(error, ErrorCode.OONA_NO_GROUP)) return undefined;
          throw error;
        }),
      ),
    );
    const groups: GroupInfo[] = [];
    infos.forEach((info, index) => {
      const summary = summaries[index];
      // Destroyed between the two calls.
      if (!Array.isArray(summary)) return;
      const lag = info.get('lag');
      const oldest: unknown = summary[1];
      groups.push({
        name: text(info.get('name')),
        pending: integer(summary[0]),
        lag: lag === null || lag === undefined ? undefined : integer(lag),
        lastDeliveredId: text(info.get('last-delivered-id')),
        oldestPendingId: oldest === null || oldest === undefined ? undefined : text(oldest),
      });
    });
    return groups;
  }

  /** XLEN. */
  async length(stream: string): Promise<number> {
    this.#assertOpen();
    checkName('stream', stream);
    return integer(await this.#call('XLEN', [stream]));
  }

  /**
   * XTRIM MINID `minId` (exact), as a script that also repairs the entries-read counter of
   * groups whose unread entries were trimmed (see `./redis-scripts.ts`).
   */
  async trimBefore(stream: string, minId: string): Promise<number> {
    this.#assertOpen();
    checkName('stream', stream);
    checkEntryId('minId', minId);
    return integer(await this.#script(TRIM_BEFORE_SCRIPT, stream, [minId], 'XTRIM'));
  }

  /** DEL. Blocked readers of a deleted stream fail with `OONA_NO_GROUP` (Redis UNBLOCKED). */
  async deleteStreams(streams: readonly string[]): Promise<void> {
    this.#assertOpen();
    for (const stream of streams) checkName('streams[]', stream);
    if (streams.length > 0) await this.#call('DEL', [...streams]);
  }

  /**
   * Ends blocked reads with `[]`, disconnects the blocking connections, then quits the
   * command connection if the store created it (an injected client is left open). Later
   * calls throw `OONA_CLOSED`. Idempotent.
   */
  close(): Promise<void> {
    return this.#close();
  }

  /** `await using` support: same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }

  #closeConnections(): Promise<void> {
    this.#closed = true;
    // Adds accepted before close() go out ahead of QUIT.
    this.#flushAdds();
    return runCleanup('Redis stream store', [
      () => {
        const reads = [...this.#busy.values()];
        for (const lease of this.#busy.keys()) this.#breakLease(lease);
        return Promise.allSettled(reads);
      },
      () => {
        for (const connection of this.#duplicates) {
          connection.disconnect();
          connection.off('error', this.#onError);
        }
        this.#duplicates.clear();
        this.#idle.length = 0;
      },
      this.#ownsMain && (() => this.#quit(this.#main)),
      () => this.#main.off('error', this.#onError),
    ]);
  }

  async #quit(connection: Client): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, QUIT_TIMEOUT_MS);
    });
    try {
      await Promise.race([connection.quit().then(() => undefined), timeout]);
    } catch {
      // Unreachable server: nothing to say goodbye to.
    } finally {
      clearTimeout(timer);
      connection.disconnect();
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new EsperError(ErrorCode.OONA_CLOSED, 'the Redis stream store is closed');
  }

  /** ioredis options of the connections the store creates. */
  #connectionOptions(): RedisOptions {
    const { maxRetriesPerRequest, reconnectBaseDelayMs, reconnectMaxDelayMs, connectTimeoutMs } = this.#options;
    return {
      lazyConnect: false,
      enableOfflineQueue: true,
      enableReadyCheck: true,
      autoResendUnfulfilledCommands: true,
      maxRetriesPerRequest,
      connectTimeout: connectTimeoutMs,
      // Never give up reconnecting: the store is long-lived and Redis may restart.
      retryStrategy: (attempt: number) => Math.min(reconnectBaseDelayMs * 2 ** Math.max(0, attempt - 1), reconnectMaxDelayMs),
    };
  }

  /**
   * ioredis options of a cluster client the store creates: the node options above for
   * every node connection, the same reconnect backoff for refreshing the slot map.
   */
  #clusterOptions(seed: ClusterSeed): ClusterOptions {
    const node = this.#connectionOptions();
    return {
      enableOfflineQueue: true,
      enableReadyCheck: true,
      clusterRetryStrategy: node.retryStrategy as (attempt: number) => number,
      redisOptions: {
        ...node,
        connectionName: this.#options.connectionName,
        ...(seed.username === undefined ? {} : { username: seed.username }),
        ...(seed.password === undefined ? {} : { password: seed.password }),
        ...(seed.tls ? { tls: {} } : {}),
      },
    };
  }

  async #call(command: string, args: readonly Arg[], connection: Client = this.#main): Promise<unknown> {
    if (this.#pendingAdds !== undefined && connection === this.#main) this.#flushAdds();
    try {
      return await connection.callBuffer(command, [...args]);
    } catch (error) {
      throw toStoreError(error, command);
    }
  }

  /** EVALSHA, falling back to EVAL when the server does not have the script (yet). */
  async #script(script: LuaScript, key: string, args: readonly Arg[], command: string): Promise<unknown> {
    if (this.#pendingAdds !== undefined) this.#flushAdds();
    try {
      return await this.#main.callBuffer('EVALSHA', [script.sha1, 1, key, ...args]);
    } catch (error) {
      if (redisReplyCode(error) !== 'NOSCRIPT') throw toStoreError(error, command);
    }
    try {
      return await this.#main.callBuffer('EVAL', [script.source, 1, key, ...args]);
    } catch (error) {
      throw toStoreError(error, command);
    }
  }

  async #readBlocking(args: readonly Arg[], streams: readonly string[], signal: AbortSignal | undefined): Promise<StreamEntry[]> {
    const connection = this.#acquire();
    // On a cluster CLIENT ID would go to a random node (no key to route by): no id, so an
    // abort disconnects this connection.
    const clientId = connection instanceof Cluster ? Promise.resolve(undefined) : this.#clientId(connection);
    const lease: Lease = { connection, clientId, settled: false, broken: false, interrupting: false };
    const read = connection.callBuffer('XREADGROUP', [...args]);
    const onAbort = (): void => {
      this.#interrupt(lease).catch((error: unknown) => this.#onError(error as Error));
    };
    this.#busy.set(
      lease,
      read.catch(() => undefined),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return parseReadReply(await read, streams, this.#keyPrefix);
    } catch (error) {
      if (this.#closed || signal?.aborted === true) return [];
      throw toStoreError(error, 'XREADGROUP');
    } finally {
      lease.settled = true;
      signal?.removeEventListener('abort', onAbort);
      this.#busy.delete(lease);
      this.#release(lease);
    }
  }

  /**
   * Ends a blocked read early: CLIENT UNBLOCK over the command connection, retried for a
   * short grace while the read may still be on its way to the server; failing that, the
   * read's own connection is disconnected (its read then fails and returns `[]`).
   */
  async #interrupt(lease: Lease): Promise<void> {
    if (lease.interrupting) return;
    lease.interrupting = true;
    const deadline = performance.now() + INTERRUPT_GRACE_MS;
    while (!lease.settled && !this.#closed) {
      const id = await lease.clientId;
      if (id === undefined || lease.settled || this.#main.status !== 'ready') break;
      const unblocked = await this.#main.callBuffer('CLIENT', ['UNBLOCK', id]).then(integer, () => undefined);
      if (unblocked === 1) return;
      if (unblocked === undefined || performance.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, INTERRUPT_RETRY_MS));
    }
    // The read is still running (never reached the server, or the command connection is
    // down): drop its connection. A CLIENT UNBLOCK that arrives late can at worst end
    // another read on the reused connection early with [], which callers treat as a timeout.
    if (!lease.settled) this.#breakLease(lease);
  }

  #breakLease(lease: Lease): void {
    if (lease.broken) return;
    lease.broken = true;
    lease.connection.disconnect();
  }

  #acquire(): Client {
    for (;;) {
      const idle = this.#idle.pop();
      if (idle === undefined) break;
      if (idle.status !== 'end') return idle;
      this.#forget(idle);
    }
    const connectionName = `${this.#options.connectionName}:block`;
    const connection =
      this.#main instanceof Cluster
        ? this.#main.duplicate(undefined, {
            redisOptions: { ...this.#main.options.redisOptions, ...this.#connectionOptions(), connectionName },
          })
        : this.#main.duplicate({ ...this.#connectionOptions(), connectionName });
    connection.on('error', this.#onError);
    if (connection instanceof Redis) connection.on('close', () => this.#clientIds.delete(connection));
    this.#duplicates.add(connection);
    return connection;
  }

  /**
   * The server-side id of a blocking connection, asked once per connection (CLIENT ID,
   * sent ahead of its read) and forgotten when the connection closes: a reconnected
   * connection has a new id. A failed ask is not kept.
   */
  #clientId(connection: Redis): Promise<number | undefined> {
    const known = this.#clientIds.get(connection);
    if (known !== undefined) return known;
    const asked = connection.callBuffer('CLIENT', ['ID']).then(
      (id) => integer(id),
      () => undefined,
    );
    this.#clientIds.set(connection, asked);
    void asked.then((id) => {
      if (id === undefined && this.#clientIds.get(connection) === asked) this.#clientIds.delete(connection);
    });
    return asked;
  }

  #release(lease: Lease): void {
    const keep =
      !this.#closed && !lease.broken && lease.connection.status !== 'end' && this.#idle.length < this.#options.maxIdleBlockingConnections;
    if (!keep) {
      lease.connection.disconnect();
      this.#forget(lease.connection);
      return;
    }
    this.#idle.push(lease.connection);
  }

  #forget(connection: Client): void {
    connection.off('error', this.#onError);
    this.#duplicates.delete(connection);
  }
}
