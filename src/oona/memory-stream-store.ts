/**
 * An in-process {@link StreamStore} with the semantics of Redis 7.0 Streams, for the
 * embedded default (spec 00 §5) and unit tests. The store conformance suite
 * (`test/oona/stream-store.conformance.ts`) runs the same cases against this store and
 * `RedisStreamStore`.
 *
 * Entry ids come from the clock's wall time (`<ms>-<seq>`, strictly increasing per stream:
 * when the clock stands still or goes backwards the last ms is kept and the sequence
 * bumped, as Redis does). Idle times of pending entries come from its monotonic time.
 * `blockMs` waits use real timers. Field bytes are copied on the way in and on the way out,
 * so neither producers nor consumers can change stored data.
 */
import { closeOnce, type Clock, ErrorCode, EsperError, systemClock } from '../core/index.js';
import type { EntryFields, GroupInfo, ReadGroupOptions, StreamEntry, StreamStore } from './stream-store.js';
import { parseEntryId } from './stream-store.js';
import { checkCount, checkDurationMs, checkEntryId, checkFields, checkName, checkReadGroup, checkStart } from './store-arguments.js';

/** Options of {@link MemoryStreamStore}. */
export interface MemoryStreamStoreOptions {
  /** Wall time stamps entry ids; monotonic time measures idle times. @default systemClock */
  readonly clock?: Clock;
}

/** A parsed entry id; `ms` and `seq` stay below 2^53 in practice. */
interface Id {
  readonly ms: number;
  readonly seq: number;
}

interface StoredEntry extends Id {
  readonly id: string;
  readonly fields: EntryFields;
}

interface PendingEntry {
  consumer: string;
  /** Monotonic ms of the last delivery. */
  deliveredAtMs: number;
  deliveryCount: number;
}

interface Group {
  lastDelivered: Id;
  /** Pending entries by id, in id order (new deliveries always have the largest ids). */
  readonly pending: Map<string, PendingEntry>;
}

interface Stream {
  /** Retained entries in id order. */
  readonly entries: StoredEntry[];
  /** The last id ever generated (kept when entries are trimmed, as Redis does). */
  last: Id;
  readonly groups: Map<string, Group>;
}

/** A blocked `readGroup` call. */
interface Waiter {
  readonly group: string;
  readonly consumer: string;
  readonly streams: readonly string[];
  readonly count: number;
  settle(outcome: { entries: StreamEntry[] } | { error: EsperError }): void;
}

const ZERO_ID: Id = Object.freeze({ ms: 0, seq: 0 });

function compareIds(a: Id, b: Id): number {
  if (a.ms !== b.ms) return a.ms < b.ms ? -1 : 1;
  if (a.seq !== b.seq) return a.seq < b.seq ? -1 : 1;
  return 0;
}

function toId(id: string): Id {
  const parsed = parseEntryId(id);
  return { ms: Number(parsed.ms), seq: Number(parsed.seq) };
}

function formatId(id: Id): string {
  return `${id.ms}-${id.seq}`;
}

/** Index of the first entry whose id is greater than `id`. */
function firstAfter(entries: readonly StoredEntry[], id: Id): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (compareIds(entries[mid] as StoredEntry, id) <= 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

function findEntry(entries: readonly StoredEntry[], id: Id): StoredEntry | undefined {
  const index = firstAfter(entries, id) - 1;
  const entry = entries[index];
  return entry !== undefined && compareIds(entry, id) === 0 ? entry : undefined;
}

function copyFields(fields: EntryFields): EntryFields {
  const copy: Record<string, Uint8Array> = {};
  for (const [name, value] of Object.entries(fields)) copy[name] = new Uint8Array(value);
  return Object.freeze(copy);
}

function noGroup(stream: string, group: string): EsperError {
  return new EsperError(ErrorCode.OONA_NO_GROUP, `no stream ${JSON.stringify(stream)} or group ${JSON.stringify(group)}`, {
    details: { stream, group },
  });
}

/** In-process Redis-Streams-like store; see the module comment. */
export class MemoryStreamStore implements StreamStore {
  readonly #clock: Clock;
  readonly #streams = new Map<string, Stream>();
  /** Blocked readers, oldest first (served first, like Redis). */
  readonly #waiters = new Set<Waiter>();
  #closed = false;
  readonly #close = closeOnce(async () => {
    this.#closed = true;
    for (const waiter of [...this.#waiters]) waiter.settle({ entries: [] });
    this.#streams.clear();
  });

  constructor(options: MemoryStreamStoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
  }

  /** @throws EsperError `OONA_CLOSED` after close; `INVALID_ARGUMENT` for no fields. */
  add(stream: string, fields: EntryFields): Promise<string> {
    return this.#run(() => {
      checkName('stream', stream);
      checkFields(fields);
      const target = this.#streamOrCreate(stream);
      const wallMs = Math.floor(this.#clock.wallMs());
      const id: Id = wallMs > target.last.ms ? { ms: wallMs, seq: 0 } : { ms: target.last.ms, seq: target.last.seq + 1 };
      const entry: StoredEntry = { ...id, id: formatId(id), fields: copyFields(fields) };
      target.entries.push(entry);
      target.last = id;
      this.#serveWaiters(stream);
      return entry.id;
    });
  }

  /** @throws EsperError `OONA_CLOSED` after close. */
  ensureGroup(stream: string, group: string, start: '$' | '0'): Promise<void> {
    return this.#run(() => {
      checkName('stream', stream);
      checkName('group', group);
      checkStart(start);
      const target = this.#streamOrCreate(stream);
      if (target.groups.has(group)) return;
      target.groups.set(group, { lastDelivered: start === '$' ? target.last : ZERO_ID, pending: new Map() });
    });
  }

  /** @throws EsperError `OONA_CLOSED` after close. */
  destroyGroup(stream: string, group: string): Promise<void> {
    return this.#run(() => {
      checkName('stream', stream);
      checkName('group', group);
      if (this.#streams.get(stream)?.groups.delete(group) !== true) return;
      // Redis 7 unblocks readers of a destroyed group with NOGROUP.
      for (const waiter of [...this.#waiters]) {
        if (waiter.group === group && waiter.streams.includes(stream)) waiter.settle({ error: noGroup(stream, group) });
      }
    });
  }

  /**
   * Waits on real timers when `blockMs` > 0 and nothing is ready; an `add` to any of the
   * streams wakes it at once. An aborted signal (before or during the wait) and `close()`
   * resolve `[]`.
   *
   * @throws EsperError `OONA_NO_GROUP` when a stream or its group does not exist (also when
   *   one is deleted during the wait); `OONA_CLOSED` when called after close.
   */
  readGroup(group: string, consumer: string, streams: readonly string[], options: ReadGroupOptions): Promise<StreamEntry[]> {
    if (this.#closed) return Promise.reject(this.#closedError());
    try {
      checkReadGroup(group, consumer, streams, options);
      if (options.signal?.aborted === true) return Promise.resolve([]);
      const entries = this.#readNow(group, consumer, streams, options.count);
      if (entries.length > 0 || options.blockMs === 0) return Promise.resolve(entries);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return this.#wait(group, consumer, streams, options);
  }

  /** @throws EsperError `OONA_CLOSED` after close; `INVALID_ARGUMENT` for a malformed id. */
  ack(stream: string, group: string, ids: readonly string[]): Promise<number> {
    return this.#run(() => {
      checkName('stream', stream);
      checkName('group', group);
      for (const id of ids) checkEntryId('ids[]', id);
      const pending = this.#streams.get(stream)?.groups.get(group)?.pending;
      if (pending === undefined) return 0;
      let acked = 0;
      for (const id of ids) if (pending.delete(formatId(toId(id)))) acked += 1;
      return acked;
    });
  }

  /**
   * Scans the pending list in id order: entries trimmed from the stream are dropped from
   * it (whatever their idle time, as Redis 7 does); entries idle ≥ `minIdleMs` move to
   * `consumer` with their delivery count incremented and idle time reset, until `count`
   * were claimed.
   *
   * @throws EsperError `OONA_NO_GROUP` when the stream or group does not exist.
   */
  autoClaim(stream: string, group: string, consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]> {
    return this.#run(() => {
      checkName('stream', stream);
      checkName('group', group);
      checkName('consumer', consumer);
      checkDurationMs('minIdleMs', minIdleMs);
      checkCount('count', count);
      const target = this.#streams.get(stream);
      const state = target?.groups.get(group);
      if (target === undefined || state === undefined) throw noGroup(stream, group);
      const nowMs = this.#clock.monotonicMs();
      const claimed: StreamEntry[] = [];
      for (const [id, pending] of state.pending) {
        if (claimed.length >= count) break;
        const entry = findEntry(target.entries, toId(id));
        if (entry === undefined) {
          state.pending.delete(id);
          continue;
        }
        if (nowMs - pending.deliveredAtMs < minIdleMs) continue;
        pending.consumer = consumer;
        pending.deliveredAtMs = nowMs;
        pending.deliveryCount += 1;
        claimed.push(this.#toStreamEntry(stream, entry, pending.deliveryCount));
      }
      return claimed;
    });
  }

  /**
   * Groups in name order, like XINFO GROUPS. `lag` counts the retained entries after the
   * group's last-delivered id.
   */
  groups(stream: string): Promise<GroupInfo[]> {
    return this.#run(() => {
      checkName('stream', stream);
      const target = this.#streams.get(stream);
      if (target === undefined) return [];
      const names = [...target.groups.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      return names.map((name): GroupInfo => {
        const state = target.groups.get(name) as Group;
        const oldest = state.pending.keys().next();
        return {
          name,
          pending: state.pending.size,
          lag: target.entries.length - firstAfter(target.entries, state.lastDelivered),
          lastDeliveredId: formatId(state.lastDelivered),
          oldestPendingId: oldest.done === true ? undefined : oldest.value,
        };
      });
    });
  }

  /** @throws EsperError `OONA_CLOSED` after close. */
  length(stream: string): Promise<number> {
    return this.#run(() => {
      checkName('stream', stream);
      return this.#streams.get(stream)?.entries.length ?? 0;
    });
  }

  /**
   * Deletes entries below `minId`. Pending entries that pointed at them stay pending until
   * acknowledged or dropped by `autoClaim` (Redis behaves the same).
   */
  trimBefore(stream: string, minId: string): Promise<number> {
    return this.#run(() => {
      checkName('stream', stream);
      checkEntryId('minId', minId);
      const entries = this.#streams.get(stream)?.entries;
      if (entries === undefined) return 0;
      const min = toId(minId);
      let end = 0;
      while (end < entries.length && compareIds(entries[end] as StoredEntry, min) < 0) end += 1;
      entries.splice(0, end);
      return end;
    });
  }

  /** Deletes the streams with their groups; their blocked readers fail with `OONA_NO_GROUP`. */
  deleteStreams(streams: readonly string[]): Promise<void> {
    return this.#run(() => {
      for (const stream of streams) checkName('streams[]', stream);
      for (const stream of streams) {
        if (!this.#streams.delete(stream)) continue;
        for (const waiter of [...this.#waiters]) {
          if (waiter.streams.includes(stream)) waiter.settle({ error: noGroup(stream, waiter.group) });
        }
      }
    });
  }

  /**
   * Resolves every blocked reader with `[]`; later calls throw `OONA_CLOSED`. Idempotent:
   * every call returns the first call's promise.
   */
  close(): Promise<void> {
    return this.#close();
  }

  /** `await using` support: same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }

  /** Runs a synchronous operation as a promise, refusing it after close. */
  #run<T>(operation: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closedError());
    try {
      return Promise.resolve(operation());
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  #closedError(): EsperError {
    return new EsperError(ErrorCode.OONA_CLOSED, 'the memory stream store is closed');
  }

  #streamOrCreate(name: string): Stream {
    let stream = this.#streams.get(name);
    if (stream === undefined) {
      stream = { entries: [], last: ZERO_ID, groups: new Map() };
      this.#streams.set(name, stream);
    }
    return stream;
  }

  /** Delivers new entries of each stream (all groups checked first, as XREADGROUP does). */
  #readNow(group: string, consumer: string, streams: readonly string[], count: number): StreamEntry[] {
    const states: Array<readonly [string, Stream, Group]> = [];
    for (const name of streams) {
      const stream = this.#streams.get(name);
      const state = stream?.groups.get(group);
      if (stream === undefined || state === undefined) throw noGroup(name, group);
      states.push([name, stream, state]);
    }
    const nowMs = this.#clock.monotonicMs();
    const delivered: StreamEntry[] = [];
    for (const [name, stream, state] of states) {
      const start = firstAfter(stream.entries, state.lastDelivered);
      for (const entry of stream.entries.slice(start, start + count)) {
        state.pending.set(entry.id, { consumer, deliveredAtMs: nowMs, deliveryCount: 1 });
        state.lastDelivered = { ms: entry.ms, seq: entry.seq };
        delivered.push(this.#toStreamEntry(name, entry, 1));
      }
    }
    return delivered;
  }

  #wait(group: string, consumer: string, streams: readonly string[], options: ReadGroupOptions): Promise<StreamEntry[]> {
    return new Promise<StreamEntry[]>((resolve, reject) => {
      const { signal } = options;
      const onAbort = (): void => waiter.settle({ entries: [] });
      const timer = setTimeout(() => waiter.settle({ entries: [] }), options.blockMs);
      const waiter: Waiter = {
        group,
        consumer,
        streams,
        count: options.count,
        settle: (outcome) => {
          if (!this.#waiters.delete(waiter)) return;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          if ('error' in outcome) reject(outcome.error);
          else resolve(outcome.entries);
        },
      };
      this.#waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Serves blocked readers of `stream`, oldest first, like Redis after an XADD. */
  #serveWaiters(stream: string): void {
    for (const waiter of [...this.#waiters]) {
      if (!waiter.streams.includes(stream)) continue;
      try {
        const entries = this.#readNow(waiter.group, waiter.consumer, waiter.streams, waiter.count);
        if (entries.length > 0) waiter.settle({ entries });
      } catch (error) {
        waiter.settle({ error: error as EsperError });
      }
    }
  }

  #toStreamEntry(stream: string, entry: StoredEntry, deliveryCount: number): StreamEntry {
    return { stream, id: entry.id, fields: copyFields(entry.fields), deliveryCount };
  }
}
