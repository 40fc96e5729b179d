/**
 * The one conformance suite every `StreamStore` passes: `memory-stream-store.test.ts` and
 * `redis-stream-store.test.ts` run it. It uses real time with small idle thresholds and
 * polls with deadlines; it never sleeps to wait for async work.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/errors.js';
import { compareEntryIds, type EntryFields, type StreamEntry, type StreamStore } from '../../src/oona/stream-store.js';

/** How a store under test is made and observed. */
export interface StreamStoreTarget {
  /** A fresh store; the suite closes it after each test. */
  readonly makeStore: () => StreamStore | Promise<StreamStore>;
  /**
   * Resolves once `store` has `readers` blocked `readGroup` calls waiting on the server, so
   * that what the test does next must wake them. @default resolves at once (the memory
   * store registers a blocked reader before `readGroup` returns)
   */
  readonly waitUntilBlocked?: (store: StreamStore, readers: number) => Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A one-field entry `{ body: text }`. */
export function body(text: string): EntryFields {
  return { body: encoder.encode(text) };
}

/** The `body` field of an entry as text. */
export function bodyOf(entry: StreamEntry): string {
  const value = entry.fields.body;
  if (value === undefined) throw new Error(`entry ${entry.id} has no body field`);
  return decoder.decode(value);
}

/** Polls `probe` until it returns a value other than `undefined`, or fails after `deadlineMs`. */
export async function pollUntil<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string,
  deadlineMs = 5_000,
  intervalMs = 5,
): Promise<T> {
  const start = performance.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() - start > deadlineMs) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The rejection of `promise`; fails the test if it fulfils. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

/** A unique key prefix per test, so parallel test files never share streams. */
export function uniquePrefix(): string {
  return `esper-test:${randomBytes(6).toString('hex')}:`;
}

/** Registers the store conformance suite for one implementation. */
export function describeStreamStoreConformance(name: string, target: StreamStoreTarget): void {
  const waitUntilBlocked = target.waitUntilBlocked ?? (() => Promise.resolve());

  describe(`${name} (StreamStore conformance)`, () => {
    let stores: StreamStore[] = [];
    let streams: string[] = [];
    let prefix = '';

    async function open(): Promise<StreamStore> {
      const store = await target.makeStore();
      stores.push(store);
      return store;
    }

    /** A stream name under this test's prefix (deleted after the test). */
    function key(suffix: string): string {
      const stream = `${prefix}${suffix}`;
      streams.push(stream);
      return stream;
    }

    async function addAll(store: StreamStore, stream: string, texts: readonly string[]): Promise<string[]> {
      const ids: string[] = [];
      for (const text of texts) ids.push(await store.add(stream, body(text)));
      return ids;
    }

    async function groupInfo(store: StreamStore, stream: string, group: string) {
      const info = (await store.groups(stream)).find((candidate) => candidate.name === group);
      if (info === undefined) throw new Error(`no group ${group} on ${stream}`);
      return info;
    }

    beforeEach(() => {
      prefix = uniquePrefix();
    });

    afterEach(async () => {
      const cleaner = await target.makeStore();
      try {
        if (streams.length > 0) await cleaner.deleteStreams(streams);
      } finally {
        await cleaner.close();
        await Promise.all(stores.map((store) => store.close()));
        stores = [];
        streams = [];
      }
    });

    describe('add and readGroup', () => {
      it('assigns strictly increasing <ms>-<seq> ids, also for adds within one millisecond', async () => {
        const store = await open();
        const stream = key('ids');
        const ids = await addAll(
          store,
          stream,
          Array.from({ length: 50 }, (_, i) => `m${i}`),
        );
        for (const id of ids) expect(id).toMatch(/^\d+-\d+$/);
        for (let i = 1; i < ids.length; i += 1) {
          expect(compareEntryIds(ids[i - 1] as string, ids[i] as string)).toBeLessThan(0);
        }
        expect(await store.length(stream)).toBe(50);
        expect(await store.length(key('missing'))).toBe(0);
      });

      it('delivers entries in the order of the streams argument, then by id, with delivery count 1', async () => {
        const store = await open();
        const a = key('a');
        const b = key('b');
        await store.ensureGroup(a, 'g', '0');
        await store.ensureGroup(b, 'g', '0');
        const aIds = await addAll(store, a, ['a1', 'a2']);
        const bIds = await addAll(store, b, ['b1', 'b2']);
        const entries = await store.readGroup('g', 'c1', [b, a], { count: 10, blockMs: 0 });
        expect(entries.map((entry) => [entry.stream, entry.id, bodyOf(entry), entry.deliveryCount])).toEqual([
          [b, bIds[0], 'b1', 1],
          [b, bIds[1], 'b2', 1],
          [a, aIds[0], 'a1', 1],
          [a, aIds[1], 'a2', 1],
        ]);
      });

      it('delivers each entry once per group (">" semantics) and to every group', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g1', '0');
        await store.ensureGroup(stream, 'g2', '0');
        await addAll(store, stream, ['one', 'two']);
        const first = await store.readGroup('g1', 'c1', [stream], { count: 10, blockMs: 0 });
        expect(first.map(bodyOf)).toEqual(['one', 'two']);
        expect(await store.readGroup('g1', 'c1', [stream], { count: 10, blockMs: 0 })).toEqual([]);
        expect(await store.readGroup('g1', 'c2', [stream], { count: 10, blockMs: 0 })).toEqual([]);
        await store.add(stream, body('three'));
        const next = await store.readGroup('g1', 'c2', [stream], { count: 10, blockMs: 0 });
        expect(next.map(bodyOf)).toEqual(['three']);
        const other = await store.readGroup('g2', 'c1', [stream], { count: 10, blockMs: 0 });
        expect(other.map(bodyOf)).toEqual(['one', 'two', 'three']);
      });

      it('returns at most count entries per stream', async () => {
        const store = await open();
        const a = key('a');
        const b = key('b');
        await store.ensureGroup(a, 'g', '0');
        await store.ensureGroup(b, 'g', '0');
        await addAll(store, a, ['a1', 'a2', 'a3']);
        await addAll(store, b, ['b1', 'b2', 'b3']);
        const first = await store.readGroup('g', 'c', [a, b], { count: 2, blockMs: 0 });
        expect(first.map(bodyOf)).toEqual(['a1', 'a2', 'b1', 'b2']);
        const second = await store.readGroup('g', 'c', [a, b], { count: 2, blockMs: 0 });
        expect(second.map(bodyOf)).toEqual(['a3', 'b3']);
      });

      it('returns [] at once with blockMs 0 when nothing is new', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g', '$');
        const started = performance.now();
        expect(await store.readGroup('g', 'c', [stream], { count: 1, blockMs: 0 })).toEqual([]);
        expect(performance.now() - started).toBeLessThan(1_000);
      });

      it('rejects an entry without fields and bad read options with INVALID_ARGUMENT', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g', '0');
        expect(isEsperError(await rejectionOf(store.add(stream, {})), ErrorCode.INVALID_ARGUMENT)).toBe(true);
        const badCount = await rejectionOf(store.readGroup('g', 'c', [stream], { count: 0, blockMs: 0 }));
        expect(isEsperError(badCount, ErrorCode.INVALID_ARGUMENT)).toBe(true);
        const badBlock = await rejectionOf(store.readGroup('g', 'c', [stream], { count: 1, blockMs: -1 }));
        expect(isEsperError(badBlock, ErrorCode.INVALID_ARGUMENT)).toBe(true);
        const badId = await rejectionOf(store.ack(stream, 'g', ['not-an-id']));
        expect(isEsperError(badId, ErrorCode.INVALID_ARGUMENT)).toBe(true);
      });
    });

    describe('blocking reads', () => {
      it('wakes a blocked reader as soon as an entry is added to any of its streams', async () => {
        const store = await open();
        const a = key('a');
        const b = key('b');
        await store.ensureGroup(a, 'g', '$');
        await store.ensureGroup(b, 'g', '$');
        const read = store.readGroup('g', 'c', [a, b], { count: 5, blockMs: 20_000 });
        await waitUntilBlocked(store, 1);
        const addedAt = performance.now();
        await store.add(b, body('wake'));
        const entries = await read;
        expect(performance.now() - addedAt).toBeLessThan(1_000);
        expect(entries.map((entry) => [entry.stream, bodyOf(entry)])).toEqual([[b, 'wake']]);
      });

      it('serves concurrent blocked readers of one group each entry once', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g', '$');
        const first = store.readGroup('g', 'c1', [stream], { count: 1, blockMs: 20_000 });
        const second = store.readGroup('g', 'c2', [stream], { count: 1, blockMs: 20_000 });
        await waitUntilBlocked(store, 2);
        await store.add(stream, body('x'));
        await store.add(stream, body('y'));
        const delivered = [...(await first), ...(await second)].map(bodyOf).sort();
        expect(delivered).toEqual(['x', 'y']);
      });

      it('resolves [] promptly when the signal aborts during the wait', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g', '$');
        const controller = new AbortController();
        const read = store.readGroup('g', 'c', [stream], { count: 1, blockMs: 20_000, signal: controller.signal });
        await waitUntilBlocked(store, 1);
        const abortedAt = performance.now();
        controller.abort();
        expect(await read).toEqual([]);
        expect(performance.now() - abortedAt).toBeLessThan(1_000);
        // The store stays usable: a later read gets a later entry.
        await store.add(stream, body('after'));
        const later = await store.readGroup('g', 'c', [stream], { count: 1, blockMs: 5_000 });
        expect(later.map(bodyOf)).toEqual(['after']);
      });

      it('resolves [] without delivering anything when the signal is already aborted', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g', '0');
        await store.add(stream, body('kept'));
        const controller = new AbortController();
        controller.abort();
        expect(await store.readGroup('g', 'c', [stream], { count: 1, blockMs: 1_000, signal: controller.signal })).toEqual([]);
        expect((await groupInfo(store, stream, 'g')).pending).toBe(0);
        const entries = await store.readGroup('g', 'c', [stream], { count: 1, blockMs: 0 });
        expect(entries.map(bodyOf)).toEqual(['kept']);
      });

      it('resolves [] once blockMs passes with nothing added', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g', '$');
        const started = performance.now();
        expect(await store.readGroup('g', 'c', [stream], { count: 1, blockMs: 100 })).toEqual([]);
        const elapsed = performance.now() - started;
        expect(elapsed).toBeGreaterThanOrEqual(90);
        expect(elapsed).toBeLessThan(5_000);
      });
    });

    describe('groups', () => {
      it("starts a '$' group after the current last entry and a '0' group at the beginning", async () => {
        const store = await open();
        const stream = key('s');
        await addAll(store, stream, ['old1', 'old2']);
        await store.ensureGroup(stream, 'late', '$');
        await store.ensureGroup(stream, 'early', '0');
        await store.add(stream, body('new'));
        const late = await store.readGroup('late', 'c', [stream], { count: 10, blockMs: 0 });
        expect(late.map(bodyOf)).toEqual(['new']);
        const early = await store.readGroup('early', 'c', [stream], { count: 10, blockMs: 0 });
        expect(early.map(bodyOf)).toEqual(['old1', 'old2', 'new']);
      });

      it('creates a missing stream with the group and leaves an existing group untouched', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g', '$');
        expect(await store.length(stream)).toBe(0);
        expect((await store.groups(stream)).map((info) => info.name)).toEqual(['g']);
        await addAll(store, stream, ['one', 'two']);
        expect((await store.readGroup('g', 'c', [stream], { count: 1, blockMs: 0 })).map(bodyOf)).toEqual(['one']);
        await store.ensureGroup(stream, 'g', '0');
        await store.ensureGroup(stream, 'g', '$');
        expect((await store.readGroup('g', 'c', [stream], { count: 10, blockMs: 0 })).map(bodyOf)).toEqual(['two']);
        expect((await groupInfo(store, stream, 'g')).pending).toBe(2);
      });

      it('reports pending, lag, last-delivered and oldest pending ids', async () => {
        const store = await open();
        const stream = key('s');
        expect(await store.groups(stream)).toEqual([]);
        await store.ensureGroup(stream, 'g', '0');
        expect(await store.groups(stream)).toEqual([{ name: 'g', pending: 0, lag: 0, lastDeliveredId: '0-0', oldestPendingId: undefined }]);
        const ids = await addAll(store, stream, ['1', '2', '3', '4', '5']);
        expect(await groupInfo(store, stream, 'g')).toEqual({
          name: 'g',
          pending: 0,
          lag: 5,
          lastDeliveredId: '0-0',
          oldestPendingId: undefined,
        });
        await store.readGroup('g', 'c', [stream], { count: 2, blockMs: 0 });
        expect(await groupInfo(store, stream, 'g')).toEqual({
          name: 'g',
          pending: 2,
          lag: 3,
          lastDeliveredId: ids[1],
          oldestPendingId: ids[0],
        });
        expect(await store.ack(stream, 'g', [ids[0] as string])).toBe(1);
        expect(await groupInfo(store, stream, 'g')).toMatchObject({ pending: 1, lag: 3, oldestPendingId: ids[1] });
        await store.readGroup('g', 'c', [stream], { count: 10, blockMs: 0 });
        expect(await groupInfo(store, stream, 'g')).toMatchObject({ pending: 4, lag: 0, lastDeliveredId: ids[4] });
      });

      it('lists groups in name order', async () => {
        const store = await open();
        const stream = key('s');
        for (const group of ['zeta', 'alpha', 'mid']) await store.ensureGroup(stream, group, '$');
        expect((await store.groups(stream)).map((info) => info.name)).toEqual(['alpha', 'mid', 'zeta']);
      });

      it('counts only retained entries in lag after undelivered entries are trimmed', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g', '$');
        const ids = await addAll(store, stream, ['1', '2', '3', '4', '5']);
        await store.readGroup('g', 'c', [stream], { count: 1, blockMs: 0 });
        expect(await store.trimBefore(stream, ids[3] as string)).toBe(3);
        expect((await groupInfo(store, stream, 'g')).lag).toBe(2);
        await store.readGroup('g', 'c', [stream], { count: 10, blockMs: 0 });
        expect((await groupInfo(store, stream, 'g')).lag).toBe(0);
        // A group created from the beginning after trimming counts the retained entries.
        await store.ensureGroup(stream, 'from-start', '0');
        expect((await groupInfo(store, stream, 'from-start')).lag).toBe(2);
        await store.trimBefore(stream, '99999999999999-0');
        expect((await groupInfo(store, stream, 'from-start')).lag).toBe(0);
        await store.add(stream, body('6'));
        expect((await groupInfo(store, stream, 'g')).lag).toBe(1);
        expect((await groupInfo(store, stream, 'from-start')).lag).toBe(1);
      });

      it('destroys a group with its pending list, and ignores a missing one', async () => {
        const store = await open();
        const stream = key('s');
        await store.destroyGroup(stream, 'g');
        await store.ensureGroup(stream, 'g', '0');
        await store.add(stream, body('x'));
        await store.readGroup('g', 'c', [stream], { count: 1, blockMs: 0 });
        await store.destroyGroup(stream, 'g');
        await store.destroyGroup(stream, 'g');
        expect(await store.groups(stream)).toEqual([]);
        await store.ensureGroup(stream, 'g', '0');
        expect(await groupInfo(store, stream, 'g')).toMatchObject({ pending: 0, lag: 1 });
      });
    });

    describe('ack', () => {
      it('removes acknowledged entries from the pending list and counts only those pending', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g', '0');
        const ids = await addAll(store, stream, ['1', '2', '3']);
        await store.readGroup('g', 'c', [stream], { count: 2, blockMs: 0 });
        expect(await store.ack(stream, 'g', [ids[0] as string, ids[2] as string])).toBe(1);
        expect(await store.ack(stream, 'g', [ids[0] as string])).toBe(0);
        expect(await store.ack(stream, 'g', [])).toBe(0);
        expect(await store.ack(stream, 'missing-group', [ids[1] as string])).toBe(0);
        expect(await store.ack(stream, 'g', [ids[1] as string])).toBe(1);
        expect((await groupInfo(store, stream, 'g')).pending).toBe(0);
      });
    });

    describe('autoClaim', () => {
      it('claims entries idle at least minIdleMs, increments their delivery count and resets their idle time', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g', '0');
        const [id] = await addAll(store, stream, ['work']);
        const readAt = performance.now();
        await store.readGroup('g', 'dead', [stream], { count: 1, blockMs: 0 });
        expect(await store.autoClaim(stream, 'g', 'rescuer', 60_000, 10)).toEqual([]);

        const claimed = await pollUntil(async () => {
          const entries = await store.autoClaim(stream, 'g', 'rescuer', 50, 10);
          return entries.length > 0 ? entries : undefined;
        }, 'the entry to become claimable');
        expect(performance.now() - readAt).toBeGreaterThanOrEqual(48);
        expect(claimed.map((entry) => [entry.stream, entry.id, bodyOf(entry), entry.deliveryCount])).toEqual([[stream, id, 'work', 2]]);
        // Claiming reset the idle time, so a long threshold finds nothing.
        expect(await store.autoClaim(stream, 'g', 'other', 60_000, 10)).toEqual([]);

        const again = await pollUntil(async () => {
          const entries = await store.autoClaim(stream, 'g', 'third', 50, 10);
          return entries.length > 0 ? entries : undefined;
        }, 'the entry to become claimable again');
        expect(again.map((entry) => entry.deliveryCount)).toEqual([3]);
        expect(await groupInfo(store, stream, 'g')).toMatchObject({ pending: 1, oldestPendingId: id });
        expect(await store.ack(stream, 'g', [id as string])).toBe(1);
      });

      it('claims at most count entries, oldest first', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g', '0');
        const ids = await addAll(store, stream, ['1', '2', '3', '4', '5']);
        await store.readGroup('g', 'dead', [stream], { count: 10, blockMs: 0 });
        const first = await store.autoClaim(stream, 'g', 'rescuer', 0, 2);
        expect(first.map((entry) => entry.id)).toEqual(ids.slice(0, 2));
        const rest = await store.autoClaim(stream, 'g', 'rescuer', 0, 10);
        expect(rest.map((entry) => [entry.id, entry.deliveryCount])).toEqual([
          [ids[0], 3],
          [ids[1], 3],
          [ids[2], 2],
          [ids[3], 2],
          [ids[4], 2],
        ]);
      });

      it('drops trimmed entries from the pending list instead of returning them', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g', '0');
        const ids = await addAll(store, stream, ['1', '2', '3']);
        await store.readGroup('g', 'dead', [stream], { count: 10, blockMs: 0 });
        expect(await store.trimBefore(stream, ids[2] as string)).toBe(2);
        expect((await groupInfo(store, stream, 'g')).pending).toBe(3);
        const claimed = await store.autoClaim(stream, 'g', 'rescuer', 0, 10);
        expect(claimed.map((entry) => [entry.id, bodyOf(entry), entry.deliveryCount])).toEqual([[ids[2], '3', 2]]);
        expect(await groupInfo(store, stream, 'g')).toMatchObject({ pending: 1, oldestPendingId: ids[2] });
      });

      it('fails with OONA_NO_GROUP for a missing group or stream', async () => {
        const store = await open();
        const stream = key('s');
        const missingStream = await rejectionOf(store.autoClaim(stream, 'g', 'c', 0, 1));
        expect(isEsperError(missingStream, ErrorCode.OONA_NO_GROUP)).toBe(true);
        await store.ensureGroup(stream, 'other', '0');
        const missingGroup = await rejectionOf(store.autoClaim(stream, 'g', 'c', 0, 1));
        expect(isEsperError(missingGroup, ErrorCode.OONA_NO_GROUP)).toBe(true);
      });
    });

    describe('trimBefore', () => {
      it('deletes exactly the entries below minId and keeps ids increasing afterwards', async () => {
        const store = await open();
        const stream = key('s');
        const ids = await addAll(store, stream, ['1', '2', '3', '4', '5']);
        expect(await store.trimBefore(stream, ids[2] as string)).toBe(2);
        expect(await store.length(stream)).toBe(3);
        expect(await store.trimBefore(stream, ids[2] as string)).toBe(0);
        expect(await store.trimBefore(key('missing'), ids[2] as string)).toBe(0);
        expect(await store.trimBefore(stream, '99999999999999-0')).toBe(3);
        expect(await store.length(stream)).toBe(0);
        const next = await store.add(stream, body('6'));
        expect(compareEntryIds(ids[4] as string, next)).toBeLessThan(0);
        await store.ensureGroup(stream, 'g', '0');
        const entries = await store.readGroup('g', 'c', [stream], { count: 10, blockMs: 0 });
        expect(entries.map(bodyOf)).toEqual(['6']);
      });
    });

    describe('missing groups', () => {
      it('fails readGroup with OONA_NO_GROUP for a missing stream or group, delivering nothing', async () => {
        const store = await open();
        const good = key('good');
        const bare = key('bare');
        const missing = await rejectionOf(store.readGroup('g', 'c', [key('missing')], { count: 1, blockMs: 0 }));
        expect(isEsperError(missing, ErrorCode.OONA_NO_GROUP)).toBe(true);
        await store.ensureGroup(good, 'g', '0');
        await store.add(good, body('x'));
        await store.add(bare, body('y'));
        const mixed = await rejectionOf(store.readGroup('g', 'c', [good, bare], { count: 1, blockMs: 1_000 }));
        expect(isEsperError(mixed, ErrorCode.OONA_NO_GROUP)).toBe(true);
        expect((await groupInfo(store, good, 'g')).pending).toBe(0);
      });

      it('fails a blocked reader with OONA_NO_GROUP when its group is destroyed or its stream deleted', async () => {
        const store = await open();
        const a = key('a');
        const b = key('b');
        await store.ensureGroup(a, 'g', '$');
        await store.ensureGroup(b, 'g', '$');
        // rejectionOf attaches its handler at once: each read may fail before it is awaited.
        const onA = rejectionOf(store.readGroup('g', 'c', [a], { count: 1, blockMs: 20_000 }));
        const onB = rejectionOf(store.readGroup('g', 'c', [b], { count: 1, blockMs: 20_000 }));
        await waitUntilBlocked(store, 2);
        await store.destroyGroup(a, 'g');
        expect(isEsperError(await onA, ErrorCode.OONA_NO_GROUP)).toBe(true);
        await store.deleteStreams([b]);
        expect(isEsperError(await onB, ErrorCode.OONA_NO_GROUP)).toBe(true);
      });
    });

    describe('bytes', () => {
      it('round-trips every byte value, zero bytes, empty values and a 1 MB value', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g', '0');
        const everyByte = Uint8Array.from({ length: 256 }, (_, i) => i);
        const zeros = new Uint8Array(64);
        const large = new Uint8Array(randomBytes(1024 * 1024));
        const invalidUtf8 = Uint8Array.of(0xff, 0xfe, 0x00, 0xc3, 0x28);
        const fields = { every: everyByte, zeros, empty: new Uint8Array(0), large, bad: invalidUtf8 };
        await store.add(stream, fields);
        const [entry] = await store.readGroup('g', 'c', [stream], { count: 1, blockMs: 0 });
        expect(entry).toBeDefined();
        const got = entry?.fields ?? {};
        expect(Object.keys(got).sort()).toEqual(Object.keys(fields).sort());
        for (const [name, value] of Object.entries(fields)) {
          const actual = got[name];
          expect(actual).toBeInstanceOf(Uint8Array);
          expect(Buffer.from(actual as Uint8Array).equals(Buffer.from(value)), name).toBe(true);
        }
      });

      it('keeps stored bytes independent of the caller’s buffers', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g', '0');
        const value = Uint8Array.of(1, 2, 3);
        await store.add(stream, { v: value });
        value[0] = 99;
        const [read] = await store.readGroup('g', 'c', [stream], { count: 1, blockMs: 0 });
        expect([...(read?.fields.v ?? [])]).toEqual([1, 2, 3]);
        (read?.fields.v as Uint8Array)[1] = 99;
        const [claimed] = await store.autoClaim(stream, 'g', 'c2', 0, 1);
        expect([...(claimed?.fields.v ?? [])]).toEqual([1, 2, 3]);
      });
    });

    describe('close', () => {
      it('wakes blocked readers with [], then refuses calls with OONA_CLOSED', async () => {
        const store = await open();
        const stream = key('s');
        await store.ensureGroup(stream, 'g', '$');
        const read = store.readGroup('g', 'c', [stream], { count: 1, blockMs: 20_000 });
        await waitUntilBlocked(store, 1);
        const closedAt = performance.now();
        const closing = store.close();
        expect(store.close()).toBe(closing);
        await closing;
        expect(await read).toEqual([]);
        expect(performance.now() - closedAt).toBeLessThan(2_000);
        const calls: Array<Promise<unknown>> = [
          store.add(stream, body('x')),
          store.ensureGroup(stream, 'g', '$'),
          store.readGroup('g', 'c', [stream], { count: 1, blockMs: 0 }),
          store.ack(stream, 'g', ['1-0']),
          store.autoClaim(stream, 'g', 'c', 0, 1),
          store.groups(stream),
          store.length(stream),
          store.trimBefore(stream, '1-0'),
          store.deleteStreams([stream]),
          store.destroyGroup(stream, 'g'),
        ];
        for (const call of calls) expect(isEsperError(await rejectionOf(call), ErrorCode.OONA_CLOSED)).toBe(true);
        await store.close();
      });
    });
  });
}
