/**
 * FieldReportPublisher over a real StreamBus (MemoryStreamStore; one test on the Redis at
 * the test run's Redis with a unique stream prefix, cleaned up): publish and mark published,
 * retries with clock-driven backoff, drop after the last retry, terminal errors, and
 * restarts that neither re-publish acknowledged reports nor forget retry counts.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, EsperError, FakeClock, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import { BusMessageType, TelemetryLevel, type FieldReport } from '../../src/leyline/index.js';
import { MemoryStreamStore, RedisStreamStore, StreamBus, type Bus } from '../../src/oona/index.js';
import { FieldReportPublisher, type FieldReportPublisherOptions } from '../../src/tamiyo/field-report-publisher.js';
import { FieldReportDelivery, FieldReportStore } from '../../src/tamiyo/field-report-store.js';
import { FieldReportEvent, FieldReportMetric } from '../../src/tamiyo/names.js';
import { TEST_TIMINGS, testKeyRing } from '../oona/fixtures/bus-options.js';
import { deleteKeysWithPrefix } from '../support/redis-server.js';
import { Recorder } from '../oona/fixtures/waits.js';
import { sampleReport } from './fixtures/field-report-samples.js';
import { testRedisUrl } from '../support/redis-url.js';

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempLog(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'esper-fr-pub-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'field_reports.log');
}

async function openStore(file: string): Promise<FieldReportStore> {
  const store = await FieldReportStore.open(file);
  cleanups.push(() => store.close());
  return store;
}

async function memoryBus(): Promise<{ bus: StreamBus; recorder: Recorder }> {
  const store = new MemoryStreamStore();
  const bus = new StreamBus({ ...TEST_TIMINGS, store, keyRing: testKeyRing(), telemetry: new MemoryTelemetrySink() });
  cleanups.push(async () => {
    await bus.close();
    await store.close();
  });
  const recorder = new Recorder();
  const subscription = bus.subscribe({
    group: 'simic',
    consumer: 'c1',
    types: [BusMessageType.FIELD_REPORT],
    handler: recorder.handler,
    from: 'all',
  });
  await subscription.ready;
  return { bus, recorder };
}

/** A bus whose publish fails with `error` the first `failures` times (Infinity: always). */
function failingBus(
  inner: Pick<Bus, 'publish'>,
  failures: number,
  error: () => unknown = () => unavailable(),
): Pick<Bus, 'publish'> & { calls: number } {
  const wrapper = {
    calls: 0,
    publish: (...args: Parameters<Bus['publish']>) => {
      wrapper.calls += 1;
      if (wrapper.calls <= failures) return Promise.reject(error());
      return inner.publish(...args);
    },
  };
  return wrapper;
}

function unavailable(): EsperError {
  return new EsperError(ErrorCode.OONA_STORE_UNAVAILABLE, 'store unreachable (test)');
}

function publisher(store: FieldReportStore, bus: Pick<Bus, 'publish'>, extra: Partial<FieldReportPublisherOptions> = {}) {
  const clock = new FakeClock();
  const telemetry = new MemoryTelemetrySink();
  return { publisher: new FieldReportPublisher({ store, bus, telemetry, clock, ...extra }), clock, telemetry };
}

function reportIdsOf(recorder: Recorder): string[] {
  return recorder.deliveries.map((d) => (d.message as FieldReport).reportId);
}

describe('FieldReportPublisher', () => {
  it('publishes pending reports to the field-report stream, marks them published and counts them', async () => {
    const file = await tempLog();
    const store = await openStore(file);
    const reports = [0, 1, 2, 3, 4].map((i) => sampleReport(i));
    for (const r of reports) await store.append(r);
    const { bus, recorder } = await memoryBus();
    const { publisher: pub, telemetry } = publisher(store, bus);

    const result = await pub.publishPending();
    expect(result).toEqual({ published: 5, retried: 0, dropped: 0, deferred: 0, nextAttemptAtMs: null });
    await recorder.waitForCount(5);
    expect(recorder.deliveries.map((d) => d.message)).toEqual(reports);
    expect(recorder.deliveries.every((d) => d.stream === 'fieldReports')).toBe(true);
    expect(store.pending()).toEqual([]);
    for (const r of reports) expect(store.status(r.reportId)?.delivery).toBe(FieldReportDelivery.PUBLISHED);

    const metrics = pub.metrics();
    expect(metrics).toMatchObject({ publishedTotal: 5, retriesTotal: 0, droppedTotal: 0, pendingTotal: 0 });
    // sampleReport cycles SUCCESS, NEUTRAL, REGRESSION, ABORTED.
    expect(metrics.publishedByOutcome).toEqual({ SUCCESS: 2, NEUTRAL: 1, REGRESSION: 1, ABORTED: 1 });
    expect(metrics.counters).toContainEqual({ name: FieldReportMetric.PUBLISHED_TOTAL, value: 5, unit: 'count' });
    expect(metrics.counters).toContainEqual({ name: FieldReportMetric.TOTAL, value: 2, unit: 'count', attributes: { outcome: 'SUCCESS' } });
    const summary = telemetry.packets.filter((p) => p.systemHealth?.summary === FieldReportEvent.PUBLISH_SUMMARY);
    expect(summary).toHaveLength(1);
    expect(summary[0]!.metrics.find((m) => m.name === FieldReportMetric.PUBLISHED_TOTAL)?.value).toBe(5);

    // Nothing is published twice, in this process or after a restart.
    expect(await pub.publishPending()).toMatchObject({ published: 0 });
    await store.close();
    const reopened = await openStore(file);
    expect(reopened.pending()).toEqual([]);
    expect(await publisher(reopened, bus).publisher.publishPending()).toMatchObject({ published: 0 });
    expect(recorder.deliveries).toHaveLength(5);
  });

  it('retries a failed publish after 2000 then 4000 ms (clock-driven) and then publishes it once', async () => {
    const store = await openStore(await tempLog());
    const report = sampleReport(0);
    await store.append(report);
    const { bus, recorder } = await memoryBus();
    const flaky = failingBus(bus, 2);
    const { publisher: pub, clock, telemetry } = publisher(store, flaky);
    const t0 = clock.wallMs();

    expect(await pub.publishPending()).toEqual({ published: 0, retried: 1, dropped: 0, deferred: 0, nextAttemptAtMs: t0 + 2_000 });
    expect(store.status(report.reportId)).toMatchObject({ delivery: 'pending', attempts: 1, nextAttemptAtMs: t0 + 2_000 });
    clock.advance(1_999);
    expect(await pub.publishPending()).toMatchObject({ published: 0, retried: 0, deferred: 1 });
    expect(flaky.calls).toBe(1);
    clock.advance(1);
    expect(await pub.publishPending()).toMatchObject({ retried: 1, nextAttemptAtMs: t0 + 2_000 + 4_000 });
    clock.advance(4_000);
    expect(await pub.publishPending()).toMatchObject({ published: 1, retried: 0 });
    await recorder.waitForCount(1);
    expect(reportIdsOf(recorder)).toEqual([report.reportId]);
    expect(store.status(report.reportId)).toMatchObject({ delivery: 'published', attempts: 2 });
    expect(pub.metrics()).toMatchObject({ publishedTotal: 1, retriesTotal: 2, droppedTotal: 0 });

    const retries = telemetry.events(FieldReportEvent.RETRY);
    expect(retries.map((e) => [e.level, e.attributes['retry_count'], e.attributes['delay_ms']])).toEqual([
      [TelemetryLevel.WARNING, '1', '2000'],
      [TelemetryLevel.WARNING, '2', '4000'],
    ]);
    expect(retries[0]!.attributes['report_id']).toBe(report.reportId);
  });

  it('drops a report after maxRetries retries with ERROR telemetry, durably, and never tries it again', async () => {
    const file = await tempLog();
    const store = await openStore(file);
    const report = sampleReport(0);
    await store.append(report);
    const { bus, recorder } = await memoryBus();
    const dead = failingBus(bus, Infinity);
    const { publisher: pub, clock, telemetry } = publisher(store, dead);

    for (const waitMs of [0, 2_000, 4_000]) {
      clock.advance(waitMs);
      expect(await pub.publishPending()).toMatchObject({ retried: 1, dropped: 0 });
    }
    clock.advance(8_000);
    expect(await pub.publishPending()).toEqual({ published: 0, retried: 0, dropped: 1, deferred: 0, nextAttemptAtMs: null });
    expect(dead.calls).toBe(4); // first attempt + 3 retries
    expect(pub.metrics()).toMatchObject({ publishedTotal: 0, retriesTotal: 3, droppedTotal: 1, pendingTotal: 0 });
    const drops = telemetry.events(FieldReportEvent.DROPPED);
    expect(drops).toHaveLength(1);
    expect(drops[0]!.level).toBe(TelemetryLevel.ERROR);
    expect(drops[0]!.attributes).toMatchObject({ report_id: report.reportId, retry_count: '4', reason: 'retries_exhausted' });
    expect(telemetry.packets.find((p) => p.events.some((e) => e.description === FieldReportEvent.DROPPED))?.priority).toBeGreaterThan(
      telemetry.packets.find((p) => p.events.some((e) => e.description === FieldReportEvent.RETRY))!.priority,
    );

    clock.advance(60_000);
    expect(await pub.publishPending()).toMatchObject({ published: 0, dropped: 0 });
    expect(dead.calls).toBe(4);
    // A dropped report does not come back after a restart, even on a healthy bus.
    await store.close();
    const reopened = await openStore(file);
    expect(reopened.status(report.reportId)).toMatchObject({ delivery: 'dropped', attempts: 4 });
    expect(reopened.reports().map((r) => r.reportId)).toEqual([report.reportId]); // still in the WAL
    expect(await publisher(reopened, bus).publisher.publishPending()).toMatchObject({ published: 0 });
    expect(recorder.deliveries).toHaveLength(0);
  });

  it('drops at once on a terminal error, and a transient failure defers the reports behind it', async () => {
    const store = await openStore(await tempLog());
    const [a, b, c] = [0, 1, 2].map((i) => sampleReport(i));
    for (const r of [a!, b!, c!]) await store.append(r);
    const { bus, recorder } = await memoryBus();
    let call = 0;
    const scripted: Pick<Bus, 'publish'> = {
      publish: (message, options) => {
        call += 1;
        if (call === 1) return Promise.reject(new EsperError(ErrorCode.MESSAGE_TOO_LARGE, 'too large (test)'));
        if (call === 2) return Promise.reject(unavailable());
        return bus.publish(message, options);
      },
    };
    const { publisher: pub, clock, telemetry } = publisher(store, scripted);
    expect(await pub.publishPending()).toMatchObject({ published: 0, retried: 1, dropped: 1, deferred: 1 });
    expect(store.status(a!.reportId)).toMatchObject({ delivery: 'dropped', attempts: 1 });
    expect(telemetry.events(FieldReportEvent.DROPPED)[0]!.attributes['reason']).toBe('terminal_error');
    expect(store.status(c!.reportId)).toMatchObject({ delivery: 'pending', attempts: 0 });
    // c was never attempted, so it goes at once; b waits for its backoff.
    expect(await pub.publishPending()).toMatchObject({ published: 1, deferred: 1 });
    clock.advance(2_000);
    expect(await pub.publishPending()).toMatchObject({ published: 1, deferred: 0 });
    await recorder.waitForCount(2);
    expect(reportIdsOf(recorder)).toEqual([c!.reportId, b!.reportId]);
  });

  it('keeps retry counts across a restart of store and publisher', async () => {
    const file = await tempLog();
    const store = await openStore(file);
    const report = sampleReport(0);
    await store.append(report);
    const { bus, recorder } = await memoryBus();
    const first = publisher(store, failingBus(bus, Infinity), { maxRetries: 1 });
    expect(await first.publisher.publishPending()).toMatchObject({ retried: 1 });
    await store.close();

    // Restart: the new process starts with its retry count at 1, so one more failure drops.
    const reopened = await openStore(file);
    expect(reopened.status(report.reportId)).toMatchObject({ attempts: 1 });
    const second = publisher(reopened, failingBus(bus, Infinity), { maxRetries: 1 });
    second.clock.advance(2_000);
    expect(await second.publisher.publishPending()).toMatchObject({ retried: 0, dropped: 1 });
    expect(reopened.status(report.reportId)).toMatchObject({ delivery: 'dropped', attempts: 2 });
    expect(recorder.deliveries).toHaveLength(0);
  });

  it('serialises concurrent passes so each report is published once', async () => {
    const store = await openStore(await tempLog());
    for (let i = 0; i < 20; i++) await store.append(sampleReport(i));
    const { bus, recorder } = await memoryBus();
    const { publisher: pub } = publisher(store, bus);
    const results = await Promise.all([pub.publishPending(), pub.publishPending(), pub.publishPending()]);
    expect(results.map((r) => r.published)).toEqual([20, 0, 0]);
    await recorder.waitForCount(20);
    expect(new Set(reportIdsOf(recorder)).size).toBe(20);
  });

  it('fails the pass with TAMIYO_PUBLISH_FAILED when the bus is closed, counting nothing against the report', async () => {
    const store = await openStore(await tempLog());
    const report = sampleReport(0);
    await store.append(report);
    const { bus } = await memoryBus();
    await bus.close();
    const { publisher: pub } = publisher(store, bus);
    const error = await pub.publishPending().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isEsperError(error, ErrorCode.TAMIYO_PUBLISH_FAILED)).toBe(true);
    expect(store.status(report.reportId)).toMatchObject({ delivery: 'pending', attempts: 0 });
    expect(pub.metrics()).toMatchObject({ retriesTotal: 0, droppedTotal: 0, pendingTotal: 1 });
  });

  it('rejects bad options naming the field', () => {
    const fake = { pending: () => [], markPublished: async () => {}, markRetry: async () => {}, markDropped: async () => {} };
    const make = (extra: Partial<FieldReportPublisherOptions>) => () =>
      new FieldReportPublisher({
        store: fake,
        bus: { publish: () => Promise.reject(new Error('unused')) },
        telemetry: new MemoryTelemetrySink(),
        ...extra,
      });
    for (const [field, extra] of [
      ['maxRetries', { maxRetries: -1 }],
      ['retryBaseMs', { retryBaseMs: Number.NaN }],
      ['retryMultiplier', { retryMultiplier: 0.5 }],
    ] as const) {
      let error: unknown;
      try {
        make(extra)();
      } catch (e) {
        error = e;
      }
      expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
      expect((error as EsperError).details['field']).toBe(field);
    }
  });
});

describe('FieldReportPublisher over Redis', () => {
  const REDIS_URL = testRedisUrl();

  it('delivers reports written before a restart to a Redis consumer, each exactly once', async () => {
    const admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await admin.connect();
    const streamPrefix = `esper-test:${randomUUID()}:`;
    cleanups.push(async () => {
      await deleteKeysWithPrefix(admin, streamPrefix);
      await admin.quit();
    });
    const newBus = (): StreamBus => {
      const store = new RedisStreamStore({ url: REDIS_URL });
      const bus = new StreamBus({
        ...TEST_TIMINGS,
        store,
        ownsStore: true,
        streamPrefix,
        keyRing: testKeyRing(),
        telemetry: new MemoryTelemetrySink(),
      });
      cleanups.push(() => bus.close());
      return bus;
    };
    const file = await tempLog();

    // Process 1: one report published, two written but not yet published when it stops.
    const store1 = await FieldReportStore.open(file);
    const bus1 = newBus();
    const r0 = sampleReport(0);
    await store1.append(r0);
    expect(await publisher(store1, bus1).publisher.publishPending()).toMatchObject({ published: 1 });
    const [r1, r2] = [sampleReport(1), sampleReport(2)];
    await store1.append(r1);
    await store1.append(r2);
    await bus1.close();
    await store1.close();

    // Simic's consumer on Redis.
    const consumerBus = newBus();
    const recorder = new Recorder();
    const subscription = consumerBus.subscribe({
      group: 'simic',
      consumer: 'c1',
      types: [BusMessageType.FIELD_REPORT],
      handler: recorder.handler,
      from: 'all',
    });
    await subscription.ready;

    // Process 2: a new store and publisher on the same path.
    const store2 = await openStore(file);
    expect(store2.pending().map((p) => p.report.reportId)).toEqual([r1.reportId, r2.reportId]);
    expect(await publisher(store2, newBus()).publisher.publishPending()).toMatchObject({ published: 2 });
    await recorder.waitForCount(3);
    expect(recorder.deliveries.map((d) => d.message)).toEqual([r0, r1, r2]);
    expect(store2.pending()).toEqual([]);
  }, 30_000);
});
