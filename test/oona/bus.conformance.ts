/**
 * The one conformance suite of Oona's `Bus`, run against `StreamBus` on
 * `MemoryStreamStore` (`memory-bus.conformance.test.ts`) and on `RedisStreamStore`
 * (`redis-bus.conformance.test.ts`). Every test gets a fresh bus with a test key ring, a
 * `MemoryTelemetrySink` and small timing options; it polls with deadlines and never sleeps
 * to wait for work. Negative assertions ("never handled again") watch a bounded window.
 *
 * Covered (issue 3, Acceptance): delivery of every Leyline message family with its
 * metadata; groups and consumers; at-least-once with retries and dead-letter; ack only after
 * success and reclaim of a stopped consumer's entry; emergency first; the emergency budget;
 * back-pressure (telemetry shed and counted, field reports and commands never shed);
 * bad signatures and malformed entries; kernel freshness and replay; request/reply;
 * housekeeping; metrics; close.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/errors.js';
import { MemoryTelemetrySink } from '../../src/core/telemetry.js';
import {
  BusEnvelopeSchema,
  BusMessageType,
  MessagePriority,
  TelemetryLevel,
  type FieldReport,
  type KernelArtifactReady,
  type KernelPrefetchRequest,
  type TelemetryPacket,
} from '../../src/leyline/index.js';
import { HmacSigner } from '../../src/security/index.js';
import type { Delivery, DeliveryHandler, PublishReceipt, Subscription } from '../../src/oona/bus.js';
import { EntryField, readDeadLetter } from '../../src/oona/envelope.js';
import { DeadLetterReason, OonaEvent } from '../../src/oona/names.js';
import type { StreamBusOptions } from '../../src/oona/options.js';
import type { EntryFields, StreamEntry, StreamStore } from '../../src/oona/stream-store.js';
import { StreamBus } from '../../src/oona/stream-bus.js';
import { LogicalStream, familyStream } from '../../src/oona/streams.js';
import {
  adaptationCommand,
  everyFamily,
  fieldReport,
  kernelArtifactReady,
  kernelPrefetchRequest,
  telemetryPacket,
  uniqueTag,
} from './fixtures/messages.js';
import { TEST_TIMINGS, testKeyRing } from './fixtures/bus-options.js';
import { Gate, Recorder, holdsFor, rejectionOf, waitFor } from './fixtures/waits.js';

/** Bus options a test chooses; the target adds the store and a unique stream prefix. */
export type BusOptionsWithoutStore = Omit<StreamBusOptions, 'store' | 'streamPrefix' | 'ownsStore'>;

/** A bus under test and the store beneath it. */
export interface BusFixture {
  readonly bus: StreamBus;
  readonly store: StreamStore;
  /** Closes what the target created (store, keys under the prefix); the suite closes buses first. */
  dispose(): Promise<void>;
}

/** Makes a fresh bus (fresh store namespace) with `options`. */
export type MakeBus = (options: BusOptionsWithoutStore) => Promise<BusFixture>;

/** Options of {@link describeBusConformance}. */
export interface BusConformanceOptions {
  /** Per-test timeout, in ms. @default 20_000 */
  readonly timeoutMs?: number;
}

interface Harness {
  readonly bus: StreamBus;
  readonly store: StreamStore;
  readonly telemetry: MemoryTelemetrySink;
  readonly streams: StreamBus['options']['streams'];
  /** Another bus on the same store and prefix (another process's view). */
  peer(overrides?: Partial<BusOptionsWithoutStore>): StreamBus;
}

const RUN = 'run-conformance';
const GROUP = 'conformance';

/** Registers the bus conformance suite for one store. */
export function describeBusConformance(name: string, makeBus: MakeBus, options: BusConformanceOptions = {}): void {
  const timeout = options.timeoutMs ?? 20_000;

  describe.sequential(`${name} (Bus conformance)`, { timeout }, () => {
    let fixtures: BusFixture[] = [];
    let buses: StreamBus[] = [];
    let gates: Gate[] = [];

    afterEach(async () => {
      // Let any handler a test left blocked finish, so closing never waits on it.
      for (const gate of gates) gate.open();
      const closing = buses.map((bus) => bus.close().catch(() => undefined));
      await Promise.all(closing);
      for (const fixture of fixtures) await fixture.dispose();
      fixtures = [];
      buses = [];
      gates = [];
    });

    function gate(): Gate {
      const g = new Gate();
      gates.push(g);
      return g;
    }

    async function setup(overrides: Partial<BusOptionsWithoutStore> = {}): Promise<Harness> {
      const telemetry = new MemoryTelemetrySink();
      const base: BusOptionsWithoutStore = { keyRing: testKeyRing(), telemetry, ...TEST_TIMINGS, ...overrides };
      const fixture = await makeBus(base);
      fixtures.push(fixture);
      buses.push(fixture.bus);
      const { bus, store } = fixture;
      return {
        bus,
        store,
        telemetry,
        streams: bus.options.streams,
        peer: (more = {}) => {
          const other = new StreamBus({ ...base, ...more, store, streamPrefix: bus.options.streamPrefix });
          buses.push(other);
          return other;
        },
      };
    }

    async function subscribe(
      bus: StreamBus,
      types: readonly BusMessageType[],
      handler: DeliveryHandler,
      more: { group?: string; consumer?: string; from?: 'new' | 'all' } = {},
    ): Promise<Subscription> {
      const subscription = bus.subscribe({
        group: more.group ?? GROUP,
        consumer: more.consumer ?? 'c1',
        types,
        handler,
        ...(more.from === undefined ? {} : { from: more.from }),
      });
      await subscription.ready;
      return subscription;
    }

    describe('delivery of every message family', () => {
      everyFamily(RUN).forEach(({ name: family }, index) => {
        it(`delivers a ${family} exactly, with its priority, correlation id, run id and attempt 1`, async () => {
          const { bus } = await setup();
          // Built now, so time-stamped messages (kernel requests) are fresh.
          const sample = everyFamily(RUN)[index] as ReturnType<typeof everyFamily>[number];
          const recorder = new Recorder();
          await subscribe(bus, [sample.type], recorder.handler);
          const correlationId = `corr-${uniqueTag()}`;
          const before = Date.now();
          const receipt = await bus.publish(sample.message, { correlationId, trainingRunId: 'run-explicit' });
          const after = Date.now();

          const expectedStream = sample.defaultPriority >= MessagePriority.HIGH ? LogicalStream.EMERGENCY : familyStream(sample.type);
          expect(receipt).toMatchObject({
            status: 'published',
            stream: expectedStream,
            priority: sample.defaultPriority,
            demoted: false,
          });
          const [delivery] = await recorder.waitForCount(1);
          expect(delivery).toBeDefined();
          const d = delivery as Delivery;
          expect(d.type).toBe(sample.type);
          expect(d.message.$typeName).toBe(sample.schema.typeName);
          expect(equals(sample.schema, d.message as never, sample.message as never)).toBe(true);
          expect(toBinary(sample.schema, d.message as never)).toEqual(toBinary(sample.schema, sample.message as never));
          expect(d.priority).toBe(sample.defaultPriority);
          expect(d.correlationId).toBe(correlationId);
          expect(d.trainingRunId).toBe('run-explicit');
          expect(d.attempt).toBe(1);
          expect(d.stream).toBe(expectedStream);
          if (receipt.status !== 'published') throw new Error('unreachable');
          expect(d.messageId).toBe(receipt.messageId);
          expect(d.entryId).toBe(receipt.entryId);
          expect(d.publishedAtMs).toBeGreaterThanOrEqual(before);
          expect(d.publishedAtMs).toBeLessThanOrEqual(after);
        });
      });

      it('carries an explicit priority end to end and defaults the run id to the message’s own', async () => {
        const { bus } = await setup();
        const recorder = new Recorder();
        await subscribe(bus, [BusMessageType.FIELD_REPORT, BusMessageType.TELEMETRY], recorder.handler);
        const low = fieldReport('run-own-1');
        const high = fieldReport('run-own-2');
        const lowTelemetry = telemetryPacket('run-own-3', { basePriority: MessagePriority.LOW });
        const critical = telemetryPacket('run-own-4', { level: TelemetryLevel.CRITICAL });
        const r1 = await bus.publish(low, { priority: MessagePriority.LOW });
        const r2 = await bus.publish(high, { priority: MessagePriority.HIGH });
        const r3 = await bus.publish(lowTelemetry);
        const r4 = await bus.publish(critical);
        expect([r1, r2, r3, r4].map((r) => r.status === 'published' && [r.stream, r.priority])).toEqual([
          [LogicalStream.FIELD_REPORTS, MessagePriority.LOW],
          [LogicalStream.EMERGENCY, MessagePriority.HIGH],
          [LogicalStream.TELEMETRY, MessagePriority.LOW],
          [LogicalStream.EMERGENCY, MessagePriority.CRITICAL],
        ]);
        await recorder.waitForCount(4);
        const byId = new Map(recorder.deliveries.map((d) => [d.messageId, d]));
        const seen = [r1, r2, r3, r4].map((r) => {
          const d = byId.get(r.messageId) as Delivery;
          return [d.priority, d.trainingRunId, d.correlationId, d.stream];
        });
        expect(seen).toEqual([
          [MessagePriority.LOW, 'run-own-1', '', LogicalStream.FIELD_REPORTS],
          [MessagePriority.HIGH, 'run-own-2', '', LogicalStream.EMERGENCY],
          [MessagePriority.LOW, 'run-own-3', '', LogicalStream.TELEMETRY],
          [MessagePriority.CRITICAL, 'run-own-4', '', LogicalStream.EMERGENCY],
        ]);
      });

      it('gives every message to each group and shares one group’s messages between its consumers', async () => {
        const { bus } = await setup({ readCount: 1 });
        const slowly = (into: Delivery[]) => async (d: Delivery) => {
          into.push(d);
          await new Promise((resolve) => setTimeout(resolve, 3));
        };
        const a1: Delivery[] = [];
        const a2: Delivery[] = [];
        const b1: Delivery[] = [];
        await subscribe(bus, [BusMessageType.FIELD_REPORT], slowly(a1), { group: 'ga', consumer: 'a1' });
        await subscribe(bus, [BusMessageType.FIELD_REPORT], slowly(a2), { group: 'ga', consumer: 'a2' });
        await subscribe(bus, [BusMessageType.FIELD_REPORT], slowly(b1), { group: 'gb', consumer: 'b1' });
        const receipts = await Promise.all(Array.from({ length: 20 }, () => bus.publish(fieldReport(RUN))));
        const published = receipts.map((r) => r.messageId).sort();
        await waitFor(() => a1.length + a2.length >= 20 && b1.length >= 20, 'both groups to handle 20 messages');
        const groupA = [...a1, ...a2].map((d) => d.messageId).sort();
        expect(groupA).toEqual(published);
        expect(b1.map((d) => d.messageId).sort()).toEqual(published);
        expect(a1.length).toBeGreaterThan(0);
        expect(a2.length).toBeGreaterThan(0);
      });
    });

    describe('at-least-once delivery', () => {
      it('retries a failed handler with attempt + 1 and the same message id, then acknowledges it', async () => {
        const { bus, store, streams } = await setup({ maxAttempts: 3 });
        const attempts: Delivery[] = [];
        await subscribe(bus, [BusMessageType.ADAPTATION_COMMAND], (d) => {
          attempts.push(d);
          if (d.attempt === 1) throw new Error('transient handler failure');
        });
        const receipt = await bus.publish(adaptationCommand(RUN), { correlationId: 'corr-retry' });
        await waitFor(() => bus.metrics().handledTotal === 1, 'the retried command to be handled');
        expect(attempts.map((d) => [d.messageId, d.attempt, d.correlationId])).toEqual([
          [receipt.messageId, 1, 'corr-retry'],
          [receipt.messageId, 2, 'corr-retry'],
        ]);
        expect(bus.metrics()).toMatchObject({ handlerFailures: 1, retriesTotal: 1, handledTotal: 1, deadLetterTotal: 0 });
        await waitFor(async () => (await pendingOf(store, streams.normal, GROUP)) === 0, 'nothing pending');
        await holdsFor(TEST_TIMINGS.reclaimIdleMs + 2 * TEST_TIMINGS.reclaimIntervalMs, () => expect(attempts).toHaveLength(2));
      });

      it('dead-letters a message with reason handler_failed after maxAttempts and never hands it out again', async () => {
        const { bus, store, streams, telemetry } = await setup({ maxAttempts: 3 });
        const attempts: Delivery[] = [];
        await subscribe(bus, [BusMessageType.FIELD_REPORT], (d) => {
          attempts.push(d);
          throw new Error(`handler refuses attempt ${d.attempt}`);
        });
        const receipt = await bus.publish(fieldReport(RUN));
        await waitFor(() => bus.metrics().deadLetterTotal === 1, 'the dead-letter');
        expect(attempts.map((d) => d.attempt)).toEqual([1, 2, 3]);
        expect(new Set(attempts.map((d) => d.messageId))).toEqual(new Set([receipt.messageId]));

        const letters = await deadLetters(store, streams.deadLetter);
        expect(letters).toHaveLength(1);
        expect(letters[0]).toMatchObject({
          reason: DeadLetterReason.HANDLER_FAILED,
          from: streams.fieldReports,
          group: GROUP,
          messageId: receipt.messageId,
          attempt: 3,
        });
        expect(letters[0]?.detail).toContain('handler refuses attempt 3');
        expect(bus.metrics()).toMatchObject({
          handlerFailures: 3,
          retriesTotal: 2,
          handledTotal: 0,
          deadLetterTotal: 1,
          deadLetterByReason: { [DeadLetterReason.HANDLER_FAILED]: 1 },
        });
        expect(eventsOf(telemetry, OonaEvent.DEAD_LETTER)).toHaveLength(1);
        await waitFor(async () => (await pendingOf(store, streams.fieldReports, GROUP)) === 0, 'nothing pending');
        await holdsFor(TEST_TIMINGS.reclaimIdleMs + 2 * TEST_TIMINGS.reclaimIntervalMs, () => expect(attempts).toHaveLength(3));
      });

      it('acknowledges only after success: a consumer stopped mid-handling leaves the entry pending, another reclaims and handles it, and nothing is handled after the ack', async () => {
        const { bus, store, streams } = await setup();
        const blocked = gate();
        const first: Delivery[] = [];
        const stuck = await subscribe(
          bus,
          [BusMessageType.FIELD_REPORT],
          async (d) => {
            first.push(d);
            await blocked.promise;
          },
          { consumer: 'first' },
        );
        const receipt = await bus.publish(fieldReport(RUN));
        await waitFor(() => first.length === 1, 'the first consumer to start handling');
        const stopping = stuck.close();
        expect(await pendingOf(store, streams.fieldReports, GROUP)).toBe(1);

        const second: { delivery: Delivery; atMs: number }[] = [];
        await subscribe(
          bus,
          [BusMessageType.FIELD_REPORT],
          (d) => {
            second.push({ delivery: d, atMs: performance.now() });
          },
          { consumer: 'second' },
        );
        await waitFor(() => second.length === 1, 'the second consumer to reclaim and handle the entry');
        expect(second[0]?.delivery.messageId).toBe(receipt.messageId);
        expect(second[0]?.delivery.entryId).toBe(first[0]?.entryId);
        await waitFor(async () => (await pendingOf(store, streams.fieldReports, GROUP)) === 0, 'the ack');
        expect(bus.metrics().reclaimedTotal).toBeGreaterThanOrEqual(1);

        blocked.open();
        await stopping;
        const later = await bus.publish(fieldReport(RUN));
        await waitFor(() => second.some((s) => s.delivery.messageId === later.messageId), 'a later message');
        await holdsFor(TEST_TIMINGS.reclaimIdleMs + 2 * TEST_TIMINGS.reclaimIntervalMs, () => {
          expect(first).toHaveLength(1);
          expect(second.filter((s) => s.delivery.messageId === receipt.messageId)).toHaveLength(1);
        });
      });
    });

    describe('duplicates', () => {
      it('hands a byte-identical re-added entry to the handler once, counting and reporting the copy', async () => {
        const { bus, store, streams, telemetry } = await setup();
        const recorder = new Recorder();
        const types = [BusMessageType.FIELD_REPORT, BusMessageType.ADAPTATION_COMMAND, BusMessageType.TELEMETRY];
        await subscribe(bus, types, recorder.handler);
        const report = await bus.publish(fieldReport(RUN));
        const command = await bus.publish(adaptationCommand(RUN));
        const packet = await bus.publish(telemetryPacket(RUN));
        await recorder.waitForCount(3);
        for (const [receipt, stream] of [
          [report, streams.fieldReports],
          [command, streams.normal],
          [packet, streams.telemetry],
        ] as const) {
          const original = (await readAll(store, stream)).find((e) => e.id === entryIdOf(receipt));
          await store.add(stream, original?.fields as EntryFields);
        }
        const marker = await bus.publish(fieldReport(RUN));
        await waitFor(() => recorder.messageIds.includes(marker.messageId), 'the marker');
        await waitFor(() => bus.metrics().duplicatesDropped + recorder.messageIds.length >= 7, 'the three copies');

        // Each message once (the three streams are read in no fixed order between them).
        const originals = [report.messageId, command.messageId, packet.messageId].sort();
        expect(recorder.messageIds).toHaveLength(4);
        expect(recorder.messageIds.slice(0, 3).sort()).toEqual(originals);
        expect(bus.metrics()).toMatchObject({ duplicatesDropped: 3, deadLetterTotal: 0, handledTotal: 4 });
        const dropped = eventsOf(telemetry, OonaEvent.DUPLICATE_DROPPED);
        expect(dropped.map(({ event }) => event.level)).toEqual([TelemetryLevel.WARNING, TelemetryLevel.WARNING, TelemetryLevel.WARNING]);
        expect(dropped.map(({ event }) => event.attributes['message_id']).sort()).toEqual(originals);
        await waitFor(async () => (await pendingOf(store, streams.fieldReports, GROUP)) === 0, 'the copies acknowledged');
      });

      it('still hands a retry (same message id, higher attempt) and a redelivered entry to the handler', async () => {
        const { bus } = await setup({ maxAttempts: 3 });
        const attempts: number[] = [];
        await subscribe(bus, [BusMessageType.FIELD_REPORT], (d) => {
          attempts.push(d.attempt);
          if (d.attempt < 3) throw new Error('fails twice');
        });
        await bus.publish(fieldReport(RUN));
        await waitFor(() => bus.metrics().handledTotal === 1, 'the third attempt');
        expect(attempts).toEqual([1, 2, 3]);
        expect(bus.metrics().duplicatesDropped).toBe(0);
      });
    });

    describe('priority', () => {
      it('handles a CRITICAL packet published during a flood of NORMAL telemetry before the flood drains', async () => {
        const readCount = 16;
        const { bus } = await setup({ readCount });
        const order: TelemetryPacket[] = [];
        await subscribe(bus, [BusMessageType.TELEMETRY], async (d) => {
          order.push(d.message as TelemetryPacket);
          if (d.priority !== MessagePriority.CRITICAL) await new Promise((resolve) => setTimeout(resolve, 3));
        });
        const flood = await Promise.all(Array.from({ length: 500 }, (_, i) => bus.publish(telemetryPacket(RUN, { tag: `flood-${i}` }))));
        expect(flood.every((r) => r.status === 'published' && r.stream === LogicalStream.TELEMETRY)).toBe(true);
        const critical = telemetryPacket(RUN, { tag: 'critical', level: TelemetryLevel.CRITICAL });
        expect(critical.priority).toBe(MessagePriority.CRITICAL);
        const receipt = await bus.publish(critical);
        const handledWhenStored = order.length;
        expect(receipt).toMatchObject({ status: 'published', stream: LogicalStream.EMERGENCY });
        await waitFor(() => order.length === 501, 'all 501 packets to be handled', 30_000);
        const position = order.findIndex((p) => p.packetId === 'tel-critical');
        // Once stored, it waits at most for the rest of the batch in hand: the next read,
        // whichever it is, returns emergency entries first.
        expect(position).toBeLessThanOrEqual(handledWhenStored + readCount);
        expect(position).toBeLessThan(500);
        expect(order.slice(position + 1).every((p) => p.priority === MessagePriority.NORMAL)).toBe(true);
      });

      it('demotes HIGH over the emergency budget (counted, still delivered) and never demotes CRITICAL', async () => {
        const { bus } = await setup({ emergencyMaxPerMin: 3 });
        const recorder = new Recorder();
        await subscribe(bus, [BusMessageType.TELEMETRY, BusMessageType.FIELD_REPORT], recorder.handler);
        const high = Array.from({ length: 4 }, (_, i) => telemetryPacket(RUN, { tag: `high-${i}`, level: TelemetryLevel.ERROR }));
        expect(high.every((p) => p.priority === MessagePriority.HIGH)).toBe(true);
        const highReceipts: PublishReceipt[] = [];
        for (const packet of high) highReceipts.push(await bus.publish(packet));
        const highReport = await bus.publish(fieldReport(RUN), { priority: MessagePriority.HIGH });
        const criticalReceipts: PublishReceipt[] = [];
        for (let i = 0; i < 4; i += 1) {
          criticalReceipts.push(await bus.publish(telemetryPacket(RUN, { tag: `crit-${i}`, level: TelemetryLevel.CRITICAL })));
        }
        const route = (r: PublishReceipt) => r.status === 'published' && [r.stream, r.demoted, r.priority];
        expect(highReceipts.map(route)).toEqual([
          [LogicalStream.EMERGENCY, false, MessagePriority.HIGH],
          [LogicalStream.EMERGENCY, false, MessagePriority.HIGH],
          [LogicalStream.EMERGENCY, false, MessagePriority.HIGH],
          [LogicalStream.TELEMETRY, true, MessagePriority.HIGH],
        ]);
        expect(route(highReport)).toEqual([LogicalStream.FIELD_REPORTS, true, MessagePriority.HIGH]);
        expect(criticalReceipts.map(route)).toEqual(
          Array.from({ length: 4 }, () => [LogicalStream.EMERGENCY, false, MessagePriority.CRITICAL]),
        );
        const metrics = bus.metrics();
        expect(metrics.emergencyDemoted).toBe(2);
        expect(metrics.emergencyPublished).toBe(7);
        expect(metrics.emergencyTokens).toBeLessThan(1);

        await recorder.waitForCount(9);
        const delivered = new Map(recorder.deliveries.map((d) => [d.messageId, d]));
        for (const r of [...highReceipts, highReport, ...criticalReceipts]) {
          const d = delivered.get(r.messageId);
          expect(d?.priority).toBe(r.status === 'published' ? r.priority : undefined);
          expect(d?.stream).toBe(r.stream);
        }
      });
    });

    describe('back-pressure', () => {
      const maxBacklog = 4;

      it('sheds LOW/NORMAL telemetry (counted) while HIGH/CRITICAL telemetry still goes through', async () => {
        const { bus } = await setup({ maxBacklog, depthRefreshMs: 0 });
        await (await subscribe(bus, [BusMessageType.TELEMETRY], () => undefined)).close();
        const accepted = [];
        for (let i = 0; i < maxBacklog; i += 1) accepted.push(await bus.publish(telemetryPacket(RUN)));
        expect(accepted.every((r) => r.status === 'published')).toBe(true);
        const shedNormal = await bus.publish(telemetryPacket(RUN));
        const shedLow = await bus.publish(telemetryPacket(RUN, { basePriority: MessagePriority.LOW }));
        expect(shedNormal).toMatchObject({ status: 'shed', stream: LogicalStream.TELEMETRY });
        expect(shedLow).toMatchObject({ status: 'shed', stream: LogicalStream.TELEMETRY });
        const high = await bus.publish(telemetryPacket(RUN, { level: TelemetryLevel.ERROR }));
        const critical = await bus.publish(telemetryPacket(RUN, { level: TelemetryLevel.CRITICAL }));
        expect(high).toMatchObject({ status: 'published', stream: LogicalStream.EMERGENCY });
        expect(critical).toMatchObject({ status: 'published', stream: LogicalStream.EMERGENCY });
        expect(bus.metrics()).toMatchObject({ publishShed: 2, publishTotal: maxBacklog + 2, publishTimeouts: 0 });
        expect(bus.metrics().depth[LogicalStream.TELEMETRY]).toBeGreaterThanOrEqual(maxBacklog);
      });

      it('never sheds field reports or commands: they wait for their deadline and fail with OONA_PUBLISH_TIMEOUT', async () => {
        const { bus } = await setup({ maxBacklog, depthRefreshMs: 0 });
        await (await subscribe(bus, [BusMessageType.FIELD_REPORT, BusMessageType.ADAPTATION_COMMAND], () => undefined)).close();
        for (let i = 0; i < maxBacklog; i += 1) {
          expect((await bus.publish(fieldReport(RUN))).status).toBe('published');
          expect((await bus.publish(adaptationCommand(RUN))).status).toBe('published');
        }
        for (const message of [fieldReport(RUN), adaptationCommand(RUN)]) {
          const started = performance.now();
          const error = await rejectionOf(bus.publish(message, { deadlineMs: 250 }));
          const waitedMs = performance.now() - started;
          expect(isEsperError(error, ErrorCode.OONA_PUBLISH_TIMEOUT)).toBe(true);
          expect(waitedMs).toBeGreaterThanOrEqual(240);
        }
        expect(bus.metrics()).toMatchObject({ publishShed: 0, publishTimeouts: 2, publishTotal: 2 * maxBacklog });
      });

      it('lets a waiting field report through once a consumer drains the backlog, and loses nothing it accepted', async () => {
        const { bus } = await setup({ maxBacklog, depthRefreshMs: 0 });
        const types = [BusMessageType.TELEMETRY, BusMessageType.FIELD_REPORT, BusMessageType.ADAPTATION_COMMAND];
        await (await subscribe(bus, types, () => undefined)).close();
        const receipts = [];
        for (let i = 0; i < maxBacklog + 3; i += 1) receipts.push(await bus.publish(telemetryPacket(RUN)));
        for (let i = 0; i < maxBacklog; i += 1) {
          receipts.push(await bus.publish(fieldReport(RUN)));
          receipts.push(await bus.publish(adaptationCommand(RUN)));
        }
        let settled = false;
        const waiting = bus.publish(fieldReport(RUN), { deadlineMs: 10_000 }).finally(() => {
          settled = true;
        });
        await holdsFor(150, () => expect(settled).toBe(false));

        const recorder = new Recorder();
        await subscribe(bus, types, recorder.handler);
        const late = await waiting;
        expect(late.status).toBe('published');
        receipts.push(late);

        const published = receipts.filter((r) => r.status === 'published').map((r) => r.messageId);
        const shed = receipts.filter((r) => r.status === 'shed').map((r) => r.messageId);
        expect(shed).toHaveLength(3);
        expect(published).toHaveLength(maxBacklog + 2 * maxBacklog + 1);
        expect(bus.metrics().publishShed).toBe(shed.length);
        await recorder.waitForCount(published.length);
        expect(recorder.messageIds.sort()).toEqual([...published].sort());
        await holdsFor(100, () => expect(recorder.deliveries).toHaveLength(published.length));
      });
    });

    describe('entries that fail verification', () => {
      it('dead-letters tampered, unsigned, unknown-key and malformed entries with their reasons and keeps consuming', async () => {
        const { bus, store, streams, telemetry } = await setup();
        const recorder = new Recorder();
        await subscribe(bus, [BusMessageType.FIELD_REPORT], recorder.handler);
        const good = await bus.publish(fieldReport(RUN));
        await recorder.waitForCount(1);

        const original = (await readAll(store, streams.fieldReports)).find((e) => e.id === entryIdOf(good));
        const fields = original?.fields as EntryFields;
        const envelope = fields[EntryField.ENVELOPE] as Uint8Array;
        const signature = fields[EntryField.SIGNATURE] as Uint8Array;
        const keyId = fields[EntryField.KEY_ID] as Uint8Array;
        const garbage = new Uint8Array([0xff, 0xff, 0xff, 0x07, 0x01]);
        const signer = new HmacSigner(testKeyRing());
        const bad: [string, EntryFields][] = [
          [DeadLetterReason.BAD_SIGNATURE, { e: flipByte(envelope), s: signature, k: keyId }],
          [DeadLetterReason.BAD_SIGNATURE, { e: envelope, s: flipByte(signature), k: keyId }],
          [DeadLetterReason.MISSING_SIGNATURE, { e: envelope }],
          [DeadLetterReason.UNKNOWN_KEY, { e: envelope, s: signature, k: new TextEncoder().encode('other') }],
          [DeadLetterReason.MALFORMED, { junk: garbage }],
          [DeadLetterReason.MALFORMED, { e: garbage, s: signer.mac('test', garbage), k: keyId }],
        ];
        const badIds: string[] = [];
        for (const [, entry] of bad) badIds.push(await store.add(streams.fieldReports, entry));
        const after = await bus.publish(fieldReport(RUN));

        await waitFor(() => bus.metrics().deadLetterTotal === bad.length, 'every bad entry to be dead-lettered');
        await waitFor(() => recorder.messageIds.includes(after.messageId), 'the message after the bad entries');
        expect(recorder.messageIds).toEqual([good.messageId, after.messageId]);

        const letters = await deadLetters(store, streams.deadLetter);
        expect(letters.map((l) => [l.id, l.reason, l.from, l.group])).toEqual(
          bad.map(([reason], i) => [badIds[i], reason, streams.fieldReports, GROUP]),
        );
        expect(bus.metrics().deadLetterByReason).toEqual({
          [DeadLetterReason.BAD_SIGNATURE]: 2,
          [DeadLetterReason.MISSING_SIGNATURE]: 1,
          [DeadLetterReason.UNKNOWN_KEY]: 1,
          [DeadLetterReason.MALFORMED]: 2,
        });
        const signatureEvents = eventsOf(telemetry, OonaEvent.SIGNATURE_INVALID);
        expect(signatureEvents).toHaveLength(4);
        for (const { packet, event } of signatureEvents) {
          expect(event.level).toBe(TelemetryLevel.CRITICAL);
          expect(packet.priority).toBe(MessagePriority.CRITICAL);
        }
        expect(eventsOf(telemetry, OonaEvent.MESSAGE_MALFORMED)).toHaveLength(2);
        await waitFor(async () => (await pendingOf(store, streams.fieldReports, GROUP)) === 0, 'nothing pending');
      });

      it('dead-letters stale and replayed kernel messages and hands the fresh ones to the handler', async () => {
        const { bus, store, streams, telemetry } = await setup({ kernelFreshnessWindowMs: 5_000 });
        const recorder = new Recorder();
        await subscribe(bus, [BusMessageType.KERNEL_PREFETCH_REQUEST, BusMessageType.KERNEL_PREFETCH_READY], recorder.handler);
        const stale = await bus.publish(kernelPrefetchRequest(RUN, `stale-${uniqueTag()}`, Date.now() - 60_000));
        const request = kernelPrefetchRequest(RUN);
        const fresh = await bus.publish(request);
        const replayed = await bus.publish(request);
        const answer = kernelArtifactReady(RUN, request.requestId);
        const ready = await bus.publish(answer);
        const readyAgain = await bus.publish(answer);
        await waitFor(() => bus.metrics().deadLetterTotal === 3, 'three kernel dead-letters');
        // A byte-for-byte copy of an accepted entry is a replay too.
        const copy = (await readAll(store, streams.kernelRequests)).find((e) => e.id === entryIdOf(fresh));
        await store.add(streams.kernelRequests, copy?.fields as EntryFields);
        const marker = await bus.publish(kernelPrefetchRequest(RUN));
        await waitFor(() => recorder.messageIds.includes(marker.messageId), 'the marker request');

        expect(recorder.messageIds).toEqual([fresh.messageId, ready.messageId, marker.messageId]);
        const letters = await deadLetters(store, streams.deadLetter);
        expect(letters.map((l) => [l.messageId, l.reason])).toEqual([
          [stale.messageId, DeadLetterReason.KERNEL_STALE],
          [replayed.messageId, DeadLetterReason.KERNEL_REPLAY],
          [readyAgain.messageId, DeadLetterReason.KERNEL_REPLAY],
          [fresh.messageId, DeadLetterReason.KERNEL_REPLAY],
        ]);
        expect(bus.metrics().deadLetterByReason).toEqual({
          [DeadLetterReason.KERNEL_STALE]: 1,
          [DeadLetterReason.KERNEL_REPLAY]: 3,
        });
        expect(eventsOf(telemetry, OonaEvent.KERNEL_MESSAGE_REJECTED)).toHaveLength(4);
      });
    });

    describe('request/reply', () => {
      it('resolves a request with the reply carrying its correlation id, from a responder on another bus', async () => {
        const { bus, peer } = await setup();
        const responder = peer();
        const seen: Delivery[] = [];
        await subscribe(
          responder,
          [BusMessageType.KERNEL_PREFETCH_REQUEST],
          async (d) => {
            seen.push(d);
            const request = d.message as KernelPrefetchRequest;
            await responder.reply(d, kernelArtifactReady(request.trainingRunId, request.requestId));
          },
          { group: 'urza' },
        );
        const request = kernelPrefetchRequest('run-rr');
        const reply = await bus.request(request, { replyType: BusMessageType.KERNEL_PREFETCH_READY, timeoutMs: 5_000 });
        expect(seen).toHaveLength(1);
        expect(reply.type).toBe(BusMessageType.KERNEL_PREFETCH_READY);
        expect((reply.message as KernelArtifactReady).requestId).toBe(request.requestId);
        expect(reply.correlationId).toBe(seen[0]?.correlationId);
        expect(reply.correlationId).not.toBe('');
        expect(reply.trainingRunId).toBe('run-rr');
      });

      it('rejects a request with OONA_REQUEST_TIMEOUT when no reply comes within timeoutMs', async () => {
        const { bus } = await setup();
        const started = performance.now();
        const error = await rejectionOf(
          bus.request(kernelPrefetchRequest(RUN), { replyType: BusMessageType.KERNEL_PREFETCH_READY, timeoutMs: 200 }),
        );
        const elapsedMs = performance.now() - started;
        expect(isEsperError(error, ErrorCode.OONA_REQUEST_TIMEOUT)).toBe(true);
        expect(elapsedMs).toBeGreaterThanOrEqual(190);
        expect(elapsedMs).toBeLessThan(5_000);
      });
    });

    describe('housekeeping', () => {
      it('trims acknowledged entries past the retention window but never pending or undelivered ones, nor dead-letters', async () => {
        const { bus, store, streams } = await setup({ retentionMs: 1, maxAttempts: 1 });
        const blocked = gate();
        const recorder = new Recorder();
        const blocking = await subscribe(bus, [BusMessageType.FIELD_REPORT], async (d) => {
          recorder.handler(d);
          if ((d.message as FieldReport).reportId === 'fr-fail') throw new Error('fails once, dead-lettered');
          if ((d.message as FieldReport).reportId === 'fr-block') await blocked.promise;
        });
        for (let i = 0; i < 3; i += 1) await bus.publish(fieldReport(RUN));
        await bus.publish(fieldReport(RUN, 'fail'));
        await waitFor(() => bus.metrics().handledTotal === 3 && bus.metrics().deadLetterTotal === 1, 'acks and a dead-letter');
        await bus.publish(fieldReport(RUN, 'block'));
        await waitFor(() => recorder.deliveries.length === 5, 'the blocking handler to start');
        await bus.publish(fieldReport(RUN, 'after'));
        const lastAt = Date.now();
        await waitFor(() => Date.now() > lastAt + 2, 'the retention window to pass');

        const trimmed = await bus.housekeeping();
        expect(trimmed[LogicalStream.FIELD_REPORTS]).toBe(4);
        expect(trimmed[LogicalStream.DEAD_LETTER]).toBeUndefined();
        expect(await store.length(streams.fieldReports)).toBe(2);
        expect(await store.length(streams.deadLetter)).toBe(1);

        blocked.open();
        await blocking.close();
        await subscribe(bus, [BusMessageType.FIELD_REPORT], recorder.handler);
        await waitFor(
          () => recorder.deliveries.some((d) => (d.message as FieldReport).reportId === 'fr-after'),
          'the undelivered entry to be handled after trimming',
        );
        await waitFor(async () => (await pendingOf(store, streams.fieldReports, GROUP)) === 0, 'nothing pending');
        await waitFor(() => Date.now() > lastAt + 5, 'the retention window to pass');
        const again = await bus.housekeeping();
        expect(again[LogicalStream.FIELD_REPORTS]).toBe(2);
        expect(await store.length(streams.fieldReports)).toBe(0);
        expect(await store.length(streams.deadLetter)).toBe(1);
      });

      it('trims nothing younger than the retention window', async () => {
        const { bus, store, streams } = await setup();
        const recorder = new Recorder();
        await subscribe(bus, [BusMessageType.FIELD_REPORT], recorder.handler);
        await bus.publish(fieldReport(RUN));
        await recorder.waitForCount(1);
        const trimmed = await bus.housekeeping();
        expect(Object.values(trimmed).every((n) => n === 0)).toBe(true);
        expect(await store.length(streams.fieldReports)).toBe(1);
      });
    });

    describe('metrics', () => {
      it('moves the snapshot as messages are published, handled, retried and dead-lettered', async () => {
        const { bus } = await setup({ maxAttempts: 2, emergencyMaxPerMin: 10 });
        const start = bus.metrics();
        expect(start).toMatchObject({
          publishTotal: 0,
          publishShed: 0,
          publishTimeouts: 0,
          emergencyPublished: 0,
          emergencyDemoted: 0,
          handledTotal: 0,
          handlerFailures: 0,
          retriesTotal: 0,
          deadLetterTotal: 0,
          reclaimedTotal: 0,
          emergencyTokens: 10,
          publishBreaker: 'closed',
          consumeBreaker: 'closed',
        });
        expect(start.publishLatency.samples).toBe(0);
        expect(start.handleLatency.samples).toBe(0);

        await subscribe(bus, [BusMessageType.FIELD_REPORT, BusMessageType.TELEMETRY], async (d) => {
          if ((d.message as { reportId?: string }).reportId === 'fr-bad') throw new Error('always fails');
          await new Promise((resolve) => setTimeout(resolve, 2));
        });
        for (let i = 0; i < 3; i += 1) await bus.publish(fieldReport(RUN));
        await bus.publish(fieldReport(RUN, 'bad'));
        await bus.publish(telemetryPacket(RUN, { level: TelemetryLevel.CRITICAL }));
        await waitFor(() => bus.metrics().handledTotal === 4 && bus.metrics().deadLetterTotal === 1, 'handling to finish');
        const end = bus.metrics();
        expect(end).toMatchObject({
          publishTotal: 5,
          emergencyPublished: 1,
          handledTotal: 4,
          handlerFailures: 2,
          retriesTotal: 1,
          deadLetterTotal: 1,
          deadLetterByReason: { [DeadLetterReason.HANDLER_FAILED]: 1 },
          publishBreaker: 'closed',
          consumeBreaker: 'closed',
        });
        expect(end.emergencyTokens).toBeLessThan(10);
        expect(end.publishLatency.samples).toBe(5);
        expect(end.publishLatency.p99Ms).toBeGreaterThanOrEqual(end.publishLatency.p50Ms);
        expect(end.handleLatency.samples).toBe(4);
        expect(end.handleLatency.p50Ms).toBeGreaterThan(0);
        expect(end.depth[LogicalStream.FIELD_REPORTS]).toBeGreaterThanOrEqual(0);
      });

      it('reports per-stream depth of undelivered and unacknowledged entries', async () => {
        const { bus, store, streams } = await setup({ depthRefreshMs: 0 });
        await (await subscribe(bus, [BusMessageType.FIELD_REPORT], () => undefined)).close();
        for (let i = 0; i < 4; i += 1) await bus.publish(fieldReport(RUN));
        expect(bus.metrics().depth[LogicalStream.FIELD_REPORTS]).toBeGreaterThanOrEqual(3);
        const recorder = new Recorder();
        await subscribe(bus, [BusMessageType.FIELD_REPORT], recorder.handler);
        await recorder.waitForCount(4);
        await waitFor(async () => (await pendingOf(store, streams.fieldReports, GROUP)) === 0, 'the acks');
        // The next publish to the drained stream refreshes its reading before it adds.
        await bus.publish(fieldReport(RUN));
        expect(bus.metrics().depth[LogicalStream.FIELD_REPORTS]).toBeLessThanOrEqual(1);
      });
    });

    describe('close', () => {
      it('waits for the handler in flight, acknowledges it, rejects later calls with OONA_CLOSED and is idempotent', async () => {
        const { bus, store, streams, peer } = await setup();
        const blocked = gate();
        const seen: Delivery[] = [];
        await subscribe(bus, [BusMessageType.FIELD_REPORT], async (d) => {
          seen.push(d);
          await blocked.promise;
        });
        await bus.publish(fieldReport(RUN));
        await waitFor(() => seen.length === 1, 'the handler to start');

        let closed = false;
        const closing = bus.close();
        expect(bus.close()).toBe(closing);
        void closing.then(() => {
          closed = true;
        });
        expect(bus.state).toBe('closing');
        expect(seen[0]?.signal.aborted).toBe(true);
        await holdsFor(100, () => expect(closed).toBe(false));
        blocked.open();
        await closing;
        expect(bus.state).toBe('closed');
        expect(await pendingOf(store, streams.fieldReports, GROUP)).toBe(0);

        const publishError = await rejectionOf(bus.publish(fieldReport(RUN)));
        expect(isEsperError(publishError, ErrorCode.OONA_CLOSED)).toBe(true);
        let subscribeError: unknown;
        try {
          bus.subscribe({ group: GROUP, consumer: 'late', types: [BusMessageType.FIELD_REPORT], handler: () => undefined });
        } catch (error) {
          subscribeError = error;
        }
        expect(isEsperError(subscribeError, ErrorCode.OONA_CLOSED)).toBe(true);
        const requestError = await rejectionOf(
          (async () => bus.request(fieldReport(RUN), { replyType: BusMessageType.FIELD_REPORT, timeoutMs: 100 }))(),
        );
        expect(isEsperError(requestError, ErrorCode.OONA_CLOSED)).toBe(true);

        // The closed bus's consumer is gone: a message another bus publishes is not handled by it.
        const other = peer();
        await other.publish(fieldReport(RUN));
        await holdsFor(2 * TEST_TIMINGS.blockMs, () => expect(seen).toHaveLength(1));
        await bus.close();
      });

      it('aborts a publish waiting under back-pressure with OONA_CLOSED', async () => {
        const { bus } = await setup({ maxBacklog: 1, depthRefreshMs: 0 });
        await (await subscribe(bus, [BusMessageType.FIELD_REPORT], () => undefined)).close();
        await bus.publish(fieldReport(RUN));
        const waiting = rejectionOf(bus.publish(fieldReport(RUN), { deadlineMs: 10_000 }));
        await holdsFor(50, () => undefined);
        await bus.close();
        expect(isEsperError(await waiting, ErrorCode.OONA_CLOSED)).toBe(true);
      });

      it('stops a subscription when its AbortSignal aborts', async () => {
        const { bus } = await setup();
        const controller = new AbortController();
        const recorder = new Recorder();
        const subscription = bus.subscribe({
          group: GROUP,
          consumer: 'c1',
          types: [BusMessageType.FIELD_REPORT],
          handler: recorder.handler,
          signal: controller.signal,
        });
        await subscription.ready;
        await bus.publish(fieldReport(RUN));
        await recorder.waitForCount(1);
        controller.abort();
        await subscription.close();
        await bus.publish(fieldReport(RUN));
        await holdsFor(2 * TEST_TIMINGS.blockMs, () => expect(recorder.deliveries).toHaveLength(1));
      });
    });
  });
}

/** The entry id of a published receipt. */
function entryIdOf(receipt: Awaited<ReturnType<StreamBus['publish']>>): string {
  if (receipt.status !== 'published') throw new Error(`expected a published receipt, got ${receipt.status}`);
  return receipt.entryId;
}

/** Every entry retained in `stream`, read through a throw-away group. */
export async function readAll(store: StreamStore, stream: string): Promise<StreamEntry[]> {
  const group = `inspect-${randomUUID()}`;
  await store.ensureGroup(stream, group, '0');
  try {
    return await store.readGroup(group, 'inspector', [stream], { count: 100_000, blockMs: 0 });
  } finally {
    await store.destroyGroup(stream, group);
  }
}

/** A dead-letter entry as the tests read it. */
export interface DeadLetterView {
  readonly entryId: string;
  readonly reason: string;
  readonly detail: string;
  readonly from: string;
  readonly id: string;
  readonly group: string;
  /** From the kept envelope, when it decodes. */
  readonly messageId: string | undefined;
  readonly attempt: number | undefined;
}

/** The dead-letter stream's entries, oldest first. */
export async function deadLetters(store: StreamStore, stream: string): Promise<DeadLetterView[]> {
  return (await readAll(store, stream)).map((entry) => {
    let messageId: string | undefined;
    let attempt: number | undefined;
    const bytes = entry.fields[EntryField.ENVELOPE];
    if (bytes !== undefined) {
      try {
        const envelope = fromBinary(BusEnvelopeSchema, bytes);
        messageId = envelope.messageId || undefined;
        attempt = envelope.attempt || undefined;
        if (envelope.publishedAt !== undefined) void timestampMs(envelope.publishedAt);
      } catch {
        // A malformed envelope is what some dead-letters are about.
      }
    }
    return { entryId: entry.id, ...readDeadLetter(entry.fields), messageId, attempt };
  });
}

/** Pending entries of `group` on `stream`. */
export async function pendingOf(store: StreamStore, stream: string, group: string): Promise<number> {
  const info = (await store.groups(stream)).find((g) => g.name === group);
  return info?.pending ?? 0;
}

/** Bus telemetry events with `description`, with their packets. */
export function eventsOf(
  sink: MemoryTelemetrySink,
  description: string,
): { packet: TelemetryPacket; event: TelemetryPacket['events'][number] }[] {
  return sink.packets.flatMap((packet) =>
    packet.events.filter((event) => event.description === description).map((event) => ({ packet, event })),
  );
}

function flipByte(bytes: Uint8Array): Uint8Array {
  const copy = Uint8Array.from(bytes);
  const at = Math.floor(copy.length / 2);
  copy[at] = (copy[at] as number) ^ 0x5a;
  return copy;
}
