/**
 * The stream primitives Oona's bus is built on: a narrow slice of Redis Streams
 * (XADD, XREADGROUP, XACK, XAUTOCLAIM, XGROUP, XINFO GROUPS, XTRIM MINID). Two
 * implementations: `RedisStreamStore` (ioredis, the real thing) and `MemoryStreamStore`
 * (in process, same semantics, checked by one store conformance suite). `StreamBus` holds
 * every bus rule (routing, signing, retries, dead-letter, shedding) on top of this
 * interface, so the Redis and in-memory buses behave the same by construction.
 *
 * Entry ids are Redis ids (`<ms>-<seq>`), assigned by the store, strictly increasing per
 * stream. Field values are bytes.
 */

/** Fields of one stream entry. Keys are short ASCII names; values are raw bytes. */
export type EntryFields = Readonly<Record<string, Uint8Array>>;

/** One entry read from a stream. */
export interface StreamEntry {
  /** Physical stream name. */
  readonly stream: string;
  /** Redis entry id, `<ms>-<seq>`. */
  readonly id: string;
  readonly fields: EntryFields;
  /** Times this entry was delivered to the group (1 on first delivery). */
  readonly deliveryCount: number;
}

/** One consumer group of a stream, as XINFO GROUPS reports it. */
export interface GroupInfo {
  readonly name: string;
  /** Entries delivered to the group but not acknowledged. */
  readonly pending: number;
  /** Entries not yet delivered to the group (Redis `lag`); `undefined` when unknown. */
  readonly lag: number | undefined;
  readonly lastDeliveredId: string;
  /** Smallest id in the group's pending list, when there is one. */
  readonly oldestPendingId: string | undefined;
}

/** Options of {@link StreamStore.readGroup}. */
export interface ReadGroupOptions {
  /** Most entries returned per stream. */
  readonly count: number;
  /** How long to wait for new entries when none is ready; 0 returns at once. */
  readonly blockMs: number;
  /** Aborting ends the wait early with an empty result. */
  readonly signal?: AbortSignal;
}

/** Redis-Streams-like storage used by the bus. */
export interface StreamStore {
  /** Appends an entry; returns its id. */
  add(stream: string, fields: EntryFields): Promise<string>;
  /**
   * Creates `group` on `stream` (creating the stream when missing) starting after the
   * current last entry (`'$'`) or from the beginning (`'0'`). Idempotent: an existing
   * group is left as it is.
   */
  ensureGroup(stream: string, group: string, start: '$' | '0'): Promise<void>;
  /** Removes a group and its pending list. No error when absent. */
  destroyGroup(stream: string, group: string): Promise<void>;
  /**
   * New entries (never delivered to the group) from each stream, at most `count` per
   * stream, in the order of `streams` and then by id; marks them pending for `consumer`.
   * Waits up to `blockMs` when all are empty.
   */
  readGroup(group: string, consumer: string, streams: readonly string[], options: ReadGroupOptions): Promise<StreamEntry[]>;
  /** Acknowledges entries; returns how many were pending. */
  ack(stream: string, group: string, ids: readonly string[]): Promise<number>;
  /**
   * Moves up to `count` pending entries idle for at least `minIdleMs` to `consumer`
   * (incrementing their delivery count) and returns them. Entries deleted from the stream
   * meanwhile are dropped from the pending list and not returned.
   */
  autoClaim(stream: string, group: string, consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]>;
  /** The stream's groups; empty when the stream or its groups do not exist. */
  groups(stream: string): Promise<GroupInfo[]>;
  /** Entries retained in the stream (XLEN). */
  length(stream: string): Promise<number>;
  /** Deletes entries with ids below `minId` (XTRIM MINID, exact); returns how many. */
  trimBefore(stream: string, minId: string): Promise<number>;
  /** Deletes whole streams (test cleanup). */
  deleteStreams(streams: readonly string[]): Promise<void>;
  /** Releases connections the store created. Idempotent: every call returns the first call's promise. */
  close(): Promise<void>;
  /** `await using` support: same as `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Parses a Redis entry id into its two parts. */
export function parseEntryId(id: string): { readonly ms: bigint; readonly seq: bigint } {
  const match = /^(\d+)-(\d+)$/.exec(id);
  if (match === null) throw new RangeError(`not a stream entry id: ${JSON.stringify(id)}`);
  return { ms: BigInt(match[1] as string), seq: BigInt(match[2] as string) };
}

/** Orders two entry ids (negative when `a` < `b`). */
export function compareEntryIds(a: string, b: string): number {
  const x = parseEntryId(a);
  const y = parseEntryId(b);
  if (x.ms !== y.ms) return x.ms < y.ms ? -1 : 1;
  if (x.seq !== y.seq) return x.seq < y.seq ? -1 : 1;
  return 0;
}
